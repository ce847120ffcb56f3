"""retrysim.plots: figures are checked by what they show, not only by the files they write.

Every figure is inspected through its artists: stacked series, capacity line, shaded fault
windows against the scenario's faults, where the jitter spike sits, CDF lines, bars and error
bars, the heat map's grid, and sampled waits against the policy's documented ranges. Runs use
small scenarios (a few hundred clients) so the module stays fast.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import matplotlib

matplotlib.use("Agg")  # headless, and independent of whatever backend the machine prefers

import numpy as np
import pytest
import tenacity.wait
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.container import BarContainer, ErrorbarContainer
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle, StepPatch

import retrysim
import retrysim.retry.waits
from retrysim import plots
from retrysim.names import Operation
from retrysim.results.document import ResultDocument
from retrysim.retry import OPERATIONS, PROFILES, RetrySettings, build_policy
from retrysim.runs.sweep import Variant, VariantResult, compare, grid_variants
from retrysim.sim.clock import current_stream

CLIENTS = 300
DEFAULTS = RetrySettings.defaults()  # the documented defaults, whatever the environment


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_pyplot_figures_left() -> Iterator[None]:
    """After every test: if anything imported pyplot, it holds no open figures."""
    yield
    if "matplotlib.pyplot" in sys.modules:
        import matplotlib.pyplot as plt

        assert plt.get_fignums() == []


def _herd(profile: str) -> retrysim.Scenario:
    scenario = retrysim.load_scenario("thundering-herd")
    return scenario.with_overrides({"clients.count": CLIENTS, "policy.profile": profile})


@pytest.fixture(scope="module")
def herd_runs() -> dict[str, retrysim.RunResult]:
    """thundering-herd with 300 workers, one run per profile (same seed)."""
    return {p: retrysim.simulate(_herd(p)) for p in ("bindu", "documented", "full_jitter")}


@pytest.fixture(scope="module")
def herd_docs(herd_runs: dict[str, retrysim.RunResult]) -> dict[str, ResultDocument]:
    return {p: retrysim.summarize(r) for p, r in herd_runs.items()}


@pytest.fixture(scope="module")
def two_faults() -> retrysim.Scenario:
    """A closed window, an open-ended one and a second of the same kind."""
    scenario = retrysim.load_scenario("thundering-herd").with_overrides(
        {
            "clients.count": 200,
            "faults": [
                {"kind": "outage", "start": 0.0, "end": 3.0},
                {"kind": "flaky", "start": 6.0, "end": 8.5, "probability": 0.5},
                {"kind": "flaky", "start": 12.0, "probability": 0.2},
            ],
        }
    )
    assert scenario.faults[2].end is None
    return scenario


@pytest.fixture(scope="module")
def startup_sweep() -> list[VariantResult]:
    """startup-race (40 instances) over a 3 x 2 grid, 3 seeds each."""
    scenario = retrysim.load_scenario("startup-race")
    grid = grid_variants([("policy.max_attempts", [2, 4, 6]), ("policy.min_wait", [0.5, 2.0])])
    return compare(scenario, grid, seeds=[1, 2, 3])


@pytest.fixture(scope="module")
def lock_profiles() -> list[VariantResult]:
    """lock-contention, three profiles, 3 seeds each (common random numbers)."""
    scenario = retrysim.load_scenario("lock-contention").with_overrides({"clients.count": 100})
    variants = [Variant(p, {"policy.profile": p}) for p in ("documented", "full_jitter", "bindu")]
    return compare(scenario, variants, seeds=[1, 2, 3])


def _spans(fig_or_ax: Any) -> dict[str, tuple[float, float]]:
    """Fault spans drawn by axvspan: gid -> (x start, x end)."""
    axes = fig_or_ax.axes if isinstance(fig_or_ax, Figure) else [fig_or_ax]
    spans = {}
    for ax in axes:
        for patch in ax.patches:
            gid = patch.get_gid() or ""
            if gid.startswith("fault-"):
                assert isinstance(patch, Rectangle)
                spans[gid] = (patch.get_x(), patch.get_x() + patch.get_width())
    return spans


def _patches(ax: Any, prefix: str) -> list[Any]:
    return [p for p in ax.patches if (p.get_gid() or "").startswith(prefix)]


def _lines(ax: Any, prefix: str) -> list[Line2D]:
    return [ln for ln in ax.lines if (ln.get_gid() or "").startswith(prefix)]


def _legend(ax: Axes) -> Legend:
    legend = ax.get_legend()
    assert legend is not None, "the axes has no legend"
    return legend


def _label(artist: Line2D) -> str:
    label = artist.get_label()
    assert isinstance(label, str)
    return label


# --- herd timeline ---------------------------------------------------------------------------


def test_herd_timeline_stacks_one_series_per_attempt_number(herd_docs) -> None:
    doc = herd_docs["documented"]
    fig = plots.herd_timeline(doc)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    series = _patches(ax, "attempts-")
    # 3 attempts: first try, retry 1, retry 2; the empty "retry 3+" series is left out
    assert [s.get_label() for s in series] == ["first try", "retry 1", "retry 2"]
    assert all(isinstance(s, StepPatch) and s.get_fill() for s in series)
    # stacked: the top series' upper edge is the total of all attempt series per bin
    total = np.sum(doc["timeline"]["attempts_per_s"], axis=0)
    top = series[-1].get_data()
    np.testing.assert_allclose(top.values, total)
    assert top.edges[-1] == pytest.approx(len(total) * doc["timeline"]["bin_width"])
    # each series sits on the one below it
    np.testing.assert_allclose(series[1].get_data().baseline, series[0].get_data().values)


def test_herd_timeline_draws_capacity_goodput_and_labels(herd_docs) -> None:
    doc = herd_docs["documented"]
    (ax,) = plots.herd_timeline(doc).axes
    (capacity,) = _lines(ax, "capacity")
    assert list(np.asarray(capacity.get_ydata())) == pytest.approx([doc["load"]["capacity"]] * 2)
    (goodput,) = _lines(ax, "goodput")
    goodput_y = np.asarray(goodput.get_ydata())
    np.testing.assert_allclose(goodput_y[:-1], doc["timeline"]["goodput_per_s"])
    assert max(goodput_y) > 0  # documented recovers after the outage: some goodput
    assert ax.get_xlabel() == "virtual time (s)"
    assert "per second" in ax.get_ylabel()
    assert "thundering-herd" in ax.get_title()
    legend = [t.get_text() for t in _legend(ax).get_texts()]
    assert "fault: outage" in legend
    assert any(t.startswith("server capacity") for t in legend)


def test_capacity_far_above_a_light_load_goes_off_the_scale(herd_docs) -> None:
    """300 workers against ~6,000 requests/s: the load stays readable, the legend says why."""
    doc = herd_docs["documented"]
    (ax,) = plots.herd_timeline(doc).axes
    peak = np.sum(doc["timeline"]["attempts_per_s"], axis=0).max()
    assert doc["load"]["capacity"] > 2.5 * peak
    assert peak <= ax.get_ylim()[1] < doc["load"]["capacity"]
    (capacity,) = _lines(ax, "capacity")
    assert "off the scale" in _label(capacity)
    big = retrysim.summarize(
        retrysim.simulate(_herd("bindu").with_overrides({"clients.count": 3_000}))
    )
    (ax,) = plots.herd_timeline(big).axes
    big_capacity = big["load"]["capacity"]
    assert big_capacity is not None and ax.get_ylim()[1] > big_capacity  # a real herd: in view
    assert "off the scale" not in _label(_lines(ax, "capacity")[0])


def test_herd_timeline_shades_exactly_the_scenario_faults(herd_docs) -> None:
    doc = herd_docs["bindu"]
    fig = plots.herd_timeline(doc)
    # thundering-herd: Redis is down from 0 to 20 s. The run ends before 20 s (every bindu
    # call gives up during the outage), and the span still covers the whole fault.
    assert doc["virtual_time"] < 20
    spans = _spans(fig)
    assert set(spans) == {"fault-0"}
    assert spans["fault-0"] == pytest.approx((0.0, 20.0))
    assert fig.axes[0].get_xlim()[1] == pytest.approx(20.0)


def test_open_ended_fault_windows_run_to_the_end(two_faults) -> None:
    result = retrysim.simulate(two_faults)
    fig = plots.herd_timeline(result)  # a RunResult is summarised on the fly
    ax = fig.axes[0]
    spans = _spans(fig)
    assert set(spans) == {"fault-0", "fault-1", "fault-2"}
    for fault, gid in zip(two_faults.faults, ("fault-0", "fault-1", "fault-2"), strict=True):
        start, end = spans[gid]
        assert start == pytest.approx(fault.start)
        expected_end = ax.get_xlim()[1] if fault.end is None else fault.end
        assert end == pytest.approx(expected_end)
    assert spans["fault-2"][1] > 12.0
    # one legend entry per kind of fault, not per window, and one colour per kind
    legend = [t.get_text() for t in _legend(ax).get_texts()]
    assert legend.count("fault: flaky") == 1
    colours = {
        gid: p.get_facecolor() for p in ax.patches if (gid := p.get_gid() or "")[:6] == "fault-"
    }
    assert colours["fault-1"] == colours["fault-2"] != colours["fault-0"]


def test_timelines_sharing_a_time_axis_keep_the_longest_run(herd_docs) -> None:
    fig = Figure()
    top, bottom = fig.subplots(2, 1, sharex=True)
    plots.herd_timeline(herd_docs["documented"], ax=top)  # runs past the outage, to ~25 s
    plots.herd_timeline(herd_docs["bindu"], ax=bottom)  # every call gives up before 20 s
    longest = len(herd_docs["documented"]["timeline"]["goodput_per_s"])
    assert longest > 20
    assert bottom.get_xlim() == top.get_xlim() == (0.0, pytest.approx(longest))


def test_herd_timeline_accepts_a_run_result_and_a_loaded_json_document(
    herd_runs, herd_docs
) -> None:
    from_run = plots.herd_timeline(herd_runs["bindu"]).axes[0]
    loaded = json.loads(json.dumps(herd_docs["bindu"]))  # what result.json gives back
    from_json = plots.herd_timeline(loaded).axes[0]
    a, b = _patches(from_run, "attempts-"), _patches(from_json, "attempts-")
    assert len(a) == len(b) == 3
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x.get_data().values, y.get_data().values)


def test_herd_timeline_draws_into_a_given_axes() -> None:
    doc = retrysim.summarize(retrysim.simulate(_herd("bindu")))
    fig = Figure()
    left, right = fig.subplots(1, 2)
    assert plots.herd_timeline(doc, ax=right) is fig
    assert not left.patches
    assert _patches(right, "attempts-")


def test_herd_timeline_explains_a_document_without_timeline(lock_profiles) -> None:
    with pytest.raises(ValueError, match="timeline"):
        plots.herd_timeline(lock_profiles[0].documents[0])


# --- jitter spread ---------------------------------------------------------------------------


def _tallest(patch: StepPatch) -> tuple[float, float, float]:
    values, edges, _ = patch.get_data()  # StairData(values, edges, baseline)
    i = int(np.argmax(values))
    return float(edges[i]), float(edges[i + 1]), float(values[i])


def test_bindu_spike_is_where_the_first_retry_lands(herd_docs) -> None:
    """All workers fail at t=0 and bindu's first wait is exactly 1.0 s: the spike holds t=1.0."""
    fig = plots.jitter_spread(herd_docs["bindu"])
    (ax,) = fig.axes
    (patch,) = _patches(ax, "spread-")
    lo, hi, _ = _tallest(patch)
    assert lo <= 1.0 < hi
    # the document's 60 bins over the run: the axis counts per bin and names the bin's width
    width = (
        herd_docs["bindu"]["jitter_spread"]["edges"][1]
        - herd_docs["bindu"]["jitter_spread"]["edges"][0]
    )
    assert ax.get_ylabel() == f"retries started per {width * 1000:.3g} ms bin"
    assert "(s)" in ax.get_xlabel()


