"""Matplotlib figures of retrysim results: pictures that make a retry policy's behaviour obvious.

Every function returns a :class:`matplotlib.figure.Figure` built directly (never through
``pyplot``), so calling them leaves no global figure state behind, works on any backend
including Agg on a headless CI machine, and a long-running process (or a test suite) does not
accumulate open figures. Functions that draw one panel take an optional ``ax`` so a notebook can
compose them into its own layout.

Inputs are plain data: a result document (the dict :func:`retrysim.summarize` returns, or
``result.json`` loaded back) or, where the per-attempt records add precision, a
:class:`retrysim.RunResult`; a ``RunResult`` is summarised on the fly wherever only the document
is needed. Comparisons take :class:`retrysim.sweep.VariantResult` lists from
:func:`retrysim.compare`.

matplotlib is an optional dependency (``pip install retrysim[plots]``); it is imported by the
functions here, never by :mod:`retrysim.sim` or :mod:`retrysim.retry`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import numpy as np

from retrysim import metric_table

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from retrysim.retry.settings import Operation, Profile, RetrySettings
    from retrysim.sim.result import RunResult
    from retrysim.sweep import VariantResult

__all__ = [
    "DEFAULT_COMPARE_METRICS",
    "FORMATS",
    "backoff_schedule",
    "compare_metrics",
    "herd_timeline",
    "jitter_spread",
    "latency_cdf",
    "new_figure",
    "sample_waits",
    "save_compare_figure",
    "save_figure",
    "save_run_figure",
    "save_settings_figure",
    "sweep_heatmap",
]

#: A result document (dict) or a run's records; records are summarised when needed.
ResultLike: TypeAlias = "Mapping[str, Any] | RunResult"
#: What :func:`latency_cdf` can draw one line for (a VariantResult averages its seeds).
CdfSource: TypeAlias = "Mapping[str, Any] | RunResult | VariantResult"
Relative: TypeAlias = Literal["fault_end", "first_failure"] | None

#: File formats :func:`save_figure` writes, chosen by the file's extension.
FORMATS = ("png", "svg", "pdf")

#: What :func:`compare_metrics` shows when no metrics are named (see ``retrysim.metric_table``).
DEFAULT_COMPARE_METRICS = metric_table.DEFAULT_COMPARE_METRICS

# Attempt series: first tries calm blue, retries in warming colours (later = hotter).
_SERIES_COLOURS = ("#4c72b0", "#f0a04b", "#d9534f", "#8e3b8a", "#5b2a86", "#2e1a47")
# A stable colour per profile, so the same profile looks the same in every figure.
_PROFILE_COLOURS = {
    "bindu": "#d9534f",
    "documented": "#4c72b0",
    "full_jitter": "#55a868",
    "equal_jitter": "#8172b3",
    "decorrelated": "#c9a227",
    "exponential": "#7f7f7f",
}
_CYCLE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")
# One colour per kind of fault, so adjacent windows (an outage, then its recovery) stay apart.
_FAULT_COLOURS = {
    "outage": "#d62728",
    "recovery_ramp": "#ff9f1c",
    "flaky": "#e377c2",
    "latency_spike": "#9467bd",
    "capacity_loss": "#8c564b",
    "reset": "#7f7f7f",
}
_SPREAD_BIN = 0.1  # seconds: histogram bins from records match the 100 ms peak-share window
_MAX_BINS = 2000


# --- small helpers ---------------------------------------------------------------------------


def new_figure(width: float = 10.0, height: float = 5.0) -> Figure:
    """A pyplot-free figure (inches, constrained layout) to compose panels with ``ax=``.

    Nothing global is registered, so nothing needs closing, and it renders on any backend.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "retrysim.plots needs matplotlib: pip install 'retrysim[plots]'"
        ) from error
    return Figure(figsize=(width, height), layout="constrained")


def _figure_and_axes(ax: Axes | None, width: float, height: float) -> tuple[Figure, Axes]:
    """Draw into the caller's ``ax`` (and return its root figure) or into a new figure."""
    if ax is None:
        fig = new_figure(width, height)
        return fig, fig.add_subplot()
    return _root_figure(ax), ax


def _root_figure(ax: Axes) -> Figure:
    from matplotlib.figure import Figure

    node: Any = ax.figure
    while not isinstance(node, Figure):  # a SubFigure: climb to the figure that owns it
        node = node.figure
    return node


def _document(result: ResultLike) -> Mapping[str, Any]:
    """The result document of ``result``; a RunResult is summarised (no baseline)."""
    if isinstance(result, Mapping):
        return result
    from retrysim.metrics import summarize

    return summarize(result)


def _is_run_result(value: object) -> bool:
    from retrysim.sim.result import RunResult

    return isinstance(value, RunResult)


def _is_variant_result(value: object) -> bool:
    from retrysim.sweep import VariantResult

    return isinstance(value, VariantResult)


