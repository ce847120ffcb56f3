"""Tests written to kill mutants of ``retrysim/sim/invariants.py`` that survived its own tests.

The module's mutation run (scripts/mutate.py, docs/mutation.md) found these behaviours of
``violations`` untested: the rounding it tolerates, how it reads open attempts and pool waits,
which tiers it checks, and laws that straddle its blocks of rows. Each test hands it records
built to sit on one side of a law and asserts the exact list of broken laws it reports.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from retrysim.model.scenario import parse_scenario
from retrysim.sim import records as rec
from retrysim.sim.invariants import SEQUENCE_BLOCK, violations
from retrysim.sim.result import RunResult, TierRun

EARLY = "an attempt started before the previous one ended plus its wait"
NUMBERING = "attempt numbers of a call are not 1, 2, 3, ..."
POOL = "an attempt waited for a connection longer than it lasted"
TIME_WENT_BACK = "an attempt ended before it started (time went back)"
CALL_BACKWARDS = "a call ended before it started"
TOO_MANY = "a call made more than max_attempts=3 attempts"


def _result(
    attempts: np.ndarray, calls: np.ndarray, end_time: float, tiers: list[TierRun] | None = None
) -> RunResult:
    return RunResult(
        scenario=parse_scenario({}),
        seed=0,
        policy={"max_attempts": 3},
        attempts=attempts,
        calls=calls,
        end_time=end_time,
        events=0,
        wall_time=0.0,
        capacity=None,
        tiers=tiers or [],
    )


def _records(*rows: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Attempt rows of call 0 (each row's fields as given; failed and waited on unless said),
    and the one call they make: gave up at its last attempt's end, or unfinished if open."""
    attempts = rec.empty_attempts(len(rows))
    attempts["outcome"] = rec.FAILED
    attempts["error"] = 1
    attempts["wait"] = np.nan
    for i, row in enumerate(rows):
        for field, value in row.items():
            attempts[field][i] = value
    calls = rec.empty_calls(1)
    calls["attempts"] = int(np.sum(attempts["hedge"] == 0))
    calls["start"] = attempts["start"][0]
    if attempts["outcome"][-1] == rec.OPEN:
        calls["outcome"], calls["end"] = rec.UNFINISHED, np.nan
    else:
        calls["outcome"], calls["end"] = rec.GAVE_UP, np.nanmax(attempts["end"])
    return attempts, calls


def _retried(end: float, wait: float, start: float) -> RunResult:
    """A call whose first attempt (sent at 0) ended at ``end`` and waited ``wait``, and whose
    second attempt was sent at ``start``."""
    attempts, calls = _records(
        {"attempt": 1, "start": 0.0, "end": end, "wait": wait},
        {"attempt": 2, "start": start, "end": start + 1.0},
    )
    return _result(attempts, calls, end_time=start + 1.0)


def _pooled(start: float, end: float, pool_wait: float, end_time: float) -> RunResult:
    """One attempt sent at ``start`` that queued ``pool_wait`` for a connection and ended at
    ``end`` (NaN: still open when the run stopped at ``end_time``)."""
    open_ = bool(np.isnan(end))
    attempts, calls = _records(
        {
            "attempt": 1,
            "start": start,
            "end": end,
            "pool_wait": pool_wait,
            "outcome": rec.OPEN if open_ else rec.OK,
            "error": 0,
        }
    )
    if not open_:
        calls["outcome"] = rec.SUCCEEDED
    return _result(attempts, calls, end_time)


