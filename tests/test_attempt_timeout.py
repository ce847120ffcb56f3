"""``attempt_timeout``: each attempt of a coroutine bounded by ``asyncio.timeout``; a sync
function refused (explicitly) or left unbounded with one warning (from a setting).

Every test runs on the virtual-time loop: an attempt that hangs for an hour costs no wall time.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

import pytest

from retrysim.retry import (
    ExhaustedCall,
    SettingsError,
    execute_with_retry,
    load_settings,
    reload_settings,
    retry_api_call,
    retry_metrics,
    retry_scheduler_operation,
    retry_storage_operation,
    retry_worker_operation,
)
from retrysim.sim.aio import run_virtual

HOUR = 3600.0
T = TypeVar("T")


def timed(call: Awaitable[T]) -> tuple[T, float]:
    """``call`` awaited on a fresh virtual-time loop: (its result, the virtual seconds it took)."""

    async def main() -> tuple[T, float]:
        result = await call
        return result, asyncio.get_running_loop().time()

    return run_virtual(main())


def test_an_async_function_that_hangs_is_retried() -> None:
    """The issue's done-when: attempt_timeout=0.5 and a hang, retried to success."""
    calls = 0

    @retry_api_call(attempt_timeout=0.5, min_wait=1.0, profile="exponential")
    async def fetch() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(HOUR)  # hangs
        return "ok"

    started = time.perf_counter()
    result, virtual = timed(fetch())
    assert (result, calls) == ("ok", 2)
    assert virtual == pytest.approx(0.5 + 1.0)  # the timed-out attempt, then the 1 s wait
    assert time.perf_counter() - started < 1.0
    counts = retry_metrics()[f"{__name__}.{fetch.__qualname__}"]
    assert dict(counts.failures_by_type) == {"TimeoutError": 1}
    assert (counts.retries, counts.successes_after_retry) == (1, 1)


def test_every_attempt_timing_out_exhausts_with_a_builtin_timeout_error() -> None:
    hook: list[ExhaustedCall] = []

    @retry_worker_operation(
        attempt_timeout=2.0, min_wait=0.0, profile="exponential", on_exhausted=hook.append
    )
    async def stuck() -> None:
        await asyncio.sleep(HOUR)

    async def main() -> float:
        with pytest.raises(TimeoutError) as raised:
            await stuck()
        assert type(raised.value) is TimeoutError  # builtin, so every transient rule retries it
        assert str(raised.value) == "attempt 3 timed out after 2s"
        assert isinstance(raised.value.__cause__, TimeoutError)  # asyncio's, with its traceback
        return asyncio.get_running_loop().time()

    assert run_virtual(main()) == pytest.approx(3 * 2.0)
    (info,) = hook
    assert info.attempts == 3 and isinstance(info.error, TimeoutError)


def test_a_timed_out_attempt_is_cancelled_not_left_running() -> None:
    events: list[str] = []

    @retry_storage_operation(attempt_timeout=1.0, max_attempts=2, min_wait=0.0)
    async def slow() -> None:
        try:
            await asyncio.sleep(HOUR)
        except asyncio.CancelledError:
            events.append("cancelled")
            raise
        events.append("finished")  # pragma: no cover - must never happen

    async def main() -> int:
        with pytest.raises(TimeoutError):
            await slow()
        return len(asyncio.all_tasks())

    assert run_virtual(main()) == 1  # only main itself is left
    assert events == ["cancelled", "cancelled"]


def test_the_functions_own_timeout_error_is_passed_on_unchanged() -> None:
    own = TimeoutError("the client's own read timeout")

    @retry_scheduler_operation(attempt_timeout=5.0, max_attempts=1)
    async def read() -> None:
        raise own

    async def main() -> None:
        with pytest.raises(TimeoutError) as raised:
            await read()
        assert raised.value is own

    run_virtual(main())


def test_a_fast_attempt_is_not_affected() -> None:
    @retry_api_call(attempt_timeout=0.5)
    async def quick() -> str:
        await asyncio.sleep(0.49)
        return "in time"

    assert run_virtual(quick()) == "in time"


def test_execute_with_retry_bounds_each_attempt() -> None:
    calls = 0

    async def fetch(url: str) -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            await asyncio.sleep(HOUR)
        return url

    result, virtual = timed(
        execute_with_retry(
            fetch,
            "http://x",
            operation="api",
            attempt_timeout=0.25,
            min_wait=0.0,
            profile="exponential",
        )
    )
    assert (result, calls) == ("http://x", 3)
    assert virtual == pytest.approx(0.5)


# --- sync functions --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "decorator",
    [retry_worker_operation, retry_storage_operation, retry_scheduler_operation, retry_api_call],
)
def test_an_explicit_timeout_on_a_sync_function_is_refused_at_decoration(decorator: Any) -> None:
    def load(key: str) -> str:
        return key

    with pytest.raises(TypeError) as raised:
        decorator(attempt_timeout=1.0)(load)
    message = str(raised.value)
    assert "\n" not in message
    assert "attempt_timeout" in message and "load" in message and "sync function" in message
    assert "client library a timeout of its own" in message


def test_a_timeout_from_the_settings_leaves_a_sync_function_unbounded_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="retrysim.retry")
    monkeypatch.setenv("RETRY__API_ATTEMPT_TIMEOUT", "0.5")
    reload_settings()

    @retry_api_call  # decorating works: the setting is read at every call
    def ping() -> str:
        return "pong"

    assert ping() == "pong"
    assert ping() == "pong"
    (record,) = [r for r in caplog.records if "attempt_timeout" in r.getMessage()]
    message = record.getMessage()
    assert "RETRY__API_ATTEMPT_TIMEOUT" in message and "ping" in message
    assert "0.5s" in message


def test_a_timeout_from_the_settings_bounds_coroutines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRY__API_ATTEMPT_TIMEOUT", "0.5")
    reload_settings()

    @retry_api_call(max_attempts=1)
    async def hang() -> None:
        await asyncio.sleep(HOUR)

    async def main() -> float:
        with pytest.raises(TimeoutError, match=r"after 0\.5s"):
            await hang()
        return asyncio.get_running_loop().time()

    assert run_virtual(main()) == pytest.approx(0.5)
    assert hang.retry_policy().options.attempt_timeout == 0.5  # type: ignore[attr-defined]


def test_execute_with_retry_warns_once_that_a_sync_functions_work_is_unbounded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="retrysim.retry")

    def compute() -> int:
        return 42

    async def main() -> None:
        for _ in range(2):
            assert await execute_with_retry(compute, attempt_timeout=1.0) == 42

    run_virtual(main())
    warnings = [r.getMessage() for r in caplog.records if "does not bound" in r.getMessage()]
    assert len(warnings) == 1 and "compute" in warnings[0]


# --- values ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -1.0, math.nan, math.inf, 2e9])
def test_a_bad_timeout_is_refused_naming_the_option(bad: float) -> None:
    with pytest.raises(ValueError, match="attempt_timeout"):
        retry_api_call(attempt_timeout=bad)


@pytest.mark.parametrize("bad", ["0", "-2", "soon", "nan"])
def test_a_bad_timeout_setting_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    monkeypatch.setenv("RETRY__WORKER_ATTEMPT_TIMEOUT", bad)
    with pytest.raises(SettingsError, match="RETRY__WORKER_ATTEMPT_TIMEOUT"):
        load_settings(None)


def test_no_timeout_by_default_for_every_operation() -> None:
    settings = load_settings(None)
    for operation in ("worker", "storage", "scheduler", "api"):
        assert getattr(settings, f"{operation}_attempt_timeout") is None
