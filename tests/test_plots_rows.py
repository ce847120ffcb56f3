"""Figures of saved rows (a sweep's, a comparison's, a tuning's): heat maps and Pareto plots.

Rows are made by hand here, so which points are on the front is known without a simulation;
the command-line tests at the end draw a real (small) sweep.
"""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from retrysim import plots
from retrysim.cli.app import app


def row(label: str, attempts: int, wait: float, success: float | None, p99: float) -> Any:
    return {
        "label": label,
        "policy.max_attempts": attempts,
        "policy.max_wait": wait,
        "seeds": 2,
        "success_rate": success,
        "success_rate_ci_low": None if success is None else success - 0.01,
        "p99_latency": p99,
        "amplification": 1 + p99 / 2,
    }


# x: p99 latency (lower is better), y: success rate (higher is better)
ROWS = [
    row("a", 2, 1, 0.50, 1.0),  # front: the fastest
    row("b", 3, 1, 0.90, 2.0),  # front
    row("c", 3, 5, 0.80, 2.5),  # beaten by b on both
    row("d", 4, 1, 0.99, 3.0),  # front
    row("e", 4, 5, 0.99, 3.0),  # front: tied with d
    row("f", 2, 5, None, 1.5),  # no success rate: on no front, left out
    row("g", 5, 1, 0.99, 4.0),  # beaten by d: as good, slower
    row("h", 5, 5, 0.999, 6.0),  # front: the most successful
]


def offsets(ax: Any, gid: str) -> list[tuple[float, float]]:
    (collection,) = [c for c in ax.collections if c.get_gid() == gid]
    return [(float(x), float(y)) for x, y in np.asarray(collection.get_offsets())]


def test_pareto_front_by_hand() -> None:
    assert plots.pareto_front(ROWS) == [0, 1, 3, 4, 7]
    # amplification grows with p99 here, so the front is the same
    assert plots.pareto_front(ROWS, x="amplification") == [0, 1, 3, 4, 7]
    # both lower-is-better: only the fastest row survives on (p99, amplification)
    assert plots.pareto_front(ROWS, x="p99_latency", y="amplification") == [0]
    with pytest.raises(ValueError, match="unknown metric"):
        plots.pareto_front(ROWS, x="nope")


def test_pareto_plot_marks_and_labels_the_front() -> None:
    fig = plots.pareto_plot(ROWS, title="demo")
    ax = fig.axes[0]
    assert sorted(offsets(ax, "pareto-front")) == [
        (1.0, 0.5),
        (2.0, 0.9),
        (3.0, 0.99),
        (3.0, 0.99),
        (6.0, 0.999),
    ]
    assert sorted(offsets(ax, "pareto-others")) == [(2.5, 0.8), (4.0, 0.99)]
    (line,) = [ln for ln in ax.lines if ln.get_gid() == "pareto-line"]
    assert np.asarray(line.get_xdata()).tolist() == [
        1.0,
        2.0,
        3.0,
        3.0,
        6.0,
    ]  # joined in order across
    labels = sorted(t.get_text() for t in ax.texts if str(t.get_gid()).startswith("pareto-"))
    assert labels == ["a", "b", "d (+1 tied)", "h"]  # tied points share one label
    assert ax.get_xlabel() == "p99 latency (seconds, lower is better)"
    assert ax.get_ylabel() == "success rate (share of calls, higher is better)"
    title = ax.get_title()
    assert title.startswith("demo\n") and "7 candidates; 1 without a value left out" in title
    legend = ax.get_legend()
    assert legend is not None
    assert [t.get_text() for t in legend.get_texts()] == [
        "beaten on both (2)",
        "best trade-offs (5)",
    ]
    assert legend.get_title().get_text() == "better: left and up"
    assert [t.get_text() for t in ax.get_yticklabels()][-1].endswith("%")  # shares as percent


def test_pareto_labels_do_not_cover_each_other_in_a_crowd() -> None:
    crowd = [row(f"policy variant number {i} with a long label", i, 1, 0.9 + i / 1000, 1 + i / 50)
             for i in range(6)]  # fmt: skip
    crowd += [row("far", 9, 9, 0.5, 0.2), row("slow", 9, 1, 0.999, 9.0)]
    fig = plots.pareto_plot(crowd)
    fig.draw_without_rendering()
    ax = fig.axes[0]
    from matplotlib.text import Text

    boxes = [Text.get_window_extent(t) for t in ax.texts if str(t.get_gid()).startswith("pareto-l")]
    assert len(boxes) == 8
    for one, other in combinations(boxes, 2):
        assert not one.overlaps(other)
    frame = ax.get_window_extent()
    assert all(frame.x0 <= b.x0 and b.x1 <= frame.x1 for b in boxes)  # none leaves the axes


