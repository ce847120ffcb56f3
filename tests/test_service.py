"""Server models and latency distributions.

Servers are checked alone against a tiny event loop (``MiniEngine``) with hand-picked request
times, then inside real runs. Expected values are worked out by hand in the comments.
"""

from __future__ import annotations

import math
from heapq import heappop, heappush
from statistics import NormalDist
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from retrysim.model.scenario import (
    Constant,
    Exponential,
    LoadLatency,
    Lognormal,
    Normal,
    Occ,
    Queue,
    RateLimited,
    UniformLatency,
    parse_scenario,
)
from retrysim.sim import records as rec
from retrysim.sim.engine import RunResult, simulate
from retrysim.sim.failures import ANSWER_BASE, CODES, CONFLICT, RATE_LIMITED, Answers
from retrysim.sim.invariants import violations
from retrysim.sim.latency import mean_of, sampler
from retrysim.sim.service import (
    LoadLatencyServer,
    OccServer,
    QueueServer,
    RateLimitedServer,
    Server,
)
from retrysim.sim.streams import LATENCY, stream_key, unit


class MiniEngine:
    """The part of the engine a server talks to, with a plain event heap and full logging."""

    def __init__(self) -> None:
        self.now = 0.0
        self.heap: list[tuple[float, int, Any, Any]] = []
        self.seq = 0
        self.cancelled: set[int] = set()
        self.answers: dict[int, tuple[float, int, float | None]] = {}  # a -> (time, code, hint)
        self.executed: dict[int, float] = {}  # a -> time the server finished its work
        self.open: set[int] = set()
        self.server: Any = None
        self.busy_log: list[tuple[float, int, int]] = []  # (time, busy, slots) after each event

    def at(self, t: float, fn: Any, arg: Any) -> int:
        heappush(self.heap, (t, self.seq, fn, arg))
        self.seq += 1
        return self.seq - 1

    def cancel(self, event: int) -> None:
        self.cancelled.add(event)

    def is_open(self, a: int) -> bool:
        return a in self.open

    def round_trip(self, call: Any, a: int) -> float:
        return 0.0  # no network

    def server_unit(self, call: Any, a: int) -> float:
        return 0.5

    def answer_code(self, value: int | str) -> int:
        return Answers((value,)).code(value)  # as if the scenario's only answer

    def schedule_done(self, t: float, call: Any, a: int, code: int) -> None:
        self.at(t, lambda item: self.server_done(*item), (call, a, code))

    def server_done(self, call: Any, a: int, code: int, hint: float | None = None) -> None:
        if code == 0:
            self.executed[a] = self.now
        if a in self.open:
            self.respond(call, a, code, hint)

    def respond(self, call: Any, a: int, code: int, hint: float | None = None) -> None:
        self.open.discard(a)
        self.answers[a] = (self.now, code, hint)

    def request(self, t: float, a: int, service_time: float) -> None:
        """Submit request ``a`` at time ``t`` (scheduled as an event)."""

        def go(_: Any) -> None:
            self.open.add(a)
            self.server.submit(None, a, self.now, service_time)

        self.at(t, go, None)

    def abandon(self, t: float, a: int) -> None:
        self.at(t, lambda _: self.open.discard(a), None)

    def run(self) -> None:
        while self.heap:
            t, seq, fn, arg = heappop(self.heap)
            if seq in self.cancelled:
                continue
            self.now = t
            fn(arg)
            if isinstance(self.server, QueueServer):
                self.busy_log.append((t, self.server.busy, self.server.slots))


def queue(**kw: Any) -> Queue:
    return Queue(kind="queue", **kw)


def run(data: dict[str, Any]) -> RunResult:
    result = simulate(parse_scenario(data))
    assert violations(result) == []
    return result


# --- ideal -----------------------------------------------------------------------------------


