"""The retry counters as Prometheus metrics: plain text, or a ``prometheus_client`` collector.

:func:`families` turns the counters (:mod:`retrysim.retry.counters`) and the process's breakers
into metric families once; :func:`render_prometheus` writes them in the Prometheus text
exposition format (version 0.0.4) with no dependency, and :func:`register_collector` hands the
same families to a ``prometheus_client`` registry (``pip install 'retrysim[prometheus]'``), so
both ways export the same names, labels and values.

Per decorated function (label ``operation``: its ``module.qualname``, the key of
``retry_metrics()``; label ``kind``: the operation type whose settings it uses) the seed's
``retry_attempts_total``, ``retry_success_rate`` and ``retry_duration_seconds`` and the rest of
the counters; per breaker (label ``breaker``) its state and transitions; per budget and limiter
(labels ``budget``, ``limiter``: the operation type) refusals and delays.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from retrysim.retry.breaker import CircuitBreaker
from retrysim.retry.counters import COUNTERS, CounterRegistry, OperationCounters
from retrysim.retry.guards import PROCESS_GUARDS, GuardStates

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

#: The media type of :func:`render_prometheus`'s text, for a ``/metrics`` handler.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: ``retry_breaker_state``'s values.
BREAKER_STATE_CODES: dict[str, int] = {"closed": 0, "open": 1, "half_open": 2}
#: When two breakers share a name (a client- and a fleet-scoped one), the less healthy shows.
_SEVERITY = {"closed": 0, "half_open": 1, "open": 2}

Kind = Literal["counter", "gauge", "histogram"]
Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Sample:
    """One line of a family: its full name (``retry_calls_total``), labels and value."""

    name: str
    labels: Labels
    value: float


@dataclass(frozen=True)
class Family:
    """A metric family: ``name`` as Prometheus clients name it (a counter's without
    ``_total``; its samples carry the suffix), its type, help text and samples."""

    name: str
    kind: Kind
    help: str
    samples: tuple[Sample, ...]

    @property
    def exposed_name(self) -> str:
        """The name on the ``# HELP`` and ``# TYPE`` lines of the text format."""
        return f"{self.name}_total" if self.kind == "counter" else self.name


def _op_labels(ops: OperationCounters) -> Labels:
    return (("operation", ops.operation), ("kind", ops.kind))


def _counter(
    name: str, help_text: str, rows: Iterable[tuple[Labels, float]], suffix: str = "_total"
) -> Family:
    samples = tuple(Sample(name + suffix, labels, value) for labels, value in rows)
    return Family(name, "counter", help_text, samples)


def _per_operation(name: str, help_text: str, ops: list[OperationCounters], field: str) -> Family:
    return _counter(name, help_text, ((_op_labels(o), getattr(o, field)) for o in ops))


def _durations(ops: list[OperationCounters]) -> Family:
    name = "retry_duration_seconds"
    samples: list[Sample] = []
    for o in ops:
        labels = _op_labels(o)
        for bound, count in o.duration_buckets():
            samples.append(Sample(f"{name}_bucket", (*labels, ("le", _number(bound))), count))
        samples.append(Sample(f"{name}_sum", labels, o.duration_sum))
        samples.append(Sample(f"{name}_count", labels, o.duration_count))
    help_text = "Seconds a call took, first attempt to outcome, waits between attempts included."
    return Family(name, "histogram", help_text, tuple(samples))


def _breaker_states(guards: GuardStates) -> Family:
    worst: dict[str, str] = {}
    for _, _, guard in guards.instances():
        if isinstance(guard, CircuitBreaker):
            state, seen = guard.state, worst.get(guard.name)
            if seen is None or _SEVERITY[state] > _SEVERITY[seen]:
                worst[guard.name] = state
    samples = tuple(
        Sample("retry_breaker_state", (("breaker", name),), BREAKER_STATE_CODES[state])
        for name, state in sorted(worst.items())
    )
    return Family(
        "retry_breaker_state",
        "gauge",
        "Circuit breaker state: 0 closed, 1 open, 2 half-open.",
        samples,
    )


def families(
    registry: CounterRegistry = COUNTERS, guards: GuardStates = PROCESS_GUARDS
) -> list[Family]:
    """Every exported family, from a snapshot of ``registry`` and the breakers in ``guards``,
    every label value valid Unicode (:func:`_encodable`)."""
    return [_encodable(family) for family in _families(registry, guards)]


def _encodable(family: Family) -> Family:
    """``family`` with every label value as :func:`encodable_text` makes it."""
    samples = tuple(
        replace(sample, labels=tuple((key, encodable_text(value)) for key, value in sample.labels))
        for sample in family.samples
    )
    return replace(family, samples=samples)


