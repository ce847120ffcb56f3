"""The herd timeline: attempts per second over time, stacked by attempt number."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from retrysim.plots._common import (
    _SERIES_COLOURS,
    ResultLike,
    _arrival_windows,
    _document,
    _fault_windows,
    _figure_and_axes,
    _finite_fault_ends,
    _shade_arrivals,
    _shade_faults,
    _thousands_ticks,
)
from retrysim.plots.guards import draw_guards, legend_handles

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def herd_timeline(result: ResultLike, ax: Axes | None = None) -> Figure:
    """Attempts per second over time, stacked by attempt number, against capacity and faults.

    The thundering herd is a timing problem: this shows when the fleet's first tries and each
    wave of retries hit the server, how that compares with what the server can serve (dashed
    line, when the server model has a capacity), which fault windows they fell in (shaded;
    open-ended faults run to the end of the axis), when the arrival rate stepped up or down
    (hatched: a traffic spike is a cause, not a fault), and how much of it became goodput (calls
    succeeding per second, black line). With a resilience mechanism on, it also shows when
    breakers were open (shaded; for per-client breakers also the share open, right axis) and
    what the breaker and budget refused and the limiter held back, per second
    (:mod:`retrysim.plots.guards`).
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
    _shade_arrivals(ax, _arrival_windows(doc))

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
    twin = draw_guards(ax, doc, edges)  # nothing without a resilience mechanism
    raw_capacity = (doc.get("load") or {}).get("capacity")
    capacity = float(raw_capacity) if raw_capacity else None
    peak = max(
        float(bottom.max()) if n_bins else 0.0,
        float(goodput.max()) if n_bins else 0.0,
        *(float(np.max(ln.get_ydata())) for ln in ax.lines if _guard_line(ln)),
    )
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
    handles, labels = legend_handles(ax, twin)
    # Right of the axes; past the right-hand axis's ticks and label when there is one.
    ax.legend(
        handles,
        labels,
        loc="upper left",
        bbox_to_anchor=(1.01 if twin is None else 1.1, 1.0),
        fontsize="small",
    )
    ax.grid(axis="y", alpha=0.3)
    return fig


def _guard_line(line: Any) -> bool:
    """A per-second line :func:`draw_guards` drew on the main axis (it counts toward the top)."""
    gid = line.get_gid() or ""
    return gid in ("breaker-refused", "budget-refused", "limiter-delays")
