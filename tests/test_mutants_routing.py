"""Tests written to kill mutants of ``retrysim/sim/routing.py`` that survived its own tests.

The module's mutation run (scripts/mutate.py, docs/mutation.md) found these behaviours of the
engine's replicas and fault gates untested: each test below pins one of them, by what a run's
records show (which sends failed and with what, which replica each send went to).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from retrysim.model.scenario import parse_scenario
from retrysim.sim import records as rec
from retrysim.sim.engine import RunResult, simulate


def _run(data: dict[str, Any]) -> RunResult:
    return simulate(parse_scenario(data))


def _first_and_hedge_replicas(result: RunResult) -> list[tuple[int, int]]:
    """(replica of an attempt's first send, replica of its first hedge), per hedged attempt."""
    attempts = result.attempts
    first = {
        (int(row["call"]), int(row["attempt"])): int(row["replica"])
        for row in attempts[attempts["hedge"] == 0]
    }
    return [
        (first[(int(row["call"]), int(row["attempt"]))], int(row["replica"]))
        for row in attempts[attempts["hedge"] == 1]
    ]


def test_every_one_of_several_outages_refuses_the_attempts_made_during_it() -> None:
    """Two outages are two gates: an attempt made during either is refused with that outage's
    error, and one made between or after them is answered."""
    result = _run(
        {
            "duration": 6,
            "policy": {"max_attempts": 1},
            "clients": {"count": 50, "arrival": {"kind": "uniform", "start": 0, "end": 5}},
            "service": {"kind": "ideal", "latency": 0.01},
            "faults": [
                {"kind": "outage", "start": 1, "end": 2, "error": "ConnectionRefusedError"},
                {"kind": "outage", "start": 3, "end": 4, "error": "ServerError"},
            ],
        }
    )
    attempts = result.attempts
    start = attempts["start"]
    for low, high, error in ((1, 2, "ConnectionRefusedError"), (3, 4, "ServerError")):
        during = (start >= low) & (start < high)
        assert np.sum(during) > 0
        assert np.all(attempts["outcome"][during] == rec.FAILED)
        assert {result.error_names[code] for code in attempts["error"][during]} == {error}
    between = ((start >= 2) & (start < 3)) | (start >= 4)
    assert np.sum(between) > 0
    assert np.all(attempts["outcome"][between] == rec.OK)


def test_a_hedge_draws_its_replica_apart_from_its_first_send() -> None:
    """Behind three randomly balanced replicas a hedge goes to one of the two its first send
    did not go to, drawn on its own key: every ordered pair of distinct replicas occurs as
    (first send, hedge), none of them twice the same replica."""
    result = _run(
        {
            "duration": 30,
            "seed": 1,
            "policy": {
                "max_attempts": 1,
                "hedge": {"enabled": True, "max_attempts": 2, "delay": 0.0},
            },
            "clients": {"count": 1, "calls_per_client": 300, "think_time": 0.1, "timeout": 1.0},
            "service": {"kind": "ideal", "latency": 0.05, "replicas": 3, "balance": "random"},
        }
    )
    pairs = _first_and_hedge_replicas(result)
    assert len(pairs) > 100
    assert all(first != hedge for first, hedge in pairs)
    assert set(pairs) == {(f, h) for f in range(3) for h in range(3) if f != h}


def test_a_cancelled_hedge_gives_its_replica_back_to_least_outstanding() -> None:
    """A hedge cancelled when its first send answered is no longer outstanding on its
    replica: a lone client's calls, one after another, find every replica idle, so
    least_outstanding takes them in turn and each replica gets the same number of sends."""
    result = _run(
        {
            "duration": 10,
            "policy": {
                "max_attempts": 1,
                "hedge": {"enabled": True, "max_attempts": 2, "delay": 0.01},
            },
            "clients": {"count": 1, "calls_per_client": 30, "think_time": 0.1, "timeout": 1.0},
            "service": {
                "kind": "ideal",
                "latency": 0.05,
                "replicas": 3,
                "balance": "least_outstanding",
            },
        }
    )
    attempts = result.attempts
    assert len(result.calls) == 30
    assert np.sum(attempts["outcome"] == rec.CANCELLED) == 30  # every hedge lost the race
    sends = np.bincount(attempts["replica"], minlength=3)
    firsts = np.bincount(attempts["replica"][attempts["hedge"] == 0], minlength=3)
    assert sends.tolist() == [20, 20, 20]
    assert firsts.tolist() == [10, 10, 10]


def test_a_failed_send_followed_by_another_records_its_error() -> None:
    """A hedged send that fails while its attempt sends again is closed without a decision;
    its row still records the error it failed with, as the deciding send's does."""
    result = _run(
        {
            "duration": 10,
            "policy": {
                "max_attempts": 2,
                "min_wait": 0.1,
                "max_wait": 0.1,
                "hedge": {"enabled": True, "max_attempts": 3, "delay": 0.01},
            },
            "clients": {"count": 5, "timeout": 1.0},
            "service": {"kind": "ideal", "latency": 0.05},
            "faults": [{"kind": "flaky", "probability": 1.0, "error": "ConnectionResetError"}],
        }
    )
    attempts = result.attempts
    assert len(attempts) == 5 * 2 * 3  # every send of every attempt went and failed
    assert np.all(attempts["outcome"] == rec.FAILED)
    names = {result.error_names[code] for code in attempts["error"]}
    assert names == {"ConnectionResetError"}


def test_a_cancelled_hedge_gives_its_pooled_connection_back() -> None:
    """A pool of two connections, one client making calls one after another, each attempt
    hedged after 0.125 s of a 0.5 s service: every call holds both connections, its first
    send wins and its hedge is cancelled. Both connections go back, so every later call finds
    them open: only the first call connects (both its sends), and no send waits for the pool."""
    scenario = parse_scenario(
        {
            "name": "hedged-pool",
            "seed": 1,
            "duration": 100,
            "policy": {
                "operation": "api",
                "max_attempts": 1,
                "hedge": {"enabled": True, "max_attempts": 2, "delay": 0.125},
            },
            "clients": {
                "count": 1,
                "processes": 1,
                "pool_size": 2,
                "calls_per_client": 5,
                "arrival": {"kind": "closed"},
            },
            "service": {"kind": "ideal", "latency": 0.5},
            "network": {"rtt": 0.125, "connect": 0.25},
        }
    )
    result = simulate(scenario)
    assert result.calls["outcome"].tolist() == [0] * 5
    attempts = result.attempts
    assert attempts["hedge"].tolist() == [0, 1] * 5
    assert attempts["outcome"].tolist() == [rec.OK, rec.CANCELLED] * 5
    assert attempts["pool_wait"].tolist() == [0.0] * 10
    assert result.connections is not None
    assert (result.connections["connects"], result.connections["pool_waits"]) == (2, 0)
