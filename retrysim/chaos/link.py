"""One forwarded connection of the fault proxy: a reader and a writer task per direction.

Each chunk read is judged by the proxy's toxics as it arrives (black hole, reset point, limit,
latency, packet loss, slices, bandwidth) and queued with the loop time before which it may be
written; the writer keeps the order and the pacing. Split from ``retrysim.chaos.proxy``, which
accepts connections and owns the toxics; this module owns what happens on one connection.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from contextlib import suppress
from typing import Any, NamedTuple, Protocol

from retrysim.chaos.proxy_stats import ProxyStats
from retrysim.chaos.toxics import (
    STREAMS,
    Bandwidth,
    Blackhole,
    Latency,
    LimitData,
    PacketLoss,
    ResetPeer,
    Slicer,
    SlowClose,
    Stream,
    Toxic,
)
from retrysim.sim.faults import loss_delay, retransmissions
from retrysim.sim.streams import LATENCY, LOSS_SEGMENT, SLICES, stream_key, unit


class Proxy(Protocol):
    """What a link needs of its proxy (``retrysim.chaos.proxy.FaultProxy``)."""

    toxics: tuple[Toxic, ...]
    keys: list[int]
    stats: ProxyStats

    @property
    def stopping(self) -> bool: ...
    def elapsed(self) -> float: ...
    def picked(self, index: int, connection: int, elapsed: float) -> bool: ...
    def active_toxics(
        self, kind: type[Any] | tuple[type[Any], ...], connection: int, elapsed: float
    ) -> list[int]: ...
    def counted_out(self, connection: int, elapsed: float) -> bool: ...


CHUNK = 65536
#: Chunks read ahead of what has been written, per direction: back-pressure under latency.
QUEUE_CHUNKS = 64
#: Bandwidth pacing writes pieces of at most this many seconds' worth of bytes.
PACING_SLICE = 0.02


def rst(writer: asyncio.StreamWriter) -> None:
    """Close with SO_LINGER 0, so the peer gets a TCP RST (ECONNRESET), not a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


_EOF = object()
_RESET = object()  # a ResetPeer's: counted in stats.reset
_RESET_UNCOUNTED = object()  # a FirstN's or EveryNth's: counted in stats.counted_resets
_CLOSE = object()  # a LimitData's: both sides closed (FIN), not reset


class _Chunk(NamedTuple):
    due: float  # the loop time before which it is not written (latency)
    data: bytes
    rate: float | None  # the bandwidth limit, bytes/s