def test_ideal_server_finishes_after_the_drawn_service_time() -> None:
    engine = MiniEngine()
    engine.server = Server(engine)
    engine.request(1.0, 0, 0.25)
    engine.request(1.0, 1, 3.0)
    engine.run()
    assert engine.answers == {0: (1.25, 0, None), 1: (4.0, 0, None)}
    assert engine.server.capacity is None


def test_ideal_latency_in_a_run_is_the_latency_draw_of_that_call_and_attempt() -> None:
    seed = 5
    result = run(
        {
            "seed": seed,
            "policy": {"max_attempts": 1},
            "clients": {"count": 200},
            "service": {"kind": "ideal", "latency": {"dist": "uniform", "low": 0.2, "high": 0.4}},
        }
    )
    key = stream_key(seed, LATENCY)
    a, calls = result.attempts, result.calls
    took = a["end"] - a["start"]
    assert np.all((took >= 0.2) & (took < 0.4))
    for row, duration in zip(a, took, strict=True):
        client = int(calls["client"][row["call"]])
        assert duration == 0.2 + 0.2 * unit(key, client << 24, 1)


# --- queue -----------------------------------------------------------------------------------


def test_queue_serves_fifo_with_at_most_concurrency_in_service() -> None:
    # 3 slots, 10 requests of 1 s at t=0: they finish in waves at 1, 2, 3 and the last at 4.
    engine = MiniEngine()
    engine.server = QueueServer(engine, queue(concurrency=3, latency=1.0))
    for a in range(10):
        engine.request(0.0, a, 1.0)
    engine.run()
    assert [engine.answers[a][0] for a in range(10)] == [1, 1, 1, 2, 2, 2, 3, 3, 3, 4]
    assert all(busy <= 3 for _, busy, _ in engine.busy_log)
    assert engine.server.capacity == 3.0  # 3 slots / 1 s mean latency


def test_full_queue_rejects_at_once_with_the_reject_error() -> None:
    # 1 slot + 2 queue places: of 5 requests at t=2, requests 3 and 4 are refused at t=2.
    engine = MiniEngine()
    spec = queue(concurrency=1, queue_limit=2, reject_error="ConnectionAbortedError")
    engine.server = QueueServer(engine, spec)
    for a in range(5):
        engine.request(2.0, a, 1.0)
    engine.run()
    code = CODES["ConnectionAbortedError"]
    assert engine.answers[3] == (2.0, code, None)
    assert engine.answers[4] == (2.0, code, None)
    assert [engine.answers[a] for a in range(3)] == [(3.0, 0, None), (4.0, 0, None), (5.0, 0, None)]
    assert set(engine.executed) == {0, 1, 2}


def test_queue_keeps_working_on_abandoned_requests_unless_told_to_drop_them() -> None:
    for drop, executed in ((False, {0, 1, 2}), (True, {0, 2})):
        engine = MiniEngine()
        spec = queue(concurrency=1, drop_abandoned=drop)
        engine.server = QueueServer(engine, spec)
        for a in range(3):
            engine.request(0.0, a, 1.0)
        engine.abandon(0.5, 1)  # request 1's client gives up while it waits in the queue
        engine.run()
        assert set(engine.executed) == executed
        # dropping 1 lets 2 start at t=1 instead of t=2
        assert engine.executed[2] == (2.0 if drop else 3.0)


def test_queue_capacity_change_shrinks_and_restores_slots() -> None:
    # 4 slots, cut to 1 during [0.5, 3): 4 requests at t=1 of 1 s each.
    # t=1: one starts (ends 2); t=2: next starts (ends 3); t=3: slots back to 4, both remaining
    # start (end 4).
    engine = MiniEngine()
    engine.server = QueueServer(engine, queue(concurrency=4))
    engine.at(0.5, engine.server.capacity_change, 1)
    engine.at(3.0, engine.server.capacity_change, None)
    for a in range(4):
        engine.request(1.0, a, 1.0)
    engine.run()
    assert sorted(engine.answers[a][0] for a in range(4)) == [2.0, 3.0, 4.0, 4.0]
    assert all(busy <= 1 for t, busy, _ in engine.busy_log if 0.5 <= t < 3.0)


