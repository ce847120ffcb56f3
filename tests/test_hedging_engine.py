"""Hedged requests in the engine: the laws a hedged attempt keeps, on both decision paths.

A hedged attempt is a group of sends (``retrysim.sim.hedging``): at most ``max_attempts`` of
them, the next ``delay`` after the one before (or at once after a failure), the first answer
wins and the sends still open are cancelled at that instant. These tests read the laws off
the records of generated scenarios, so any send out of its place fails them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retrysim.model.scenario import Scenario, parse_scenario
from retrysim.sim import records as rec
from retrysim.sim.engine import RunResult, simulate
from tests.test_fast_path import assert_identical


def hedged(
    sends: int = 3,
    delay: float = 0.05,
    clients: int = 300,
    flaky: float = 0.0,
    seed: int = 0,
    hedge: bool = True,
    timeout: float = 2.0,
    **extra: Any,
) -> Scenario:
    """A heavy-tailed service (median 20 ms, p99 1 s) that hedging is for."""
    data: dict[str, Any] = {
        "name": "hedged",
        "seed": seed,
        "duration": 10,
        "policy": {
            "operation": "api",
            "max_attempts": 3,
            "min_wait": 0.05,
            "max_wait": 0.1,
            "hedge": {"enabled": hedge, "max_attempts": sends, "delay": delay},
        },
        "clients": {"count": clients, "timeout": timeout, "arrival": {"kind": "uniform", "end": 5}},
        "service": {
            "kind": "ideal",
            "latency": {"dist": "lognormal", "median": 0.02, "p99": 1.0},
        },
        "faults": [{"kind": "flaky", "probability": flaky}] if flaky else [],
    }
    for key, value in extra.items():
        data[key] = value
    return parse_scenario(data)


def groups(result: RunResult) -> dict[tuple[int, int], np.ndarray]:
    """Each (call, attempt)'s sends, in the order they were sent."""
    attempts = result.attempts
    found: dict[tuple[int, int], list[int]] = {}
    for row, (call, number) in enumerate(zip(attempts["call"], attempts["attempt"], strict=True)):
        found.setdefault((int(call), int(number)), []).append(row)
    return {key: attempts[rows] for key, rows in found.items()}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sends=st.integers(2, 4),
    delay=st.sampled_from([0.0, 0.01, 0.05, 0.3]),
    flaky=st.sampled_from([0.0, 0.3, 0.9]),
    seed=st.integers(0, 2**32),
)
def test_a_hedged_attempt_keeps_its_laws(sends: int, delay: float, flaky: float, seed: int) -> None:
    result = simulate(hedged(sends, delay, clients=60, flaky=flaky, seed=seed))
    for (_call, _number), sent in groups(result).items():
        assert len(sent) <= sends
        assert sent["hedge"].tolist() == list(range(len(sent)))
        first = sent["start"][0]
        for index in range(1, len(sent)):
            # a hedge goes `delay` after the send before it, or sooner after a failure
            assert sent["start"][index] <= sent["start"][index - 1] + delay + 1e-12
            assert sent["start"][index] >= first
        won = sent["outcome"] == rec.OK
        assert won.sum() <= 1
        if won.any():
            winner_end = sent["end"][won][0]
            cancelled = sent["outcome"] == rec.CANCELLED
            assert np.all(sent["end"][cancelled] == winner_end)
            # everything else had failed before the winner answered
            others = ~won & ~cancelled
            assert np.all(sent["end"][others] <= winner_end)
        else:
            assert not (sent["outcome"] == rec.CANCELLED).any()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sends=st.integers(2, 4), flaky=st.sampled_from([0.0, 0.5]), seed=st.integers(0, 2**32))
def test_hedging_is_identical_on_both_paths(sends: int, flaky: float, seed: int) -> None:
    scenario = hedged(sends, clients=80, flaky=flaky, seed=seed)
    assert_identical(simulate(scenario, engine="fast"), simulate(scenario, engine="reference"))


