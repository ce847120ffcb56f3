"""The four operation decorators and execute_with_retry, sync and async, with injected sleeps."""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import time
from typing import Any

import pytest
import tenacity
from hypothesis import given, settings
from hypothesis import strategies as st
from tenacity import retry_if_exception_type

from retrysim.retry import (
    ConflictError,
    RateLimitedError,
    RetrySettings,
    ServerError,
    SettingsError,
    build_policy,
    execute_with_retry,
    reload_settings,
    reset_retry_metrics,
    retry_api_call,
    retry_scheduler_operation,
    retry_storage_operation,
    retry_worker_operation,
    use_settings,
)
from retrysim.sim.aio import run_virtual

DECORATORS = {
    "worker": (retry_worker_operation, 3),
    "storage": (retry_storage_operation, 5),
    "scheduler": (retry_scheduler_operation, 3),
    "api": (retry_api_call, 4),
}


class Flaky:
    """Raises the queued exceptions in order, then returns ``result``; counts its calls."""

    def __init__(self, *errors: BaseException, result: object = "ok") -> None:
        self.errors = list(errors)
        self.result = result
        self.calls = 0
        self.raised: list[BaseException] = []

    def __call__(self, *args: object, **kwargs: object) -> object:
        self.calls += 1
        self.last_args = (args, kwargs)
        if self.errors:
            error = self.errors.pop(0)
            self.raised.append(error)
            raise error
        return self.result


# --- the seed's own unit test, verbatim -----------------------------------------------------


async def seed_test_retry_success_after_failure():
    """Test that operation succeeds after transient failure."""
    attempts = 0

    @retry_worker_operation(max_attempts=3, min_wait=0.1, max_wait=0.5)
    async def flaky_operation():
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise ConnectionError("Transient failure")
        return "success"

    result = await flaky_operation()
    assert result == "success"
    assert attempts == 3


def test_seed_example_passes_and_really_waits_in_virtual_time() -> None:
    async def main() -> float:
        await seed_test_retry_success_after_failure()
        return asyncio.get_running_loop().time()

    started = time.perf_counter()
    virtual = run_virtual(main())
    wall = time.perf_counter() - started
    # documented profile, jitter 1.0: retry 1 waits in [0.1, 0.5], retry 2 in [0.2, 0.5]
    assert 0.3 <= virtual <= 1.0
    assert wall < 0.25


# --- wrapping -------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", sorted(DECORATORS))
def test_wrapping_preserves_name_doc_and_signature(operation: str) -> None:
    decorator, _ = DECORATORS[operation]

    def load_task(task_id: int, *, timeout: float = 2.5) -> str:
        """Load one task."""
        return f"{task_id}:{timeout}"

    async def run_task(params: dict[str, int], retries: int = 0) -> None:
        """Run one task."""

    sync_wrapped = decorator()(load_task)
    async_wrapped = decorator(max_attempts=2)(run_task)
    for original, wrapped in ((load_task, sync_wrapped), (run_task, async_wrapped)):
        assert wrapped is not original
        assert wrapped.__name__ == original.__name__
        assert wrapped.__doc__ == original.__doc__
        assert wrapped.__qualname__ == original.__qualname__
        assert inspect.signature(wrapped) == inspect.signature(original)
    assert inspect.iscoroutinefunction(async_wrapped)
    assert not inspect.iscoroutinefunction(sync_wrapped)
    assert sync_wrapped(4, timeout=1.0) == "4:1.0"


def test_bare_decorator_form() -> None:
    flaky = Flaky(ConnectionError("a"))

    @retry_api_call
    async def call(x: int) -> object:
        return flaky(x)

    async def main() -> tuple[object, float]:
        return await call(1), asyncio.get_running_loop().time()

    result, virtual = run_virtual(main())
    assert result == "ok"
    assert flaky.calls == 2
    assert call.__name__ == "call"
    assert 1.0 <= virtual <= 2.0  # api: documented profile, min_wait 1.0, jitter 1.0


