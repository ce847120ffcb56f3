"""Fallbacks: what a call that gave up returns instead of raising, per function and
process-wide, sync and async, with injected sleeps.

A fallback answers only a call that gave up (its attempts, time or budget ran out on an outcome
its policy retries); an error it does not retry still raises. A fallback that raises raises to
the caller: it is the call's answer now, and declining is re-raising ``call.error``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import tenacity

from retrysim.retry import (
    ExhaustedCall,
    add_exhausted_hook,
    execute_with_retry,
    remove_exhausted_hook,
    remove_fallback,
    retry_api_call,
    retry_metrics,
    retry_storage_operation,
    retry_worker_operation,
    set_fallback,
)
from retrysim.sim.aio import run_virtual
from tests.conftest import AsyncSleepRecorder, SleepRecorder


@pytest.fixture(autouse=True)
def no_process_fallbacks() -> Iterator[None]:
    for kind in (None, "worker", "storage", "scheduler", "api"):
        remove_fallback(kind=kind)
    yield
    for kind in (None, "worker", "storage", "scheduler", "api"):
        remove_fallback(kind=kind)


def down(*args: object, **kwargs: object) -> str:
    raise ConnectionError("down")


# --- per function ------------------------------------------------------------------------------


def test_a_value_is_returned_when_the_call_gives_up(sync_sleep: SleepRecorder) -> None:
    wrapped = retry_worker_operation(fallback="cached", sleep=sync_sleep)(down)
    assert wrapped() == "cached"
    assert len(sync_sleep.waits) == 2  # the retries still happened
    counts = retry_metrics()[f"{__name__}.down"]
    assert (counts.attempts, counts.exhausted, counts.successes) == (3, 1, 0)


def test_none_is_a_fallback_value_not_the_absence_of_one(sync_sleep: SleepRecorder) -> None:
    assert retry_worker_operation(fallback=None, sleep=sync_sleep)(down)() is None


def test_a_callable_is_given_the_exhausted_call(sync_sleep: SleepRecorder) -> None:
    seen: list[ExhaustedCall] = []

    def degraded(call: ExhaustedCall) -> str:
        seen.append(call)
        return f"degraded after {call.attempts}: {type(call.error).__name__}"

    @retry_api_call(max_attempts=2, fallback=degraded, sleep=sync_sleep)
    def fetch(key: str) -> str:
        raise TimeoutError(key)

    assert fetch("k") == "degraded after 2: TimeoutError"
    (call,) = seen
    assert (call.kind, call.function, call.max_attempts) == ("api", "fetch", 2)
    assert isinstance(call.error, TimeoutError) and call.result is None


def test_a_retried_result_reaches_the_fallback(sync_sleep: SleepRecorder) -> None:
    @retry_api_call(
        retry=tenacity.retry_if_result(lambda status: status == 503),
        fallback=lambda call: ("stale", call.result),
        sleep=sync_sleep,
    )
    def status() -> object:  # the fallback's answer is not an int: the type says so
        return 503

    assert status() == ("stale", 503)


def test_an_error_that_is_not_retried_is_not_answered(sync_sleep: SleepRecorder) -> None:
    answered: list[object] = []

    @retry_worker_operation(fallback=answered.append, sleep=sync_sleep)
    def parse() -> None:
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        parse()
    assert answered == []


def test_a_raising_fallback_raises_to_the_caller_chained_to_the_last_error(
    sync_sleep: SleepRecorder,
) -> None:
    def decline(call: ExhaustedCall) -> object:
        raise LookupError("no cached copy either")

    wrapped = retry_worker_operation(fallback=decline, sleep=sync_sleep)(down)
    with pytest.raises(LookupError) as raised:
        wrapped()
    assert isinstance(raised.value.__context__, ConnectionError)


def test_a_fallback_may_decline_by_re_raising_the_error(sync_sleep: SleepRecorder) -> None:
    error = ConnectionError("gone")

    def only_for_timeouts(call: ExhaustedCall) -> object:
        if isinstance(call.error, TimeoutError):
            return "late"
        assert call.error is not None
        raise call.error

    @retry_worker_operation(fallback=only_for_timeouts, sleep=sync_sleep)
    def fetch() -> None:
        raise error

    with pytest.raises(ConnectionError) as raised:
        fetch()
    assert raised.value is error


def test_the_exhausted_hooks_run_before_the_fallback(sync_sleep: SleepRecorder) -> None:
    order: list[str] = []
    wrapped = retry_worker_operation(
        max_attempts=1,
        sleep=sync_sleep,
        on_exhausted=lambda call: order.append("hook"),
        fallback=lambda call: order.append("fallback"),
    )(down)
    wrapped()
    assert order == ["hook", "fallback"]


# --- async -------------------------------------------------------------------------------------


def test_async_functions_and_async_fallbacks(async_sleep: AsyncSleepRecorder) -> None:
    async def from_cache(call: ExhaustedCall) -> str:
        await asyncio.sleep(0)
        return f"cache:{call.function}"

    @retry_storage_operation(fallback=from_cache, sleep=async_sleep)
    async def load() -> str:
        raise ConnectionResetError("reset")

    @retry_storage_operation(fallback=0, sleep=async_sleep)
    async def count() -> int:
        raise ConnectionResetError("reset")

    assert run_virtual(load()) == "cache:load"
    assert run_virtual(count()) == 0


def test_an_async_fallback_for_a_sync_function_is_refused_at_decoration() -> None:
    async def later(call: ExhaustedCall) -> str:
        return "never run"

    with pytest.raises(TypeError, match=r"fallback: .*later is async"):
        retry_worker_operation(fallback=later)(down)


def test_execute_with_retry_takes_a_fallback(async_sleep: AsyncSleepRecorder) -> None:
    async def main() -> object:
        return await execute_with_retry(
            down, "arg", operation="api", fallback="default", sleep=async_sleep
        )

    assert run_virtual(main()) == "default"
    assert len(async_sleep.waits) == 3


# --- process-wide ------------------------------------------------------------------------------


def test_a_process_wide_fallback_answers_every_function_and_a_kind_wins(
    sync_sleep: SleepRecorder,
) -> None:
    worker = retry_worker_operation(max_attempts=1, sleep=sync_sleep)(down)
    api = retry_api_call(max_attempts=1, sleep=sync_sleep)(down)
    own = retry_api_call(max_attempts=1, sleep=sync_sleep, fallback="own")(down)
    with pytest.raises(ConnectionError):
        worker()
    set_fallback(lambda call: f"any:{call.kind}")
    set_fallback("api only", kind="api")
    assert worker() == "any:worker"
    assert api() == "api only"
    assert own() == "own"  # the function's own wins
    remove_fallback(kind="api")
    assert api() == "any:api"
    remove_fallback()
    with pytest.raises(ConnectionError):
        api()
    remove_fallback()  # removing one that is not there is harmless


def test_a_process_wide_fallback_answers_async_calls_too(async_sleep: AsyncSleepRecorder) -> None:
    set_fallback([], kind="storage")

    async def main() -> object:
        return await execute_with_retry(down, operation="storage", sleep=async_sleep)

    assert run_virtual(main()) == []


def test_set_fallback_refuses_what_it_cannot_use() -> None:
    async def later(call: ExhaustedCall) -> None:
        return None

    with pytest.raises(TypeError, match=r"set_fallback: .*async"):
        set_fallback(later)
    with pytest.raises(ValueError, match="unknown operation type 'db'"):
        set_fallback(1, kind="db")


def test_a_process_wide_hook_still_hears_a_call_a_fallback_answered(
    sync_sleep: SleepRecorder,
) -> None:
    heard: list[Any] = []
    add_exhausted_hook(heard.append)
    try:
        assert retry_worker_operation(fallback="one", sleep=sync_sleep)(down)() == "one"
    finally:
        remove_exhausted_hook(heard.append)
    assert len(heard) == 1 and isinstance(heard[0].error, ConnectionError)
