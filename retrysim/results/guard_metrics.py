"""What the resilience mechanisms did in a run: the result document's ``guards`` section.

The engine records a breaker's refusals as attempt rows (error ``CircuitOpen``, never sent) and
everything else a guard does as :class:`~retrysim.retry.guards.GuardEvent` s: breaker state
changes, budget refusals, limiter delays and rate cuts. This module reads both into plain
numbers, so the report, the pictures and ``compare`` can say how often a breaker opened, how
long it stayed open, how many retries a budget refused and how long a limiter held sends back,
and draw when. Like :mod:`retrysim.results.metrics`, every function takes records and returns plain
data, so each can be checked on hand-made events.

How a breaker's open time is measured: a breaker refuses attempts from the moment it opens until
it half-opens. It half-opens lazily, at the first attempt after ``recovery_timeout`` (that is
when its ``half_open`` event is recorded), so an open window ends at its instance's next state
change or ``recovery_timeout`` after it opened, whichever is first (and at the run's end at the
latest): the time it would have refused an attempt.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from retrysim.results.sections import BreakerSection, BudgetSection, Guards, LimiterSection
from retrysim.sim import records as rec

if TYPE_CHECKING:
    from retrysim.retry.guards import GuardEvent
    from retrysim.sim.result import RunResult

#: Open windows listed in the document at most (the union over clients can be long); the
#: section says how many there were and whether the list is cut.
MAX_WINDOWS = 50
CIRCUIT_OPEN = "CircuitOpen"

Window = tuple[float, float]


def mechanisms_on(settings: Mapping[str, Any]) -> list[str]:
    """Which mechanisms the resolved policy turns on: ``breaker``, ``budget`` (a shared budget
    or a per-call ``max_total_time``), ``adaptive`` (adaptive backoff), ``limiter``."""
    on = []
    breaker = settings.get("breaker") or {}
    budget = settings.get("budget") or {}
    adaptive = settings.get("adaptive") or {}
    if breaker.get("enabled"):
        on.append("breaker")
    if budget.get("enabled") or budget.get("max_total_time") is not None:
        on.append("budget")
    if adaptive.get("enabled"):
        on.append("adaptive")
    if adaptive.get("limiter"):
        on.append("limiter")
    return on


def refused_mask(attempts: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Attempt rows a breaker refused (error ``CircuitOpen``): recorded, never sent."""
    return np.asarray(attempts["error"] == _code(names, CIRCUIT_OPEN))


def _code(names: Sequence[str], name: str) -> int:
    """The record code of error ``name`` (-1, matching no row, if the run has no such error)."""
    return names.index(name) if name in names else -1


# --- breakers ----------------------------------------------------------------------------------


def breaker_windows(
    events: Sequence[GuardEvent], end_time: float, recovery_timeout: float | None = None
) -> dict[tuple[str, Hashable], list[Window]]:
    """Each breaker instance's (name, client) open windows, [opened, stopped refusing).

    A window ends at the instance's next state change, or ``recovery_timeout`` after it opened
    if that is sooner (the breaker half-opens lazily, at the next attempt), or at ``end_time``.
    """
    cap = math.inf if recovery_timeout is None else recovery_timeout
    opened_at: dict[tuple[str, Hashable], float] = {}
    windows: dict[tuple[str, Hashable], list[Window]] = defaultdict(list)
    for event in events:
        if event.kind != "breaker":
            continue
        key = (event.name, event.client)
        start = opened_at.pop(key, None)
        if start is not None:
            windows[key].append((start, min(event.time, start + cap)))
        if event.value == "open":
            opened_at[key] = event.time if start is None else start
    for key, start in opened_at.items():
        windows[key].append((start, max(start, min(end_time, start + cap))))
    return dict(windows)


def union(windows: Sequence[Window]) -> list[Window]:
    """The union of ``windows`` as sorted, disjoint windows (touching ones merge)."""
    merged: list[Window] = []
    for start, end in sorted(windows):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def peak_overlap(windows: Sequence[Window]) -> int:
    """The most windows open at one instant (a window closing at t is closed at t)."""
    if not windows:
        return 0
    points = sorted([(s, 1) for s, _ in windows] + [(e, -1) for _, e in windows])
    level = peak = 0
    for _, step in points:
        level += step
        peak = max(peak, level)
    return peak