def _label_of(result: ResultLike) -> str:
    if isinstance(result, Mapping):
        return str(result.get("profile") or result.get("scenario") or "result")
    return str(result.policy.get("profile", "result"))


def _scenario_of(result: ResultLike) -> str:
    if isinstance(result, Mapping):
        return str(result.get("scenario", "run"))
    return str(result.scenario.name)


def _colour(label: str, index: int) -> str:
    return _PROFILE_COLOURS.get(label, _CYCLE[index % len(_CYCLE)])


def _is_document(value: object) -> bool:
    return isinstance(value, Mapping) and {"scenario", "profile", "calls"} <= value.keys()


def _as_labelled(results: Any) -> dict[str, Any]:
    """``{label: result}`` from a dict of results, or from one result (labelled by profile)."""
    if _is_run_result(results) or _is_document(results):
        return {_label_of(results): results}
    if isinstance(results, Mapping):
        if not results:
            raise ValueError("no results to plot")
        return {str(k): v for k, v in results.items()}
    raise TypeError(
        "expected a result document, a RunResult, or a dict of them keyed by label; "
        f"got {type(results).__name__}"
    )


def _fault_windows(result: ResultLike) -> list[dict[str, Any]]:
    """Each fault's kind, start and end (``None``: until the run ends)."""
    if isinstance(result, Mapping):
        return list(result.get("faults") or [])
    from retrysim.sim.faults import fault_windows

    return [dict(w) for w in fault_windows(result.scenario.faults)]


def _shade_faults(ax: Axes, faults: Sequence[Mapping[str, Any]], x_end: float) -> None:
    """Shade each fault window; open-ended windows run to ``x_end`` (the end of the axis)."""
    seen: set[str] = set()
    for i, fault in enumerate(faults):
        start = float(fault["start"])
        end = x_end if fault.get("end") is None else float(fault["end"])
        kind = str(fault.get("kind", "fault"))
        label = f"fault: {kind}" if kind not in seen else "_nolegend_"
        seen.add(kind)
        ax.axvspan(
            start,
            end,
            color=_FAULT_COLOURS.get(kind, "#d62728"),
            alpha=0.13,
            lw=0,
            zorder=0,
            label=label,
            gid=f"fault-{fault.get('index', i)}",
        )


def _finite_fault_ends(faults: Sequence[Mapping[str, Any]]) -> list[float]:
    return [float(f["end"]) for f in faults if f.get("end") is not None]


