"""What ``retrysim tune`` prints: the whole Pareto front in the objective's order with the
recommendation marked, what each recommended value buys, and one line per mistyped option with
the suggestion every other option gets.

The report tests render hand-made tune documents, so which rows and notes must appear is known
without a simulation; the command-line tests stop at the input check, before any run.
"""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from retrysim.cli.app import app
from retrysim.render import tune_report
from retrysim.render.tune_report import PARETO_ROWS, front_order, render

SCENARIOS = ("a", "b")


def candidate(
    label: str,
    success: float,
    p99: float,
    load: float,
    *,
    objective: float | None = None,
    recommended: bool = False,
    feasible: bool = True,
) -> dict[str, Any]:
    """A candidate as the tune document holds it; scenario ``b`` is its worst on every metric."""

    def fig(value: float) -> dict[str, Any]:
        return {"mean": value, "ci95": [value * 0.99, value * 1.01]}

    figures = {
        "a": {"success_rate": fig(1.0), "p99_latency": fig(p99 / 2), "amplification": fig(1.0)},
        "b": {"success_rate": fig(success), "p99_latency": fig(p99), "amplification": fig(load)},
    }
    return {
        "settings": {},
        "label": label,
        "seeds": 3,
        "objective": success if objective is None else objective,
        "objective_ci95": None,
        "feasible": feasible,
        "dropped": None,
        "figures": figures,
        "recommended": recommended,
    }


def knob(
    key: str,
    current: Any,
    recommended: Any,
    effect: str,
    without: dict[str, Any] | None = None,
) -> dict[str, Any]:
    best = {"success_rate": 0.99, "p99_latency": 20.0, "amplification": 1.5}
    return {
        "key": key,
        "current": current,
        "recommended": recommended,
        "changed": without is not None,
        "unchanged": None if without is not None else "it moves nothing",
        "with": {m: {"mean": v, "ci95": [v, v]} for m, v in best.items()},
        "without": (
            None if without is None else {m: {"mean": v, "ci95": None} for m, v in without.items()}
        ),
        "deltas": {},
        "significant": {},
        "effect": effect,
    }


def tune_doc(front: list[dict[str, Any]], best: dict[str, Any], **group: Any) -> dict[str, Any]:
    return {
        "objective": {"metric": "success_rate", "maximize": True},
        "constraints": [],
        "aggregate": "worst",
        "weights": {},
        "seeds": 3,
        "search": [],
        "preference": "the simplest settings",
        "pareto_metrics": ["success_rate", "p99_latency", "amplification"],
        "groups": [
            {
                "operations": ["worker"],
                "scenarios": list(SCENARIOS),
                "search": "grid",
                "candidates": len(front),
                "dropped": 0,
                "invalid": [],
                "best": best,
                "env": {},
                "closest": None,
                "binding": None,
                "current": {},
                "explanation": [],
                "ties": [],
                "baselines": [],
                "pareto": front,
                **group,
            }
        ],
        "env": {"RETRY__WORKER_MAX_ATTEMPTS": "5"},
    }


def text_of(doc: dict[str, Any], saved: str | None = None) -> str:
    console = Console(file=io.StringIO(), width=200, color_system=None)
    for part, _ in render(doc, saved):
        console.print(part)
    out = console.file
    assert isinstance(out, io.StringIO)
    return out.getvalue()


