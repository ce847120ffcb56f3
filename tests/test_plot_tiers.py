"""Figures of call graphs and replicas: the load at each tier, the amplification, each replica.

Each figure is a real matplotlib figure read back through its artists (stacked series, lines,
bars, markers, labels, shaded fault windows), against the document it was drawn from: a
document built by hand in the shapes of ``TierSection`` and ``ReplicaSection`` (so every value
is known), and a real run of a three-tier graph with a replica down, from its ``RunResult``
(whose fault windows come from the scenario) and from its document.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, cast

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle, StepPatch
from typer.testing import CliRunner

import retrysim
from retrysim import plots
from retrysim.cli.app import app
from retrysim.plots.replicas import NO_REPLICAS, hit_replicas
from retrysim.plots.tiers import NO_TIERS
from retrysim.results.document import ResultDocument
from retrysim.results.sections import FaultWindow, ReplicaSection

PNG = b"\x89PNG\r\n\x1a\n"
NAMES = ("gateway", "service", "database")


# --- a document built by hand ------------------------------------------------------------------


def _timeline(series: list[list[float]], goodput: list[float]) -> dict[str, Any]:
    labels = ["first try", "retry 1", "retry 2", "retry 3+"][: len(series)]
    return {
        "bin_width": 1.0,
        "labels": labels,
        "attempts_per_s": series,
        "goodput_per_s": goodput,
    }


def _tier(
    name: str,
    attempts: int,
    per_call: float | None,
    most: int | None,
    capacity: float | None,
    series: list[list[float]],
    goodput: list[float],
) -> dict[str, Any]:
    return {
        "name": name,
        "calls": attempts,
        "attempts": attempts,
        "attempts_per_call": per_call,
        "max_attempts_per_call": most,
        "success_rate": 0.9,
        "capacity": capacity,
        "peak_attempts_per_s": max(np.sum(series, axis=0)),
        "peak_over_capacity": None,
        "wasted_attempts": 0,
        "wasted_share": 0.0,
        "replicas": 3 if name == "database" else 1,
        "timeout": None,
        "propagates_deadline": False,
        "timeline": _timeline(series, goodput),
    }


def _replica(replica: int, attempts: int, failed: int, per_s: list[float]) -> dict[str, Any]:
    return {
        "tier": "database",
        "replica": replica,
        "attempts": attempts,
        "failed": failed,
        "failure_rate": failed / attempts,
        "attempts_per_s": per_s,
    }


def graph_document() -> ResultDocument:
    """Three tiers, 10 user calls/s for 6 s; the database's replica 2 is down for 0-3 s."""
    doc = {
        "scenario": "hand-graph",
        "profile": "documented",
        "calls": {"total": 60, "success_rate": 0.9},
        "timeline": _timeline([[10.0] * 6, [2.0, 2.0, 0, 0, 0, 0]], [8.0, 8.0, 10, 10, 10, 10]),
        "jitter_spread": {},
        "latency_quantiles": {},
        "load": {"capacity": None},
        "faults": [
            {
                "index": 0,
                "kind": "outage",
                "start": 0.0,
                "end": 3.0,
                "tier": "database",
                "replicas": [2],
            },
        ],
        "tiers": [
            _tier(
                "gateway", 64, 64 / 60, 3, None, [[10.0] * 6, [2.0, 2.0, 0, 0, 0, 0]], [10.0] * 6
            ),
            _tier(
                "service",
                90,
                1.5,
                9,
                None,
                [[12.0, 12.0, 10, 10, 10, 10], [4.0, 4.0, 1, 0, 0, 0], [2.0, 2.0, 0, 0, 0, 0]],
                [9.0, 9.0, 10, 10, 10, 10],
            ),
            _tier(
                "database",
                156,
                2.6,
                27,
                40.0,
                [[18.0, 18.0, 11, 10, 10, 10], [12.0, 12.0, 2, 0, 0, 0], [9.0, 9.0, 0, 0, 0, 0]],
                [26.0, 26.0, 12, 10, 10, 10],
            ),
        ],
        "replicas": [
            _replica(0, 60, 0, [13.0, 13.0, 5, 3, 3, 3]),
            _replica(1, 60, 2, [13.0, 13.0, 5, 4, 4, 4]),
            _replica(2, 36, 26, [13.0, 13.0, 3, 3, 3, 3]),
        ],
    }
    return cast("ResultDocument", doc)


