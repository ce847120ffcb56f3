"""Figures say what they show: axis units, shares, traffic spikes, which way is better.

Each test draws a real matplotlib figure and reads it back through its artists (labels, tick
labels, legend texts, patches), as tests/test_plots.py does: a figure that misstates the size
of a spike, rounds 0.25% to 0% or hides the traffic spike that caused a storm fails here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.text import Annotation
from typer.testing import CliRunner

import retrysim
from retrysim import plots
from retrysim.cli.app import app
from retrysim.results.document import ResultDocument
from retrysim.retry import OPERATIONS, RetrySettings
from retrysim.runs.sweep import Variant, VariantResult, compare

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = 300
DEFAULTS = RetrySettings.defaults()


@pytest.fixture(scope="module")
def herd_runs() -> dict[str, retrysim.RunResult]:
    scenario = retrysim.load_scenario("thundering-herd").with_overrides({"clients.count": CLIENTS})
    return {
        p: retrysim.simulate(scenario.with_overrides({"policy.profile": p}), settings=DEFAULTS)
        for p in ("bindu", "documented")
    }


@pytest.fixture(scope="module")
def storm_doc() -> ResultDocument:
    """retry-storm cut to 40 s: its 20-25 s spike to 120 calls/s, and the storm after it."""
    scenario = retrysim.load_scenario("retry-storm").with_overrides({"duration": 40})
    return retrysim.summarize(retrysim.simulate(scenario))


@pytest.fixture(scope="module")
def lock_variants() -> list[VariantResult]:
    scenario = retrysim.load_scenario("lock-contention").with_overrides({"clients.count": 60})
    variants = [Variant(p, {"policy.profile": p}) for p in ("documented", "bindu")]
    return compare(scenario, variants, seeds=[1, 2])


def _legend_texts(ax: Axes) -> list[str]:
    legend = ax.get_legend()
    assert legend is not None, "the axes has no legend"
    return [t.get_text() for t in legend.get_texts()]


def _ticks(ax: Axes, axis: str) -> list[str]:
    ax.figure.canvas.draw()  # tick labels are formatted when drawn
    labels = ax.get_yticklabels() if axis == "y" else ax.get_xticklabels()
    return [t.get_text() for t in labels if t.get_text()]


def _tick_value(text: str) -> float:
    return float(text.replace(",", "").replace("\N{MINUS SIGN}", "-").rstrip("%sx"))


# --- jitter spread: what the y axis counts, and shares that keep their digits -----------------


def test_spread_axis_counts_retries_per_100ms_bin_not_a_tenfold_rate(herd_runs) -> None:
    fig = plots.jitter_spread(herd_runs)
    bindu_ax = fig.axes[0]
    assert bindu_ax.get_ylabel() == "retries started per 100 ms bin"
    # the spike holds one retry per worker; the axis must not read ten times that
    top = max(_tick_value(t) for t in _ticks(bindu_ax, "y"))
    assert CLIENTS <= top < 2 * CLIENTS
    annotation = [t.get_text() for t in bindu_ax.texts]
    assert any(f"{CLIENTS:,} retries in [1, 1.1) s" in text for text in annotation), annotation


def test_spread_binned_differently_is_a_rate_that_names_its_bins(herd_runs) -> None:
    doc = retrysim.summarize(herd_runs["documented"])
    fig = plots.jitter_spread({"bindu": herd_runs["bindu"], "documented": doc})
    width = doc["jitter_spread"]["edges"][1] - doc["jitter_spread"]["edges"][0]
    label = fig.axes[0].get_ylabel()
    assert label.startswith("retries started/s (bins of ")
    assert "100 ms" in label and f"{width * 1000:.3g} ms" in label


def test_spread_legend_keeps_a_small_share_visible(herd_runs) -> None:
    doc = retrysim.summarize(herd_runs["documented"])
    doc["jitter_spread"]["peak_share_100ms"] = 0.0025
    text = _legend_texts(plots.jitter_spread(doc).axes[0])[0]
    shown = re.search(r"holds ([\d.]+)% of retries", text)
    assert shown is not None, text
    assert float(shown.group(1)) == pytest.approx(0.25, abs=0.005)


# --- traffic steps on the timeline ------------------------------------------------------------


def test_timeline_hatches_the_traffic_spike_apart_from_faults(storm_doc) -> None:
    assert storm_doc["arrival_windows"] == [
        {"start": 20.0, "end": 25.0, "rate": 120.0, "base_rate": 40.0}
    ]
    ax = plots.herd_timeline(storm_doc).axes[0]
    (band,) = [p for p in ax.patches if (p.get_gid() or "").startswith("arrival-")]
    assert isinstance(band, Rectangle)
    assert (band.get_x(), band.get_x() + band.get_width()) == pytest.approx((20.0, 25.0))
    assert band.get_hatch() and to_rgba(band.get_facecolor())[3] == 0  # hatched outline, not a tint
    legend = _legend_texts(ax)
    assert "more traffic: 120 calls/s (else 40/s)" in legend
    assert not any(text.startswith("fault") for text in legend)  # retry-storm has no fault


def test_timeline_marks_spikes_and_faults_each_in_its_own_legend_entry(storm_doc) -> None:
    window = {"index": 0, "kind": "outage", "start": 21.0, "end": 23.0}
    doc = cast(ResultDocument, {**storm_doc, "faults": [window]})
    ax = plots.herd_timeline(doc).axes[0]
    legend = _legend_texts(ax)
    assert "fault: outage" in legend and "more traffic: 120 calls/s (else 40/s)" in legend
    fault = next(p for p in ax.patches if p.get_gid() == "fault-0")
    band = next(p for p in ax.patches if p.get_gid() == "arrival-0")
    assert fault.get_hatch() != band.get_hatch()


def test_timeline_of_a_document_saved_before_arrival_windows_still_draws(storm_doc) -> None:
    old = cast(ResultDocument, {k: v for k, v in storm_doc.items() if k != "arrival_windows"})
    ax = plots.herd_timeline(old).axes[0]
    assert not [p for p in ax.patches if (p.get_gid() or "").startswith("arrival-")]


# --- compare panels read like the table -------------------------------------------------------


def test_compare_panels_format_values_like_the_table_and_say_which_way_is_better(
    lock_variants,
) -> None:
    from retrysim.results import metric_table

    names = ["success_rate", "p99_latency", "amplification", "peak_attempts_per_s"]
    fig = plots.compare_metrics(lock_variants, names)
    for ax, name in zip(fig.axes, names, strict=True):
        about = metric_table.get(name)
        assert ax.get_xlabel() == f"{about.unit} ({about.better} is better)"
        bars = [c for c in ax.containers if getattr(c, "patches", None)]
        assert bars
        expected = [about.show(vr.mean(name)) for vr in lock_variants]
        shown = [t.get_text() for t in ax.texts]
        assert shown == expected
    success, p99, amplification, _ = fig.axes
    assert all(t.endswith("%") for t in _ticks(success, "x"))
    assert "0%" in _ticks(success, "x")
    assert all(t.endswith("s") for t in _ticks(p99, "x"))
    assert all(t.endswith("x") for t in _ticks(amplification, "x"))
    # a share of 1 is "100.00%" on its bar and "100%" on its axis, never a bare 1.0
    assert any(t.get_text().endswith("%") for t in success.texts)


def test_compare_panel_of_a_metric_with_no_better_direction_has_no_note() -> None:
    from retrysim.plots.compare import _axis_label
    from retrysim.results import metric_table

    neither = metric_table.Metric("x", lambda d: None, "x", "x", "things", "count", "neither")
    assert _axis_label(neither) == "things"


# --- settings --plot: the four operations, every --profile overlaid ----------------------------


def _capture(monkeypatch: pytest.MonkeyPatch) -> list[Figure]:
    saved: list[Figure] = []
    monkeypatch.setattr(plots.save, "save_figure", lambda fig, path: saved.append(fig))
    return saved


def _no_retry_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.startswith("RETRY__"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # and no .env


def _legends(fig: Figure) -> list[list[str]]:
    return [_legend_texts(ax) for ax in fig.axes]


def test_settings_plot_overlays_every_listed_profile_per_operation(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _no_retry_env(monkeypatch, tmp_path)
    saved = _capture(monkeypatch)
    result = CliRunner().invoke(
        app, ["settings", "--profile", "bindu,documented", "--plot", "s.png"]
    )
    assert result.exit_code == 0, result.output
    (fig,) = saved
    assert [ax.get_title() for ax in fig.axes] == [
        f"Backoff schedule: {op} (1,000 sampled calls)" for op in OPERATIONS
    ]
    for texts in _legends(fig):
        assert [t.split(" ")[0] for t in texts] == ["bindu", "documented"]
    suptitle = fig.get_suptitle()
    assert "profiles bindu, documented" in suptitle
    assert result.stdout.count("Profile bindu") == result.stdout.count("Profile documented") == 1


def test_settings_json_refuses_several_profiles_in_one_line() -> None:
    result = CliRunner().invoke(app, ["settings", "--profile", "bindu,documented", "--json"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "retrysim: error: --json prints one profile's document; --profile names 2: "
        "bindu, documented"
    ]


# --- the README's pictures are what the quoted commands draw ----------------------------------


def _docs_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "make_docs_figures", ROOT / "scripts" / "make_docs_figures.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_backoff_picture_is_exactly_what_its_settings_command_draws(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    script = _docs_script()
    picture = plots.settings_figure(script.DEFAULTS, script.SCHEDULE_PROFILES)
    _no_retry_env(monkeypatch, tmp_path)
    saved = _capture(monkeypatch)
    command = script.COMMANDS["backoff-schedule.png"].split()
    assert command[:2] == ["retrysim", "settings"]
    result = CliRunner().invoke(app, command[1:])
    assert result.exit_code == 0, result.output
    (drawn,) = saved
    assert drawn.get_suptitle() == picture.get_suptitle()
    assert [a.get_title() for a in drawn.axes] == [a.get_title() for a in picture.axes]
    assert _legends(drawn) == _legends(picture)
    for mine, theirs in zip(drawn.axes, picture.axes, strict=True):  # same sampled boxes
        np.testing.assert_allclose(
            [p.get_height() for p in mine.patches if isinstance(p, Rectangle)],
            [p.get_height() for p in theirs.patches if isinstance(p, Rectangle)],
        )


@pytest.mark.parametrize(("picture", "kind"), [("herd-timeline.png", "timeline"),
                                               ("jitter-spread.png", "spread")])  # fmt: skip
def test_herd_pictures_panels_are_what_retrysim_plot_draws(
    herd_runs, picture: str, kind: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    script = _docs_script()
    assert script.COMMANDS[picture].split()[:2] == ["retrysim", "plot"]
    assert f"--kind {kind}" in script.COMMANDS[picture]
    docs_figure: Figure = (
        script.herd_timeline_figure(herd_runs)
        if kind == "timeline"
        else plots.jitter_spread(herd_runs)
    )
    result_file = tmp_path / "result.json"
    result_file.write_text(json.dumps(retrysim.summarize(herd_runs["bindu"])), encoding="utf-8")
    saved = _capture(monkeypatch)
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: saved.append(fig))
    result = CliRunner().invoke(app, ["plot", str(result_file), "--kind", kind])
    assert result.exit_code == 0, result.output
    (cli_ax,) = saved[0].axes
    panel = docs_figure.axes[0]
    assert cli_ax.get_title() == panel.get_title()  # the same kind of panel, same run
    assert cli_ax.get_xlabel() == (panel.get_xlabel() or docs_figure.axes[-1].get_xlabel())
    gids = {(p.get_gid() or "").split("-")[0] for p in cli_ax.patches}
    assert gids == {(p.get_gid() or "").split("-")[0] for p in panel.patches}


@pytest.mark.parametrize("name", ["redis-blip", "thundering-herd"])
def test_spread_peak_note_and_legend_never_cover_each_other(name: str) -> None:
    """The busiest bin's note and the legend once overlapped (the note read '[23.79, 2')."""
    scenario = retrysim.load_scenario(name).with_overrides({"clients.count": CLIENTS})
    fig = plots.jitter_spread(retrysim.simulate(scenario, settings=DEFAULTS))
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)  # lay the figure out as a PNG would be
    canvas.draw()
    renderer = canvas.get_renderer()
    checked = 0
    for ax in fig.axes:
        legend = ax.get_legend()
        notes = [text for text in ax.texts if "retries in" in text.get_text()]
        if legend is None or not notes:
            continue
        box = legend.get_window_extent(renderer)
        for note in notes:
            assert not box.overlaps(note.get_window_extent(renderer)), note.get_text()
            checked += 1
    assert checked, "no panel had both a legend and a peak note: the test checked nothing"


