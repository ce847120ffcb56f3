"""Server models: what happens to a request that got past the faults.

Each model receives ``submit(call, a, t, service_time)`` with the request's service time already
drawn, and answers through its :class:`ServerHost`: ``respond(...)`` now (a rejection) or
``schedule_done(...)`` at the time the server finishes the work. The host decides what the client
sees (timeouts, resets); servers only model the server. They know the host by this interface
alone, never the engine's class, so a new server model is one class here plus its scenario spec.
"""

from __future__ import annotations

import math
import sys
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

from retrysim.model.scenario import (
    Ideal,
    LoadLatency,
    Lock,
    Occ,
    ProcessorSharing,
    Queue,
    RateLimited,
    Service,
)
from retrysim.sim.failures import CODES, CONFLICT, RATE_LIMITED
from retrysim.sim.latency import mean_of, sampler
from retrysim.sim.sharing import Sharing


class ServerHost(Protocol):
    """What a server model may ask of the simulation around it (the engine implements it).

    ``call`` and ``a`` (the attempt's index) are the host's handles; a server passes them back
    untouched.
    """

    @property
    def now(self) -> float:
        """The virtual clock."""

    def at(self, t: float, fn: Callable[[Any], None], arg: Any) -> int:
        """Schedule ``fn(arg)`` at time ``t``; returns the event's handle for :meth:`cancel`."""

    def cancel(self, event: int) -> None:
        """The event ``at`` returned must never happen (it neither runs nor moves the clock)."""

    def respond(self, call: Any, a: int, code: int, hint: float | None = None) -> None:
        """Answer the client now with error ``code`` (a rejection before any work)."""

    def schedule_done(self, t: float, call: Any, a: int, code: int) -> None:
        """The server will finish the request at ``t`` with ``code`` (0: the work was done)."""

    def server_done(self, call: Any, a: int, code: int, hint: float | None = None) -> None:
        """The server finished the request now with ``code`` (0: the work was done)."""

    def is_open(self, a: int) -> bool:
        """Whether the client of attempt ``a`` still waits for the answer."""

    def round_trip(self, call: Any, a: int) -> float:
        """Attempt ``a``'s network round trip (0 without a ``[network]``)."""

    def server_unit(self, call: Any, a: int) -> float:
        """A uniform draw in [0, 1) of the server's own for attempt ``a`` (counter-based)."""

    def answer_code(self, value: int | str) -> int:
        """The record code of an answer the server returns instead of failing (a status)."""


class Server:
    """Infinite capacity: every request finishes after its service time (the ``ideal`` model)."""

    def __init__(self, engine: ServerHost) -> None:
        self.engine = engine

    #: completions per second the server can sustain, when bounded
    capacity: float | None = None

    def submit(self, call: Any, a: int, t: float, service_time: float) -> None:
        self.engine.schedule_done(t + service_time, call, a, 0)

    def capacity_change(self, slots: int | None) -> None:
        """Capacity-loss windows start (``slots``) and end (``None``); only queues have slots."""

    def abandon(self, call: Any, a: int) -> None:
        """The client of attempt ``a`` stopped waiting (its timeout passed) before the answer.

        Most servers do the work anyway (that is the wasted work the report counts); a model
        that can cancel a request whose client has gone overrides this.
        """


class SlotServer(Server):
    """Who gets served: ``slots`` requests at a time, then a bounded FIFO, then a refusal at once.

    A slot serves its request for the request's whole service time. The queue and the lock are
    this admission with their own words for it (a lock is one slot, its waiters the FIFO);
    processor sharing keeps the admission and changes what a slot does (:meth:`_serve`).
    Waiters are keyed by attempt so one can leave the FIFO early (a lock's wait timeout, a
    cancelled request) without a scan.
    """

    def __init__(
        self,
        engine: ServerHost,
        slots: int | None,
        queue_limit: int,
        reject_code: int,
        drop_abandoned: bool = False,
    ) -> None:
        super().__init__(engine)
        # None: no cap on requests in service, so nothing ever waits (more slots than
        # requests a run can hold).
        self.slots = sys.maxsize if slots is None else slots
        self.busy = 0
        self.limit = queue_limit
        self.reject_code = reject_code
        self.drop_abandoned = drop_abandoned
        self.waiting: OrderedDict[int, tuple[Any, float]] = OrderedDict()

    def submit(self, call: Any, a: int, t: float, service_time: float) -> None:
        if self.busy < self.slots:
            self.busy += 1
            self._serve(call, a, t, service_time)
        elif len(self.waiting) < self.limit:
            self.waiting[a] = (call, service_time)
            self._queued(call, a)
        else:
            self.engine.respond(call, a, self.reject_code)

    def _serve(self, call: Any, a: int, t: float, service_time: float) -> None:
        """Serve a request that got a slot at ``t``; :meth:`_finish` when its work is done."""
        self.engine.at(t + service_time, self._finish, (call, a))

    def _queued(self, call: Any, a: int) -> None:
        """A request started waiting for a slot (a hook: a lock may time the wait)."""

    def _finish(self, item: tuple[Any, int]) -> None:
        call, a = item
        self.busy -= 1
        self.engine.server_done(call, a, 0)
        self._start_waiting()

    def _start_waiting(self) -> None:
        engine = self.engine
        while self.waiting and self.busy < self.slots:
            a, (call, service_time) = self.waiting.popitem(last=False)
            if self.drop_abandoned and not engine.is_open(a):
                continue
            self.busy += 1
            self._serve(call, a, engine.now, service_time)


