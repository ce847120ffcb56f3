"""OpenTelemetry metrics: read back from the real SDK (``InMemoryMetricReader``) after decorated
calls that fail then succeed and a breaker that opens; names, units, attributes and values.

Expected values come from the calls' scripts, never from the counters; the clock is a
hand-made one that only the injected sleep moves, so nothing sleeps.
"""

from __future__ import annotations

import contextlib
import itertools
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader

import retrysim.retry
from retrysim.retry import (
    instrument_opentelemetry,
    render_prometheus,
    retry_api_call,
    retry_worker_operation,
)
from retrysim.retry.counters import COUNTERS, DURATION_BUCKETS, CounterRegistry
from retrysim.retry.export import families
from retrysim.retry.guards import GuardStates
from retrysim.retry.otel import INSTRUMENTS, OpenTelemetryInstrumentation
from tests.test_export import FakeTime, failing_behind_breaker_and_budget, run_the_known_script

Attrs = tuple[tuple[str, Any], ...]

#: The instruments as the SDK must show them: name -> (unit, kind of data).
EXPECTED = {
    "retrysim.retry.calls": ("{call}", "Sum"),
    "retrysim.retry.attempts": ("{attempt}", "Sum"),
    "retrysim.retry.attempt.failures": ("{attempt}", "Sum"),
    "retrysim.retry.retries": ("{retry}", "Sum"),
    "retrysim.retry.call.outcomes": ("{call}", "Sum"),
    "retrysim.retry.wait.time": ("s", "Sum"),
    "retrysim.retry.duplicate_executions": ("{execution}", "Sum"),
    "retrysim.retry.hedges": ("{send}", "Sum"),
    "retrysim.retry.success_ratio": ("1", "Gauge"),
    "retrysim.retry.call.duration": ("s", "Histogram"),
    "retrysim.breaker.state": ("1", "Gauge"),
    "retrysim.breaker.transitions": ("{transition}", "Sum"),
    "retrysim.budget.refusals": ("{retry}", "Sum"),
    "retrysim.limiter.delays": ("{send}", "Sum"),
    "retrysim.limiter.delay.time": ("s", "Sum"),
}


class Sdk:
    """A real SDK MeterProvider with an in-memory reader, and the retry metrics on it."""

    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.provider = MeterProvider(metric_readers=[self.reader])
        self.handle = instrument_opentelemetry(self.provider)

    def metrics(self) -> dict[str, Any]:
        """Every metric of the retrysim.retry scope in one collection, by name."""
        data = self.reader.get_metrics_data()
        found: dict[str, Any] = {}
        for resource in data.resource_metrics if data is not None else ():
            for scope in resource.scope_metrics:
                assert scope.scope.name == "retrysim.retry"
                assert scope.scope.version == retrysim.__version__
                found.update({metric.name: metric for metric in scope.metrics})
        return found

    def points(self, name: str) -> dict[Attrs, Any]:
        """The data points of one instrument keyed by their sorted attributes (values for
        counters and gauges, the point itself for the histogram)."""
        metric = self.metrics().get(name)
        if metric is None:
            return {}
        out: dict[Attrs, Any] = {}
        for point in metric.data.data_points:
            key = tuple(sorted(point.attributes.items()))
            out[key] = point if isinstance(point, HistogramDataPoint) else point.value
        return out


@pytest.fixture
def sdk() -> Iterator[Sdk]:
    made = Sdk()
    yield made
    made.handle.remove()
    made.provider.shutdown()


def op(function: Any, kind: str, **extra: str) -> Attrs:
    return tuple(
        sorted(
            {
                "retrysim.operation.name": f"{function.__module__}.{function.__qualname__}",
                "retrysim.operation.type": kind,
                **extra,
            }.items()
        )
    )


# --- the instruments ---------------------------------------------------------------------------


def test_every_prometheus_family_is_carried_by_exactly_one_instrument() -> None:
    carried = [name for instrument in INSTRUMENTS for name in instrument.carries]
    exported = [family.name for family in families(CounterRegistry(), GuardStates())]
    assert sorted(carried) == sorted(exported)
    assert {i.name: i.unit for i in INSTRUMENTS} == {n: u for n, (u, _) in EXPECTED.items()}


