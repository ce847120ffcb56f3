"""Hooks: ``on_exhausted`` and ``on_breaker_change``, per function and process-wide.

Each hook is called exactly once per event, with what happened; an exception it raises is
logged on ``retrysim.retry`` (naming the hook) and never changes the call's outcome. Time is a
hand-made clock that the injected sleep advances, so nothing really sleeps.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import retrysim.retry
from retrysim.retry import (
    PROCESS_GUARDS,
    BreakerChange,
    CircuitOpenError,
    ExhaustedCall,
    GuardStates,
    add_breaker_hook,
    add_exhausted_hook,
    execute_with_retry,
    remove_breaker_hook,
    remove_exhausted_hook,
    retry_api_call,
    retry_worker_operation,
)
from retrysim.retry.counters import COUNTERS
from retrysim.sim.aio import run_virtual
from tests.test_export import FakeTime as SyncFakeTime


class FakeTime(SyncFakeTime):
    """A clock that only the injected sleep moves, with an async sleep for coroutines."""

    async def async_sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


class Recorder:
    """A hook that records what it was given."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def __call__(self, payload: Any) -> None:
        self.seen.append(payload)


@pytest.fixture(autouse=True)
def fresh_guards_and_hooks() -> Iterator[None]:
    PROCESS_GUARDS.clear()
    yield
    PROCESS_GUARDS.clear()


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


def fails(*errors: BaseException) -> Callable[[], str]:
    """A dependency that raises ``errors`` in turn, then answers "ok"."""
    remaining = list(errors)

    def dependency() -> str:
        if remaining:
            raise remaining.pop(0)
        return "ok"

    return dependency


# --- on_exhausted ---------------------------------------------------------------------------


def test_on_exhausted_gets_the_call_once_with_its_last_error(time: FakeTime) -> None:
    hook = Recorder()
    last = ConnectionError("third")
    dependency = fails(ConnectionError("first"), ConnectionError("second"), last)

    @retry_worker_operation(
        max_attempts=3,
        min_wait=0.5,
        profile="exponential",
        sleep=time.sleep,
        clock=time,
        on_exhausted=hook,
    )
    def fetch() -> str:
        return dependency()

    with pytest.raises(ConnectionError) as raised:
        fetch()
    assert raised.value is last
    (info,) = hook.seen
    assert isinstance(info, ExhaustedCall)
    assert info.operation == f"{__name__}.{fetch.__qualname__}"
    assert (info.function, info.kind) == ("fetch", "worker")
    assert (info.attempts, info.max_attempts) == (3, 3)
    assert info.error is last
    assert info.elapsed == pytest.approx(0.5 + 1.0)  # the two waits, by the call's clock


def test_on_exhausted_is_not_called_for_other_outcomes(time: FakeTime) -> None:
    hook = Recorder()
    plan = {
        "fine": fails(),
        "one_blip": fails(ConnectionError("a")),
        "not_retried": fails(ValueError("v")),
    }

    @retry_worker_operation(
        min_wait=0.0, profile="exponential", sleep=time.sleep, on_exhausted=hook
    )
    def run(key: str) -> str:
        return plan[key]()

    run("fine")
    run("one_blip")
    with pytest.raises(ValueError):
        run("not_retried")
    assert hook.seen == []


def check_hooked_both_ways(
    time: FakeTime, option: str, add: Callable[[Any], Any], remove: Callable[[Any], None]
) -> None:
    """A hook given as the function's ``option`` and one added process-wide by ``add`` (twice,
    and the function's own added too) are each called once per event, with the same payload;
    after ``remove`` only the function's own is. The call (2 attempts, both time out) has one
    event of each kind: one retry, one exhaustion."""
    own, shared = Recorder(), Recorder()

    @retry_api_call(max_attempts=2, min_wait=0.0, sleep=time.sleep, **{option: own})
    def call() -> None:
        raise TimeoutError("slow")

    assert add(shared) is shared
    add(shared)  # twice: still once per event
    add(own)  # the function's own hook, process-wide too: still once
    try:
        with pytest.raises(TimeoutError):
            call()
        assert len(own.seen) == 1 and len(shared.seen) == 1
        assert own.seen[0] is shared.seen[0]
    finally:
        remove(shared)
        remove(own)
    remove(shared)  # removing one that is not there is harmless
    with pytest.raises(TimeoutError):
        call()
    assert (len(own.seen), len(shared.seen)) == (2, 1)


