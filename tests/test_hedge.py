"""Hedged requests in the library: each attempt of a coroutine a group of sends, the first
acceptable answer wins, the others cancelled (``retrysim/retry/hedge.py``).

Every test runs on the virtual-time loop: a send that hangs for an hour costs no wall time, and
the times asserted are exact virtual seconds.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import logging
import math
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from tenacity import RetryError, retry_if_result

from retrysim.retry import (
    HedgeOptions,
    SettingsError,
    build_policy,
    execute_with_retry,
    load_settings,
    reload_settings,
    render_prometheus,
    retry_api_call,
    retry_metrics,
    retry_scheduler_operation,
    retry_storage_operation,
    retry_worker_operation,
)
from retrysim.retry.hedge import Hedging, hedging_of
from retrysim.retry.settings import RetrySettings
from retrysim.sim.aio import run_virtual
from tests.test_attempt_timeout import timed

HOUR = 3600.0
T = TypeVar("T")


def answer(call: Awaitable[T]) -> tuple[T, float]:
    """(``call``'s result, the virtual seconds it took, to the microsecond)."""
    result, virtual = timed(call)
    return result, round(virtual, 6)


@dataclass
class Sends:
    """A dependency whose n-th send takes ``plan[n][0]`` seconds and then returns ``plan[n][1]``
    (or raises it, an exception); it records when each send started and how each ended."""

    plan: list[tuple[float, Any]]
    started: list[float] = field(default_factory=list)
    finished: list[int] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)

    async def __call__(self) -> Any:
        index = len(self.started)
        latency, outcome = self.plan[index]
        self.started.append(asyncio.get_running_loop().time())
        try:
            await asyncio.sleep(latency)
        except asyncio.CancelledError:
            self.cancelled.append(index)
            raise
        self.finished.append(index)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def counts(name: str) -> Any:
    (found,) = [c for key, c in retry_metrics().items() if key.endswith(f".{name}")]
    return found


# --- the race ---------------------------------------------------------------------------------


def test_the_first_answer_wins_and_the_others_are_cancelled() -> None:
    sends = Sends([(10.0, "primary"), (5.0, "second"), (2.5, "third")])

    @retry_api_call(hedge={"enabled": True, "max_attempts": 3, "delay": 1.0})
    async def fetch() -> str:
        return str(await sends())

    async def main() -> tuple[str, float, int]:
        result = await fetch()
        return result, asyncio.get_running_loop().time(), len(asyncio.all_tasks())

    result, virtual, tasks = run_virtual(main())
    assert result == "third"
    assert sends.started == [0.0, 1.0, 2.0]
    assert virtual == pytest.approx(2.0 + 2.5)
    assert sorted(sends.cancelled) == [0, 1] and sends.finished == [2]
    assert tasks == 1  # only main: the losers were awaited, none is left running
    found = counts("fetch")
    assert (found.attempts, found.hedges, found.retries, found.successes) == (1, 2, 0, 1)


def test_a_slow_primary_is_beaten_by_a_hedge_sent_after_the_delay() -> None:
    sends = Sends([(HOUR, "primary"), (0.2, "hedge")])

    @retry_api_call(hedge={"enabled": True, "delay": 0.3})
    async def fetch() -> str:
        return str(await sends())

    result, virtual = timed(fetch())
    assert result == "hedge"
    assert virtual == pytest.approx(0.3 + 0.2)  # the delay, then the hedge's own latency
    assert sends.cancelled == [0]


def test_an_answer_before_the_delay_sends_no_hedge() -> None:
    sends = Sends([(0.4, "quick"), (0.1, "never sent")])

    @retry_api_call(hedge={"enabled": True, "delay": 0.5})
    async def fetch() -> str:
        return str(await sends())

    assert answer(fetch()) == ("quick", 0.4)
    assert len(sends.started) == 1 and counts("fetch").hedges == 0


def test_a_failed_send_starts_the_next_one_at_once() -> None:
    sends = Sends([(1.0, ConnectionError("reset")), (2.0, "ok")])

    @retry_api_call(hedge={"enabled": True, "delay": 5.0})
    async def fetch() -> str:
        return str(await sends())

    assert answer(fetch()) == ("ok", 3.0)
    assert sends.started == [0.0, 1.0]  # not 5.0: the failure did not wait out the delay