def test_records_resolve_the_spike_to_one_100ms_bin(herd_runs) -> None:
    fig = plots.jitter_spread({p: herd_runs[p] for p in ("bindu", "documented")})
    bindu_ax, documented_ax = fig.axes
    lo, hi, count = _tallest(_patches(bindu_ax, "spread-bindu")[0])
    assert (lo, hi) == pytest.approx((1.0, 1.1))
    assert count == pytest.approx(CLIENTS)  # every worker's first retry, at once
    assert bindu_ax.get_ylabel() == "retries started per 100 ms bin"
    # documented jitter spreads the same first retries over [1, 2): no bin comes close
    _, _, doc_count = _tallest(_patches(documented_ax, "spread-documented")[0])
    assert doc_count < CLIENTS / 3
    assert bindu_ax.get_ylim() == documented_ax.get_ylim()  # shared y: heights compare honestly


def test_one_panel_per_variant_or_one_overlay(herd_docs) -> None:
    panels = plots.jitter_spread(herd_docs)
    assert len(panels.axes) == 3
    for ax, label in zip(panels.axes, herd_docs, strict=True):
        assert [p.get_gid() for p in _patches(ax, "spread-")] == [f"spread-{label}"]
        spans = _spans(ax)
        assert set(spans) == {"fault-0"}
        assert spans["fault-0"] == pytest.approx((0.0, 20.0))
    overlay = plots.jitter_spread(herd_docs, overlay=True)
    (ax,) = overlay.axes
    assert len(_patches(ax, "spread-")) == 3
    assert not any(p.get_fill() for p in _patches(ax, "spread-"))


