"""OpenTelemetry traces as OTLP JSON (``ExportTraceServiceRequest``), one object or JSON lines.

Each service (``resource.attributes`` ``service.name``) is a tier. A span is a request that
service saw when it enters the service: its parent is absent from the data or belongs to
another service. Its caller is the entry span of the service its parent belongs to, found by
walking up the parents; :mod:`retrysim.fit.graph` makes the tiers from that (own time, own
errors, attempts per call, the chain). A span failed when its ``status.code`` is 2
(``STATUS_CODE_ERROR``), or when it carries a status the simulator knows as an error (HTTP 429,
408, 5xx); its error is named by ``error.type``, else an ``exception`` event's
``exception.type``, else its HTTP status. ``traceId``/``spanId`` are compared as written (hex
in the OTLP spec, base64 from protobuf's JSON mapping: either works within one file).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from retrysim.fit import values
from retrysim.fit.graph import CallGraph, Request, as_tiers
from retrysim.fit.observations import FitInputError, Observations, Source, json_lines

ERROR = 2
NS = 1_000_000_000
#: Attributes that number a request's attempts: 1 for the first try, or 0 (resends, retries).
ATTEMPT_KEYS = {
    "retry.attempt": 0,
    "attempt": 0,
    "http.request.resend_count": 1,
    "retry.count": 1,
    "messaging.retry.count": 1,
}
STATUS_KEYS = ("http.response.status_code", "http.status_code", "rpc.grpc.status_code")
UNKNOWN_SERVICE = "unknown_service"


@dataclass(frozen=True)
class Span:
    service: str
    trace: str
    span: str
    parent: str
    start: int  # nanoseconds, as written: a float would round an epoch to 0.24 us
    end: int
    error: str
    attempt: int | None


def read_otlp(path: Path, text: str) -> tuple[Observations, Source, CallGraph]:
    """The spans of one file as per-tier requests and their call graph."""
    spans = [span for number, item in _documents(path, text) for span in _spans(path, number, item)]
    if not spans:
        raise FitInputError(f"{path}: no spans (resourceSpans[].scopeSpans[].spans[])")
    origin = min(s.start for s in spans) // NS  # whole seconds: times after it stay exact
    observations, graph = as_tiers(_requests(spans, origin * NS))
    observations = replace(observations, origin=float(origin))
    services = sorted({s.service for s in spans})
    notes = list(graph.left_out)
    if len(services) == 1:
        notes.append(f"one service ({services[0]}): no tiers")
    columns = {
        "timestamp": "startTimeUnixNano",
        "duration": "endTimeUnixNano - startTimeUnixNano, minus calls to other services",
        "outcome": "status.code, error.type, exception events",
        "tier": "resource service.name",
    }
    return observations, Source(str(path), "otlp", len(spans), columns, tuple(notes)), graph


def _documents(path: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    """One JSON object, or JSON lines of them, each with ``resourceSpans``."""
    stripped = text.strip()
    try:
        whole = json.loads(stripped)
    except json.JSONDecodeError:
        whole = None
    if isinstance(whole, dict):
        return [(1, whole)]
    return json_lines(path, text, "an ExportTraceServiceRequest")


def _spans(path: Path, number: int, item: dict[str, Any]) -> list[Span]:
    if "resourceSpans" not in item:
        raise FitInputError(f"{path}: line {number}: no resourceSpans: not an OTLP trace export")
    out = []
    for resource in _list(item, "resourceSpans"):
        attributes = _attributes(resource.get("resource", {}).get("attributes", []))
        service = str(attributes.get("service.name") or UNKNOWN_SERVICE)
        for scope in _list(resource, "scopeSpans") + _list(resource, "instrumentationLibrarySpans"):
            for raw in _list(scope, "spans"):
                out.append(_span(path, number, service, raw))
    return out


def _list(item: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = item.get(key, [])
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _span(path: Path, number: int, service: str, raw: dict[str, Any]) -> Span:
    where = f"{path}: line {number}, span {raw.get('spanId', '?')}"
    try:
        start = int(raw["startTimeUnixNano"])
        end = int(raw["endTimeUnixNano"])
    except (KeyError, ValueError, TypeError):
        raise FitInputError(
            f"{where}: startTimeUnixNano and endTimeUnixNano must be whole nanoseconds"
        ) from None
    if end < start:
        raise FitInputError(f"{where}: endTimeUnixNano is before startTimeUnixNano")
    attributes = _attributes(raw.get("attributes", []))
    return Span(
        service=service,
        trace=str(raw.get("traceId", "")),
        span=str(raw.get("spanId", "")),
        parent=str(raw.get("parentSpanId", "") or ""),
        start=start,
        end=end,
        error=_error(raw, attributes),
        attempt=_attempt(attributes),
    )


def _attributes(items: Any) -> dict[str, Any]:
    """OTLP's ``[{key, value: {stringValue|intValue|...}}]`` as a plain dict."""
    out: dict[str, Any] = {}
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or "key" not in item:
            continue
        value = item.get("value", {})
        for kind in ("stringValue", "intValue", "doubleValue", "boolValue"):
            if isinstance(value, dict) and kind in value:
                found = value[kind]
                out[str(item["key"])] = int(found) if kind == "intValue" else found
    return out