def _data(doc: ResultDocument, key: str) -> list[dict[str, Any]]:
    return cast("list[dict[str, Any]]", cast("dict[str, Any]", doc)[key])


def _gid(artist: Any) -> str:
    return str(artist.get_gid() or "")


def _lines(ax: Axes, gid: str) -> list[Line2D]:
    return [line for line in ax.lines if _gid(line).startswith(gid)]


def _spans(ax: Axes) -> list[Rectangle]:
    return [p for p in ax.patches if _gid(p).startswith("fault-") and isinstance(p, Rectangle)]


def _legend(ax: Axes) -> list[str]:
    legend = ax.get_legend()
    assert legend is not None, "the axes has no legend"
    return [t.get_text() for t in legend.get_texts()]


def _series(ax: Axes, tier: str) -> list[StepPatch]:
    """A tier panel's stacked series, bottom first."""
    prefix = f"{tier}-attempts-"
    return [p for p in ax.patches if isinstance(p, StepPatch) and _gid(p).startswith(prefix)]


def _steps(line: Line2D) -> np.ndarray:
    """A step line's values per bin (the last point repeats the last bin's)."""
    return np.asarray(line.get_ydata(), dtype=np.float64)[:-1]


# --- the per-tier timeline ---------------------------------------------------------------------


def test_tier_timeline_draws_one_panel_per_tier_on_one_time_axis() -> None:
    doc = graph_document()
    fig = plots.tier_timeline(doc)
    assert isinstance(fig, Figure)
    axes = fig.axes
    assert len(axes) == 3
    for ax, tier in zip(axes, _data(doc, "tiers"), strict=True):
        assert ax.get_title(loc="left").startswith(f"{tier['name']}: {tier['attempts']:,} requests")
        assert axes[0].get_shared_x_axes().joined(axes[0], ax)
        series = _series(ax, tier["name"])
        assert [s.get_label() for s in series] == tier["timeline"]["labels"]
        # stacked: the top series' upper edge is the tier's total requests per second
        total = np.sum(tier["timeline"]["attempts_per_s"], axis=0)
        values, edges, _baseline = series[-1].get_data()
        np.testing.assert_allclose(values, total)
        assert edges[-1] == pytest.approx(len(total) * tier["timeline"]["bin_width"])
        (goodput,) = _lines(ax, "goodput")
        np.testing.assert_allclose(_steps(goodput), tier["timeline"]["goodput_per_s"])
        assert ax.get_ylabel() == "requests/s"
    assert "(at most 27)" in axes[2].get_title(loc="left")
    assert "2.6 per top-level call" in axes[2].get_title(loc="left")
    assert [ax.get_xlabel() for ax in axes] == ["", "", "virtual time (s)"]
    assert fig.get_suptitle().startswith("hand-graph: requests per second at each tier")


def test_tier_timeline_marks_capacity_and_faults_only_where_they_are() -> None:
    doc = graph_document()
    gateway, service, database = plots.tier_timeline(doc).axes
    assert not _lines(gateway, "capacity") and not _lines(service, "capacity")
    (capacity,) = _lines(database, "capacity")
    assert list(np.asarray(capacity.get_ydata())) == pytest.approx([40.0, 40.0])
    assert capacity.get_linestyle() == "--"
    assert not _spans(gateway) and not _spans(service)
    (span,) = _spans(database)
    assert (span.get_x(), span.get_x() + span.get_width()) == pytest.approx((0.0, 3.0))
    assert "fault: outage on replica 2" in _legend(database)
    assert any(text.startswith("capacity ≈ 40/s") for text in _legend(database))


def test_an_untagged_fault_window_is_the_top_tiers() -> None:
    doc = graph_document()
    window = cast("dict[str, Any]", doc["faults"][0])
    del window["tier"], window["replicas"]
    gateway, service, database = plots.tier_timeline(doc).axes
    assert len(_spans(gateway)) == 1 and not _spans(service) and not _spans(database)
    assert "fault: outage" in _legend(gateway)


def test_tier_timeline_draws_into_given_axes_one_per_tier() -> None:
    fig = Figure()
    axes = fig.subplots(3, 1)
    assert plots.tier_timeline(graph_document(), axes=list(axes)) is fig
    assert all(ax.patches for ax in axes)
    with pytest.raises(ValueError, match="3 tiers need 3 axes, not 2"):
        plots.tier_timeline(graph_document(), axes=list(axes[:2]))


# --- the amplification figure ------------------------------------------------------------------