def test_pareto_plot_refuses_what_it_cannot_rank() -> None:
    with pytest.raises(ValueError, match="no rows"):
        plots.pareto_plot([])
    with pytest.raises(ValueError, match="no row has both"):
        plots.pareto_plot([row("x", 1, 1, None, 1.0)])


def test_heatmap_rows_two_keys() -> None:
    rows = [r for r in ROWS if r["label"] != "f"] + [row("f", 2, 5, 0.4, 1.5)]
    fig = plots.heatmap_rows(rows, "max_attempts", "max_wait", "success_rate", seeds=2)
    ax = fig.axes[0]
    (image,) = ax.images
    data: np.ndarray[Any, Any] = np.ma.getdata(np.ma.asarray(image.get_array()))
    assert data.shape == (2, 4)  # rows: max_wait 1, 5; columns: max_attempts 2..5
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2", "3", "4", "5"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["1", "5"]
    assert data[0, 0] == 0.5 and data[1, 3] == 0.999
    cells = {t.get_text() for t in ax.texts}
    assert {"50.00%", "99.90%", "40.00%"} <= cells  # formatted as tables print them
    assert ax.get_title() == "success rate (mean of 2 seeds)"
    assert ax.get_xlabel() == "max_attempts" and ax.get_ylabel() == "max_wait (s)"
    assert "higher is better" in fig.axes[1].get_ylabel()


def test_heatmap_rows_defaults_to_the_first_two_keys_and_facets_the_rest() -> None:
    rows = [
        {"variant": f"{a},{w},{p}", "policy.max_attempts": a, "policy.max_wait": w,
         "policy.profile": p, "p99_latency": a * w * (2 if p == "bindu" else 1)}
        for a in (2, 4) for w in (1, 5, 10) for p in ("bindu", "full_jitter")
    ]  # fmt: skip
    assert plots.grid_keys(rows) == ["policy.max_attempts", "policy.max_wait", "policy.profile"]
    fig = plots.heatmap_rows(rows, metric="p99_latency", title="demo")
    panels = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in panels] == ["profile=bindu", "profile=full_jitter"]
    assert {ax.images[0].get_clim() for ax in panels} == {(2.0, 80.0)}  # one colour scale
    assert fig.get_suptitle() == "demo: p99 latency"
    assert all(ax.get_xlabel() == "max_attempts" for ax in panels)
    assert (
        np.ma.getdata(np.ma.asarray(panels[1].images[0].get_array()))[2, 1] == 40
    )  # max_wait 10, attempts 4
    assert len(fig.axes) == 3  # two panels and one shared colour bar


def test_heatmap_rows_errors_name_what_is_there() -> None:
    with pytest.raises(ValueError, match=r"no grid key 'nope'.*policy\.max_attempts"):
        plots.heatmap_rows(ROWS, "nope", "max_wait")
    with pytest.raises(ValueError, match="no 'duplicates'"):
        plots.heatmap_rows(ROWS, metric="duplicates")
    one_key = [{"label": "a", "policy.max_attempts": 2, "success_rate": 0.5}]
    with pytest.raises(ValueError, match=r"needs two grid keys.*\(policy\.max_attempts\)"):
        plots.heatmap_rows(one_key)
    with pytest.raises(ValueError, match="both"):
        plots.heatmap_rows(ROWS, "max_attempts", "max_attempts")