def test_a_retried_result_is_a_failed_send() -> None:
    sends = Sends([(0.1, "busy"), (0.2, "ok")])

    @retry_api_call(
        hedge={"enabled": True, "delay": 5.0}, retry=retry_if_result(lambda r: r == "busy")
    )
    async def fetch() -> str:
        return str(await sends())

    assert answer(fetch()) == ("ok", 0.3)
    assert sends.started == [0.0, pytest.approx(0.1)]


def test_an_error_the_policy_does_not_retry_ends_the_group_at_once() -> None:
    """Like a fatal status in gRPC's hedging: it is the answer, the other sends are cancelled."""
    sends = Sends([(HOUR, "primary"), (0.5, ValueError("bad request"))])

    @retry_api_call(hedge={"enabled": True, "delay": 1.0})
    async def fetch() -> str:
        return str(await sends())

    async def main() -> float:
        with pytest.raises(ValueError, match="bad request"):
            await fetch()
        return asyncio.get_running_loop().time()

    assert run_virtual(main()) == pytest.approx(1.5)
    assert sends.cancelled == [0]
    found = counts("fetch")
    assert (found.attempts, found.retries, found.non_retryable) == (1, 0, 1)


def test_when_every_send_fails_tenacity_retries_the_attempt() -> None:
    sends = Sends([(1.0, ConnectionError("a")), (1.0, ConnectionError("b")), (0.5, "ok")])

    @retry_api_call(
        max_attempts=2, min_wait=0.0, profile="exponential", hedge={"enabled": True, "delay": 1.0}
    )
    async def fetch() -> str:
        return str(await sends())

    assert answer(fetch()) == ("ok", 2.5)
    assert sends.started == [0.0, 1.0, 2.0]  # the retry is a new group: its first send
    found = counts("fetch")
    # The guards (and the counters, one of them) see one attempt per group, and its outcome.
    assert (found.attempts, found.hedges, found.retries) == (2, 1, 1)
    assert dict(found.failures_by_type) == {"ConnectionError": 1}


def test_a_group_that_fails_raises_its_latest_failure_when_the_call_gives_up() -> None:
    last = ConnectionError("the latest")
    sends = Sends([(2.0, ConnectionError("first to start")), (0.5, last)])

    @retry_api_call(max_attempts=1, hedge={"enabled": True, "delay": 1.0})
    async def fetch() -> str:
        return str(await sends())

    async def main() -> None:
        with pytest.raises(ConnectionError) as raised:
            await fetch()
        assert raised.value is sends.plan[0][1]  # it failed at 2.0, after the hedge's 1.5

    run_virtual(main())
    assert last is not sends.plan[0][1]


def test_a_group_of_retried_results_gives_up_as_tenacity_does() -> None:
    sends = Sends([(0.1, "busy"), (0.1, "busy")])

    @retry_api_call(
        max_attempts=1, hedge={"enabled": True}, retry=retry_if_result(lambda r: r == "busy")
    )
    async def fetch() -> str:
        return str(await sends())

    async def main() -> None:
        with pytest.raises(RetryError) as raised:
            await fetch()
        assert raised.value.last_attempt.result() == "busy"

    run_virtual(main())
    assert len(sends.started) == 2


def test_the_callers_cancellation_cancels_and_awaits_every_send() -> None:
    sends = Sends([(HOUR, "a"), (HOUR, "b")])

    @retry_api_call(hedge={"enabled": True, "delay": 1.0})
    async def fetch() -> str:
        return str(await sends())

    async def main() -> int:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(fetch(), timeout=1.5)
        return len(asyncio.all_tasks())

    assert run_virtual(main()) == 1
    assert sorted(sends.cancelled) == [0, 1]


# --- attempt_timeout bounds each send ---------------------------------------------------------


def test_attempt_timeout_bounds_each_send_and_a_timed_out_send_starts_the_next() -> None:
    sends = Sends([(HOUR, "hung"), (0.5, "ok")])

    @retry_api_call(attempt_timeout=1.0, hedge={"enabled": True, "delay": 5.0})
    async def fetch() -> str:
        return str(await sends())

    assert answer(fetch()) == ("ok", 1.5)
    assert sends.started == [0.0, 1.0] and sends.cancelled == [0]


