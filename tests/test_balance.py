"""Replicas behind a balancer: what each rule promises, and power of two choices against theory.

Round robin spreads attempts evenly; a fault aimed at one replica fails only the attempts the
balancer sent there; a retry with ``retry_other_host`` never goes back to a replica its call
has tried while an untried one is left. For queues behind a balancer, Mitzenmacher's
supermarket model gives the share of queues holding at least i requests at load rho: rho^i
when each request picks a replica at random (each replica is then an M/M/1 queue), and
rho^(2^i - 1), doubly exponential, when it takes the shorter of two picked at random.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrysim.model.library import load_scenario
from retrysim.model.scenario import parse_scenario
from retrysim.sim import records as rec
from retrysim.sim.engine import RunResult, simulate
from retrysim.sim.invariants import violations

RULES = ["round_robin", "random", "least_outstanding", "power_of_two"]


def replicated(
    replicas: int,
    balance: str,
    *,
    faults: list[dict[str, Any]] | None = None,
    seed: int = 1,
    rate: float = 200,
    duration: float = 5,
    **policy: Any,
) -> dict[str, Any]:
    """Poisson clients against ``replicas`` queues behind ``balance``."""
    return {
        "name": "replicas",
        "seed": seed,
        "duration": duration,
        "policy": {"operation": "api", "max_attempts": 4, "min_wait": 0.01, "max_wait": 0.05}
        | policy,
        "clients": {"count": 100, "timeout": 0.5, "arrival": {"kind": "poisson", "rate": rate}},
        "service": {
            "kind": "queue",
            "concurrency": 2,
            "latency": {"dist": "exponential", "mean": 0.01},
            "replicas": replicas,
            "balance": balance,
        },
        "faults": faults or [],
    }


def run(data: dict[str, Any]) -> RunResult:
    result = simulate(parse_scenario(data))
    assert result.stopped is None
    assert violations(result) == []
    return result


# -- what each rule promises --------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 9), st.integers(0, 2**32), st.floats(20, 400))
def test_round_robin_spreads_attempts_evenly(replicas: int, seed: int, rate: float) -> None:
    """In turn, fleet-wide: after any number of attempts, the counts differ by at most one
    (a flaky fault makes retries, which take their turn like first tries)."""
    flaky = [{"kind": "flaky", "start": 0, "end": 5, "probability": 0.3}]
    result = run(replicated(replicas, "round_robin", faults=flaky, seed=seed, rate=rate))
    counts = np.bincount(result.attempts["replica"], minlength=replicas)
    assert int(counts.max() - counts.min()) <= 1, counts.tolist()
    # in the order they were sent (the records' order), the replicas go 0, 1, ..., 0, ...
    order = result.attempts["replica"]
    assert order.tolist() == [i % replicas for i in range(len(order))]
    assert np.any(result.attempts["attempt"] > 1)  # retries took their turns too


@settings(max_examples=25, deadline=None)
@given(
    st.integers(2, 6),
    st.data(),
    st.sampled_from(RULES),
    st.sampled_from(["refuse", "blackhole"]),
    st.integers(0, 2**32),
)
def test_a_fault_on_one_replica_fails_only_the_attempts_sent_there(
    replicas: int, data: st.DataObject, rule: str, mode: str, seed: int
) -> None:
    down = data.draw(st.integers(0, replicas - 1))
    outage = {"kind": "outage", "start": 1, "end": 3, "mode": mode, "replicas": [down]}
    result = run(replicated(replicas, rule, faults=[outage], seed=seed))
    attempts = result.attempts
    failed = attempts["outcome"] != rec.OK
    there = attempts["replica"] == down
    inside = (attempts["start"] >= 1) & (attempts["start"] < 3)
    # every failure is the dead replica's, in its window; and everything sent there then failed
    assert np.all(there[failed] & inside[failed])
    assert np.all(failed[there & inside])
    assert np.all(
        attempts["outcome"][failed] == (rec.TIMED_OUT if mode == "blackhole" else rec.FAILED)
    )


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 6), st.sampled_from(RULES), st.integers(0, 2**32), st.data())
def test_a_retry_to_another_host_never_returns_to_a_tried_one_while_one_is_untried(
    replicas: int, rule: str, seed: int, data: st.DataObject
) -> None:
    """Envoy's previous-hosts predicate: attempt n of a call goes to a replica not among its
    first n - 1 while fewer than all replicas have been tried."""
    down = sorted(data.draw(st.sets(st.integers(0, replicas - 1), min_size=1)))
    outage = {"kind": "outage", "start": 0, "end": 4, "replicas": down}
    # 50 a second: one replica alone (200 a second) serves them all without a timeout
    scenario = replicated(
        replicas, rule, faults=[outage], seed=seed, rate=50, retry_other_host=True
    )
    scenario["policy"]["max_attempts"] = replicas + 2  # room to run out of untried replicas
    result = run(scenario)
    attempts = result.attempts
    order = np.lexsort((attempts["attempt"], attempts["call"]))
    retried = 0
    for call in np.unique(attempts["call"][attempts["attempt"] > 1]):
        hosts = attempts["replica"][order][attempts["call"][order] == call].tolist()
        for n, host in enumerate(hosts):
            tried = set(hosts[:n])
            if len(tried) < replicas:
                assert host not in tried, (call, hosts)
        retried += 1
    assert retried > 0
    if len(down) < replicas:
        # a replica that is up was always found in time: no call failed
        assert np.all(result.calls["outcome"] == rec.SUCCEEDED)


def test_without_retry_other_host_retries_do_go_back_to_a_tried_replica() -> None:
    """The contrast: without the predicate, some retry lands on a replica its call tried."""
    outage = {"kind": "outage", "start": 0, "end": 4, "replicas": [1]}
    result = run(replicated(3, "random", faults=[outage]))
    attempts = result.attempts
    first = attempts[attempts["attempt"] == 1]
    second = attempts[attempts["attempt"] == 2]
    host_of_first = dict(zip(first["call"].tolist(), first["replica"].tolist(), strict=True))
    assert any(
        host_of_first[c] == r for c, r in zip(second["call"], second["replica"], strict=True)
    )


# -- power of two choices against the supermarket model -----------------------------------------


N, RHO, MEAN, DURATION, WARM_UP = 20, 0.7, 0.01, 40.0, 4.0


def queue_lengths(rule: str) -> tuple[np.ndarray, np.ndarray, float]:
    """An open-loop Poisson run at load ``RHO`` over ``N`` single-worker replicas with
    exponential service (M/M/1 each): at every arrival after the warm-up, each replica's
    queue length (requests sent there and not answered; rows: replicas), the length of the
    one the request went to, and the run's p99 latency."""
    data: dict[str, Any] = {
        "name": "supermarket",
        "seed": 1,
        "duration": DURATION,
        "policy": {"operation": "api", "max_attempts": 1},
        "clients": {"count": 1000, "arrival": {"kind": "poisson", "rate": RHO * N / MEAN}},
        "service": {
            "kind": "queue",
            "concurrency": 1,
            "queue_limit": 100_000,
            "latency": {"dist": "exponential", "mean": MEAN},
            "replicas": N,
            "balance": rule,
        },
    }
    attempts = run(data).attempts
    assert np.all(attempts["outcome"] == rec.OK)
    arrivals = attempts["start"][attempts["start"] >= WARM_UP]
    lengths = np.empty((N, len(arrivals)), dtype=np.int64)
    for replica in range(N):
        mine = attempts[attempts["replica"] == replica]
        sent = np.searchsorted(np.sort(mine["start"]), arrivals, side="left")
        answered = np.searchsorted(np.sort(mine["end"]), arrivals, side="right")
        lengths[replica] = sent - answered
    chosen = attempts["replica"][attempts["start"] >= WARM_UP].astype(np.int64)
    seen = lengths[chosen, np.arange(len(arrivals))]
    latency = attempts["end"] - attempts["start"]
    return lengths, seen, float(np.percentile(latency, 99))


