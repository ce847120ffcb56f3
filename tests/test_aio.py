"""run_virtual: real coroutines on a virtual clock (asyncio timers and tenacity's clock)."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import tenacity
from hypothesis import given, settings
from hypothesis import strategies as st
from tenacity import AsyncRetrying, stop_after_attempt, stop_after_delay, wait_fixed

from retrysim.retry import retry_worker_operation
from retrysim.sim.aio import DeadlockError, VirtualTimeEventLoop, run_virtual


def now() -> float:
    return asyncio.get_running_loop().time()


def _tenacity_time() -> Any:
    """tenacity's ``time`` global (read from the namespace: tenacity does not re-export it)."""
    return vars(tenacity)["time"]


def test_sleep_advances_virtual_time_not_wall_time() -> None:
    async def main() -> tuple[float, float]:
        before = now()
        await asyncio.sleep(30)
        return before, now()

    started = time.perf_counter()
    before, after = run_virtual(main())
    assert (before, after) == (0.0, 30.0)
    assert time.perf_counter() - started < 1.0


def test_start_time_is_configurable() -> None:
    async def main() -> tuple[float, float]:
        first = now()
        await asyncio.sleep(2.5)
        return first, now()

    assert run_virtual(main(), start=100.0) == (100.0, 102.5)


def test_result_and_exceptions_propagate() -> None:
    async def ok() -> str:
        await asyncio.sleep(1)
        return "value"

    async def boom() -> None:
        await asyncio.sleep(1)
        raise KeyError("inside")

    assert run_virtual(ok()) == "value"
    with pytest.raises(KeyError, match="inside"):
        run_virtual(boom())


def test_timers_fire_in_deadline_order_at_their_deadline() -> None:
    async def main() -> list[tuple[str, float]]:
        fired: list[tuple[str, float]] = []
        done = asyncio.Event()
        loop = asyncio.get_running_loop()

        def fire(n: str) -> None:
            fired.append((n, loop.time()))

        for name, delay in (("c", 9.0), ("a", 1.5), ("b", 4.0)):
            loop.call_later(delay, fire, name)
        loop.call_later(10.0, done.set)
        await done.wait()
        return fired

    assert run_virtual(main()) == [("a", 1.5), ("b", 4.0), ("c", 9.0)]


@settings(max_examples=50, deadline=None)
@given(delays=st.lists(st.floats(0, 1e4), min_size=1, max_size=20))
def test_concurrent_sleeps_end_at_the_longest_sequential_at_the_sum(delays: list[float]) -> None:
    async def concurrent() -> float:
        await asyncio.gather(*(asyncio.sleep(d) for d in delays))
        return now()

    async def sequential() -> float:
        for d in delays:
            await asyncio.sleep(d)
        return now()

    assert run_virtual(concurrent()) == pytest.approx(max(delays))
    assert run_virtual(sequential()) == pytest.approx(sum(delays))


def test_wait_for_timeout_fires_in_virtual_time() -> None:
    async def main() -> float:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.sleep(100), timeout=5)
        return now()

    started = time.perf_counter()
    assert run_virtual(main()) == pytest.approx(5.0)
    assert time.perf_counter() - started < 1.0


def test_wait_for_completes_before_its_timeout() -> None:
    async def work() -> str:
        await asyncio.sleep(2)
        return "done"

    async def main() -> tuple[str, float]:
        result = await asyncio.wait_for(work(), timeout=10)
        return result, now()

    result, finished_at = run_virtual(main())
    assert result == "done"
    assert finished_at == pytest.approx(2.0)


def test_asyncio_timeout_context_in_virtual_time() -> None:
    async def main() -> float:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(7):
                await asyncio.sleep(3600)
        return now()

    assert run_virtual(main()) == pytest.approx(7.0)


# --- tenacity on the virtual clock ----------------------------------------------------------


def test_tenacity_stop_after_delay_follows_virtual_clock() -> None:
    """Attempts at t = 0, 3, 6, 9, 12; the one at 12 is past the 10 s budget."""

    async def main() -> tuple[int, float]:
        attempts = 0
        with pytest.raises(ConnectionError):
            async for attempt in AsyncRetrying(
                stop=stop_after_delay(10) | stop_after_attempt(50),  # bound a regression
                wait=wait_fixed(3),
                reraise=True,
            ):
                with attempt:
                    attempts += 1
                    raise ConnectionError("still down")
        return attempts, now()

    attempts, virtual = run_virtual(main())
    assert attempts == 5
    assert virtual == pytest.approx(12.0)


