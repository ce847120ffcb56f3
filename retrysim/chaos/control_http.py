"""The control API over HTTP/1.1 on loopback, and ``retrysim proxy serve``'s loop.

Why not ``http.server``: the proxies the API drives run on an asyncio loop, and a threaded
server would change them from another thread. So, as retrysim's HTTP service does, the API is
served on asyncio streams with the little HTTP/1.1 of ``retrysim.chaos.http_faults``
(``read_head``, ``parse_head``, ``read_body``: ASCII heads, ``Content-Length`` or chunked
bodies); this module adds the request's path, a bound on the body (:data:`MAX_BODY`) and the
JSON answer of :class:`~retrysim.chaos.control.ControlApi`.

As Toxiproxy does, a request whose ``User-Agent`` starts with ``Mozilla/`` is refused (403): a
web page the user visits must not be able to reconfigure a proxy on their machine. It listens
on 127.0.0.1 only; standard library and asyncio only.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable
from typing import Any, Self

from retrysim.chaos.control import ApiError, ControlApi, Reply
from retrysim.chaos.http_faults import BadRequestError, digits, parse_head, read_body, read_head
from retrysim.chaos.listener import LISTEN_HOST, ConnectionServer
from retrysim.chaos.toxics import ChaosError

#: Toxiproxy's API port, where its clients look unless told another.
DEFAULT_PORT = 8474
#: The largest request body read (a /populate of many proxies is a few KB).
MAX_BODY = 1 << 20
#: Seconds a kept-alive connection may stay idle before it is closed.
IDLE_TIMEOUT = 60.0
REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    500: "Internal Server Error",
}


class ControlServer(ConnectionServer):
    """Serve ``api`` on 127.0.0.1:``port`` (0: a free one) until :meth:`stop`."""

    kind = "the control API"

    def __init__(self, api: ControlApi, port: int = DEFAULT_PORT) -> None:
        super().__init__(port)
        self.api = api

    async def start(self) -> Self:
        try:
            await self._listen(self._accept)
        except OSError as error:
            raise ChaosError(
                f"the control API could not listen on {LISTEN_HOST}:{self._port}: "
                f"{error.strerror or error}"
            ) from None
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._one(reader, writer):
                pass
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client went away, sent too much, or stayed idle too long
        finally:
            self._writers.discard(writer)
            writer.transport.abort()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Read one request and answer it; False when the connection is to be closed."""
        try:
            async with asyncio.timeout(IDLE_TIMEOUT):
                raw = await read_head(reader)
            if raw is None:
                return False  # closed between two requests
            head, path = parse_head(raw), _target(raw)
            if head is None or path is None:
                raise BadRequestError("not an HTTP/1.x request")
            refused = _refusal(head.headers)
            if refused is not None:
                await _send(writer, refused, keep=False)
                return False
            body = await read_body(reader, head.headers)
        except BadRequestError as error:
            await _send(writer, _error(f"malformed HTTP request: {error}", 400), keep=False)
            return False
        if len(body) > MAX_BODY:  # a chunked body is only known once read
            await _send(writer, _error(f"the body is over {MAX_BODY} bytes", 413), keep=False)
            return False
        if "chunked" in head.headers.get("transfer-encoding", "").lower():
            body = _unchunked(body)
        reply = await self._answer(head.method, path, body)
        await _send(writer, reply, head.keep_alive)
        return head.keep_alive

    async def _answer(self, method: str, path: str, body: bytes) -> Reply:
        try:
            return await self.api.handle(method, path, body)
        except Exception as error:  # a bug: said so in the answer, the server goes on
            said = f"internal error in retrysim: {type(error).__name__}: {error}"
            return Reply(500, ApiError(said, 500).payload())


def _target(head: bytes) -> str | None:
    """The request line's path (``/proxies/redis``), or None if it is not one
    (``parse_head`` reads the method and version, not the target)."""
    parts = head.split(b"\r\n", 1)[0].split(b" ")
    if len(parts) != 3 or not parts[1].startswith(b"/") or not parts[1].isascii():
        return None
    return parts[1].decode("ascii")


def _refusal(headers: dict[str, str]) -> Reply | None:
    """The Reply refusing a request before its body is read, or None to go on."""
    if headers.get("user-agent", "").startswith("Mozilla/"):
        return _error("User agent not allowed", 403)
    length = headers.get("content-length", "0")
    if digits(length) and int(length) > MAX_BODY:
        return _error(f"the body is over {MAX_BODY} bytes", 413)
    return None


def _unchunked(body: bytes) -> bytes:
    """A chunked body's data (``read_body`` keeps the framing, to pass it on unchanged)."""
    data: list[bytes] = []
    rest = body
    while True:
        line, _, rest = rest.partition(b"\r\n")
        size = int(line.split(b";", 1)[0].strip(), 16)  # read_body checked it
        if size == 0:
            return b"".join(data)
        data.append(rest[:size])
        rest = rest[size + 2 :]


def _error(message: str, status: int) -> Reply:
    return Reply(status, ApiError(message, status).payload())


async def _send(writer: asyncio.StreamWriter, reply: Reply, keep: bool) -> None:
    reason = REASONS.get(reply.status, "Unknown")
    lines = [f"HTTP/1.1 {reply.status} {reason}"]
    body = b""
    if reply.body is not None:
        body = json.dumps(reply.body).encode()
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    elif reply.status != 204:
        lines.append("Content-Length: 0")
    lines.append(f"Connection: {'keep-alive' if keep else 'close'}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()


# --- retrysim proxy serve --------------------------------------------------------------------


async def serve(
    port: int,
    config: Any = None,
    *,
    announce: Callable[[str], None],
    seed: int = 0,
    where: str = "--config",
) -> signal.Signals | None:
    """Serve the control API on 127.0.0.1:``port`` until SIGTERM or SIGHUP (returned) or a
    Ctrl-C (the loop's KeyboardInterrupt), then stop every proxy and the API.

    ``config``: a /populate body (a JSON array of proxies) made before anything else; an
    error in it is a ChaosError naming ``where``. ``announce`` gets a line for the API's
    address, then one per proxy as it starts listening (or is disabled or deleted).
    """
    from retrysim.stop_signals import held_by_loop

    stop = asyncio.Event()
    caught: list[signal.Signals] = []

    def on_signal(number: signal.Signals) -> None:
        caught.append(number)
        stop.set()

    api = ControlApi(seed=seed, announce=announce)
    server = ControlServer(api, port)
    with held_by_loop(on_signal):
        try:
            await server.start()
            announce(
                f"retrysim proxy: control API on http://{LISTEN_HOST}:{server.port} "
                "(Toxiproxy's HTTP API); stop with Ctrl-C"
            )
            if config is not None:
                try:
                    await api.populate(config)
                except ApiError as error:
                    raise ChaosError(f"{where}: {error.message}") from None
            await stop.wait()
        finally:
            await server.stop()
            await api.close()
    return caught[0] if caught else None