class QueueServer(SlotServer):
    """``concurrency`` slots and a bounded FIFO; a full queue rejects at once."""

    def __init__(self, engine: ServerHost, spec: Queue) -> None:
        super().__init__(
            engine,
            spec.concurrency,
            spec.queue_limit,
            CODES[spec.reject_error],
            spec.drop_abandoned,
        )
        self.nominal = spec.concurrency
        mean = mean_of(spec.latency)
        self.capacity = spec.concurrency / mean if mean > 0 else None

    def capacity_change(self, slots: int | None) -> None:
        self.slots = self.nominal if slots is None else slots
        self._start_waiting()


class LockServer(SlotServer):
    """One lock, held for each request's service time: a slot of one, its waiters the FIFO.

    ``on_busy = "fail"`` is a FIFO of no places (try-lock: busy means ``busy_error`` at once);
    a full FIFO fails the same way. With ``wait_timeout`` a waiter still waiting that long
    after it queued fails with ``busy_error`` then and leaves the FIFO, as a database's lock
    wait timeout does, whether or not its client still waits.
    """

    def __init__(self, engine: ServerHost, spec: Lock) -> None:
        limit = 0 if spec.on_busy == "fail" else spec.queue_limit
        super().__init__(engine, 1, limit, CODES[spec.busy_error])
        self.wait_timeout = spec.wait_timeout
        mean = mean_of(spec.latency)
        self.capacity = 1.0 / mean if mean > 0 else None

    def _queued(self, call: Any, a: int) -> None:
        if self.wait_timeout is not None:
            self.engine.at(self.engine.now + self.wait_timeout, self._wait_expired, (call, a))

    def _wait_expired(self, item: tuple[Any, int]) -> None:
        call, a = item
        if self.waiting.pop(a, None) is not None:  # else it got the lock in time
            self.engine.server_done(call, a, self.reject_code)


class ProcessorSharingServer(SlotServer):
    """``cores`` shared by the requests in service: with n of them each gets min(1, cores/n),
    exactly, by :class:`~retrysim.sim.sharing.Sharing` (keyed by attempt).

    With a ``concurrency`` cap the admission is the queue's (:class:`SlotServer`): that many
    share the cores, the rest wait in a FIFO, a full FIFO refuses.
    """

    def __init__(self, engine: ServerHost, spec: ProcessorSharing) -> None:
        super().__init__(engine, spec.concurrency, spec.queue_limit, CODES[spec.reject_error])
        self.cancel_abandoned = spec.cancel_abandoned
        self.sharing = Sharing(engine, spec.cores, self._finish)
        # A request uses at most one core, so a cap below the cores leaves some idle.
        busy_cores = spec.cores if spec.concurrency is None else min(spec.cores, spec.concurrency)
        mean = mean_of(spec.latency)
        self.capacity = busy_cores / mean if mean > 0 else None

    def _serve(self, call: Any, a: int, t: float, service_time: float) -> None:
        self.sharing.add(t, service_time, (call, a), key=a)

    def abandon(self, call: Any, a: int) -> None:
        """With ``cancel_abandoned``, a request whose client gave up is dropped at once."""
        if not self.cancel_abandoned or self.waiting.pop(a, None) is not None:
            return  # kept, or taken out of the FIFO before it used anything
        sharing = self.sharing
        if a not in sharing.present:
            return  # already answered, or it never reached this server
        with sharing.settled():
            sharing.remove(self.engine.now, a)
            self.busy -= 1
            self._start_waiting()