# --- retrysim plot DIR --kind heatmap|pareto -----------------------------------------------------


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sweep")
    result = invoke(
        "sweep", "lock-contention", "--grid", "policy.max_attempts=2,4", "--grid",
        "policy.max_wait=1,5", "--out", str(out), "--json", "--workers", "1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("kind", ["heatmap", "pareto"])
def test_plot_draws_a_saved_sweep(sweep_dir: Path, kind: str) -> None:
    result = invoke("plot", str(sweep_dir), "--kind", kind)
    assert result.exit_code == 0, result.output
    target = sweep_dir / f"{kind}.png"
    assert result.stdout.strip() == f"wrote {target}"
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_options_for_a_saved_sweep(sweep_dir: Path, tmp_path: Path) -> None:
    svg = tmp_path / "latency.svg"
    heat = invoke(
        "plot", str(sweep_dir / "sweep.json"), "--kind", "heatmap", "--metric", "p99_latency",
        "--x", "max_wait", "--y", "max_attempts", "--out", str(svg),
    )  # fmt: skip
    assert heat.exit_code == 0, heat.output
    text = svg.read_text(encoding="utf-8")
    assert "lock-contention: p99 latency (mean of 1 seed)" in text
    pareto = invoke("plot", str(sweep_dir), "--kind", "pareto", "--x", "amplification",
                    "--out", str(tmp_path / "p.svg"))  # fmt: skip
    assert pareto.exit_code == 0, pareto.output
    assert "load amplification" in (tmp_path / "p.svg").read_text(encoding="utf-8")


def test_plot_draws_any_rows_with_labels(tmp_path: Path) -> None:
    (tmp_path / "rows.json").write_text(json.dumps({"rows": ROWS}), encoding="utf-8")
    target = tmp_path / "t.svg"
    result = invoke("plot", str(tmp_path / "rows.json"), "--kind", "pareto", "--out", str(target))
    assert result.exit_code == 0, result.output
    assert "d (+1 tied)" in target.read_text(encoding="utf-8")


def test_plot_draws_a_tuning_result_per_operation_group(tmp_path: Path) -> None:
    out = tmp_path / "tuned"
    tuned = invoke(
        "tune", "lock-contention", "startup-race", "--search", "policy.max_attempts=2..4",
        "--seeds", "2", "--workers", "1", "--out", str(out), "--json", "-q",
    )  # fmt: skip
    assert tuned.exit_code == 0, tuned.output
    doc = json.loads(tuned.stdout)
    result = invoke("plot", str(out), "--kind", "pareto", "--out", str(tmp_path / "t.svg"))
    assert result.exit_code == 0, result.output
    from retrysim.cli.plot_rows import read_rows, rows_figure

    saved = read_rows(out)
    fig = rows_figure("pareto", saved, None, None, None)
    panels = [ax for ax in fig.axes if ax.get_gid() != "pareto-colour-bar"]  # load's colours
    assert len(panels) == len(doc["groups"])  # one panel per operation group
    for ax, group in zip(panels, doc["groups"], strict=True):
        assert ax.get_title().startswith(f"{', '.join(group['operations'])} on ")
        labels = {t.get_text() for t in ax.texts if str(t.get_gid()).startswith("pareto-l")}
        front = {c["label"] for c in group["pareto"]} | {group["best"]["label"]}
        assert labels and {t.split(" (+")[0] for t in labels} <= front  # ties share a label
        (star,) = [c for c in ax.collections if c.get_gid() == "pareto-recommended"]
        (worst,) = group["best"]["figures"].values()  # one scenario per group here
        assert np.asarray(star.get_offsets()).tolist() == [
            [worst["p99_latency"]["mean"], worst["success_rate"]["mean"]]
        ]
    heat = invoke("plot", str(out), "--kind", "heatmap")
    assert heat.exit_code == 2 and "draw it with --kind pareto" in heat.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--kind", "timeline"],
            "no result.json; it holds sweep.json: draw it with --kind heatmap",
        ),
        (["--kind", "pareto", "--metric", "p99_latency"], "--metric is for --kind heatmap"),
        (["--kind", "heatmap", "--metric", "nope"], "--metric 'nope': unknown metric"),
        (["--kind", "pareto", "--x", "max_attempts"], "--x 'max_attempts': unknown metric"),
        (["--kind", "heatmap", "--x", "nope"], "no grid key 'nope'"),
        (["--kind", "heatmap", "--metric", "breaker_opens"], "its rows have no breaker_opens"),
        (
            ["--kind", "pie"],
            "allowed: timeline, spread, cdf, tiers, amplification, replicas, heatmap, pareto",
        ),
    ],
)
def test_plot_mistakes_with_a_sweep_are_one_line(
    sweep_dir: Path, args: list[str], message: str
) -> None:
    result = invoke("plot", str(sweep_dir), *args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_plot_of_a_folder_without_rows_or_with_timeline_options(tmp_path: Path) -> None:
    empty = invoke("plot", str(tmp_path), "--kind", "pareto")
    assert empty.exit_code == 2 and "no sweep.json, compare.json or tune.json" in empty.stderr
    (tmp_path / "sweep.json").write_text('{"rows": []}', encoding="utf-8")
    bad = invoke("plot", str(tmp_path), "--kind", "heatmap")
    assert bad.exit_code == 2 and "not a saved sweep, comparison or tuning" in bad.stderr
    timeline = invoke("plot", str(tmp_path / "result.json"), "--x", "max_attempts")
    assert timeline.exit_code == 2 and "--x is for --kind heatmap or pareto" in timeline.stderr