def test_a_retry_a_rounding_step_early_is_tolerated_and_more_is_not() -> None:
    """The earliest a retry may go is the previous end plus its wait, less a rounding step:
    1 ns, or 1e-9 of the time when it is later than 1 s. A retry exactly a step early passes;
    twice the step early breaks the law, at any time of the run."""
    assert violations(_retried(0.5, 0.5, 1.0 - 1e-9)) == []
    assert violations(_retried(0.5, 0.5, 1.0 - 2e-9)) == [EARLY]
    assert violations(_retried(999.0, 1.0, 1000.0 - 5e-7)) == []  # 1e-6 at t = 1000
    assert violations(_retried(999.0, 1.0, 1000.0 - 2e-6)) == [EARLY]
    assert violations(_retried(0.25, 0.25, 0.5 - 8e-10)) == []  # 1 ns still, before t = 1
    assert violations(_retried(0.25, 0.25, 0.5 - 2e-9)) == [EARLY]


def test_a_pool_wait_a_rounding_step_longer_than_a_long_attempt_is_tolerated() -> None:
    """A pool wait may exceed its attempt's length by a rounding step (1 ns, or 1e-9 of a
    length over 1 s), exactly that much included; twice as much breaks the law."""
    assert violations(_pooled(0.0, 1.0, 1.0 + 1e-9, end_time=1.0)) == []
    assert violations(_pooled(0.0, 1.0, 1.0 + 3e-9, end_time=1.0)) == [POOL]
    assert violations(_pooled(0.0, 1000.0, 1000.0 + 5e-7, end_time=1000.0)) == []
    assert violations(_pooled(0.0, 1000.0, 1000.0 + 2e-6, end_time=1000.0)) == [POOL]


def test_a_pool_wait_is_held_to_its_attempts_own_length_not_to_its_start_time() -> None:
    """An attempt sent at 10 s and over at 10.5 s cannot have waited 1 s for a connection,
    however late the run stopped; 0.4 s it can."""
    assert violations(_pooled(10.0, 10.5, 1.0, end_time=50.0)) == [POOL]
    assert violations(_pooled(10.0, 10.5, 0.4, end_time=50.0)) == []


def test_an_open_attempt_lasts_until_the_run_stopped() -> None:
    """An attempt still open when the run stopped at 3 s, sent at 0, lasted 3 s: a 5 s pool
    wait breaks the law, a 2 s one does not."""
    assert violations(_pooled(0.0, np.nan, 5.0, end_time=3.0)) == [POOL]
    assert violations(_pooled(0.0, np.nan, 2.0, end_time=3.0)) == []


def test_a_closed_attempt_lasts_until_its_own_end_not_the_runs() -> None:
    """An attempt that ended at 1 s cannot have waited 2 s for a connection, even though the
    run went on to 10 s."""
    assert violations(_pooled(0.0, 1.0, 2.0, end_time=10.0)) == [POOL]


def test_an_attempt_with_no_pool_wait_is_not_held_to_the_pool_law() -> None:
    """An attempt that ended before it started breaks that law alone: it did not wait for a
    connection, so the pool-wait law (read on negative lengths) says nothing."""
    attempts, calls = _records({"attempt": 1, "start": 1.0, "end": 0.5})
    calls["start"], calls["end"] = 0.0, 1.0
    assert violations(_result(attempts, calls, end_time=1.0)) == [TIME_WENT_BACK]


def test_attempt_numbers_past_the_limit_are_named_even_when_the_count_is_within_it() -> None:
    """Three attempt rows numbered 1, 2, 4 under max_attempts=3: the count is within the
    limit but attempt 4 is not, so both that law and the numbering law are reported."""
    attempts, calls = _records(
        {"attempt": 1, "start": 0.0, "end": 0.0, "wait": 1.0},
        {"attempt": 2, "start": 1.0, "end": 1.0, "wait": 1.0},
        {"attempt": 4, "start": 2.0, "end": 2.0},
    )
    assert violations(_result(attempts, calls, end_time=2.0)) == [TOO_MANY, NUMBERING]


def _tier(name: str, result: RunResult) -> TierRun:
    return TierRun(
        name=name,
        attempts=result.attempts,
        calls=result.calls,
        parents=np.full(len(result.calls), -1),
        capacity=None,
        replicas=1,
        timeout=None,
        policy=result.policy,
        engine="fast",
    )


