"""Data with a known truth for the ``retrysim fit`` tests, made by the real producers.

Logs come from retrysim's own simulator saved as ``run --out DIR`` saves them; Prometheus
scrapes from ``prometheus_client`` (a registry observed with known draws, ``generate_latest``
at each scrape); traces from ``opentelemetry-sdk`` (an in-memory exporter, then the OTLP
encoder and protobuf's JSON mapping). Nothing here writes a format by hand.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from retrysim.cli.run_files import write_run_files
from retrysim.model.scenario import Scenario, parse_scenario
from retrysim.runs.runner import run

NS = 1_000_000_000
#: The epoch second traces and scrapes start at (an arbitrary, fixed day).
EPOCH = 1_700_000_000


def saved_run(scenario: Scenario, folder: Path, seed: int | None = None) -> Path:
    """``scenario`` simulated and saved as ``retrysim run --out folder`` saves it."""
    done = run(scenario, seed=seed, baseline=False)
    write_run_files(folder, done.document, done.result)
    return folder


def scenario(**data: Any) -> Scenario:
    return parse_scenario(data, "<test>")


# --- Prometheus ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Scraped:
    files: list[Path]
    interval: float
    observed: int


def prometheus_scrapes(
    folder: Path,
    *,
    scrapes: int = 60,
    interval: float = 1.0,
    rate: float = 100.0,
    median: float = 0.01,
    sigma: float = 0.7,
    failing: tuple[int, int] | None = (20, 25),
    failing_share: float = 0.5,
    steady_share: float = 0.01,
    seed: int = 3,
) -> Scraped:
    """``scrapes`` files of ``generate_latest`` text, one scrape each, ``interval`` seconds
    apart: a request-duration histogram fed lognormal(``median``, ``sigma``) draws and a request
    counter by ``code``, 503 for ``failing_share`` of the requests in the scrape intervals
    ``failing`` covers and ``steady_share`` elsewhere."""
    from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

    folder.mkdir(parents=True, exist_ok=True)
    registry = CollectorRegistry()
    buckets = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
    histogram = Histogram(
        "http_request_duration_seconds", "request time", registry=registry, buckets=buckets
    )
    counter = Counter("http_requests", "requests by status", ["code"], registry=registry)
    rng = np.random.default_rng(seed)
    files, observed = [], 0
    for step in range(scrapes):
        if step:  # the first scrape is the start: nothing happened before it
            n = int(rng.poisson(rate * interval))
            for draw in rng.lognormal(np.log(median), sigma, n):
                histogram.observe(float(draw))
            share = failing_share if failing and failing[0] <= step < failing[1] else steady_share
            for failed in rng.random(n) < share:
                counter.labels(code="503" if failed else "200").inc()
            observed += n
        path = folder / f"scrape-{step:03d}.prom"
        path.write_bytes(generate_latest(registry))
        files.append(path)
    return Scraped(files, interval, observed)


def timestamped_scrapes(folder: Path, counts: list[int], interval: float = 15.0) -> Path:
    """One file of several scrapes, each sample carrying its timestamp: a custom collector's
    counter families at each time (``generate_latest`` writes a sample's timestamp)."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily

    text = b""
    total_ok = total_failed = 0.0
    for index, count in enumerate(counts):
        total_ok += count * 0.9
        total_failed += count * 0.1
        family = CounterMetricFamily("api_requests", "requests", labels=["status"])
        when = EPOCH + index * interval
        family.add_metric(["ok"], total_ok, timestamp=when)
        family.add_metric(["error"], total_failed, timestamp=when)

        class _Collector:
            def __init__(self, made: CounterMetricFamily) -> None:
                self.made = made

            def collect(self) -> Iterator[CounterMetricFamily]:
                yield self.made

        registry = CollectorRegistry()
        registry.register(_Collector(family))
        text += generate_latest(registry)
    path = folder / "scrapes.prom"
    path.write_bytes(text)
    return path


# --- OpenTelemetry ------------------------------------------------------------------------


@dataclass(frozen=True)
class Traced:
    text: str
    requests: int
    own: dict[str, float]  # each service's own median work, seconds


def otlp_traces(
    *,
    requests: int = 600,
    rate: float = 20.0,
    window: tuple[float, float] = (12.0, 15.0),
    steady_share: float = 0.02,
    attempts: int = 3,
    seed: int = 5,
) -> Traced:
    """Traces of ``requests`` user calls through gateway -> api -> db, as OTLP JSON.

    Each service is a ``TracerProvider`` with its own ``service.name``, all exporting to one
    in-memory exporter. The api retries its db query up to ``attempts`` times (a client span
    per attempt, ``http.request.resend_count`` on retries); the db fails every query in
    ``window`` seconds and ``steady_share`` of the others (``error.type`` ConnectionError).
    """
    from google.protobuf.json_format import (  # type: ignore[import-untyped,unused-ignore]
        MessageToJson,
    )
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind, Status, StatusCode

    exporter = InMemorySpanExporter()

    def tracer(name: str) -> trace.Tracer:
        provider = TracerProvider(resource=Resource.create({"service.name": name}))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        return provider.get_tracer("retrysim-test")

    gateway, api, db = tracer("gateway"), tracer("api"), tracer("db")
    rng = np.random.default_rng(seed)
    now_s = 0.0
    for _ in range(requests):
        now_s += float(rng.exponential(1 / rate))
        start = EPOCH * NS + int(now_s * NS)
        root = gateway.start_span("GET /", kind=SpanKind.SERVER, start_time=start)
        t = start + NS // 1000  # the gateway's own millisecond
        work = api.start_span(
            "POST /work", trace.set_span_in_context(root), SpanKind.SERVER, start_time=t
        )
        t += int(rng.lognormal(np.log(0.002), 0.3) * NS)
        ok = False
        for attempt in range(attempts):
            query = api.start_span(
                "db query", trace.set_span_in_context(work), SpanKind.CLIENT, start_time=t
            )
            if attempt:
                query.set_attribute("http.request.resend_count", attempt)
            served = db.start_span(
                "SELECT", trace.set_span_in_context(query), SpanKind.SERVER, start_time=t
            )
            failed = window[0] <= now_s < window[1] or bool(rng.random() < steady_share)
            took = 200_000 if failed else int(rng.lognormal(np.log(0.005), 0.5) * NS)
            if failed:
                served.set_status(Status(StatusCode.ERROR))
                served.set_attribute("error.type", "ConnectionError")
                served.record_exception(ConnectionError("refused"), timestamp=t + took)
            served.end(end_time=t + took)
            query.end(end_time=t + took)
            t += took
            if not failed:
                ok = True
                break
            if attempt + 1 < attempts:
                t += NS // 100  # the api's wait before its retry
        if not ok:
            work.set_status(Status(StatusCode.ERROR))
            root.set_status(Status(StatusCode.ERROR))
        work.end(end_time=t)
        root.end(end_time=t)
    text = MessageToJson(encode_spans(exporter.get_finished_spans()))
    return Traced(text, requests, {"gateway": 0.001, "api": 0.002, "db": 0.005})


def as_lines(text: str) -> str:
    """An OTLP JSON export split into JSON lines of one trace each (the same spans)."""
    import json

    whole = json.loads(text)
    lines = []
    for resource in whole["resourceSpans"]:
        for scope in resource["scopeSpans"]:
            for span in scope["spans"]:
                single = {
                    "resource": resource["resource"],
                    "scopeSpans": [{**scope, "spans": [span]}],
                }
                lines.append(json.dumps({"resourceSpans": [single]}))
    return "\n".join(lines) + "\n"