def test_amplification_bars_are_the_documents_requests_per_call() -> None:
    doc = graph_document()
    (ax,) = plots.tier_amplification(doc).axes
    tiers = _data(doc, "tiers")
    bars = [p for p in ax.patches if isinstance(p, Rectangle) and _gid(p) == "per-call"]
    assert [b.get_height() for b in bars] == pytest.approx([t["attempts_per_call"] for t in tiers])
    assert [t.get_text() for t in ax.get_xticklabels()] == list(NAMES)
    labels = [t.get_text() for t in ax.texts if _gid(t) == "per-call-labels"]
    assert labels == ["1.07x", "1.5x", "2.6x"]
    (most,) = _lines(ax, "max-per-call")
    assert list(np.asarray(most.get_ydata())) == [3.0, 9.0, 27.0]
    assert list(np.asarray(most.get_xdata())) == [b.get_x() + b.get_width() / 2 for b in bars]
    marks = [t.get_text() for t in ax.texts if _gid(t) == "max-per-call-label"]
    assert marks == ["max 3", "max 9", "max 27"]
    assert ax.get_ylim()[1] > 27  # the worst case is in view, with its label
    assert ax.get_ylabel() == "requests per top-level call"
    assert ax.get_title() == "hand-graph: amplification down the call graph"


def test_unbounded_worst_cases_and_unreached_tiers_draw_nothing_false() -> None:
    doc = graph_document()
    tiers = _data(doc, "tiers")
    tiers[1]["max_attempts_per_call"] = None  # a stop that is not an attempt count
    tiers[2]["max_attempts_per_call"] = None
    tiers[2]["attempts_per_call"] = None
    (ax,) = plots.tier_amplification(doc).axes
    (most,) = _lines(ax, "max-per-call")
    assert list(np.asarray(most.get_ydata())) == [3.0]
    heights = [
        p.get_height() for p in ax.patches if isinstance(p, Rectangle) and _gid(p) == "per-call"
    ]
    assert np.isnan(heights[2]) and heights[:2] == pytest.approx([64 / 60, 1.5])
    labels = [t.get_text() for t in ax.texts if _gid(t) == "per-call-labels"]
    assert labels == ["1.07x", "1.5x", ""]


# --- the per-replica timeline ------------------------------------------------------------------


def test_replica_timeline_draws_a_line_per_replica_the_faulty_one_standing_out() -> None:
    doc = graph_document()
    fig = plots.replica_timeline(doc)
    (ax,) = fig.axes
    rows = _data(doc, "replicas")
    lines = _lines(ax, "replica-")
    assert [_gid(line) for line in lines] == ["replica-0", "replica-1", "replica-2"]
    for line, row in zip(lines, rows, strict=True):
        np.testing.assert_allclose(_steps(line), row["attempts_per_s"])
    calm, other, down = lines
    assert down.get_linewidth() > calm.get_linewidth() == other.get_linewidth()
    assert down.get_label() == "replica 2: 36 requests, 72.2% failed (fault)"
    assert calm.get_label() == "replica 0: 60 requests, 0% failed"
    (span,) = _spans(ax)
    assert (span.get_x(), span.get_width()) == pytest.approx((0.0, 3.0))
    assert ax.get_title(loc="left") == "database: 3 replicas"
    assert ax.get_xlabel() == "virtual time (s)"


def test_without_fault_windows_the_replica_failing_far_more_stands_out() -> None:
    doc = graph_document()
    cast("dict[str, Any]", doc)["faults"] = []
    rows = cast("list[ReplicaSection]", _data(doc, "replicas"))
    assert hit_replicas(rows, []) == {2}
    (ax,) = plots.replica_timeline(doc).axes
    widths = {_gid(line): line.get_linewidth() for line in _lines(ax, "replica-")}
    assert widths["replica-2"] > widths["replica-0"] == widths["replica-1"]
    labels = [str(line.get_label()) for line in _lines(ax, "replica-")]
    assert labels[2].endswith("failed (failing most)")  # seen in the figures, not told
    assert not any(label.endswith(")") for label in labels[:2])
    # a window naming no replica (every one) leaves it to the figures; a named one decides
    everywhere = cast("FaultWindow", {"index": 0, "kind": "outage", "start": 0, "end": 3})
    assert hit_replicas(rows, [everywhere]) == {2}
    named = cast("FaultWindow", {**everywhere, "replicas": [0, 1]})
    assert hit_replicas(rows, [named]) == {0, 1}