def encodable_text(value: str) -> str:
    """``value`` as text any UTF-8 encoder takes: a surrogate pair joined into its character, a
    lone surrogate (from a name decoded with ``surrogateescape``, say) replaced by U+FFFD.

    An operation, breaker or error name is the user's; one with a lone surrogate would make
    the whole exposition unencodable (``/metrics`` answers nothing, a scrape fails), where
    one replaced character costs only that name's exactness.
    """
    if value.isascii():
        return value
    return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _families(registry: CounterRegistry, guards: GuardStates) -> list[Family]:
    ops = sorted(registry.snapshot().values(), key=lambda o: o.operation)
    guard = registry.guard_snapshot()
    failures = (
        ((*_op_labels(o), ("error", error)), count)
        for o in ops
        for error, count in sorted(o.failures_by_type.items())
    )
    rates = tuple(
        Sample("retry_success_rate", _op_labels(o), o.retry_success_rate)
        for o in ops
        if o.retry_success_rate is not None
    )
    return [
        _per_operation("retry_calls", "Calls of a retried function.", ops, "calls"),
        _per_operation(
            "retry_attempts",
            "Attempts sent to the dependency (attempts a guard refused are not counted).",
            ops,
            "attempts",
        ),
        _per_operation("retry_retries", "Retries scheduled after failed attempts.", ops, "retries"),
        _per_operation("retry_successes", "Calls that succeeded.", ops, "successes"),
        _per_operation(
            "retry_exhausted",
            "Calls that gave up on a retryable error: attempts, time or retry budget ran out.",
            ops,
            "exhausted",
        ),
        _per_operation(
            "retry_non_retryable",
            "Calls that failed on an error that is not retried (an open breaker's included).",
            ops,
            "non_retryable",
        ),
        _counter("retry_attempt_failures", "Failed attempts, by error type.", failures),
        _per_operation(
            "retry_wait_seconds", "Seconds scheduled to wait between attempts.", ops, "wait_seconds"
        ),
        _per_operation(
            "retry_duplicate_executions",
            "Executions of an idempotency key that had already been executed.",
            ops,
            "duplicate_executions",
        ),
        _per_operation(
            "retry_hedges",
            "Hedges: sends started beside an attempt's first one (retrysim.retry.hedge).",
            ops,
            "hedges",
        ),
        Family(
            "retry_success_rate",
            "gauge",
            "Share of calls that needed a retry and then succeeded (absent before any).",
            rates,
        ),
        _durations(ops),
        _breaker_states(guards),
        _counter(
            "retry_breaker_transitions",
            "Circuit breaker state changes, by the state entered.",
            (
                ((("breaker", breaker), ("state", state)), count)
                for (breaker, state), count in sorted(guard.breaker_transitions.items())
            ),
        ),
        _counter(
            "retry_budget_refusals",
            "Retries a retry budget refused (the call ended with its last error).",
            (((("budget", b),), n) for b, n in sorted(guard.budget_refusals.items())),
        ),
        _counter(
            "retry_limiter_delays",
            "Sends the adaptive rate limiter held back.",
            (((("limiter", lim),), n) for lim, n in sorted(guard.limiter_delays.items())),
        ),
        _counter(
            "retry_limiter_delay_seconds",
            "Seconds the adaptive rate limiter held sends back.",
            (((("limiter", lim),), s) for lim, s in sorted(guard.limiter_delay_seconds.items())),
        ),
    ]


# --- the text format ----------------------------------------------------------------------


def _number(value: float) -> str:
    """A sample value or ``le`` bound as Prometheus writes it (``+Inf``, ``NaN``, ``2.5``)."""
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _line(sample: Sample) -> str:
    labels = ",".join(f'{key}="{_escape_label(value)}"' for key, value in sample.labels)
    braced = f"{{{labels}}}" if labels else ""
    return f"{sample.name}{braced} {_number(sample.value)}"


def render_prometheus(
    registry: CounterRegistry = COUNTERS, guards: GuardStates = PROCESS_GUARDS
) -> str:
    """The retry metrics in the Prometheus text format (serve it as :data:`CONTENT_TYPE`)."""
    lines: list[str] = []
    for family in families(registry, guards):
        lines.append(f"# HELP {family.exposed_name} {_escape_help(family.help)}")
        lines.append(f"# TYPE {family.exposed_name} {family.kind}")
        lines.extend(_line(sample) for sample in family.samples)
    return "\n".join(lines) + "\n"


# --- prometheus_client ----------------------------------------------------------------------


class RetryCollector:
    """A ``prometheus_client`` collector of :func:`families` (read at every scrape)."""

    def __init__(
        self, registry: CounterRegistry = COUNTERS, guards: GuardStates = PROCESS_GUARDS
    ) -> None:
        self.registry = registry
        self.guards = guards

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.metrics_core import Metric

        for family in families(self.registry, self.guards):
            metric = Metric(family.name, family.help, family.kind)
            for sample in family.samples:
                metric.add_sample(sample.name, dict(sample.labels), sample.value)
            yield metric

    def describe(self) -> Iterator[Metric]:
        """The families without samples: how any registry finds a second registration."""
        from prometheus_client.metrics_core import Metric

        for family in families(CounterRegistry(), GuardStates()):
            yield Metric(family.name, family.help, family.kind)


def register_collector(registry: Any = None) -> RetryCollector:
    """Register the retry metrics with a ``prometheus_client`` registry (its default one if
    None) and return the collector (``registry.unregister(collector)`` removes it).

    Needs ``prometheus_client``: ``pip install 'retrysim[prometheus]'``. Registering twice
    with one registry is refused there (``ValueError: Duplicated timeseries``).
    """
    try:
        import prometheus_client
    except ImportError as error:
        raise ImportError(
            "register_collector needs prometheus_client: pip install 'retrysim[prometheus]' "
            "(or serve render_prometheus(), which needs nothing)"
        ) from error
    collector = RetryCollector()
    (registry if registry is not None else prometheus_client.REGISTRY).register(collector)
    return collector
