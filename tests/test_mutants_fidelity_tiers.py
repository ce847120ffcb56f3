"""Tests written to kill mutants of ``retrysim/sim/fidelity_tiers.py`` that survived its own
tests.

The mutation run of ``retrysim/sim/`` (docs/mutation.md) left these edits of fidelity mode's
tiers alive: each test below pins behaviour the module's tests did not hold: how a call below
that succeeded answers the request above it, how long the run waits for work its callers gave
up on, and what a run without tiers says of its tiers. Every test asserts what a caller sees
(a run's records, its end), never the text of a mutated line.
"""

from __future__ import annotations

import math
from typing import Any

from retrysim.model.scenario import parse_scenario
from retrysim.sim import records as rec
from retrysim.sim.engine import simulate
from retrysim.sim.fidelity import run_with_decorators
from tests.test_fidelity_tiers import assert_tiers_agree


def _two_tiers(gateway: dict[str, Any], db: dict[str, Any], **top: Any) -> dict[str, Any]:
    """One client calling a gateway once at 0 s, no retries; the gateway calls a db."""
    clients = {"count": 1, "arrival": {"kind": "burst", "at": 0.0}}
    return {
        "seed": 1,
        "duration": 2,
        "policy": {"max_attempts": 1},
        "clients": clients | top,
        "tiers": {"gateway": {"callers": 1} | gateway, "db": db},
    }


def test_a_call_below_that_succeeded_answers_its_request_as_served() -> None:
    """The gateway's call to the db is hedged, and the hedge falls due at the instant the
    first send answers, into an outage that starts then: the call below succeeded on the
    first send's answer, so the gateway's attempt is answered served (ok, no error) and the
    client's call succeeds, in the decorated run as in the engine."""
    hedge = {"enabled": True, "max_attempts": 2, "delay": 0.25}
    scenario = parse_scenario(
        _two_tiers(
            {
                "policy": {"max_attempts": 1, "hedge": hedge},
                "service": {"kind": "ideal", "latency": 0.25},
            },
            {
                "service": {"kind": "ideal", "latency": 0.25},
                "faults": [{"kind": "outage", "start": 0.5, "end": 100}],
            },
        )
    )
    engine, decorated = simulate(scenario), run_with_decorators(scenario)
    for run in (engine, decorated):
        gateway, db = run.tiers
        assert db.calls["outcome"].tolist() == [rec.SUCCEEDED]
        assert db.attempts["hedge"].tolist() == [0, 1]  # the hedge was sent
        assert gateway.attempts["outcome"].tolist() == [rec.OK]
        assert gateway.attempts["error"].tolist() == [0]
        assert gateway.attempts["end"].tolist() == [0.5]
        assert gateway.calls["outcome"].tolist() == [rec.SUCCEEDED]
        assert gateway.calls["error"].tolist() == [0]


def test_work_below_still_running_at_the_time_limit_is_left_unfinished() -> None:
    """The client times out at 1 s; the call the gateway made for it runs on, and its db
    answer is due at 10.5 s, past the run's time limit (10 s): the run stops at the limit,
    so that call stays unfinished (no end) and the run ends when the client's call did,
    as in the engine. (Waiting past the limit, or for ever, is what this pins down.)"""
    data = _two_tiers(
        {"policy": {"max_attempts": 1}, "service": {"kind": "ideal", "latency": 0.5}},
        {"service": {"kind": "ideal", "latency": 10.0}},
        timeout=1.0,
    )
    scenario = parse_scenario(data | {"limits": {"max_time": 10.0}})
    engine, decorated = simulate(scenario), run_with_decorators(scenario)
    assert_tiers_agree(scenario, engine, decorated)
    gateway, db = decorated.tiers
    assert gateway.calls["end"].tolist() == [1.0]
    assert gateway.attempts["outcome"].tolist() == [rec.TIMED_OUT]
    assert db.calls["outcome"].tolist() == [rec.UNFINISHED]
    assert math.isnan(float(db.calls["end"][0]))
    assert decorated.end_time == engine.end_time == 1.0


def test_a_run_without_tiers_has_no_tier_runs() -> None:
    """A scenario without ``[tiers]``: the decorated run's tiers are an empty list, as the
    engine's are (what code iterating over a run's tiers reads)."""
    scenario = parse_scenario(
        {"clients": {"count": 2}, "service": {"kind": "ideal", "latency": 0.1}}
    )
    decorated = run_with_decorators(scenario)
    assert decorated.tiers == simulate(scenario).tiers == []
    assert len(decorated.tiers) == 0
