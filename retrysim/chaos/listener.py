"""What the fault proxy and the HTTP service share: a server on 127.0.0.1 with its own clock.

Both listen on a loopback port (0: a free one) with a listen backlog of :data:`LISTEN_BACKLOG`
unless given one, report the port once started, refuse a second start, and count their fault
windows from the moment they started, or from an ``origin`` on the loop's clock (a real fleet
passes its loop's zero, so the windows are the fleet's however long setting up took). Each says
what it is (``kind``) in its errors; starting and stopping, which differ, are their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import suppress
from types import TracebackType
from typing import Self

#: The only address retrysim's chaos servers listen on.
LISTEN_HOST = "127.0.0.1"
#: How many connects a server holds before accepting them (its listen backlog), unless given
#: another. asyncio's default, 100, dropped the SYNs of a burst past it: 12 to 19% of 1,000
#: clients connecting at once waited for the kernel's 1 s SYN retransmission, and a fault-free
#: 1,000-client run reported 30 to 100% timeouts. Linux caps it at net.core.somaxconn (4096
#: since kernel 5.4).
LISTEN_BACKLOG = 4096

#: What is called for each accepted connection (a plain callback, or a coroutine function).
Accept = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None] | None]


class LoopbackListener:
    """A loopback server's port, address and clock; subclasses start and stop it."""

    kind = "server"  # what the errors call it ("the proxy", "the service")

    def __init__(
        self, port: int = 0, origin: float | None = None, backlog: int = LISTEN_BACKLOG
    ) -> None:
        if backlog < 1:
            raise ValueError(f"a listen backlog is at least 1, not {backlog}")
        self._port = port
        self._origin = origin
        self.backlog = backlog
        self._server: asyncio.Server | None = None
        self._t0 = 0.0

    @property
    def port(self) -> int:
        """The port it listens on (127.0.0.1), once started."""
        if self._server is None:
            raise RuntimeError(f"{self.kind} is not running")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def address(self) -> tuple[str, int]:
        return LISTEN_HOST, self.port

    def elapsed(self) -> float:
        """Seconds on its own clock: the one its fault windows are on."""
        return asyncio.get_running_loop().time() - self._t0

    async def _listen(self, accept: Accept) -> None:
        """Start listening with ``accept`` for each connection; its clock starts now (or at
        ``origin``)."""
        if self._server is not None:
            raise RuntimeError(f"{self.kind} is already running")
        self._server = await asyncio.start_server(
            accept, LISTEN_HOST, self._port, backlog=self.backlog
        )
        now = asyncio.get_running_loop().time()
        self._t0 = now if self._origin is None else self._origin

    async def start(self) -> Self:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()


#: Seconds stopping a :class:`ConnectionServer` waits for its connections' tasks and its
#: listening socket, each.
STOP_TIMEOUT = 5.0


class ConnectionServer(LoopbackListener):
    """A loopback server that serves each connection in a task of its own (the HTTP service,
    the gateway, the control API): it keeps the tasks and the writers so that :meth:`stop`
    closes every connection and waits, bounded, for every task. Subclasses say how a
    connection is served (:meth:`_serve`)."""

    def __init__(
        self, port: int = 0, origin: float | None = None, backlog: int = LISTEN_BACKLOG
    ) -> None:
        super().__init__(port, origin, backlog)
        self._tasks: set[asyncio.Task[None]] = set()
        #: every connection's writer (a gateway's upstream ones too): stop aborts them all
        self._writers: set[asyncio.StreamWriter] = set()

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        """Stop listening, close every connection, wait (bounded) for every task to end."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=STOP_TIMEOUT)
        with suppress(TimeoutError):
            async with asyncio.timeout(STOP_TIMEOUT):
                await server.wait_closed()
