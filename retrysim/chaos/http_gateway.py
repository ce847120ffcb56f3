"""An HTTP fault gateway in front of a user's own loopback HTTP service (``HttpGateway``).

Why it exists: ``chaos --start-http`` gets its 429s with ``Retry-After``, 503s and slow answers
from retrysim's own service; a user who wants *their* service (and their client code) under the
same faults needs something in front of it that gives those answers on the scenario's schedule
and passes every other request on. This is that: an asyncio reverse proxy for HTTP/1.1 to a
loopback upstream only, which decides each request exactly as retrysim's own service does
(``retrysim.chaos.http_faults``, the one definition, through the same server base,
``HttpFaultServer``):

- a gate fault that hits (an outage, flaky window, recovery ramp, ... whose error is
  ``RateLimited``, ``httpx.HTTPStatusError`` or ``ServerError``) is answered by the gateway at
  once, 429 (with ``Retry-After``), 503 or 500: the request never reaches the service;
- a ``latency_spike`` holds the request its ``extra`` seconds before passing it on (the
  service's own time comes on top: the scenario's ``[service]`` is not added, it models the
  service, for ``--vs-sim``);
- everything else is passed on unchanged and the service's answer relayed unchanged.

Connection faults (refusals and resets with a connection error, black holes, packet loss) are
not an HTTP server's to give: the fault proxy in front gives them, as in front of retrysim's own
service. :func:`fault_layer` starts both, proxy -> gateway -> service, on one port: what
``chaos --target http://...`` puts between its fleet and the user's service, and what a user's
own client code can be pointed at.

Draws are keyed as retrysim's service keys them (``X-Retrysim-Call`` and ``X-Retrysim-Attempt``,
sent by retrysim's fleet); a request without them (a user's own client) is drawn as a call of
its own, the n-th such request as call n, attempt 1, so a flaky window's probability applies
request by request. Each client connection gets its own upstream connection, opened at its
first passed request and kept while both sides keep the connection alive; one that cannot be
opened (or is closed before answering, twice) resets the client's connection, counted in
``upstream_failed``. ``executions`` counts, per call, the passed requests the service answered
with a 2xx: the work done, whether or not the client still listened.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from retrysim.chaos.http_faults import (
    BadRequestError,
    Decision,
    Head,
    HttpFaults,
    digits,
    parse_headers,
    read_body,
    read_head,
    split_faults,
)
from retrysim.chaos.http_service import HttpFaultServer, ServiceStats
from retrysim.chaos.proxy import FaultProxy, loopback_host
from retrysim.chaos.toxics import ChaosError, toxics_from_scenario

if TYPE_CHECKING:
    from retrysim.model.scenario import Scenario

#: Seconds the gateway waits for a connection to the service.
CONNECT_TIMEOUT = 5.0
#: Bytes relayed at a time from the service's answer body.
PIECE = 65536
#: Answers that never have a body (with 1xx, and any answer to HEAD).
NO_BODY = (204, 304)


@dataclass
class GatewayStats(ServiceStats):
    """What the gateway did: ``ServiceStats``' counts of its own answers (429, 503, 500, 400),
    plus ``forwarded`` (requests passed to the service; ``ok``: those it answered 2xx),
    ``delayed`` (held by a latency spike) and ``upstream_failed`` (the service unreachable)."""

    forwarded: int = 0
    delayed: int = 0
    upstream_failed: int = 0


class _UnreachableError(Exception):
    """The service could not be reached, or closed the connection without answering."""


_Link = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class HttpGateway(HttpFaultServer):
    """Answers ``scenario``'s HTTP faults and passes every other request to ``upstream`` (a
    loopback ``(host, port)``); see the module. ``scenario`` None: a plain reverse proxy."""

    kind = "the HTTP gateway"

    def __init__(
        self,
        upstream: tuple[str, int],
        scenario: Scenario | None = None,
        seed: int = 0,
        *,
        port: int = 0,
        origin: float | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        host, upstream_port = upstream
        if not (isinstance(upstream_port, int) and 0 < upstream_port < 65536):
            raise ChaosError(f"upstream port must be in 1..65535, not {upstream_port!r}")
        faults = None if scenario is None else HttpFaults(scenario, seed, service_time=False)
        self.stats: GatewayStats = GatewayStats()
        super().__init__(faults, self.stats, port=port, origin=origin)
        self.upstream = (loopback_host(host), upstream_port)
        self.connect_timeout = connect_timeout
        self._links: dict[asyncio.StreamWriter, _Link] = {}
        self._anonymous = 0

    def ids(self, head: Head) -> tuple[int, int]:
        """What the request names; one without a call header is a call of its own."""
        if "x-retrysim-call" in head.headers:
            return head.ids()
        key = self._anonymous
        self._anonymous += 1
        return key, 1

    async def closed(self, writer: asyncio.StreamWriter) -> None:
        link = self._links.pop(writer, None)
        if link is not None:
            self._drop(link)

    async def passed(
        self,
        head: Head,
        raw: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        key: int,
        decided: Decision,
    ) -> bool:
        """Pass the request on and relay the answer; False: close the client's connection."""
        if decided.delay > 0:
            self.stats.delayed += 1
        try:
            link, status_head = await self._exchange(writer, raw)
            status, version, headers = _parse_status(status_head)
            while 100 <= status < 200 and status != 101:  # interim answers, then the real one
                writer.write(status_head)
                status_head = await _next_head(link[0])
                status, version, headers = _parse_status(status_head)
            writer.write(status_head)
            framed = await _relay_body(link[0], writer, head, status, headers)
        except (_UnreachableError, BadRequestError):  # not there, or not speaking HTTP/1.x
            self.stats.upstream_failed += 1
            _rst(writer)
            return False
        await writer.drain()
        if 200 <= status < 300:  # the work was done, whether or not the client still listens
            self.executions[key] += 1
            self.stats.ok += 1
        close = headers.get("connection", "").lower() == "close"
        # a 101 (an upgrade, say to WebSocket) is not relayed further: both connections close
        upstream_keeps = framed and version == "HTTP/1.1" and not close and status != 101
        if not upstream_keeps:
            self._drop(self._links.pop(writer))
        return head.keep_alive and upstream_keeps

    async def _exchange(self, client: asyncio.StreamWriter, raw: bytes) -> tuple[_Link, bytes]:
        """Send ``raw`` to the service on the client's link; the answer's head.

        A kept-alive link the service closed meanwhile (nothing read back) is replaced once.
        """
        link = self._links.get(client)
        for _ in range(2):
            fresh = link is None
            if link is None:
                link = await self._connect()
                self._links[client] = link
            up_reader, up_writer = link
            try:
                up_writer.write(raw)
                await up_writer.drain()
                head = await read_head(up_reader)
            except (OSError, BadRequestError):
                head = None
            if head is not None:
                self.stats.forwarded += 1
                return link, head
            self._drop(self._links.pop(client))
            link = None
            if fresh:
                break
        raise _UnreachableError

    async def _connect(self) -> _Link:
        try:
            link = await asyncio.wait_for(
                asyncio.open_connection(*self.upstream), self.connect_timeout
            )
        except (OSError, TimeoutError):
            raise _UnreachableError from None
        self._writers.add(link[1])
        return link

    def _drop(self, link: _Link) -> None:
        self._writers.discard(link[1])
        link[1].transport.abort()


