"""Tests written for mutants of ``retrysim/retry/otel.py`` that its own tests let survive
(a full mutation run, ``python scripts/mutate.py --module otel``): each pins a behaviour a
plausible wrong edit would change."""

from __future__ import annotations

import dataclasses
import logging

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from retrysim.retry import instrument_opentelemetry
from retrysim.retry.counters import CounterRegistry
from retrysim.retry.guards import GuardStates
from retrysim.retry.otel import INSTRUMENTS

# --- otel: the instrument table -----------------------------------------------------------------


def test_an_instrument_row_cannot_be_rebound() -> None:
    """The rows of ``INSTRUMENTS`` are frozen: code that reads them (or a second
    instrumentation) cannot find a row renamed by someone else."""
    row = INSTRUMENTS[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.name = "renamed"  # type: ignore[misc]
    assert row.name == "retrysim.retry.calls"


# --- otel: a removed instrumentation --------------------------------------------------------


def test_collecting_after_remove_reports_nothing_and_logs_no_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """After ``remove()`` the observable instruments' callbacks answer with no points, so a
    collection is quiet: no point, and no "Callback failed" error logged by the SDK at every
    collection interval."""
    registry = CounterRegistry()
    registry.call_started("app.fetch", "api")
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    handle = instrument_opentelemetry(provider, registry=registry, guards=GuardStates())
    try:
        handle.remove()
        with caplog.at_level(logging.WARNING):
            data = reader.get_metrics_data()
        points = [
            point
            for resource in (data.resource_metrics if data is not None else ())
            for scope in resource.scope_metrics
            for metric in scope.metrics
            for point in metric.data.data_points
        ]
        assert points == []
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    finally:
        provider.shutdown()
