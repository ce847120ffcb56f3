"""The production retry module under load: exact counters, no retried non-retryable errors.

1,000 concurrent asyncio tasks on the virtual-time loop and 32 threads hammer decorated
operations whose failures follow a known per-call script, so every counter has an exact
expected value computed independently of the decorators.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from retrysim.retry import retry_metrics, retry_storage_operation, retry_worker_operation
from retrysim.sim.aio import run_virtual

TASKS = 1000
THREADS = 32


def script(call: int) -> list[type[Exception] | None]:
    """What each attempt of call number ``call`` does: raise a type, or succeed (None)."""
    kind = call % 5
    if kind == 0:
        return [None]  # succeeds at once
    if kind == 1:
        return [ConnectionError, None]  # one retry
    if kind == 2:
        return [TimeoutError, ConnectionResetError, None]  # two retries
    if kind == 3:
        return [ConnectionError] * 4  # exhausts 4 attempts
    return [ValueError]  # not retryable: one attempt, no retry


def expected() -> dict[str, object]:
    calls = [script(c) for c in range(TASKS)]
    failures: Counter[str] = Counter()
    attempts = retries = successes = exhausted = non_retryable = 0
    for steps in calls:
        attempts += len(steps)
        for step in steps:
            if step is not None:
                failures[step.__name__] += 1
        if steps[-1] is None:
            successes += 1
            retries += len(steps) - 1
        elif steps[-1] is ValueError:
            non_retryable += 1
        else:
            exhausted += 1
            retries += len(steps) - 1
    return {
        "calls": TASKS,
        "attempts": attempts,
        "retries": retries,
        "successes": successes,
        "exhausted": exhausted,
        "non_retryable": non_retryable,
        "failures": failures,
    }


def _check(name_suffix: str, executions: Counter[int]) -> None:
    want = expected()
    (name,) = [k for k in retry_metrics() if k.endswith(name_suffix)]
    got = retry_metrics()[name]
    assert got.calls == want["calls"]
    assert got.attempts == want["attempts"]
    assert got.retries == want["retries"]
    assert got.successes == want["successes"]
    assert got.exhausted == want["exhausted"]
    assert got.non_retryable == want["non_retryable"]
    assert got.failures_by_type == want["failures"]
    # Never retried a non-retryable error: each ValueError call executed exactly once.
    for call in range(TASKS):
        assert executions[call] == len(script(call))


def test_a_thousand_concurrent_tasks_keep_exact_counts() -> None:
    executions: Counter[int] = Counter()
    progress: dict[int, int] = {}

    async def no_wait(_: float) -> None:
        await asyncio.sleep(0)  # yield, so the tasks interleave at every retry

    @retry_worker_operation(max_attempts=4, min_wait=0.0, profile="exponential", sleep=no_wait)
    async def operation(call: int) -> int:
        executions[call] += 1
        step = script(call)[progress.get(call, 0)]
        progress[call] = progress.get(call, 0) + 1
        await asyncio.sleep(0.001 * (call % 7))  # different latencies reorder the tasks
        if step is not None:
            raise step(f"call {call} {{brace}} %s")
        return call

    async def main() -> list[int | BaseException]:
        return await asyncio.gather(*(operation(c) for c in range(TASKS)), return_exceptions=True)

    outcomes = run_virtual(main())
    for call, outcome in enumerate(outcomes):
        last = script(call)[-1]
        if last is None:
            assert outcome == call
        else:
            assert type(outcome) is last  # the original exception type, not RetryError
    _check("operation", executions)


def test_thirty_two_threads_keep_exact_counts() -> None:
    executions: Counter[int] = Counter()
    lock = threading.Lock()
    progress: dict[int, int] = {}

    @retry_storage_operation(
        max_attempts=4, min_wait=0.0, profile="exponential", sleep=lambda s: None
    )
    def operation(call: int) -> int:
        with lock:
            executions[call] += 1
            step = script(call)[progress.get(call, 0)]
            progress[call] = progress.get(call, 0) + 1
        if step is not None:
            raise step(f"call {call}")
        return call

    def attempt(call: int) -> object:
        try:
            return operation(call)
        except Exception as error:
            return error

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        outcomes = list(pool.map(attempt, range(TASKS)))
    for call, outcome in enumerate(outcomes):
        last = script(call)[-1]
        assert (outcome == call) if last is None else (type(outcome) is last)
    _check("operation", executions)


def test_retries_of_a_non_idempotent_operation_are_counted_as_duplicates() -> None:
    applied: list[str] = []

    @retry_storage_operation(
        max_attempts=3,
        min_wait=0.0,
        profile="exponential",
        sleep=lambda s: None,
        idempotency_key=lambda order_id: order_id,
    )
    def charge(order_id: str) -> None:
        applied.append(order_id)
        if applied.count(order_id) == 1:
            raise TimeoutError("the charge went through, the answer did not")

    charge("order-1")
    charge("order-2")
    charge("order-1")  # the caller retries at its level too
    (name,) = [k for k in retry_metrics() if k.endswith("charge")]
    counters = retry_metrics()[name]
    # order-1 executed 3 times (attempt, retry, second call), order-2 twice: 5 - 2 distinct keys.
    assert len(applied) == 5
    assert counters.duplicate_executions == 3