def test_names_follow_the_semantic_convention_style() -> None:
    for instrument in INSTRUMENTS:
        name = instrument.name
        assert name == name.lower() and name.startswith("retrysim."), name
        assert not name.endswith(("_total", "_seconds", ".seconds")), name  # no unit in a name
    names = {i.name for i in INSTRUMENTS}
    # A name is never also a namespace of another (``a.b`` and ``a.b.c``).
    assert not any(other.startswith(name + ".") for name in names for other in names)


def test_the_sdk_shows_every_instrument_with_its_unit_and_kind(sdk: Sdk) -> None:
    @retry_api_call(sleep=lambda s: None)
    def ping() -> str:
        return "pong"

    ping()
    metrics = sdk.metrics()
    # Families with nothing to say yet (no breaker, no budget) have no points, hence no metric.
    present = {name for name in EXPECTED if name in metrics}
    assert present >= {
        "retrysim.retry.calls",
        "retrysim.retry.attempts",
        "retrysim.retry.call.outcomes",
        "retrysim.retry.call.duration",
    }
    for name in present:
        unit, kind = EXPECTED[name]
        assert metrics[name].unit == unit
        assert type(metrics[name].data).__name__ == kind
        if kind == "Sum":
            assert metrics[name].data.is_monotonic


# --- values, from a known script -----------------------------------------------------------------


def test_calls_that_fail_then_succeed(sdk: Sdk) -> None:
    run_task = run_the_known_script(FakeTime())
    task = op(run_task, "worker")
    assert sdk.points("retrysim.retry.calls") == {task: 4}
    assert sdk.points("retrysim.retry.attempts") == {task: 1 + 2 + 3 + 1}
    assert sdk.points("retrysim.retry.retries") == {task: 0 + 1 + 2 + 0}
    failures = {
        op(run_task, "worker", **{"error.type": error}): count
        for error, count in {"ConnectionError": 3, "TimeoutError": 1, "ValueError": 1}.items()
    }
    assert sdk.points("retrysim.retry.attempt.failures") == failures
    assert sdk.points("retrysim.retry.call.outcomes") == {
        op(run_task, "worker", **{"retrysim.call.outcome": "success"}): 2,
        op(run_task, "worker", **{"retrysim.call.outcome": "exhausted"}): 1,
        op(run_task, "worker", **{"retrysim.call.outcome": "non_retryable"}): 1,
    }
    assert sdk.points("retrysim.retry.wait.time") == {task: 0.5 + (0.5 + 1.0)}
    assert sdk.points("retrysim.retry.success_ratio") == {task: 0.5}  # one_blip of the two
    (duration,) = sdk.points("retrysim.retry.call.duration").values()
    durations = [0.0, 0.5, 1.5, 0.0]  # by the clock the waits move
    assert duration.count == 4 and duration.sum == sum(durations)
    assert list(duration.explicit_bounds) == list(DURATION_BUCKETS)
    edges = (float("-inf"), *DURATION_BUCKETS, float("inf"))
    expected = [sum(lo < d <= hi for d in durations) for lo, hi in itertools.pairwise(edges)]
    assert list(duration.bucket_counts) == expected
    assert duration.min == 0.0 and duration.max == 1.5


def test_a_breaker_that_opens_and_a_budget_that_refuses(sdk: Sdk) -> None:
    ask = failing_behind_breaker_and_budget(FakeTime())

    def state_points() -> dict[str, float]:
        return {
            dict(attrs)["retrysim.breaker.state"]: value
            for attrs, value in sdk.points("retrysim.breaker.state").items()
            if dict(attrs)["retrysim.breaker.name"] == "llm"
        }

    with pytest.raises(ConnectionError):
        ask()  # two failures, then the budget refuses the second retry
    assert state_points() == {"closed": 1.0, "open": 0.0, "half_open": 0.0}
    outcomes = []
    for _ in range(3):
        try:
            ask()
        except Exception as error:
            outcomes.append(type(error).__name__)
    # The third failure in a row opens the breaker; the next two calls are refused by it.
    assert outcomes == ["ConnectionError", "CircuitOpenError", "CircuitOpenError"]
    assert state_points() == {"closed": 0.0, "open": 1.0, "half_open": 0.0}
    transitions = sdk.points("retrysim.breaker.transitions")
    assert transitions == {
        (("retrysim.breaker.name", "llm"), ("retrysim.breaker.state", "open")): 1
    }
    assert sdk.points("retrysim.budget.refusals") == {(("retrysim.budget.name", "api"),): 2}
    attempts = sdk.points("retrysim.retry.attempts")
    assert attempts == {op(ask, "api"): 3}  # the refused calls never sent anything
    outcomes_points = sdk.points("retrysim.retry.call.outcomes")
    assert outcomes_points[op(ask, "api", **{"retrysim.call.outcome": "non_retryable"})] == 2