def _parse_status(head: bytes) -> tuple[int, str, dict[str, str]]:
    """(status, version, lower-cased headers) of an answer's head; a BadRequestError if not one."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    headers = parse_headers(lines[1:])
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or headers is None:
        raise BadRequestError("the service's answer is not HTTP/1.x")
    if not (digits(parts[1]) and len(parts[1]) == 3):
        raise BadRequestError("the service's answer has no status")
    return int(parts[1]), parts[0], headers


async def _next_head(reader: asyncio.StreamReader) -> bytes:
    head = await read_head(reader)
    if head is None:
        raise asyncio.IncompleteReadError(b"", None)
    return head


async def _relay_body(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    request: Head,
    status: int,
    headers: dict[str, str],
) -> bool:
    """Relay the answer's body; whether it was framed (False: it ran to the end of the
    connection, which is then spent)."""
    if request.method == "HEAD" or status in NO_BODY or 100 <= status < 200:
        return True
    if "chunked" in headers.get("transfer-encoding", "").lower() or "content-length" in headers:
        if "transfer-encoding" not in headers and digits(headers["content-length"]):
            left = int(headers["content-length"])
            while left:
                piece = await reader.readexactly(min(left, PIECE))
                writer.write(piece)
                left -= len(piece)
                await writer.drain()
            return True
        writer.write(await read_body(reader, headers))
        return True
    while piece := await reader.read(PIECE):
        writer.write(piece)
        await writer.drain()
    return False


def _rst(writer: asyncio.StreamWriter) -> None:
    """Close with SO_LINGER 0, so the client gets a TCP RST, as from the service itself."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@asynccontextmanager
async def fault_layer(
    upstream: tuple[str, int],
    scenario: Scenario,
    seed: int = 0,
    *,
    origin: float | None = None,
) -> AsyncIterator[tuple[FaultProxy, HttpGateway]]:
    """The whole of ``scenario``'s faults in front of the service at ``upstream``: a
    ``FaultProxy`` (connection faults) -> an ``HttpGateway`` (HTTP answers, latency spikes) ->
    the service. Clients connect to the proxy's port; both are stopped on leaving."""
    toxics = toxics_from_scenario(split_faults(scenario.faults)[1])
    async with (
        HttpGateway(upstream, scenario, seed, origin=origin) as gateway,
        FaultProxy(gateway.address, toxics, seed, origin=origin) as proxy,
    ):
        yield proxy, gateway


__all__ = ["GatewayStats", "HttpGateway", "fault_layer"]