def _error(raw: dict[str, Any], attributes: dict[str, Any]) -> str:
    code = raw.get("status", {}).get("code", 0) if isinstance(raw.get("status"), dict) else 0
    failed = code in (ERROR, "STATUS_CODE_ERROR")
    status = next((attributes[k] for k in STATUS_KEYS[:2] if k in attributes), None)
    by_status = values.status_error(int(status)) if status is not None else ""
    if by_status.startswith("HTTP 4"):
        by_status = ""  # a 4xx other than 408 and 429: the caller's mistake, not a failure
    if not failed and not by_status:
        return ""
    named = attributes.get("error.type")
    if named:
        return str(named)
    for event in _list(raw, "events"):
        if event.get("name") == "exception":
            kind = _attributes(event.get("attributes", [])).get("exception.type")
            if kind:
                return str(kind)
    return by_status or values.UNNAMED


def _attempt(attributes: dict[str, Any]) -> int | None:
    for key, zero_based in ATTEMPT_KEYS.items():
        if key in attributes:
            try:
                return int(attributes[key]) + zero_based
            except (TypeError, ValueError):
                return None
    return None


def _requests(spans: list[Span], origin: int) -> list[Request]:
    """Entry spans as requests, each tied to the entry span of its caller's service; times in
    seconds after ``origin`` nanoseconds."""
    by_id = {(s.trace, s.span): s for s in spans}
    entries = [
        s
        for s in spans
        if (s.trace, s.parent) not in by_id or by_id[(s.trace, s.parent)].service != s.service
    ]
    entries.sort(key=lambda s: (s.start, s.service, s.span))
    index = {(s.trace, s.span): i for i, s in enumerate(entries)}
    requests = []
    for span in entries:
        parent = _entry_above(span, by_id, index)
        caller_span = by_id.get((span.trace, span.parent))
        attempt = span.attempt or (caller_span.attempt if caller_span is not None else None)
        start, end = (span.start - origin) / NS, (span.end - origin) / NS
        requests.append(Request(span.service, start, end, span.error, parent, attempt or None))
    return requests


def _entry_above(
    span: Span, by_id: dict[tuple[str, str], Span], index: dict[tuple[str, str], int]
) -> int | None:
    """The entry span (its index) whose work, perhaps through spans of its own service,
    sent ``span``; None for a root."""
    key = (span.trace, span.parent)
    seen = 0
    while key in by_id and seen < len(by_id):
        if key in index:
            return index[key]
        key = (key[0], by_id[key].parent)
        seen += 1
    return None
