"""The retry counters as OpenTelemetry metrics: the Prometheus export's instruments, named the
OpenTelemetry way.

:func:`instrument_opentelemetry` creates, on a meter of the given ``MeterProvider`` (the global
one by default), one instrument per row of :data:`INSTRUMENTS`. Each row carries one or more of
the Prometheus export's families (:func:`retrysim.retry.export.families`), so both read the
same counters (:mod:`retrysim.retry.counters`) and the same live breakers, and nothing is
counted twice: counters and gauges are *observable* instruments whose callbacks read a snapshot
at each collection. The one exception is the call-duration histogram: OpenTelemetry has no
observable histogram, so a listener on the counters (``duration_listeners``) records each
call's duration as the counters bucket it. Calls made before instrumenting are in the counters
but not in the histogram.

Names follow OpenTelemetry's semantic-convention style: dotted lowercase names in a
``retrysim.`` namespace, no unit or ``_total`` in the name, units in UCUM (``s``, ``1``,
``{attempt}``), and the Prometheus labels as namespaced attributes (:data:`ATTRIBUTES`): the
error class under the semantic conventions' own ``error.type``. Successes, exhausted and
non-retryable calls are one instrument, ``retrysim.retry.call.outcomes``, by
``retrysim.call.outcome``; a breaker's state is one point per state, 1 for the current one, as
the conventions model states (``hw.status``), rather than a code.

``opentelemetry-api`` is imported only inside :func:`instrument_opentelemetry` (``pip install
'retrysim[otel]'``); a service brings its own SDK and exporter.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from retrysim.retry.counters import COUNTERS, DURATION_BUCKETS, CounterRegistry
from retrysim.retry.export import BREAKER_STATE_CODES, Family, Labels, families
from retrysim.retry.guards import PROCESS_GUARDS, GuardStates

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, Histogram, Meter, Observation

logger = logging.getLogger("retrysim.retry")

#: The instrumentation scope: the meter's name.
SCOPE = "retrysim.retry"

#: Each Prometheus label as an OpenTelemetry attribute.
ATTRIBUTES: dict[str, str] = {
    "operation": "retrysim.operation.name",  # the decorated function's module.qualname
    "kind": "retrysim.operation.type",  # worker, storage, scheduler, api
    "error": "error.type",  # the semantic conventions' attribute for the error's class
    "breaker": "retrysim.breaker.name",
    "state": "retrysim.breaker.state",
    "budget": "retrysim.budget.name",
    "limiter": "retrysim.limiter.name",
}
#: The attribute that says how a call ended, on ``retrysim.retry.call.outcomes``.
OUTCOME = "retrysim.call.outcome"

Kind = Literal["counter", "gauge", "histogram"]


@dataclass(frozen=True)
class Instrument:
    """One OpenTelemetry instrument and the Prometheus families it carries.

    ``carries`` maps each family's name to the attributes its points get on top of their own
    labels (the outcome, for the three families ``call.outcomes`` joins).
    """

    name: str
    kind: Kind
    unit: str
    description: str
    carries: dict[str, dict[str, str]] = field(default_factory=dict)


def _one(family: str) -> dict[str, dict[str, str]]:
    return {family: {}}


INSTRUMENTS: tuple[Instrument, ...] = (
    Instrument(
        "retrysim.retry.calls", "counter", "{call}", "Calls of a retried function.",
        _one("retry_calls"),
    ),
    Instrument(
        "retrysim.retry.attempts", "counter", "{attempt}",
        "Attempts sent to the dependency (attempts a guard refused are not counted).",
        _one("retry_attempts"),
    ),
    Instrument(
        "retrysim.retry.attempt.failures", "counter", "{attempt}",
        "Failed attempts, by error.type (the exception's class name).",
        _one("retry_attempt_failures"),
    ),
    Instrument(
        "retrysim.retry.retries", "counter", "{retry}",
        "Retries scheduled after failed attempts.", _one("retry_retries"),
    ),
    Instrument(
        "retrysim.retry.call.outcomes", "counter", "{call}",
        "Calls that ended, by retrysim.call.outcome: success; exhausted (gave up on a "
        "retryable error: attempts, time or retry budget ran out); non_retryable (failed on an "
        "error that is not retried, an open breaker's included).",
        {
            "retry_successes": {OUTCOME: "success"},
            "retry_exhausted": {OUTCOME: "exhausted"},
            "retry_non_retryable": {OUTCOME: "non_retryable"},
        },
    ),
    Instrument(
        "retrysim.retry.wait.time", "counter", "s",
        "Seconds scheduled to wait between attempts.", _one("retry_wait_seconds"),
    ),
    Instrument(
        "retrysim.retry.duplicate_executions", "counter", "{execution}",
        "Executions of an idempotency key that had already been executed.",
        _one("retry_duplicate_executions"),
    ),
    Instrument(
        "retrysim.retry.hedges", "counter", "{send}",
        "Hedges: sends started beside an attempt's first one (retrysim.retry.hedge).",
        _one("retry_hedges"),
    ),
    Instrument(
        "retrysim.retry.success_ratio", "gauge", "1",
        "Share of calls that needed a retry and then succeeded (absent before any).",
        _one("retry_success_rate"),
    ),
    Instrument(
        "retrysim.retry.call.duration", "histogram", "s",
        "Seconds a call took, first attempt to outcome, waits between attempts included.",
        _one("retry_duration_seconds"),
    ),
    Instrument(
        "retrysim.breaker.state", "gauge", "1",
        "Circuit breaker state: 1 for the retrysim.breaker.state it is in (closed, open, "
        "half_open), 0 for the others.",
        _one("retry_breaker_state"),
    ),
    Instrument(
        "retrysim.breaker.transitions", "counter", "{transition}",
        "Circuit breaker state changes, by the state entered.",
        _one("retry_breaker_transitions"),
    ),
    Instrument(
        "retrysim.budget.refusals", "counter", "{retry}",
        "Retries a retry budget refused (the call ended with its last error).",
        _one("retry_budget_refusals"),
    ),
    Instrument(
        "retrysim.limiter.delays", "counter", "{send}",
        "Sends the adaptive rate limiter held back.", _one("retry_limiter_delays"),
    ),
    Instrument(
        "retrysim.limiter.delay.time", "counter", "s",
        "Seconds the adaptive rate limiter held sends back.",
        _one("retry_limiter_delay_seconds"),
    ),
)  # fmt: skip

_STATES = {code: state for state, code in BREAKER_STATE_CODES.items()}


def attributes(labels: Labels, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A Prometheus sample's labels as OpenTelemetry attributes (plus ``extra``)."""
    return {**{ATTRIBUTES[key]: value for key, value in labels}, **(extra or {})}