def test_a_group_of_hung_sends_lasts_the_delays_and_one_timeout() -> None:
    """At most ``(max_attempts - 1) * delay + attempt_timeout``: each send has its own bound."""
    sends = Sends([(HOUR, "a"), (HOUR, "b"), (HOUR, "c")])

    @retry_api_call(
        max_attempts=1,
        attempt_timeout=1.0,
        hedge={"enabled": True, "max_attempts": 3, "delay": 0.25},
    )
    async def fetch() -> str:
        return str(await sends())

    async def main() -> float:
        with pytest.raises(TimeoutError, match="timed out after 1s"):
            await fetch()
        return asyncio.get_running_loop().time()

    assert run_virtual(main()) == pytest.approx(2 * 0.25 + 1.0)
    assert sorted(sends.cancelled) == [0, 1, 2]


# --- off: nothing changes ---------------------------------------------------------------------

SEEN: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="")


@pytest.mark.parametrize("off", [None, False, {"enabled": False, "max_attempts": 5, "delay": 0}])
def test_hedging_off_awaits_the_function_in_the_callers_own_task(off: Any) -> None:
    """No task, no group: the attempt is awaited as before (a context variable the function sets
    reaches the caller, and the function runs in the caller's task)."""
    sends = Sends([(1.0, ConnectionError("down")), (1.0, "ok")])
    options: dict[str, Any] = {} if off is None else {"hedge": off}

    @retry_api_call(min_wait=0.5, profile="exponential", **options)
    async def fetch() -> asyncio.Task[Any] | None:
        SEEN.set("set by the function")
        await sends()
        return asyncio.current_task()

    async def main() -> tuple[bool, str, float]:
        task = await fetch()
        return task is asyncio.current_task(), SEEN.get(), asyncio.get_running_loop().time()

    own_task, seen, virtual = run_virtual(main())
    assert own_task and seen == "set by the function"
    assert virtual == pytest.approx(1.0 + 0.5 + 1.0)
    assert sends.started == [0.0, 1.5]
    assert hedging_of(fetch.retry_policy()) is None  # type: ignore[attr-defined]
    assert counts("fetch").hedges == 0


def test_a_hedged_send_runs_in_its_own_task() -> None:
    CALLER: contextvars.ContextVar[asyncio.Task[Any] | None] = contextvars.ContextVar("caller")

    @retry_api_call(hedge=True)
    async def fetch() -> bool:
        return asyncio.current_task() is not CALLER.get()

    async def main() -> bool:
        CALLER.set(asyncio.current_task())
        return await fetch()

    assert run_virtual(main()) is True


# --- visible ----------------------------------------------------------------------------------


def test_each_hedge_is_logged_at_debug_and_exported(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="retrysim.retry")
    sends = Sends([(HOUR, "primary"), (0.2, "hedge")])

    @retry_api_call(hedge={"enabled": True, "delay": 0.3})
    async def fetch() -> str:
        return str(await sends())

    timed(fetch())
    (record,) = [r for r in caplog.records if "Hedging" in r.getMessage()]
    assert record.levelno == logging.DEBUG
    assert record.getMessage() == (
        "Hedging attempt 1 of fetch: send 2/2 started, no acceptable answer yet"
    )
    text = render_prometheus()
    (line,) = [row for row in text.splitlines() if row.startswith("retry_hedges_total{")]
    assert "fetch" in line and line.endswith(" 1")


# --- settings and options ---------------------------------------------------------------------


