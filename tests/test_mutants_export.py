"""Tests written for mutants of ``retrysim/retry/export.py`` that its own tests let survive
(a full mutation run, ``python scripts/mutate.py --module export``): each pins a behaviour a
plausible wrong edit would change."""

from __future__ import annotations

import dataclasses
import math
from functools import partial
from itertools import permutations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from retrysim.retry.breaker import BreakerOptions, CircuitBreaker
from retrysim.retry.counters import CounterRegistry
from retrysim.retry.export import families, render_prometheus
from retrysim.retry.guards import GuardSpec, GuardStates

#: Opens on its first failure, probes 10 s later.
QUICK = BreakerOptions(enabled=True, failure_threshold=1, recovery_timeout=10.0)


def _breaker_in(states: GuardStates, client: str, state: str) -> CircuitBreaker:
    """The breaker ``llm`` of ``client`` (client-scoped: one per client, all named ``llm``),
    driven into ``state`` through its public attempt interface."""
    spec = GuardSpec("breaker:llm", "client", partial(CircuitBreaker, "llm", QUICK))
    breaker = states.instance(spec, client)
    assert isinstance(breaker, CircuitBreaker)
    if state != "closed":
        assert breaker.before_attempt(0.0, 1) is None
        breaker.after_outcome(0.0, ConnectionError("down"))  # opens
    if state == "half_open":
        assert breaker.before_attempt(10.0, 1) is None  # the recovery's probe
    assert breaker.state == state
    return breaker


def _breaker_state(states: GuardStates) -> float:
    (family,) = [
        f
        for f in text_string_to_metric_families(render_prometheus(CounterRegistry(), states))
        if f.name == "retry_breaker_state"
    ]
    (sample,) = family.samples
    assert sample.labels == {"breaker": "llm"}
    return sample.value


# --- export: breaker states ---------------------------------------------------------------------


@pytest.mark.parametrize(("state", "code"), [("closed", 0), ("open", 1), ("half_open", 2)])
def test_each_breaker_state_is_exported_with_its_documented_code(state: str, code: int) -> None:
    """``retry_breaker_state`` is 0 closed, 1 open, 2 half-open, as its help text says."""
    states = GuardStates()
    _breaker_in(states, "a", state)
    assert _breaker_state(states) == code


@pytest.mark.parametrize(
    ("first", "second"), list(permutations(["closed", "half_open", "open"], 2))
)
def test_two_breakers_of_one_name_export_the_less_healthy(first: str, second: str) -> None:
    """Two clients' breakers for one dependency are one series: the less healthy state shows
    (open over half-open over closed), whichever breaker was made first."""
    states = GuardStates()
    _breaker_in(states, "a", first)
    _breaker_in(states, "b", second)
    worst = max(first, second, key=["closed", "half_open", "open"].index)
    assert _breaker_state(states) == {"closed": 0, "open": 1, "half_open": 2}[worst]


# --- export: the text format ----------------------------------------------------------------


def test_every_family_has_its_help_text_in_the_exposition() -> None:
    """Each family's ``# HELP`` line carries its help text, which Prometheus shows as the
    metric's documentation."""
    registry = CounterRegistry()
    registry.call_started("app.fetch", "api")
    parsed = {
        f.name: f.documentation
        for f in text_string_to_metric_families(render_prometheus(registry, GuardStates()))
    }
    expected = {f.name: f.help for f in families(registry, GuardStates())}
    assert parsed == expected
    assert all(parsed.values())


def test_a_nan_value_is_written_as_prometheus_nan() -> None:
    """A counter that became NaN (a wait strategy that returned NaN) is written ``NaN``, which
    Prometheus parses, rather than text that breaks the whole scrape."""
    registry = CounterRegistry()
    registry.call_started("app.fetch", "api")
    registry.retry_scheduled("app.fetch", math.nan)
    text = render_prometheus(registry, GuardStates())
    assert 'retry_wait_seconds_total{operation="app.fetch",kind="api"} NaN\n' in text
    waits = [
        sample.value
        for f in text_string_to_metric_families(text)
        for sample in f.samples
        if sample.name == "retry_wait_seconds_total"
    ]
    assert len(waits) == 1 and math.isnan(waits[0])


# --- export: the families as values -------------------------------------------------------------


def test_the_families_are_immutable_hashable_values() -> None:
    """What ``families()`` returns is a value: equal exports are equal and hash alike (a
    caller can cache or deduplicate them), and no field can be rebound."""
    registry = CounterRegistry()
    registry.call_started("app.fetch", "api")
    first, again = families(registry, GuardStates()), families(registry, GuardStates())
    assert first == again
    assert {hash(f) for f in first} == {hash(f) for f in again}
    calls = first[0]
    assert calls.samples
    with pytest.raises(dataclasses.FrozenInstanceError):
        calls.samples = ()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        calls.samples[0].value = 2.0  # type: ignore[misc]


def test_the_opentelemetry_export_reads_these_families() -> None:
    """The OpenTelemetry instruments are fed by the same families (``retrysim.retry.otel``
    imports the export's names): a call counted here is the point OpenTelemetry reports."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint

    from retrysim.retry.otel import instrument_opentelemetry

    registry = CounterRegistry()
    registry.call_started("app.fetch", "api")
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    handle = instrument_opentelemetry(provider, registry=registry, guards=GuardStates())
    try:
        data = reader.get_metrics_data()
        assert data is not None
        calls = [
            (dict(point.attributes or {}), point.value)
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == "retrysim.retry.calls"
            for point in metric.data.data_points
            if isinstance(point, NumberDataPoint)
        ]
        expected = {"retrysim.operation.name": "app.fetch", "retrysim.operation.type": "api"}
        assert calls == [(expected, 1)]
    finally:
        handle.remove()
        provider.shutdown()
