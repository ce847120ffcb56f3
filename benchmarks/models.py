"""The same model written without retrysim: twice in SimPy, and as a bare heap-and-numpy loop.

The suite's yardsticks. A user who did not have retrysim would write the herd model in SimPy
(one process per client, a ``Resource`` for the server's slots), or, knowing SimPy well, the
lean model (a process per call, no process per attempt); someone chasing speed would write the
floor: one ``heapq`` of events, every random number drawn up front with numpy (and its twin in
C, :mod:`benchmarks.c_floor`). None uses tenacity or retrysim's engine: the model's numbers
(clients, server, outage, policy) are read from a retrysim scenario once, into
:class:`HerdSpec`, and that is all.

What is modelled (the features ``thundering-herd`` and the 10k burst of
:mod:`benchmarks.engine` use, and nothing else): a burst of clients at one instant, each making
``calls_per_client`` calls ``think_time`` apart (a follow-up only before ``duration``); one
outage window refusing at once; an ``ideal`` server (every request served after its latency) or
a ``queue`` server (``concurrency`` slots, a FIFO of ``queue_limit``, an immediate refusal when
full; requests whose client timed out are still served, as retrysim's queue does without
``drop_abandoned``); the client's timeout; and the documented profile's wait before retry n,
``min(max_wait, min_wait * 2**(n-1) + U(0, jitter))``, up to ``max_attempts`` attempts, every
error retryable. The random draws are not retrysim's streams, so results agree with retrysim's
to sampling noise, not bit for bit.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from retrysim.model.scenario import Burst, Ideal, Lognormal, Queue, Scenario
from retrysim.sim.policy import policy_for

_Z99 = NormalDist().inv_cdf(0.99)


@dataclass(frozen=True)
class HerdSpec:
    """The numbers of a herd model, read once from a scenario."""

    clients: int
    calls_per_client: int
    think_time: float
    timeout: float | None  # the client's; None: waits for ever
    duration: float
    arrive_at: float
    outage: tuple[float, float]  # refused in [start, end)
    concurrency: int | None  # None: the ideal server (no slots, no queue)
    queue_limit: int
    mu: float  # service time = exp(mu + sigma * Z)
    sigma: float
    max_attempts: int
    min_wait: float
    max_wait: float
    jitter: float
    seed: int

    @classmethod
    def of(cls, scenario: Scenario) -> HerdSpec:
        """The spec of ``scenario``; ValueError for anything the two models do not model."""
        clients, service = scenario.clients, scenario.service
        if not isinstance(clients.arrival, Burst):
            raise ValueError("the herd models run burst arrivals only")
        if len(scenario.faults) != 1 or scenario.faults[0].kind != "outage":
            raise ValueError("the herd models run one outage fault")
        outage = scenario.faults[0]
        if getattr(outage, "mode", "refuse") != "refuse":
            raise ValueError("the herd models' outage refuses")
        if not isinstance(service, Ideal | Queue) or not isinstance(service.latency, Lognormal):
            raise ValueError("the herd models run an ideal or queue server, lognormal latency")
        if isinstance(service, Queue) and service.drop_abandoned:
            raise ValueError("the herd models' queue serves abandoned requests")
        policy = policy_for(scenario)
        if policy.guards or policy.profile != "documented":
            raise ValueError("the herd models run the documented profile without guards")
        median, p99 = service.latency.median, service.latency.p99
        return cls(
            clients=clients.count,
            calls_per_client=clients.calls_per_client or 1,
            think_time=clients.think_time,
            timeout=clients.timeout,
            duration=scenario.duration,
            arrive_at=clients.arrival.at,
            outage=(outage.start, outage.until),
            concurrency=service.concurrency if isinstance(service, Queue) else None,
            queue_limit=service.queue_limit if isinstance(service, Queue) else 0,
            mu=math.log(median),
            sigma=math.log(p99 / median) / _Z99,
            max_attempts=policy.max_attempts,
            min_wait=policy.min_wait,
            max_wait=policy.max_wait,
            jitter=policy.jitter,
            seed=scenario.seed,
        )


@dataclass(frozen=True)
class Summary:
    """What a run of any of the models (or retrysim) comes to, for checking they agree."""

    calls: int
    attempts: int
    succeeded: int

    @property
    def success_rate(self) -> float:
        return self.succeeded / self.calls if self.calls else math.nan

    @property
    def attempts_per_call(self) -> float:
        return self.attempts / self.calls if self.calls else math.nan

    def as_dict(self) -> dict[str, float]:
        return {
            "calls": self.calls,
            "attempts": self.attempts,
            "succeeded": self.succeeded,
            "success_rate": self.success_rate,
            "attempts_per_call": self.attempts_per_call,
        }


def summary_of(result: Any) -> Summary:
    """A retrysim ``RunResult``'s summary."""
    from retrysim.sim import records as rec

    calls = result.calls
    return Summary(
        calls=len(calls),
        attempts=len(result.attempts),
        succeeded=int((calls["outcome"] == rec.SUCCEEDED).sum()),
    )


