"""The engine (``retrysim/sim/engine.py``): behaviour its mutation run found untested.

These pin lines 300 to 405 of the module (a call's end, the send of an attempt and a hedge's
row): the order of a paced send among the events of its instant, a send the limiter holds, a
guard's refusal, a black-holed attempt's timeout, a tier's answer to the tier above, a call
made after its caller's deadline, the attempts budget and a hedge sent when the attempt
columns are full. Each fails under a mutant of the module that survived the rest of its row.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from retrysim.model.scenario import Scenario, parse_scenario
from retrysim.sim import limits
from retrysim.sim import records as rec
from retrysim.sim.engine import RunResult, simulate
from retrysim.sim.invariants import violations

#: Waits of exactly 1/8 s (no jitter): every time in a tiered run is a binary fraction.
EXACT_WAITS = {"min_wait": 0.125, "max_wait": 0.125, "jitter": 0.0}


def named(result: RunResult, codes: Any) -> list[str]:
    """The error names of record codes (``""``: none)."""
    return [result.error_names[int(code)] for code in codes]


def rows(records: np.ndarray) -> list[tuple[Any, ...]]:
    """Attempt rows as (call, attempt, start, end, outcome), in call then attempt order."""
    order = np.lexsort((records["attempt"], records["call"]))
    fields = ["call", "attempt", "start", "end", "outcome"]
    return [tuple(records[f][i].item() for f in fields) for i in order]


# -- a paced send and the guards ----------------------------------------------------------------


def paced_breaker() -> Scenario:
    """Two clients at 0 share one breaker (opens at the second failure) and one send-rate
    limiter, which never throttles here so never holds a send. Seed 5's flaky window fails
    call 0's first attempt at once (its retry is due at 0.5) and lets call 1's through to a
    server that never answers in time: call 1's attempt times out at 0.5 too."""
    policy = {
        "operation": "api",
        "max_attempts": 2,
        "min_wait": 0.5,
        "max_wait": 0.5,
        "jitter": 0.0,
        "breaker": {
            "enabled": True,
            "failure_threshold": 2,
            "recovery_timeout": 60,
            "scope": "fleet",
        },
        "adaptive": {"limiter": True, "scope": "fleet"},
    }
    return parse_scenario(
        {
            "name": "paced-breaker",
            "seed": 5,
            "duration": 10,
            "policy": policy,
            "service": {"kind": "ideal", "latency": 10},
            "clients": {"count": 2, "timeout": 0.5, "arrival": {"kind": "burst", "at": 0}},
            "faults": [{"kind": "flaky", "start": 0, "end": 0.25, "probability": 0.5}],
        }
    )


def test_a_retry_due_with_a_failure_goes_before_the_breaker_hears_that_failure() -> None:
    """Call 0's retry is due at 0.5, the instant call 1's first attempt times out; the retry
    was scheduled first, and a limiter that holds nothing sends it at once, so it reaches the
    server (and times out at 1.0) before that timeout opens the breaker. Call 1's own retry
    at 1.0 then finds the breaker open: refused there and then, the call gives up with
    CircuitOpen. (The decorators, run in fidelity mode, make the same records.)"""
    result = simulate(paced_breaker())
    assert violations(result) == []
    assert rows(result.attempts) == [
        (0, 1, 0.0, 0.0, rec.FAILED),
        (0, 2, 0.5, 1.0, rec.TIMED_OUT),
        (1, 1, 0.0, 0.5, rec.TIMED_OUT),
        (1, 2, 1.0, 1.0, rec.FAILED),
    ]
    order = np.lexsort((result.attempts["attempt"], result.attempts["call"]))
    errors = named(result, result.attempts["error"][order])
    assert errors == ["ConnectionError", "TimeoutError", "TimeoutError", "CircuitOpen"]
    assert [(e.time, e.value) for e in result.guard_events if e.kind == "breaker"] == [
        (0.5, "open")
    ]
    assert result.calls["outcome"].tolist() == [rec.GAVE_UP, rec.GAVE_UP]
    assert named(result, result.calls["error"]) == ["TimeoutError", "CircuitOpen"]
    assert result.calls["end"].tolist() == [1.0, 1.0]