def test_settings_turn_hedging_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRY__API_HEDGE_ENABLED", "true")
    monkeypatch.setenv("RETRY__API_HEDGE_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("RETRY__API_HEDGE_DELAY", "0.25")
    reload_settings()
    sends = Sends([(HOUR, "a"), (HOUR, "b"), (0.1, "c")])

    @retry_api_call
    async def fetch() -> str:
        return str(await sends())

    assert answer(fetch()) == ("c", 0.6)
    assert sends.started == [0.0, 0.25, 0.5]
    assert hedging_of(fetch.retry_policy()) == Hedging(max_attempts=3, delay=0.25)  # type: ignore[attr-defined]
    other = build_policy("worker")  # another operation's settings are untouched
    assert hedging_of(other) is None


def test_an_explicit_table_wins_over_the_settings_knob_by_knob(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RETRY__STORAGE_HEDGE_ENABLED", "true")
    monkeypatch.setenv("RETRY__STORAGE_HEDGE_DELAY", "0.7")
    reload_settings()
    policy = build_policy("storage", hedge={"max_attempts": 4})
    assert hedging_of(policy) == Hedging(max_attempts=4, delay=0.7)
    assert hedging_of(build_policy("storage", hedge=False)) is None


def test_the_defaults() -> None:
    settings = RetrySettings.defaults()
    for operation in ("worker", "storage", "scheduler", "api"):
        assert getattr(settings, f"{operation}_hedge_enabled") is False
        assert getattr(settings, f"{operation}_hedge_max_attempts") == 2
        assert getattr(settings, f"{operation}_hedge_delay") == 2.0
    assert hedging_of(build_policy("api", settings, hedge=True)) == Hedging(2, 2.0)
    assert type(build_policy("api", settings).options.hedge) is HedgeOptions


@pytest.mark.parametrize(
    ("variable", "bad"),
    [
        ("RETRY__API_HEDGE_MAX_ATTEMPTS", "1"),
        ("RETRY__API_HEDGE_MAX_ATTEMPTS", "11"),
        ("RETRY__API_HEDGE_MAX_ATTEMPTS", "2.5"),
        ("RETRY__API_HEDGE_DELAY", "-0.1"),
        ("RETRY__API_HEDGE_DELAY", "nan"),
        ("RETRY__API_HEDGE_ENABLED", "sometimes"),
    ],
)
def test_a_bad_setting_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, bad: str
) -> None:
    monkeypatch.setenv(variable, bad)
    with pytest.raises(SettingsError, match=variable):
        load_settings(None)


@pytest.mark.parametrize(
    "bad", [{"max_attempts": 1}, {"max_attempts": 11}, {"delay": -1.0}, {"delay": math.inf}]
)
def test_a_bad_option_is_refused_naming_the_knob(bad: dict[str, Any]) -> None:
    (knob,) = bad
    with pytest.raises(ValueError, match=f"hedge.{knob}"):
        retry_api_call(hedge={"enabled": True, **bad})


# --- sync functions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "decorator",
    [retry_worker_operation, retry_storage_operation, retry_scheduler_operation, retry_api_call],
)
@pytest.mark.parametrize("hedge", [True, {"enabled": True, "delay": 0.1}])
def test_an_explicit_hedge_on_a_sync_function_is_refused_at_decoration(
    decorator: Any, hedge: Any
) -> None:
    def load(key: str) -> str:
        return key

    with pytest.raises(TypeError) as raised:
        decorator(hedge=hedge)(load)
    message = str(raised.value)
    assert "\n" not in message
    assert "hedge" in message and "load" in message and "sync function" in message


def test_a_sync_function_may_carry_hedge_knobs_that_leave_it_off() -> None:
    @retry_api_call(hedge={"delay": 0.1})
    def load() -> str:
        return "loaded"

    @retry_api_call(hedge=False)
    def save() -> str:
        return "saved"

    assert (load(), save()) == ("loaded", "saved")


def test_a_hedge_from_the_settings_leaves_a_sync_function_unhedged_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="retrysim.retry")
    monkeypatch.setenv("RETRY__API_HEDGE_ENABLED", "true")
    reload_settings()
    calls = 0

    @retry_api_call  # decorating works: the setting is read at every call
    def ping() -> str:
        nonlocal calls
        calls += 1
        return "pong"

    assert (ping(), ping(), calls) == ("pong", "pong", 2)
    (record,) = [r for r in caplog.records if "hedge" in r.getMessage()]
    message = record.getMessage()
    assert "RETRY__API_HEDGE_ENABLED" in message and "ping" in message
    assert counts("ping").hedges == 0


