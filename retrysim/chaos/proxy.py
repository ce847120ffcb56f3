"""A fault-injecting TCP proxy on loopback, asyncio, on the real clock.

::

    async with FaultProxy(upstream=("127.0.0.1", port), faults=[Down(start=0, end=0.05)]) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)

It listens on 127.0.0.1 (a free port unless told one) and forwards each connection to the
upstream, which must be a loopback address: anything else is refused at construction. Faults
(``retrysim.chaos.toxics``) are scheduled by windows relative to the proxy's start. Every random
decision is a counter-based draw keyed by (seed, toxic, connection, chunk) as in the simulator
(``retrysim.sim.streams``), so the same seed and the same order of connections make the same
decisions. ``stats`` counts what it did. Stopping (leaving the ``async with``, or ``stop()``)
closes every socket it opened and leaves no task running.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Self, TypeGuard

from retrysim.chaos.link import CHUNK, Link, rst
from retrysim.chaos.listener import LISTEN_BACKLOG, LoopbackListener
from retrysim.chaos.proxy_stats import ProxyStats
from retrysim.chaos.toxics import (
    TOXICS,
    Blackhole,
    ChaosError,
    Down,
    EveryNth,
    FirstN,
    Toxic,
    toxics_from_scenario,
)
from retrysim.sim.streams import FAULT_BASE, stream_key, unit

if TYPE_CHECKING:
    from retrysim.model.scenario import Fault, Scenario


def loopback_host(host: str) -> str:
    """``host`` if it is a loopback address (``localhost`` -> 127.0.0.1); else a ChaosError."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        raise ChaosError(
            f"upstream {host!r} is not a loopback address: the proxy forwards only to "
            "127.0.0.0/8, ::1 or 'localhost'"
        )
    return host