def test_a_function_hooked_both_ways_is_called_once_and_removal_works(time: FakeTime) -> None:
    check_hooked_both_ways(time, "on_exhausted", add_exhausted_hook, remove_exhausted_hook)


def test_a_raising_exhausted_hook_is_logged_and_the_error_is_unchanged(
    caplog: pytest.LogCaptureFixture, time: FakeTime
) -> None:
    caplog.set_level(logging.ERROR, logger="retrysim.retry")
    after = Recorder()

    def pager(info: ExhaustedCall) -> None:
        raise RuntimeError("the pager is down too")

    original = ConnectionError("db gone")

    @retry_worker_operation(max_attempts=1, sleep=time.sleep, on_exhausted=pager)
    def job() -> None:
        raise original

    add_exhausted_hook(after)
    try:
        with pytest.raises(ConnectionError) as raised:
            job()
    finally:
        remove_exhausted_hook(after)
    assert raised.value is original  # not the hook's RuntimeError, not tenacity's RetryError
    assert len(after.seen) == 1  # a raising hook does not stop the next one
    (record,) = [r for r in caplog.records if "hook" in r.getMessage()]
    assert record.levelno == logging.ERROR
    assert "on_exhausted hook" in record.getMessage()
    assert f"{__name__}.{pager.__qualname__}" in record.getMessage()
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)


def test_on_exhausted_for_execute_with_retry_on_the_event_loop() -> None:
    hook = Recorder()
    error = ConnectionResetError("reset")

    async def create_storage(config: str) -> str:
        raise error

    async def main() -> None:
        with pytest.raises(ConnectionResetError):
            await execute_with_retry(
                create_storage, "pg", operation="storage", max_attempts=2, on_exhausted=hook
            )

    run_virtual(main())
    (info,) = hook.seen
    assert (info.kind, info.attempts, info.error) == ("storage", 2, error)
    assert info.elapsed > 0  # the storage profile's wait, in virtual time


@pytest.mark.parametrize("option", ["on_exhausted", "on_breaker_change"])
def test_a_hook_that_cannot_be_called_fails_at_decoration(option: str) -> None:
    async def async_hook(_: object) -> None:
        return None

    with pytest.raises(TypeError, match=f"{option} must be a function"):
        retry_worker_operation(**{option: 42})
    with pytest.raises(TypeError, match=rf"{option}: .*async_hook is async"):
        retry_worker_operation(**{option: async_hook})
    with pytest.raises(TypeError, match=r"add_breaker_hook: .*async"):
        add_breaker_hook(async_hook)


# --- on_breaker_change ----------------------------------------------------------------------


def breaker(name: str, threshold: int = 2, recovery: float = 10.0) -> dict[str, object]:
    return {
        "enabled": True,
        "failure_threshold": threshold,
        "recovery_timeout": recovery,
        "name": name,
    }


