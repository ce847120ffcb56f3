"""Connections: the network an attempt crosses and the pool it waits in before that.

Real clients do not reach a server the instant they call: a process has a pool of connections
(redis-py, asyncpg and httpx all do), an attempt waits for a free one, a connection that is not
open yet costs a connect, and every request and answer crosses the network. This module holds
that state for one run; the engine asks it and schedules what it answers. Every draw is
counter-based on (call, attempt), like every other draw of a run.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

from retrysim.scenario import Scenario
from retrysim.sim.failures import CODES
from retrysim.sim.latency import sampler
from retrysim.sim.streams import CONNECT, NETWORK, stream_key, unit

#: Error codes that close the connection they happened on: the next attempt connects again.
#: Answers from a live server (rate limits, conflicts, server errors) keep it open.
CLOSES_CONNECTION = frozenset(
    CODES[name]
    for name in (
        "ConnectionError",
        "ConnectionRefusedError",
        "ConnectionResetError",
        "ConnectionAbortedError",
        "OSError",
        "TimeoutError",
    )
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

    def __init__(self, scenario: Scenario, seed: int) -> None:
        clients = scenario.clients
        self.processes = clients.processes or clients.count
        self.pools = [Pool(clients.pool_size) for _ in range(self.processes)]
        self.connect_timeout = clients.connect_timeout
        network = scenario.network
        self._rtt = None if network is None else sampler(network.rtt)
        self._connect = (
            None
            if network is None
            else sampler(network.connect if network.connect is not None else network.rtt)
        )
        self._rtt_key = stream_key(seed, NETWORK)
        self._connect_key = stream_key(seed, CONNECT)
        self.stats = ConnectionStats()

    def pool_of(self, client: int) -> Pool:
        return self.pools[client % self.processes]

    def rtt(self, call_key: int, attempt: int) -> float:
        """The attempt's round trip (0 without a network): request rtt/2 out, answer rtt/2 back."""
        rtt = self._rtt
        return 0.0 if rtt is None else rtt(unit(self._rtt_key, call_key, attempt))

    def connect_time(self, call_key: int, attempt: int) -> float:
        """Seconds the attempt's new connection takes to open (0 without a network)."""
        connect = self._connect
        return 0.0 if connect is None else connect(unit(self._connect_key, call_key, attempt))
