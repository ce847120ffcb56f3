"""``retrysim fit``'s figures: each fitted quantity drawn against the data it came from.

- :func:`latency_qq`: the held-out latency quantiles against the chosen family's (on the
  diagonal when the fit is right), the family and its held-out KS distance in the title;
- :func:`latency_over_time`: the successful requests' p50 and p99 per bin, the fault windows
  found shaded;
- :func:`error_share`: the failed share of requests per bin, the windows shaded;
- :func:`arrival_rate`: calls per second per bin, with the fitted rate (its schedule's steps).

Each takes a :class:`~retrysim.fit.result.FitResult` and draws into ``ax`` (or a new figure),
as the other figures of :mod:`retrysim.plots` do; :func:`fit_figure` puts them together for
``--plot`` and the shared page.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from retrysim.plots import palette
from retrysim.plots._common import _figure_and_axes, _shade_faults, new_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from retrysim.fit.result import FitResult
    from retrysim.results.sections import FaultWindow


def _where(tier: str) -> str:
    return f" ({tier})" if tier else ""


def latency_qq(result: FitResult, tier: str = "", ax: Axes | None = None) -> Figure:
    """Held-out quantiles against the fitted family's, in ms, with the diagonal."""
    fig, ax = _figure_and_axes(ax, 5.0, 4.5)
    found = result.latency[tier]
    pairs = np.asarray(found.qq, dtype=float).reshape(-1, 2) * 1000
    ax.plot(
        pairs[:, 0],
        pairs[:, 1],
        marker="o",
        linestyle="none",
        markersize=3,
        color=palette.BLUE,
        label="held-out quantiles",
    )
    if len(pairs):
        low, high = float(pairs.min()), float(pairs.max())
        ax.plot([low, high], [low, high], color=palette.GREY, linestyle="--", label="y = x")
    distance = found.distance(found.family).d
    ax.set_title(
        f"latency{_where(tier)}: {found.family}, held-out KS D {distance:.3g}",
        loc="left",
        fontsize=10,
    )
    ax.set_xlabel(f"{found.family} quantile (ms)")
    ax.set_ylabel("held-out quantile (ms)")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def _windows(result: FitResult, tier: str) -> list[FaultWindow]:
    """The fault windows found for ``tier``, as the timeline's shading takes them."""
    found = result.errors.get(tier)
    if found is None:
        return []
    windows = [{"kind": w.kind, "start": w.start, "end": w.end} for w in found.windows]
    return cast("list[FaultWindow]", windows)


def latency_over_time(result: FitResult, tier: str = "", ax: Axes | None = None) -> Figure:
    """p50 and p99 of the successful requests per bin (ms), the found windows shaded."""
    fig, ax = _figure_and_axes(ax, 7.0, 3.5)
    series = result.latency_over_time[tier]
    starts = np.asarray(series["bin_starts"], dtype=float)
    for key, colour in (("p50", palette.BLUE), ("p99", palette.ORANGE)):
        values = np.asarray(series[key], dtype=float) * 1000
        ax.plot(starts, values, color=colour, label=key, drawstyle="steps-post")
    _over_time(ax, result, tier, starts, "latency over time", "successful requests (ms)")
    return fig


def error_share(result: FitResult, tier: str = "", ax: Axes | None = None) -> Figure:
    """The failed share of requests per bin (empty bins left out), the found windows shaded."""
    fig, ax = _figure_and_axes(ax, 7.0, 3.5)
    found = result.errors[tier]
    starts = np.asarray(found.bin_starts, dtype=float)
    requests = np.asarray(found.bin_requests, dtype=float)
    failed = np.asarray(found.bin_failed, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(requests > 0, failed / requests, np.nan)
    ax.plot(starts, share, color=palette.VERMILLION, label="failed share", drawstyle="steps-post")
    _over_time(ax, result, tier, starts, "failed share over time", "failed share of requests")
    ax.set_ylim(-0.02, 1.02)
    return fig


def _over_time(
    ax: Axes, result: FitResult, tier: str, starts: Any, title: str, ylabel: str
) -> None:
    """The frame of a per-bin series over the data's time: the found windows shaded, from the
    first bin to the data's end, titled, labelled, with its legend and grid."""
    end = _end(result, starts)
    _shade_faults(ax, _windows(result, tier), end)
    ax.set_xlim(float(starts[0]) if len(starts) else 0.0, end)
    ax.set_title(f"{title}{_where(tier)}", loc="left", fontsize=10)
    ax.set_xlabel("time (s)")
    ax.set_ylabel(ylabel)
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)