def throttled() -> Scenario:
    """Forty clients over 4 s; half the attempts in the first 2 s are throttled, which turns
    on one fleet-wide limiter that then holds sends back (for under a second and more)."""
    return parse_scenario(
        {
            "name": "throttled",
            "seed": 3,
            "duration": 10,
            "policy": {
                "operation": "api",
                "max_attempts": 4,
                "min_wait": 0.1,
                "max_wait": 0.2,
                "adaptive": {"limiter": True, "scope": "fleet", "limiter_min_rate": 4.0},
            },
            "service": {"kind": "ideal", "latency": 0.05},
            "clients": {
                "count": 40,
                "timeout": 1.0,
                "arrival": {"kind": "uniform", "start": 0, "end": 4},
            },
            "faults": [
                {
                    "kind": "flaky",
                    "start": 0,
                    "end": 2,
                    "probability": 0.5,
                    "error": "RateLimited",
                }
            ],
        }
    )


def test_a_send_the_limiter_holds_goes_exactly_when_its_hold_ends() -> None:
    """Each ``limiter_delay`` event (at ``t``, holding a send ``d`` seconds) has its send
    start at ``t + d``: short holds (under a second) as well as long ones; and every held
    call still ends."""
    result = simulate(throttled())
    assert violations(result) == []
    holds = [(e.time, float(e.value)) for e in result.guard_events if e.kind == "limiter_delay"]
    assert any(d < 1.0 for _, d in holds) and any(d > 1.0 for _, d in holds)
    starts = set(result.attempts["start"].tolist())
    assert [(t, d) for t, d in holds if t + d not in starts] == []
    assert rec.UNFINISHED not in result.calls["outcome"].tolist()


def test_a_black_holed_attempt_times_out_at_its_timeout() -> None:
    """A black hole never answers: each attempt ends at its start plus the client's timeout,
    timed out, and the call gives up with TimeoutError after its last one."""
    result = simulate(
        parse_scenario(
            {
                "name": "black-hole",
                "seed": 1,
                "duration": 10,
                "policy": {"operation": "api", "max_attempts": 2, **EXACT_WAITS},
                "clients": {"count": 1, "timeout": 0.5},
                "faults": [{"kind": "outage", "start": 0, "end": 100, "mode": "blackhole"}],
            }
        )
    )
    assert violations(result) == []
    assert rows(result.attempts) == [
        (0, 1, 0.0, 0.5, rec.TIMED_OUT),
        (0, 2, 0.625, 1.125, rec.TIMED_OUT),
    ]
    assert result.calls["outcome"].tolist() == [rec.GAVE_UP]
    assert named(result, result.calls["error"]) == ["TimeoutError"]
    assert result.calls["end"].tolist() == [1.125]


# -- tiers ----------------------------------------------------------------------------------------


def tiered(gateway_latency: float, database: dict[str, Any] | None = None) -> Scenario:
    """Two users (timeout 0.5 s) call a gateway that passes their deadline down to a database
    (answering in 1/8 s); ``database`` adds to the database tier's table."""
    tiers: dict[str, Any] = {
        "gateway": {
            "policy": {"operation": "api", "max_attempts": 2, **EXACT_WAITS},
            "propagate_deadline": True,
            "service": {"kind": "ideal", "latency": gateway_latency},
        },
        "database": {"service": {"kind": "ideal", "latency": 0.125}, **(database or {})},
    }
    return parse_scenario(
        {
            "name": "tiered",
            "seed": 4,
            "duration": 10,
            "policy": {"operation": "api", "max_attempts": 1},
            "clients": {"count": 2, "timeout": 0.5, "arrival": {"kind": "burst", "at": 0}},
            "tiers": tiers,
        }
    )


