"""Per-operation retry counters: exact under asyncio tasks and threads, with duplicate detection."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrysim.retry import (
    RetrySettings,
    ServerError,
    execute_with_retry,
    reset_retry_metrics,
    retry_api_call,
    retry_metrics,
    retry_storage_operation,
    retry_worker_operation,
    use_settings,
)
from retrysim.sim.aio import run_virtual


def check_laws(counters) -> None:
    """Relations every snapshot must satisfy, whatever happened."""
    assert counters.attempts == counters.calls + counters.retries
    assert counters.calls == counters.successes + counters.exhausted + counters.non_retryable
    assert sum(counters.failures_by_type.values()) == counters.attempts - counters.successes
    assert counters.successes_after_retry <= counters.successes


def test_no_counters_before_any_call() -> None:
    assert retry_metrics() == {}


def test_counts_for_a_mixed_workload(sync_sleep, metrics_for) -> None:
    plan: dict[str, list[Exception]] = {
        "fine": [],
        "one_blip": [ConnectionError("a")],
        "two_blips": [TimeoutError("t"), ConnectionError("b")],
        "dead": [ConnectionError("c")] * 3,
        "bad": [ValueError("v")],
        "blip_then_bad": [ConnectionError("d"), ServerError("500")],
    }
    remaining = {key: list(errors) for key, errors in plan.items()}

    @retry_worker_operation(min_wait=0.25, profile="exponential", sleep=sync_sleep)
    def run_task(key: str) -> str:
        if remaining[key]:
            raise remaining[key].pop(0)
        return key

    for key in plan:
        with contextlib.suppress(ConnectionError, ValueError, ServerError):
            run_task(key)

    counters = metrics_for(run_task)
    assert counters.calls == 6
    assert counters.attempts == 1 + 2 + 3 + 3 + 1 + 2
    assert counters.retries == 0 + 1 + 2 + 2 + 0 + 1
    assert counters.successes == 3
    assert counters.successes_after_retry == 2
    assert counters.exhausted == 1
    assert counters.non_retryable == 2
    assert dict(counters.failures_by_type) == {
        "ConnectionError": 1 + 1 + 3 + 1,
        "TimeoutError": 1,
        "ValueError": 1,
        "ServerError": 1,
    }
    assert counters.wait_seconds == pytest.approx(sum(sync_sleep.waits))
    assert sum(sync_sleep.waits) == pytest.approx(0.25 + 0.25 + 0.5 + 0.25 + 0.5 + 0.25)
    assert counters.retry_success_rate == pytest.approx(2 / 3)
    assert counters.duplicate_executions == 0
    check_laws(counters)


def test_snapshot_is_a_copy(sync_sleep, metrics_for) -> None:
    @retry_api_call(sleep=sync_sleep)
    def call() -> int:
        return 1

    call()
    snap = metrics_for(call)
    snap.calls = 1000
    snap.failures_by_type["Injected"] += 5
    fresh = metrics_for(call)
    assert fresh.calls == 1
    assert "Injected" not in fresh.failures_by_type


def test_reset_forgets_everything(sync_sleep, metrics_for) -> None:
    @retry_storage_operation(sleep=sync_sleep, idempotency_key=lambda: "k")
    def save() -> None:
        return None

    save()
    assert metrics_for(save).calls == 1
    reset_retry_metrics()
    assert retry_metrics() == {}
    save()  # the key was forgotten too: not a duplicate
    assert metrics_for(save).duplicate_executions == 0
    assert metrics_for(save).calls == 1


def test_functions_with_the_same_name_are_counted_apart(sync_sleep) -> None:
    def make(scope: str):
        @retry_worker_operation(sleep=sync_sleep)
        def run_task() -> str:
            return scope

        return run_task

    class A:
        @staticmethod
        @retry_worker_operation(sleep=sync_sleep)
        def run_task() -> str:
            return "A"

    make("x")()
    A.run_task()
    A.run_task()
    snapshot = retry_metrics()
    assert len(snapshot) == 2
    assert sorted(c.calls for c in snapshot.values()) == [1, 2]


def test_as_dict_exposes_every_counter(sync_sleep, metrics_for) -> None:
    flaky = iter([ConnectionError("x")])

    @retry_api_call(min_wait=0.5, profile="exponential", sleep=sync_sleep)
    def call() -> str:
        error = next(flaky, None)
        if error:
            raise error
        return "ok"

    call()
    data = metrics_for(call).as_dict()
    assert data["calls"] == 1
    assert data["attempts"] == 2
    assert data["retries"] == 1
    assert data["successes"] == 1
    assert data["successes_after_retry"] == 1
    assert data["exhausted"] == 0
    assert data["non_retryable"] == 0
    assert data["wait_seconds"] == 0.5
    assert data["failures_by_type"] == {"ConnectionError": 1}
    assert data["duplicate_executions"] == 0
    assert data["retry_success_rate"] == 1.0
    assert data["operation"].endswith("call")


def test_retry_success_rate_is_none_without_retries(sync_sleep, metrics_for) -> None:
    @retry_api_call(sleep=sync_sleep)
    def call() -> int:
        return 1

    call()
    assert metrics_for(call).retry_success_rate is None


def test_execute_with_retry_is_counted(async_sleep, metrics_for) -> None:
    attempts = {"n": 0}

    def create_storage(config: str) -> str:
        attempts["n"] += 1
        if attempts["n"] == 1:
            raise ConnectionRefusedError("db down")
        return config

    run_virtual(execute_with_retry(create_storage, "pg", min_wait=0.0, sleep=async_sleep))
    counters = metrics_for(create_storage)
    assert (counters.calls, counters.attempts, counters.retries) == (1, 2, 1)
    assert dict(counters.failures_by_type) == {"ConnectionRefusedError": 1}


# --- idempotency keys -----------------------------------------------------------------------


def test_same_key_executed_twice_is_a_duplicate(sync_sleep, metrics_for) -> None:
    @retry_storage_operation(sleep=sync_sleep, idempotency_key=lambda task_id, **_: task_id)
    def submit_task(task_id: str, payload: str = "") -> str:
        return task_id

    submit_task("t1")
    submit_task("t2", payload="x")
    assert metrics_for(submit_task).duplicate_executions == 0
    submit_task("t1", payload="again")
    assert metrics_for(submit_task).duplicate_executions == 1
    submit_task("t1")
    assert metrics_for(submit_task).duplicate_executions == 2


def test_retry_of_a_keyed_call_executes_the_key_again(sync_sleep, metrics_for) -> None:
    """A failed attempt may have had its effect (e.g. a timeout after the write): re-running
    the same key is a duplicate execution."""
    failures = [TimeoutError("ack lost")]

    @retry_storage_operation(min_wait=0.0, sleep=sync_sleep, idempotency_key=lambda k: k)
    def update_task(key: str) -> str:
        if failures:
            raise failures.pop()
        return key

    update_task("row-1")
    counters = metrics_for(update_task)
    assert counters.attempts == 2
    assert counters.duplicate_executions == 1


def test_no_key_no_duplicates(sync_sleep, metrics_for) -> None:
    @retry_storage_operation(sleep=sync_sleep)
    def submit_task(task_id: str) -> str:
        return task_id

    for _ in range(3):
        submit_task("same")
    assert metrics_for(submit_task).duplicate_executions == 0


def test_async_keyed_calls(async_sleep, metrics_for) -> None:
    @retry_api_call(sleep=async_sleep, idempotency_key=lambda request_id: request_id)
    async def post(request_id: int) -> int:
        await asyncio.sleep(0)
        return request_id

    async def main() -> list[int]:
        return list(await asyncio.gather(*(post(i % 10) for i in range(30))))

    assert run_virtual(main()) == [i % 10 for i in range(30)]
    assert metrics_for(post).duplicate_executions == 20


@settings(max_examples=40, deadline=None)
@given(keys=st.lists(st.integers(0, 5), max_size=25))
def test_duplicates_law(make_sync_sleep, metrics_for, keys: list[int]) -> None:
    reset_retry_metrics()

    @retry_storage_operation(sleep=make_sync_sleep(), idempotency_key=lambda k: ("task", k))
    def submit(k: int) -> int:
        return k

    for k in keys:
        submit(k)
    if keys:
        assert metrics_for(submit).duplicate_executions == len(keys) - len(set(keys))
    else:
        assert retry_metrics() == {}


# --- concurrency ----------------------------------------------------------------------------


def test_200_concurrent_asyncio_tasks_exact(async_sleep, metrics_for) -> None:
    """Task i fails i % 4 times (ConnectionError) before succeeding; 3 attempts allowed."""
    use_settings(RetrySettings(profile="exponential", worker_min_wait=0.5))
    failures_left = {i: i % 4 for i in range(200)}

    @retry_worker_operation(sleep=async_sleep, idempotency_key=lambda i: i)
    async def run_task(i: int) -> int:
        await asyncio.sleep(0.01)
        if failures_left[i]:
            failures_left[i] -= 1
            raise ConnectionError(f"task {i}")
        return i

    async def main() -> list[int | BaseException]:
        return await asyncio.gather(*(run_task(i) for i in range(200)), return_exceptions=True)

    results = run_virtual(main())
    succeeded = [r for r in results if isinstance(r, int)]
    failed = [r for r in results if isinstance(r, ConnectionError)]
    assert len(succeeded) == 150 and len(failed) == 50  # i % 4 == 3 needs a 4th attempt
    counters = metrics_for(run_task)
    assert counters.calls == 200
    assert counters.attempts == 50 * (1 + 2 + 3 + 3)
    assert counters.retries == 50 * (0 + 1 + 2 + 2)
    assert counters.successes == 150
    assert counters.successes_after_retry == 100
    assert counters.exhausted == 50
    assert counters.non_retryable == 0
    assert dict(counters.failures_by_type) == {"ConnectionError": 50 * (0 + 1 + 2 + 3)}
    assert counters.duplicate_executions == counters.retries
    assert len(async_sleep.waits) == counters.retries
    assert counters.wait_seconds == pytest.approx(sum(async_sleep.waits))
    assert counters.wait_seconds == pytest.approx(50 * (0.0 + 0.5 + 1.5 + 1.5))
    check_laws(counters)


def test_200_concurrent_tasks_default_sleep_virtual_time(metrics_for) -> None:
    """Same, through tenacity's own asyncio.sleep on the virtual clock (no injected sleep)."""
    seen: dict[int, int] = {}

    @retry_api_call(profile="exponential", min_wait=2.0, max_wait=2.0)
    async def call(i: int) -> int:
        seen[i] = seen.get(i, 0) + 1
        if seen[i] == 1:
            raise TimeoutError("first try times out")
        return i

    async def main() -> tuple[list[int], float]:
        done = await asyncio.gather(*(call(i) for i in range(200)))
        return list(done), asyncio.get_running_loop().time()

    results, virtual = run_virtual(main())
    assert results == list(range(200))
    assert virtual == pytest.approx(2.0)  # all 200 waited 2 s concurrently
    counters = metrics_for(call)
    assert (counters.calls, counters.attempts, counters.retries) == (200, 400, 200)
    assert counters.wait_seconds == pytest.approx(400.0)
    check_laws(counters)


