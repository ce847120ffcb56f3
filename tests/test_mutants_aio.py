"""Tests written for mutants of ``retrysim/sim/aio.py`` that its own tests let survive
(a full mutation run, ``python scripts/mutate.py --module aio``): each pins a behaviour of the
virtual-time loop that a plausible wrong edit would change while every earlier test passed."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import weakref
from concurrent.futures import ThreadPoolExecutor

import pytest

from retrysim.sim.aio import DeadlockError, VirtualTimeEventLoop, answer_after, run_virtual
from tests.test_aio import run_guarded

# -- the clock ----------------------------------------------------------------------------------


def test_the_loop_class_alone_starts_its_clock_at_zero() -> None:
    """``asyncio.Runner(loop_factory=VirtualTimeEventLoop)`` (the module's documented use)
    starts virtual time at 0.0, as ``run_virtual`` does."""

    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        first = loop.time()
        await asyncio.sleep(3.0)
        return first, loop.time()

    with asyncio.Runner(loop_factory=VirtualTimeEventLoop) as runner:
        assert runner.run(main()) == (0.0, 3.0)


def test_advance_moves_the_clock_by_less_than_a_second_too() -> None:
    """``advance(0.5)`` moves the clock by half a second: any positive step counts."""
    loop = VirtualTimeEventLoop(start=4.0)
    try:
        loop.advance(0.5)
        assert loop.time() == 4.5
        loop.advance(0.001)
        assert loop.time() == 4.501
    finally:
        loop.close()


def test_jumping_with_no_timer_pending_moves_the_clock_by_the_timeout() -> None:
    """``jump_to_next_timer(t)`` with no timer on the loop falls back to ``now + t``."""
    loop = VirtualTimeEventLoop(start=2.0)
    try:
        loop.jump_to_next_timer(3.0)
        assert loop.time() == 5.0
    finally:
        loop.close()


# -- timers -------------------------------------------------------------------------------------


def test_timers_due_together_fire_in_the_order_they_were_scheduled() -> None:
    """Many callbacks due at one instant run in scheduling order (the engine's tie rule), even
    when they were scheduled among timers due earlier and later."""

    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        fired: list[int] = []
        for n in range(40):
            loop.call_at(5.0 if n % 3 else 1.0 + n / 100, fired.append, n)
        done = loop.create_future()
        loop.call_at(9.0, done.set_result, None)
        await done
        return fired

    early = [n for n in range(40) if n % 3 == 0]
    tied = [n for n in range(40) if n % 3]
    assert run_virtual(main()) == early + tied


def test_a_closed_loop_refuses_new_timers() -> None:
    """Scheduling a timer on a closed loop raises asyncio's "Event loop is closed", as on any
    asyncio loop, rather than queueing a timer that will never run."""
    loop = VirtualTimeEventLoop()
    loop.close()
    with pytest.raises(RuntimeError, match="closed"):
        loop.call_later(1.0, print)
    with pytest.raises(RuntimeError, match="closed"):
        loop.call_at(1.0, print)


_HELD: contextvars.ContextVar[object] = contextvars.ContextVar("_HELD")


class _Payload:
    """Something a cancelled timer's context would keep alive."""


def test_cancelled_timers_are_purged_and_release_what_they_held() -> None:
    """When most timers on the loop are cancelled, asyncio drops them from its heap at the next
    turn, so what their contexts referenced can be freed (as on any asyncio loop): a long run
    that keeps setting and cancelling timeouts does not hold them all."""

    def noop() -> None:
        pass

    async def main() -> int:
        loop = asyncio.get_running_loop()
        keeper = loop.call_later(1.0, noop)  # live and earlier: the cancelled ones stay behind
        refs = []
        for n in range(300):
            payload = _Payload()
            refs.append(weakref.ref(payload))
            context = contextvars.Context()
            context.run(_HELD.set, payload)
            loop.call_later(100.0 + n, noop, context=context).cancel()
            del payload, context
        await asyncio.sleep(0)  # one turn of the loop
        gc.collect()
        keeper.cancel()
        return sum(ref() is not None for ref in refs)

    assert run_virtual(main()) == 0


# -- answer_after -------------------------------------------------------------------------------


def test_concurrent_answers_each_end_at_their_own_delay() -> None:
    """Several tasks awaiting ``answer_after`` at once (other timers on the loop) each resume at
    their own delay."""

    async def answer(delay: float) -> float:
        await answer_after(delay)
        return asyncio.get_running_loop().time()

    async def main() -> list[float]:
        return list(await asyncio.gather(answer(1.5), answer(0.5), answer(1.5), answer(3.0)))

    assert run_virtual(main()) == [1.5, 0.5, 1.5, 3.0]


def test_an_answer_cut_short_by_its_timeout_leaves_no_timer_behind() -> None:
    """A request whose timeout ends it at 1 s leaves nothing due at its answer's 10 s: a task
    then waiting forever is a deadlock found at 1 s, the clock never running on to 10 s."""

    async def main() -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1.0):
                await answer_after(10.0)
        await asyncio.get_running_loop().create_future()  # nothing will ever set it

    with asyncio.Runner(loop_factory=VirtualTimeEventLoop) as runner:
        with pytest.raises(DeadlockError):
            runner.run(main())
        assert runner.get_loop().time() == 1.0


# -- threads ------------------------------------------------------------------------------------


def test_a_finished_worker_thread_is_no_longer_waited_for() -> None:
    """Once executor work has finished, the loop no longer waits for threads: a task then
    waiting forever is reported as a deadlock, not left hanging."""

    async def main(pool: ThreadPoolExecutor) -> None:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualTimeEventLoop)
        assert await loop.run_in_executor(pool, sum, (1, 2)) == 3
        assert await loop.run_in_executor(pool, sum, (3, 4)) == 7
        assert not loop.waits_for_threads()
        await loop.create_future()  # nothing will ever set it

    with ThreadPoolExecutor(max_workers=1) as pool:
        assert isinstance(run_guarded(main(pool)), DeadlockError)


def test_after_the_default_executor_shut_down_no_thread_is_waited_for() -> None:
    """Shutting the default executor down counts its helper thread only while it runs: after
    it, a task waiting forever is a deadlock, not a hang."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualTimeEventLoop)
        assert await asyncio.to_thread(sum, (1, 2)) == 3
        await loop.shutdown_default_executor()
        assert not loop.waits_for_threads()
        await loop.create_future()  # nothing will ever set it

    assert isinstance(run_guarded(main()), DeadlockError)