@given(
    st.integers(1, 4),
    st.integers(0, 6),
    st.lists(st.tuples(st.floats(0, 10), st.floats(0, 3)), min_size=1, max_size=40),
)
def test_queue_laws(concurrency: int, limit: int, requests: list[tuple[float, float]]) -> None:
    """Never more than `concurrency` in service; never more than `limit` waiting; work-conserving;
    a request is refused only at its arrival; every accepted request is executed."""
    engine = MiniEngine()
    server = QueueServer(engine, queue(concurrency=concurrency, queue_limit=limit))
    engine.server = server
    for a, (t, service) in enumerate(requests):
        engine.request(t, a, service)

    def check(_: Any) -> None:
        assert server.busy <= concurrency
        assert len(server.waiting) <= limit
        if server.waiting:
            assert server.busy == server.slots

    original = server.submit

    def submit(call: Any, a: int, t: float, service_time: float) -> None:
        original(call, a, t, service_time)
        check(None)

    server.submit = submit  # type: ignore[method-assign]  # spy on the instance on purpose
    engine.run()
    check(None)
    assert server.busy == 0 and not server.waiting
    for a, (t, service) in enumerate(requests):
        when, code, _ = engine.answers[a]
        if code:
            assert code == CODES["ConnectionRefusedError"] and when == t
            assert a not in engine.executed
        else:
            assert when >= t + service - 1e-9 * max(1.0, t)
            assert a in engine.executed


def test_queue_in_a_run_never_serves_more_than_its_concurrency() -> None:
    # With a constant latency L and no timeouts, a request is in service during [end - L, end).
    # Probe just after each service start (1 us, far above float rounding of the sums).
    result = run(
        {
            "policy": {"max_attempts": 1},
            "clients": {"count": 200, "arrival": {"kind": "uniform", "start": 0, "end": 5}},
            "service": {"kind": "queue", "concurrency": 3, "latency": 0.2},
        }
    )
    ends = np.sort(result.attempts["end"])
    starts = ends - 0.2
    assert np.all(result.attempts["outcome"] == rec.OK)
    in_service = [np.sum((starts <= t) & (t < ends)) for t in starts + 1e-6]
    assert max(in_service) <= 3
    assert max(in_service) == 3  # 200 requests of 0.2 s in 5 s on 3 slots: the queue fills


def test_full_queue_in_a_run_rejects_with_reject_error_at_once() -> None:
    result = run(
        {
            "policy": {"max_attempts": 1},
            "clients": {"count": 10, "arrival": {"kind": "burst", "at": 1}},
            "service": {
                "kind": "queue",
                "concurrency": 2,
                "queue_limit": 3,
                "latency": 1.0,
                "reject_error": "ServerError",
            },
        }
    )
    a = result.attempts
    refused = a["error"] == CODES["ServerError"]
    assert refused.sum() == 10 - 2 - 3
    assert np.all(a["end"][refused] == 1.0)
    assert sorted(a["end"][~refused]) == [2.0, 2.0, 3.0, 3.0, 4.0]


def test_capacity_loss_in_a_run_reduces_slots_during_its_window() -> None:
    # 4 slots cut to 1 during [0, 100): 4 requests of 1 s at t=5 finish at 6, 7, 8, 9.
    result = run(
        {
            "clients": {"count": 4, "arrival": {"kind": "burst", "at": 5}},
            "service": {"kind": "queue", "concurrency": 4, "latency": 1.0},
            "faults": [{"kind": "capacity_loss", "start": 0, "end": 100, "slots": 1}],
        }
    )
    assert sorted(result.calls["end"]) == [6.0, 7.0, 8.0, 9.0]