def test_8_threads_sync_exact(sync_sleep, metrics_for) -> None:
    lock = threading.Lock()
    failures_left = {i: i % 3 for i in range(400)}
    start = threading.Barrier(8)

    @retry_storage_operation(
        max_attempts=2,
        min_wait=0.5,
        profile="exponential",
        sleep=sync_sleep,
        idempotency_key=lambda i: i,
    )
    def save(i: int) -> int:
        with lock:
            fail = failures_left[i] > 0
            failures_left[i] -= fail
        if fail:
            raise ConnectionResetError(f"row {i}")
        return i

    def worker(chunk: range) -> list[object]:
        start.wait()
        out: list[object] = []
        for i in chunk:
            try:
                out.append(save(i))
            except ConnectionResetError as error:
                out.append(error)
        return out

    with ThreadPoolExecutor(max_workers=8) as pool:
        chunks = [range(k, 400, 8) for k in range(8)]
        results = [r for part in pool.map(worker, chunks) for r in part]
    # i % 3: 0 -> 1 attempt ok, 1 -> 2 attempts ok, 2 -> 2 attempts then exhausted
    n0, n1, n2 = (sum(1 for i in range(400) if i % 3 == r) for r in range(3))
    assert sum(isinstance(r, int) for r in results) == n0 + n1
    counters = metrics_for(save)
    assert counters.calls == 400
    assert counters.attempts == n0 + 2 * n1 + 2 * n2
    assert counters.retries == n1 + n2
    assert counters.successes == n0 + n1
    assert counters.exhausted == n2
    assert dict(counters.failures_by_type) == {"ConnectionResetError": n1 + 2 * n2}
    assert counters.duplicate_executions == n1 + n2
    assert counters.wait_seconds == pytest.approx(0.5 * (n1 + n2))
    assert len(sync_sleep.waits) == n1 + n2
    check_laws(counters)


def test_threads_and_tasks_share_one_registry(sync_sleep, async_sleep, metrics_for) -> None:
    @retry_worker_operation(sleep=sync_sleep)
    def sync_op() -> int:
        return 1

    @retry_worker_operation(sleep=async_sleep)
    async def async_op() -> int:
        return 2

    async def main(pool: ThreadPoolExecutor) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.gather(
            *(async_op() for _ in range(50)),
            *(loop.run_in_executor(pool, sync_op) for _ in range(50)),
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        run_virtual(main(pool))
    assert metrics_for(sync_op).calls == 50
    assert metrics_for(async_op).calls == 50
