"""Laws every run must obey, checked on its records after the run (vectorised, cheap).

A violation is a bug in retrysim, never in the user's scenario, so it raises
:class:`InvariantError` rather than being reported as a result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from retrysim.sim import records as rec

if TYPE_CHECKING:
    from retrysim.sim.result import RunResult


class InvariantError(AssertionError):
    """The engine produced records that break one of its own laws."""


def violations(result: RunResult) -> list[str]:
    """Every broken law, as readable sentences (empty when all hold)."""
    problems: list[str] = []
    calls, attempts = result.calls, result.attempts
    max_attempts = int(result.policy["max_attempts"])
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
    if np.any(attempts["end"][closed] < attempts["start"][closed]):
        problems.append("an attempt ended before it started (time went back)")
    if np.any(finished & (calls["end"] < calls["start"])):
        problems.append("a call ended before it started")
    # an attempt lasts until its end, or (still open) until the run stopped
    waited = attempts["pool_wait"] > 0
    took = np.where(closed, attempts["end"], result.end_time)[waited] - attempts["start"][waited]
    if np.any(attempts["pool_wait"][waited] > took + 1e-9 * np.maximum(1.0, np.abs(took))):
        problems.append("an attempt waited for a connection longer than it lasted")
    if len(attempts) > 1:
        order = np.lexsort((attempts["attempt"], attempts["call"]))
        # the fields the laws read, each gathered on its own (a copy of whole rows would
        # cost half as much again, at a million clients a quarter of a gigabyte)
        call = attempts["call"][order]
        same = call[1:] == call[:-1]
        del call
        number = attempts["attempt"][order]
        if np.any(number[1:][same] != number[:-1][same] + 1):
            problems.append("attempt numbers of a call are not 1, 2, 3, ...")
        del number
        earliest = attempts["end"][order][:-1][same] + attempts["wait"][order][:-1][same]
        start = attempts["start"][order][1:][same]
        if np.any(start < earliest - 1e-9 * np.maximum(1.0, np.abs(earliest))):
            problems.append("an attempt started before the previous one ended plus its wait")
        if np.any(np.isnan(earliest)):
            problems.append("a retried attempt has no recorded end or wait")
    if len(attempts) and np.any(attempts["attempt"] == 0):
        problems.append("attempt numbering starts at 1")
    return problems


def assert_invariants(result: RunResult) -> None:
    problems = violations(result)
    if problems:
        raise InvariantError("; ".join(problems))