# -- SimPy ---------------------------------------------------------------------------------------


def simpy_available() -> bool:
    """Whether SimPy is installed (a benchmark-only dependency: the ``bench`` extra)."""
    import importlib.util

    return importlib.util.find_spec("simpy") is not None


def run_simpy(spec: HerdSpec) -> Summary:
    """The herd model in SimPy: one process per client, a ``Resource`` for the server's slots.

    Written as a SimPy user would: each attempt's request is its own process (the server goes
    on serving it when the client stops waiting), the client waits for it or its timeout,
    whichever comes first, and sleeps its backoff with ``env.timeout``.
    """
    import random

    import simpy

    env = simpy.Environment()
    rng = random.Random(spec.seed)
    slots = simpy.Resource(env, capacity=spec.concurrency) if spec.concurrency else None
    counts = {"calls": 0, "attempts": 0, "succeeded": 0}
    start, end = spec.outage

    def serve(service_time: float) -> Generator[Any, Any, None]:
        assert slots is not None
        with slots.request() as slot:
            yield slot
            yield env.timeout(service_time)

    def attempt() -> Generator[Any, Any, bool]:
        """One attempt: True when the client hears a success."""
        if start <= env.now < end:
            return False  # refused at once
        service_time = math.exp(spec.mu + spec.sigma * rng.gauss(0.0, 1.0))
        work: simpy.Event
        if slots is None:
            work = env.timeout(service_time)
        elif slots.count < slots.capacity or len(slots.queue) < spec.queue_limit:
            work = env.process(serve(service_time))
        else:
            return False  # the queue is full: rejected at once
        if spec.timeout is None:
            yield work
            return True
        answered = yield work | env.timeout(spec.timeout)
        return work in answered

    def client() -> Generator[Any, Any, None]:
        for index in range(spec.calls_per_client):
            if index and env.now >= spec.duration:
                return
            counts["calls"] += 1
            for n in range(1, spec.max_attempts + 1):
                counts["attempts"] += 1
                ok = yield env.process(attempt())
                if ok:
                    counts["succeeded"] += 1
                    break
                if n < spec.max_attempts:
                    wait = spec.min_wait * 2 ** (n - 1) + rng.uniform(0, spec.jitter)
                    yield env.timeout(max(0.0, min(spec.max_wait, wait)))
            if index + 1 < spec.calls_per_client:
                yield env.timeout(spec.think_time)

    def fleet() -> Generator[Any, Any, None]:
        yield env.timeout(spec.arrive_at)
        for _ in range(spec.clients):
            env.process(client())

    env.process(fleet())
    env.run()
    return Summary(counts["calls"], counts["attempts"], counts["succeeded"])


def _served(env: Any, request: Any, service_time: float) -> Any:
    """The end of ``request``'s service, starting now (it has its slot), which frees the slot.

    A callback, not a process: the lean model's server costs one event per served request.
    """
    done = env.timeout(service_time)
    done.callbacks.append(lambda _: request.resource.release(request))
    return done


def run_simpy_lean(spec: HerdSpec) -> Summary:
    """The herd model in SimPy as an expert writes it: one process per call, attempts a loop.

    :func:`run_simpy` pays for a process per attempt and one per served request; here a call's
    own process loops over its attempts and waits on the server's events directly (the slot
    request raced against the timeout, then the service). A request its client stopped waiting
    for is still served, as retrysim's queue without ``drop_abandoned`` serves it: callbacks,
    not processes, keep its slot for its service time. The lean model is the fair SimPy
    yardstick for the native core: the fastest SimPy a user could reasonably write.
    """
    import random

    import simpy

    env = simpy.Environment()
    rng = random.Random(spec.seed)
    slots = simpy.Resource(env, capacity=spec.concurrency) if spec.concurrency else None
    timeout = math.inf if spec.timeout is None else spec.timeout
    start, end = spec.outage
    counts = [0, 0, 0]  # calls, attempts, succeeded

    def attempt() -> Generator[Any, Any, bool]:
        """One attempt, inline in its call's process: True when the client hears a success."""
        if start <= env.now < end:
            return False  # refused at once
        service_time = math.exp(spec.mu + spec.sigma * rng.gauss(0.0, 1.0))
        if slots is None:  # the ideal server: the answer or the timeout, whichever is first
            yield env.timeout(min(service_time, timeout))
            return service_time <= timeout
        if slots.count >= slots.capacity and len(slots.queue) >= spec.queue_limit:
            return False  # the queue is full: rejected at once
        request = slots.request()
        give_up = env.now + timeout
        answered = yield request | env.timeout(timeout)
        if request not in answered:  # timed out in the queue: served when its turn comes
            request.callbacks.append(lambda _: _served(env, request, service_time))
            return False
        done = _served(env, request, service_time)
        if env.now + service_time <= give_up:
            yield done
            return True
        yield env.timeout(give_up - env.now)
        return False

    def call(index: int) -> Generator[Any, Any, None]:
        counts[0] += 1
        for n in range(1, spec.max_attempts + 1):
            counts[1] += 1
            if (yield from attempt()):
                counts[2] += 1
                break
            if n < spec.max_attempts:
                wait = spec.min_wait * 2 ** (n - 1) + rng.uniform(0, spec.jitter)
                yield env.timeout(min(spec.max_wait, wait))
        if index + 1 < spec.calls_per_client and env.now + spec.think_time < spec.duration:
            yield env.timeout(spec.think_time)
            env.process(call(index + 1))

    def fleet() -> Generator[Any, Any, None]:
        yield env.timeout(spec.arrive_at)
        for _ in range(spec.clients):
            env.process(call(0))

    env.process(fleet())
    env.run()
    return Summary(*counts)