def _number(value: float) -> str:
    """Short, exact-looking numbers for labels: 0.997, 2.68, 1,350 (never 1.35e+03)."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _thousands(value: float, _pos: object = None) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:g}"


def _thousands_ticks(ax: Axes) -> None:
    """Y tick labels like 10,000 rather than 10000 (or 1e4)."""
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(_thousands))


# --- herd timeline ---------------------------------------------------------------------------


def herd_timeline(result: ResultLike, ax: Axes | None = None) -> Figure:
    """Attempts per second over time, stacked by attempt number, against capacity and faults.

    The thundering herd is a timing problem: this shows when the fleet's first tries and each
    wave of retries hit the server, how that compares with what the server can serve (dashed
    line, when the server model has a capacity), which fault windows they fell in (shaded;
    open-ended faults run to the end of the axis), and how much of it became goodput (calls
    succeeding per second, black line).
    """
    doc = _document(result)
    tl = doc.get("timeline")
    if not tl:
        raise ValueError(
            "this result document has no 'timeline' (compare/sweep documents drop it to stay "
            "small); simulate the variant alone and pass its document or RunResult"
        )
    fig, ax = _figure_and_axes(ax, 10, 4.8)
    width = float(tl["bin_width"])
    series = np.asarray(tl["attempts_per_s"], dtype=np.float64)
    n_bins = series.shape[1] if series.ndim == 2 else 0
    edges = np.arange(n_bins + 1, dtype=np.float64) * width
    faults = _fault_windows(doc)
    x_end = max([float(edges[-1]) if n_bins else 1.0, *_finite_fault_ends(faults)])
    if any(other.has_data() for other in ax.get_shared_x_axes().get_siblings(ax)):
        # panels sharing a time axis: never cut off a longer run drawn in another panel
        x_end = max(x_end, ax.get_xlim()[1])
    _shade_faults(ax, faults, x_end)

    bottom = np.zeros(n_bins)
    for i, (label, row) in enumerate(zip(tl["labels"], series, strict=True)):
        if i > 0 and not row.any():
            continue  # a retry wave that never happened would only clutter the legend
        ax.stairs(
            bottom + row,
            edges,
            baseline=bottom.copy(),
            fill=True,
            color=_SERIES_COLOURS[min(i, len(_SERIES_COLOURS) - 1)],
            alpha=0.9,
            label=label,
            gid=f"attempts-{i}",
        )
        bottom = bottom + row

    goodput = np.asarray(tl["goodput_per_s"], dtype=np.float64)
    if n_bins:
        ax.plot(
            edges,
            np.append(goodput, goodput[-1]),
            drawstyle="steps-post",
            color="black",
            lw=1.6,
            label="goodput (calls succeeding/s)",
            gid="goodput",
        )
    raw_capacity = (doc.get("load") or {}).get("capacity")
    capacity = float(raw_capacity) if raw_capacity else None
    peak = max(float(bottom.max()) if n_bins else 0.0, float(goodput.max()) if n_bins else 0.0)
    off_scale = capacity is not None and peak > 0 and capacity > 2.5 * peak
    if capacity is not None:
        label = f"server capacity ≈ {capacity:,.0f}/s"
        ax.axhline(
            capacity,
            color="#333333",
            ls="--",
            lw=1.2,
            label=label + (" (off the scale)" if off_scale else ""),
            gid="capacity",
        )
    ax.set_xlim(0.0, x_end)
    if off_scale:  # a light load under a huge capacity line would be squashed flat
        ax.set_ylim(0.0, peak * 1.15)
    else:
        ax.set_ylim(bottom=0.0)
    ax.set_xlabel("virtual time (s)")
    per = "per second" if width == 1 else f"per second ({width:g} s bins)"
    ax.set_ylabel(f"attempts started {per}")
    profile = doc.get("profile") or "?"
    ax.set_title(f"{doc.get('scenario', 'run')}: attempts over time, profile {profile}")
    _thousands_ticks(ax)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    return fig


# --- jitter spread ---------------------------------------------------------------------------


def _spread_data(
    result: ResultLike, relative: Relative, bin_width: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """(edges, counts) of one variant's retry start times, absolute or relative."""
    if _is_run_result(result):
        return _spread_from_records(result, relative, bin_width)
    assert isinstance(result, Mapping)
    spread = result.get("jitter_spread") or {}
    edges = np.asarray(spread.get("edges") or [], dtype=np.float64)
    counts = np.asarray(spread.get("counts") or [], dtype=np.float64)
    if relative is None:
        if bin_width is not None and len(counts):
            centres = (edges[:-1] + edges[1:]) / 2
            return _histogram(centres, counts, bin_width)
        return edges, counts
    if relative == "first_failure":
        raise ValueError(
            "relative='first_failure' needs each call's records: pass RunResults "
            "(retrysim.simulate) instead of result documents"
        )
    # Relative to fault ends from a document: only bin centres are known, so each bin moves as
    # a whole; the resolution is the document's bin width.
    ends = np.asarray(_finite_fault_ends(_fault_windows(result)))
    if not len(ends):
        raise ValueError("relative='fault_end' needs a fault with an end; this run has none")
    if not len(counts):
        return edges, counts
    centres = (edges[:-1] + edges[1:]) / 2
    offsets = _minus_nearest(centres, ends)
    shifts = np.unique(np.round(centres - offsets, 9))
    if len(shifts) == 1 and bin_width is None:  # one fault end serves every bin: shift exactly
        return np.round(edges - shifts[0], 9), counts
    width = bin_width if bin_width is not None else float(edges[1] - edges[0])
    return _histogram(offsets, counts, width)


def _spread_from_records(
    result: Any, relative: Relative, bin_width: float | None
) -> tuple[np.ndarray, np.ndarray]:
    attempts = result.attempts
    retries = attempts[attempts["attempt"] > 1]
    times = np.asarray(retries["start"], dtype=np.float64)
    if relative == "fault_end":
        ends = _finite_fault_ends(_fault_windows(result))
        if not ends:
            raise ValueError("relative='fault_end' needs a fault with an end; this run has none")
        times = _minus_nearest(times, np.asarray(ends))
    elif relative == "first_failure":
        firsts = attempts[attempts["attempt"] == 1]
        first_end = np.full(len(result.calls), np.nan)
        first_end[firsts["call"].astype(np.int64)] = firsts["end"]
        times = times - first_end[retries["call"].astype(np.int64)]
    elif relative is not None:
        raise ValueError(f"relative must be None, 'fault_end' or 'first_failure', not {relative!r}")
    if relative is not None:
        # t + 1.0 - t is not always 1.0 in floating point; nanosecond rounding keeps a wait of
        # exactly one second in the bin that starts at 1.0 instead of the one before it.
        times = np.round(times, 9)
    return _histogram(times, np.ones_like(times), bin_width or _SPREAD_BIN)