def test_histogram_from_a_document_is_the_documents(herd_docs) -> None:
    doc = herd_docs["full_jitter"]
    (patch,) = _patches(plots.jitter_spread(doc).axes[0], "spread-")
    data = patch.get_data()
    np.testing.assert_allclose(data.edges, doc["jitter_spread"]["edges"])
    np.testing.assert_allclose(data.values, doc["jitter_spread"]["counts"], rtol=1e-9)


def test_relative_to_first_failure_shows_the_realised_waits(herd_runs) -> None:
    fig = plots.jitter_spread(herd_runs, relative="first_failure")
    bindu = _patches(fig.axes[0], "spread-bindu")[0]
    lo, hi, count = _tallest(bindu)
    assert lo <= 1.0 < hi  # bindu: every call's first retry exactly 1 s after its failure
    assert count == pytest.approx(3 * CLIENTS)  # three calls per worker
    documented = _patches(fig.axes[1], "spread-documented")[0].get_data()
    early = documented.edges[1:] <= 1.0 + 1e-9
    assert documented.values[early].sum() == 0  # documented never waits less than 1 s
    assert "first failure" in fig.axes[-1].get_xlabel()


def test_relative_to_fault_end_shifts_by_the_fault_end(herd_docs, herd_runs) -> None:
    doc = herd_docs["bindu"]
    (patch,) = _patches(plots.jitter_spread(doc, relative="fault_end").axes[0], "spread-")
    np.testing.assert_allclose(
        patch.get_data().edges, np.asarray(doc["jitter_spread"]["edges"]) - 20.0, atol=1e-9
    )
    (patch,) = _patches(
        plots.jitter_spread(herd_runs["bindu"], relative="fault_end").axes[0], "spread-"
    )
    lo, hi, _ = _tallest(patch)
    assert lo <= 1.0 - 20.0 < hi


