"""Per-operation retry counters: the seed's "key metrics", kept in process.

One lock guards all updates: increments are tiny and contention is rare, and a lock is what
makes the counters exact under threads as well as asyncio tasks.
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field


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
        }


#: Idempotency keys remembered per operation (oldest forgotten first), to bound memory.
SEEN_KEYS_LIMIT = 100_000


class CounterRegistry:
    """Thread- and task-safe counters keyed by operation name (``module.qualname``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ops: dict[str, OperationCounters] = {}
        self._seen_keys: dict[str, OrderedDict[object, None]] = {}

    def _get(self, name: str) -> OperationCounters:
        ops = self._ops.get(name)
        if ops is None:
            ops = self._ops[name] = OperationCounters(name)
        return ops

    def call_started(self, name: str) -> None:
        with self._lock:
            self._get(name).calls += 1

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
                )
                for name, ops in self._ops.items()
            }

    def reset(self) -> None:
        with self._lock:
            self._ops.clear()
            self._seen_keys.clear()


#: The process-wide registry the decorators report to.
COUNTERS = CounterRegistry()


def retry_metrics() -> dict[str, OperationCounters]:
    """Snapshot of the counters of every decorated operation called so far."""
    return COUNTERS.snapshot()


def reset_retry_metrics() -> None:
    """Forget all counts (tests, or a service that exports and resets per interval)."""
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