def _minus_nearest(times: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Each time minus the fault end closest to it (negative: before that fault ended)."""
    offsets = times[:, None] - ends[None, :]
    return np.asarray(offsets[np.arange(len(times)), np.abs(offsets).argmin(axis=1)])


def _histogram(
    times: np.ndarray, weights: np.ndarray, width: float
) -> tuple[np.ndarray, np.ndarray]:
    """Bins of ``width`` aligned to multiples of it (so t=1.0 is an edge, not split)."""
    if not len(times):
        return np.asarray([]), np.asarray([])
    lo = math.floor(float(times.min()) / width) * width
    hi = (math.floor(float(times.max()) / width) + 1) * width
    # A very long run keeps the figure light: past _MAX_BINS the bins grow instead.
    n = min(max(1, round((hi - lo) / width)), _MAX_BINS)
    counts, edges = np.histogram(times, bins=n, range=(lo, hi), weights=weights)
    return edges, counts.astype(np.float64)


def _check_relative(relative: object) -> None:
    if relative not in (None, "fault_end", "first_failure"):
        raise ValueError(f"relative must be None, 'fault_end' or 'first_failure', not {relative!r}")


def jitter_spread(
    results: Mapping[str, ResultLike] | ResultLike,
    relative: Relative = None,
    overlay: bool = False,
    bin_width: float | None = None,
    ax: Axes | None = None,
) -> Figure:
    """When retries start, one histogram per variant: synchronised retries show as a spike.

    Jitter exists to turn the spike into a plateau. The y axis is retries started per second
    (counts divided by bin width), so variants binned differently stay comparable; panels share
    it, so a tall spike next to a low plateau is the honest picture.

    ``results`` is one result or ``{label: result}``. Documents carry a 60-bin histogram;
    RunResults are binned at ``bin_width`` (default 0.1 s, the peak-share window), which shows a
    spike's true height. ``relative='fault_end'`` measures each retry from the nearest fault end
    (negative: while the fault lasted); ``relative='first_failure'`` (RunResults only) from the
    end of its call's first failed attempt, which shows the realised backoff schedule.
    ``overlay=True`` (or an ``ax``) draws every variant as an outline in one panel.
    """
    _check_relative(relative)
    labelled = _as_labelled(results)
    data = {label: _spread_data(result, relative, bin_width) for label, result in labelled.items()}
    overlay = overlay or ax is not None or len(labelled) == 1
    if overlay:
        fig, first_ax = _figure_and_axes(ax, 10, 4)
        axes = [first_ax] * len(data)
    else:
        fig = new_figure(10, 1.2 + 2.2 * len(data))
        axes = list(fig.subplots(len(data), 1, sharex=True, sharey=True, squeeze=False)[:, 0])
    xlabel = {
        None: "virtual time a retry started (s)",
        "fault_end": "seconds from the nearest fault end to the retry's start",
        "first_failure": "seconds from the call's first failure to the retry's start",
    }[relative]
    single = len(data) == 1
    for i, (label, (edges, counts)) in enumerate(data.items()):
        a = axes[i]
        colour = _colour(label, i)
        result = labelled[label]
        share = _peak_share(result)
        legend = label if share is None else f"{label}: busiest 100 ms holds {share:.0%} of retries"
        if not len(counts):
            a.text(0.5, 0.5, f"{label}: no retries", transform=a.transAxes, ha="center")
            continue
        rate = counts / np.diff(edges)
        a.stairs(
            rate,
            edges,
            fill=not overlay or single,
            color=colour,
            alpha=0.85 if (not overlay or single) else 1.0,
            lw=1.5,
            label=legend,
            gid=f"spread-{label}",
        )
        if not overlay or single:
            _annotate_peak(a, edges, counts, rate)
        if not overlay or i == 0:
            if relative is None:
                faults = _fault_windows(result)
                _shade_faults(a, faults, float(edges[-1]))
            else:
                ref = "fault end" if relative == "fault_end" else "first failure"
                a.axvline(0.0, color="black", lw=1, ls=":", label=ref)
            a.set_ylabel("retries started/s")
            _thousands_ticks(a)
            a.grid(axis="y", alpha=0.3)
            a.margins(y=0.15)  # room above the tallest bin for its annotation
        if not overlay:
            _legend_if_labelled(a, loc="upper right", fontsize="small")
    if overlay:
        _legend_if_labelled(axes[0], loc="upper right", fontsize="small")
    axes[-1].set_xlabel(xlabel)
    scenarios = {_scenario_of(r) for r in labelled.values()}
    title = "When retries start (jitter spread)"
    if len(scenarios) == 1:
        title = f"{scenarios.pop()}: when retries start (jitter spread)"
    if relative is not None:
        title += f", relative to {'fault end' if relative == 'fault_end' else 'first failure'}"
    axes[0].set_title(title)
    return fig


def _annotate_peak(ax: Axes, edges: np.ndarray, counts: np.ndarray, rate: np.ndarray) -> None:
    """Name the tallest bin in words: how many retries, in which interval."""
    top = int(np.argmax(rate))
    lo, hi = float(edges[top]), float(edges[top + 1])
    ax.annotate(
        f"{counts[top]:,.0f} retries in [{lo:.4g}, {hi:.4g}) s",
        xy=((lo + hi) / 2, float(rate[top])),
        xytext=(6, 4),
        textcoords="offset points",
        ha="left",
        va="bottom",
        fontsize="small",
        arrowprops={"arrowstyle": "-", "color": "#555555", "lw": 0.8},
    )


def _peak_share(result: ResultLike) -> float | None:
    """Share of retries inside the busiest 100 ms window (the document's headline number)."""
    if isinstance(result, Mapping):
        value = (result.get("jitter_spread") or {}).get("peak_share_100ms")
        return None if value is None else float(value)
    from retrysim.metrics import peak_window_share, retry_starts

    return peak_window_share(retry_starts(result.attempts))


# --- latency CDF -----------------------------------------------------------------------------


def _quantiles(source: Any) -> np.ndarray:
    """101 latency quantiles; a VariantResult averages its seeds' quantile functions."""
    if _is_variant_result(source):
        rows = [d["latency_quantiles"] for d in source.documents if d.get("latency_quantiles")]
        return np.mean(np.asarray(rows, dtype=np.float64), axis=0) if rows else np.asarray([])
    return np.asarray(_document(source).get("latency_quantiles") or [], dtype=np.float64)


def latency_cdf(
    results: Mapping[str, CdfSource] | Sequence[VariantResult] | ResultLike,
    log_x: bool = False,
    ax: Axes | None = None,
) -> Figure:
    """Per-call latency CDFs, one line per variant, from the documents' 101 quantiles.

    Means and p99s hide the shape: a CDF shows which share of calls finished within any time,
    so "most calls are fast but a tail waits through three backoffs" is visible as steps.
    ``results`` is ``{label: document | RunResult | VariantResult}``, a list of VariantResults
    (from :func:`retrysim.compare`; seeds are combined by averaging their quantile functions),
    or one result. ``log_x`` spreads out latencies spanning milliseconds to tens of seconds.
    """
    if isinstance(results, Sequence) and not isinstance(results, str | Mapping):
        if not all(_is_variant_result(vr) for vr in results):
            raise TypeError("a list passed to latency_cdf must hold VariantResults; label others")
        labelled: dict[str, Any] = {vr.variant.label: vr for vr in results}
    else:
        labelled = _as_labelled(results)
    fig, ax = _figure_and_axes(ax, 8, 4.8)
    share = np.arange(101) / 100.0
    drawn = 0
    for i, (label, source) in enumerate(labelled.items()):
        q = _quantiles(source)
        if not len(q):
            continue
        ax.plot(q, share, color=_colour(label, i), lw=1.8, label=label, gid=f"cdf-{label}")
        drawn += 1
    if not drawn:
        ax.text(0.5, 0.5, "no finished calls", transform=ax.transAxes, ha="center")
    if log_x:
        ax.set_xscale("log")
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("call latency (s): first attempt to success or giving up")
    ax.set_ylabel("share of calls finished within")
    ax.set_title("Per-call latency CDF")
    ax.grid(alpha=0.3, which="both" if log_x else "major")
    if drawn:
        ax.legend(loc="lower right", fontsize="small")
    return fig


# --- comparisons and sweeps ------------------------------------------------------------------


def _check_metric(name: str) -> None:
    names = metric_table.METRIC_NAMES
    if name not in names:
        raise ValueError(f"unknown metric {name!r}; allowed: {', '.join(names)}")


def compare_metrics(
    variant_results: Sequence[VariantResult],
    metrics: Sequence[str] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """One bar per variant for each metric, with 95% intervals over seeds as error bars.

    Each metric gets its own panel because their units differ. Error bars appear when a variant
    ran with two or more seeds; with common random numbers (:func:`retrysim.compare`) the gap
    between two bars is the settings' doing, and an interval says how much of it could be luck.
    Bars are horizontal so variant labels such as ``profile=full_jitter, max_attempts=6`` stay
    readable. ``ax`` is accepted when exactly one metric is drawn.
    """
    names = list(metrics) if metrics is not None else list(DEFAULT_COMPARE_METRICS)
    if not names:
        raise ValueError("name at least one metric")
    for name in names:
        _check_metric(name)
    if not variant_results:
        raise ValueError("no variant results to compare")
    if ax is not None and len(names) != 1:
        raise ValueError("ax= draws one panel: pass exactly one metric, or no ax")
    labels = [vr.variant.label for vr in variant_results]
    if ax is None:
        cols = len(names) if len(names) <= 3 else 2 if len(names) == 4 else 3
        rows = math.ceil(len(names) / cols)
        label_width = min(4.0, 0.075 * max(len(label) for label in labels))
        fig = new_figure(label_width + 4.6 * cols, (0.38 * len(labels) + 1.3) * rows + 0.4)
        grid = fig.subplots(rows, cols, squeeze=False, sharey=True)
        axes = list(grid.ravel())
        for extra in axes[len(names) :]:
            extra.set_visible(False)
    else:
        fig, axes = _root_figure(ax), [ax]
    seeds = max(len(vr.documents) for vr in variant_results)
    colours = [_colour(label, i) for i, label in enumerate(labels)]
    y = np.arange(len(labels))
    for a, name in zip(axes, names, strict=False):
        means = np.asarray(
            [np.nan if (m := vr.mean(name)) is None else m for vr in variant_results]
        )
        err = np.zeros((2, len(labels)))
        has_err = False
        for j, vr in enumerate(variant_results):
            interval = vr.interval(name)
            if interval is not None and not np.isnan(means[j]):
                err[:, j] = (means[j] - interval[0], interval[1] - means[j])
                has_err = True
        bars = a.barh(
            y,
            np.nan_to_num(means),
            color=colours,
            xerr=err if has_err else None,
            capsize=3 if has_err else 0,
            ecolor="#222222",
            gid=f"bars-{name}",
        )
        a.bar_label(
            bars,
            labels=["n/a" if np.isnan(m) else _number(m) for m in means],
            padding=4,
            fontsize="x-small",
        )
        about = metric_table.get(name)
        a.set_title(about.title)
        a.set_xlabel(about.unit)
        a.set_yticks(y, labels)
        a.grid(axis="x", alpha=0.3)
        a.margins(x=0.18)
    axes[0].set_ylim(len(labels) - 0.5, -0.5)  # first variant on top, as listed
    if ax is None:
        note = (
            f"mean of {seeds} seeds (common random numbers); error bars: 95% interval"
            if seeds > 1
            else "one seed: no interval"
        )
        fig.suptitle(f"Variants compared: {note}", fontsize="medium")
    return fig


def _grid_value(variant_result: VariantResult, key: str) -> Any:
    sets = variant_result.variant.sets
    for candidate in (key, f"policy.{key}"):
        if candidate in sets:
            return sets[candidate]
    raise ValueError(
        f"variant {variant_result.variant.label!r} does not set {key!r} (it sets: "
        f"{', '.join(sets) or 'nothing'})"
    )


def _axis_values(values: list[Any]) -> list[Any]:
    unique = list(dict.fromkeys(values))
    try:
        return sorted(unique)
    except TypeError:
        return unique  # mixed types: keep the grid's own order


def sweep_heatmap(
    variant_results: Sequence[VariantResult],
    x_key: str,
    y_key: str,
    metric: str,
    ax: Axes | None = None,
) -> Figure:
    """A metric's mean over a two-key grid of variants (from :func:`grid_variants`).

    Tuning is a search for the region where every constraint holds; a heat map shows that region
    and how sharp its edges are, which a ranked table hides. Keys are dotted scenario keys as
    given to the grid (``policy.max_attempts``; the ``policy.`` prefix may be left off). Cells
    no variant covers stay blank; two variants on one cell is an error.
    """
    _check_metric(metric)
    if not variant_results:
        raise ValueError("no variant results to plot")
    xs = _axis_values([_grid_value(vr, x_key) for vr in variant_results])
    ys = _axis_values([_grid_value(vr, y_key) for vr in variant_results])
    data = np.full((len(ys), len(xs)), np.nan)
    filled = np.zeros(data.shape, dtype=bool)
    for vr in variant_results:
        r, c = ys.index(_grid_value(vr, y_key)), xs.index(_grid_value(vr, x_key))
        if filled[r, c]:
            raise ValueError(
                f"two variants share the cell {x_key}={xs[c]}, {y_key}={ys[r]}: "
                "the grid has more than two keys"
            )
        filled[r, c] = True
        mean = vr.mean(metric)
        data[r, c] = np.nan if mean is None else mean
    fig, ax = _figure_and_axes(ax, max(5.5, 1.1 * len(xs) + 3), max(3.8, 0.7 * len(ys) + 2.2))
    about = metric_table.get(metric)
    # The better end is bright yellow; viridis is dark at its low end, so text on a cell is white
    # where the colour map is dark.
    low_is_dark = about.better != "lower"
    cmap = "viridis" if low_is_dark else "viridis_r"
    image = ax.imshow(data, origin="lower", aspect="auto", cmap=cmap, gid=f"heatmap-{metric}")
    finite = data[np.isfinite(data)]
    middle = float(np.mean([finite.min(), finite.max()])) if len(finite) else 0.0
    for r in range(len(ys)):
        for c in range(len(xs)):
            value = data[r, c]
            text = "n/a" if np.isnan(value) else _number(value)
            dark = not np.isnan(value) and ((value < middle) == low_is_dark)
            ax.text(
                c, r, text, ha="center", va="center", fontsize="small",
                color="white" if dark else "black",
            )  # fmt: skip
    ax.set_xticks(range(len(xs)), [_tick(v) for v in xs])
    ax.set_yticks(range(len(ys)), [_tick(v) for v in ys])
    ax.set_xlabel(_axis_label(x_key))
    ax.set_ylabel(_axis_label(y_key))
    seeds = max(len(vr.documents) for vr in variant_results)
    ax.set_title(f"{about.title} (mean of {seeds} seed{'s' if seeds != 1 else ''})")
    bar = _root_figure(ax).colorbar(image, ax=ax)
    if about.better == "neither":
        bar.set_label(about.unit)
    else:
        better = f"{about.better} is better"
        bar.set_label(f"{about.unit} ({better})" if about.unit else better)
    return fig


def _tick(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _axis_label(key: str) -> str:
    short = key.removeprefix("policy.")
    unit = " (s)" if short.endswith(("_wait", "jitter", "max_delay", "timeout")) else ""
    return f"{short}{unit}"


# --- backoff schedule ------------------------------------------------------------------------


def sample_waits(
    operation: Operation,
    profile: Profile | None = None,
    settings: RetrySettings | None = None,
    samples: int = 2000,
    seed: int = 0,
    max_retries: int | None = None,
) -> np.ndarray:
    """Waits drawn from the real policy: ``samples`` x retries, column n-1 = wait before retry n.

    The waits come from the same tenacity wait object :func:`retrysim.retry.build_policy` hands
    the production decorators, called with real ``RetryCallState`` objects, so the figure cannot
    drift from what ships. Each sample is one call stepping through its retries in order (the
    decorrelated profile remembers its previous wait per call) with its own counter-based
    stream, so results are reproducible for a ``seed`` and identical across profiles.
    ``settings=None`` means the process settings, as for the decorators.
    """
    from tenacity import RetryCallState

    from retrysim.retry.policy import build_policy
    from retrysim.sim.clock import current_stream, routed_jitter
    from retrysim.sim.streams import JITTER, Stream, stream_key

    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    policy = build_policy(operation, settings, profile=profile)
    retries = policy.max_attempts - 1
    if max_retries is not None:
        retries = min(retries, max_retries)
    waits = np.empty((samples, max(retries, 0)), dtype=np.float64)
    if retries <= 0:
        return waits
    retrying = policy.retrying()
    key = stream_key(seed, JITTER)
    with routed_jitter():
        for i in range(samples):
            token = current_stream.set(Stream(key, i))
            try:
                state = RetryCallState(retry_object=retrying, fn=None, args=(), kwargs={})
                for n in range(1, retries + 1):
                    state.attempt_number = n  # the wait after attempt n = before retry n
                    waits[i, n - 1] = policy.wait(state)
            finally:
                current_stream.reset(token)
    return waits


def backoff_schedule(
    operation: Operation,
    profiles: Sequence[Profile] | None = None,
    settings: RetrySettings | None = None,
    samples: int = 2000,
    seed: int = 0,
    max_retries: int | None = 10,
    ax: Axes | None = None,
) -> Figure:
    """Per profile, the distribution of the wait before each retry n, as box plots.

    Formulas like ``U(min_wait, clamp(2^(n-1), ...))`` are easy to misread; sampled waits are
    not. Boxes span the middle half, whiskers the full sampled range, so a profile whose first
    wait is a single value (bindu: U(1, 1)) shows as a flat line: every client waits the same.
    ``profiles`` defaults to the settings' profile; ``max_retries`` caps long schedules.
    """
    from matplotlib.patches import Patch

    from retrysim.retry.policy import build_policy

    fig, ax = _figure_and_axes(ax, 9, 4.5)
    names: list[Profile] = (
        list(profiles) if profiles else [build_policy(operation, settings).profile]
    )
    handles = []
    most = 0
    width = 0.8 / len(names)
    for k, name in enumerate(names):
        policy = build_policy(operation, settings, profile=name)
        waits = sample_waits(operation, name, settings, samples, seed, max_retries)
        n_retries = waits.shape[1]
        most = max(most, n_retries)
        colour = _colour(name, k)
        if n_retries:
            positions = np.arange(1, n_retries + 1) + (k - (len(names) - 1) / 2) * width
            _boxes(ax, waits, positions, width * 0.85, colour, name)
        label = (
            f"{name} ({policy.max_attempts} attempts, {policy.min_wait:g}-{policy.max_wait:g} s)"
        )
        if not n_retries:
            label += ": no retries"
        handles.append(Patch(facecolor=colour, alpha=0.75, label=label))
    ax.set_xticks(range(1, most + 1))
    ax.set_xlim(0.4, most + 0.6)
    ax.set_ylim(bottom=0.0)
    ax.set_xlabel("retry n (the wait before the n-th retry)")
    ax.set_ylabel("wait (s)")
    ax.set_title(f"Backoff schedule: {operation} ({samples:,} sampled calls)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(handles=handles, loc="upper left", fontsize="small")
    return fig


def _boxes(
    ax: Axes, waits: np.ndarray, positions: np.ndarray, width: float, colour: str, name: str
) -> None:
    """Box (quartiles), whisker (full sampled range) and median per column of ``waits``.

    Drawn from primitives rather than ``Axes.boxplot``, which reads every rcParam and thereby
    imports pyplot when no backend was chosen yet: this module never touches pyplot.
    """
    from matplotlib.patches import Rectangle

    q = np.percentile(waits, [0, 25, 50, 75, 100], axis=0)
    half = width / 2
    ax.vlines(positions, q[0], q[4], color=colour, lw=1.3, gid=f"range-{name}")
    ax.hlines(q[[0, 4]].ravel(), np.tile(positions - half / 2, 2), np.tile(positions + half / 2, 2),
              color=colour, lw=1.3)  # fmt: skip
    for x, lo, hi in zip(positions, q[1], q[3], strict=True):
        ax.add_patch(
            Rectangle(
                (x - half, lo), width, hi - lo, facecolor=colour, edgecolor=colour, alpha=0.75,
                gid=f"box-{name}",
            )
        )  # fmt: skip
    flat = q[3] - q[1] <= 1e-9 * np.maximum(1.0, q[2])
    if flat.any():  # every sample the same: a thick bar in the profile's colour, not a hairline
        ax.hlines(q[2][flat], positions[flat] - half, positions[flat] + half, color=colour, lw=6)
    ax.hlines(q[2], positions - half, positions + half, color="black", lw=1.5, gid=f"median-{name}")


# --- saving ----------------------------------------------------------------------------------


def _legend_if_labelled(ax: Axes, **kwargs: Any) -> None:
    """A legend only when something is labelled (a run without retries has nothing to name)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kwargs)


def save_figure(fig: Figure, path: str | Path) -> None:
    """Write ``fig`` to ``path`` atomically, in the format its extension names (png/svg/pdf).

    Readers never see a half-written image, and a failed render leaves the old file alone.
    Dates and SVG ids are pinned, so regenerating an unchanged figure gives identical bytes
    (figures in git only change when the picture does).
    """
    import matplotlib

    from retrysim.output import atomic_path

    target = Path(path)
    fmt = target.suffix.lower().removeprefix(".")
    if fmt not in FORMATS:
        raise ValueError(
            f"{target}: unsupported figure format {target.suffix or '(none)'!r}; "
            f"use one of: {', '.join('.' + f for f in FORMATS)}"
        )
    metadata: dict[str, Any] = {
        "png": {"Software": None},
        "svg": {"Date": None},
        "pdf": {"CreationDate": None, "ModDate": None},
    }[fmt]
    with matplotlib.rc_context({"svg.hashsalt": "retrysim"}), atomic_path(target) as tmp:
        fig.savefig(tmp, format=fmt, dpi=120, metadata=metadata)


def save_run_figure(doc: Mapping[str, Any] | RunResult, path: str | Path) -> None:
    """What ``retrysim run --plot FILE`` saves: herd timeline above jitter spread, one run."""
    document = _document(doc)
    fig = new_figure(11, 8.5)
    top, bottom = fig.subplots(2, 1)
    herd_timeline(document, ax=top)
    jitter_spread(document, ax=bottom)
    lo = top.get_xlim()[0]  # the timeline starts at 0; so do the retries
    hi = max(top.get_xlim()[1], bottom.get_xlim()[1])
    for ax in (top, bottom):  # one time axis for both panels, so waves line up vertically
        ax.set_xlim(lo, hi)
    save_figure(fig, path)


def save_compare_figure(
    variant_results: Sequence[VariantResult],
    path: str | Path,
    metrics: Sequence[str] | None = None,
) -> None:
    """What ``retrysim compare --plot FILE`` saves: :func:`compare_metrics` of the variants."""
    save_figure(compare_metrics(variant_results, metrics), path)


def save_settings_figure(
    path: str | Path, settings: RetrySettings | None = None, profile: str | None = None
) -> None:
    """What ``retrysim settings --plot FILE`` saves: the backoff schedule of all four operations.

    ``settings=None`` reads the process settings (``RETRY__*`` / ``.env``); ``profile`` previews
    another profile than the configured one (a plain string, as typed on the command line; an
    unknown name is a ValueError).
    """
    from retrysim.retry.settings import OPERATIONS, PROFILES

    if profile is not None and profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; allowed: {', '.join(PROFILES)}")
    chosen = [p for p in PROFILES if p == profile] or None

    from retrysim.retry.policy import build_policy

    fig = new_figure(13, 8.5)
    axes = fig.subplots(2, 2).ravel()
    shown = profile or build_policy("worker", settings).profile
    fig.suptitle(f"Wait before each retry, per operation (profile {shown})")
    for a, operation in zip(axes, OPERATIONS, strict=True):
        backoff_schedule(operation, chosen, settings, samples=1000, ax=a)
    save_figure(fig, path)