@given(
    st.lists(st.integers(1, 50), min_size=1, max_size=8),
    st.integers(1, 20),
    st.integers(0, 20),
)
def test_replicas_failing_alike_never_stand_out(loads: list[int], q: int, p: int) -> None:
    """A replica stands out only against the others: equal failure rates (any loads) single
    none out, whatever the rate."""
    p = min(p, q)
    rows = [
        cast("ReplicaSection", {"tier": None, "replica": i, "attempts": m * q, "failed": m * p,
                                "failure_rate": p / q})
        for i, m in enumerate(loads)
    ]  # fmt: skip
    assert hit_replicas(rows, []) == set()


@given(st.integers(2, 8), st.integers(1, 1000), st.integers(0, 7))
def test_the_one_replica_failing_everything_stands_out(n: int, load: int, which: int) -> None:
    """Equal loads, one replica failing every request and the others none: that one."""
    down = which % n
    rows = [
        cast("ReplicaSection", {"tier": None, "replica": i, "attempts": load,
                                "failed": load if i == down else 0,
                                "failure_rate": 1.0 if i == down else 0.0})
        for i in range(n)
    ]  # fmt: skip
    assert hit_replicas(rows, []) == {down}
    assert hit_replicas(rows[::-1], []) == {down}  # whatever the order of the rows


# --- refusals: documents without tiers or replicas ---------------------------------------------


def test_figures_of_tiers_refuse_a_run_without_them() -> None:
    doc = graph_document()
    flat = cast("dict[str, Any]", copy.deepcopy(doc))
    del flat["tiers"], flat["replicas"]
    for draw in (plots.tier_timeline, plots.tier_amplification):
        with pytest.raises(ValueError, match=r"^this run has no tiers: the scenario needs \["):
            draw(cast("ResultDocument", flat))
    with pytest.raises(ValueError) as caught:
        plots.replica_timeline(cast("ResultDocument", flat))
    assert str(caught.value) == NO_REPLICAS
    trimmed = cast("dict[str, Any]", copy.deepcopy(doc))
    del trimmed["tiers"][1]["timeline"]
    with pytest.raises(ValueError, match="no timeline for tier 'service'"):
        plots.tier_timeline(cast("ResultDocument", trimmed))
    plots.tier_amplification(cast("ResultDocument", trimmed))  # needs no timeline


# --- the run figure ----------------------------------------------------------------------------


def test_run_figure_adds_amplification_and_replicas_only_when_the_run_has_them() -> None:
    flat = retrysim.summarize(retrysim.simulate(retrysim.load_scenario("startup-race")))
    assert len(plots.run_figure(flat).axes) == 2  # a run without tiers: the figure it was
    graph = graph_document()
    rich = {**flat, "tiers": _data(graph, "tiers"), "replicas": _data(graph, "replicas")}
    fig = plots.run_figure(cast("ResultDocument", rich))
    assert len(fig.axes) == 4
    assert fig.axes[2].get_title().endswith(": amplification down the call graph")
    assert fig.axes[3].get_title(loc="left") == "database: 3 replicas"
    assert fig.axes[3].get_xlim() == fig.axes[0].get_xlim() == fig.axes[1].get_xlim()


# --- a real run of a call graph -----------------------------------------------------------------

GRAPH_TOML = """
name = "plot-graph"
duration = 12
seed = 7
[policy]
operation = "api"
max_attempts = 3
min_wait = 0.2
max_wait = 0.5
[clients]
count = 100
timeout = 5
arrival = { kind = "poisson", rate = 30 }
[tiers.gateway]
policy = { operation = "api", max_attempts = 3, min_wait = 0.1, max_wait = 0.2 }
service = { kind = "ideal", latency = 0.001 }
[[tiers.gateway.faults]]
kind = "flaky"
start = 8
end = 10
probability = 0.3
[tiers.service]
policy = { operation = "api", max_attempts = 3, min_wait = 0.1, max_wait = 0.2 }
service = { kind = "ideal", latency = 0.002 }
[tiers.database]
service = { kind = "queue", concurrency = 10, latency = 0.005, replicas = 3 }
[[tiers.database.faults]]
kind = "outage"
start = 2
end = 6
replicas = [2]
"""


