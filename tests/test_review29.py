"""Review of issue 29's engine: cases the tiers, replicas and hedging got wrong, kept fixed.

Each test states a law the change broke in one combination (hedging over a network, ...),
read off the records of a small run.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from retrysim.model.library import load_scenario
from retrysim.model.scenario import Scenario, parse_scenario
from retrysim.results.tiers import tiers_section
from retrysim.sim import records as rec
from retrysim.sim.engine import simulate
from retrysim.sim.invariants import violations
from tests.test_fast_path import assert_identical
from tests.test_hedging_engine import groups, hedged


def over_the_network(**extra: Any) -> dict[str, Any]:
    """A service that costs nothing, behind a network whose heavy-tailed rtt is all the
    latency there is (a fixed, tiny connect: only the request and its answer vary)."""
    return {
        "service": {"kind": "ideal", "latency": 0.0},
        "network": {"rtt": {"dist": "lognormal", "median": 0.02, "p99": 1.0}, "connect": 0.001},
        **extra,
    }


def test_a_hedge_over_a_network_draws_its_own_round_trip() -> None:
    # Two sends at once (delay 0): with a round trip of its own, the hedge is the faster of
    # the two about half the time; sharing the first send's draws, it would tie and never win.
    result = simulate(hedged(sends=2, delay=0.0, clients=300, **over_the_network()))
    attempts = result.attempts
    hedges = attempts["hedge"] == 1
    won = np.sum(hedges & (attempts["outcome"] == rec.OK))
    assert np.sum(hedges) >= 250
    assert 0.3 < won / np.sum(hedges) < 0.7
    for sent in groups(result).values():  # and no two sends of a group take the same time
        if len(sent) == 2 and np.all(sent["outcome"] == rec.OK):
            assert sent["end"][0] - sent["start"][0] != sent["end"][1] - sent["start"][1]


def test_a_hedge_over_a_network_is_identical_on_both_paths() -> None:
    scenario = hedged(sends=3, delay=0.01, clients=200, flaky=0.3, **over_the_network())
    assert_identical(simulate(scenario, engine="fast"), simulate(scenario, engine="reference"))


def test_the_most_requests_per_user_call_counts_hedges() -> None:
    # Two attempts of three sends at once at the top, two attempts at the gateway, a database
    # failing nine times in ten: a user call can send the gateway 2 x 3 requests and the
    # database 2 x 3 x 2, and the bound the report states must hold what the run sent.
    scenario = parse_scenario(
        {
            "name": "hedged-graph",
            "seed": 1,
            "duration": 8,
            "policy": {
                "operation": "api",
                "max_attempts": 2,
                "min_wait": 0.05,
                "max_wait": 0.1,
                "hedge": {"enabled": True, "max_attempts": 3, "delay": 0.0},
            },
            "clients": {"count": 50, "timeout": 2, "arrival": {"kind": "uniform", "end": 4}},
            "tiers": {
                "gw": {
                    "policy": {
                        "operation": "api",
                        "max_attempts": 2,
                        "min_wait": 0.01,
                        "max_wait": 0.02,
                    },
                    "timeout": 1.0,
                    "service": {"kind": "ideal", "latency": 0.001},
                },
                "db": {"faults": [{"kind": "flaky", "probability": 0.9}]},
            },
        }
    )
    gateway, database = tiers_section(simulate(scenario), 1.0, 10)
    assert [gateway["max_attempts_per_call"], database["max_attempts_per_call"]] == [6, 12]
    for tier in (gateway, database):
        most = tier["max_attempts_per_call"]
        assert most is not None and tier["peak_per_call"] <= most


def test_the_laws_of_the_records_hold_at_every_tier() -> None:
    result = simulate(load_scenario("three-tier-storm"))
    assert violations(result) == []
    database = result.tiers[-1]
    attempts = database.attempts  # a record below the top that breaks a law ...
    attempts["end"][0] = attempts["start"][0] - 1.0
    assert violations(result) == [  # ... is seen, and named by its tier
        "tier database: an attempt ended before it started (time went back)"
    ]


def deadline_hedged(propagate: bool) -> Scenario:
    """Users who wait 0.3 s for a gateway that hedges its database calls every 0.2 s (up to
    three sends), against a database whose median is 0.2 s: at the deadline two sends are
    out, and the third one is due after it."""
    return parse_scenario(
        {
            "name": "deadline-hedged",
            "seed": 1,
            "duration": 30,
            "policy": {"operation": "api", "max_attempts": 1},
            "clients": {"count": 50, "timeout": 0.3, "arrival": {"kind": "uniform", "end": 4}},
            "tiers": {
                "gw": {
                    "policy": {
                        "operation": "api",
                        "max_attempts": 2,
                        "min_wait": 0.01,
                        "max_wait": 0.02,
                        "hedge": {"enabled": True, "max_attempts": 3, "delay": 0.2},
                    },
                    "propagate_deadline": propagate,
                    "service": {"kind": "ideal", "latency": 0.001},
                },
                "db": {
                    "service": {
                        "kind": "ideal",
                        "latency": {"dist": "lognormal", "median": 0.2, "p99": 2.0},
                    }
                },
            },
        }
    )


def test_a_hedged_call_past_its_propagated_deadline_ends_there() -> None:
    result = simulate(deadline_hedged(propagate=True))
    gateway, database = result.tiers
    calls = database.calls
    assert result.end_time > 5.0  # long after every user had given up
    assert np.all(calls["outcome"] != rec.UNFINISHED)  # so every call below has ended ...
    deadline = gateway.attempts["start"][database.parents] + 0.3
    assert np.all(calls["end"] <= deadline + 1e-9)  # ... by the deadline it carried
    timed_out = calls["outcome"] == rec.GAVE_UP
    assert np.any(timed_out)
    assert_identical(
        simulate(deadline_hedged(propagate=True), engine="reference"), result
    )  # on both paths
