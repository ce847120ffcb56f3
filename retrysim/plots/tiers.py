"""Figures of a call graph (``[tiers.NAME]``): the load at each tier, and the amplification.

Retries multiply down a call graph: three attempts at each of three layers become up to 27
requests at the bottom for one user call. :func:`tier_timeline` shows where in time that load
lands, one panel per tier against its capacity and its faults; :func:`tier_amplification`
shows how much of the worst case this run reached, tier by tier. Both read the document's
``tiers`` section (:class:`~retrysim.results.sections.TierSection`, top tier first).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from retrysim.plots import palette
from retrysim.plots._common import (
    ResultLike,
    _document,
    _figure_and_axes,
    _finite_fault_ends,
    _is_real,
    _legend_if_labelled,
    _number,
    _root_figure,
    _shade_faults,
    _thousands_ticks,
    _tier_faults,
    new_figure,
)
from retrysim.plots.timeline import GOODPUT_COLOUR, capacity_line, stack_attempts

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from retrysim.results.document import ResultDocument
    from retrysim.results.sections import TierSection, Timeline

#: Why a figure of tiers cannot be drawn: the one line ``retrysim plot`` prints.
NO_TIERS = "this run has no tiers: the scenario needs [tiers.NAME] tables"
#: Bars in the series' calm blue; the worst case in the colour of the hottest retries.
_BAR_COLOUR = palette.TIER_BAR
_MAX_COLOUR = palette.TIER_MAX
#: The worst-case marker's width in points: a little wider than a bar on a typical figure.
_MARKER_POINTS = 34


def tier_sections(doc: ResultDocument) -> list[TierSection]:
    """The document's tiers, top first; a ValueError (:data:`NO_TIERS`) when it has none."""
    tiers = cast("Mapping[str, Any]", doc).get("tiers")
    if not tiers:
        raise ValueError(NO_TIERS)
    return cast("list[TierSection]", list(tiers))


def tier_timeline(result: ResultLike, axes: Sequence[Axes] | None = None) -> Figure:
    """Requests per second at each tier, one panel per tier (top first) on one time axis.

    Each panel stacks the requests the tier received by attempt number of its callers (first
    tries, then each wave of retries, as :func:`~retrysim.plots.timeline.herd_timeline` does for
    the clients), with the calls to it that succeeded per second (black line), its capacity
    (dashed, when its service has one) and its own fault windows (shaded; a fault on some of
    its replicas says which). Reading down the panels shows a retry storm growing layer by
    layer, and the tier where it first crosses capacity. ``axes``: one per tier, to draw into
    a layout of the caller's.
    """
    doc = _document(result)
    tiers = tier_sections(doc)
    missing = [tier["name"] for tier in tiers if not tier.get("timeline")]
    if missing:
        raise ValueError(
            f"this result document has no timeline for tier {missing[0]!r} (compare/sweep "
            "documents drop timelines to stay small); simulate the variant alone"
        )
    if axes is None:
        fig = new_figure(10, 1.2 + 2.6 * len(tiers))
        panels = list(np.atleast_1d(fig.subplots(len(tiers), 1, sharex=True)))
        fig.suptitle(f"{doc.get('scenario', 'run')}: requests per second at each tier, top first")
    else:
        if len(axes) != len(tiers):
            raise ValueError(f"{len(tiers)} tiers need {len(tiers)} axes, not {len(axes)}")
        panels = list(axes)
        fig = _root_figure(panels[0])
    faults = _tier_faults(result)
    timelines = [cast("Timeline", tier.get("timeline")) for tier in tiers]
    x_end = max(
        [
            1.0,
            *(len(tl["goodput_per_s"]) * float(tl["bin_width"]) for tl in timelines),
            *(end for windows in faults.values() for end in _finite_fault_ends(windows)),
        ]
    )
    for ax, tier, tl in zip(panels, tiers, timelines, strict=True):
        _tier_panel(ax, tier, tl, faults.get(tier["name"], []), x_end)
    panels[-1].set_xlabel("real time (s since the start)" if _is_real(doc) else "virtual time (s)")
    return fig


