"""A tuning's Pareto plot: the third metric (load) colours every point and is weighed in the
front, so no front member is drawn as beaten, and the recommendation carries a star.

Rows and the saved tune document are made by hand, so which point is on the front in three
metrics and not in two is known without a simulation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from typer.testing import CliRunner

from retrysim import plots
from retrysim.cli.app import app
from retrysim.cli.plot_rows import read_rows, rows_figure


def row(label: str, success: float, p99: float, load: float) -> dict[str, Any]:
    return {"label": label, "success_rate": success, "p99_latency": p99, "amplification": load}


ROWS = [
    row("fast", 0.90, 1.0, 1.5),
    row("light", 0.80, 2.0, 1.0),  # beaten by "fast" on success and p99, not on load
    row("sure", 0.99, 4.0, 1.6),
    row("worse", 0.70, 3.0, 1.7),  # beaten by "fast" on all three
]


def offsets(ax: Any, gid: str) -> list[tuple[float, float]]:
    (collection,) = [c for c in ax.collections if c.get_gid() == gid]
    return [(float(x), float(y)) for x, y in np.asarray(collection.get_offsets())]


def test_the_front_in_three_metrics_keeps_what_two_would_beat() -> None:
    assert plots.pareto_front(ROWS) == [0, 2]  # success against p99 alone
    assert plots.pareto_front(ROWS, also=["amplification"]) == [0, 1, 2]


def test_load_colours_every_point_and_the_recommendation_has_a_star() -> None:
    fig = plots.pareto_plot(ROWS, colour="amplification", recommended=1)
    ax, bar = fig.axes
    assert sorted(offsets(ax, "pareto-front")) == [(1.0, 0.9), (2.0, 0.8), (4.0, 0.99)]
    assert offsets(ax, "pareto-others") == [(3.0, 0.7)]
    assert offsets(ax, "pareto-recommended") == [(2.0, 0.8)]
    # each marker's colour value is its load, on one scale shared by front and others
    (front,) = [c for c in ax.collections if c.get_gid() == "pareto-front"]
    (others,) = [c for c in ax.collections if c.get_gid() == "pareto-others"]
    loads = np.asarray(front.get_array())
    by_x = dict(zip(np.asarray(front.get_offsets())[:, 0], loads, strict=True))
    assert by_x == {1.0: 1.5, 2.0: 1.0, 4.0: 1.6}
    assert np.asarray(others.get_array()).tolist() == [1.7]
    assert front.norm is others.norm and (front.norm.vmin, front.norm.vmax) == (1.0, 1.7)
    assert front.get_cmap().name == others.get_cmap().name == plots.pareto.COLOUR_MAP
    assert bar.get_gid() == "pareto-colour-bar"
    assert bar.get_ylabel() == "load amplification (attempts per call, lower is better)"
    legend = ax.get_legend()
    assert legend is not None
    assert [t.get_text() for t in legend.get_texts()] == [
        "beaten on all three (1)",
        "best trade-offs (3)",
        "recommended: light",
    ]
    assert not [line for line in ax.lines if line.get_gid() == "pareto-line"]  # no 2-D line


def test_a_recommendation_off_the_front_is_starred_and_labelled() -> None:
    fig = plots.pareto_plot(ROWS, colour="amplification", recommended=3)
    ax = fig.axes[0]
    assert offsets(ax, "pareto-recommended") == [(3.0, 0.7)]
    labels = {t.get_text() for t in ax.texts if str(t.get_gid()).startswith("pareto-label")}
    assert labels == {"fast", "light", "sure", "worse"}


def tune_json(tmp_path: Path) -> Path:
    """A saved tuning with one group: its front, and a recommendation that is on it."""

    def candidate(label: str, success: float, p99: float, load: float) -> dict[str, Any]:
        def fig(value: float) -> dict[str, Any]:
            return {"mean": value, "ci95": None}

        return {
            "settings": {"policy.max_attempts": len(label)},
            "label": label,
            "figures": {
                "s": {
                    "success_rate": fig(success),
                    "p99_latency": fig(p99),
                    "amplification": fig(load),
                }
            },
        }

    front = [candidate(r["label"], r["success_rate"], r["p99_latency"], r["amplification"])
             for r in ROWS[:3]]  # fmt: skip
    doc = {
        "seeds": 2,
        "pareto_metrics": ["success_rate", "p99_latency", "amplification"],
        "groups": [
            {"operations": ["worker"], "scenarios": ["s"], "pareto": front, "best": front[1]}
        ],
    }
    out = tmp_path / "tuned"
    out.mkdir()
    (out / "tune.json").write_text(json.dumps(doc), encoding="utf-8")
    return out


def test_plot_of_a_saved_tuning_colours_by_load_and_stars_the_recommendation(
    tmp_path: Path,
) -> None:
    out = tune_json(tmp_path)
    fig = rows_figure("pareto", read_rows(out), None, None, None)
    ax, bar = fig.axes
    assert offsets(ax, "pareto-recommended") == [(2.0, 0.8)]
    assert len(offsets(ax, "pareto-front")) == 3 and not [
        c for c in ax.collections if c.get_gid() == "pareto-others"
    ]  # "light" is on the front: it carries the lightest load
    assert bar.get_gid() == "pareto-colour-bar"
    # with load across, the third metric is p99 latency
    fig = rows_figure("pareto", read_rows(out), None, "amplification", None)
    assert fig.axes[1].get_ylabel().startswith("p99 latency")
    result = CliRunner().invoke(app, ["plot", str(out), "--kind", "pareto"])
    assert result.exit_code == 0, result.output
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"