class Link:
    """One forwarded connection: a reader and a writer task per direction, joined by a queue."""

    def __init__(
        self,
        proxy: Proxy,
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
        for toxic in self.proxy.toxics:
            if isinstance(toxic, ResetPeer) and toxic.timeout > 0 and toxic.until > opened:
                # The link's own timer, so that a reset never outlives the link's pumps.
                self.tasks.append(loop.create_task(self._reset_after(toxic, opened)))
        try:
            await asyncio.gather(*pumps, return_exceptions=True)
        finally:
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _reset_after(self, toxic: ResetPeer, opened: float) -> None:
        """Toxiproxy's reset_peer ``timeout``: RST once it has applied for ``timeout`` s. The
        toxic is found by identity when the time comes: a control API may have moved it in
        the list, or removed it (then nothing happens)."""
        at = max(opened, toxic.start) + toxic.timeout
        await asyncio.sleep(at - self.proxy.elapsed())
        index = next((i for i, t in enumerate(self.proxy.toxics) if t is toxic), None)
        if index is not None and toxic.active(at) and self.proxy.picked(index, self.id, at):
            self.proxy.stats.reset += 1
            self.reset()

    def reset(self) -> None:
        """RST the client, drop the service's side, stop every task of the link."""
        if self.was_reset:
            return
        self.was_reset = True
        rst(self.client[1])
        rst(self.service[1])
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()

    def finish(self) -> None:
        """Close both sides with a FIN (LimitData): what was written is flushed, no RST."""
        current = asyncio.current_task()
        for writer in (self.client[1], self.service[1]):
            writer.close()
        for task in self.tasks:
            if task is not current:
                task.cancel()

    def close(self) -> None:
        # Stopping aborts: a peer that never reads must not keep a flush (and the stop) waiting.
        stopping = self.proxy.stopping
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
                if proxy.active_toxics(Blackhole, self.id, elapsed):
                    proxy.stats.bytes_dropped += len(data)
                    continue
                if stream == "upstream" and proxy.counted_out(self.id, elapsed):
                    proxy.stats.counted_resets += 1
                    await queue.put(_RESET_UNCOUNTED)
                    return
                cut = self._reset_point(stream, passed, len(data), elapsed)
                limit = self._limit_point(stream, passed, len(data), elapsed)
                if limit is not None and (cut is None or limit < cut):
                    cut, end = limit, _CLOSE
                else:
                    end = _RESET
                if cut is not None:
                    data = data[:cut]
                delay = self._delay(stream, chunk, elapsed) + self._lost(stream, chunk, elapsed)
                due = max(due, loop.time() + delay)
                if delay > 0:
                    proxy.stats.chunks_delayed += 1
                rate = self._rate(stream, elapsed)
                for offset, gap in self._slices(stream, chunk, len(data), elapsed):
                    due += gap
                    await queue.put(_Chunk(due, data[offset[0] : offset[1]], rate))
                passed += len(data)
                if cut is not None:
                    await queue.put(end)
                    return
        except OSError:
            self.reset()
            return
        await queue.put(_EOF)

    def _reset_point(self, stream: Stream, passed: int, size: int, elapsed: float) -> int | None:
        """How many bytes of this chunk get through before a ResetPeer fires, or None."""
        for i in self.proxy.active_toxics(ResetPeer, self.id, elapsed):
            toxic = self.proxy.toxics[i]
            assert isinstance(toxic, ResetPeer)
            if toxic.timeout == 0 and toxic.stream == stream and passed + size > toxic.bytes:
                return max(0, toxic.bytes - passed)
        return None

    def _delay(self, stream: Stream, chunk: int, elapsed: float) -> float:
        total = 0.0
        for i in self.proxy.active_toxics(Latency, self.id, elapsed):
            toxic = self.proxy.toxics[i]
            assert isinstance(toxic, Latency)
            if toxic.stream == stream:
                key = stream_key(self.proxy.keys[i], LATENCY)
                total += toxic.delay(unit(key, self.id, chunk))
        return total

    def _limit_point(self, stream: Stream, passed: int, size: int, elapsed: float) -> int | None:
        """How many bytes of this chunk get through before a LimitData closes, or None."""
        points = []
        for i in self.proxy.active_toxics(LimitData, self.id, elapsed):
            toxic = self.proxy.toxics[i]
            assert isinstance(toxic, LimitData)
            if toxic.stream == stream and passed + size >= toxic.bytes:
                points.append(max(0, toxic.bytes - passed))
        return min(points) if points else None

    def _slices(
        self, stream: Stream, chunk: int, size: int, elapsed: float
    ) -> list[tuple[tuple[int, int], float]]:
        """The chunk's pieces ((start, end), seconds after the previous one): one piece, at
        once, unless a Slicer cuts it (the first active one on ``stream``)."""
        if size == 0:
            return []
        for i in self.proxy.active_toxics(Slicer, self.id, elapsed):
            toxic = self.proxy.toxics[i]
            assert isinstance(toxic, Slicer)
            if toxic.stream != stream:
                continue
            self.proxy.stats.sliced += 1
            key = stream_key(self.proxy.keys[i], SLICES)
            pieces, offset, piece = [], 0, 0
            while offset < size:
                u = unit(key, self.id, (chunk << 20) | piece)
                length = toxic.average_size + round(toxic.size_variation * (2 * u - 1))
                end = min(size, offset + max(1, length))
                pieces.append(((offset, end), toxic.delay if piece else 0.0))
                offset, piece = end, piece + 1
            return pieces
        return [((0, size), 0.0)]

    def _slow_close(self, stream: Stream, elapsed: float) -> float:
        """Seconds a SlowClose holds the end of ``stream`` (the longest active one)."""
        delays = [
            toxic.delay
            for i in self.proxy.active_toxics(SlowClose, self.id, elapsed)
            if isinstance(toxic := self.proxy.toxics[i], SlowClose) and toxic.stream == stream
        ]
        return max(delays, default=0.0)

    def _lost(self, stream: Stream, chunk: int, elapsed: float) -> float:
        """Seconds the chunk's lost transmissions hold it (PacketLoss), drawn as the simulator
        draws an attempt's request (upstream) or answer (downstream) segment."""
        total = 0.0
        segment = STREAMS.index(stream)
        for i in self.proxy.active_toxics(PacketLoss, self.id, elapsed):
            toxic = self.proxy.toxics[i]
            assert isinstance(toxic, PacketLoss)
            if toxic.stream != stream:
                continue
            key = stream_key(self.proxy.keys[i], LOSS_SEGMENT + segment)
            k = retransmissions(unit(key, self.id, chunk), toxic.probability)
            self.proxy.stats.segments += 1
            self.proxy.stats.transmissions_lost += k
            total += loss_delay(k, toxic.rto)
        return total

    def _rate(self, stream: Stream, elapsed: float) -> float | None:
        rates = []
        for i in self.proxy.active_toxics(Bandwidth, self.id, elapsed):
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
                    if held := self._slow_close(stream, self.proxy.elapsed()):
                        self.proxy.stats.slow_closes += 1
                        await asyncio.sleep(held)
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                if item is _CLOSE:
                    self.proxy.stats.limited += 1
                    self.finish()
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