def points(
    instrument: Instrument, exported: Iterable[Family]
) -> Iterator[tuple[float, dict[str, str]]]:
    """(value, attributes) of each point ``instrument`` reports, from the families exported.

    Not for the histogram, whose points the SDK aggregates from recorded durations.
    """
    for family in exported:
        extra = instrument.carries.get(family.name)
        if extra is None:
            continue
        for sample in family.samples:
            if family.name == "retry_breaker_state":
                current = _STATES[int(sample.value)]
                for state in BREAKER_STATE_CODES:
                    state_attribute = {ATTRIBUTES["state"]: state}
                    yield float(state == current), attributes(sample.labels, state_attribute)
            else:
                yield sample.value, attributes(sample.labels, extra)


class _Instruments:
    """The instruments on one provider's meter, created once: OpenTelemetry cannot delete an
    instrument, and a second one of the same name is the first, keeping its first callbacks.
    So the callbacks read whichever instrumentation is live (``source``), and fall silent
    when none is."""

    def __init__(self, meter: Meter) -> None:
        self.source: OpenTelemetryInstrumentation | None = None
        self.histogram: Histogram | None = None
        for instrument in INSTRUMENTS:
            if instrument.kind == "histogram":
                self.histogram = meter.create_histogram(
                    instrument.name,
                    unit=instrument.unit,
                    description=instrument.description,
                    explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
                )
                continue
            create = (
                meter.create_observable_counter
                if instrument.kind == "counter"
                else meter.create_observable_gauge
            )
            create(
                instrument.name,
                callbacks=[self._callback(instrument)],
                unit=instrument.unit,
                description=instrument.description,
            )

    def _callback(self, instrument: Instrument) -> Callable[[CallbackOptions], list[Observation]]:
        """The callback of an observable ``instrument``: its points at each collection."""
        from opentelemetry.metrics import Observation

        def callback(options: CallbackOptions) -> list[Observation]:
            source = self.source
            if source is None:
                return []
            exported = families(source.registry, source.guards)
            return [Observation(value, attrs) for value, attrs in points(instrument, exported)]

        return callback


