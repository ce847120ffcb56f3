"""A small HTTP/1.1 service on loopback that answers on a scenario's schedule (``HttpService``).

Why it exists: a 429 with ``Retry-After``, a 503 and a slow answer are *answers*, which the TCP
proxy (``retrysim.chaos.proxy``) cannot give; a real HTTP client has to receive them from a
server. This one is the scenario's ``ideal`` service made real: each request waits its service
time (the scenario's ``[service] latency``, plus any ``latency_spike``) and answers 200, except
that in a fault's window it answers at once what the fault names (429 with ``Retry-After``,
503, 500: ``retrysim.chaos.http_faults``, which says which and why, decides each request, and
is the gateway's too).

Outages (``mode = "refuse"``), flaky windows and recovery ramps with one of those errors are the
service's; every other fault (refusals and resets with a connection error, black holes) is the
proxy's (:func:`split_faults`). The decisions are the simulator's own counter-based draws, keyed
by the call and attempt a request names in its ``X-Retrysim-Call`` and ``X-Retrysim-Attempt``
headers, so a real run and a simulation of the same seed fail the same attempts; a request
without them draws as call 0, attempt 1. Times are seconds since the service started (or the
``origin`` it is given: a real run's loop zero). It counts, per call, the requests it finished
with a 200 (the work, done whether or not the client still listens): a call's ``executions``.

:class:`HttpFaultServer`, its base, is what it shares with the gateway in front of a user's own
service (``retrysim.chaos.http_gateway``): reading requests, answering faults, the connections'
bookkeeping and a bounded stop. Only what a request that passes gets differs (a 200 here, the
user's service's answer there).

Standard library and asyncio only (no server dependency). It listens on 127.0.0.1 on a free
port; ``stop()`` (or leaving ``async with``) closes every connection and ends every task within
``retrysim.chaos.listener.STOP_TIMEOUT`` seconds.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Self

from retrysim.chaos.http_faults import (
    HTTP_STATUS,
    SERVE,
    BadRequestError,
    Decision,
    Head,
    HttpFaults,
    fault_answer,
    is_http_fault,
    parse_head,
    read_body,
    read_head,
    response,
    split_faults,
)
from retrysim.chaos.listener import ConnectionServer
from retrysim.chaos.toxics import ChaosError

if TYPE_CHECKING:
    from retrysim.model.scenario import Scenario


@dataclass
class ServiceStats:
    """What the service answered, for a report."""

    connections: int = 0
    requests: int = 0
    ok: int = 0  # 200
    rate_limited: int = 0  # 429
    unavailable: int = 0  # 503
    server_errors: int = 0  # 500
    bad_requests: int = 0  # 400 (malformed), then closed

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class HttpFaultServer(ConnectionServer):
    """An HTTP/1.1 server on 127.0.0.1 that answers ``faults``' decisions (see the module);
    subclasses say what a request that passes gets (:meth:`passed`).

    ``faults`` None: no faults, every request passes at once. ``origin``: the loop time its
    schedule counts from (default: when it starts).
    """

    kind = "the HTTP server"

    def __init__(
        self, faults: HttpFaults | None, stats: ServiceStats, *, port: int, origin: float | None
    ) -> None:
        super().__init__(port, origin)
        self._faults = faults
        self.stats = stats
        #: call key -> requests whose work was done (a 200 served, or passed on and answered 2xx)
        self.executions: Counter[int] = Counter()

    async def start(self) -> Self:
        """Listen; its windows count from now, or from ``origin`` when one was given."""
        try:
            await self._listen(self._accept)
        except OSError as error:
            raise ChaosError(f"{self.kind} could not listen on 127.0.0.1: {error}") from None
        return self

    def decision(self, elapsed: float, key: int, attempt: int) -> Decision:
        """The faults' decision for this request at ``elapsed`` (none: it passes at once)."""
        return SERVE if self._faults is None else self._faults.decide(elapsed, key, attempt)

    def ids(self, head: Head) -> tuple[int, int]:
        """(call key, attempt) a request is drawn as: what its headers name, else call 0."""
        return head.ids()

    async def passed(
        self,
        head: Head,
        raw: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        key: int,
        decided: Decision,
    ) -> bool:
        """Answer a request no fault answered (``decided.delay`` already waited); False: close."""
        raise NotImplementedError

    # --- the connections -----------------------------------------------------------------------

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.connections += 1
        super()._accept(reader, writer)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._one(reader, writer):
                pass
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client went away (or was reset by the proxy)
        finally:
            self._writers.discard(writer)
            writer.transport.abort()
            await self.closed(writer)

    async def closed(self, writer: asyncio.StreamWriter) -> None:
        """A client's connection ended (the gateway closes its upstream connection)."""

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Read one request and answer it; False when the connection is to be closed."""
        try:
            raw = await read_head(reader)
            if raw is None:
                return False
            head = parse_head(raw)
            if head is None:
                raise BadRequestError("not an HTTP/1.x request")
            body = await read_body(reader, head.headers)
        except BadRequestError:
            self.stats.bad_requests += 1
            writer.write(response(400, {}, keep=False))
            return False
        key, attempt = self.ids(head)
        self.stats.requests += 1
        decided = self.decision(self.elapsed(), key, attempt)
        if decided.status != 200:
            self._count(decided.status)
            writer.write(fault_answer(decided, head.keep_alive))
            await writer.drain()
            return head.keep_alive
        if decided.delay > 0:
            await asyncio.sleep(decided.delay)
        return await self.passed(head, raw + body, reader, writer, key, decided)

    def _count(self, status: int) -> None:
        stats = self.stats
        if status == 200:
            stats.ok += 1
        elif status == 429:
            stats.rate_limited += 1
        elif status == 503:
            stats.unavailable += 1
        else:
            stats.server_errors += 1


class HttpService(HttpFaultServer):
    """An HTTP/1.1 service on 127.0.0.1 answering on ``scenario``'s schedule (see the module).

    ``scenario`` None: no faults and no service time, every request a 200 at once. ``origin``:
    the loop time its schedule counts from (default: when it starts); a real run passes 0, its
    loop's own zero, so the windows are on the fleet's clock however long the start took.
    """

    kind = "the HTTP service"

    def __init__(
        self,
        scenario: Scenario | None = None,
        seed: int = 0,
        *,
        port: int = 0,
        origin: float | None = None,
    ) -> None:
        faults = None if scenario is None else HttpFaults(scenario, seed, service_time=True)
        super().__init__(faults, ServiceStats(), port=port, origin=origin)

    def decide(self, elapsed: float, key: int, attempt: int) -> tuple[int, float, float | None]:
        """(status, seconds before answering, Retry-After) for this request at ``elapsed``."""
        decided = self.decision(elapsed, key, attempt)
        return decided.status, decided.delay, decided.retry_after

    async def passed(
        self,
        head: Head,
        raw: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        key: int,
        decided: Decision,
    ) -> bool:
        """A 200: the work is done, whether or not the client still listens."""
        self.executions[key] += 1
        self._count(200)
        writer.write(response(200, {}, head.keep_alive))
        await writer.drain()
        return head.keep_alive


__all__ = [
    "HTTP_STATUS",
    "HttpFaultServer",
    "HttpService",
    "ServiceStats",
    "is_http_fault",
    "split_faults",
]
