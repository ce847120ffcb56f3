"""The engine's path over connections: a client process's CPU, a pool, a network.

send -> [the process's CPU] -> [wait for a pooled connection] -> [connect] -> request out ->
server -> answer back (each leg half an rtt draw: the attempt's one, or its own with
``[network] draws = "per_leg"``). The client's timeout counts from the send. What an error
does to the connection is its family's (:data:`retrysim.sim.connections.WIRE`).

A mixin of :class:`~retrysim.sim.engine.Engine` (one class, split by what each part does): it
holds no state of its own, and the engine's attributes it reads are declared below for type
checkers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from retrysim.sim import records as rec
from retrysim.sim.attempt import BLACKHOLE, AttemptPhases
from retrysim.sim.call import Call
from retrysim.sim.connections import CLOSES_CONNECTION, FAILS_CONNECT, Connections, Pool
from retrysim.sim.connections import OPEN as CONNECTION_OPEN
from retrysim.sim.failures import TIMEOUT
from retrysim.sim.kernel import Kernel

OPEN = rec.OPEN


class ConnectedPath:
    """Attempts over connections (see the module docstring)."""

    if TYPE_CHECKING:
        attempts: rec.AttemptColumns
        connections: Connections | None
        kernel: Kernel
        phases: AttemptPhases
        server: Any
        timeout: float | None
        _holding: dict[int, Pool]
        _replicas: Any
        at: Callable[..., Any]

        @property
        def now(self) -> float: ...
        def _hear(
            self,
            call: Call,
            a: int,
            code: int,
            hint: float | None = None,
            outcome: int | None = None,
            refusal: BaseException | None = None,
        ) -> None: ...
        def _timed_out(self, item: tuple[Call, int]) -> None: ...
        def _reset(self, item: tuple[Call, int, int]) -> None: ...
        def _use(self, replica: int) -> None: ...
        def _draw_index(self, a: int) -> int: ...

    def _send_connected(self, call: Call, a: int) -> None:
        assert self.connections is not None
        if self.timeout is not None:
            self.at(self.now + self.timeout, self._timeout_due, (call, a, False))
        connections = self.connections
        if connections.shared_cpu:  # it leaves when its share of the CPU is done
            work = connections.attempt_work(call.key, self._draw_index(a))
            if work is None:
                self._to_pool((call, a))
            else:
                connections.share(call.client, self.now, work, self._to_pool, (call, a))
            return
        sent = connections.sent_at(call.client, self.now, call.key, self._draw_index(a))
        if sent is None:
            self._to_pool((call, a))
        else:  # its process's CPU had the work to do first
            self.at(sent, self._to_pool, (call, a))

    def _to_pool(self, item: tuple[Call, int]) -> None:
        call, a = item
        if self.attempts.outcome[a] != OPEN or self.connections is None:
            return  # it timed out on the CPU
        pool = self.connections.pool_of(call.client)
        # None: it queues, first come first served, with the time it came to the pool
        got = self.connections.take_in_turn(pool, (call, a, self.now))
        if got is not None:
            self._connection(call, a, pool, got, self.now)

    def _connection(self, call: Call, a: int, pool: Pool, got: int, arrived: float) -> None:
        """Attempt ``a``, at ``pool`` since ``arrived``, has a connection from it now: open, or
        to be opened first. (One that timed out in the queue never had one: no pool wait.)"""
        connections = self.connections
        assert connections is not None
        t = self.kernel.now
        self.attempts.pool_wait[a] = t - arrived
        self._holding[a] = pool
        if self._replicas is not None:
            self._use(self.attempts.replica[a])
        n = self._draw_index(a)
        verdict = self.phases.door(t, call.key, n)  # faults judge the attempt as it is sent
        hint = self.phases.hint(t, call.key, n) if verdict > 0 else None  # its Retry-After
        if got == CONNECTION_OPEN:
            self._transmit((call, a, verdict, hint))
            return
        connections.stats.connects += 1
        item = (call, a, verdict, hint, t)
        work = connections.connect_work(call.key, n) if connections.shared_cpu else None
        if work is None:
            self._connect(item)
        else:  # the handshake's share of the CPU first
            connections.share(call.client, t, work, self._connect, item)

    def _connect(self, item: tuple[Call, int, int, float | None, float]) -> None:
        """Open attempt ``a``'s connection, begun at ``began`` (a shared CPU's work for it is
        done by now; a FIFO CPU's is in :meth:`Connections.connect_time`)."""
        call, a, verdict, hint, began = item
        connections = self.connections
        assert connections is not None
        t, n = self.kernel.now, self._draw_index(a)
        seconds = t - began + connections.connect_time(call.client, t, call.key, n)
        limit = connections.connect_timeout
        if limit is not None and (verdict == BLACKHOLE or seconds > limit):
            # A share of the CPU that alone outlasted the limit times out as it ends.
            self.at(max(began + limit, t), self._connect_timed_out, (call, a))
        elif verdict in FAILS_CONNECT:  # refused: the handshake's answer says so
            connections.stats.connect_failures += 1
            self.at(began + seconds, self._answer_if_open, (call, a, verdict, hint))
        elif verdict != BLACKHOLE:  # a black hole never answers the handshake
            self.at(began + seconds, self._transmit, (call, a, verdict, hint))

    def _transmit(self, item: tuple[Call, int, int, float | None]) -> None:
        """Send the request over an open connection; ``verdict`` is what the faults decided
        (and ``hint`` the Retry-After its error carries)."""
        call, a, verdict, hint = item
        if self.attempts.outcome[a] != OPEN:
            return  # the client gave up while connecting
        connections, n = self.connections, self._draw_index(a)
        assert connections is not None
        if verdict > 0:  # the error comes back after the round trip
            trip = connections.round_trip(call.key, n)
            self.at(self.now + trip, self._answer_if_open, (call, a, verdict, hint))
        elif verdict != BLACKHOLE:
            self.at(self.now + connections.out(call.key, n), self._reach_server, (call, a))

    def _reach_server(self, item: tuple[Call, int]) -> None:
        call, a = item
        if self._replicas is not None:
            self._use(self.attempts.replica[a])
        t, n, phases = self.now, self._draw_index(a), self.phases
        service_time = phases.service_time(t, call.key, n)
        reset = phases.reset(t, call.key, n)
        if reset is not None:  # the reset, then its news travelling back to the client
            assert self.connections is not None
            back = self.connections.back(call.key, n)
            self.at(t + reset[0] * service_time + back, self._reset, (call, a, reset[1]))
        self.server.submit(call, a, t, service_time)

    def _answer_if_open(self, item: tuple[Call, int, int, float | None]) -> None:
        call, a, code, hint = item
        if self.attempts.outcome[a] == OPEN:
            self._hear(call, a, code, hint)

    def _connect_timed_out(self, item: tuple[Call, int]) -> None:
        call, a = item
        if self.attempts.outcome[a] == OPEN:
            assert self.connections is not None
            self.connections.stats.connect_timeouts += 1
            self._hear(call, a, TIMEOUT)  # the client library's error, not the caller's timeout

    def _timeout_due(self, item: tuple[Call, int, bool]) -> None:
        """The client's timeout; an answer due at the same instant is heard first."""
        call, a, again = item
        heap = self.kernel.heap
        if not again and heap and heap[0][0] == self.now:
            self.at(self.now, self._timeout_due, (call, a, True))
            return
        self._timed_out((call, a))

    def _release(self, a: int, code: int) -> None:
        """Attempt ``a`` is answered: its connection goes back, to the first attempt waiting."""
        pool = self._holding.pop(a, None)
        if pool is None:
            return
        pool.give_back(code not in CLOSES_CONNECTION)
        outcomes = self.attempts.outcome
        while pool.waiting:
            call, waiting, arrived = pool.waiting[0]
            if outcomes[waiting] != OPEN:  # it timed out in the queue
                pool.waiting.popleft()
                continue
            got = pool.take()
            if got is None:
                return
            pool.waiting.popleft()
            self._connection(call, waiting, pool, got, arrived)