def share(lengths: np.ndarray, at_least: int) -> float:
    return float(np.mean(lengths >= at_least))


@pytest.mark.slow
def test_power_of_two_choices_cuts_the_queue_tail_doubly_exponentially() -> None:
    """Tolerances, from the theory:

    - random: each replica receives a Poisson stream at load rho (a split of one), so it is an
      M/M/1 queue and P(len >= i) = rho^i exactly, for any N; arrivals see time averages
      (PASTA). Only sampling error remains: 10% for i <= 4.
    - power of two: rho^(2^i - 1) is the N -> infinity limit; a finite fleet is a little worse
      and the gap grows with i (the limit is approached from above). P(len >= 1) = rho for
      every rule (the busy share of a work-conserving fleet); i = 2 within 10%, i = 3 between
      0.8 and 1.5 times the limit.
    - the gap: at i = 4 the limit's ratio is rho^-11 = 51; a request finding a queue of 3 or
      more is rho^3 = 34% of requests at random against about rho^14 = 0.7% with two choices.
      Both must be at least an order of magnitude apart.
    - least outstanding (join the shortest queue) is better still than two choices.
    """
    found = {rule: queue_lengths(rule) for rule in ("random", "power_of_two", "least_outstanding")}
    rand, rand_seen, rand_p99 = found["random"]
    two, two_seen, two_p99 = found["power_of_two"]
    least, least_seen, least_p99 = found["least_outstanding"]

    for i in range(1, 5):
        assert share(rand, i) == pytest.approx(RHO**i, rel=0.10), i
        assert share(rand_seen, i) == pytest.approx(RHO**i, rel=0.10), i
    assert share(two, 1) == pytest.approx(RHO, rel=0.05)
    assert share(least, 1) == pytest.approx(RHO, rel=0.05)
    assert share(two, 2) == pytest.approx(RHO**3, rel=0.10)
    assert 0.8 * RHO**7 <= share(two, 3) <= 1.5 * RHO**7

    assert share(rand, 4) >= 10 * share(two, 4)
    assert share(rand_seen, 3) >= 10 * share(two_seen, 3)
    assert share(least, 2) < share(two, 2) / 3
    assert share(least_seen, 3) <= share(two_seen, 3)
    assert rand_p99 > two_p99 > least_p99


def test_the_bundled_replica_down_needs_retry_other_host() -> None:
    """``replica-down``: without the predicate some retries go back to the black hole, some
    calls fail and the p99 holds two timeouts; with it none does, none fails, one timeout."""
    found = {}
    for other in (False, True):
        scenario = load_scenario("replica-down").with_overrides({"policy.retry_other_host": other})
        result = run(scenario.model_dump(mode="python"))
        calls = result.calls
        latency = calls["end"] - calls["start"]
        found[other] = (int(np.sum(calls["outcome"] == rec.GAVE_UP)), np.percentile(latency, 99))
    timeout = load_scenario("replica-down").clients.timeout
    assert timeout is not None
    assert found[False][0] > 0 and found[True][0] == 0
    assert found[False][1] > 2 * timeout > found[True][1] > timeout
