"""How a scenario's faults become HTTP answers: the one definition both HTTP fault servers use.

Why a module of its own: retrysim's own service (``retrysim.chaos.http_service``, ``chaos
--start-http``) and the gateway in front of a user's service (``retrysim.chaos.http_gateway``,
``chaos --target http://...``) must turn the same fault into the same answer at the same
moment, and a simulation of the same seed must fail the same attempts. So the decision lives
here once (:class:`HttpFaults`), and so does the little HTTP/1.1 both of them read and write
(:func:`parse_head`, :func:`read_body`, :func:`response`).

What a fault answers (``HTTP_STATUS``), in a gate fault's window:

- ``error = "RateLimited"``: **429**, with ``Retry-After`` set to the fault's ``retry_after``
  (seconds, fractions kept: ``0.5``) when it has one;
- ``error = "httpx.HTTPStatusError"``: **503** (the status the simulator's stand-in carries);
- ``error = "ServerError"``: **500**: retrysim's ``ServerError`` is a 5xx that "may not be
  transient" and is not retried by default, and 500 is the status the transient-error
  classifier does not retry either (it retries 429, 502, 503 and 504), so both sides agree.

A ``latency_spike`` delays the answer by its ``extra``. Every other fault (refusals and resets
with a connection error, black holes) is a connection's, the fault proxy's in front
(:func:`split_faults`). The decisions are the simulator's own counter-based draws
(``retrysim.sim.faults``), keyed by the call and attempt a request names in its
``X-Retrysim-Call`` and ``X-Retrysim-Attempt`` headers.

Standard library only, apart from the simulator's fault plan a decision is drawn from.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from retrysim.model.scenario import Fault, Scenario
    from retrysim.sim.faults import FaultPlan

#: A request's (or an answer's) line and headers may be at most this many bytes.
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


class BadRequestError(Exception):
    """A request that is not HTTP/1.x as these servers read it (answered 400, then closed)."""


def is_http_fault(fault: Fault) -> bool:
    """Whether ``fault`` is an HTTP answer (the HTTP server's) rather than a connection fault.

    A gate fault (one with an ``error`` and an ``answer``: outage, flaky, recovery_ramp and
    the like) whose error is one of ``HTTP_STATUS``; never a black hole, nor a fault with an
    ``answer`` (a value is returned, never served: the proxy's path refuses it).
    """
    if getattr(fault, "mode", None) == "blackhole" or not hasattr(fault, "answer"):
        return False
    if getattr(fault, "answer", None) is not None:
        return False
    return getattr(fault, "error", None) in HTTP_STATUS


def split_faults(
    faults: Sequence[Fault], own_service: bool = True
) -> tuple[list[Fault], list[Fault]]:
    """(the HTTP server's faults, the proxy's): HTTP answers and latency spikes, and the rest.

    ``own_service`` False: latency spikes are the proxy's (each answer's chunks held back),
    for a service with no HTTP fault server of retrysim's in front of it.
    """
    from retrysim.model.scenario import LatencySpike

    mine = [is_http_fault(f) or (own_service and isinstance(f, LatencySpike)) for f in faults]
    return (
        [f for f, m in zip(faults, mine, strict=True) if m],
        [f for f, m in zip(faults, mine, strict=True) if not m],
    )


@dataclass(frozen=True)
class Decision:
    """What to do with one request: ``status`` 200 to serve it (retrysim's service) or pass it
    on (the gateway) after ``delay`` seconds; else answer ``status`` at once, with
    ``retry_after`` as its ``Retry-After`` when not None."""

    status: int
    delay: float = 0.0
    retry_after: float | None = None


#: A request no fault touches.
SERVE = Decision(200)


class HttpFaults:
    """A scenario's HTTP faults, ready to decide each request (see the module).

    ``service_time`` True (retrysim's own service): a served request waits the scenario's
    ``[service] latency`` plus any spike, the ``ideal`` service made real. False (the gateway):
    only the spikes; the service behind it takes its own time.
    """

    def __init__(self, scenario: Scenario, seed: int, *, service_time: bool) -> None:
        from retrysim.sim.attempt import AttemptPhases
        from retrysim.sim.failures import CODES
        from retrysim.sim.faults import FaultPlan, compile_faults
        from retrysim.sim.service import service_latency

        self._statuses = {CODES[name]: status for name, status in HTTP_STATUS.items()}
        # Only its own faults (HTTP answers and latency spikes: a slicer's or a packet loss's
        # delay is the proxy's, and would count twice), each keyed by its index among all the
        # scenario's faults, as the simulator keys them.
        mine = {id(fault) for fault in split_faults(scenario.faults)[0]}
        plan = compile_faults(scenario.faults, seed, keep=lambda fault: id(fault) in mine)
        kept = tuple(g for g in plan.gates if _code(g) in self._statuses)
        self.plan: FaultPlan = FaultPlan(kept, plan.spikes)
        latency = service_latency(scenario.service) if service_time else None
        self._phases = None if latency is None else AttemptPhases(self.plan, latency, seed)

    def decide(self, elapsed: float, key: int, attempt: int) -> Decision:
        """The decision for call ``key``'s attempt ``attempt`` arriving at ``elapsed``."""
        plan = self.plan
        verdict = plan.gate(elapsed, key, attempt) if plan.gates else 0
        if verdict > 0 and verdict in self._statuses:
            hint = plan.hint(elapsed, key, attempt) if plan.hinted else None
            return Decision(self._statuses[verdict], 0.0, hint)
        if self._phases is not None:
            return Decision(200, self._phases.service_time(elapsed, key, attempt))
        if plan.spikes:
            return Decision(200, plan.extra_latency(elapsed, key, attempt))
        return SERVE


def _code(gate: object) -> int:
    """A compiled gate's error code (an outage's ``verdict``, the others' ``code``; a
    recurring one's, its ``inner`` gate's)."""
    inner = getattr(gate, "inner", None)
    if inner is not None:
        return _code(inner)
    return int(getattr(gate, "verdict", getattr(gate, "code", 0)))


# --- the HTTP/1.1 both servers speak --------------------------------------------------------


@dataclass(frozen=True)
class Head:
    """A request's line and lower-cased headers, as read by :func:`parse_head`."""

    method: str
    version: str
    headers: dict[str, str]

    @property
    def keep_alive(self) -> bool:
        """Whether the client means to send another request on this connection."""
        close = self.headers.get("connection", "").lower() == "close"
        return self.version == "HTTP/1.1" and not close

    def ids(self, default_key: int = 0) -> tuple[int, int]:
        """(call key, attempt) the request names in its headers; ``default_key`` and attempt 1
        when it names none."""
        key = number(self.headers.get(CALL_HEADER), default_key)
        return key, max(1, number(self.headers.get(ATTEMPT_HEADER), 1))


def parse_head(head: bytes) -> Head | None:
    """A request's head (its line and headers, with the blank line), or None if it is not one.

    A head with any byte outside ASCII is not one (answered 400): the servers read numbers
    from headers, and ``"²".isdigit()`` is true where ``int("²")`` raises.
    """
    if not head.isascii():
        return None
    lines = head.decode("ascii").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return None
    headers = parse_headers(lines[1:])
    return None if headers is None else Head(parts[0], parts[2], headers)


def parse_headers(lines: Sequence[str]) -> dict[str, str] | None:
    """Header lines as a lower-cased dict (blank lines skipped); None if one is not a header."""
    headers: dict[str, str] = {}
    for line in lines:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon:
            return None
        headers[name.strip().lower()] = value.strip()
    return headers


async def read_head(reader: asyncio.StreamReader) -> bytes | None:
    """The next head on ``reader``; None at a clean end of the stream (nothing sent).

    A BadRequestError for a head cut short or longer than :data:`MAX_HEAD`.
    """
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as partial:
        if partial.partial:
            raise BadRequestError("cut short") from None
        return None
    except asyncio.LimitOverrunError:
        raise BadRequestError("too long") from None
    if len(head) > MAX_HEAD:
        raise BadRequestError("too long")
    return head


async def read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    """A message's body as it was sent (chunked framing kept, to pass on unchanged).

    ``Content-Length`` or ``Transfer-Encoding: chunked``; neither: no body (a request's rule;
    an answer without either runs to the end of the connection, which its reader handles).
    """
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return await _read_chunked(reader)
    length = headers.get("content-length", "0")
    if not digits(length):
        raise BadRequestError("bad Content-Length")
    return await reader.readexactly(int(length)) if int(length) else b""


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        line = await reader.readuntil(b"\r\n")
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise BadRequestError("bad chunk size") from None
        parts.append(line)
        if size == 0:
            break
        parts.append(await reader.readexactly(size + 2))  # the chunk and its CRLF
    while True:  # trailers, to the blank line
        line = await reader.readuntil(b"\r\n")
        parts.append(line)
        if line == b"\r\n":
            return b"".join(parts)


def digits(value: str) -> bool:
    """Whether ``value`` is a whole number in ASCII digits (``str.isdigit`` also takes ``²``)."""
    return value.isascii() and value.isdigit()


def number(value: str | None, default: int) -> int:
    """``value`` as a whole number; ``default`` when absent, not one, or over 20 digits."""
    if value is None or not digits(value) or len(value) > 20:
        return default
    return int(value)


def response(status: int, headers: dict[str, str], keep: bool) -> bytes:
    """A complete short text answer with ``status`` and ``headers``, ``keep`` alive or not."""
    body = f"{status} {REASONS[status]}\n".encode()
    lines = [f"HTTP/1.1 {status} {REASONS[status]}", "Content-Type: text/plain"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += [f"Content-Length: {len(body)}", f"Connection: {'keep-alive' if keep else 'close'}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def fault_answer(decision: Decision, keep: bool) -> bytes:
    """The answer a faulted request gets: its status, with ``Retry-After`` when it has one."""
    hint = decision.retry_after
    extra = {} if hint is None else {"Retry-After": f"{hint:g}"}
    return response(decision.status, extra, keep)


__all__ = [
    "HTTP_STATUS",
    "BadRequestError",
    "Decision",
    "Head",
    "HttpFaults",
    "fault_answer",
    "is_http_fault",
    "parse_head",
    "read_body",
    "read_head",
    "response",
    "split_faults",
]
