"""Requests per second at each replica of a replicated service (``service.replicas``).

A balancer spreads requests over replicas; a fault aimed at one of them (a host down, a slow
disk) is the case retries that avoid the hosts already tried are for. :func:`replica_timeline`
draws one line per replica, the replicas a fault hit in warm colours and thick, the others thin
and cool, so a glance says whether the sick replica kept getting traffic and whether the
healthy ones picked up what it failed. It reads the document's ``replicas`` section
(:class:`~retrysim.results.sections.ReplicaSection`), one panel per replicated tier.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from retrysim.plots import palette
from retrysim.plots._common import (
    ResultLike,
    _document,
    _finite_fault_ends,
    _is_real,
    _root_figure,
    _shade_faults,
    _thousands_ticks,
    _tier_faults,
    new_figure,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from retrysim.results.document import ResultDocument
    from retrysim.results.sections import FaultWindow, ReplicaSection

#: Why the figure cannot be drawn: the one line ``retrysim plot`` prints.
NO_REPLICAS = (
    "this run has no replicas: the scenario needs service.replicas (or "
    "tiers.NAME.service.replicas) above 1"
)
#: Replicas a fault hit: warm and thick. The others: cool and thin.
_HIT_COLOURS = palette.HIT
_CALM_COLOURS = palette.CALM
#: Without fault windows naming replicas, a replica stands out when its failure rate is at
#: least this many times its tier's and above :data:`STANDOUT_FLOOR`.
STANDOUT_RATIO = 2.0
STANDOUT_FLOOR = 0.05


def replica_groups(doc: ResultDocument) -> dict[str | None, list[ReplicaSection]]:
    """The document's replicas by tier (``None``: the scenario's one service), in document
    order; a ValueError (:data:`NO_REPLICAS`) when it has none."""
    rows = cast("Mapping[str, Any]", doc).get("replicas")
    if not rows:
        raise ValueError(NO_REPLICAS)
    groups: dict[str | None, list[ReplicaSection]] = {}
    for row in cast("list[ReplicaSection]", rows):
        groups.setdefault(row.get("tier"), []).append(row)
    return groups


def replica_timeline(result: ResultLike, axes: Sequence[Axes] | None = None) -> Figure:
    """Requests per second by replica, a step line each, one panel per replicated tier.

    The replicas a fault hit (the windows' ``replicas``; or, for a document whose fault
    windows do not say, those failing far more than their tier: :func:`hit_replicas`) stand
    out, and the faults are shaded as on the herd timeline. Each line's label gives the
    replica's requests and the share of them that failed. ``axes``: one per replicated tier.
    """
    doc = _document(result)
    groups = replica_groups(doc)
    if any("attempts_per_s" not in row for rows in groups.values() for row in rows):
        raise ValueError(
            "this result document has no per-replica timeline (compare/sweep documents drop "
            "timelines to stay small); simulate the variant alone"
        )
    tl = doc.get("timeline")
    width = float(tl["bin_width"]) if tl else 1.0
    if axes is None:
        fig = new_figure(10, 1.2 + 3.2 * len(groups))
        panels = list(np.atleast_1d(fig.subplots(len(groups), 1, sharex=True)))
        fig.suptitle(f"{doc.get('scenario', 'run')}: requests per second by replica")
    else:
        if len(axes) != len(groups):
            raise ValueError(
                f"{len(groups)} replicated tiers need {len(groups)} axes, not {len(axes)}"
            )
        panels = list(axes)
        fig = _root_figure(panels[0])
    faults = _tier_faults(result)
    longest = max(len(row["attempts_per_s"]) for rows in groups.values() for row in rows)
    ends = [end for tier in groups for end in _finite_fault_ends(faults.get(tier, []))]
    x_end = max([1.0, longest * width, *ends])
    for ax, (tier, rows) in zip(panels, groups.items(), strict=True):
        windows = faults.get(tier, [])
        _replica_panel(ax, tier, rows, windows, width, x_end)
    panels[-1].set_xlabel("real time (s since the start)" if _is_real(doc) else "virtual time (s)")
    return fig


def hit_replicas(rows: Sequence[ReplicaSection], faults: Sequence[FaultWindow]) -> set[int]:
    """The replicas that faults hit, to draw so they stand out.

    The fault windows say, when they name replicas. When none does (a fault on every replica,
    or a document whose windows do not say), the figures decide: the replicas whose failure
    rate is at least :data:`STANDOUT_RATIO` times the tier's and above :data:`STANDOUT_FLOOR`,
    which is what a fault on some hosts looks like from outside; replicas failing alike (a
    fault on all of them) single none out.
    """
    named = _named(faults)
    if named:
        return named
    attempts = sum(int(row["attempts"]) for row in rows)
    if not attempts:
        return set()
    overall = sum(int(row["failed"]) for row in rows) / attempts
    return {
        int(row["replica"])
        for row in rows
        if (rate := row.get("failure_rate")) is not None
        and rate > STANDOUT_FLOOR
        and rate >= STANDOUT_RATIO * overall
    }


def _named(faults: Sequence[FaultWindow]) -> set[int]:
    """The replicas the fault windows name (none: no window says)."""
    lists = [cast("Mapping[str, Any]", w).get("replicas") or () for w in faults]
    return {int(r) for replicas in lists for r in replicas}


def _replica_panel(
    ax: Axes,
    tier: str | None,
    rows: Sequence[ReplicaSection],
    faults: Sequence[FaultWindow],
    width: float,
    x_end: float,
) -> None:
    _shade_faults(ax, faults, x_end)
    hit = hit_replicas(rows, faults)
    why = " (fault)" if _named(faults) else " (failing most)"  # told, or seen in the figures
    warm = calm = 0
    for row in rows:
        replica = int(row["replica"])
        values = np.asarray(row["attempts_per_s"], dtype=np.float64)
        if not values.size:
            continue
        edges = np.arange(values.size + 1, dtype=np.float64) * width
        failed = row.get("failure_rate")
        label = f"replica {replica}: {int(row['attempts']):,} requests"
        if failed is not None:
            label += f", {100 * float(failed):.3g}% failed"
        # a thick line under the thin ones: where loads are equal, both stay in sight
        if replica in hit:
            colour, lw, z = _HIT_COLOURS[warm % len(_HIT_COLOURS)], 3.0, 2.0
            style = palette.line_style(warm, len(_HIT_COLOURS))
            warm += 1
            label += why
        else:
            colour, lw, z = _CALM_COLOURS[calm % len(_CALM_COLOURS)], 1.3, 3.0
            style = palette.line_style(calm, len(_CALM_COLOURS))  # colours repeat: dashes
            calm += 1
        ax.plot(
            edges,
            np.append(values, values[-1]),
            drawstyle="steps-post",
            color=colour,
            ls=style,
            lw=lw,
            alpha=1.0 if replica in hit else 0.85,
            zorder=z,
            label=label,
            gid=f"replica-{replica}",
        )
    ax.set_xlim(0.0, x_end)
    ax.set_ylim(bottom=0.0)
    per = "" if width == 1 else f" ({width:g} s bins)"
    ax.set_ylabel(f"requests/s{per}")
    name = "service" if tier is None else tier
    ax.set_title(f"{name}: {len(rows)} replicas", loc="left", fontsize="medium")
    _thousands_ticks(ax)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    ax.grid(axis="y", alpha=0.3)