def test_capacity_loss_ends_and_slots_come_back() -> None:
    # slots 1 during [0, 7): requests at 5 run at 5-6, 6-7, then at 7 the last two start together.
    result = run(
        {
            "clients": {"count": 4, "arrival": {"kind": "burst", "at": 5}},
            "service": {"kind": "queue", "concurrency": 4, "latency": 1.0},
            "faults": [{"kind": "capacity_loss", "start": 0, "end": 7, "slots": 1}],
        }
    )
    assert sorted(result.calls["end"]) == [6.0, 7.0, 8.0, 8.0]


def test_capacity_loss_applies_to_requests_arriving_exactly_at_its_start() -> None:
    """The window is [start, end): a burst at t=start must already see the reduced capacity.

    4 slots cut to 1 from t=0, 4 requests of 1 s at t=0: they finish at 1, 2, 3, 4.
    """
    result = run(
        {
            "clients": {"count": 4, "arrival": {"kind": "burst", "at": 0}},
            "service": {"kind": "queue", "concurrency": 4, "latency": 1.0},
            "faults": [{"kind": "capacity_loss", "start": 0, "end": 100, "slots": 1}],
        }
    )
    assert sorted(result.calls["end"]) == [1.0, 2.0, 3.0, 4.0]


# --- load-dependent latency ------------------------------------------------------------------


def test_load_latency_grows_with_requests_in_flight() -> None:
    # base 1 s, +0.5 s per request already in flight: three at t=0 take 1, 1.5, 2 s; one more at
    # t=1.2 (two still in flight: the first finished at 1) takes 1 + 2 * 0.5 = 2 s.
    engine = MiniEngine()
    spec = parse_scenario(
        {"service": {"kind": "load_latency", "base": 1.0, "per_request": 0.5}}
    ).service
    assert isinstance(spec, LoadLatency)
    engine.server = LoadLatencyServer(engine, spec)
    for a in range(3):
        engine.request(0.0, a, 1.0)
    engine.request(1.2, 3, 1.0)
    engine.run()
    assert [engine.answers[a][0] for a in range(4)] == [1.0, 1.5, 2.0, 3.2]
    assert engine.server.in_flight == 0


def test_load_latency_in_a_run_counts_abandoned_requests() -> None:
    # 5 requests at t=0, base 1, +1 per in flight: they take 1..5 s; a 2.5 s timeout abandons the
    # last three, but they still occupy the server (end of run = 5).
    result = run(
        {
            "policy": {"max_attempts": 1},
            "clients": {"count": 5, "timeout": 2.5},
            "service": {"kind": "load_latency", "base": 1.0, "per_request": 1.0},
        }
    )
    a = result.attempts
    assert sorted(a["end"]) == [1.0, 2.0, 2.5, 2.5, 2.5]
    assert np.sum(a["outcome"] == rec.TIMED_OUT) == 3
    assert np.all(a["executed"] == 1)
    assert result.end_time == 5.0


# --- optimistic concurrency ---------------------------------------------------------------------


def test_occ_stale_writes_conflict() -> None:
    # A reads v0 at 0, commits at 1 (v1). B reads v0 at 0.5: at 1.5 v is 1, so Conflict.
    # C reads v1 at 1.2 and commits at 2.2.
    engine = MiniEngine()
    engine.server = OccServer(engine, Occ(kind="occ"))
    engine.request(0.0, 0, 1.0)
    engine.request(0.5, 1, 1.0)
    engine.request(1.2, 2, 1.0)
    engine.run()
    assert engine.answers == {0: (1.0, 0, None), 1: (1.5, CONFLICT, None), 2: (2.2, 0, None)}
    assert set(engine.executed) == {0, 2}
    assert engine.server.version == 2