# --- the same numbers as Prometheus, the histogram included ------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    scripts=st.lists(
        st.lists(st.sampled_from([ConnectionError, TimeoutError, ValueError]), max_size=4),
        min_size=1,
        max_size=8,
    ),
    waits=st.sampled_from([0.0, 0.01, 0.3, 4.0]),
)
def test_the_histogram_agrees_with_the_prometheus_one(
    scripts: list[list[type[Exception]]], waits: float
) -> None:
    """Two paths to one histogram: the counters' buckets (Prometheus) and the SDK's aggregation
    of the durations the listener recorded (OpenTelemetry)."""
    retrysim.retry.reset_retry_metrics()
    made = Sdk()
    try:
        time = FakeTime()
        queue = [list(script) for script in scripts]

        @retry_worker_operation(
            max_attempts=3, min_wait=waits, profile="exponential", sleep=time.sleep, clock=time
        )
        def job() -> None:
            if queue[0]:
                raise queue[0].pop(0)("x")

        for _ in scripts:
            with contextlib.suppress(Exception):
                job()
            queue.pop(0)
        (point,) = made.points("retrysim.retry.call.duration").values()
        (ops,) = COUNTERS.snapshot().values()
        assert point.count == ops.duration_count == len(scripts)
        assert point.sum == pytest.approx(ops.duration_sum)
        assert list(point.bucket_counts) == ops.duration_counts
        text = render_prometheus()
        assert f'retry_duration_seconds_count{{operation="{ops.operation}"' in text
    finally:
        made.handle.remove()
        made.provider.shutdown()


# --- lifecycle -----------------------------------------------------------------------------------


def test_remove_silences_it_and_the_provider_can_be_instrumented_again(sdk: Sdk) -> None:
    @retry_api_call(sleep=lambda s: None)
    def ping() -> str:
        return "pong"

    ping()
    assert sdk.points("retrysim.retry.calls") == {op(ping, "api"): 1}
    with pytest.raises(ValueError, match="already reports the retry metrics"):
        instrument_opentelemetry(sdk.provider)
    sdk.handle.remove()
    sdk.handle.remove()  # idempotent
    assert not sdk.handle.active
    ping()
    assert sdk.points("retrysim.retry.calls") == {}
    assert sdk.handle.record_duration not in COUNTERS.duration_listeners
    again = instrument_opentelemetry(sdk.provider)
    try:
        ping()
        assert sdk.points("retrysim.retry.calls") == {op(ping, "api"): 3}  # the counters' total
        (duration,) = sdk.points("retrysim.retry.call.duration").values()
        assert duration.count == 2  # the call while removed was not recorded
    finally:
        again.remove()


def test_the_global_provider_is_the_default(sdk: Sdk, monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry import metrics

    sdk.handle.remove()
    monkeypatch.setattr(metrics, "get_meter_provider", lambda: sdk.provider)
    handle = instrument_opentelemetry()
    try:
        assert isinstance(handle, OpenTelemetryInstrumentation)
        assert handle.provider is sdk.provider and handle.active
    finally:
        handle.remove()


def test_a_failing_histogram_never_fails_the_call(
    sdk: Sdk, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    histogram = sdk.handle._instruments.histogram

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("exporter down")

    monkeypatch.setattr(histogram, "record", broken)

    @retry_api_call(sleep=lambda s: None)
    def ping() -> str:
        return "pong"

    assert ping() == "pong"
    assert "recording a call's duration in OpenTelemetry failed" in caplog.text


# --- opentelemetry is optional -------------------------------------------------------------------


def test_importing_the_module_does_not_import_opentelemetry() -> None:
    code = (
        "import sys, retrysim.retry.otel, retrysim.retry; "
        "retrysim.retry.instrument_opentelemetry; "
        "print([m for m in sys.modules if m.split('.')[0] == 'opentelemetry'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_without_opentelemetry_the_error_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['opentelemetry'] = None\n"
        "from retrysim.retry import instrument_opentelemetry\n"
        "try:\n    instrument_opentelemetry()\n"
        "except ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'retrysim[otel]'" in out.stdout
