"""Behaviour of the engine's path over pooled connections (``retrysim/sim/connected.py``) that
its mutation run found untested: a shared CPU with work for connects only, a connect that takes
exactly its timeout, replicas reached over the network, and a pool handing its connection on
past sends that were cancelled while they waited.

Every timing is a binary fraction, so the sums are exact and compared with ``==``.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from retrysim.model.scenario import parse_scenario
from retrysim.sim import records as rec
from retrysim.sim.engine import RunResult, simulate
from tests.test_client_cpu import C, L, R, durations

Q = 0.03125  # CPU per connect
ONE_TRY = {"profile": "exponential", "max_attempts": 1, "min_wait": 1, "max_wait": 1}


def run(clients: dict[str, Any] | None = None, **parts: Any) -> RunResult:
    """One process's clients over a network with fixed connect, round trip and service times."""
    data: dict[str, Any] = {
        "duration": 100,
        "policy": ONE_TRY,
        "clients": {"count": 1, "processes": 1, **(clients or {})},
        "service": {"kind": "ideal", "latency": L},
        "network": {"rtt": R, "connect": C},
        **parts,
    }
    return simulate(parse_scenario(data))


@contextmanager
def finishes_within(seconds: float) -> Iterator[None]:
    """Fail, rather than hang, when the block runs longer than ``seconds`` of real time (a
    loop that never ends inside one event would otherwise hang the test run)."""

    def expired(signum: int, frame: object) -> None:
        raise AssertionError(f"the run did not finish within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_a_shared_cpu_with_work_only_for_connects_still_sends_every_attempt() -> None:
    """With processor sharing and CPU work per connect but none per attempt, an attempt goes
    to the pool at once; its connect then takes its CPU share before the handshake. The run
    ends as the FIFO CPU's does: the same work, one attempt, the same times."""
    shared = run({"cpu_per_connect": Q, "cpu_discipline": "processor_sharing"})
    fifo = run({"cpu_per_connect": Q})
    for result in (shared, fifo):
        assert result.attempts["outcome"].tolist() == [rec.OK]
        assert durations(result) == [Q + C + R + L]
        assert result.connections is not None and result.connections["connects"] == 1


def test_a_connect_that_takes_exactly_the_connect_timeout_connects() -> None:
    """The connect timeout is a limit the handshake may reach: one that opens exactly at
    ``connect_timeout`` is not timed out (a longer one is)."""
    on_time = run({"connect_timeout": C})
    assert on_time.attempts["outcome"].tolist() == [rec.OK]
    assert durations(on_time) == [C + R + L]
    assert on_time.connections is not None
    assert on_time.connections["connect_timeouts"] == 0
    late = run({"connect_timeout": C - 0.125})
    assert durations(late) == [C - 0.125]
    assert late.connections is not None and late.connections["connect_timeouts"] == 1


def test_each_attempt_reaches_the_server_of_its_own_replica() -> None:
    """Two replicas of a one-slot queue, two clients in two processes at once: round robin
    sends one attempt to each. Both connect and travel together, and the other attempt is
    routed in between, yet each is served by its own replica: neither queues behind the
    other."""
    result = run(
        {"count": 2, "processes": 2},
        service={
            "kind": "queue",
            "concurrency": 1,
            "latency": L,
            "replicas": 2,
            "balance": "round_robin",
        },
    )
    a = result.attempts
    assert a["replica"].tolist() == [0, 1]
    assert a["outcome"].tolist() == [rec.OK, rec.OK]
    assert durations(result) == [C + R + L] * 2


def test_each_attempt_is_served_with_its_own_replicas_latency() -> None:
    """A latency spike on replica 1 only: the attempt round robin sends to replica 0 takes the
    plain service time, though replica 1's attempt was routed while it was on its way."""
    spike = 1.0
    result = run(
        {"count": 2, "processes": 2},
        service={"kind": "ideal", "latency": L, "replicas": 2, "balance": "round_robin"},
        faults=[{"kind": "latency_spike", "start": 0, "end": 10, "extra": spike, "replicas": [1]}],
    )
    a = result.attempts
    assert a["replica"].tolist() == [0, 1]
    assert durations(result) == [C + R + L, C + R + L + spike]


def test_a_released_connection_skips_cancelled_waiters_for_the_next_live_one() -> None:
    """A pool of one connection, two closed-loop clients, each attempt hedged once after
    0.125 s. Client 0's send holds the connection; client 1's send and both hedges queue.
    Each answer cancels its call's hedge where it waits; the queue's next live send gets the
    connection, past the cancelled ones: client 0's second call, queued at 0.875 behind two
    cancelled hedges, takes it at 1.5, when client 1's send is answered."""
    hedged = {**ONE_TRY, "hedge": {"enabled": True, "max_attempts": 2, "delay": 0.125}}
    with finishes_within(10):
        result = run(
            {"count": 2, "pool_size": 1, "calls_per_client": 2, "arrival": {"kind": "closed"}},
            policy=hedged,
        )
    a = result.attempts
    sends = a[a["hedge"] == 0]  # the first send of each call, in call order
    assert sends["outcome"].tolist() == [rec.OK] * 4
    assert sends["start"].tolist() == [0.0, 0.0, 0.875, 1.5]
    assert sends["pool_wait"].tolist() == [0.0, C + R + L, R + L, R + L]
    assert sends["end"].tolist() == [C + R + L, C + 2 * (R + L), 2.125, 2.75]
    hedges = a[a["hedge"] == 1]
    assert hedges["outcome"].tolist() == [rec.CANCELLED] * 4
    assert hedges["executed"].tolist() == [0] * 4  # none ever got the connection
    assert result.connections is not None and result.connections["connects"] == 1


def test_a_released_connection_skips_a_waiter_that_timed_out_in_the_queue() -> None:
    """A pool of one connection and a processor-sharing CPU whose work per attempt varies: in
    this run (seed 22), call 0 is sent first but its larger share of the CPU brings it to the
    pool after call 1, which takes the connection; call 0 and then call 2 queue. Call 0 times
    out in the queue; when call 1 times out and gives the connection back, it goes past call
    0 to call 2, which connects."""
    with finishes_within(10):
        result = run(
            {
                "count": 3,
                "pool_size": 1,
                "timeout": 1.0,
                "cpu_per_attempt": {"dist": "uniform", "low": 0.0625, "high": 1.0},
                "cpu_discipline": "processor_sharing",
                "arrival": {"kind": "uniform", "start": 0, "end": 0.5},
            },
            seed=22,
            network={"rtt": R, "connect": 0.125},
        )
    a = result.attempts
    assert a["call"].tolist() == [0, 1, 2]  # in the order they were sent
    assert a["outcome"].tolist() == [rec.TIMED_OUT] * 3
    first, holder, last = a[0], a[1], a[2]
    assert holder["executed"] == 1 and holder["pool_wait"] == 0.0  # it found the pool free
    assert first["end"] < holder["end"]  # timed out in the queue before the holder let go
    assert first["executed"] == 0 and first["pool_wait"] == 0.0  # it never had a connection
    assert last["pool_wait"] > 0.0
    assert result.connections is not None
    assert result.connections["pool_waits"] == 2  # calls 0 and 2 queued
    assert result.connections["connects"] == 2  # the holder's, then call 2's