def test_relative_modes_refuse_what_they_cannot_compute(herd_docs, lock_profiles) -> None:
    with pytest.raises(ValueError, match="RunResult"):
        plots.jitter_spread(herd_docs["bindu"], relative="first_failure")
    with pytest.raises(ValueError, match="fault"):
        plots.jitter_spread(lock_profiles[0].documents[0], relative="fault_end")
    with pytest.raises(ValueError, match="relative"):
        plots.jitter_spread(herd_docs["bindu"], relative="later")  # type: ignore[arg-type]  # bad on purpose
    with pytest.raises(TypeError):
        plots.jitter_spread([herd_docs["bindu"]])  # type: ignore[arg-type]  # a list on purpose


# --- latency CDF -----------------------------------------------------------------------------


def test_latency_cdf_one_monotone_line_per_variant(herd_docs) -> None:
    fig = plots.latency_cdf(herd_docs)
    (ax,) = fig.axes
    lines = _lines(ax, "cdf-")
    assert [ln.get_label() for ln in lines] == list(herd_docs)
    for line, doc in zip(lines, herd_docs.values(), strict=True):
        x, y = np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
        assert len(x) == len(y) == 101
        assert np.all(np.diff(x) >= 0) and np.all(np.diff(y) > 0)
        np.testing.assert_allclose(x, doc["latency_quantiles"])
        assert (y[0], y[-1]) == (0.0, 1.0)
    assert "(s)" in ax.get_xlabel()
    assert ax.get_xscale() == "linear"
    assert plots.latency_cdf(herd_docs, log_x=True).axes[0].get_xscale() == "log"


def test_latency_cdf_averages_seeds_of_variant_results(lock_profiles) -> None:
    fig = plots.latency_cdf(lock_profiles)
    lines = _lines(fig.axes[0], "cdf-")
    assert [ln.get_label() for ln in lines] == [vr.variant.label for vr in lock_profiles]
    for line, vr in zip(lines, lock_profiles, strict=True):
        expected = np.mean([d["latency_quantiles"] for d in vr.documents], axis=0)
        np.testing.assert_allclose(np.asarray(line.get_xdata()), expected)
        assert np.all(np.diff(line.get_xdata()) >= 0)


# --- compare_metrics -------------------------------------------------------------------------