def _backwards_call() -> RunResult:
    attempts, calls = _records({"attempt": 1, "start": 2.0, "end": 2.0})
    calls["start"], calls["end"] = 2.0, 1.0
    return _result(attempts, calls, end_time=2.0)


def test_a_lower_tiers_broken_law_is_reported_under_its_name() -> None:
    """The laws hold in every tier: a call of tier db that ended before it started is
    reported, named by the tier, while the run's own records are clean."""
    clean = _retried(0.5, 0.5, 1.0)
    tiered = dataclasses.replace(clean, tiers=[_tier("api", clean), _tier("db", _backwards_call())])
    assert violations(tiered) == [f"tier db: {CALL_BACKWARDS}"]


def test_the_top_tiers_broken_law_is_reported_once() -> None:
    """The top tier's records are the run's own: a law they break is reported once, as the
    run's, not again under the top tier's name."""
    broken = _backwards_call()
    clean = _retried(0.5, 0.5, 1.0)
    tiered = dataclasses.replace(broken, tiers=[_tier("api", broken), _tier("db", clean)])
    assert violations(tiered) == [CALL_BACKWARDS]


def test_a_hedged_attempt_takes_the_end_of_its_own_hedges_only() -> None:
    """In a hedged run an attempt ends when its last send did. Records that number two first
    sends of a call 1 and 1 break the numbering law; each still keeps its own end (the hedge
    of the first, over at 0.8 s, does not push it to the second's 2 s), so no retry looks
    early."""
    attempts, calls = _records(
        {"attempt": 1, "start": 0.0, "end": 1.0, "wait": 0.5},
        {"attempt": 1, "start": 0.2, "end": 0.8, "hedge": 1},
        {"attempt": 1, "start": 1.5, "end": 2.0},
    )
    assert violations(_result(attempts, calls, end_time=2.0)) == [NUMBERING]


def _many_calls(early: bool) -> RunResult:
    """Records of SEQUENCE_BLOCK + 1 attempt rows: call 0 makes one attempt, every other call
    two, so the rows at SEQUENCE_BLOCK - 1 and SEQUENCE_BLOCK, the last of the first block of
    rows and the first of the next, are one call's attempts 1 and 2 (sent at 0.5 s, before
    its first ended plus its wait, when ``early``)."""
    rows = SEQUENCE_BLOCK + 1
    index = np.arange(rows)
    attempts = rec.empty_attempts(rows)
    attempts["call"] = (index + 1) // 2
    second = (index % 2 == 0) & (index > 0)
    attempts["attempt"] = np.where(second, 2, 1)
    attempts["start"] = np.where(second, 1.0, 0.0)
    attempts["end"] = attempts["start"]
    attempts["wait"] = np.where(second | (index == 0), np.nan, 1.0)
    attempts["outcome"] = rec.FAILED
    attempts["error"] = 1
    straddling = SEQUENCE_BLOCK
    assert attempts["call"][straddling] == attempts["call"][straddling - 1]
    if early:
        attempts["start"][straddling] = attempts["end"][straddling] = 0.5
    count = int(attempts["call"][-1]) + 1
    calls = rec.empty_calls(count)
    calls["call"] = np.arange(count)
    calls["attempts"] = np.bincount(attempts["call"], minlength=count)
    calls["outcome"] = rec.GAVE_UP
    calls["end"] = np.where(calls["attempts"] == 2, 1.0, 0.0)
    calls["end"][count - 1] = attempts["end"][-1]
    return _result(attempts, calls, end_time=1.0)


def test_a_law_broken_across_two_blocks_of_rows_is_found() -> None:
    """The sequence laws read rows a block at a time; a call whose attempts 1 and 2 are the
    last row of one block and the first of the next is still checked as a pair."""
    assert violations(_many_calls(early=False)) == []
    assert violations(_many_calls(early=True)) == [EARLY]