# --- the timeline marks a fleet that never recovered -------------------------------------------


def _not_recovered(ax: Axes) -> list[Any]:
    """The non-recovery mark's artists: the bracket, its label and the reference level."""
    artists = [*ax.texts, *ax.collections, *ax.lines]
    return [a for a in artists if (a.get_gid() or "") in _MARK]


_MARK = ("not-recovered", "not-recovered-label", "goodput-reference")


def test_timeline_brackets_the_window_goodput_did_not_recover_over(storm_doc) -> None:
    from retrysim.plots.timeline import _BRACKET_Y
    from retrysim.results.diagnose import METASTABLE_RATIO
    from retrysim.results.metric_table import show

    found = storm_doc["recovery"]
    assert found["ratio"] < METASTABLE_RATIO  # the storm: goodput stays near 0 after the spike
    ax = plots.herd_timeline(storm_doc).axes[0]
    by_gid = {a.get_gid(): a for a in _not_recovered(ax)}
    assert set(by_gid) == set(_MARK)
    bracket, label = by_gid["not-recovered"], by_gid["not-recovered-label"]
    # from recovery's `from` to `until`, the window the metastable diagnosis quotes
    assert (bracket.xy[0], bracket.xyann[0]) == (found["from"], found["until"]) == (35.0, 40.0)
    share = show("goodput_recovery", found["ratio"])
    assert label.get_text() == f"goodput not recovered ({share} of before)"
    assert label.get_text() == "goodput not recovered (0.00% of before)"
    # the goodput before, dotted across the same window, and named in the legend
    (segment,) = by_gid["goodput-reference"].get_segments()
    reference = found["goodput_reference"]
    np.testing.assert_allclose(segment, [[35.0, reference], [40.0, reference]])
    assert f"goodput before the disturbance: {reference:.3g}/s" in _legend_texts(ax)
    # above every bar and line: the mark covers nothing it marks
    top = ax.get_ylim()[1]
    stacked = np.sum(storm_doc["timeline"]["attempts_per_s"], axis=0)
    assert max(float(stacked.max()), reference) < 0.9 * _BRACKET_Y * top
    # measured against the offered rate (too early a disturbance for a before): says so
    offered = cast(ResultDocument, {**storm_doc, "recovery": {**found, "reference": "offered"}})
    ax = plots.herd_timeline(offered).axes[0]
    (label,) = [t for t in ax.texts if t.get_gid() == "not-recovered-label"]
    assert label.get_text() == f"goodput not recovered ({share} of offered)"
    assert f"calls offered: {reference:.3g}/s" in _legend_texts(ax)