def test_occ_exactly_one_of_two_simultaneous_writers_wins() -> None:
    result = run(
        {
            "policy": {"max_attempts": 1},
            "clients": {"count": 2},
            "service": {"kind": "occ", "latency": 0.5},
        }
    )
    outcomes = sorted(result.calls["outcome"].tolist())
    assert outcomes == [rec.SUCCEEDED, rec.GAVE_UP]
    loser = result.calls[result.calls["outcome"] == rec.GAVE_UP][0]
    assert result.error_names[loser["error"]] == "Conflict"
    assert loser["executions"] == 0


def test_occ_losers_retry_until_everyone_is_through() -> None:
    # Each commit makes every other in-flight write stale; with enough attempts all succeed and
    # exactly one execution per call happens (conflicts are not executions).
    result = run(
        {
            "policy": {"max_attempts": 50, "min_wait": 0.01, "max_wait": 1.0},
            "clients": {"count": 20},
            "service": {"kind": "occ", "latency": {"dist": "uniform", "low": 0.004, "high": 0.006}},
        }
    )
    assert np.all(result.calls["outcome"] == rec.SUCCEEDED)
    assert np.all(result.calls["executions"] == 1)
    conflicts = result.attempts["error"] == CONFLICT
    assert conflicts.sum() == len(result.attempts) - 20


# --- rate limited ------------------------------------------------------------------------------


def rate_limited(**kw: Any) -> RateLimited:
    return RateLimited(kind="rate_limited", **kw)


def test_rate_limiter_token_bucket_by_hand() -> None:
    # rate 2/s, burst 3: five requests at t=0 -> three pass, two get 429 with tokens = 0, so the
    # exact wait for one token is 1/2 s; as whole seconds (HTTP Retry-After) that is 1.
    for mode, hint in (("seconds", 1.0), ("exact", 0.5), ("none", None)):
        engine = MiniEngine()
        engine.server = RateLimitedServer(engine, rate_limited(rate=2, burst=3, retry_after=mode))
        for a in range(5):
            engine.request(0.0, a, 0.1)
        engine.request(1.0, 5, 0.1)  # two tokens refilled by t=1
        engine.request(1.0, 6, 0.1)
        engine.request(1.0, 7, 0.1)
        engine.run()
        codes = [engine.answers[a][1] for a in range(8)]
        assert codes == [0, 0, 0, RATE_LIMITED, RATE_LIMITED, 0, 0, RATE_LIMITED]
        assert engine.answers[3] == (0.0, RATE_LIMITED, hint)
        assert engine.server.capacity == 2


def test_a_rate_limiter_with_a_reject_answer_returns_it_without_a_hint() -> None:
    engine = MiniEngine()
    engine.server = RateLimitedServer(engine, rate_limited(rate=2, burst=3, reject_answer=429))
    for a in range(5):
        engine.request(0.0, a, 0.1)
    engine.run()
    codes = [engine.answers[a][1] for a in range(5)]
    assert codes == [0, 0, 0, ANSWER_BASE, ANSWER_BASE]  # the same bucket; rejected, answered
    assert engine.answers[3] == (0.0, ANSWER_BASE, None)


@given(
    st.floats(0.2, 20),
    st.floats(1, 10),
    st.lists(st.floats(0, 30), min_size=1, max_size=60),
)
def test_rate_limiter_never_passes_more_than_burst_plus_rate_times_t(
    rate: float, burst: float, times: list[float]
) -> None:
    engine = MiniEngine()
    engine.server = RateLimitedServer(engine, rate_limited(rate=rate, burst=burst))
    times = sorted(times)
    for a, t in enumerate(times):
        engine.request(t, a, 0.01)
    engine.run()
    accepted = sorted(t for a, t in enumerate(times) if engine.answers[a][1] == 0)
    for k, t in enumerate(accepted, start=1):
        assert k <= burst + rate * t + 1e-9
    for a, t in enumerate(times):  # every refusal is at once, with a hint of at least 1 s
        when, code, hint = engine.answers[a]
        if code:
            assert when == t and hint is not None and hint >= 1.0


