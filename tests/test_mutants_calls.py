"""Tests written for mutants of ``retrysim/retry/calls.py`` that its own tests let survive
(a full mutation run, ``python scripts/mutate.py --module calls``): each pins a behaviour a
plausible wrong edit would change."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from collections.abc import Hashable, Iterator, Sequence
from typing import Any

import pytest
import tenacity
from tenacity import RetryCallState

from retrysim.retry import (
    BreakerChange,
    ExhaustedCall,
    GuardSpec,
    execute_with_retry,
    retry_api_call,
    retry_metrics,
    retry_worker_operation,
)
from retrysim.retry.guards import PROCESS_GUARDS, GuardChain, GuardStates
from tests.test_attempt_timeout import timed


class Clock:
    """A clock that only the injected sleep moves, starting where the test says."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Told:
    """A guard that allows every attempt and remembers each outcome it is told."""

    def __init__(self) -> None:
        self.outcomes: list[BaseException | None] = []

    def before_attempt(self, now: float, attempt: int) -> BaseException | None:
        return None

    def after_outcome(self, now: float, error: BaseException | None) -> None:
        self.outcomes.append(error)


@pytest.fixture(autouse=True)
def fresh_guards() -> Iterator[None]:
    PROCESS_GUARDS.clear()
    yield
    PROCESS_GUARDS.clear()


def counts(func: Any) -> Any:
    """The counters of a decorated function (keyed by module and qualname)."""
    return retry_metrics()[f"{__name__}.{func.__qualname__}"]