@pytest.fixture(scope="module")
def graph_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("graph") / "plot-graph.toml"
    path.write_text(GRAPH_TOML, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def graph_run(graph_file: Path) -> retrysim.RunResult:
    """Three tiers, 3 attempts at each layer; the gateway flaky at 8-10 s, the database's
    replica 2 down at 2-6 s."""
    return retrysim.simulate(retrysim.load_scenario(graph_file))


def test_a_real_runs_tier_timeline_is_its_documents(graph_run: retrysim.RunResult) -> None:
    doc = retrysim.summarize(graph_run)
    tiers = _data(doc, "tiers")
    assert [t["name"] for t in tiers] == list(NAMES)
    axes = plots.tier_timeline(graph_run).axes  # the RunResult, summarised on the fly
    assert len(axes) == 3
    for ax, tier in zip(axes, tiers, strict=True):
        values, _edges, _baseline = _series(ax, tier["name"])[-1].get_data()
        np.testing.assert_allclose(values, np.sum(tier["timeline"]["attempts_per_s"], axis=0))
        assert sum(values) * tier["timeline"]["bin_width"] == pytest.approx(tier["attempts"])
    # the top tier's fault, from the run's own scenario, on the top tier's panel
    (span,) = _spans(axes[0])
    assert (span.get_x(), span.get_x() + span.get_width()) == pytest.approx((8.0, 10.0))
    assert "fault: flaky" in _legend(axes[0])
    assert not _spans(axes[1])
    # the database's capacity: its queue's, all replicas together
    (capacity,) = _lines(axes[2], "capacity")
    assert np.asarray(capacity.get_ydata())[0] == pytest.approx(tiers[2]["capacity"])


def test_a_real_runs_amplification_and_replicas(graph_run: retrysim.RunResult) -> None:
    doc = json.loads(json.dumps(retrysim.summarize(graph_run)))  # as result.json reads back
    (ax,) = plots.tier_amplification(doc).axes
    bars = [p for p in ax.patches if isinstance(p, Rectangle) and _gid(p) == "per-call"]
    tiers = _data(doc, "tiers")
    assert [b.get_height() for b in bars] == pytest.approx([t["attempts_per_call"] for t in tiers])
    assert min(b.get_height() for b in bars) > 1.0  # both faults drew retries
    (most,) = _lines(ax, "max-per-call")
    assert list(np.asarray(most.get_ydata())) == [3.0, 9.0, 27.0]
    (ax,) = plots.replica_timeline(graph_run).axes
    lines = _lines(ax, "replica-")
    for line, row in zip(lines, _data(doc, "replicas"), strict=True):
        assert _gid(line) == f"replica-{row['replica']}"
        np.testing.assert_allclose(_steps(line), row["attempts_per_s"])
    widths = [line.get_linewidth() for line in lines]
    assert widths[2] > widths[0] == widths[1]  # replica 2, the one down, stands out


# --- the command line --------------------------------------------------------------------------


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_plot_command_draws_the_three_kinds(tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    path.write_text(json.dumps(graph_document()), encoding="utf-8")
    for kind in ("tiers", "amplification", "replicas"):
        drawn = _invoke("plot", str(path), "--kind", kind)
        assert drawn.exit_code == 0, drawn.output
        assert (tmp_path / f"{kind}.png").read_bytes().startswith(PNG)


def test_plot_command_draws_a_real_graph_run(graph_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    ran = _invoke("run", str(graph_file), "--out", str(out), "--plot", str(tmp_path / "run.png"))
    assert ran.exit_code == 0, ran.output
    assert (tmp_path / "run.png").read_bytes().startswith(PNG)
    for kind in ("tiers", "amplification", "replicas"):
        drawn = _invoke("plot", str(out), "--kind", kind)
        assert drawn.exit_code == 0, drawn.output
        assert (out / f"{kind}.png").read_bytes().startswith(PNG)


def test_plot_command_refuses_a_run_without_tiers_in_one_line(tmp_path: Path) -> None:
    out = tmp_path / "o"
    assert _invoke("run", "startup-race", "--out", str(out), "--json").exit_code == 0
    path = out / "result.json"
    for kind, message in (
        ("tiers", NO_TIERS),
        ("amplification", NO_TIERS),
        ("replicas", NO_REPLICAS),
    ):
        result = _invoke("plot", str(path), "--kind", kind)
        assert result.exit_code == 2
        assert result.stderr == f"retrysim: error: {path}: {message}\n"
        assert not (out / f"{kind}.png").exists()
    assert NO_TIERS == "this run has no tiers: the scenario needs [tiers.NAME] tables"