def table_at(text: str, title_start: str) -> tuple[str, list[str]]:
    """The header line and the first cell of each row of the table whose title starts so."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title_start))
    top = next(i for i in range(start, len(lines)) if lines[i].startswith("┏"))
    rows = []
    for line in lines[top + 3 :]:  # top rule, header, header rule
        if not line.startswith("│"):
            break
        rows.append(line.split("│")[1].strip())
    return lines[top + 1], rows


def table_rows(text: str, title_start: str) -> list[str]:
    return table_at(text, title_start)[1]


# --- the Pareto table ------------------------------------------------------------------------


def test_the_front_is_ordered_by_the_objective_then_the_others() -> None:
    rows = [
        candidate("slow-sure", 1.0, 30.0, 2.0),
        candidate("fast", 0.9, 5.0, 1.1),
        candidate("sure-light", 1.0, 30.0, 1.5),
        candidate("mid", 0.95, 10.0, 1.2),
    ]
    assert [r["label"] for r in front_order(rows, maximize=True)] == [
        "sure-light",  # 100% like slow-sure, and the same p99, but the lighter load
        "slow-sure",
        "mid",
        "fast",
    ]
    assert front_order(rows, maximize=False)[0]["label"] == "fast"


def test_every_front_member_is_listed_in_order_with_the_recommendation_marked() -> None:
    front = [candidate(f"c{i}", 0.9 + i / 100, 5.0 + i, 1.1) for i in range(5)]
    front[2]["recommended"] = True
    ordered = front_order(front, maximize=True)
    text = text_of(tune_doc(ordered, front[2]))
    rows = table_rows(text, "Pareto front")
    assert rows == ["c4", "c3", "c2 (recommended)", "c1", "c0"]
    assert "Pareto front: 5 candidates" in text
    assert "more; all in" not in text  # nothing was cut


def test_a_long_front_is_cut_with_a_note_and_still_shows_the_recommendation() -> None:
    total = PARETO_ROWS + 7
    front = [candidate(f"c{i:02}", 1 - i / 1000, 5.0 + i, 1.1) for i in range(total)]
    best = {**front[-1], "recommended": True}
    front[-1] = best
    text = text_of(tune_doc(front, best), saved="out/tune.json")
    rows = table_rows(text, "Pareto front")
    assert rows[:PARETO_ROWS] == [f"c{i:02}" for i in range(PARETO_ROWS)]
    assert rows[PARETO_ROWS:] == [f"c{total - 1:02} (recommended)"]
    # shown: the first PARETO_ROWS and the recommendation; the other 6 are in the file
    assert f"and {total - PARETO_ROWS - 1} more; all in out/tune.json" in text
    without_out = text_of(tune_doc(front, best))
    assert "more; all in tune.json (--out DIR) and --json" in without_out


def test_a_recommendation_off_the_front_is_shown_and_explained() -> None:
    front = [candidate("a-front", 1.0, 20.0, 1.5)]
    best = candidate("simpler", 1.0, 20.1, 1.5)  # within the noise of the front member
    text = text_of(tune_doc(front, best))
    assert table_rows(text, "Pareto front") == ["a-front", "simpler (recommended)"]
    assert "The recommendation is on no front" in text
    assert "more; all in" not in text


def test_an_objective_outside_the_front_gets_its_own_column() -> None:
    front = [candidate("x", 1.0, 20.0, 1.5, objective=3.25, recommended=True)]
    doc = tune_doc(front, front[0])
    doc["objective"] = {"metric": "p50_latency", "maximize": False}
    header, rows = table_at(text_of(doc), "Pareto front")
    assert "p50 latency" in header and rows == ["x (recommended)"]
    assert "3.250s" in text_of(doc)


# --- the explanation --------------------------------------------------------------------------


def test_each_recommended_value_shows_what_it_buys_and_a_sensitivity_line() -> None:
    best = candidate("max_attempts=5, min_wait=1.9", 0.99, 20.0, 1.5, recommended=True)
    explanation = [
        knob("policy.max_attempts", 3, 5, "max_attempts 3 -> 5: success +4.00 pp",
             without={"success_rate": 0.95, "p99_latency": 12.5, "amplification": 1.4}),
        knob("policy.min_wait", 1.0, 1.0, "min_wait 1: kept (it moves nothing)"),
    ]  # fmt: skip
    doc = tune_doc([best], best, explanation=explanation, ties=["t1", "t2"])
    text = text_of(doc)
    assert "recommended: max_attempts=5, min_wait=1 (current)" in text
    lines = text.splitlines()
    header, rows = table_at(text, "What each value buys")
    assert "recommended" in header and "max_attempts=3 (current)" in header
    assert rows == ["success rate", "p99 latency", "load amplification"]
    title = next(i for i, line in enumerate(lines) if line.startswith("What each value buys"))
    success = next(line for line in lines[title:] if line.startswith("│ success rate"))
    assert "99.00% ±0.00%" in success and "95.00%" in success  # with it, and without it
    assert "  max_attempts 3 -> 5: success +4.00 pp" in lines
    assert "  min_wait 1: kept (it moves nothing)" in lines
    assert "2 other candidates tied with it within the noise" in text
    assert "prefers the simplest settings" in text


def test_the_obvious_candidates_are_listed_with_their_role() -> None:
    best = candidate("max_attempts=5", 1.0, 17.4, 1.3, recommended=True)
    baselines = [
        {**candidate("", 0.8, 9.0, 1.1), "role": "current"},
        {**best, "role": "diagnosis more-attempts"},
        {**candidate("", 0.8, 9.0, 1.1), "role": "defaults"},  # the same settings: one row
    ]
    text = text_of(tune_doc([best], best, baselines=baselines))
    rows = table_rows(text, "The obvious candidates")
    assert rows == ["(the current settings)", "max_attempts=5 (recommended)"]
    assert "current; defaults" in text and "diagnosis more-attempts" in text


def test_the_effect_line_names_the_changes_beyond_the_noise() -> None:
    from retrysim.runs.tune import KnobExplanation, MetricFigure

    def figs(success: float, p99: float, load: float) -> dict[str, MetricFigure]:
        values = {"success_rate": success, "p99_latency": p99, "amplification": load}
        return {m: MetricFigure(mean=v, ci95=None) for m, v in values.items()}

    moved = KnobExplanation(
        key="policy.min_wait",
        current=1.0,
        recommended=1.9,
        unchanged=None,
        with_value=figs(1.0, 17.5, 1.9),
        without=figs(1.0, 10.0, 2.0),
        without_candidate=None,
        deltas={"success_rate": 0.0, "p99_latency": 7.5, "amplification": -0.1},
        significant={"success_rate": False, "p99_latency": True, "amplification": True},
    )
    assert tune_report.effect_line(moved) == "min_wait 1 -> 1.9: p99 +7.500s, load -0.10 (-5%)"
    nothing = KnobExplanation(
        key="policy.max_attempts",
        current=5,
        recommended=7,
        unchanged=None,
        with_value=figs(1.0, 17.5, 1.9),
        without=figs(1.0, 17.4, 1.9),
        without_candidate=None,
        deltas={"success_rate": 0.0, "p99_latency": 0.1, "amplification": 0.0},
        significant={"success_rate": False, "p99_latency": False, "amplification": False},
    )
    assert tune_report.effect_line(nothing) == (
        "max_attempts 5 -> 7: no change beyond the noise (within it: p99 +0.100s)"
    )
    same = replace(nothing, deltas=dict.fromkeys(nothing.deltas, 0.0))
    assert tune_report.effect_line(same) == "max_attempts 5 -> 7: no change"
    # a large move the seeds cannot tell from luck is still named
    hidden = replace(moved, deltas={**moved.deltas, "success_rate": -0.26})
    assert tune_report.effect_line(hidden) == (
        "min_wait 1 -> 1.9: p99 +7.500s, load -0.10 (-5%); within the noise: success -26.00 pp"
    )
    alone = replace(moved, without=None, deltas={})
    assert tune_report.effect_line(alone) == (
        "min_wait 1 -> 1.9: not compared (the current value makes no valid policy with the others)"
    )
    kept = KnobExplanation(
        key="policy.max_attempts",
        current=5,
        recommended=5,
        unchanged="moving it to 7 changed nothing within the noise",
        with_value=figs(1.0, 17.5, 1.9),
        without=None,
        without_candidate=None,
        deltas={},
        significant={},
    )
    assert tune_report.effect_line(kept) == (
        "max_attempts 5: kept (moving it to 7 changed nothing within the noise)"
    )


# --- typos get the suggestion --set gets ------------------------------------------------------


def _scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "coin.toml"
    path.write_text(
        'name = "coin"\nseed = 1\nduration = 10\n[clients]\ncount = 50\n'
        '[service]\nkind = "ideal"\nlatency = 0.001\n',
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--search", "policy.max_atempts=2..8"],
            "--search: policy.max_atempts: unknown key (did you mean 'max_attempts'?)",
        ),
        (
            ["--search", "policy.breaker.enabeld=true,false"],
            "--search: policy.breaker.enabeld: unknown key (did you mean 'enabled'?)",
        ),
        (
            ["--constraint", "p99_latncy<=30"],
            "--constraint p99_latncy: unknown metric (did you mean 'p99_latency'?); allowed: ",
        ),
        (
            ["--objective", "sucess_rate"],
            "--objective sucess_rate: unknown metric (did you mean 'success_rate'?); allowed: ",
        ),
        (
            ["--aggregate", "mean", "--weight", "con=2"],
            "--weight con: not one of the scenarios (did you mean 'coin'?); they are: coin",
        ),
    ],
)
def test_a_typo_is_one_line_exit_2_with_the_suggestion(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    search = [] if args[0] == "--search" else ["--search", "policy.max_attempts=2..3"]
    result = CliRunner().invoke(app, ["tune", str(_scenario_file(tmp_path)), *search, *args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"retrysim: error: {expected}"), lines[0]


def test_an_unknown_metric_lists_the_metrics_once() -> None:
    from retrysim.results.metric_table import METRIC_NAMES

    result = CliRunner().invoke(
        app,
        ["tune", "lock-contention", "--search", "policy.max_attempts=2..3", "--constraint",
         "p99<=30"],
    )  # fmt: skip
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.count(" success_rate,") == 1
    assert line.endswith("allowed: " + ", ".join(METRIC_NAMES))
