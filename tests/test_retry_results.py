"""Retry on results: tenacity's own result strategies through the decorators and
``execute_with_retry``, sync and async, with injected sleeps (nothing really sleeps).

A result the retry strategy retries is a failed attempt like an exception: retried, logged,
counted, hooked, heard by the guards as a failure; a call that gives up on one raises
tenacity's ``RetryError`` holding it, as tenacity itself does with ``reraise=True``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
import tenacity
import tenacity.asyncio
from hypothesis import given, settings
from hypothesis import strategies as st
from tenacity import (
    retry_if_exception_type,
    retry_if_not_result,
    retry_if_result,
    stop_after_attempt,
)

from retrysim.retry import (
    CircuitOpenError,
    ExhaustedCall,
    RetriedResult,
    execute_with_retry,
    retry_api_call,
    retry_metrics,
    retry_storage_operation,
    retry_worker_operation,
)
from retrysim.retry.guards import GuardSpec
from retrysim.sim.aio import run_virtual
from tests.conftest import AsyncSleepRecorder, SleepRecorder

UNAVAILABLE = retry_if_result(lambda status: status == 503)


class Answers:
    """A dependency that answers the queued outcomes in order (an exception is raised), then
    ``last`` for ever; counts its calls."""

    def __init__(self, *outcomes: object, last: object = 200) -> None:
        self.outcomes = list(outcomes)
        self.last = last
        self.calls = 0

    def __call__(self) -> object:
        self.calls += 1
        outcome = self.outcomes.pop(0) if self.outcomes else self.last
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


# --- the issue's example ------------------------------------------------------------------


def test_the_issues_example_retries_and_succeeds_sync(sync_sleep: SleepRecorder) -> None:
    answers = Answers(503, 503)

    @retry_api_call(retry=tenacity.retry_if_result(lambda r: r == 503), sleep=sync_sleep)
    def fetch() -> object:
        return answers()

    assert fetch() == 200
    assert answers.calls == 3
    assert len(sync_sleep.waits) == 2


def test_the_issues_example_retries_and_succeeds_async(async_sleep: AsyncSleepRecorder) -> None:
    answers = Answers(503, 503)

    @retry_api_call(retry=tenacity.retry_if_result(lambda r: r == 503), sleep=async_sleep)
    async def fetch() -> object:
        await asyncio.sleep(0)
        return answers()

    assert run_virtual(fetch()) == 200
    assert answers.calls == 3
    assert len(async_sleep.waits) == 2


def test_execute_with_retry_retries_results(async_sleep: AsyncSleepRecorder) -> None:
    answers = Answers(503)

    async def fetch(path: str) -> object:
        assert path == "/status"
        return answers()

    result = run_virtual(
        execute_with_retry(fetch, "/status", operation="api", retry=UNAVAILABLE, sleep=async_sleep)
    )
    assert result == 200
    assert answers.calls == 2
    assert len(async_sleep.waits) == 1


# --- tenacity's strategies and their combinations --------------------------------------------


def test_retry_if_not_result_retries_until_the_predicate_holds(sync_sleep: SleepRecorder) -> None:
    answers = Answers(None, None, last={"id": 7})

    @retry_worker_operation(retry=retry_if_not_result(lambda r: r is not None), sleep=sync_sleep)
    def lookup() -> object:
        return answers()

    assert lookup() == {"id": 7}
    assert answers.calls == 3


@pytest.mark.parametrize("use_async", [False, True])
def test_an_exception_or_a_result_strategy_retries_both(
    use_async: bool, sync_sleep: SleepRecorder, async_sleep: AsyncSleepRecorder
) -> None:
    answers = Answers(ConnectionError("refused"), 503, ConnectionResetError("reset"), 503)
    either = retry_if_exception_type(ConnectionError) | UNAVAILABLE
    if use_async:

        @retry_storage_operation(retry=either, sleep=async_sleep)
        async def call_async() -> object:
            return answers()

        assert run_virtual(call_async()) == 200
    else:
        call_sync = retry_storage_operation(retry=either, sleep=sync_sleep)(answers)
        assert call_sync() == 200
    assert answers.calls == 5  # storage: 5 attempts, the last one answers


def test_an_exception_the_combination_does_not_name_fails_at_once(
    sync_sleep: SleepRecorder,
) -> None:
    answers = Answers(503, ValueError("bad request"))
    either = retry_if_exception_type(ConnectionError) | UNAVAILABLE
    call = retry_storage_operation(retry=either, sleep=sync_sleep)(answers)
    with pytest.raises(ValueError, match="bad request"):
        call()
    assert answers.calls == 2
    assert retry_metrics()[_key(answers)].non_retryable == 1


def test_both_strategies_must_agree_with_and(sync_sleep: SleepRecorder) -> None:
    """``retry_if_result(...) & retry_if_not_result(...)``: retried only when both say so."""
    answers = Answers(503, 502, 503, last=502)
    both = UNAVAILABLE & retry_if_not_result(lambda r: r == 502)
    call = retry_storage_operation(retry=both, sleep=sync_sleep)(answers)
    assert call() == 502  # 503 retried, 502 accepted
    assert answers.calls == 2


def test_tenacitys_async_result_strategy_is_awaited(async_sleep: AsyncSleepRecorder) -> None:
    """``tenacity.asyncio.retry_if_result`` with an async predicate (tenacity awaits it)."""
    answers = Answers(503, 503)

    async def unavailable(status: object) -> bool:
        await asyncio.sleep(0)
        return status == 503

    @retry_api_call(retry=tenacity.asyncio.retry_if_result(unavailable), sleep=async_sleep)
    async def fetch() -> object:
        return answers()

    assert run_virtual(fetch()) == 200
    assert answers.calls == 3


def test_an_async_result_strategy_is_awaited_beside_a_guard(
    async_sleep: AsyncSleepRecorder,
) -> None:
    """With a breaker (any guard), the policy adds "never retry a refusal" to the retry; an
    async strategy must still be awaited, or its coroutine reads as "retry" and every result,
    good ones too, is retried until the attempts run out."""
    answers = Answers(503)

    async def unavailable(status: object) -> bool:
        await asyncio.sleep(0)
        return status == 503

    @retry_api_call(
        retry=tenacity.asyncio.retry_if_result(unavailable),
        breaker={"enabled": True, "failure_threshold": 5},
        sleep=async_sleep,
    )
    async def fetch() -> object:
        return answers()

    assert run_virtual(fetch()) == 200  # 503 retried, 200 accepted
    assert answers.calls == 2


# --- giving up on a result -------------------------------------------------------------------


def tenacitys_own(answers: Answers, attempts: int) -> tenacity.RetryError:
    """What plain tenacity with ``reraise=True`` raises when it gives up on a result."""
    retrying = tenacity.Retrying(
        stop=stop_after_attempt(attempts),
        retry=UNAVAILABLE,
        reraise=True,
        sleep=lambda _: None,
    )
    with pytest.raises(tenacity.RetryError) as raised:
        retrying(answers)
    return raised.value


def test_giving_up_on_a_result_raises_what_tenacity_raises(sync_sleep: SleepRecorder) -> None:
    hook: list[ExhaustedCall] = []
    theirs = tenacitys_own(Answers(503, 503, 503), 3)

    @retry_worker_operation(retry=UNAVAILABLE, sleep=sync_sleep, on_exhausted=hook.append)
    def fetch() -> object:
        return 503

    with pytest.raises(tenacity.RetryError) as raised:
        fetch()
    ours = raised.value
    assert type(ours) is type(theirs)
    assert ours.last_attempt.result() == theirs.last_attempt.result() == 503
    assert ours.last_attempt.attempt_number == theirs.last_attempt.attempt_number == 3
    (info,) = hook
    assert (info.error, info.result, info.attempts) == (None, 503, 3)


def test_giving_up_on_a_result_async_and_execute_with_retry(
    async_sleep: AsyncSleepRecorder,
) -> None:
    hook: list[ExhaustedCall] = []

    async def fetch() -> int:
        return 503

    async def main() -> None:
        with pytest.raises(tenacity.RetryError) as raised:
            await execute_with_retry(
                fetch,
                operation="api",
                retry=UNAVAILABLE,
                sleep=async_sleep,
                on_exhausted=hook.append,
            )
        assert raised.value.last_attempt.result() == 503

    run_virtual(main())
    assert len(async_sleep.waits) == 3  # api: 4 attempts
    assert [(i.kind, i.error, i.result) for i in hook] == [("api", None, 503)]


# --- counters and logs -----------------------------------------------------------------------


def _key(func: Callable[..., Any]) -> str:
    return f"{func.__module__}.{type(func).__qualname__}"


def test_a_retried_result_is_counted_as_a_failed_attempt_and_a_retry(
    sync_sleep: SleepRecorder,
) -> None:
    answers = Answers(503, ConnectionError("refused"), 503)
    either = retry_if_exception_type(ConnectionError) | UNAVAILABLE
    call = retry_storage_operation(retry=either, sleep=sync_sleep)(answers)
    assert call() == 200
    counts = retry_metrics()[_key(answers)]
    assert (counts.calls, counts.attempts, counts.retries) == (1, 4, 3)
    assert dict(counts.failures_by_type) == {"RetriedResult": 2, "ConnectionError": 1}
    assert (counts.successes, counts.successes_after_retry, counts.exhausted) == (1, 1, 0)
    assert counts.wait_seconds == pytest.approx(sum(sync_sleep.waits))


def test_giving_up_on_a_result_is_counted_as_exhausted(sync_sleep: SleepRecorder) -> None:
    answers = Answers(last=503)
    call = retry_worker_operation(retry=UNAVAILABLE, sleep=sync_sleep)(answers)
    with pytest.raises(tenacity.RetryError):
        call()
    counts = retry_metrics()[_key(answers)]
    assert (counts.attempts, counts.retries, counts.exhausted) == (3, 2, 1)
    assert (counts.successes, counts.non_retryable) == (0, 0)


def test_results_in_log_lines_are_arguments_never_templates(
    caplog: pytest.LogCaptureFixture, sync_sleep: SleepRecorder
) -> None:
    caplog.set_level(logging.INFO, logger="retrysim.retry")
    tricky = {"status": "%s %d {0} {x}", "body": "x" * 10_000}

    @retry_worker_operation(retry=retry_if_result(lambda r: isinstance(r, dict)), sleep=sync_sleep)
    def fetch() -> object:
        return tricky

    with pytest.raises(tenacity.RetryError):
        fetch()
    messages = [r.getMessage() for r in caplog.records]
    retried = [m for m in messages if m.startswith("Retry attempt ")]
    assert len(retried) == 2
    assert all("returned a result the retry strategy retries" in m for m in retried)
    assert all("%s %d {0} {x}" in m for m in retried)  # shown as is
    assert all(len(m) < 400 for m in messages), "a huge result is shown shortened"
    (final,) = [m for m in messages if m.startswith("Retry attempts exhausted")]
    assert "after 3/3 attempts" in final and "{0}" in final


# --- the guards hear a retried result as a failure -----------------------------------------


class Heard:
    """A guard that records what it was told after each attempt."""

    def __init__(self) -> None:
        self.outcomes: list[BaseException | None] = []

    def before_attempt(self, now: float, attempt: int) -> BaseException | None:
        return None

    def after_outcome(self, now: float, error: BaseException | None) -> None:
        self.outcomes.append(error)


def test_guards_hear_a_retried_result_as_a_failure_and_an_accepted_one_as_success(
    sync_sleep: SleepRecorder,
) -> None:
    heard = Heard()
    answers = Answers(503, ConnectionError("refused"), 503)
    either = retry_if_exception_type(ConnectionError) | UNAVAILABLE
    guards = [GuardSpec("heard", "call", lambda: heard)]
    call = retry_storage_operation(retry=either, guards=guards, sleep=sync_sleep)(answers)
    assert call() == 200
    kinds = [type(o).__name__ if o is not None else None for o in heard.outcomes]
    assert kinds == ["RetriedResult", "ConnectionError", "RetriedResult", None]
    first = heard.outcomes[0]
    assert isinstance(first, RetriedResult) and first.result == 503


def test_retried_results_open_a_breaker_and_accepted_ones_close_it() -> None:
    now = {"t": 0.0}
    answers = Answers(503, 503, last=200)
    breaker = {"enabled": True, "failure_threshold": 2, "recovery_timeout": 5.0, "name": "res"}

    @retry_api_call(max_attempts=1, retry=UNAVAILABLE, breaker=breaker, clock=lambda: now["t"])
    def fetch() -> object:
        return answers()

    for _ in range(2):  # one attempt each: the retried 503 is a failure, then the call gives up
        with pytest.raises(tenacity.RetryError):
            fetch()
    with pytest.raises(CircuitOpenError):
        fetch()  # two failures in a row: open
    assert answers.calls == 2
    now["t"] = 5.0
    assert fetch() == 200  # the probe's 200 is a success: closed again
    assert fetch() == 200


# --- a law -------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    statuses=st.lists(st.sampled_from([200, 500, 503]), min_size=1, max_size=8),
    max_attempts=st.integers(1, 6),
    use_async=st.booleans(),
)
def test_attempts_law_for_results(statuses: list[int], max_attempts: int, use_async: bool) -> None:
    """Attempts = the first accepted answer's position, capped by max_attempts; the outcome is
    that answer, or RetryError holding the last 503."""
    answers = Answers(*statuses, last=200)
    options: dict[str, Any] = {"max_attempts": max_attempts, "retry": UNAVAILABLE}
    accepted = next((i for i, s in enumerate([*statuses, 200]) if s != 503), len(statuses))
    expected_attempts = min(accepted + 1, max_attempts)
    if use_async:
        sleeper = AsyncSleepRecorder()

        @retry_api_call(**options, sleep=sleeper)
        async def call_async() -> object:
            return answers()

        def call() -> object:
            return run_virtual(call_async())
    else:
        sleeper_sync = SleepRecorder()
        call = retry_api_call(**options, sleep=sleeper_sync)(answers)
    if accepted + 1 <= max_attempts:
        assert call() == [*statuses, 200][accepted]
    else:
        with pytest.raises(tenacity.RetryError) as raised:
            call()
        assert raised.value.last_attempt.result() == 503
    assert answers.calls == expected_attempts