def test_decorator_max_delay_follows_virtual_clock() -> None:
    calls: list[float] = []

    @retry_worker_operation(
        max_attempts=1000, max_delay=20.0, profile="exponential", min_wait=4.0, max_wait=4.0
    )
    async def run_task() -> None:
        calls.append(now())
        raise TimeoutError("slow")

    with pytest.raises(TimeoutError):
        run_virtual(run_task())
    assert calls == [0.0, 4.0, 8.0, 12.0, 16.0, 20.0]


def test_tenacity_clock_is_the_loop_clock_inside_and_restored_after() -> None:
    original = _tenacity_time()

    async def main() -> list[tuple[float, float]]:
        pairs = []
        for _ in range(3):
            pairs.append((_tenacity_time().monotonic(), now()))
            await asyncio.sleep(42)
        return pairs

    pairs = run_virtual(main(), start=5.0)
    assert pairs == [(5.0, 5.0), (47.0, 47.0), (89.0, 89.0)]
    assert _tenacity_time() is original
    assert _tenacity_time() is time
    assert abs(_tenacity_time().monotonic() - time.monotonic()) < 1.0


def test_tenacity_clock_restored_after_an_exception() -> None:
    async def main() -> None:
        await asyncio.sleep(1)
        raise RuntimeError("fail inside")

    with pytest.raises(RuntimeError):
        run_virtual(main())
    assert _tenacity_time() is time


# --- deadlocks and threads ------------------------------------------------------------------


def run_guarded(coro, timeout: float = 10.0) -> BaseException | object:
    """Run ``coro`` with run_virtual in a daemon thread so a hang fails the test instead."""
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["result"] = run_virtual(coro)
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "run_virtual hung"
    return outcome.get("error", outcome.get("result"))


def test_never_set_future_raises_deadlock_error() -> None:
    async def main() -> None:
        await asyncio.get_running_loop().create_future()

    started = time.perf_counter()
    outcome = run_guarded(main())
    assert isinstance(outcome, DeadlockError)
    assert isinstance(outcome, RuntimeError)
    assert time.perf_counter() - started < 5.0


def test_tasks_waiting_on_each_other_deadlock() -> None:
    async def main() -> None:
        a, b = asyncio.Event(), asyncio.Event()

        async def first() -> None:
            await a.wait()
            b.set()

        async def second() -> None:
            await asyncio.sleep(5)
            await b.wait()
            a.set()

        await asyncio.gather(first(), second())

    assert isinstance(run_guarded(main()), DeadlockError)


def test_waiting_on_a_worker_thread_is_not_a_deadlock() -> None:
    gate = threading.Event()

    def blocking() -> str:
        gate.wait(5)
        return "from thread"

    async def main(pool: ThreadPoolExecutor) -> str:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(pool, blocking)
        loop.call_soon(gate.set)
        return await future

    with ThreadPoolExecutor(max_workers=1) as pool:
        assert run_guarded(main(pool)) == "from thread"


def test_to_thread_with_the_default_executor() -> None:
    """asyncio.to_thread uses the loop's default executor, which the loop shuts down at exit.

    That shutdown waits for a plain thread; it is not a deadlock.
    """

    async def main() -> int:
        return await asyncio.to_thread(lambda: 41 + 1)

    assert run_guarded(main()) == 42


def test_loop_class_usable_with_asyncio_runner() -> None:
    async def main() -> float:
        await asyncio.sleep(12)
        return now()

    with asyncio.Runner(loop_factory=lambda: VirtualTimeEventLoop(start=3.0)) as runner:
        assert runner.run(main()) == 15.0


def test_timers_one_float_step_apart_each_fire_at_their_own_time() -> None:
    """asyncio batches timers due within its clock resolution; the virtual clock must not."""
    import math

    from retrysim.sim.aio import run_virtual

    first = 2.334117280117679
    second = first + math.ulp(first)
    seen: list[tuple[str, float]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        loop.call_at(second, lambda: seen.append(("second", loop.time())))
        loop.call_at(first, lambda: seen.append(("first", loop.time())))
        loop.call_at(second, done.set_result, None)
        await done

    run_virtual(main())
    assert seen == [("first", first), ("second", second)]