@pytest.mark.parametrize("mode", ["seconds", "exact"])
@given(rate=st.floats(0.1, 50), burst=st.floats(1, 5), t0=st.floats(0, 100))
def test_waiting_the_retry_after_hint_is_enough(
    mode: str, rate: float, burst: float, t0: float
) -> None:
    """A lone client that drains the bucket and then waits exactly the hint gets a token.

    That is what a Retry-After hint promises; an 'exact' hint that is one rounding error short
    sends the client straight into another 429.
    """
    engine = MiniEngine()
    server = RateLimitedServer(engine, rate_limited(rate=rate, burst=burst, retry_after=mode))
    engine.server = server
    a = 0
    while True:
        engine.now = t0
        engine.open.add(a)
        server.submit(None, a, t0, 0.01)
        if a in engine.answers:
            break
        a += 1
    _, code, hint = engine.answers[a]
    assert code == RATE_LIMITED and hint is not None and hint > 0
    engine.now = t0 + hint
    engine.open.add(a + 1)
    server.submit(None, a + 1, t0 + hint, 0.01)
    assert a + 1 not in engine.answers, "refused again after waiting the hint"


def test_rate_limited_run_respects_the_bucket() -> None:
    rate, burst = 10.0, 5.0
    result = run(
        {
            "duration": 10,
            "policy": {"max_attempts": 1},
            "clients": {"count": 300, "arrival": {"kind": "uniform", "start": 0, "end": 5}},
            "service": {"kind": "rate_limited", "rate": rate, "burst": burst, "latency": 0.05},
        }
    )
    a = result.attempts
    ok = np.sort(a["start"][a["outcome"] == rec.OK])
    assert np.all(np.arange(1, len(ok) + 1) <= burst + rate * ok + 1e-9)
    refused = a["error"] == RATE_LIMITED
    assert refused.any()
    assert np.all(a["end"][refused] == a["start"][refused])


def test_respect_retry_after_waits_at_least_the_hint() -> None:
    # rate 0.5/s, burst 1: at t=0 one client gets the token, the other a 429 with an exact wait
    # of 1 / 0.5 = 2 s, i.e. "Retry-After: 2". The policy alone would wait 0.1 s.
    base: dict[str, Any] = {
        "policy": {"max_attempts": 2, "profile": "exponential", "min_wait": 0.1, "max_wait": 0.1},
        "clients": {"count": 2},
        "service": {"kind": "rate_limited", "rate": 0.5, "burst": 1, "latency": 0.01},
    }
    ignoring = run(base)
    loser = ignoring.attempts[ignoring.attempts["error"] == RATE_LIMITED][0]
    assert loser["wait"] == pytest.approx(0.1)

    respecting = run({**base, "policy": {**base["policy"], "respect_retry_after": True}})
    a = respecting.attempts
    first_refusal = a[(a["error"] == RATE_LIMITED) & (a["attempt"] == 1)][0]
    assert first_refusal["wait"] == 2.0
    assert np.all(respecting.calls["outcome"] == rec.SUCCEEDED)  # the token is back at t=2


def test_respect_retry_after_every_wait_covers_its_hint() -> None:
    rate = 4.0
    result = run(
        {
            "duration": 5,
            "policy": {"max_attempts": 6, "respect_retry_after": True, "min_wait": 0.01},
            "clients": {"count": 60, "arrival": {"kind": "uniform", "start": 0, "end": 2}},
            "service": {"kind": "rate_limited", "rate": rate, "burst": 2, "latency": 0.01},
        }
    )
    a = result.attempts
    refused = (a["error"] == RATE_LIMITED) & ~np.isnan(a["wait"])
    assert refused.any()
    # whole-second hints are at least 1 s
    assert np.all(a["wait"][refused] >= 1.0)


# --- latency distributions ------------------------------------------------------------------------