def test_breaker_changes_reach_the_hooks_once_each_in_order(time: FakeTime) -> None:
    own, shared, sibling = Recorder(), Recorder(), Recorder()
    down = {"now": False}

    def dependency() -> str:
        if down["now"]:
            raise ConnectionError("down")
        return "ok"

    options: dict[str, Any] = {"max_attempts": 1, "clock": time, "breaker": breaker("payments")}

    @retry_api_call(**options, on_breaker_change=own)
    def charge() -> str:
        return dependency()

    @retry_api_call(**options, on_breaker_change=sibling)  # the same breaker, by its name
    def refund() -> str:
        return dependency()

    assert refund() == "ok"  # its hook hears the breaker from its first call on
    down["now"] = True
    add_breaker_hook(shared)
    try:
        for _ in range(2):
            with pytest.raises(ConnectionError):
                charge()
        with pytest.raises(CircuitOpenError):  # open: refused without a request
            charge()
        time.now += 10.0
        down["now"] = False
        assert refund() == "ok"  # the probe: half-open, then closed
    finally:
        remove_breaker_hook(shared)
    assert [change.state for change in own.seen] == ["open", "half_open", "closed"]
    assert all(isinstance(c, BreakerChange) and c.breaker == "payments" for c in own.seen)
    assert [c.time for c in own.seen] == [0.0, 10.0, 10.0]
    assert shared.seen == own.seen
    assert sibling.seen == own.seen  # the opening was caused by charge(), heard by both
    transitions = COUNTERS.guard_snapshot().breaker_transitions
    assert transitions == {
        ("payments", "open"): 1,
        ("payments", "half_open"): 1,
        ("payments", "closed"): 1,
    }


def test_a_raising_breaker_hook_is_logged_and_the_call_goes_on(
    caplog: pytest.LogCaptureFixture, time: FakeTime
) -> None:
    caplog.set_level(logging.ERROR, logger="retrysim.retry")
    after = Recorder()

    def broken(change: BreakerChange) -> None:
        raise KeyError(change.state)

    @retry_api_call(
        max_attempts=1, clock=time, breaker=breaker("search", threshold=1), on_breaker_change=broken
    )
    def search() -> str:
        raise ConnectionError("down")

    add_breaker_hook(after)
    try:
        with pytest.raises(ConnectionError):  # the failure that opened it, not the KeyError
            search()
    finally:
        remove_breaker_hook(after)
    assert [c.state for c in after.seen] == ["open"]
    messages = [
        r.getMessage() for r in caplog.records if "on_breaker_change hook" in r.getMessage()
    ]
    assert len(messages) == 1 and broken.__qualname__ in messages[0]
    with pytest.raises(CircuitOpenError):
        search()  # the breaker itself is unharmed: open, refusing


def test_a_breaker_hook_may_call_through_the_same_breaker() -> None:
    """Hooks run after the breaker released its lock: calling back in does not deadlock."""
    nested: list[BaseException] = []

    def on_change(change: BreakerChange) -> None:
        if change.state == "open":
            try:
                call()
            except Exception as error:
                nested.append(error)

    @retry_api_call(
        max_attempts=1, breaker=breaker("loop", threshold=1), on_breaker_change=on_change
    )
    def call() -> None:
        raise ConnectionError("down")

    def run() -> None:
        with pytest.raises(ConnectionError):
            call()

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "the hook deadlocked on the breaker's lock"
    assert len(nested) == 1 and isinstance(nested[0], CircuitOpenError)


def test_hooks_follow_the_guard_states_the_function_uses(time: FakeTime) -> None:
    """A function on its own guard states (as the simulator gives each client) has its own
    breakers: its hook hears them, the process-wide hooks do not."""
    own, shared = Recorder(), Recorder()
    states = GuardStates()

    @retry_api_call(
        max_attempts=1,
        clock=time,
        guard_states=states,
        guard_client="client-7",
        breaker=breaker("llm", threshold=1),
        on_breaker_change=own,
    )
    def ask() -> None:
        raise ConnectionError("down")

    add_breaker_hook(shared)
    try:
        with pytest.raises(ConnectionError):
            ask()
    finally:
        remove_breaker_hook(shared)
    assert [(c.breaker, c.state, c.client) for c in own.seen] == [("llm", "open", "client-7")]
    assert shared.seen == []
    assert COUNTERS.guard_snapshot().breaker_transitions == {}  # not the process's breakers


def test_every_public_name_of_the_retry_package_resolves() -> None:
    exported = retrysim.retry.__all__
    assert sorted(exported) == sorted(set(exported))
    for name in exported:
        assert getattr(retrysim.retry, name) is not None
    for name in ("add_exhausted_hook", "add_breaker_hook", "ExhaustedCall", "BreakerChange"):
        assert name in exported