def arrival_rate(result: FitResult, ax: Axes | None = None) -> Figure:
    """Calls per second per bin, and the fitted rate: one level, or the schedule's steps."""
    fig, ax = _figure_and_axes(ax, 7.0, 3.5)
    found = result.arrivals
    if found is None:
        raise ValueError("the fit has no arrival process to draw")
    starts = np.asarray(found.bin_starts, dtype=float)
    counts = np.asarray(found.counts, dtype=float)
    ax.plot(
        starts,
        counts / found.bin_width,
        color=palette.SKY_BLUE,
        label="calls per second (data)",
        drawstyle="steps-post",
    )
    xs, ys = schedule_line(found)
    ax.plot(xs, ys, color=palette.BLACK, linewidth=2, label="fitted rate")
    ax.set_xlim(found.start, found.end)
    ax.set_ylim(bottom=0)
    ax.set_title(f"arrivals: {found.verdict}", loc="left", fontsize=10)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("calls per second")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def schedule_line(found: Any) -> tuple[list[float], list[float]]:
    """The fitted rate as a step line over ``found``'s window (an ArrivalFit, or anything with
    its ``start``, ``end``, ``rate`` and ``schedule``): the base rate, each step's own."""
    xs, ys = [found.start], [found.rate]
    for step in sorted(found.schedule, key=lambda s: s.start):
        xs += [step.start, step.start, step.end, step.end]
        ys += [found.rate, step.rate, step.rate, found.rate]
    xs.append(found.end)
    ys.append(found.rate)
    return xs, ys


def _end(result: FitResult, starts: np.ndarray) -> float:
    if result.arrivals is not None:
        return float(result.arrivals.end)
    if len(starts) > 1:
        return float(starts[-1] + (starts[-1] - starts[-2]))
    return float(starts[-1]) + 1.0 if len(starts) else 1.0


def panels(result: FitResult) -> list[tuple[str, str]]:
    """The figures :func:`fit_figure` draws, as (kind, tier): what the data allows."""
    found: list[tuple[str, str]] = []
    if result.arrivals is not None:
        found.append(("arrivals", ""))
    for tier in result.latency:
        found.append(("qq", tier))
    for tier in result.latency_over_time:
        found.append(("latency", tier))
    for tier in result.errors:
        if len(result.errors[tier].bin_starts):
            found.append(("errors", tier))
    return found


def draw_panel(result: FitResult, kind: str, tier: str, ax: Axes | None = None) -> Figure:
    """One panel of :func:`panels` drawn into ``ax`` (or a figure of its own)."""
    if kind == "arrivals":
        return arrival_rate(result, ax)
    if kind == "qq":
        return latency_qq(result, tier, ax)
    if kind == "latency":
        return latency_over_time(result, tier, ax)
    return error_share(result, tier, ax)


def fit_figure(result: FitResult) -> Figure:
    """Every panel the fit allows, two to a row (``--plot``)."""
    chosen = panels(result)
    if not chosen:
        raise ValueError("the fit has nothing to draw: no arrivals, latency or errors")
    rows = math.ceil(len(chosen) / 2)
    fig = new_figure(12.0, 3.8 * rows)
    grid = fig.subplots(rows, 2, squeeze=False)
    for index, (kind, tier) in enumerate(chosen):
        draw_panel(result, kind, tier, grid[index // 2][index % 2])
    for index in range(len(chosen), rows * 2):
        grid[index // 2][index % 2].set_visible(False)
    return fig