N = 100_000
U = (np.arange(N) + 0.5) / N  # an evenly spread sample of (0, 1)


def draws(dist: Any) -> np.ndarray:
    f = sampler(dist)
    return np.array([f(u) for u in U])


def test_constant_latency() -> None:
    assert set(draws(Constant(value=0.3)).tolist()) == {0.3}
    assert mean_of(Constant(value=0.3)) == 0.3


def test_uniform_latency() -> None:
    x = draws(UniformLatency(dist="uniform", low=1.0, high=3.0))
    assert x.min() >= 1.0 and x.max() < 3.0
    assert x.mean() == pytest.approx(2.0, abs=1e-6)
    assert mean_of(UniformLatency(dist="uniform", low=1.0, high=3.0)) == 2.0
    assert sampler(UniformLatency(dist="uniform", low=1.0, high=3.0))(0.0) == 1.0


def test_exponential_latency() -> None:
    x = draws(Exponential(dist="exponential", mean=0.5))
    assert x.min() >= 0
    assert x.mean() == pytest.approx(0.5, rel=1e-3)
    assert np.median(x) == pytest.approx(0.5 * math.log(2), rel=1e-3)  # median = mean * ln 2


def test_normal_latency_is_truncated_at_zero() -> None:
    x = draws(Normal(dist="normal", mean=0.01, std=1.0))
    assert x.min() == 0.0  # about half the mass is below 0 and clipped
    assert np.mean(x == 0.0) == pytest.approx(NormalDist(0.01, 1.0).cdf(0.0), abs=1e-3)
    y = draws(Normal(dist="normal", mean=5.0, std=0.5))
    assert y.mean() == pytest.approx(5.0, abs=1e-3)
    assert y.std() == pytest.approx(0.5, rel=1e-2)
    f = sampler(Normal(dist="normal", mean=0.0, std=2.0))
    assert all(f(u) >= 0.0 and math.isfinite(f(u)) for u in (0.0, 1e-300, 0.5, 1 - 2**-53))


@pytest.mark.parametrize(("median", "p99"), [(0.02, 0.2), (0.3, 2.7), (1.0, 1.0), (0.005, 0.05)])
def test_lognormal_latency_has_the_given_median_and_p99(median: float, p99: float) -> None:
    x = draws(Lognormal(dist="lognormal", median=median, p99=p99))
    assert x.min() > 0
    assert np.median(x) == pytest.approx(median, rel=1e-3)
    assert np.percentile(x, 99) == pytest.approx(p99, rel=1e-2)
    # mean of a lognormal: median * exp(sigma^2 / 2), sigma = ln(p99 / median) / z_0.99
    sigma = math.log(p99 / median) / NormalDist().inv_cdf(0.99)
    assert mean_of(Lognormal(dist="lognormal", median=median, p99=p99)) == pytest.approx(
        median * math.exp(sigma**2 / 2)
    )


def test_lognormal_through_the_engine_streams() -> None:
    key = stream_key(123, LATENCY)
    f = sampler(Lognormal(dist="lognormal", median=0.25, p99=2.5))
    x = np.array([f(unit(key, i << 24, 1)) for i in range(200_000)])
    assert np.median(x) == pytest.approx(0.25, rel=0.02)
    assert np.percentile(x, 99) == pytest.approx(2.5, rel=0.05)


@given(st.floats(0, 1, exclude_max=True))
def test_samplers_never_return_negative_or_non_finite(u: float) -> None:
    for dist in (
        Constant(value=0.0),
        UniformLatency(dist="uniform", low=0.0, high=2.0),
        Exponential(dist="exponential", mean=1.0),
        Normal(dist="normal", mean=0.0, std=5.0),
        Lognormal(dist="lognormal", median=0.1, p99=50.0),
    ):
        v = sampler(dist)(u)
        assert v >= 0.0 and math.isfinite(v)
