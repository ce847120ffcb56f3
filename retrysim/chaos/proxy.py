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
import socket
import struct
from collections.abc import Coroutine, Sequence
from contextlib import suppress
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Self, TypeGuard

from retrysim.chaos.listener import LISTEN_BACKLOG, LoopbackListener
from retrysim.chaos.toxics import (
    STREAMS,
    TOXICS,
    Bandwidth,
    Blackhole,
    ChaosError,
    Down,
    EveryNth,
    FirstN,
    Latency,
    PacketLoss,
    ResetPeer,
    Stream,
    Toxic,
    toxics_from_scenario,
)
from retrysim.sim.faults import loss_delay, retransmissions
from retrysim.sim.streams import FAULT_BASE, LATENCY, LOSS_SEGMENT, stream_key, unit

if TYPE_CHECKING:
    from retrysim.model.scenario import Fault, Scenario

CHUNK = 65536
#: Chunks read ahead of what has been written, per direction: back-pressure under latency.
QUEUE_CHUNKS = 64
#: Bandwidth pacing writes pieces of at most this many seconds' worth of bytes.
PACING_SLICE = 0.02


@dataclass
class ProxyStats:
    """What the proxy did, for a report."""

    connections: int = 0  # accepted
    forwarded: int = 0  # connected to the upstream
    refused: int = 0  # reset at once by Down
    closed_by_down: int = 0  # open connections reset when a Down window opened
    blackholed: int = 0  # accepted into a black hole, never forwarded
    reset: int = 0  # reset mid-stream by ResetPeer
    upstream_failed: int = 0  # the upstream could not be reached
    bytes_upstream: int = 0  # client -> service, delivered
    bytes_downstream: int = 0  # service -> client, delivered
    bytes_dropped: int = 0  # read and thrown away by a black hole
    chunks_delayed: int = 0  # chunks a Latency toxic held back
    segments: int = 0  # chunks a PacketLoss toxic judged
    transmissions_lost: int = 0  # their lost transmissions (a chunk may lose several)
    counted_resets: int = 0  # requests a FirstN or EveryNth toxic reset

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


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