def test_compare_metrics_bars_with_95_percent_intervals(lock_profiles) -> None:
    metrics = ["success_rate", "p99_latency", "amplification"]
    fig = plots.compare_metrics(lock_profiles, metrics)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 3
    for ax, name in zip(axes, metrics, strict=True):
        (bars,) = [c for c in ax.containers if isinstance(c, BarContainer)]
        assert len(bars) == 3  # one (horizontal) bar per variant
        lengths = [bar.get_width() for bar in bars]
        assert lengths == pytest.approx([vr.mean(name) for vr in lock_profiles])
        assert list(ax.get_yticks()) == [0, 1, 2]
        assert ax.get_xlabel()  # a unit on every panel
        (errors,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
        segments = errors.lines[2][0].get_segments()
        for segment, vr in zip(segments, lock_profiles, strict=True):
            low, high = vr.interval(name)
            assert (segment[0][0], segment[1][0]) == (pytest.approx(low), pytest.approx(high))
    labels = [vr.variant.label for vr in lock_profiles]
    # panels share the y axis: the first (leftmost) panel names the variants for the row
    assert [t.get_text() for t in axes[0].get_yticklabels()] == labels
    assert all(ax.get_shared_y_axes().joined(ax, axes[0]) for ax in axes)
    first = axes[0]
    assert first.get_ylim()[0] > first.get_ylim()[1]  # inverted: the first variant on top
    assert "95%" in fig.get_suptitle()


def test_compare_metrics_single_seed_has_no_error_bars(lock_profiles) -> None:
    one_seed = [VariantResult(vr.variant, vr.documents[:1]) for vr in lock_profiles]
    (ax,) = plots.compare_metrics(one_seed, ["success_rate"]).axes
    assert not [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(ax.containers[0]) == 3


def test_compare_metrics_rejects_unknown_metrics_and_misused_ax(lock_profiles) -> None:
    with pytest.raises(ValueError, match="unknown metric"):
        plots.compare_metrics(lock_profiles, ["success"])
    fig = Figure()
    ax = fig.add_subplot()
    with pytest.raises(ValueError, match="one metric"):
        plots.compare_metrics(lock_profiles, ["success_rate", "p99_latency"], ax=ax)
    assert plots.compare_metrics(lock_profiles, ["p99_latency"], ax=ax) is fig


# --- sweep heat map --------------------------------------------------------------------------


def test_heatmap_array_has_the_grids_shape_and_means(startup_sweep) -> None:
    fig = plots.sweep_heatmap(startup_sweep, "policy.max_attempts", "min_wait", "success_rate")
    ax = fig.axes[0]
    (image,) = ax.images
    array = image.get_array()
    assert array is not None
    data = np.ma.getdata(array)
    assert data.shape == (2, 3)  # rows: min_wait values, columns: max_attempts values
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2", "4", "6"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0.5", "2"]
    for vr in startup_sweep:
        row = [0.5, 2.0].index(vr.variant.sets["policy.min_wait"])
        col = [2, 4, 6].index(vr.variant.sets["policy.max_attempts"])
        assert data[row, col] == pytest.approx(vr.mean("success_rate"))
    assert data[:, 0].max() < data[:, 2].min()  # more attempts survive the start-up outage
    assert ax.get_xlabel() == "max_attempts"
    assert ax.get_ylabel() == "min_wait (s)"
    assert len(fig.axes) == 2  # the heat map and its colour bar
    assert "higher is better" in fig.axes[1].get_ylabel()


def test_heatmap_refuses_ambiguous_or_missing_keys(startup_sweep) -> None:
    with pytest.raises(ValueError, match="does not set"):
        plots.sweep_heatmap(startup_sweep, "max_attempts", "max_wait", "success_rate")
    doubled = startup_sweep + startup_sweep[:1]
    with pytest.raises(ValueError, match="share the cell"):
        plots.sweep_heatmap(doubled, "max_attempts", "min_wait", "success_rate")
    with pytest.raises(ValueError, match="unknown metric"):
        plots.sweep_heatmap(startup_sweep, "max_attempts", "min_wait", "nope")


# --- backoff schedule ------------------------------------------------------------------------


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("profile", PROFILES)
def test_sampled_waits_stay_inside_the_policys_range(operation: Operation, profile: str) -> None:
    policy = build_policy(operation, DEFAULTS, profile=profile)
    waits = plots.sample_waits(operation, profile, DEFAULTS, samples=300, seed=3)
    assert waits.shape == (300, policy.max_attempts - 1)
    for n in range(1, policy.max_attempts):
        lo, hi = policy.wait_range(n)
        column = waits[:, n - 1]
        assert column.min() >= lo - 1e-12 and column.max() <= hi + 1e-12, (n, lo, hi)


def _jitter_globals() -> tuple[object, object]:
    """The ``random`` globals tenacity's and retrysim's jitter draw from (tenacity.wait does not
    re-export its ``random``, so it is read from the module namespace)."""
    return vars(tenacity.wait)["random"], retrysim.retry.waits.random


def test_sampling_is_reproducible_and_leaves_tenacity_as_it_was() -> None:
    before = _jitter_globals()
    stream_before = current_stream.get(None)
    a = plots.sample_waits("api", "full_jitter", DEFAULTS, samples=200, seed=7)
    b = plots.sample_waits("api", "full_jitter", DEFAULTS, samples=200, seed=7)
    c = plots.sample_waits("api", "full_jitter", DEFAULTS, samples=200, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert _jitter_globals() == before
    assert current_stream.get(None) is stream_before  # the caller's stream, as it was


def test_bindu_first_wait_is_a_single_value_and_decorrelated_chains() -> None:
    bindu = plots.sample_waits("scheduler", "bindu", DEFAULTS, samples=500)
    assert set(bindu[:, 0]) == {1.0}  # wait_random_exponential(min=1): U(1, 1)
    assert bindu[:, 1].std() > 0.1  # retry 2: U(1, 2)
    chained = plots.sample_waits("worker", "decorrelated", DEFAULTS, samples=500)
    # each sample is one call stepping through its retries: wait n <= 3 x wait n-1
    assert np.all(chained[:, 1] <= 3 * chained[:, 0] + 1e-12)


def test_backoff_schedule_figure_shows_each_profiles_range(monkeypatch) -> None:
    monkeypatch.setenv("RETRY__SCHEDULER_MAX_ATTEMPTS", "5")  # settings=None reads the process
    profiles = ["bindu", "documented", "full_jitter"]
    fig = plots.backoff_schedule("scheduler", profiles, samples=400)
    (ax,) = fig.axes
    ranges = {
        c.get_gid(): c.get_segments() for c in ax.collections if isinstance(c, LineCollection)
    }
    for profile in profiles:
        policy = build_policy("scheduler", profile=profile)
        assert policy.max_attempts == 5
        segments = ranges[f"range-{profile}"]
        assert len(segments) == 4  # one whisker per retry
        assert len(_patches(ax, f"box-{profile}")) == 4
        for n, segment in enumerate(segments, start=1):
            lo, hi = policy.wait_range(n)
            low, high = sorted((segment[0][1], segment[1][1]))
            assert lo - 1e-12 <= low <= high <= hi + 1e-12
    bindu_first = ranges["range-bindu"][0]
    assert bindu_first[0][1] == bindu_first[1][1] == 1.0  # a flat line: everyone waits 1 s
    assert ax.get_ylabel() == "wait (s)"
    assert "retry n" in ax.get_xlabel()
    assert len(_legend(ax).get_texts()) == 3


# --- saving ----------------------------------------------------------------------------------

HEADERS = {"png": b"\x89PNG\r\n\x1a\n", "svg": b"<?xml", "pdf": b"%PDF-"}


@pytest.mark.parametrize("fmt", sorted(HEADERS))
def test_save_figure_writes_the_format_its_extension_names(tmp_path: Path, fmt: str) -> None:
    doc = retrysim.summarize(retrysim.simulate(_herd("bindu")))
    target = tmp_path / f"figure.{fmt.upper() if fmt == 'png' else fmt}"
    plots.save_figure(plots.herd_timeline(doc), target)
    data = target.read_bytes()
    assert data.startswith(HEADERS[fmt])
    if fmt == "svg":
        assert b"<svg" in data
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no temporary file left


def test_save_figure_is_byte_for_byte_reproducible(tmp_path: Path) -> None:
    doc = retrysim.summarize(retrysim.simulate(_herd("documented")))
    for fmt in HEADERS:
        first, second = tmp_path / f"a.{fmt}", tmp_path / f"b.{fmt}"
        plots.save_figure(plots.herd_timeline(doc), first)
        plots.save_figure(plots.herd_timeline(doc), second)
        assert first.read_bytes() == second.read_bytes(), fmt


def test_save_figure_rejects_other_extensions(tmp_path: Path) -> None:
    fig = plots.latency_cdf({"x": cast(ResultDocument, {"latency_quantiles": list(range(101))})})
    for name in ("figure.txt", "figure", "figure.jpg"):
        with pytest.raises(ValueError, match="png"):
            plots.save_figure(fig, tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_failed_save_keeps_the_old_file(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "figure.png"
    target.write_bytes(b"old")
    fig = Figure()

    def broken(*args: Any, **kwargs: Any) -> None:
        Path(args[0]).write_bytes(b"half")
        raise RuntimeError("renderer crashed")

    monkeypatch.setattr(fig, "savefig", broken)
    with pytest.raises(RuntimeError):
        plots.save_figure(fig, target)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["figure.png"]


def _capture(monkeypatch) -> list[Figure]:
    saved: list[Figure] = []
    # the save_*_figure helpers look save_figure up in the module that defines them
    monkeypatch.setattr(plots.save, "save_figure", lambda fig, path: saved.append(fig))
    return saved


def test_run_figure_is_timeline_over_jitter_spread(herd_docs, monkeypatch, tmp_path) -> None:
    saved = _capture(monkeypatch)
    plots.save_run_figure(herd_docs["bindu"], tmp_path / "run.png")
    (fig,) = saved
    top, bottom = fig.axes
    assert len(_patches(top, "attempts-")) == 3
    assert _patches(bottom, "spread-")
    assert top.get_xlim() == bottom.get_xlim()  # one time axis for both panels
    assert _spans(top) == _spans(bottom) == {"fault-0": (0.0, 20.0)}
    monkeypatch.undo()
    plots.save_run_figure(herd_docs["bindu"], tmp_path / "run.svg")
    assert (tmp_path / "run.svg").read_bytes().startswith(b"<?xml")


def test_compare_and_settings_figures_for_the_cli(lock_profiles, monkeypatch, tmp_path) -> None:
    saved = _capture(monkeypatch)
    plots.save_compare_figure(lock_profiles, tmp_path / "c.png", metrics=["success_rate"])
    plots.save_settings_figure(tmp_path / "s.png", DEFAULTS, profile="bindu")
    compare_fig, settings_fig = saved
    assert len(compare_fig.axes) == 1
    assert [ax.get_title() for ax in settings_fig.axes] == [
        f"Backoff schedule: {op} (1,000 sampled calls)" for op in OPERATIONS
    ]
    for ax in settings_fig.axes:
        (text,) = _legend(ax).get_texts()
        assert text.get_text().startswith("bindu")
    with pytest.raises(ValueError, match="unknown profile"):
        plots.save_settings_figure(tmp_path / "s.png", DEFAULTS, profile="fast")


def test_plots_never_touch_pyplot_and_sim_never_imports_plots(tmp_path: Path) -> None:
    """In a fresh interpreter with no backend chosen: no pyplot, and the layers stay apart."""
    code = """
import os, sys
os.environ.pop("MPLBACKEND", None)
import retrysim.sim.engine, retrysim.retry, retrysim.results.metrics
assert "retrysim.plots" not in sys.modules and "matplotlib" not in sys.modules
import retrysim
from retrysim import plots
assert "matplotlib" not in sys.modules, "importing retrysim.plots loaded matplotlib"
s = retrysim.load_scenario("thundering-herd").with_overrides({"clients.count": 50})
r = retrysim.simulate(s)
plots.herd_timeline(r); plots.jitter_spread({"a": r}); plots.latency_cdf(r)
plots.backoff_schedule("storage", ["bindu", "decorrelated"], samples=50)
plots.save_run_figure(retrysim.summarize(r), sys.argv[1])
assert "matplotlib.pyplot" not in sys.modules, "a plot function imported pyplot"
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "run.png")],
        check=False,
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "MPLBACKEND"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    assert (tmp_path / "run.png").read_bytes().startswith(b"\x89PNG")


# --- the package's public face ---------------------------------------------------------------


def test_public_names_are_exactly_all_and_resolve() -> None:
    """retrysim.plots is a package of figure modules; its flat public API stays what it was."""
    from retrysim.cli import plot_cmd
    from retrysim.names import FIGURE_FORMATS
    from retrysim.results import metric_table
    from retrysim.sim.wait_samples import sample_waits

    assert sorted(plots.__all__) == sorted(set(plots.__all__))
    for name in plots.__all__:
        assert getattr(plots, name) is not None, name
    modules = {"backoff", "cdf", "compare", "guards", "pareto", "save", "spread", "sweep"}
    modules |= {"timeline", "tiers", "replicas", "palette", "fit"}
    # "@py_builtins" and the like: pytest rewrote the module's asserts (retrysim ships a pytest
    # plugin, and pytest rewrites every module of a plugin's distribution); not identifiers
    public = {n for n in dir(plots) if not n.startswith(("_", "@"))} - modules - {"annotations"}
    assert public == set(plots.__all__)
    assert plots.sample_waits is sample_waits  # sampling lives beside the simulator
    assert plots.DEFAULT_COMPARE_METRICS is metric_table.DEFAULT_COMPARE_METRICS
    # figure formats are defined once; the CLI checks extensions from the same list
    assert plots.FORMATS is FIGURE_FORMATS
    assert tuple(f".{fmt}" for fmt in FIGURE_FORMATS) == plot_cmd.FORMATS


def test_without_matplotlib_import_works_and_drawing_says_what_to_install() -> None:
    """matplotlib is optional: importing retrysim.plots works; drawing names the extra."""
    code = """
import sys
for name in ("matplotlib", "matplotlib.figure"):
    sys.modules[name] = None  # as if not installed
from retrysim import plots
try:
    plots.new_figure()
except ImportError as error:
    print(error)
"""
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert "pip install 'retrysim[plots]'" in done.stdout


# --- resilience mechanisms on the timeline -------------------------------------------------------


def _guarded(name: str, sets: dict[str, Any]) -> ResultDocument:
    return retrysim.summarize(retrysim.simulate(retrysim.load_scenario(name).with_overrides(sets)))


@pytest.fixture(scope="module")
def breaker_docs() -> dict[str, ResultDocument]:
    """thundering-herd with 300 workers and a breaker probing every 5 s, per scope."""
    return {
        scope: _guarded(
            "thundering-herd",
            {
                "clients.count": CLIENTS,
                "policy.breaker.enabled": True,
                "policy.breaker.scope": scope,
                "policy.breaker.recovery_timeout": 5,
            },
        )
        for scope in ("fleet", "client")
    }


def _guard_artists(fig: Figure) -> list[str]:
    gids = []
    for ax in fig.axes:
        for artist in [*ax.patches, *ax.lines]:
            gid = artist.get_gid() or ""
            if gid.startswith(("breaker", "budget", "limiter")):
                gids.append(gid)
    return gids


def test_a_run_without_mechanisms_draws_the_figure_it_always_did(herd_docs) -> None:
    fig = plots.herd_timeline(herd_docs["documented"])
    assert len(fig.axes) == 1  # no right-hand axis
    assert _guard_artists(fig) == []
    legend = [t.get_text() for t in _legend(fig.axes[0]).get_texts()]
    assert not any("breaker" in t or "budget" in t or "limiter" in t for t in legend)


def test_a_fleet_breaker_is_shaded_where_it_was_open(breaker_docs) -> None:
    doc = breaker_docs["fleet"]
    fig = plots.herd_timeline(doc)
    (ax,) = fig.axes  # a fleet breaker needs no share axis
    shaded = [(p.get_x(), p.get_x() + p.get_width()) for p in _patches(ax, "breaker-open-")]
    assert shaded == [tuple(w) for w in doc["guards"]["breaker"]["windows"]]
    (refused,) = _lines(ax, "breaker-refused")
    np.testing.assert_allclose(
        np.asarray(refused.get_ydata())[:-1], doc["guards"]["breaker"]["refused_per_s"]
    )
    legend = [t.get_text() for t in _legend(ax).get_texts()]
    assert "breaker open" in legend and "attempts refused by breaker/s" in legend
    # The refusals never count as attempts: the stacked series are the sent attempts only.
    top = _patches(ax, "attempts-")[-1].get_data().values
    np.testing.assert_allclose(top, np.sum(doc["timeline"]["attempts_per_s"], axis=0))
    assert ax.get_ylim()[1] >= max(doc["guards"]["breaker"]["refused_per_s"])


def test_client_breakers_draw_the_share_open_on_a_right_axis(breaker_docs) -> None:
    doc = breaker_docs["client"]
    fig = plots.herd_timeline(doc)
    ax, twin = fig.axes
    (line,) = _lines(twin, "breaker-share")
    share = doc["guards"]["breaker"]["open_share"]
    np.testing.assert_allclose(np.asarray(line.get_ydata())[:-1], share)
    assert twin.get_ylim() == pytest.approx((0.0, 1.05))
    assert "breaker open" in twin.get_ylabel()
    # Shaded: the bins where most clients' breakers were open, merged into runs.
    width = doc["timeline"]["bin_width"]
    mostly = [i for i, s in enumerate(share) if s >= 0.5]
    assert mostly
    covered = set()
    for patch in _patches(ax, "breaker-open-"):
        start, end = patch.get_x(), patch.get_x() + patch.get_width()
        covered |= {i for i in range(len(share)) if start <= i * width < end}
    assert covered == set(mostly)
    legend = [t.get_text() for t in _legend(ax).get_texts()]  # one legend for both axes
    assert "clients with breaker open (right axis)" in legend
    assert "most clients' breakers open" in legend


def test_budget_refusals_and_limiter_delays_are_lines_per_second() -> None:
    storm = _guarded(
        "retry-storm", {"clients.count": 200, "duration": 60, "policy.budget.enabled": True}
    )
    (ax,) = plots.herd_timeline(storm).axes
    (line,) = _lines(ax, "budget-refused")
    np.testing.assert_allclose(
        np.asarray(line.get_ydata())[:-1], storm["guards"]["budget"]["refused_per_s"]
    )
    assert "retries refused by budget/s" in [t.get_text() for t in _legend(ax).get_texts()]
    limited = _guarded(
        "api-rate-limit",
        {
            "clients.count": CLIENTS,
            "clients.arrival.end": 3,
            "policy.adaptive.limiter": True,
            "policy.adaptive.scope": "fleet",
        },
    )
    (ax,) = plots.herd_timeline(limited).axes
    (line,) = _lines(ax, "limiter-delays")
    np.testing.assert_allclose(
        np.asarray(line.get_ydata())[:-1], limited["guards"]["limiter"]["delays_per_s"]
    )
    assert "sends delayed by limiter/s" in [t.get_text() for t in _legend(ax).get_texts()]


def test_a_mechanism_that_did_nothing_adds_no_legend_entry() -> None:
    """A budget that never refused (one call per worker): nothing drawn, nothing named."""
    doc = _guarded(
        "thundering-herd",
        {"clients.count": 50, "clients.calls_per_client": 1, "policy.budget.enabled": True},
    )
    assert doc["guards"]["budget"]["refused"] == 0
    fig = plots.herd_timeline(doc)
    assert _guard_artists(fig) == [] and len(fig.axes) == 1


def test_the_run_figure_saves_with_a_share_axis(breaker_docs, tmp_path: Path) -> None:
    target = tmp_path / "run.png"
    plots.save_run_figure(breaker_docs["client"], target)
    assert target.stat().st_size > 0