def test_execute_with_retry_hedges_a_coroutine() -> None:
    sends = Sends([(HOUR, "a"), (0.1, "b")])

    async def fetch(url: str) -> str:
        return f"{url} {await sends()}"

    result = answer(
        execute_with_retry(
            fetch, "http://x", operation="api", hedge={"enabled": True, "delay": 0.2}
        )
    )
    assert result == ("http://x b", 0.3)


def test_execute_with_retry_leaves_sync_work_unhedged_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="retrysim.retry")
    calls = 0

    def compute() -> int:
        nonlocal calls
        calls += 1
        return 42

    async def main() -> None:
        for _ in range(2):
            assert await execute_with_retry(compute, hedge=True) == 42

    run_virtual(main())
    assert calls == 2
    warnings = [r.getMessage() for r in caplog.records if "not hedged" in r.getMessage()]
    assert len(warnings) == 1 and "compute" in warnings[0]
    assert "RETRY__WORKER_HEDGE_ENABLED" in warnings[0]


# --- the law ----------------------------------------------------------------------------------


@dataclass
class Expected:
    """What a group must do, worked out by hand."""

    send: int  # the winner, or the failed send whose failure the group raises
    starts: list[float]
    end: float
    finishes: list[float]  # when each send that ended before the group did ended
    due: list[float]  # when a hedge was due
    would_finish: list[float]  # when each send started would end, if let run

    def has_ties(self) -> bool:
        """Whether two things happen at one instant (their order is then the loop's)."""
        times = sorted(self.would_finish)
        close = any(b - a < 1e-3 for a, b in itertools.pairwise(times))
        return close or any(abs(f - d) < 1e-3 for f in self.would_finish for d in self.due)


def model(latencies: list[float], good: list[bool], sends: int, delay: float) -> Expected:
    starts, next_at, ended = [0.0], delay, set()
    finishes: list[float] = []
    due = [delay]
    while True:
        pending = [(starts[i] + latencies[i], i) for i in range(len(starts)) if i not in ended]
        finish, index = min(pending) if pending else (math.inf, -1)
        if len(starts) < sends and next_at < finish:
            starts.append(next_at)
            next_at += delay
            due.append(next_at)
            continue
        finishes.append(finish)
        ended.add(index)
        if good[index] or len(ended) == sends:
            would = [start + latency for start, latency in zip(starts, latencies, strict=False)]
            return Expected(index, starts, finish, finishes, due, would)
        if len(starts) < sends:  # a failure: the next send at once
            starts.append(finish)
            next_at = finish + delay
            due.append(next_at)


@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sends=st.integers(2, 5),
    delay=st.sampled_from([0.0, 0.3, 1.0, 2.5]),
    plan=st.lists(
        st.tuples(st.floats(0.05, 6.0, allow_nan=False).map(lambda x: round(x, 3)), st.booleans()),
        min_size=5,
        max_size=5,
    ),
)
def test_the_earliest_finishing_acceptable_send_wins_and_at_most_max_attempts_start(
    sends: int, delay: float, plan: list[tuple[float, bool]]
) -> None:
    latencies = [latency for latency, _ in plan]
    good = [ok for _, ok in plan]
    expected = model(latencies, good, sends, delay)
    assume(not expected.has_ties())
    outcomes: list[Any] = [
        f"answer {i}" if ok else ConnectionError(f"send {i}") for i, ok in enumerate(good)
    ]
    script = Sends(list(zip(latencies, outcomes, strict=True)))

    @retry_api_call(max_attempts=1, hedge={"enabled": True, "max_attempts": sends, "delay": delay})
    async def fetch() -> Any:
        return await script()

    async def main() -> tuple[Any, float]:
        try:
            result: Any = await fetch()
        except ConnectionError as error:
            result = error
        return result, asyncio.get_running_loop().time()

    result, virtual = run_virtual(main())
    assert len(script.started) <= sends
    assert script.started == pytest.approx(expected.starts)
    assert virtual == pytest.approx(expected.end)
    if good[expected.send]:
        assert result == f"answer {expected.send}"
    else:  # every send failed: the latest failure
        assert result is outcomes[expected.send]
    # Every send that had not ended by then was cancelled, and nothing is left running.
    assert sorted(script.finished + script.cancelled) == list(range(len(script.started)))
    assert len(script.finished) == len(expected.finishes)
