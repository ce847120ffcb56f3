"""Laws every run must obey, checked on its records after the run (vectorised, cheap).

A violation is a bug in retrysim, never in the user's scenario, so it raises
:class:`InvariantError` rather than being reported as a result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from retrysim.retry.per_error import most_attempts
from retrysim.sim import records as rec

if TYPE_CHECKING:
    from retrysim.sim.result import RunResult


class InvariantError(AssertionError):
    """The engine produced records that break one of its own laws."""


def violations(result: RunResult) -> list[str]:
    """Every broken law, as readable sentences (empty when all hold): in the run's records,
    and in those of each tier below the top (the top tier's are the run's own), named by it."""
    problems = _violations(result.calls, result.attempts, result.policy, result.end_time)
    for tier in result.tiers[1:]:
        found = _violations(tier.calls, tier.attempts, tier.policy, result.end_time)
        problems.extend(f"tier {tier.name}: {law}" for law in found)
    return problems


def _violations(
    calls: np.ndarray, attempts: np.ndarray, policy: dict[str, Any], end_time: float
) -> list[str]:
    """The broken laws of one engine's records (``policy``: its callers', described;
    ``end_time``: when the run stopped)."""
    problems: list[str] = []
    if np.any(attempts["hedge"] > 0):
        attempts = _attempts_of_hedged(attempts)
    max_attempts = most_attempts(policy)  # an error family's own limit may be higher
    outcome = calls["outcome"]
    finished = outcome != rec.UNFINISHED
    n_ok = int(np.sum(outcome == rec.SUCCEEDED))
    n_failed = int(np.sum(outcome == rec.GAVE_UP))
    n_open = int(np.sum(outcome == rec.UNFINISHED))
    if n_ok + n_failed + n_open != len(calls):
        problems.append("calls in != succeeded + failed + unfinished")
    if np.any(np.isnan(calls["end"][finished])) or np.any(~np.isnan(calls["end"][~finished])):
        problems.append("a call has an end time iff it finished, and not otherwise")
    per_call = (
        np.bincount(attempts["call"], minlength=len(calls))
        if len(attempts)
        else np.zeros(len(calls), dtype=np.int64)
    )
    if np.any(per_call != calls["attempts"]):
        problems.append("attempt records per call differ from the calls' attempt counts")
    if np.any(attempts["attempt"] > max_attempts) or np.any(calls["attempts"] > max_attempts):
        problems.append(f"a call made more than max_attempts={max_attempts} attempts")
    closed = attempts["outcome"] != rec.OPEN
    # (NaN, the end of an attempt still open, compares false: only closed ones can fail.)
    if np.any(attempts["end"] < attempts["start"]):
        problems.append("an attempt ended before it started (time went back)")
    if np.any(finished & (calls["end"] < calls["start"])):
        problems.append("a call ended before it started")
    # an attempt lasts until its end, or (still open) until the run stopped
    waited = attempts["pool_wait"] > 0
    if np.any(waited):
        took = attempts["end"][waited]
        took[~closed[waited]] = end_time
        took -= attempts["start"][waited]
        if np.any(attempts["pool_wait"][waited] > took + 1e-9 * np.maximum(1.0, np.abs(took))):
            problems.append("an attempt waited for a connection longer than it lasted")
    if len(attempts) > 1:
        problems.extend(_sequence_violations(attempts))
    if len(attempts) and np.any(attempts["attempt"] == 0):
        problems.append("attempt numbering starts at 1")
    return problems


def _attempts_of_hedged(attempts: np.ndarray) -> np.ndarray:
    """One row per attempt of a hedged run: its first send's, ending when its last send ended
    and followed by the wait its deciding send recorded (a hedge is load, not an attempt)."""
    first = attempts[attempts["hedge"] == 0].copy()
    hedges = attempts[attempts["hedge"] > 0]
    key_first = first["call"].astype(np.int64) << 16 | first["attempt"]
    key_hedge = hedges["call"].astype(np.int64) << 16 | hedges["attempt"]
    order = np.argsort(key_first, kind="stable")
    row = order[np.searchsorted(key_first[order], key_hedge)]
    for field in ("end", "wait"):  # fmax: a NaN (none recorded) gives way to a number
        column = first[field].copy()
        np.fmax.at(column, row, hedges[field])
        first[field] = column
    result: np.ndarray = first
    return result


#: Rows of the sorted order whose fields are gathered at once: the laws on sequences never
#: hold more than this many rows' copies (a million clients make nine million attempts).
SEQUENCE_BLOCK = 1 << 18


def _sequence_violations(attempts: np.ndarray) -> list[str]:
    """The laws on each call's attempts in turn: numbered 1, 2, 3, ..., each sent no earlier
    than the one before it ended plus its wait. Rows are taken in call order (stably, so a
    call's rows stay in the order they were written, which must be attempt order too), a
    block at a time, so the copies the checks make stay small whatever the run's size."""
    numbering = "attempt numbers of a call are not 1, 2, 3, ..."
    early = "an attempt started before the previous one ended plus its wait"
    unended = "a retried attempt has no recorded end or wait"
    found: set[str] = set()
    order = np.argsort(attempts["call"], kind="stable")
    rows = len(order)
    for low in range(0, rows - 1, SEQUENCE_BLOCK):
        block = order[low : min(rows, low + SEQUENCE_BLOCK + 1)]  # one row of overlap
        call = attempts["call"][block]
        same = call[1:] == call[:-1]  # row i + 1 is the next attempt of row i's call
        del call
        number = attempts["attempt"][block]
        if np.any(number[1:][same] != number[:-1][same] + 1):
            found.add(numbering)
        del number
        before, after = block[:-1][same], block[1:][same]
        earliest = attempts["end"][before] + attempts["wait"][before]
        start = attempts["start"][after]
        if np.any(start < earliest - 1e-9 * np.maximum(1.0, np.abs(earliest))):
            found.add(early)
        if np.any(np.isnan(earliest)):
            found.add(unended)
    return [law for law in (numbering, early, unended) if law in found]


def assert_invariants(result: RunResult) -> None:
    problems = violations(result)
    if problems:
        raise InvariantError("; ".join(problems))
