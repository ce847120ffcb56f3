"""Per-operation retry counters: the seed's "key metrics", kept in process.

One lock guards all updates: increments are tiny and contention is rare, and a lock is what
makes the counters exact under threads as well as asyncio tasks. Besides the per-operation
counts it keeps how long whole calls took (a histogram, for ``retry_duration_seconds``) and
what the process's breakers, budgets and limiters did (fed by a listener on
:data:`~retrysim.retry.guards.PROCESS_GUARDS`, registered when this module is imported).
:mod:`retrysim.retry.export` renders all of it for Prometheus.
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from retrysim.retry.guards import PROCESS_GUARDS, GuardEvent

#: Upper bounds (seconds) of the call-duration histogram: prometheus_client's default buckets,
#: then 30 s to 5 min, because a retried call waits whole seconds between its attempts.
DURATION_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75,
    1.0, 2.5, 5.0, 7.5, 10.0, 30.0, 60.0, 120.0, 300.0,
)  # fmt: skip


def _no_durations() -> list[int]:
    return [0] * (len(DURATION_BUCKETS) + 1)  # the last one: longer than every bound


@dataclass
class OperationCounters:
    """Counts for one decorated operation (a snapshot copy is handed out, never the live one)."""

    operation: str
    calls: int = 0
    attempts: int = 0
    retries: int = 0
    successes: int = 0
    exhausted: int = 0
    non_retryable: int = 0
    wait_seconds: float = 0.0
    failures_by_type: Counter[str] = field(default_factory=Counter)
    duplicate_executions: int = 0
    successes_after_retry: int = 0
    #: Sends started beside an attempt's first one by hedging (:mod:`retrysim.retry.hedge`):
    #: the dependency got ``attempts + hedges`` sends.
    hedges: int = 0
    #: The operation type whose settings the calls used (worker, storage, scheduler, api): the
    #: first one seen, should ``execute_with_retry`` run one function under several.
    kind: str = ""
    #: Calls that ended, by duration: count per bucket of :data:`DURATION_BUCKETS` (not
    #: cumulative), the last for calls longer than every bound.
    duration_counts: list[int] = field(default_factory=_no_durations)
    duration_sum: float = 0.0

    @property
    def duration_count(self) -> int:
        """Calls that ended (returned or raised), whose duration was measured."""
        return sum(self.duration_counts)

    def duration_buckets(self) -> list[tuple[float, int]]:
        """Cumulative (upper bound, calls at most that long) pairs, ending with infinity."""
        bounds = (*DURATION_BUCKETS, float("inf"))
        total, out = 0, []
        for bound, count in zip(bounds, self.duration_counts, strict=True):
            total += count
            out.append((bound, total))
        return out

    @property
    def retry_success_rate(self) -> float | None:
        """Share of calls that needed a retry and still succeeded (None before any)."""
        retried_then_ended = self.successes_after_retry + self.exhausted
        return None if retried_then_ended == 0 else self.successes_after_retry / retried_then_ended

    def as_dict(self) -> dict[str, object]:
        return {
            "operation": self.operation,
            "calls": self.calls,
            "attempts": self.attempts,
            "retries": self.retries,
            "successes": self.successes,
            "successes_after_retry": self.successes_after_retry,
            "exhausted": self.exhausted,
            "non_retryable": self.non_retryable,
            "wait_seconds": self.wait_seconds,
            "failures_by_type": dict(self.failures_by_type),
            "duplicate_executions": self.duplicate_executions,
            "retry_success_rate": self.retry_success_rate,
            "hedges": self.hedges,
            "kind": self.kind,
            "duration_count": self.duration_count,
            "duration_sum": self.duration_sum,
        }


@dataclass(frozen=True)
class GuardCounters:
    """What the process's guards did, from their events (a snapshot; see :class:`GuardEvent`).

    Breakers are keyed by their name (the dependency), budgets and limiters by the operation
    type whose settings they use (``api`` for ``budget:api``).
    """

    breaker_transitions: dict[tuple[str, str], int]  # (breaker, state entered) -> times
    budget_refusals: dict[str, int]  # budget -> retries it refused
    limiter_delays: dict[str, int]  # limiter -> sends it held back
    limiter_delay_seconds: dict[str, float]  # limiter -> seconds sends were held back


def guard_label(name: str) -> str:
    """A guard's name as a metric label: ``budget:api`` -> ``api``; a breaker's name as is."""
    for prefix in ("budget:", "limiter:", "breaker:"):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


#: Idempotency keys remembered per operation (oldest forgotten first), to bound memory.
SEEN_KEYS_LIMIT = 100_000


class CounterRegistry:
    """Thread- and task-safe counters keyed by operation name (``module.qualname``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ops: dict[str, OperationCounters] = {}
        self._seen_keys: dict[str, OrderedDict[object, None]] = {}
        self._transitions: Counter[tuple[str, str]] = Counter()
        self._refusals: Counter[str] = Counter()
        self._delays: Counter[str] = Counter()
        self._delay_seconds: dict[str, float] = {}
        #: Called with (operation, kind, seconds) after each call ends, outside the lock: the
        #: OpenTelemetry export's duration histogram (:mod:`retrysim.retry.otel`) records there,
        #: since OpenTelemetry has no histogram it could read from the counts kept here.
        self.duration_listeners: list[Callable[[str, str, float], None]] = []

    def _get(self, name: str) -> OperationCounters:
        ops = self._ops.get(name)
        if ops is None:
            ops = self._ops[name] = OperationCounters(name)
        return ops

    def call_started(self, name: str, kind: str = "") -> None:
        with self._lock:
            ops = self._get(name)
            ops.calls += 1
            if not ops.kind:
                ops.kind = kind

    def call_finished(self, name: str, seconds: float) -> None:
        """A call ended (whatever its outcome) after ``seconds`` by its clock."""
        seconds = max(0.0, seconds)  # a clock that went back (a hand-made one) counts as 0
        with self._lock:
            ops = self._get(name)
            ops.duration_counts[bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1
            ops.duration_sum += seconds
            kind = ops.kind
        for listener in tuple(self.duration_listeners):
            listener(name, kind, seconds)

    def guard_event(self, event: GuardEvent) -> None:
        """Count a guard's event (the listener on PROCESS_GUARDS)."""
        label = guard_label(event.name)
        with self._lock:
            if event.kind == "breaker":
                self._transitions[(label, str(event.value))] += 1
            elif event.kind == "budget_refused":
                self._refusals[label] += 1
            elif event.kind == "limiter_delay":
                self._delays[label] += 1
                seconds = float(event.value)
                self._delay_seconds[label] = self._delay_seconds.get(label, 0.0) + seconds

    def guard_snapshot(self) -> GuardCounters:
        """A consistent copy of the guard counts."""
        with self._lock:
            return GuardCounters(
                breaker_transitions=dict(self._transitions),
                budget_refusals=dict(self._refusals),
                limiter_delays=dict(self._delays),
                limiter_delay_seconds=dict(self._delay_seconds),
            )

    def attempt(self, name: str, idempotency_key: object = None) -> None:
        """Count an execution; one whose idempotency key was already executed is a duplicate."""
        with self._lock:
            ops = self._get(name)
            ops.attempts += 1
            if idempotency_key is not None:
                seen = self._seen_keys.setdefault(name, OrderedDict())
                if idempotency_key in seen:
                    ops.duplicate_executions += 1
                    seen.move_to_end(idempotency_key)
                else:
                    seen[idempotency_key] = None
                    if len(seen) > SEEN_KEYS_LIMIT:
                        seen.popitem(last=False)

    def attempt_failed(self, name: str, error_type: str) -> None:
        with self._lock:
            self._get(name).failures_by_type[error_type] += 1

    def retry_scheduled(self, name: str, wait: float) -> None:
        with self._lock:
            ops = self._get(name)
            ops.retries += 1
            ops.wait_seconds += wait

    def succeeded(self, name: str, attempts: int) -> None:
        with self._lock:
            ops = self._get(name)
            ops.successes += 1
            if attempts > 1:
                ops.successes_after_retry += 1

    def hedge_started(self, name: str) -> None:
        """Count a hedge: a send started beside an attempt's first one."""
        with self._lock:
            self._get(name).hedges += 1

    def exhausted(self, name: str) -> None:
        with self._lock:
            self._get(name).exhausted += 1

    def non_retryable(self, name: str) -> None:
        with self._lock:
            self._get(name).non_retryable += 1

    def snapshot(self) -> dict[str, OperationCounters]:
        """A consistent copy of every operation's counters."""
        with self._lock:
            return {
                name: OperationCounters(
                    operation=ops.operation,
                    calls=ops.calls,
                    attempts=ops.attempts,
                    retries=ops.retries,
                    successes=ops.successes,
                    exhausted=ops.exhausted,
                    non_retryable=ops.non_retryable,
                    wait_seconds=ops.wait_seconds,
                    failures_by_type=Counter(ops.failures_by_type),
                    duplicate_executions=ops.duplicate_executions,
                    successes_after_retry=ops.successes_after_retry,
                    hedges=ops.hedges,
                    kind=ops.kind,
                    duration_counts=list(ops.duration_counts),
                    duration_sum=ops.duration_sum,
                )
                for name, ops in self._ops.items()
            }

    def reset(self) -> None:
        with self._lock:
            self._ops.clear()
            self._seen_keys.clear()
            self._transitions.clear()
            self._refusals.clear()
            self._delays.clear()
            self._delay_seconds.clear()


#: The process-wide registry the decorators report to.
COUNTERS = CounterRegistry()
# The production guards' events (breaker transitions, budget refusals, limiter delays) are
# counted here, by one listener registered when this module is first imported.
PROCESS_GUARDS.listeners.append(COUNTERS.guard_event)


def retry_metrics() -> dict[str, OperationCounters]:
    """Snapshot of the counters of every decorated operation called so far."""
    return COUNTERS.snapshot()


def reset_retry_metrics() -> None:
    """Forget all counts, guard counts included (tests, or a service that resets per interval).

    A service scraped by Prometheus need not: its ``rate()`` reads a counter that went down as
    a restart of the process.
    """
    COUNTERS.reset()


class AttemptCounter:
    """The counters as an attempt guard: counts every execution and every failed one.

    It never refuses. It sits last in a call's guard chain, so an attempt another guard refused
    (it never ran) is not counted as an execution.
    """

    __slots__ = ("idempotency_key", "name", "registry")

    def __init__(
        self, name: str, idempotency_key: object = None, registry: CounterRegistry = COUNTERS
    ) -> None:
        self.name = name
        self.idempotency_key = idempotency_key
        self.registry = registry

    def before_attempt(self, now: float, attempt: int) -> BaseException | None:
        self.registry.attempt(self.name, self.idempotency_key)
        return None

    def after_outcome(self, now: float, error: BaseException | None) -> None:
        if error is not None:
            self.registry.attempt_failed(self.name, type(error).__name__)