def warnings_about(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


# --- calls: the library's logger stays quiet -------------------------------------------------


def test_a_process_without_logging_configured_hears_nothing_from_a_failing_call() -> None:
    """A library must not print: with no logging configured, a call that retries and gives up
    writes nothing to stderr (no last-resort handler output)."""
    script = (
        "from retrysim.retry import retry_worker_operation\n"
        "@retry_worker_operation(max_attempts=2, min_wait=0.0, sleep=lambda s: None)\n"
        "def f():\n"
        "    raise ConnectionError('down')\n"
        "try:\n"
        "    f()\n"
        "except ConnectionError:\n"
        "    print('raised')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "raised"
    assert done.stderr == ""


# --- calls: timing a call --------------------------------------------------------------------


def test_a_calls_duration_is_measured_from_its_first_clock_reading() -> None:
    """On a clock that does not start at zero, the exhausted call's elapsed time and the
    counted duration are the time that passed (one 1 s wait), not a sum of clock readings."""
    clock = Clock(start=100.0)
    seen: list[ExhaustedCall] = []

    @retry_worker_operation(
        max_attempts=2,
        min_wait=1.0,
        profile="exponential",
        sleep=clock.sleep,
        clock=clock,
        on_exhausted=seen.append,
    )
    def fetch() -> str:
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        fetch()
    assert [call.elapsed for call in seen] == [1.0]
    found = counts(fetch)
    assert (found.duration_count, found.duration_sum) == (1, 1.0)


def test_a_call_whose_clock_fails_at_once_is_counted_as_taking_no_time() -> None:
    """A clock that raises before any reading: the caller gets the clock's error, and the
    call is still counted as finished, with a duration of zero (nothing was measured)."""

    def broken_clock() -> float:
        raise RuntimeError("no clock")

    @retry_worker_operation(max_attempts=2, min_wait=0.0, clock=broken_clock)
    def fetch() -> str:
        return "never"

    with pytest.raises(RuntimeError, match="no clock"):
        fetch()
    found = counts(fetch)
    assert (found.duration_count, found.duration_sum) == (1, 0.0)


# --- calls: breaker changes reach the hook when they happen ----------------------------------


def test_breaker_changes_reach_the_hook_before_what_follows_them() -> None:
    """The breaker opening on a failure is told before the call gives up; its half-opening on
    the next call is told before the function runs, and its closing after."""
    clock = Clock()
    events: list[str] = []

    def on_change(change: BreakerChange) -> None:
        events.append(change.state)

    @retry_api_call(
        max_attempts=1,
        clock=clock,
        sleep=clock.sleep,
        breaker={"enabled": True, "failure_threshold": 1, "recovery_timeout": 10.0, "name": "b"},
        on_breaker_change=on_change,
        on_exhausted=lambda call: events.append("exhausted"),
    )
    def fetch(fail: bool) -> str:
        events.append("body")
        if fail:
            raise ConnectionError("down")
        return "ok"

    with pytest.raises(ConnectionError):
        fetch(True)
    assert events == ["body", "open", "exhausted"]
    events.clear()
    clock.now = 11.0
    assert fetch(False) == "ok"
    assert events == ["half_open", "body", "closed"]


# --- calls: a retry strategy that fails while judging a result -------------------------------


def broken_judge(state: RetryCallState) -> bool:
    """A retry strategy that accepts every exception's retry but cannot judge a result."""
    outcome = state.outcome
    assert outcome is not None
    if outcome.failed:
        return True
    raise ValueError("judge broke")


def test_a_sync_strategy_that_raises_on_a_result_raises_its_own_error() -> None:
    """The strategy's own error reaches the caller, and the guards are told the attempt's
    result as a success (the strategy never said it retries it)."""
    told = Told()

    @retry_worker_operation(
        max_attempts=3, retry=broken_judge, guards=[GuardSpec("told", "call", lambda: told)]
    )
    def fetch() -> str:
        return "ok"

    with pytest.raises(ValueError, match="judge broke"):
        fetch()
    assert told.outcomes == [None]
    assert counts(fetch).failures_by_type == {}


class TellingStates(GuardStates):
    """Guard state that adds one recording guard to each call's chain (as the simulator gives
    each client its own state): the only way to hear outcomes beside an async strategy, which
    a declared guard would wrap in tenacity's sync ``retry_all``."""

    def __init__(self, told: Told) -> None:
        super().__init__()
        self.told = told

    def chain(
        self, specs: Sequence[GuardSpec], client: Hashable = None, extra: Sequence[Any] = ()
    ) -> GuardChain:
        return super().chain(specs, client, (self.told, *extra))


def test_an_async_strategy_that_raises_on_a_result_raises_its_own_error() -> None:
    """As for a sync strategy: tenacity's async strategies are awaited, and one that raises
    while judging a result raises its error, the result told to the guards as a success."""
    told = Told()

    async def judge(state: RetryCallState) -> bool:
        await asyncio.sleep(0)
        return broken_judge(state)

    @retry_api_call(max_attempts=3, retry=judge, guard_states=TellingStates(told))
    async def fetch() -> str:
        return "ok"

    with pytest.raises(ValueError, match="judge broke"):
        asyncio.run(fetch())
    assert told.outcomes == [None]
    assert counts(fetch).failures_by_type == {}


# --- calls: what attempt_timeout and hedging cannot do for sync work is said once ------------


def test_a_sync_function_under_a_timeout_and_hedge_setting_is_warned_about_once_each(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A timeout and hedging from the settings cannot apply to a sync function: each is said
    in one warning naming the function and the setting, on the first call only."""
    caplog.set_level(logging.WARNING, logger="retrysim.retry")
    monkeypatch.setenv("RETRY__WORKER_ATTEMPT_TIMEOUT", "2.5")
    monkeypatch.setenv("RETRY__WORKER_HEDGE_ENABLED", "true")

    @retry_worker_operation
    def sync_settings_fetch() -> str:
        return "ok"

    assert sync_settings_fetch() == "ok"
    first = (warnings_about(caplog, "does not bound"), warnings_about(caplog, "does not apply"))
    assert [len(said) for said in first] == [1, 1]  # said on the first call
    assert sync_settings_fetch() == "ok"
    unbounded = warnings_about(caplog, "does not bound")
    unhedged = warnings_about(caplog, "does not apply")
    assert len(unbounded) == 1 and len(unhedged) == 1
    assert "attempt_timeout 2.5s (RETRY__WORKER_ATTEMPT_TIMEOUT)" in unbounded[0]
    assert "sync_settings_fetch" in unbounded[0]
    assert "RETRY__WORKER_HEDGE_ENABLED" in unhedged[0] and "sync_settings_fetch" in unhedged[0]


def test_sync_work_run_through_execute_with_retry_is_warned_about_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """execute_with_retry on a sync function: a timeout says once that it cannot bound the
    work (and nothing about hedging, which is off); hedging says once that it does not apply
    (and nothing about a timeout, which is unset)."""
    caplog.set_level(logging.WARNING, logger="retrysim.retry")

    def timed_work() -> str:
        return "done"

    def hedged_work() -> str:
        return "done"

    async def main() -> list[str]:
        return [
            await execute_with_retry(timed_work, attempt_timeout=1.0),
            await execute_with_retry(timed_work, attempt_timeout=1.0),
            await execute_with_retry(hedged_work, hedge=True),
            await execute_with_retry(hedged_work, hedge=True),
        ]

    assert asyncio.run(main()) == ["done"] * 4
    unbounded = warnings_about(caplog, "does not bound")
    unhedged = warnings_about(caplog, "does not apply")
    assert len(unbounded) == 1 and "timed_work" in unbounded[0]
    assert len(unhedged) == 1 and "hedged_work" in unhedged[0]


def test_a_coroutine_under_a_timeout_is_bounded_and_not_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A coroutine is what attempt_timeout bounds: no warning, its answer within the bound
    is returned, and one past it is a TimeoutError naming the attempt and the bound."""
    caplog.set_level(logging.WARNING, logger="retrysim.retry")

    @retry_api_call(max_attempts=1, attempt_timeout=1.0)
    async def fetch(seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "answer"

    assert timed(fetch(0.5)) == ("answer", 0.5)
    with pytest.raises(TimeoutError, match=r"^attempt 1 timed out after 1s$"):
        timed(fetch(5.0))
    assert warnings_about(caplog, "does not bound") == []


def test_a_coroutines_own_timeout_error_is_not_taken_for_the_bound() -> None:
    """A TimeoutError the function raises itself, well within attempt_timeout, reaches the
    caller as it is, not renamed as the attempt timing out."""

    @retry_api_call(max_attempts=1, attempt_timeout=10.0)
    async def fetch() -> str:
        raise TimeoutError("the server's own")

    with pytest.raises(TimeoutError, match=r"^the server's own$"):
        timed(fetch())


# --- calls: a send-rate limiter holds a sync attempt back ------------------------------------


class Pacer(Told):
    """A send-rate limiter that holds the first send back ``hold`` seconds, later ones not."""

    def __init__(self, hold: float) -> None:
        super().__init__()
        self.holds = [hold]

    def pace(self, now: float) -> float:
        return self.holds.pop() if self.holds else 0.0


def test_a_sync_attempt_held_back_by_a_limiter_sleeps_the_injected_sleep(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A hold shorter than a second is still slept, through the function's own sleep (never
    tenacity's real one)."""
    clock = Clock()
    real: list[float] = []
    monkeypatch.setattr(tenacity.nap, "sleep", real.append)

    @retry_worker_operation(
        sleep=clock.sleep, clock=clock, guards=[GuardSpec("pacer", "call", lambda: Pacer(0.5))]
    )
    def fetch() -> str:
        return "ok"

    assert fetch() == "ok"
    assert (clock.slept, real) == ([0.5], [])


# --- calls: a hedged coroutine answers with the winning send's result ------------------------


def test_a_hedge_that_wins_answers_the_call_and_is_counted() -> None:
    """A primary send that hangs is beaten by the hedge sent after the delay: the call
    returns the hedge's own answer, at the delay plus the hedge's latency, and counts it."""
    latencies = [3600.0, 0.2]

    @retry_api_call(max_attempts=1, hedge={"enabled": True, "delay": 0.3})
    async def fetch() -> str:
        latency = latencies.pop(0)
        await asyncio.sleep(latency)
        return f"answered after {latency:g}s"

    result, virtual = timed(fetch())
    assert result == "answered after 0.2s" and virtual == pytest.approx(0.5)
    found = counts(fetch)
    assert (found.attempts, found.hedges, found.successes) == (1, 1, 1)