def open_share(windows: Sequence[Window], instances: int, width: float, n_bins: int) -> list[float]:
    """Per timeline bin, the time-weighted share of ``instances`` breakers that were open.

    1.0: every breaker open for the whole bin; 0.25 with one fleet breaker: open a quarter of
    the bin. Computed exactly from the step function of open breakers (its running integral,
    which is linear between changes, read at the bin edges).
    """
    if not windows or n_bins <= 0 or instances <= 0:
        return [0.0] * max(n_bins, 0)
    times = np.array([t for w in windows for t in w], dtype=np.float64)
    steps = np.tile(np.array([1.0, -1.0]), len(windows))
    order = np.argsort(times, kind="stable")
    times, steps = times[order], steps[order]
    level = np.cumsum(steps)
    area = np.concatenate(([0.0], np.cumsum(level[:-1] * np.diff(times))))
    edges = np.arange(n_bins + 1, dtype=np.float64) * width
    integral = np.interp(edges, times, area, left=0.0, right=float(area[-1]))
    share = np.diff(integral) / width / instances
    return [float(v) for v in np.clip(share, 0.0, 1.0)]


def breaker_section(
    result: RunResult, refused: np.ndarray, width: float, n_bins: int
) -> BreakerSection:
    """Opens, closes, half-opens, refusals, time open, open windows and their share per bin."""
    events = result.guard_events
    config = result.policy.get("breaker") or {}
    recovery = config.get("recovery_timeout") if config.get("enabled") else None
    per_instance = breaker_windows(events, result.end_time, recovery)
    changes = [e for e in events if e.kind == "breaker"]
    fleet = any(client is None for _, client in per_instance) or config.get("scope") == "fleet"
    every = [w for ws in per_instance.values() for w in ws]
    merged = union(every)
    attempts, calls = result.attempts, result.calls
    instances = 1 if fleet else max(1, int(result.scenario.clients.count))
    gave_up_refused = (calls["outcome"] == rec.GAVE_UP) & (
        calls["error"] == _code(result.error_names, CIRCUIT_OPEN)
    )
    section: BreakerSection = {
        "scope": "fleet" if fleet else "client",
        "opened": sum(e.value == "open" for e in changes),
        "closed": sum(e.value == "closed" for e in changes),
        "half_open": sum(e.value == "half_open" for e in changes),
        "refused": int(refused.sum()),
        "refused_retries": int(np.sum(refused & (attempts["attempt"] > 1))),
        "calls_refused": int(gave_up_refused.sum()),
        "open_seconds": float(sum(end - start for start, end in every)),
        "open_at_end": sum(ws[-1][1] >= result.end_time for ws in per_instance.values() if ws),
        "peak_open_clients": None if fleet else peak_overlap(every),
        "windows": [[start, end] for start, end in merged[:MAX_WINDOWS]],
        "windows_total": len(merged),
        "windows_truncated": len(merged) > MAX_WINDOWS,
        "open_share": open_share(every, instances, width, n_bins),
        "refused_per_s": _per_second(attempts["start"][refused], width, n_bins),
    }
    return section


# --- budgets and limiters ----------------------------------------------------------------------