def test_unknown_option_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="max_attempt"):
        retry_worker_operation(max_attempt=3)


@pytest.mark.parametrize("bad", [{"max_attempts": 0}, {"min_wait": -1.0}, {"profile": "x"}])
def test_invalid_override_fails_at_decoration(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        retry_storage_operation(**bad)


@pytest.mark.parametrize("form", ["bare", "called", "called with options"])
def test_invalid_environment_fails_at_the_first_call_in_both_forms(
    monkeypatch: pytest.MonkeyPatch, form: str
) -> None:
    """The environment is read at call time: a bad variable must not crash an import."""
    monkeypatch.setenv("RETRY__WORKER_MAX_ATTEMPTS", "abc")
    flaky = Flaky()
    if form == "bare":
        wrapped = retry_worker_operation(flaky)
    elif form == "called":
        wrapped = retry_worker_operation()(flaky)
    else:
        wrapped = retry_worker_operation(min_wait=0.0)(flaky)
    with pytest.raises(SettingsError, match="RETRY__WORKER_MAX_ATTEMPTS"):
        wrapped()
    assert flaky.calls == 0
    monkeypatch.setenv("RETRY__WORKER_MAX_ATTEMPTS", "2")
    reload_settings()
    assert wrapped() == "ok"


def test_explicit_options_are_checked_at_decoration_without_reading_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RETRY__WORKER_MAX_ATTEMPTS", "abc")
    with pytest.raises(ValueError, match="max_attempts"):
        retry_worker_operation(max_attempts=0)
    with pytest.raises(TypeError, match="max_attempt"):
        retry_worker_operation(max_attempt=3)


def _generator() -> Any:
    yield 1


async def _async_generator() -> Any:
    yield 1


@pytest.mark.parametrize("operation", list(DECORATORS))
@pytest.mark.parametrize("func", [_generator, _async_generator], ids=["gen", "asyncgen"])
@pytest.mark.parametrize("form", ["bare", "called"])
def test_generator_functions_are_refused_at_decoration(
    operation: str, func: Any, form: str
) -> None:
    decorator, _ = DECORATORS[operation]
    with pytest.raises(TypeError, match=rf"{func.__name__}.*generator function"):
        if form == "bare":
            decorator(func)
        else:
            decorator()(func)


@pytest.mark.parametrize("func", [_generator, _async_generator], ids=["gen", "asyncgen"])
def test_execute_with_retry_refuses_generator_functions(func: Any) -> None:
    with pytest.raises(TypeError, match=rf"execute_with_retry.*{func.__name__}.*generator"):
        asyncio.run(execute_with_retry(func))


def test_decorated_methods_receive_self(sync_sleep, async_sleep) -> None:
    class Worker:
        def __init__(self) -> None:
            self.flaky = Flaky(ConnectionError("x"), result="done")

        @retry_worker_operation(sleep=async_sleep, profile="exponential")
        async def run_task(self, params: dict[str, str]) -> object:
            return (self.flaky(params), params["id"])

        @retry_storage_operation(sleep=sync_sleep, profile="exponential")
        def load_task(self, task_id: str) -> object:
            return (self.flaky(task_id), task_id)

    worker = Worker()
    assert run_virtual(worker.run_task({"id": "t1"})) == ("done", "t1")
    assert worker.flaky.calls == 2
    worker.flaky = Flaky(TimeoutError("y"), result="row")
    assert worker.load_task("t2") == ("row", "t2")
    assert (async_sleep.waits, sync_sleep.waits) == ([1.0], [0.5])


# --- attempts per operation, follow settings ------------------------------------------------


@pytest.mark.parametrize("operation", sorted(DECORATORS))
def test_default_attempts_per_operation_sync(operation: str, sync_sleep) -> None:
    decorator, attempts = DECORATORS[operation]
    flaky = Flaky(*[ConnectionError(str(i)) for i in range(10)])
    wrapped = decorator(sleep=sync_sleep)(flaky)
    with pytest.raises(ConnectionError) as info:
        wrapped()
    assert flaky.calls == attempts
    assert info.value is flaky.raised[-1]
    assert len(sync_sleep.waits) == attempts - 1
    policy = build_policy(operation)
    for n, wait in enumerate(sync_sleep.waits, start=1):
        lo, hi = policy.wait_range(n)
        assert lo <= wait <= hi


@pytest.mark.parametrize("operation", sorted(DECORATORS))
def test_default_attempts_per_operation_async(operation: str, async_sleep) -> None:
    decorator, attempts = DECORATORS[operation]
    flaky = Flaky(*[TimeoutError(str(i)) for i in range(10)])

    @decorator(sleep=async_sleep)
    async def op() -> object:
        return flaky()

    with pytest.raises(TimeoutError) as info:
        run_virtual(op())
    assert flaky.calls == attempts
    assert info.value is flaky.raised[-1]
    assert len(async_sleep.waits) == attempts - 1


def test_env_profile_applies_to_decorated_function(
    monkeypatch: pytest.MonkeyPatch, sync_sleep
) -> None:
    flaky = Flaky(ConnectionError("a"), ConnectionError("b"), ConnectionError("c"))
    wrapped = retry_storage_operation(sleep=sync_sleep)(flaky)
    monkeypatch.setenv("RETRY__PROFILE", "exponential")
    monkeypatch.setenv("RETRY__STORAGE_MIN_WAIT", "0.25")
    reload_settings()
    assert wrapped() == "ok"
    assert sync_sleep.waits == [0.25, 0.5, 1.0]
    policy = wrapped.retry_policy()  # type: ignore[attr-defined]  # set on the wrapper at runtime
    assert policy.min_wait == 0.25


def test_policy_built_once_per_settings_and_rebuilt_after_a_reload(sync_sleep) -> None:
    """A decorated function builds its policy once per settings object (not at every call) and
    follows new settings at its next call."""
    use_settings(RetrySettings(storage_max_attempts=2))
    flaky = Flaky(*[ConnectionError(str(i)) for i in range(4)])
    wrapped = retry_storage_operation(min_wait=0.0, max_wait=0.0, sleep=sync_sleep)(flaky)
    first = wrapped.retry_policy()  # type: ignore[attr-defined]  # set on the wrapper at runtime
    with pytest.raises(ConnectionError):
        wrapped()
    assert flaky.calls == 2
    assert wrapped.retry_policy() is first  # type: ignore[attr-defined]
    use_settings(RetrySettings(storage_max_attempts=4))
    assert wrapped() == "ok"  # two more errors, then the third of four attempts succeeds
    assert flaky.calls == 5
    renewed = wrapped.retry_policy()  # type: ignore[attr-defined]
    assert renewed is not first
    assert (first.max_attempts, renewed.max_attempts) == (2, 4)


# --- explicit (falsy) overrides -------------------------------------------------------------


def test_max_attempts_one_means_one_attempt(sync_sleep, async_sleep) -> None:
    use_settings(RetrySettings(storage_max_attempts=5))
    flaky = Flaky(ConnectionError("x"), ConnectionError("y"))
    with pytest.raises(ConnectionError):
        retry_storage_operation(max_attempts=1, sleep=sync_sleep)(flaky)()
    assert flaky.calls == 1
    assert sync_sleep.waits == []

    async_flaky = Flaky(ConnectionError("x"))

    @retry_storage_operation(max_attempts=1, sleep=async_sleep)
    async def op() -> object:
        return async_flaky()

    with pytest.raises(ConnectionError):
        run_virtual(op())
    assert async_flaky.calls == 1
    assert async_sleep.waits == []


def test_min_wait_zero_wins(sync_sleep) -> None:
    flaky = Flaky(ConnectionError("a"), ConnectionError("b"), ConnectionError("c"))
    wrapped = retry_storage_operation(min_wait=0.0, profile="exponential", sleep=sync_sleep)(flaky)
    assert wrapped() == "ok"
    assert sync_sleep.waits == [0.0, 0.0, 0.0]


def test_overrides_win_over_settings(sync_sleep) -> None:
    use_settings(RetrySettings(api_max_attempts=9, api_min_wait=3.0, api_max_wait=30.0))
    flaky = Flaky(*[ConnectionError(str(i)) for i in range(10)])
    wrapped = retry_api_call(
        max_attempts=4, min_wait=0.5, max_wait=1.0, profile="exponential", sleep=sync_sleep
    )(flaky)
    with pytest.raises(ConnectionError):
        wrapped()
    assert flaky.calls == 4
    assert sync_sleep.waits == [0.5, 1.0, 1.0]


# --- which exceptions are retried -----------------------------------------------------------


@pytest.mark.parametrize("error", [ValueError("bad input"), ServerError("HTTP 503"), KeyError("k")])
def test_non_retryable_fails_at_once_sync(error: Exception, sync_sleep) -> None:
    flaky = Flaky(error)
    with pytest.raises(type(error)) as info:
        retry_api_call(sleep=sync_sleep)(flaky)()
    assert info.value is error
    assert flaky.calls == 1
    assert sync_sleep.waits == []


@pytest.mark.parametrize("error", [ValueError("bad input"), ServerError("HTTP 500")])
def test_non_retryable_fails_at_once_async(error: Exception, async_sleep) -> None:
    flaky = Flaky(error)

    @retry_worker_operation(sleep=async_sleep)
    async def run_task() -> object:
        return flaky()

    with pytest.raises(type(error)) as info:
        run_virtual(run_task())
    assert info.value is error
    assert flaky.calls == 1
    assert async_sleep.waits == []


def test_non_retryable_after_retryable_stops_immediately(sync_sleep) -> None:
    error = ValueError("now permanent")
    flaky = Flaky(ConnectionError("blip"), error, ConnectionError("never reached"))
    with pytest.raises(ValueError) as info:
        retry_storage_operation(sleep=sync_sleep)(flaky)()
    assert info.value is error
    assert flaky.calls == 2


@pytest.mark.parametrize(
    "error",
    [ConnectionResetError("reset"), TimeoutError(), RateLimitedError(), ConflictError()],
)
def test_transient_errors_are_retried_to_success(error: Exception, sync_sleep) -> None:
    flaky = Flaky(error)
    assert retry_scheduler_operation(sleep=sync_sleep)(flaky)() == "ok"
    assert flaky.calls == 2


def test_exhaustion_reraises_the_original_exception_sync(sync_sleep) -> None:
    errors = [ConnectionError(f"lost {i}") for i in range(3)]
    flaky = Flaky(*errors)
    with pytest.raises(ConnectionError) as info:
        retry_worker_operation(sleep=sync_sleep)(flaky)()
    assert info.value is errors[-1]
    assert not isinstance(info.value, tenacity.RetryError)
    assert type(info.value) is ConnectionError


def test_exhaustion_reraises_the_original_exception_async(async_sleep) -> None:
    errors = [TimeoutError(f"slow {i}") for i in range(4)]
    flaky = Flaky(*errors)

    @retry_api_call(sleep=async_sleep)
    async def call() -> object:
        return flaky()

    with pytest.raises(TimeoutError) as info:
        run_virtual(call())
    assert info.value is errors[-1]
    assert not isinstance(info.value, tenacity.RetryError)


def test_retry_accepts_a_tenacity_strategy(sync_sleep, async_sleep) -> None:
    flaky = Flaky(ValueError("v1"), ValueError("v2"))
    wrapped = retry_worker_operation(retry=retry_if_exception_type(ValueError), sleep=sync_sleep)(
        flaky
    )
    assert wrapped() == "ok"
    assert flaky.calls == 3

    conn = ConnectionError("not in the predicate")
    other = Flaky(conn)
    with pytest.raises(ConnectionError) as info:
        retry_worker_operation(retry=retry_if_exception_type(ValueError), sleep=sync_sleep)(other)()
    assert info.value is conn
    assert other.calls == 1

    async_flaky = Flaky(KeyError("k"))

    @retry_api_call(retry=retry_if_exception_type((KeyError, ConnectionError)), sleep=async_sleep)
    async def call() -> object:
        return async_flaky()

    assert run_virtual(call()) == "ok"
    assert async_flaky.calls == 2


def test_bindu_profile_retries_file_not_found_documented_does_not(sync_sleep) -> None:
    missing = Flaky(FileNotFoundError("/data/x"), FileNotFoundError("/data/x"))
    assert retry_storage_operation(profile="bindu", sleep=sync_sleep)(missing)() == "ok"
    assert missing.calls == 3

    error = FileNotFoundError("/data/y")
    missing = Flaky(error)
    with pytest.raises(FileNotFoundError) as info:
        retry_storage_operation(profile="documented", sleep=sync_sleep)(missing)()
    assert info.value is error
    assert missing.calls == 1


def test_cancellation_is_not_retried(async_sleep) -> None:
    flaky = Flaky(asyncio.CancelledError())

    @retry_worker_operation(sleep=async_sleep)
    async def op() -> object:
        return flaky()

    async def main() -> None:
        with pytest.raises(asyncio.CancelledError):
            await op()

    run_virtual(main())
    assert flaky.calls == 1


def test_respect_retry_after_waits_for_the_hint(sync_sleep) -> None:
    flaky = Flaky(RateLimitedError(retry_after=7.0), RateLimitedError(retry_after=None))
    wrapped = retry_api_call(profile="exponential", respect_retry_after=True, sleep=sync_sleep)(
        flaky
    )
    assert wrapped() == "ok"
    assert sync_sleep.waits == [7.0, 2.0]


@settings(max_examples=60, deadline=None)
@given(max_attempts=st.integers(1, 6), failures=st.integers(0, 8), use_async=st.booleans())
def test_attempt_law(make_sync_sleep, make_async_sleep, max_attempts, failures, use_async) -> None:
    """f transient failures then success: succeeds after f+1 attempts iff f < max_attempts."""
    reset_retry_metrics()
    errors = [ConnectionError(f"e{i}") for i in range(failures)]
    flaky = Flaky(*errors, result="fine")
    recorder = make_async_sleep() if use_async else make_sync_sleep()
    decorate = retry_worker_operation(
        max_attempts=max_attempts, min_wait=0.0, profile="exponential", sleep=recorder
    )
    if use_async:

        async def op() -> object:
            return flaky()

        call = lambda: run_virtual(decorate(op)())  # noqa: E731
    else:
        call = decorate(flaky)
    if failures < max_attempts:
        assert call() == "fine"
        assert flaky.calls == failures + 1
    else:
        with pytest.raises(ConnectionError) as info:
            call()
        assert info.value is errors[max_attempts - 1]
        assert flaky.calls == max_attempts
    assert len(recorder.waits) == flaky.calls - 1


def test_seeded_jitter_through_the_decorator(seed_jitter, sync_sleep) -> None:
    seed_jitter(2024)
    flaky = Flaky(*[ConnectionError(str(i)) for i in range(3)])
    # documented profile: min(max_wait, min_wait * 2^(n-1) + U(0, jitter))
    wrapped = retry_api_call(min_wait=0.5, max_wait=3.0, jitter=2.0, sleep=sync_sleep)(flaky)
    assert wrapped() == "ok"
    replay = random.Random(2024)
    expected = [min(3.0, 0.5 * 2 ** (n - 1) + replay.uniform(0, 2.0)) for n in (1, 2, 3)]
    assert sync_sleep.waits == pytest.approx(expected, rel=1e-12)


# --- execute_with_retry ---------------------------------------------------------------------


def test_execute_with_retry_sync_function(async_sleep) -> None:
    flaky = Flaky(ConnectionError("a"), ConnectionError("b"), result="created")
    result = run_virtual(
        execute_with_retry(
            flaky,
            "cfg",
            42,
            region="eu",
            max_attempts=5,
            min_wait=0.5,
            max_wait=5.0,
            profile="exponential",
            sleep=async_sleep,
        )
    )
    assert result == "created"
    assert flaky.calls == 3
    assert flaky.last_args == (("cfg", 42), {"region": "eu"})
    assert async_sleep.waits == [0.5, 1.0]


def test_execute_with_retry_async_function(async_sleep) -> None:
    flaky = Flaky(TimeoutError("t"), result="scheduler")
    seen: list[tuple[str, str]] = []

    async def create_scheduler(config: str, *, name: str) -> object:
        seen.append((config, name))
        await asyncio.sleep(0)
        return flaky()

    result = run_virtual(
        execute_with_retry(
            create_scheduler,
            "redis://",
            name="main",
            max_attempts=3,
            min_wait=1.0,
            max_wait=10.0,
            profile="exponential",
            sleep=async_sleep,
        )
    )
    assert result == "scheduler"
    assert seen == [("redis://", "main"), ("redis://", "main")]
    assert async_sleep.waits == [1.0]


def test_execute_with_retry_exhausts_with_original_error(async_sleep) -> None:
    errors = [ConnectionError(str(i)) for i in range(5)]
    flaky = Flaky(*errors)
    with pytest.raises(ConnectionError) as info:
        run_virtual(execute_with_retry(flaky, max_attempts=3, sleep=async_sleep))
    assert info.value is errors[2]
    assert flaky.calls == 3
    assert len(async_sleep.waits) == 2


def test_execute_with_retry_uses_operation_settings(async_sleep) -> None:
    flaky = Flaky(*[ConnectionError(str(i)) for i in range(9)])
    with pytest.raises(ConnectionError):
        run_virtual(execute_with_retry(flaky, operation="storage", sleep=async_sleep))
    assert flaky.calls == 5
    flaky = Flaky(*[ConnectionError(str(i)) for i in range(9)])
    with pytest.raises(ConnectionError):
        run_virtual(execute_with_retry(flaky, sleep=async_sleep))
    assert flaky.calls == 3  # worker by default


def test_execute_with_retry_non_retryable_and_custom_retry(async_sleep) -> None:
    error = ValueError("invalid")
    flaky = Flaky(error)
    with pytest.raises(ValueError) as info:
        run_virtual(execute_with_retry(flaky, max_attempts=4, sleep=async_sleep))
    assert info.value is error
    assert flaky.calls == 1
    flaky = Flaky(ValueError("once"))
    assert (
        run_virtual(
            execute_with_retry(
                flaky, retry=retry_if_exception_type(ValueError), min_wait=0.0, sleep=async_sleep
            )
        )
        == "ok"
    )
    assert flaky.calls == 2


def test_execute_with_retry_max_attempts_one(async_sleep) -> None:
    flaky = Flaky(ConnectionError("x"))
    with pytest.raises(ConnectionError):
        run_virtual(execute_with_retry(flaky, max_attempts=1, sleep=async_sleep))
    assert flaky.calls == 1


# --- logging --------------------------------------------------------------------------------


def retry_records(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "retrysim.retry"]


LOST = "ConnectionError: Database connection lost"
EXPECTED_SUCCESS_LOG = [
    (logging.WARNING, f"Retry attempt 1/3 for run_task failed: {LOST}"),
    (logging.INFO, "Waiting 0.8s before retry attempt 2/3"),
    (logging.WARNING, f"Retry attempt 2/3 for run_task failed: {LOST}"),
    (logging.INFO, "Waiting 1.6s before retry attempt 3/3"),
    (logging.INFO, "Retry succeeded on attempt 3/3 for run_task"),
]


def test_log_lines_sync(caplog: pytest.LogCaptureFixture, sync_sleep) -> None:
    caplog.set_level(logging.INFO, logger="retrysim.retry")
    flaky = Flaky(*[ConnectionError("Database connection lost")] * 2)

    @retry_worker_operation(min_wait=0.8, profile="exponential", sleep=sync_sleep)
    def run_task() -> object:
        return flaky()

    assert run_task() == "ok"
    assert retry_records(caplog) == EXPECTED_SUCCESS_LOG
    assert sync_sleep.waits == [0.8, 1.6]


def test_log_lines_async(caplog: pytest.LogCaptureFixture, async_sleep) -> None:
    caplog.set_level(logging.INFO, logger="retrysim.retry")
    flaky = Flaky(*[ConnectionError("Database connection lost")] * 2)

    @retry_worker_operation(min_wait=0.8, max_wait=10.0, profile="exponential", sleep=async_sleep)
    async def run_task() -> object:
        return flaky()

    assert run_virtual(run_task()) == "ok"
    assert retry_records(caplog) == EXPECTED_SUCCESS_LOG


def test_no_retry_no_success_log(caplog: pytest.LogCaptureFixture, sync_sleep) -> None:
    caplog.set_level(logging.DEBUG, logger="retrysim.retry")

    @retry_worker_operation(sleep=sync_sleep)
    def run_task() -> str:
        return "first time"

    assert run_task() == "first time"
    assert not any("Retry" in message for _, message in retry_records(caplog))


def test_exhaustion_log_line(caplog: pytest.LogCaptureFixture, sync_sleep) -> None:
    caplog.set_level(logging.INFO, logger="retrysim.retry")
    flaky = Flaky(*[ConnectionError("down")] * 3)

    @retry_worker_operation(min_wait=0.8, profile="exponential", sleep=sync_sleep)
    def run_task() -> object:
        return flaky()

    with pytest.raises(ConnectionError):
        run_task()
    records = retry_records(caplog)
    warnings = [m for level, m in records if level == logging.WARNING]
    assert warnings == [
        "Retry attempt 1/3 for run_task failed: ConnectionError: down",
        "Retry attempt 2/3 for run_task failed: ConnectionError: down",
    ]
    errors = [m for level, m in records if level == logging.ERROR]
    assert len(errors) == 1
    line = errors[0]
    assert "exhausted" in line.lower()
    assert "run_task" in line
    assert "3/3" in line
    assert line.endswith("ConnectionError: down")
    assert records[-1] == (logging.ERROR, line)
    assert not any("succeeded" in m for _, m in records)


@pytest.mark.parametrize("message", ["{}", "{x}", "%s", "%d", "bad {0!r} %(name)s 100% {", "}{"])
def test_format_characters_in_exception_text_never_break_logging(
    caplog: pytest.LogCaptureFixture, sync_sleep, message: str
) -> None:
    caplog.set_level(logging.INFO, logger="retrysim.retry")
    errors = [ConnectionError(message) for _ in range(3)]
    flaky = Flaky(*errors)

    @retry_worker_operation(min_wait=0.8, profile="exponential", sleep=sync_sleep)
    def run_task() -> object:
        return flaky()

    with pytest.raises(ConnectionError) as info:
        run_task()
    assert info.value is errors[-1]
    assert flaky.calls == 3
    records = retry_records(caplog)
    assert records[0] == (
        logging.WARNING,
        f"Retry attempt 1/3 for run_task failed: ConnectionError: {message}",
    )
    assert records[-1][1].endswith(f"ConnectionError: {message}")
    assert f"ConnectionError: {message}" in caplog.text


def test_format_characters_async_and_success(caplog: pytest.LogCaptureFixture, async_sleep) -> None:
    caplog.set_level(logging.INFO, logger="retrysim.retry")
    flaky = Flaky(TimeoutError("{task_id} %s"), result="ok")

    @retry_storage_operation(sleep=async_sleep)
    async def load_task() -> object:
        return flaky()

    assert run_virtual(load_task()) == "ok"
    assert retry_records(caplog)[0] == (
        logging.WARNING,
        "Retry attempt 1/5 for load_task failed: TimeoutError: {task_id} %s",
    )