def test_a_tier_below_answers_the_error_it_gave_up_with_to_the_tier_above() -> None:
    """The database refuses every attempt: the gateway's call gives up at 0.25 (two attempts)
    with ConnectionError, and that error is the answer its user's attempt hears then (not a
    success, not the user's own timeout at 0.5)."""
    result = simulate(tiered(0.125, {"faults": [{"kind": "outage", "start": 0, "end": 100}]}))
    assert violations(result) == []
    users, database = result.tiers
    assert database.calls["attempts"].tolist() == [2, 2]
    assert named(result, database.calls["error"]) == ["ConnectionError"] * 2
    assert rows(users.attempts) == [(0, 1, 0.0, 0.25, rec.FAILED), (1, 1, 0.0, 0.25, rec.FAILED)]
    assert named(result, users.attempts["error"]) == ["ConnectionError"] * 2
    assert result.calls["outcome"].tolist() == [rec.GAVE_UP] * 2
    assert named(result, result.calls["error"]) == ["ConnectionError"] * 2


@pytest.mark.parametrize("gateway_latency", [0.5, 0.75])
def test_a_call_down_made_at_or_after_its_callers_deadline_sends_nothing(
    gateway_latency: float,
) -> None:
    """The gateway finishes its work at or after the users' 0.5 s deadline: its call to the
    database starts with no time left, so it sends no attempt (0 attempts on its record) and
    gives up at once with TimeoutError (gRPC's DEADLINE_EXCEEDED)."""
    result = simulate(tiered(gateway_latency))
    assert violations(result) == []
    _, database = result.tiers
    assert len(database.attempts) == 0
    calls = database.calls
    assert calls["attempts"].tolist() == [0, 0]
    assert calls["outcome"].tolist() == [rec.GAVE_UP] * 2
    assert named(result, calls["error"]) == ["TimeoutError"] * 2
    assert calls["start"].tolist() == calls["end"].tolist() == [gateway_latency] * 2


# -- the attempts budget and the columns' room --------------------------------------------------

#: Twenty clients retrying a dead dependency with no wait: only the attempts budget stops it.
STORM: dict[str, Any] = {
    "name": "storm",
    "duration": 10,
    "policy": {"max_attempts": 10_000, "min_wait": 0, "max_wait": 0, "jitter": 0},
    "clients": {"count": 20},
    "faults": [{"kind": "outage", "start": 0, "end": 1000}],
}


def test_a_storm_stops_at_exactly_the_attempts_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a budget of 2,000 attempts (the floor, above 50 per call) the run records exactly
    2,000, says it stopped at the budget, and reports every call unfinished."""
    monkeypatch.setattr(limits, "ATTEMPTS_FLOOR", 2_000)
    result = simulate(parse_scenario(STORM))
    assert len(result.attempts) == 2_000
    assert result.stopped == limits.attempts_stopped(2_000)
    assert result.calls["outcome"].tolist() == [rec.UNFINISHED] * 20


def test_a_hedge_sent_when_the_attempt_columns_are_full_is_recorded() -> None:
    """One client's calls, one every 1/1024 s, fill the attempt columns' first block of room
    exactly; only the last call's attempt goes into a black hole, so its hedge is the first
    row past that room. The hedge is recorded (sent its delay later, timed out) as every
    other row."""
    room = rec.FIRST_CAPACITY
    step = 2.0**-10
    result = simulate(
        parse_scenario(
            {
                "name": "full-columns",
                "seed": 1,
                "duration": 10,
                "policy": {
                    "operation": "api",
                    "max_attempts": 1,
                    "hedge": {"enabled": True, "max_attempts": 2, "delay": 2 * step},
                },
                "clients": {"count": 1, "calls_per_client": room, "timeout": 1.0},
                "service": {"kind": "ideal", "latency": step},
                "faults": [
                    {"kind": "outage", "start": (room - 1) * step, "end": 100, "mode": "blackhole"}
                ],
            }
        )
    )
    attempts = result.attempts
    assert len(attempts) == room + 1
    hedge = attempts[attempts["hedge"] > 0]
    assert len(hedge) == 1
    last = (room - 1) * step
    assert hedge["call"].tolist() == [room - 1]
    assert hedge["start"].tolist() == [last + 2 * step]
    assert hedge["end"].tolist() == [last + 2 * step + 1.0]
    assert result.calls["outcome"][-1] == rec.GAVE_UP