def test_hedging_behind_replicas_and_tiers_is_identical_on_both_paths() -> None:
    scenario = parse_scenario(
        {
            "name": "hedged-tiers",
            "duration": 10,
            "policy": {"operation": "api", "max_attempts": 2, "min_wait": 0.05, "max_wait": 0.1},
            "clients": {"count": 100, "timeout": 3.0, "arrival": {"kind": "uniform", "end": 5}},
            "tiers": {
                "api": {
                    "policy": {
                        "operation": "api",
                        "max_attempts": 2,
                        "min_wait": 0.01,
                        "max_wait": 0.02,
                        "hedge": {"enabled": True, "max_attempts": 3, "delay": 0.03},
                    },
                    "timeout": 1.0,
                    "propagate_deadline": True,
                },
                "db": {
                    "service": {
                        "kind": "queue",
                        "concurrency": 4,
                        "latency": {"dist": "lognormal", "median": 0.01, "p99": 0.4},
                        "replicas": 3,
                        "balance": "power_of_two",
                    },
                    "faults": [{"kind": "flaky", "probability": 0.5, "replicas": [1]}],
                },
            },
        }
    )
    fast, reference = simulate(scenario, engine="fast"), simulate(scenario, engine="reference")
    assert_identical(fast, reference)
    db = fast.tiers[1].attempts
    assert (db["hedge"] > 0).any() and (db["outcome"] == rec.CANCELLED).any()
    # a hedge goes to a replica its siblings did not go to (three replicas, three sends)
    for sent in groups_of(db).values():
        assert len(set(sent["replica"].tolist())) == len(sent)


def groups_of(attempts: np.ndarray) -> dict[tuple[int, int], np.ndarray]:
    found: dict[tuple[int, int], list[int]] = {}
    for row, (call, number) in enumerate(zip(attempts["call"], attempts["attempt"], strict=True)):
        found.setdefault((int(call), int(number)), []).append(row)
    return {key: attempts[rows] for key, rows in found.items()}


def test_hedging_cuts_the_tail_and_costs_load() -> None:
    on, off = simulate(hedged(clients=2000)), simulate(hedged(clients=2000, hedge=False))

    def p99(result: RunResult) -> float:
        calls = result.calls
        return float(np.quantile(calls["end"] - calls["start"], 0.99))

    assert p99(on) < p99(off) / 3  # the lognormal's tail is what a hedge cuts
    assert len(on.attempts) > len(off.attempts)  # and the load is what it costs
    assert np.all(off.attempts["hedge"] == 0)


def test_hedging_off_leaves_the_records_as_they_were() -> None:
    with_table = hedged(hedge=False)
    data = with_table.model_dump()
    del data["policy"]["hedge"]
    without = Scenario.model_validate(data)
    assert_identical(simulate(with_table), simulate(without))


def test_a_failed_send_sends_the_next_at_once() -> None:
    result = simulate(hedged(sends=2, delay=5.0, clients=50, flaky=1.0))
    for sent in groups(result).values():
        assert len(sent) == 2  # the primary failed at once, so the hedge did not wait 5 s
        assert sent["start"][1] == sent["end"][0]


def test_a_server_that_cancels_abandoned_work_drops_a_hedges_losing_sends() -> None:
    """When a hedge's first answer wins, the other sends are cancelled; a processor-sharing
    server with ``cancel_abandoned`` stops serving them at once, so the sends left share the
    server with fewer. Kept, the losers' work slows every call: the same run is far slower."""

    def run(cancel: bool) -> RunResult:
        service = {
            "kind": "processor_sharing",
            "concurrency": 8,
            "cancel_abandoned": cancel,
            "latency": {"dist": "lognormal", "median": 0.02, "p99": 1.0},
        }
        # a timeout no call reaches: only the hedges' losers are ever abandoned
        return simulate(hedged(seed=3, timeout=600.0, service=service))

    kept, dropped = run(False), run(True)
    for result in (kept, dropped):
        assert np.count_nonzero(result.attempts["outcome"] == rec.CANCELLED) > 100
        assert np.all(result.attempts["outcome"] != rec.TIMED_OUT)

    def mean_latency(result: RunResult) -> float:
        return float(np.mean(result.calls["end"] - result.calls["start"]))

    assert mean_latency(dropped) < mean_latency(kept) / 2
