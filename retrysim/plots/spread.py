"""The jitter spread: when retries start, as a histogram per variant."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import numpy as np

from retrysim.plots import palette
from retrysim.plots._common import (
    ResultLike,
    _as_labelled,
    _colour,
    _fault_windows,
    _figure_and_axes,
    _finite_fault_ends,
    _is_real,
    _is_run_result,
    _legend_if_labelled,
    _scenario_of,
    _shade_faults,
    _thousands_ticks,
    new_figure,
)
from retrysim.results import metric_table

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: What retry start times are measured from: the run's start (None), or a per-retry reference.
Relative: TypeAlias = Literal["fault_end", "first_failure"] | None

_SPREAD_BIN = 0.1  # seconds: histogram bins from records match the 100 ms peak-share window
_MAX_BINS = 2000


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

    Jitter exists to turn the spike into a plateau. The y axis counts retries started per bin
    and says the bin's width ("per 100 ms bin"): a per-second rate of a 100 ms bin would show a
    10,000-retry spike as "100,000/s" and invite misreading its size. Only when variants are
    binned differently is it a per-second rate (counts divided by bin width, so they stay
    comparable), and the label names the widths. Panels share it, so a tall spike next to a low
    plateau is the honest picture.

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
        None: "real time a retry started (s since the start)"
        if all(_is_real(r) for r in labelled.values())
        else "virtual time a retry started (s)",
        "fault_end": "seconds from the nearest fault end to the retry's start",
        "first_failure": "seconds from the call's first failure to the retry's start",
    }[relative]
    single = len(data) == 1
    ylabel, per_bin = _y_axis(data)
    for i, (label, (edges, counts)) in enumerate(data.items()):
        a = axes[i]
        colour = _colour(label, i)
        result = labelled[label]
        share = _peak_share(result)
        legend = (
            label if share is None else f"{label}: busiest 100 ms holds {_share(share)} of retries"
        )
        if not len(counts):
            a.text(0.5, 0.5, f"{label}: no retries", transform=a.transAxes, ha="center")
            continue
        height = counts if per_bin else counts / np.diff(edges)
        a.stairs(
            height,
            edges,
            fill=not overlay or single,
            color=colour,
            ls=palette.line_style(i),
            alpha=0.85 if (not overlay or single) else 1.0,
            lw=1.5,
            label=legend,
            gid=f"spread-{label}",
        )
        if not overlay or single:
            _annotate_peak(a, edges, counts, height)
        if not overlay or i == 0:
            if relative is None:
                faults = _fault_windows(result)
                _shade_faults(a, faults, float(edges[-1]))
            else:
                ref = "fault end" if relative == "fault_end" else "first failure"
                a.axvline(0.0, color=palette.BLACK, lw=1, ls=":", label=ref)
            a.set_ylabel(ylabel)
            _thousands_ticks(a)
            a.grid(axis="y", alpha=0.3)
            # room above the tallest bin for its annotation and the legend, so neither hides it
            a.margins(y=0.45)
        if not overlay:
            _legend_if_labelled(a, loc=_legend_corner(a, edges, height), fontsize="small")
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


def _y_axis(data: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> tuple[str, bool]:
    """The value axis's label, and whether it shows counts per bin (else a per-second rate).

    Counts per bin when every variant shares one bin width, so the axis reads as the number of
    retries it is; a per-second rate with the widths named when they differ.
    """
    widths = sorted({round(float(e[1] - e[0]), 9) for e, c in data.values() if len(c)})
    if len(widths) <= 1:
        return f"retries started per {_duration(widths[0]) if widths else '?'} bin", True
    return f"retries started/s (bins of {', '.join(_duration(w) for w in widths)})", False


def _duration(seconds: float) -> str:
    """A bin width as a reader says it: 100 ms, 383 ms, 2 s."""
    return f"{seconds * 1000:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"


def _share(value: float) -> str:
    """A share as the terminal prints it (0.25%, never a rounded-away 0%)."""
    return metric_table.show("jitter_peak_share", value)


def _legend_corner(ax: Axes, edges: np.ndarray, height: np.ndarray) -> str:
    """The upper corner away from the tallest bin, where the peak's annotation sits."""
    top = int(np.argmax(height))
    peak = (float(edges[top]) + float(edges[top + 1])) / 2
    lo, hi = ax.get_xlim()
    return "upper left" if peak > (lo + hi) / 2 else "upper right"


def _annotate_peak(ax: Axes, edges: np.ndarray, counts: np.ndarray, height: np.ndarray) -> None:
    """Name the tallest bin in words: how many retries, in which interval."""
    top = int(np.argmax(height))
    lo, hi = float(edges[top]), float(edges[top + 1])
    ax.annotate(
        f"{counts[top]:,.0f} retries in [{lo:.4g}, {hi:.4g}) s",
        xy=((lo + hi) / 2, float(height[top])),
        xytext=(6, 4),
        textcoords="offset points",
        ha="left",
        va="bottom",
        fontsize="small",
        arrowprops={"arrowstyle": "-", "color": palette.DARK_GREY, "lw": 0.8},
    )


def _peak_share(result: ResultLike) -> float | None:
    """Share of retries inside the busiest 100 ms window (the document's headline number)."""
    if isinstance(result, Mapping):
        value = (result.get("jitter_spread") or {}).get("peak_share_100ms")
        return None if value is None else float(value)
    from retrysim.results.metrics import peak_window_share, retry_starts

    return peak_window_share(retry_starts(result.attempts))