def budget_refused_calls(
    calls: np.ndarray, events: Sequence[GuardEvent], names: Sequence[str], max_attempts: int
) -> np.ndarray:
    """Which calls a retry budget ended: each ``budget_refused`` event ends one call at once.

    An event carries its time and (for a client-scoped budget) the client, not the call, so
    each is matched to a call that gave up at that instant (of that client), preferring calls
    that had attempts left (one that used its last attempt gave up anyway). Two calls of one
    fleet-wide budget that both gave up at the very same instant, one refused and one out of
    ``max_delay``, could be told apart wrongly; the count is exact either way.
    """
    refusals: dict[tuple[float, Hashable], int] = defaultdict(int)
    for event in events:
        if event.kind == "budget_refused":
            refusals[(event.time, event.client)] += 1
    mask = np.zeros(len(calls), dtype=bool)
    if not refusals:
        return mask
    circuit = _code(names, CIRCUIT_OPEN)
    candidates = np.flatnonzero((calls["outcome"] == rec.GAVE_UP) & (calls["error"] != circuit))
    # Calls with attempts left first: they are the ones a refusal (not the limit) ended.
    order = np.argsort(calls["attempts"][candidates] >= max_attempts, kind="stable")
    ends, owners = calls["end"], calls["client"]
    for i in candidates[order]:
        for key in ((float(ends[i]), int(owners[i])), (float(ends[i]), None)):
            if refusals.get(key, 0) > 0:
                refusals[key] -= 1
                mask[i] = True
                break
    return mask


def budget_section(result: RunResult, width: float, n_bins: int) -> BudgetSection:
    """Retries a budget refused, as a count, a share of the retries asked for and per bin."""
    config = result.policy.get("budget") or {}
    times = [e.time for e in result.guard_events if e.kind == "budget_refused"]
    # Every retry that was sent (or refused by a breaker after the budget let it go) was allowed.
    allowed = int(np.sum(result.attempts["attempt"] > 1))
    asked = allowed + len(times)
    return {
        "kind": config.get("kind") if config.get("enabled") else None,
        "scope": config.get("scope") if config.get("enabled") else None,
        "max_total_time": config.get("max_total_time"),
        "refused": len(times),
        "retries_asked": asked,
        "refused_share": len(times) / asked if asked else None,
        "refused_per_s": _per_second(np.asarray(times, dtype=np.float64), width, n_bins),
    }


def limiter_section(result: RunResult, width: float, n_bins: int) -> LimiterSection:
    """Sends a rate limiter held back, for how long in all and on average, and the rate it set
    at its last throttle (a client-scoped limiter: the mean over clients of each one's last)."""
    delays = [e for e in result.guard_events if e.kind == "limiter_delay"]
    rates = [e for e in result.guard_events if e.kind == "limiter_rate"]
    last: dict[tuple[str, Hashable], float] = {}
    for event in rates:
        last[(event.name, event.client)] = float(event.value)
    total = float(sum(float(e.value) for e in delays))
    return {
        "delays": len(delays),
        "delayed_seconds": total,
        "mean_delay": total / len(delays) if delays else None,
        "throttles": len(rates),
        "last_rate": sum(last.values()) / len(last) if last else None,
        "delays_per_s": _per_second(
            np.array([e.time for e in delays], dtype=np.float64), width, n_bins
        ),
    }


def guards_section(result: RunResult, width: float, n_bins: int) -> Guards | None:
    """The document's ``guards`` section (None when no mechanism is on and no guard acted).

    ``width`` and ``n_bins`` are the timeline's, so every per-bin series lines up with it.
    """
    names = result.error_names
    refused = refused_mask(result.attempts, names)
    kinds = {e.kind for e in result.guard_events}
    on = mechanisms_on(result.policy)
    if not on and not kinds and not refused.any():
        return None
    section: Guards = {"mechanisms": on, "bin_width": width}
    if "breaker" in on or "breaker" in kinds or refused.any():
        section["breaker"] = breaker_section(result, refused, width, n_bins)
    if "budget" in on or "budget_refused" in kinds:
        section["budget"] = budget_section(result, width, n_bins)
    if "limiter" in on or kinds & {"limiter_delay", "limiter_rate"}:
        section["limiter"] = limiter_section(result, width, n_bins)
    return section


def _per_second(times: np.ndarray, width: float, n_bins: int) -> list[float]:
    """Events per second in each timeline bin (a late one counts in the last bin)."""
    counts = np.zeros(max(n_bins, 0), dtype=np.int64)
    if len(times) and n_bins > 0:
        idx = np.clip((times / width).astype(np.int64), 0, n_bins - 1)
        np.add.at(counts, idx, 1)
    return [float(v) for v in counts / width]