def test_run_plot_of_retry_storm_shows_the_mark(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`retrysim run retry-storm --plot` (the whole bundled run) draws it on the timeline."""
    _no_retry_env(monkeypatch, tmp_path)
    saved = _capture(monkeypatch)
    result = CliRunner().invoke(app, ["run", "retry-storm", "--plot", "storm.png", "--quiet"])
    assert result.exit_code == 0, result.output
    (fig,) = saved
    timeline = fig.axes[0]
    (label,) = [t for t in timeline.texts if t.get_gid() == "not-recovered-label"]
    assert label.get_text() == "goodput not recovered (0.00% of before)"
    (bracket,) = [t for t in timeline.texts if t.get_gid() == "not-recovered"]
    assert isinstance(bracket, Annotation)
    assert (bracket.xy[0], bracket.xyann[0]) == (35.0, 120.0)  # t=35 s to the end of arrivals
    assert not any(_not_recovered(ax) for ax in fig.axes[1:])  # the spread panel: unmarked


def test_timeline_of_a_fleet_that_recovered_marks_nothing(storm_doc, herd_runs) -> None:
    from retrysim.results.diagnose import METASTABLE_RATIO

    # retry-storm without retries recovers at once after its spike
    scenario = retrysim.load_scenario("retry-storm").with_overrides(
        {"duration": 40, "policy.max_attempts": 1}
    )
    recovered = retrysim.summarize(retrysim.simulate(scenario))
    assert recovered["recovery"] is not None
    assert recovered["recovery"]["ratio"] >= METASTABLE_RATIO
    ax = plots.herd_timeline(recovered).axes[0]
    assert _not_recovered(ax) == []
    assert not any("recovered" in t for t in _legend_texts(ax))
    # recovery that cannot be judged (a burst of calls: no steady load to come back to)
    herd = retrysim.summarize(herd_runs["documented"])
    assert herd["recovery"] is None
    assert _not_recovered(plots.herd_timeline(herd).axes[0]) == []
    # nor a document saved without the key
    old = cast(ResultDocument, {k: v for k, v in storm_doc.items() if k != "recovery"})
    assert _not_recovered(plots.herd_timeline(old).axes[0]) == []


def test_the_mark_clears_the_breaker_share_axis_which_stays_a_share(storm_doc) -> None:
    """Per-client breakers put a 0-100% axis on the right; its 100% would cross the label."""
    from retrysim.plots.timeline import _BRACKET_Y

    scenario = retrysim.load_scenario("retry-storm").with_overrides(
        {"duration": 40, "policy.breaker.enabled": True}
    )
    doc = retrysim.summarize(retrysim.simulate(scenario))
    recovery = doc["recovery"]
    assert recovery is not None and recovery["ratio"] < 0.5
    assert doc["guards"]["breaker"]["scope"] == "client"
    fig = plots.herd_timeline(doc)
    ax, twin = fig.axes
    assert _not_recovered(ax)
    high = twin.get_ylim()[1]
    assert _BRACKET_Y * high > 1.0  # 100% of clients sits below the bracket
    assert max(_tick_value(t) for t in _ticks(twin, "y")) <= 100  # no 120% of clients