class LoadLatencyServer(Server):
    """Service time = base + per_request * requests in flight; nothing is ever refused."""

    def __init__(self, engine: ServerHost, spec: LoadLatency) -> None:
        super().__init__(engine)
        self.per_request = spec.per_request
        self.in_flight = 0

    def submit(self, call: Any, a: int, t: float, service_time: float) -> None:
        busy_time = service_time + self.per_request * self.in_flight
        self.in_flight += 1
        self.engine.at(t + busy_time, self._finish, (call, a))

    def _finish(self, item: tuple[Any, int]) -> None:
        self.in_flight -= 1
        self.engine.server_done(item[0], item[1], 0)


class OccServer(Server):
    """One record with a version: a write commits only if nobody committed since its read."""

    def __init__(self, engine: ServerHost, spec: Occ) -> None:
        super().__init__(engine)
        self.version = 0
        mean = mean_of(spec.latency)
        self.capacity = 1.0 / mean if mean > 0 else None
        self._read = (
            sampler(spec.read_latency if spec.read_latency is not None else spec.latency)
            if spec.protocol == "read_then_write"
            else None
        )

    def submit(self, call: Any, a: int, t: float, service_time: float) -> None:
        if self._read is not None:
            read_time = self._read(self.engine.server_unit(call, a))
            self.engine.at(t + read_time, self._read_answered, (call, a, service_time))
            return
        self.engine.at(t + service_time, self._commit, (call, a, self.version))

    def _read_answered(self, item: tuple[Any, int, float]) -> None:
        """The read answers with the version now; the write arrives one round trip later."""
        call, a, write_time = item
        engine = self.engine
        arrives = engine.now + engine.round_trip(call, a)
        engine.at(arrives, self._write, (call, a, self.version, write_time))

    def _write(self, item: tuple[Any, int, int, float]) -> None:
        """A compare-and-set at the write's arrival; its answer after the write's service time.

        A client that stopped waiting before the write was due never sends it.
        """
        call, a, read_version, write_time = item
        engine = self.engine
        if not engine.is_open(a):
            return
        code = 0 if read_version == self.version else CONFLICT
        if code == 0:
            self.version += 1
        engine.schedule_done(engine.now + write_time, call, a, code)

    def _commit(self, item: tuple[Any, int, int]) -> None:
        call, a, read_version = item
        if read_version == self.version:
            self.version += 1
            self.engine.server_done(call, a, 0)
        else:
            self.engine.server_done(call, a, CONFLICT)


class RateLimitedServer(Server):
    """A token bucket of ``burst`` tokens refilled at ``rate``/s; no token, HTTP 429 (raised as
    RateLimited with its hint, or returned as ``reject_answer``)."""

    def __init__(self, engine: ServerHost, spec: RateLimited) -> None:
        super().__init__(engine)
        self.rate = spec.rate
        self.burst = spec.burst
        self.tokens = spec.burst
        self.last = 0.0
        self.hint = spec.retry_after
        self.capacity = spec.rate
        # A rejection fails with RateLimited and its hint, or returns reject_answer (no hint).
        answer = spec.reject_answer
        self.rejection = RATE_LIMITED if answer is None else engine.answer_code(answer)

    def submit(self, call: Any, a: int, t: float, service_time: float) -> None:
        self.tokens = min(self.burst, self.tokens + (t - self.last) * self.rate)
        self.last = t
        # The tolerance absorbs rounding in (t - last) * rate: a client that waited exactly
        # the Retry-After hint must find its token.
        if self.tokens >= 1.0 - 1e-9:
            self.tokens = max(0.0, self.tokens - 1.0)
            self.engine.schedule_done(t + service_time, call, a, 0)
            return
        if self.rejection != RATE_LIMITED:
            self.engine.respond(call, a, self.rejection)
            return
        exact = (1.0 - self.tokens) / self.rate
        hint = {"seconds": float(max(1, math.ceil(exact))), "exact": exact, "none": None}[self.hint]
        self.engine.respond(call, a, RATE_LIMITED, hint)


def make_server(engine: ServerHost, spec: Service) -> Server:
    match spec:
        case Ideal():
            return Server(engine)
        case Queue():
            return QueueServer(engine, spec)
        case LoadLatency():
            return LoadLatencyServer(engine, spec)
        case Occ():
            return OccServer(engine, spec)
        case RateLimited():
            return RateLimitedServer(engine, spec)
        case ProcessorSharing():
            return ProcessorSharingServer(engine, spec)
        case Lock():
            return LockServer(engine, spec)
    raise TypeError(f"unknown service {spec!r}")


def service_latency(spec: Service) -> Any:
    """The distribution a request's base service time is drawn from."""
    return spec.base if isinstance(spec, LoadLatency) else spec.latency
