"""What the resilience mechanisms did, drawn over a run's timeline.

:func:`draw_guards` adds to a :func:`~retrysim.plots.timeline.herd_timeline` axes, from the
document's ``guards`` section (nothing at all without it, so a run with no mechanism draws the
figure it always did):

- breakers: open windows shaded. A fleet-wide breaker has real windows, shaded as they were.
  Client-scoped breakers (one per client) have a share: the share of clients whose breaker was
  open, drawn as a step line on a right-hand axis (0–100%), and the bins where most of them
  were open shaded as the fleet's windows are. The line shows what shading alone would hide:
  breakers opening one client at a time, a few stuck open, or a fleet split in half; the
  shading keeps "shaded = open" true in both scopes.
- refusals: attempts a breaker refused (never sent) and retries a budget refused, each a line
  in attempts per second on the main axis, where they read against the attempts that were sent.
- delays: sends a rate limiter held back, per second, on the main axis.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from retrysim.plots import palette

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from retrysim.results.document import ResultDocument
    from retrysim.results.sections import BreakerSection

#: Breakers in magenta (no fault, series or arrival colour is), refusals in dark red, delays teal.
BREAKER_COLOUR = palette.BREAKER
BUDGET_COLOUR = palette.BUDGET
LIMITER_COLOUR = palette.LIMITER
#: Client-scoped breakers: bins where at least this share of clients had theirs open are shaded.
MOSTLY_OPEN = 0.5


def draw_guards(ax: Axes, doc: ResultDocument, edges: np.ndarray) -> Axes | None:
    """Draw the ``guards`` section of ``doc`` on ``ax`` (timeline bin ``edges``); return the
    right-hand axis of the open-breaker share if one was made (its legend entries join ``ax``'s
    through :func:`legend_handles`)."""
    guards = doc.get("guards")
    if not guards or len(edges) < 2:
        return None
    twin = None
    breaker = guards.get("breaker")
    if breaker is not None:
        twin = _draw_breaker(ax, breaker, edges)
        _rate_line(
            ax, edges, breaker.get("refused_per_s"), "attempts refused by breaker/s",
            BREAKER_COLOUR, "--", "breaker-refused",
        )  # fmt: skip
    budget = guards.get("budget")
    if budget is not None:
        _rate_line(
            ax, edges, budget.get("refused_per_s"), "retries refused by budget/s",
            BUDGET_COLOUR, ":", "budget-refused",
        )  # fmt: skip
    limiter = guards.get("limiter")
    if limiter is not None:
        _rate_line(
            ax, edges, limiter.get("delays_per_s"), "sends delayed by limiter/s",
            LIMITER_COLOUR, "-.", "limiter-delays",
        )  # fmt: skip
    return twin


def _draw_breaker(ax: Axes, breaker: BreakerSection, edges: np.ndarray) -> Axes | None:
    share = np.asarray(breaker.get("open_share") or [], dtype=np.float64)
    if breaker.get("scope") == "fleet":
        windows: Sequence[Sequence[float]] = breaker.get("windows") or []
        if breaker.get("windows_truncated"):  # too many to list: the bins say when instead
            windows = _runs(edges, share > 0)
        _shade(ax, windows, "breaker open")
        return None
    _shade(ax, _runs(edges, share >= MOSTLY_OPEN), "most clients' breakers open")
    twin = ax.twinx()
    twin.plot(
        edges,
        np.append(share, share[-1]) if len(share) else np.zeros(len(edges)),
        drawstyle="steps-post",
        color=BREAKER_COLOUR,
        lw=1.4,
        label="clients with breaker open (right axis)",
        gid="breaker-share",
    )
    twin.set_ylim(0.0, 1.05)
    twin.set_ylabel("clients with breaker open", color=BREAKER_COLOUR)
    twin.yaxis.set_major_formatter(_percent_formatter())
    twin.tick_params(axis="y", colors=BREAKER_COLOUR)
    return twin


def _shade(ax: Axes, windows: Sequence[Sequence[float]], label: str) -> None:
    for i, (start, end) in enumerate(windows):
        ax.axvspan(
            float(start),
            float(end),
            facecolor=BREAKER_COLOUR,
            alpha=0.12,
            edgecolor=BREAKER_COLOUR,
            hatch="\\\\",
            lw=0,
            zorder=0.4,
            label=label if i == 0 else "_nolegend_",
            gid=f"breaker-open-{i}",
        )


def _runs(edges: np.ndarray, mask: np.ndarray) -> list[tuple[float, float]]:
    """Runs of consecutive bins where ``mask`` holds, as (start, end) times."""
    runs: list[tuple[float, float]] = []
    for i, on in enumerate(mask):
        if not on:
            continue
        if runs and runs[-1][1] == edges[i]:
            runs[-1] = (runs[-1][0], float(edges[i + 1]))
        else:
            runs.append((float(edges[i]), float(edges[i + 1])))
    return runs


def _rate_line(
    ax: Axes,
    edges: np.ndarray,
    series: Sequence[float] | None,
    label: str,
    colour: str,
    style: str,
    gid: str,
) -> None:
    """A per-second series as a step line; none when it is zero throughout (nothing happened:
    the legend should not name it)."""
    values = np.asarray(series or [], dtype=np.float64)
    if not len(values) or not values.any():
        return
    ax.plot(
        edges[: len(values) + 1],
        np.append(values, values[-1]),
        drawstyle="steps-post",
        color=colour,
        ls=style,
        lw=1.5,
        label=label,
        gid=gid,
    )


def legend_handles(ax: Axes, twin: Axes | None) -> tuple[list[Any], list[str]]:
    """The legend entries of ``ax`` and of its right-hand axis ``twin``, together."""
    handles, labels = ax.get_legend_handles_labels()
    if twin is not None:
        more, names = twin.get_legend_handles_labels()
        handles, labels = [*handles, *more], [*labels, *names]
    return handles, labels


def _percent_formatter() -> Any:
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(xmax=1.0, decimals=0)