def _tier_panel(
    ax: Axes, tier: TierSection, tl: Timeline, faults: Sequence[Any], x_end: float
) -> None:
    """One tier's requests per second, goodput, capacity and faults."""
    width = float(tl["bin_width"])
    series = np.asarray(tl["attempts_per_s"], dtype=np.float64).reshape(len(tl["labels"]), -1)
    edges = np.arange(series.shape[1] + 1, dtype=np.float64) * width
    _shade_faults(ax, faults, x_end)
    total = stack_attempts(ax, tl["labels"], series, edges, gid=f"{tier['name']}-attempts")
    goodput = np.asarray(tl["goodput_per_s"], dtype=np.float64)
    if goodput.size:
        ax.plot(
            edges,
            np.append(goodput, goodput[-1]),
            drawstyle="steps-post",
            color=GOODPUT_COLOUR,
            lw=1.4,
            label="calls to it succeeding/s",
            gid="goodput",
        )
    peak = max(float(total.max()) if total.size else 0.0, float(goodput.max(initial=0.0)))
    capacity = tier.get("capacity")
    off_scale = capacity_line(ax, capacity, peak, "capacity")
    ax.set_xlim(0.0, x_end)
    if off_scale:
        ax.set_ylim(0.0, peak * 1.15)
    else:
        ax.set_ylim(bottom=0.0)
    per = "" if width == 1 else f" ({width:g} s bins)"
    ax.set_ylabel(f"requests/s{per}")
    ax.set_title(f"{tier['name']}: {_reached(tier)}", loc="left", fontsize="medium")
    _thousands_ticks(ax)
    _legend_if_labelled(ax, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    ax.grid(axis="y", alpha=0.3)


def _reached(tier: TierSection) -> str:
    """``2,400 requests, 14.2 per call (at most 27)``: a panel's title after the tier's name."""
    text = f"{int(tier['attempts']):,} requests"
    per_call = tier.get("attempts_per_call")
    if per_call is not None:
        text += f", {_number(float(per_call))} per top-level call"
        most = tier.get("max_attempts_per_call")
        if most is not None:
            text += f" (at most {most:,})"
    return text


def tier_amplification(result: ResultLike, ax: Axes | None = None) -> Figure:
    """Requests per top-level call at each tier (bars, top tier on the left), against the most
    one call can cause there (a marker: the product of every layer's max_attempts above it).

    The bars grow down the graph when several layers retry; how close they come to the markers
    says how much of the multiplicative worst case the run reached. Each bar is labelled with
    its value; a tier whose worst case is unbounded (a stop that is not an attempt count) has
    no marker, and a tier no call reached has no bar.
    """
    doc = _document(result)
    tiers = tier_sections(doc)
    fig, ax = _figure_and_axes(ax, max(9.0, 4.6 + 1.5 * len(tiers)), 4.8)
    names = [tier["name"] for tier in tiers]
    per_call = [tier.get("attempts_per_call") for tier in tiers]
    heights = [float("nan") if v is None else float(v) for v in per_call]
    where = np.arange(len(tiers), dtype=np.float64)
    bars = ax.bar(
        where,
        heights,
        width=0.6,
        color=_BAR_COLOUR,
        label="requests per top-level call (this run)",
        gid="per-call",
    )
    ax.bar_label(
        bars,
        labels=["" if v is None else f"{_number(float(v))}x" for v in per_call],
        padding=3,
        fontsize="small",
        gid="per-call-labels",
    )
    maxima = [tier.get("max_attempts_per_call") for tier in tiers]
    bounded = [(x, float(m)) for x, m in zip(where, maxima, strict=True) if m is not None]
    if bounded:
        xs, ys = zip(*bounded, strict=True)
        ax.plot(
            xs,
            ys,
            ls="none",
            marker="_",
            markersize=_MARKER_POINTS,
            mew=2.5,
            color=_MAX_COLOUR,
            label="at most (max_attempts of every layer above, multiplied)",
            gid="max-per-call",
        )
        for x, y in bounded:  # beside the marker: a bar that reaches it has its label above
            ax.annotate(
                f"max {_number(y)}",
                (x, y),
                xytext=(_MARKER_POINTS / 2 + 2, 0),
                textcoords="offset points",
                ha="left",
                va="center",
                fontsize="small",
                color=_MAX_COLOUR,
                gid="max-per-call-label",
            )
    ax.axhline(1.0, color=palette.DARK_GREY, ls=":", lw=1.0, label="1 per call: no amplification")
    top = max([1.0, *(float(v) for v in per_call if v is not None), *(y for _, y in bounded)])
    ax.set_ylim(0.0, top * 1.18)  # room for the labels above the tallest bar or marker
    ax.set_xticks(where, names)
    ax.set_xlabel("tier (top first)")
    ax.set_ylabel("requests per top-level call")
    ax.set_title(f"{doc.get('scenario', 'run')}: amplification down the call graph")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", markerscale=0.5)
    ax.grid(axis="y", alpha=0.3)
    return fig
