"""The herd timeline: attempts per second over time, stacked by attempt number."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from retrysim.plots import palette
from retrysim.plots._common import (
    _SERIES_COLOURS,
    ResultLike,
    _arrival_windows,
    _document,
    _fault_windows,
    _figure_and_axes,
    _finite_fault_ends,
    _is_real,
    _number,
    _shade_arrivals,
    _shade_faults,
    _thousands_ticks,
)
from retrysim.plots.guards import draw_guards, legend_handles
from retrysim.results import metric_table
from retrysim.results.diagnose import METASTABLE_RATIO

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from retrysim.results.document import ResultDocument


def herd_timeline(result: ResultLike, ax: Axes | None = None) -> Figure:
    """Attempts per second over time, stacked by attempt number, against capacity and faults.

    The thundering herd is a timing problem: this shows when the fleet's first tries and each
    wave of retries hit the server, how that compares with what the server can serve (dashed
    line, when the server model has a capacity), which fault windows they fell in (shaded;
    open-ended faults run to the end of the axis), when the arrival rate stepped up or down
    (hatched: a traffic spike is a cause, not a fault), and how much of it became goodput (calls
    succeeding per second, black line), and, when goodput never came back after the last
    disturbance (the metastable diagnosis), the window it stayed down over, bracketed, against
    the goodput before (dotted). With a resilience mechanism on, it also shows when
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

    bottom = stack_attempts(ax, tl["labels"], series, edges)

    goodput = np.asarray(tl["goodput_per_s"], dtype=np.float64)
    if n_bins:
        ax.plot(
            edges,
            np.append(goodput, goodput[-1]),
            drawstyle="steps-post",
            color=palette.GOODPUT,
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
    off_scale = capacity_line(ax, capacity, peak, "server capacity")
    ax.set_xlim(0.0, x_end)
    if off_scale:  # a light load under a huge capacity line would be squashed flat
        ax.set_ylim(0.0, peak * 1.15)
    else:
        ax.set_ylim(bottom=0.0)
    _mark_not_recovered(ax, doc, twin)
    ax.set_xlabel("real time (s since the start)" if _is_real(doc) else "virtual time (s)")
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


def stack_attempts(
    ax: Axes, labels: Sequence[str], series: np.ndarray, edges: np.ndarray, gid: str = "attempts"
) -> np.ndarray:
    """Stack one filled step series per attempt number (first tries at the bottom, later
    retries hotter above); return the total per bin.

    A retry wave that never happened is left out, so the legend names only what is drawn. Each
    series' gid is ``{gid}-{i}`` (``i`` its attempt number, from 0).
    """
    bottom = np.zeros(len(edges) - 1)
    for i, (label, row) in enumerate(zip(labels, series, strict=True)):
        if i > 0 and not row.any():
            continue  # a retry wave that never happened would only clutter the legend
        ax.stairs(
            bottom + row,
            edges,
            baseline=bottom.copy(),
            fill=True,
            color=_SERIES_COLOURS[min(i, len(_SERIES_COLOURS) - 1)],
            alpha=palette.SERIES_ALPHA,
            label=label,
            gid=f"{gid}-{i}",
        )
        bottom = bottom + row
    return bottom


def capacity_line(ax: Axes, capacity: float | None, peak: float, what: str) -> bool:
    """The dashed line at ``capacity`` (requests per second; nothing when unbounded), labelled
    ``what ≈ N/s``; return whether it is off the scale (far above a ``peak`` load: the caller
    then keeps the y axis to the load, and the label says so)."""
    off_scale = capacity is not None and peak > 0 and capacity > 2.5 * peak
    if capacity is not None:
        ax.axhline(
            capacity,
            color=palette.DARK_GREY,
            ls="--",
            lw=1.2,
            label=f"{what} ≈ {capacity:,.0f}/s" + (" (off the scale)" if off_scale else ""),
            gid="capacity",
        )
    return off_scale


#: Goodput's colour: the not-recovered bracket and the reference level belong to its line.
GOODPUT_COLOUR = palette.GOODPUT
#: Headroom added above the data for the bracket (a share of the y range), and its height.
_BRACKET_ROOM, _BRACKET_Y = 0.15, 0.93


def _mark_not_recovered(ax: Axes, doc: ResultDocument, twin: Axes | None) -> None:
    """Bracket the window where goodput stayed down after the last disturbance, if it did.

    A metastable failure is what the stacked attempts hide: after the spike the bars look
    like traffic, and the goodput line lies flat on the axis where the eye slides over it. The
    window is the document's ``recovery`` (``from`` to ``until``, what the metastable
    diagnosis quotes), bracketed above the data so it covers no bar, labelled with the share of
    the goodput before that came back (as the terminal prints ``goodput_recovery``); a dotted
    line across it at the goodput before shows the gap. The headroom is made on the right-hand
    axis too (``twin``, the share of breakers open), or its 100% would run through the label.
    Nothing when recovery could not be judged or goodput came back (the diagnosis's own
    threshold, ``METASTABLE_RATIO``).
    """
    from matplotlib.transforms import blended_transform_factory

    found = doc.get("recovery")
    if not found or float(found["ratio"]) >= METASTABLE_RATIO:
        return
    start = float(found["from"])
    # documents older than ``until`` measured to the end of arrivals
    end = float(found.get("until", (doc.get("clients") or {}).get("arrivals_end", start)))
    if end <= start:
        return
    reference = float(found["goodput_reference"])
    before = "before" if found.get("reference") == "before" else "offered"
    what = "goodput before the disturbance" if before == "before" else "calls offered"
    ax.hlines(
        reference,
        start,
        end,
        colors=GOODPUT_COLOUR,
        linestyles=":",
        lw=1.4,
        label=f"{what}: {_number(reference)}/s",
        gid="goodput-reference",
    )
    bottom, top = ax.get_ylim()
    top = max(top, reference)
    ax.set_ylim(bottom, top + (top - bottom) * _BRACKET_ROOM)
    if twin is not None:
        ticks = [t for t in twin.get_yticks() if 0 <= t <= 1]  # a share: no 120% tick
        bottom, top = twin.get_ylim()
        twin.set_ylim(bottom, top + (top - bottom) * _BRACKET_ROOM)
        twin.set_yticks(ticks)
    where = blended_transform_factory(ax.transData, ax.transAxes)  # x in s, y in axes share
    ax.annotate(
        "",
        xy=(start, _BRACKET_Y),
        xytext=(end, _BRACKET_Y),
        xycoords=where,
        textcoords=where,
        arrowprops={"arrowstyle": "|-|", "color": GOODPUT_COLOUR, "lw": 1.2,
                    "shrinkA": 0, "shrinkB": 0, "mutation_scale": 6},
        gid="not-recovered",
    )  # fmt: skip
    share = metric_table.show("goodput_recovery", float(found["ratio"]))
    ax.text(
        (start + end) / 2,
        _BRACKET_Y + 0.015,
        f"goodput not recovered ({share} of {before})",
        transform=where,
        ha="center",
        va="bottom",
        fontsize="small",
        color=GOODPUT_COLOUR,
        gid="not-recovered-label",
    )


def _guard_line(line: Any) -> bool:
    """A per-second line :func:`draw_guards` drew on the main axis (it counts toward the top)."""
    gid = line.get_gid() or ""
    return gid in ("breaker-refused", "budget-refused", "limiter-delays")
