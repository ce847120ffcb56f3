"""A small HTTP/1.1 service on loopback that answers on a scenario's schedule (``HttpService``).

Why it exists: a 429 with ``Retry-After``, a 503 and a slow answer are *answers*, which the TCP
proxy (``retrysim.chaos.proxy``) cannot give; a real HTTP client has to receive them from a
server. This one is the scenario's ``ideal`` service made real: each request waits its service
time (the scenario's ``[service] latency``, plus any ``latency_spike``) and answers 200, except
that in a fault's window it answers at once what the fault names:

- ``error = "RateLimited"``: **429**, with ``Retry-After`` set to the fault's ``retry_after``
  (seconds, fractions kept: ``0.5``) when it has one;
- ``error = "httpx.HTTPStatusError"``: **503** (the status the simulator's stand-in carries);
- ``error = "ServerError"``: **500**: retrysim's ``ServerError`` is a 5xx that "may not be
  transient" and is not retried by default, and 500 is the status the transient-error
  classifier does not retry either (it retries 429, 502, 503 and 504), so both sides agree.

Outages (``mode = "refuse"``), flaky windows and recovery ramps with one of those errors are the
service's; every other fault (refusals and resets with a connection error, black holes) is the
proxy's (:func:`split_faults`; against another service, latency spikes are the proxy's too).
The decisions are the simulator's own counter-based draws (``retrysim.sim.attempt``), keyed by
the call and attempt a request names in its ``X-Retrysim-Call`` and ``X-Retrysim-Attempt``
headers, so a real run and a simulation of the same seed fail the same attempts; a request
without them draws as call 0, attempt 1. Times are seconds since the service started (or the
``origin`` it is given: a real run's loop zero). It counts, per call, the requests it finished
with a 200 (the work, done whether or not the client still listens): a call's ``executions``.

Standard library and asyncio only (no server dependency). It listens on 127.0.0.1 on a free
port; ``stop()`` (or leaving ``async with``) closes every connection and ends every task within
``STOP_TIMEOUT`` seconds.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Self

from retrysim.chaos.listener import LoopbackListener
from retrysim.chaos.toxics import ChaosError

if TYPE_CHECKING:
    from retrysim.model.scenario import Fault, Scenario
    from retrysim.sim.attempt import AttemptPhases

#: Seconds ``stop()`` waits for its connections' tasks to end once cancelled.
STOP_TIMEOUT = 5.0
#: A request's line and headers may be at most this many bytes.
MAX_HEAD = 16384
#: What each error a fault names is answered with.
HTTP_STATUS: dict[str, int] = {"RateLimited": 429, "httpx.HTTPStatusError": 503, "ServerError": 500}
REASONS = {
    200: "OK",
    400: "Bad Request",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
CALL_HEADER = "x-retrysim-call"
ATTEMPT_HEADER = "x-retrysim-attempt"


def is_http_fault(fault: Fault) -> bool:
    """Whether ``fault`` is an HTTP answer (this service's) rather than a connection fault."""
    from retrysim.model.scenario import Flaky, Outage, RecoveryRamp

    if isinstance(fault, Outage) and fault.mode == "blackhole":
        return False
    if not isinstance(fault, Outage | Flaky | RecoveryRamp) or fault.answer is not None:
        return False  # an answer is returned, never served: the proxy's path refuses it
    return fault.error in HTTP_STATUS


def split_faults(
    faults: Sequence[Fault], own_service: bool = True
) -> tuple[list[Fault], list[Fault]]:
    """(the service's faults, the proxy's): HTTP answers and latency spikes, and the rest.

    ``own_service`` False (another service is the target): latency spikes are the proxy's
    (each answer's chunks held back), and HTTP answers nobody's (``check_http`` refuses them).
    """
    from retrysim.model.scenario import LatencySpike

    mine = [is_http_fault(f) or (own_service and isinstance(f, LatencySpike)) for f in faults]
    return (
        [f for f, m in zip(faults, mine, strict=True) if m],
        [f for f, m in zip(faults, mine, strict=True) if not m],
    )


def _phases(scenario: Scenario, seed: int) -> AttemptPhases:
    """The simulator's attempt phases for the service's faults, keyed as the simulator keys
    them (by each fault's index among all the scenario's faults)."""
    from retrysim.sim.attempt import AttemptPhases
    from retrysim.sim.faults import FaultPlan, compile_faults
    from retrysim.sim.service import service_latency

    plan = compile_faults(scenario.faults, seed)
    gates = plan.gates
    codes = _status_by_code()
    kept = tuple(g for g in gates if getattr(g, "verdict", getattr(g, "code", 0)) in codes)
    return AttemptPhases(FaultPlan(kept, plan.spikes), service_latency(scenario.service), seed)


def _status_by_code() -> dict[int, int]:
    from retrysim.sim.failures import CODES

    return {CODES[name]: status for name, status in HTTP_STATUS.items()}


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


class HttpService(LoopbackListener):
    """An HTTP/1.1 service on 127.0.0.1 answering on ``scenario``'s schedule (see the module).

    ``scenario`` None: no faults and no service time, every request a 200 at once. ``origin``:
    the loop time its schedule counts from (default: when it starts); a real run passes 0, its
    loop's own zero, so the windows are on the fleet's clock however long the start took.
    """

    kind = "the service"

    def __init__(
        self,
        scenario: Scenario | None = None,
        seed: int = 0,
        *,
        port: int = 0,
        origin: float | None = None,
    ) -> None:
        super().__init__(port, origin)
        self._phases = None if scenario is None else _phases(scenario, seed)
        self._statuses = _status_by_code()
        self.stats = ServiceStats()
        #: call key -> requests finished with a 200 (the work done)
        self.executions: Counter[int] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> Self:
        """Listen; its windows count from now, or from ``origin`` when one was given."""
        try:
            await self._listen(self._accept)
        except OSError as error:
            raise ChaosError(f"the HTTP service could not listen on 127.0.0.1: {error}") from None
        return self

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

    # --- answering ---------------------------------------------------------------------------

    def decide(self, elapsed: float, key: int, attempt: int) -> tuple[int, float, float | None]:
        """(status, seconds before answering, Retry-After) for this request at ``elapsed``."""
        phases = self._phases
        if phases is None:
            return 200, 0.0, None
        verdict = phases.door(elapsed, key, attempt)
        if verdict > 0 and verdict in self._statuses:
            return self._statuses[verdict], 0.0, phases.hint(elapsed, key, attempt)
        return 200, phases.service_time(elapsed, key, attempt), None

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.connections += 1
        self._writers.add(writer)
        task = asyncio.ensure_future(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._one(reader, writer):
                pass
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client went away (or was reset by the proxy)
        finally:
            self._writers.discard(writer)
            writer.transport.abort()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Read one request and answer it; False when the connection is to be closed."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as partial:
            if partial.partial:
                self._bad(writer)
            return False
        if len(head) > MAX_HEAD:
            self._bad(writer)
            return False
        parsed = _parse_head(head)
        if parsed is None:
            self._bad(writer)
            return False
        version, headers = parsed
        length = headers.get("content-length", "0")
        if not _digits(length):
            self._bad(writer)
            return False
        if int(length):
            await reader.readexactly(int(length))
        key = _number(headers.get(CALL_HEADER), 0)
        attempt = _number(headers.get(ATTEMPT_HEADER), 1)
        self.stats.requests += 1
        status, seconds, hint = self.decide(self.elapsed(), key, max(1, attempt))
        if seconds > 0:
            await asyncio.sleep(seconds)
        if status == 200:  # the work is done, whether or not the client still listens
            self.executions[key] += 1
        self._count(status)
        keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        extra = {} if hint is None else {"Retry-After": f"{hint:g}"}
        writer.write(_response(status, extra, keep))
        await writer.drain()
        return keep

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

    def _bad(self, writer: asyncio.StreamWriter) -> None:
        self.stats.bad_requests += 1
        writer.write(_response(400, {}, keep=False))


def _parse_head(head: bytes) -> tuple[str, dict[str, str]] | None:
    """(HTTP version, lower-cased headers) of a request's head, or None if it is not one.

    A head with any byte outside ASCII is not one (answered 400): the service reads numbers
    from headers, and ``"²".isdigit()`` is true where ``int("²")`` raises.
    """
    if not head.isascii():
        return None
    text = head.decode("ascii")
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon:
            return None
        headers[name.strip().lower()] = value.strip()
    return parts[2], headers


def _digits(value: str) -> bool:
    """Whether ``value`` is a whole number in ASCII digits (``str.isdigit`` also takes ``²``)."""
    return value.isascii() and value.isdigit()


def _number(value: str | None, default: int) -> int:
    if value is None or not _digits(value) or len(value) > 20:
        return default
    return int(value)


def _response(status: int, headers: dict[str, str], keep: bool) -> bytes:
    body = f"{status} {REASONS[status]}\n".encode()
    lines = [f"HTTP/1.1 {status} {REASONS[status]}", "Content-Type: text/plain"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += [f"Content-Length: {len(body)}", f"Connection: {'keep-alive' if keep else 'close'}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


__all__ = [
    "HTTP_STATUS",
    "HttpService",
    "ServiceStats",
    "is_http_fault",
    "split_faults",
]