# -- the floor -----------------------------------------------------------------------------------

# Event kinds of the floor's heap, in (time, seq, kind, subject) tuples.
_SEND, _DONE, _TIMEOUT, _RETRY = 0, 1, 2, 3


def run_floor(spec: HerdSpec) -> Summary:  # noqa: PLR0915 (one loop: a call per event costs)
    """The herd model as the fastest plain Python found for it: one heap, draws made up front.

    Calls and attempts are integers indexing flat lists; every latency and jitter an attempt
    could need is drawn with numpy before the loop (one array each, as Python floats).
    """
    rng = np.random.default_rng(spec.seed)
    most = spec.clients * spec.calls_per_client * spec.max_attempts
    service = np.exp(spec.mu + spec.sigma * rng.standard_normal(most)).tolist()
    jitter = (rng.random(most) * spec.jitter).tolist()
    start, end = spec.outage
    timeout = spec.timeout
    max_attempts, min_wait, max_wait = spec.max_attempts, spec.min_wait, spec.max_wait
    calls_per_client, think, duration = spec.calls_per_client, spec.think_time, spec.duration
    slots = spec.concurrency
    limit = spec.queue_limit
    busy = 0
    waiting: deque[int] = deque()  # attempts queued for a slot
    call_index: list[int] = []  # the call's index among its client's calls
    call_attempt: list[int] = []  # the number of the call's latest attempt
    attempt_call: list[int] = []
    attempt_open = bytearray()
    succeeded = 0
    heap: list[tuple[float, int, int, int]] = []
    push, pop = heapq.heappush, heapq.heappop
    seq = 0
    for client in range(spec.clients):  # call i < clients is client i's first call
        call_index.append(0)
        call_attempt.append(0)
        heap.append((spec.arrive_at, client, _SEND, client))
    seq = spec.clients
    heapq.heapify(heap)

    while heap:
        now, _, kind, x = pop(heap)
        if kind == _DONE:  # the server finished attempt x's work (heard if still open)
            if slots is not None:
                busy -= 1
                if waiting:
                    w = waiting.popleft()
                    busy += 1
                    push(heap, (now + service[w], seq, _DONE, w))
                    seq += 1
            if not attempt_open[x]:
                continue
            attempt_open[x] = 0
            call = attempt_call[x]
            succeeded += 1
            if call_index[call] + 1 < calls_per_client and now + think < duration:
                nxt = len(call_index)
                call_index.append(call_index[call] + 1)
                call_attempt.append(0)
                push(heap, (now + think, seq, _SEND, nxt))
                seq += 1
            continue
        if kind == _TIMEOUT:
            if not attempt_open[x]:
                continue
            attempt_open[x] = 0
            call, failed = attempt_call[x], x
        else:  # _SEND: call x sends its next attempt now
            call, a = x, len(attempt_call)
            failed = a
            attempt_call.append(call)
            call_attempt[call] += 1
            if not start <= now < end:
                if slots is None:
                    attempt_open.append(1)
                    done = now + service[a]
                    push(heap, (done, seq, _DONE, a))
                    seq += 1
                    if timeout is not None and done > now + timeout:
                        push(heap, (now + timeout, seq, _TIMEOUT, a))
                        seq += 1
                    continue
                if busy < slots or len(waiting) < limit:
                    attempt_open.append(1)
                    if busy < slots:
                        busy += 1
                        push(heap, (now + service[a], seq, _DONE, a))
                    else:
                        waiting.append(a)
                    seq += 1
                    if timeout is not None:
                        push(heap, (now + timeout, seq, _TIMEOUT, a))
                        seq += 1
                    continue
            attempt_open.append(0)  # refused (outage) or rejected (full queue) at once
        # The attempt failed now: retry after the backoff, or give up and maybe call again.
        n = call_attempt[call]
        if n < max_attempts:
            wait = min_wait * 2 ** (n - 1) + jitter[failed]
            push(heap, (now + (wait if wait < max_wait else max_wait), seq, _SEND, call))
            seq += 1
        elif call_index[call] + 1 < calls_per_client and now + think < duration:
            nxt = len(call_index)
            call_index.append(call_index[call] + 1)
            call_attempt.append(0)
            push(heap, (now + think, seq, _SEND, nxt))
            seq += 1
    return Summary(len(call_index), len(attempt_call), succeeded)