class FaultProxy(LoopbackListener):
    """Forward 127.0.0.1:``port`` to a loopback ``upstream``, applying ``faults``.

    ``faults``: toxics (``Down``, ``Blackhole``, ``ResetPeer``, ``Latency``, ``Bandwidth``), a
    retrysim ``Scenario`` or its ``faults`` (see ``toxics_from_scenario``). ``backlog``: its
    listen backlog (``retrysim.chaos.listener.LISTEN_BACKLOG``, 4096, unless given); each
    forwarded connection's own connect to the upstream waits at most ``connect_timeout``.
    """

    kind = "the proxy"

    def __init__(
        self,
        upstream: tuple[str, int],
        faults: Sequence[Toxic] | Scenario | Sequence[Fault] = (),
        seed: int = 0,
        *,
        port: int = 0,
        connect_timeout: float = 5.0,
        origin: float | None = None,
        backlog: int = LISTEN_BACKLOG,
    ) -> None:
        host, upstream_port = upstream
        if not (isinstance(upstream_port, int) and 0 < upstream_port < 65536):
            raise ChaosError(f"upstream port must be in 1..65535, not {upstream_port!r}")
        super().__init__(port, origin, backlog)
        self.upstream = (loopback_host(host), upstream_port)
        self.toxics: tuple[Toxic, ...] = (
            tuple(faults) if _all_toxics(faults) else toxics_from_scenario(faults)  # type: ignore[arg-type]
        )
        self.seed = seed
        self.stats = ProxyStats()
        self._connect_timeout = connect_timeout
        places = [i if t.source is None else t.source for i, t in enumerate(self.toxics)]
        self.keys = [stream_key(seed, FAULT_BASE + place) for place in places]
        self._serial = max(places, default=-1) + 1  # the next toxic's stream (set_toxics)
        # FirstN / EveryNth: (recurrence, requests counted in it), by toxic identity
        self._counts: dict[int, tuple[int, int]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._links: set[Link] = set()
        self._clients: set[asyncio.StreamWriter] = set()  # accepted, not yet closed
        self._timers: list[asyncio.TimerHandle] = []
        self._next_id = 0

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> Self:
        """Listen; the toxics' windows count from now, or from ``origin`` (:meth:`elapsed`)."""
        await self._listen(self._accept)
        loop = asyncio.get_running_loop()
        for toxic in self.toxics:
            if isinstance(toxic, Down) and toxic.close_existing:
                opens = self._t0 + toxic.start  # on the loop's clock
                self._timers.append(loop.call_at(opens, self._down_opens, toxic))
        return self

    def set_toxics(self, toxics: Sequence[Toxic]) -> None:
        """Replace the toxics while the proxy runs (a control API adding or removing one).

        As in Toxiproxy, new connections and the next chunk of an open one see the new set at
        once. A toxic kept from the old set (the same object) keeps its random stream; a new one
        gets the next stream number, so the same seed and the same changes in the same order
        make the same decisions. A :class:`Down` added while its window is open resets the open
        connections (Toxiproxy's disabling a proxy drops them); one due later is scheduled.
        """
        kept = {id(toxic): key for toxic, key in zip(self.toxics, self.keys, strict=True)}
        keys = []
        for toxic in toxics:
            if id(toxic) not in kept:
                kept[id(toxic)] = stream_key(self.seed, FAULT_BASE + self._serial)
                self._serial += 1
            keys.append(kept[id(toxic)])
        added = [t for t in toxics if not any(t is old for old in self.toxics)]
        self.toxics, self.keys = tuple(toxics), keys
        # a removed count's state goes with it (its id could be a new toxic's)
        self._counts = {i: c for i, c in self._counts.items() if any(id(t) == i for t in toxics)}
        if self._server is None:
            return
        loop, now = asyncio.get_running_loop(), self.elapsed()
        for toxic in added:
            if isinstance(toxic, Down) and toxic.close_existing and toxic.until > now:
                opens = self._t0 + max(now, toxic.start)
                self._timers.append(loop.call_at(opens, self._down_opens, toxic))

    async def stop(self) -> None:
        """Stop listening, reset every open connection, wait for every task to end."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        while self._tasks:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for writer in self._clients:  # a task cancelled before it ran never closed its client
            writer.transport.abort()
        self._clients.clear()
        await server.wait_closed()

    # --- decisions ---------------------------------------------------------------------------

    def picked(self, index: int, connection: int, elapsed: float) -> bool:
        """Whether toxic ``index`` applies to ``connection`` (its toxicity at ``elapsed``)."""
        toxic = self.toxics[index]
        if toxic.connections is not None and connection not in toxic.connections:
            return False
        return unit(self.keys[index], connection) < toxic.chance(elapsed)

    @property
    def stopping(self) -> bool:
        """Whether it has stopped listening (a link then aborts rather than flushes)."""
        return self._server is None

    def active_toxics(
        self, kind: type[Any] | tuple[type[Any], ...], connection: int, elapsed: float
    ) -> list[int]:
        """The indices of the toxics of ``kind`` on ``connection`` at ``elapsed``: in their
        window and picked by their toxicity."""
        return [
            i
            for i, toxic in enumerate(self.toxics)
            if isinstance(toxic, kind)
            and toxic.active(elapsed)
            and self.picked(i, connection, elapsed)
        ]

    def _down_opens(self, toxic: Down) -> None:
        """A Down's window opens: reset the open connections it picks. By identity, since a
        control API may have moved it in the list, or removed it (then nothing happens). A
        recurring one is due again at its next recurrence."""
        now = self.elapsed()
        for index, current in enumerate(self.toxics):
            if current is not toxic:
                continue
            for link in list(self._links):
                if self.picked(index, link.id, max(toxic.start, now)):
                    self.stats.closed_by_down += 1
                    link.reset()
            if toxic.every is not None and self._server is not None:
                following = toxic.start + (toxic.occurrence(now) + 1) * toxic.every
                if following < toxic.until:
                    loop = asyncio.get_running_loop()
                    timer = loop.call_at(self._t0 + following, self._down_opens, toxic)
                    self._timers.append(timer)

    def counted_out(self, connection: int, elapsed: float) -> bool:
        """Count a request (a chunk the client sends on ``connection``) against each active
        FirstN and EveryNth whose blast radius holds the connection; True when one of them
        fails it."""
        failed = False
        for index in self.active_toxics((FirstN, EveryNth), connection, elapsed):
            toxic = self.toxics[index]
            assert isinstance(toxic, FirstN | EveryNth)
            occurrence = toxic.occurrence(elapsed)
            seen, count = self._counts.get(id(toxic), (occurrence, 0))
            count = count + 1 if seen == occurrence else 1
            self._counts[id(toxic)] = (occurrence, count)
            failed = toxic.hits(count) or failed
        return failed

    # --- connections -------------------------------------------------------------------------

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._server is None:  # stopping
            rst(writer)
            return
        self._clients.add(writer)
        self._spawn(self._serve(reader, writer))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._forward(reader, writer)
        finally:
            self._clients.discard(writer)

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection, self._next_id = self._next_id, self._next_id + 1
        self.stats.connections += 1
        elapsed = self.elapsed()
        if self.active_toxics(Down, connection, elapsed):
            self.stats.refused += 1
            rst(writer)
            return
        if self.active_toxics(Blackhole, connection, elapsed):
            self.stats.blackholed += 1
            await self._swallow(reader, writer)
            return
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(*self.upstream), self._connect_timeout
            )
        except (OSError, TimeoutError):
            self.stats.upstream_failed += 1
            rst(writer)
            return
        except BaseException:
            rst(writer)
            raise
        self.stats.forwarded += 1
        link = Link(self, connection, (reader, writer), (up_reader, up_writer))
        self._links.add(link)
        try:
            await link.run()
        finally:
            self._links.discard(link)
            link.close()

    async def _swallow(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """A black hole: read and drop until the client gives up (or the proxy stops)."""
        try:
            while data := await reader.read(CHUNK):
                self.stats.bytes_dropped += len(data)
        except OSError:
            pass
        finally:
            writer.transport.abort()


def _all_toxics(faults: object) -> TypeGuard[Sequence[Toxic]]:
    if not isinstance(faults, list | tuple):
        return False
    return all(isinstance(f, TOXICS) for f in faults)
