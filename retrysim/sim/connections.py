"""Connections: the network an attempt crosses and the pool it waits in before that.

Real clients do not reach a server the instant they call: a process has a pool of connections
(redis-py, asyncpg and httpx all do), an attempt waits for a free one, a connection that is not
open yet costs a connect, and every request and answer crosses the network. A client process
also has a CPU (an event loop, a GIL): an attempt, and a connect, cost it some work, done one
piece at a time, first come first served (:class:`Cpu`), or all that is ready at once, as an
event loop interleaves its tasks (``clients.cpu_discipline = "processor_sharing"``, with
:class:`~retrysim.sim.sharing.Sharing`: there the engine goes on when the work ends, since
later work slows it down, where a FIFO's end is known when the work is queued). This module
holds that state for one run; the engine asks it and schedules what it answers. Every draw is
counter-based on (call, attempt), like every other draw of a run.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any, get_args

from retrysim.model.scenario import Scenario
from retrysim.retry.classify import Family, error_family
from retrysim.sim.failures import CODE_NAMES, make_error
from retrysim.sim.latency import sampler
from retrysim.sim.sharing import Scheduler, Sharing
from retrysim.sim.streams import (
    CONNECT,
    CONNECT_CPU,
    CPU,
    NETWORK,
    NETWORK_BACK,
    OCC_READ_BACK,
    OCC_WRITE_OUT,
    stream_key,
    unit,
)


@dataclass(frozen=True)
class Wire:
    """What an error of one family does to the connection it happened on: the one rule, for
    builtin and library errors alike (an error's family is
    :func:`retrysim.retry.classify.error_family`'s)."""

    #: On a connection still to open, the connect fails: the error is heard when the
    #: handshake would have ended, nothing is sent, and the connect counts as failed.
    #: Otherwise the connect succeeds and the error comes back after the request's round trip.
    fails_connect: bool
    #: The connection is closed after it: the next attempt on it connects again.
    closes: bool


WIRE: dict[Family, Wire] = {
    "connection": Wire(fails_connect=True, closes=True),
    "timeout": Wire(fails_connect=True, closes=True),
    "busy": Wire(fails_connect=False, closes=True),
    "answer": Wire(fails_connect=False, closes=False),
    "refusal": Wire(fails_connect=False, closes=False),  # never sent; as a fault's, an answer
    "other": Wire(fails_connect=False, closes=False),
}
assert set(WIRE) == set(get_args(Family))

#: code -> the family of the error it records (None for code 0: no error).
FAMILY_OF_CODE: tuple[Family | None, ...] = (
    None,
    *(error_family(make_error(code)) for code in range(1, len(CODE_NAMES))),
)
#: Error codes that close the connection they happened on: the next attempt connects again.
CLOSES_CONNECTION = frozenset(
    code for code, family in enumerate(FAMILY_OF_CODE) if family and WIRE[family].closes
)
#: Error codes that, met by a connect, fail it (refused, timed out): heard after the connect.
FAILS_CONNECT = frozenset(
    code for code, family in enumerate(FAMILY_OF_CODE) if family and WIRE[family].fails_connect
)

#: What :meth:`Pool.take` hands out.
OPEN, CLOSED = 1, 0


class Pool:
    """One client process's connections: ``size`` of them (None: as many as are asked for).

    A connection is idle-open (ready to use), in use, or closed (never opened, or closed by an
    error). ``take`` prefers an open one, as real pools do; when none is free the caller
    queues in ``waiting``, first come first served.
    """

    __slots__ = ("idle_open", "in_use", "size", "waiting")

    def __init__(self, size: int | None) -> None:
        self.size = size
        self.idle_open = 0
        self.in_use = 0
        self.waiting: deque[Any] = deque()

    def take(self) -> int | None:
        """``OPEN``, ``CLOSED`` (a connection that must connect first), or None: wait."""
        if self.idle_open:
            self.idle_open -= 1
            self.in_use += 1
            return OPEN
        if self.size is None or self.in_use + self.idle_open < self.size:
            self.in_use += 1
            return CLOSED
        return None

    def give_back(self, still_open: bool) -> None:
        self.in_use -= 1
        if still_open:
            self.idle_open += 1


class Cpu:
    """One client process's CPU: one server, first come first served, never preempted.

    Work queued at ``now`` that takes ``seconds`` starts when the work before it is done and
    ends ``seconds`` later (Lindley's recursion: the end of the previous piece is all the state
    a FIFO single server needs). Work whose attempt was abandoned meanwhile is still done: the
    loop still runs the cancelled task.
    """

    __slots__ = ("free_at",)

    def __init__(self) -> None:
        self.free_at = 0.0

    def run(self, now: float, seconds: float) -> float:
        """Queue ``seconds`` of work at ``now``; return when it is done."""
        done = (now if now > self.free_at else self.free_at) + seconds
        self.free_at = done
        return done


def _resume(step: tuple[Any, Any]) -> None:
    """A shared CPU's work is done: the engine's next step for it."""
    then, item = step
    then(item)


@dataclass
class ConnectionStats:
    """What the connections did in a run: the document's ``connections`` counts."""

    connects: int = 0
    connect_failures: int = 0  # refused or errored while connecting
    connect_timeouts: int = 0  # not connected within clients.connect_timeout
    pool_waits: int = 0  # attempts that found no free connection and queued

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class Connections:
    """The run's pools and network: who waits, what a connect costs, how long a trip takes."""

    def __init__(self, scenario: Scenario, seed: int, scheduler: Scheduler | None = None) -> None:
        clients = scenario.clients
        self.processes = clients.process_count
        self.pools = [Pool(clients.pool_size) for _ in range(self.processes)]
        self.connect_timeout = clients.connect_timeout
        network = scenario.network
        self._rtt = None if network is None else sampler(network.rtt)
        #: Every leg is half of one draw per attempt (per_attempt), or of its own (per_leg).
        self.per_leg = network is not None and network.draws == "per_leg"
        self._connect = (
            None
            if network is None
            else sampler(network.connect if network.connect is not None else network.rtt)
        )
        self._rtt_key = stream_key(seed, NETWORK)
        self._back_key = stream_key(seed, NETWORK_BACK)
        self._read_back_key = stream_key(seed, OCC_READ_BACK)
        self._write_out_key = stream_key(seed, OCC_WRITE_OUT)
        self._connect_key = stream_key(seed, CONNECT)
        self.stats = ConnectionStats()
        self.backlog = None if network is None else network.accept_backlog
        self.syn_retry = 1.0 if network is None else network.syn_retry
        # When recent connects were let in, and when they opened, each list sorted.
        self._let_ins: list[float] = []
        self._opened: list[float] = []
        cpu, connect_cpu = clients.cpu_per_attempt, clients.cpu_per_connect
        cpus = range(clients.cpus or self.processes)
        #: Processor sharing: the CPUs are :class:`Sharing`, and :meth:`share` queues work.
        self.shared_cpu = clients.cpu_discipline == "processor_sharing"
        if self.shared_cpu:
            if scheduler is None:
                raise ValueError("a processor-sharing client CPU needs the engine's scheduler")
            self.cpus: list[Any] = [Sharing(scheduler, 1.0, _resume) for _ in cpus]
        else:
            self.cpus = [Cpu() for _ in cpus]
        #: None: attempts cost their process no CPU (they leave the instant they are sent).
        self.attempt_cpu = None if cpu is None else sampler(cpu)
        self._connect_cpu = None if connect_cpu is None else sampler(connect_cpu)
        self._cpu_key = stream_key(seed, CPU)
        self._connect_cpu_key = stream_key(seed, CONNECT_CPU)

    def pool_of(self, client: int) -> Pool:
        return self.pools[client % self.processes]

    # -- the legs an attempt crosses -----------------------------------------------------------
    #
    # per_attempt: one rtt draw, keyed by (call, attempt), is every leg's: half out, half back,
    # and a read-then-write's window (the read's answer back, the write out) is the whole draw.
    # per_leg: each one-way leg is half of a draw of its own stream, keyed the same way, so the
    # legs are independent; the request's leg out is the same draw in both modes.

    def _draw(self, key: int, call_key: int, attempt: int) -> float:
        rtt = self._rtt
        return 0.0 if rtt is None else rtt(unit(key, call_key, attempt))

    def out(self, call_key: int, attempt: int) -> float:
        """The request's trip to the server (0 without a network)."""
        return self._draw(self._rtt_key, call_key, attempt) / 2

    def back(self, call_key: int, attempt: int) -> float:
        """The answer's (or an error's) trip back to the client."""
        key = self._back_key if self.per_leg else self._rtt_key
        return self._draw(key, call_key, attempt) / 2

    def round_trip(self, call_key: int, attempt: int) -> float:
        """Out and back: an error the connection itself answers (a reset, a refusal)."""
        if self.per_leg:
            return self.out(call_key, attempt) + self.back(call_key, attempt)
        return self._draw(self._rtt_key, call_key, attempt)  # the same sum, bit for bit

    def read_to_write(self, call_key: int, attempt: int) -> float:
        """A read-then-write's window: its read's answer back, then its write out."""
        if not self.per_leg:
            return self._draw(self._rtt_key, call_key, attempt)
        back = self._draw(self._read_back_key, call_key, attempt) / 2
        return back + self._draw(self._write_out_key, call_key, attempt) / 2

    def cpu_of(self, client: int) -> Any:
        """The CPU of the client's process (process p runs on CPU p mod cpus)."""
        cpus = self.cpus
        return cpus[client % self.processes % len(cpus)]

    def take_in_turn(self, pool: Pool, item: Any) -> int | None:
        """A connection from ``pool`` for ``item`` (an attempt), or None: it queued, behind
        any attempt already waiting (first come, first served)."""
        got = None if pool.waiting else pool.take()
        if got is None:
            self.stats.pool_waits += 1
            pool.waiting.append(item)
        return got

    def sent_at(self, client: int, now: float, call_key: int, attempt: int) -> float | None:
        """When the attempt sent at ``now`` leaves its process: its CPU work done, after the
        work queued before it (FIFO). None: attempts cost no CPU, it leaves at once."""
        seconds = self.attempt_work(call_key, attempt)
        return None if seconds is None else self.cpu_of(client).run(now, seconds)

    def attempt_work(self, call_key: int, attempt: int) -> float | None:
        """The CPU seconds the attempt costs its process (None: attempts cost none)."""
        cpu = self.attempt_cpu
        return None if cpu is None else cpu(unit(self._cpu_key, call_key, attempt))

    def connect_work(self, call_key: int, attempt: int) -> float | None:
        """The CPU seconds the attempt's new connection costs its process (None: none)."""
        cpu = self._connect_cpu
        return None if cpu is None else cpu(unit(self._connect_cpu_key, call_key, attempt))

    def share(self, client: int, now: float, work: float, then: Any, item: Any) -> None:
        """Processor sharing: ``work`` joins the client's CPU at ``now``; ``then(item)`` runs
        when it is done."""
        self.cpu_of(client).add(now, work, (then, item))

    def connect_time(self, client: int, now: float, call_key: int, attempt: int) -> float:
        """Seconds the attempt's new connection takes to open from ``now``: its process's CPU
        for the handshake (queued behind other work), then the network's connect draw; with an
        ``accept_backlog``, first the SYN retries until the listener has room.

        The CPU work is queued at ``now`` even when the SYN is let in later (a FIFO queue takes
        its work in time order): a dropped connect's small CPU cost comes early, not late.
        A shared CPU's work was done before ``now`` (:meth:`share`), so it is not counted here.
        """
        connect = self._connect
        seconds = 0.0 if connect is None else connect(unit(self._connect_key, call_key, attempt))
        if not self.shared_cpu:
            work = self.connect_work(call_key, attempt)
            if work is not None:
                seconds += self.cpu_of(client).run(now, work) - now
        if self.backlog is None:
            return seconds
        let_in = self._let_in(now, self.backlog)
        insort(self._let_ins, let_in)
        insort(self._opened, let_in + seconds)
        return let_in - now + seconds

    def _let_in(self, now: float, backlog: int) -> float:
        """When a connect sent at ``now`` finds fewer than ``backlog`` connects opening.

        Connects opening at t: those let in by t less those opened by t. The k that opened by
        ``now`` go, with the k earliest let-ins (all by ``now`` too), which keeps that count
        right for every t from ``now`` on: the only times ever asked.
        """
        let_ins, opened = self._let_ins, self._opened
        done = bisect_right(opened, now)
        if done:
            del opened[:done], let_ins[:done]
        t, delay = now, self.syn_retry
        while bisect_right(let_ins, t) - bisect_right(opened, t) >= backlog:
            t += delay
            delay *= 2
        return t
