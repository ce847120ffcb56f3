"""Retry events: ``on_retry`` per function and ``add_retry_hook`` process-wide, called before
each retry's wait with what failed and how long the wait is; the same fields as structured log
``extra`` on the retry's log record. Sync and async, on a clock only the injected sleep moves.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import tenacity

from retrysim.retry import (
    RetryEvent,
    add_retry_hook,
    execute_with_retry,
    remove_retry_hook,
    retry_api_call,
    retry_storage_operation,
    retry_worker_operation,
)
from retrysim.sim.aio import run_virtual
from tests.test_attempt_timeout import timed
from tests.test_hooks import FakeTime, Recorder, check_hooked_both_ways, fails


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime()


def test_on_retry_gets_each_retry_before_its_wait(clock: FakeTime) -> None:
    hook = Recorder()
    first, second = ConnectionError("first"), TimeoutError("second")
    dependency = fails(first, second)
    waits_seen_at: list[float] = []

    def on_retry(event: RetryEvent) -> None:
        hook(event)
        waits_seen_at.append(clock.now)  # the wait has not happened yet

    @retry_worker_operation(
        min_wait=0.5, profile="exponential", sleep=clock.sleep, clock=clock, on_retry=on_retry
    )
    def fetch() -> str:
        return dependency()

    assert fetch() == "ok"
    assert [type(e) for e in hook.seen] == [RetryEvent, RetryEvent]
    one, two = hook.seen
    assert (one.attempt, one.max_attempts, one.error, one.wait) == (1, 3, first, 0.5)
    assert (two.attempt, two.error, two.wait) == (2, second, 1.0)
    assert one.operation == f"{__name__}.{fetch.__qualname__}"
    assert (one.function, one.kind, one.result) == ("fetch", "worker", None)
    assert (one.elapsed, two.elapsed) == (0.0, 0.5)  # first attempt to each failure
    assert waits_seen_at == [0.0, 0.5]


def test_on_retry_is_not_called_without_a_retry(clock: FakeTime) -> None:
    hook = Recorder()
    plan = {"fine": fails(), "not_retried": fails(ValueError("v")), "once": fails(OSError())}

    @retry_worker_operation(max_attempts=1, sleep=clock.sleep, on_retry=hook)
    def run(key: str) -> str:
        return plan[key]()

    run("fine")
    for key in ("not_retried", "once"):
        with pytest.raises(Exception):  # noqa: B017 - the kind is not the point
            run(key)
    assert hook.seen == []  # the give-up is on_exhausted's, not a retry


def test_a_retried_result_is_an_event_with_its_result(clock: FakeTime) -> None:
    hook = Recorder()
    answers = iter([503, 429, 200])

    @retry_api_call(
        retry=tenacity.retry_if_result(lambda status: status >= 429),
        min_wait=0.0,
        sleep=clock.sleep,
        on_retry=hook,
    )
    def status() -> int:
        return next(answers)

    assert status() == 200
    assert [(e.attempt, e.error, e.result) for e in hook.seen] == [(1, None, 503), (2, None, 429)]


def test_a_hook_added_both_ways_is_called_once_and_removal_works(clock: FakeTime) -> None:
    check_hooked_both_ways(clock, "on_retry", add_retry_hook, remove_retry_hook)


def test_a_raising_retry_hook_is_logged_and_the_call_goes_on(
    caplog: pytest.LogCaptureFixture, clock: FakeTime
) -> None:
    caplog.set_level(logging.ERROR, logger="retrysim.retry")
    after = Recorder()

    def broken(event: RetryEvent) -> None:
        raise RuntimeError("metrics backend down")

    dependency = fails(ConnectionError("blip"))

    @retry_worker_operation(min_wait=0.0, sleep=clock.sleep, on_retry=broken)
    def job() -> str:
        return dependency()

    add_retry_hook(after)
    try:
        assert job() == "ok"  # retried and succeeded, the hook's error notwithstanding
    finally:
        remove_retry_hook(after)
    assert len(after.seen) == 1
    (record,) = [r for r in caplog.records if "on_retry hook" in r.getMessage()]
    assert broken.__qualname__ in record.getMessage()
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)


def test_async_calls_and_execute_with_retry_emit_events() -> None:
    hook = Recorder()
    error = ConnectionResetError("reset")
    attempts = 0

    async def create(config: str) -> str:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise error
        return config

    result, virtual = timed(
        execute_with_retry(
            create, "pg", operation="storage", min_wait=0.5, profile="exponential", on_retry=hook
        )
    )
    assert result == "pg"
    assert [(e.kind, e.attempt, e.wait, e.error) for e in hook.seen] == [
        ("storage", 1, 0.5, error),
        ("storage", 2, 1.0, error),
    ]
    assert hook.seen[1].elapsed == pytest.approx(0.5)
    assert virtual == pytest.approx(1.5)


def test_the_retry_log_record_carries_the_event_as_extra(
    caplog: pytest.LogCaptureFixture, clock: FakeTime
) -> None:
    caplog.set_level(logging.WARNING, logger="retrysim.retry")
    dependency = fails(ConnectionError("{braces} and %s"))

    @retry_storage_operation(
        min_wait=0.25, profile="exponential", sleep=clock.async_sleep, clock=clock
    )
    async def save() -> str:
        return dependency()

    assert run_virtual(save()) == "ok"
    (record,) = [r for r in caplog.records if r.getMessage().startswith("Retry attempt")]
    fields: dict[str, Any] = {
        name: getattr(record, name)
        for name in (
            "retry_operation",
            "retry_function",
            "retry_kind",
            "retry_attempt",
            "retry_max_attempts",
            "retry_wait",
            "retry_elapsed",
            "retry_error",
        )
    }
    assert fields == {
        "retry_operation": f"{__name__}.{save.__qualname__}",
        "retry_function": "save",
        "retry_kind": "storage",
        "retry_attempt": 1,
        "retry_max_attempts": 5,
        "retry_wait": 0.25,
        "retry_elapsed": 0.0,
        "retry_error": "ConnectionError",
    }
    event = record.retry_event  # type: ignore[attr-defined]  # set through extra
    assert isinstance(event, RetryEvent) and event.wait == 0.25
    assert "{braces} and %s" in record.getMessage()


def test_an_async_retry_hook_is_refused() -> None:
    async def later(event: RetryEvent) -> None:
        return None

    with pytest.raises(TypeError, match=r"on_retry: .*later is async"):
        retry_worker_operation(on_retry=later)
    with pytest.raises(TypeError, match=r"add_retry_hook: .*async"):
        add_retry_hook(later)
    with pytest.raises(TypeError, match="on_retry must be a function"):
        retry_worker_operation(on_retry="print")
