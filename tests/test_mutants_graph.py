"""Call-graph links (``retrysim/sim/graph.py``): behaviour its mutation run found untested.

Each test pins what a user reads off a tiered run's records (each tier's calls, their parents,
whether a tier got its caller's deadline, the waits after an attempt a deadline cut) or what
the run keeps in memory; each fails under a mutant of the module that survived the rest of
its row.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from retrysim.model.scenario import Scenario, parse_scenario
from retrysim.sim import records as rec
from retrysim.sim.engine import Engine, RunResult, simulate

#: Waits of 1/8 s, no jitter: a retry's time is exact in binary floating point.
EXACT_WAITS = {"min_wait": 0.125, "max_wait": 0.125, "jitter": 0.0}


def tiered(
    *,
    clients: int = 8,
    timeout: float | None = 0.5,
    propagate: bool = True,
    middle: bool = False,
    gateway_latency: float = 0.25,
    bottom_latency: float = 1.0,
) -> Scenario:
    """Users call a gateway (``timeout``: theirs per attempt; None: they wait for ever) that
    calls a database, or a service that calls a database with ``middle``; the gateway (and
    the service) pass the deadline down with ``propagate``. Every user call starts at 0 and
    every latency is a binary fraction, so each time in the run is exact."""
    tier_policy = {"operation": "api", "max_attempts": 2, **EXACT_WAITS}
    tiers: dict[str, Any] = {
        "gateway": {
            "policy": tier_policy,
            "propagate_deadline": propagate,
            "service": {"kind": "ideal", "latency": gateway_latency},
        },
    }
    if middle:
        tiers["service"] = {
            "policy": tier_policy,
            "propagate_deadline": propagate,
            "service": {"kind": "ideal", "latency": 0.125},
        }
    tiers["database"] = {"service": {"kind": "ideal", "latency": bottom_latency}}
    users: dict[str, Any] = {"count": clients, "arrival": {"kind": "burst", "at": 0}}
    if timeout is not None:
        users["timeout"] = timeout
    return parse_scenario(
        {
            "name": "graph",
            "seed": 4,
            "duration": 10,
            "policy": {"operation": "api", "max_attempts": 1},
            "clients": users,
            "tiers": tiers,
        }
    )


def test_the_top_tiers_calls_serve_no_request_above_them() -> None:
    """A tier's ``parents`` give, per call, the row of the request above it served; the top
    tier's calls are the users' own, so theirs are all -1, while the tier below names real
    rows of the top tier's attempts."""
    result = simulate(tiered(timeout=None, bottom_latency=0.125))
    top, below = result.tiers
    assert len(top.calls) == 8
    assert top.parents.tolist() == [-1] * len(top.calls)
    assert len(below.calls) == 8
    assert np.all((below.parents >= 0) & (below.parents < len(top.attempts)))


def test_each_tier_says_whether_it_got_its_callers_deadline() -> None:
    """``TierRun.propagates_deadline`` is true for a tier whose caller passes its deadline
    down, and false for the top tier (its callers are the users) and without propagation."""
    passed = simulate(tiered(middle=True, bottom_latency=0.125))
    assert [tier.propagates_deadline for tier in passed.tiers] == [False, True, True]
    kept = simulate(tiered(middle=True, propagate=False, bottom_latency=0.125))
    assert [tier.propagates_deadline for tier in kept.tiers] == [False, False, False]


def test_a_tiers_callers_number_their_calls_from_zero() -> None:
    """A tier's callers make its calls; each caller numbers its own 0, 1, 2, ... in the order
    it makes them (the ``index`` column: a call's number among its client's calls)."""
    result = simulate(tiered(clients=40, timeout=None, bottom_latency=0.125))
    calls = result.tiers[1].calls
    assert len(calls) == 40
    for client in np.unique(calls["client"]):
        mine = calls[calls["client"] == client]  # in call order, which is the order made
        assert mine["index"].tolist() == list(range(len(mine)))


def test_an_attempt_the_deadline_cut_starts_no_wait() -> None:
    """Users give up at 0.5 s; the gateway's call to the database starts at 0.25 s with the
    0.25 s left as its attempt's timeout, which cuts that attempt at the deadline exactly. A
    retry would start past the deadline, so the call ends there and then: the cut attempt is
    followed by no wait (NaN), rather than by the 1/8 s wait a retry would have started."""
    result = simulate(tiered())
    below = result.tiers[1]
    attempts, calls = below.attempts, below.calls
    assert len(calls) == 8
    assert np.all(attempts["start"] == 0.25)
    assert np.all(attempts["end"] == 0.5)  # cut at the deadline, exactly
    assert np.all(attempts["outcome"] == rec.TIMED_OUT)
    assert np.all(np.isnan(attempts["wait"]))
    assert np.all(calls["end"] == 0.5) and np.all(calls["outcome"] == rec.GAVE_UP)


def test_deadline_propagation_without_a_deadline_changes_nothing() -> None:
    """With no timeout anywhere there is no deadline to pass down: propagation on or off,
    every tier's records are the same, every call ends, and the run ends by itself (no event
    is left waiting for ever, which would stop it "at the time limit")."""
    on = simulate(tiered(timeout=None, middle=True))
    off = simulate(tiered(timeout=None, middle=True, propagate=False))

    def assert_same(one: RunResult, other: RunResult) -> None:
        assert one.stopped is None and other.stopped is None
        assert one.end_time == other.end_time
        for ours, theirs in zip(one.tiers, other.tiers, strict=True):
            assert ours.attempts.tobytes() == theirs.attempts.tobytes(), ours.name
            assert ours.calls.tobytes() == theirs.calls.tobytes(), ours.name
            assert not np.any(ours.calls["outcome"] == rec.UNFINISHED), ours.name

    assert_same(on, off)


def test_a_run_keeps_no_deadline_of_a_call_that_ended() -> None:
    """A tier below keeps the deadline each live call carries from above; when the call ends
    the deadline goes with it (memory grows with calls else)."""
    engine = Engine(tiered(clients=30))
    result = engine.run()
    assert len(result.tiers[1].calls) == 30  # every call below had a deadline, and ended
    assert not np.any(result.tiers[1].calls["outcome"] == rec.UNFINISHED)
    assert engine.below is not None
    assert engine.below._deadlines == {}
