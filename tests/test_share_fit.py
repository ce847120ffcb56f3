"""``retrysim fit --html FILE``: one self-contained page holding every table the terminal
report shows, a labelled figure per fitted quantity (the alt text stating its numbers), the
held-out check, the scenario written, and a Reproduce line that, pasted, makes the same bytes.
The page's rows are read against the fit's own ``--json``, not numbers written here.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from retrysim.fit.holdout import HeldOutCheck
from retrysim.model.library import load_scenario
from retrysim.share.fit_page import fit_page, verdict
from tests.fit_data import saved_run
from tests.test_share_compare_sweep_tune import (
    assert_figures_labelled,
    assert_self_contained,
    assert_terminal_tables_shown,
    invoke,
    page,
)


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = saved_run(load_scenario("redis-blip"), tmp_path_factory.mktemp("blip"))
    return folder / "attempts.csv"


def test_the_page_holds_the_reports_tables_figures_and_scenario(log: Path, tmp_path: Path) -> None:
    target, out = tmp_path / "fit.html", tmp_path / "fitted.toml"
    result = invoke("fit", str(log), "--seeds", "2", "-q", "--out", str(out), "--html", str(target))
    assert result.exit_code == 0, result.output
    parsed = page(target)
    assert_self_contained(parsed)
    assert_terminal_tables_shown(result.stdout, parsed)
    labels = assert_figures_labelled(parsed, 4)  # arrivals, Q-Q, latency and errors over time
    doc = json.loads(invoke("fit", str(log), "--seeds", "2", "--json").stdout)
    rate = doc["arrivals"]["rate"]
    assert any(f"fitted rate {rate:.4g}" in label for label in labels)
    assert any("KS distance" in label and "lognormal" in label for label in labels)
    start = doc["errors"][""]["windows"][0]["start"]
    assert any(f"outage {start:.3g} to" in label for label in labels)
    # the scenario, line for line, and the held-out check's rows
    written, code = out.read_text(encoding="utf-8").splitlines(), parsed.code_lines
    first = code.index(written[0])
    assert code[first : first + len(written)] == written
    names = {row[0] for row in parsed.rows if row}
    assert {m["name"] for m in doc["held_out"]["metrics"]} <= names
    assert "Held-out check" in parsed.all_text


def test_the_reproduce_line_makes_the_same_bytes(log: Path, tmp_path: Path) -> None:
    first = tmp_path / "first.html"
    result = invoke("fit", str(log), "--seeds", "2", "--name", "x", "--html", str(first))
    assert result.exit_code == 0, result.output
    (command,) = [c for c in page(first).code if c.startswith("retrysim fit ")]
    assert "--html" not in command
    again = tmp_path / "again.html"
    repeat = invoke(*shlex.split(command)[1:], "-q", "--json", "--html", str(again))
    assert repeat.exit_code == 0, repeat.output
    assert again.read_bytes() == first.read_bytes()


def test_the_verdict_says_defaults_and_metrics_outside_in_its_tone(log: Path) -> None:
    from retrysim.fit.holdout import Judged
    from retrysim.fit.pipeline import fit_data
    from retrysim.fit.read import read_inputs

    result = fit_data(read_inputs([log]))
    defaults = sum(item.default is not None for item in result.values)
    assert defaults > 0
    inside = Judged("calls per second", "1/s", 1.0, (1.0, 1.0), 0.5, 1.5)
    outside = Judged("latency p99", "s", 9.0, (1.0, 1.0), 0.5, 1.5)
    good = HeldOutCheck((inside,), (0, 1), {}, (1, 1))
    bad = HeldOutCheck((inside, outside), (0, 1), {}, (1, 1))
    line, tone = verdict(result, good)
    assert f"{defaults} defaults" in line and "1 of 1 metrics inside" in line and tone == "warn"
    line, tone = verdict(result, bad)
    assert "1 of 2 metrics inside" in line and tone == "bad"
    line, tone = verdict(result, "no rows")
    assert "held-out check not run" in line
    built = fit_page(result, "no rows", "name = 'x'\n", ["retrysim", "fit", "log.csv"])
    assert [s.heading for s in built.sections] == [
        "Fitted values",
        "Arrivals",
        "Latency",
        "Errors and fault windows",
        "Held-out check",
        "The scenario written",
    ]