def _rst(writer: asyncio.StreamWriter) -> None:
    """Close with SO_LINGER 0, so the peer gets a TCP RST (ECONNRESET), not a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


_EOF = object()
_RESET = object()  # a ResetPeer's: counted in stats.reset
_RESET_UNCOUNTED = object()  # a FirstN's or EveryNth's: counted in stats.counted_resets


class _Chunk(NamedTuple):
    due: float  # the loop time before which it is not written (latency)
    data: bytes
    rate: float | None  # the bandwidth limit, bytes/s


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
        self._keys = [stream_key(seed, FAULT_BASE + i) for i in range(len(self.toxics))]
        self._serial = len(self.toxics)  # the next toxic's stream number (set_toxics)
        # FirstN / EveryNth: (recurrence, requests counted in it), by toxic identity
        self._counts: dict[int, tuple[int, int]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._links: set[_Link] = set()
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
        kept = {id(toxic): key for toxic, key in zip(self.toxics, self._keys, strict=True)}
        keys = []
        for toxic in toxics:
            if id(toxic) not in kept:
                kept[id(toxic)] = stream_key(self.seed, FAULT_BASE + self._serial)
                self._serial += 1
            keys.append(kept[id(toxic)])
        added = [t for t in toxics if not any(t is old for old in self.toxics)]
        self.toxics, self._keys = tuple(toxics), keys
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
        return unit(self._keys[index], connection) < self.toxics[index].chance(elapsed)

    def _active(self, kind: type[Any], connection: int, elapsed: float) -> list[int]:
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

    def counted_out(self, elapsed: float) -> bool:
        """Count a request (a chunk the client sends) against each active FirstN and EveryNth;
        True when one of them fails it. Toxicity is not drawn: a count is the fault."""
        failed = False
        for toxic in self.toxics:
            if not (isinstance(toxic, FirstN | EveryNth) and toxic.active(elapsed)):
                continue
            occurrence = toxic.occurrence(elapsed)
            seen, count = self._counts.get(id(toxic), (occurrence, 0))
            count = count + 1 if seen == occurrence else 1
            self._counts[id(toxic)] = (occurrence, count)
            failed = failed or toxic.hits(count)
        return failed

    # --- connections -------------------------------------------------------------------------

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._server is None:  # stopping
            _rst(writer)
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
        if self._active(Down, connection, elapsed):
            self.stats.refused += 1
            _rst(writer)
            return
        if self._active(Blackhole, connection, elapsed):
            self.stats.blackholed += 1
            await self._swallow(reader, writer)
            return
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(*self.upstream), self._connect_timeout
            )
        except (OSError, TimeoutError):
            self.stats.upstream_failed += 1
            _rst(writer)
            return
        except BaseException:
            _rst(writer)
            raise
        self.stats.forwarded += 1
        link = _Link(self, connection, (reader, writer), (up_reader, up_writer))
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


class _Link:
    """One forwarded connection: a reader and a writer task per direction, joined by a queue."""

    def __init__(
        self,
        proxy: FaultProxy,
        connection: int,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        service: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> None:
        self.proxy = proxy
        self.id = connection
        self.client = client
        self.service = service
        self.tasks: list[asyncio.Task[None]] = []
        self.was_reset = False

    def ends(self, stream: Stream) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Where ``stream`` reads from and writes to."""
        if stream == "upstream":
            return self.client[0], self.service[1]
        return self.service[0], self.client[1]

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for stream in STREAMS:
            queue: asyncio.Queue[object] = asyncio.Queue(QUEUE_CHUNKS)
            self.tasks.append(loop.create_task(self._read(stream, queue)))
            self.tasks.append(loop.create_task(self._write(stream, queue)))
        pumps = list(self.tasks)
        opened = self.proxy.elapsed()
        for i, toxic in enumerate(self.proxy.toxics):
            if isinstance(toxic, ResetPeer) and toxic.timeout > 0 and toxic.until > opened:
                # The link's own timer, so that a reset never outlives the link's pumps.
                self.tasks.append(loop.create_task(self._reset_after(i, toxic, opened)))
        try:
            await asyncio.gather(*pumps, return_exceptions=True)
        finally:
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _reset_after(self, index: int, toxic: ResetPeer, opened: float) -> None:
        """Toxiproxy's reset_peer ``timeout``: RST once it has applied for ``timeout`` s."""
        at = max(opened, toxic.start) + toxic.timeout
        await asyncio.sleep(at - self.proxy.elapsed())
        if toxic.active(at) and self.proxy.picked(index, self.id, at):
            self.proxy.stats.reset += 1
            self.reset()

    def reset(self) -> None:
        """RST the client, drop the service's side, stop every task of the link."""
        if self.was_reset:
            return
        self.was_reset = True
        _rst(self.client[1])
        _rst(self.service[1])
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()

    def close(self) -> None:
        # Stopping aborts: a peer that never reads must not keep a flush (and the stop) waiting.
        stopping = self.proxy._server is None
        for writer in (self.client[1], self.service[1]):
            if self.was_reset or stopping:
                writer.transport.abort()
            else:
                writer.close()

    async def _read(self, stream: Stream, queue: asyncio.Queue[object]) -> None:
        proxy, loop = self.proxy, asyncio.get_running_loop()
        reader = self.ends(stream)[0]
        passed = chunk = 0
        due = 0.0
        try:
            while data := await reader.read(CHUNK):
                chunk += 1
                elapsed = proxy.elapsed()
                if proxy._active(Blackhole, self.id, elapsed):
                    proxy.stats.bytes_dropped += len(data)
                    continue
                if stream == "upstream" and proxy.counted_out(elapsed):
                    proxy.stats.counted_resets += 1
                    await queue.put(_RESET_UNCOUNTED)
                    return
                cut = self._reset_point(stream, passed, len(data), elapsed)
                if cut is not None:
                    data = data[:cut]
                delay = self._delay(stream, chunk, elapsed) + self._lost(stream, chunk, elapsed)
                due = max(due, loop.time() + delay)
                if delay > 0:
                    proxy.stats.chunks_delayed += 1
                if data:
                    await queue.put(_Chunk(due, data, self._rate(stream, elapsed)))
                passed += len(data)
                if cut is not None:
                    await queue.put(_RESET)
                    return
        except OSError:
            self.reset()
            return
        await queue.put(_EOF)

    def _reset_point(self, stream: Stream, passed: int, size: int, elapsed: float) -> int | None:
        """How many bytes of this chunk get through before a ResetPeer fires, or None."""
        for i in self.proxy._active(ResetPeer, self.id, elapsed):
            toxic = self.proxy.toxics[i]
            assert isinstance(toxic, ResetPeer)
            if toxic.timeout == 0 and toxic.stream == stream and passed + size > toxic.bytes:
                return max(0, toxic.bytes - passed)
        return None

    def _delay(self, stream: Stream, chunk: int, elapsed: float) -> float:
        total = 0.0
        for i in self.proxy._active(Latency, self.id, elapsed):
            toxic = self.proxy.toxics[i]
            assert isinstance(toxic, Latency)
            if toxic.stream == stream:
                key = stream_key(self.proxy._keys[i], LATENCY)
                total += toxic.delay(unit(key, self.id, chunk))
        return total

    def _lost(self, stream: Stream, chunk: int, elapsed: float) -> float:
        """Seconds the chunk's lost transmissions hold it (PacketLoss), drawn as the simulator
        draws an attempt's request (upstream) or answer (downstream) segment."""
        total = 0.0
        segment = STREAMS.index(stream)
        for i in self.proxy._active(PacketLoss, self.id, elapsed):
            toxic = self.proxy.toxics[i]
            assert isinstance(toxic, PacketLoss)
            if toxic.stream != stream:
                continue
            key = stream_key(self.proxy._keys[i], LOSS_SEGMENT + segment)
            k = retransmissions(unit(key, self.id, chunk), toxic.probability)
            self.proxy.stats.segments += 1
            self.proxy.stats.transmissions_lost += k
            total += loss_delay(k, toxic.rto)
        return total

    def _rate(self, stream: Stream, elapsed: float) -> float | None:
        rates = []
        for i in self.proxy._active(Bandwidth, self.id, elapsed):
            toxic = self.proxy.toxics[i]
            assert isinstance(toxic, Bandwidth)
            if toxic.stream == stream:
                rates.append(toxic.rate)
        return min(rates) if rates else None

    async def _write(self, stream: Stream, queue: asyncio.Queue[object]) -> None:
        loop = asyncio.get_running_loop()
        writer = self.ends(stream)[1]
        free_at = 0.0  # when the bandwidth limit lets the next byte out
        try:
            while True:
                item = await queue.get()
                if item is _EOF:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                if item is _RESET or item is _RESET_UNCOUNTED:
                    if item is _RESET:
                        self.proxy.stats.reset += 1
                    self.reset()
                    return
                assert isinstance(item, _Chunk)
                due, data, rate = item
                if (wait := due - loop.time()) > 0:
                    await asyncio.sleep(wait)
                if rate is None:
                    writer.write(data)
                    await writer.drain()
                else:
                    free_at = await _paced(writer, data, rate, free_at)
                if stream == "upstream":
                    self.proxy.stats.bytes_upstream += len(data)
                else:
                    self.proxy.stats.bytes_downstream += len(data)
        except OSError:
            self.reset()


async def _paced(writer: asyncio.StreamWriter, data: bytes, rate: float, free_at: float) -> float:
    """Write ``data`` at most ``rate`` bytes/s, in slices; returns when the link is next free."""
    loop = asyncio.get_running_loop()
    piece = max(1, int(rate * PACING_SLICE))
    for offset in range(0, len(data), piece):
        part = data[offset : offset + piece]
        if (wait := free_at - loop.time()) > 0:
            await asyncio.sleep(wait)
        writer.write(part)
        await writer.drain()
        free_at = max(free_at, loop.time()) + len(part) / rate
    return free_at