class OpenTelemetryInstrumentation:
    """What :func:`instrument_opentelemetry` set up; :meth:`remove` takes it down.

    After ``remove()`` the instruments report nothing (OpenTelemetry cannot delete them) until
    the provider is instrumented again.
    """

    def __init__(
        self,
        provider: Any,
        instruments: _Instruments,
        registry: CounterRegistry,
        guards: GuardStates,
    ) -> None:
        self.provider = provider
        self.registry = registry
        self.guards = guards
        self._instruments = instruments

    @property
    def active(self) -> bool:
        """Whether it still reports (not removed)."""
        return self._instruments.source is self

    def record_duration(self, operation: str, kind: str, seconds: float) -> None:
        """The counters' duration listener: one call's duration into the histogram."""
        histogram = self._instruments.histogram
        if not self.active or histogram is None:
            return
        labels = (("operation", operation), ("kind", kind))
        try:
            histogram.record(seconds, attributes(labels))
        except Exception:  # a metrics backend must never fail the call it measures
            logger.exception("recording a call's duration in OpenTelemetry failed")

    def remove(self) -> None:
        """Stop reporting (idempotent); the provider may be instrumented again afterwards."""
        with _LOCK:
            if self.record_duration in self.registry.duration_listeners:
                self.registry.duration_listeners.remove(self.record_duration)
            if self.active:
                self._instruments.source = None


_LOCK = threading.Lock()
#: Each provider's instruments, made on its first instrumentation.
_MADE: weakref.WeakKeyDictionary[Any, _Instruments] = weakref.WeakKeyDictionary()


def instrument_opentelemetry(
    meter_provider: Any = None,
    *,
    registry: CounterRegistry = COUNTERS,
    guards: GuardStates = PROCESS_GUARDS,
) -> OpenTelemetryInstrumentation:
    """Report the retry metrics through OpenTelemetry: the instruments of :data:`INSTRUMENTS`
    on a meter named ``retrysim.retry`` of ``meter_provider`` (the global provider if None).

    Returns the instrumentation; its ``remove()`` stops it. Instrumenting one provider twice
    is refused (``ValueError``: every point would be reported twice) until the first is
    removed. Needs ``opentelemetry-api``: ``pip install 'retrysim[otel]'``.
    """
    try:
        from opentelemetry import metrics
    except ImportError as error:
        raise ImportError(
            "instrument_opentelemetry needs opentelemetry-api: pip install 'retrysim[otel]' "
            "(and an SDK with an exporter, such as opentelemetry-sdk)"
        ) from error
    from retrysim import __version__

    provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
    with _LOCK:
        instruments = _MADE.get(provider)
        if instruments is None:
            instruments = _MADE[provider] = _Instruments(provider.get_meter(SCOPE, __version__))
        elif instruments.source is not None:
            raise ValueError(
                "this MeterProvider already reports the retry metrics; remove() the "
                "instrumentation instrument_opentelemetry returned before instrumenting it again"
            )
        handle = OpenTelemetryInstrumentation(provider, instruments, registry, guards)
        instruments.source = handle
        registry.duration_listeners.append(handle.record_duration)
    return handle
