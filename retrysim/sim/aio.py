"""A virtual-time asyncio event loop: real coroutines, a clock that jumps to the next timer.

``asyncio.sleep(30)`` returns at once in wall time while ``loop.time()`` advances by 30 s, so
real decorated code (tenacity's ``AsyncRetrying`` sleeps through ``asyncio.sleep``) runs in
virtual time. I/O readiness and thread wake-ups still go through a real selector; only waiting
for a timer is skipped.

Use :func:`run_virtual` for a coroutine, or ``asyncio.Runner(loop_factory=VirtualTimeEventLoop)``.
Combine with :func:`retrysim.sim.clock.tenacity_virtual_time` so tenacity's own clock
(``stop_after_delay``) follows the loop too; :func:`run_virtual` does that for you.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import heapq
import itertools
import math
import selectors
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar, TypeVarTuple

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class DeadlockError(RuntimeError):
    """Every task waits on something that no timer, I/O or thread will ever deliver."""


class _VirtualSelector(selectors.DefaultSelector):
    """A real selector whose timed waits advance the loop's virtual clock instead of blocking."""

    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualTimeEventLoop | None = None

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        assert self.loop is not None
        if timeout is None:
            if self.loop.waits_for_threads():
                return super().select(None)  # a worker thread will wake us through the self-pipe
            raise DeadlockError("virtual-time loop has nothing scheduled: every task waits forever")
        self.loop.jump_to_next_timer(timeout)
        return []


class _FifoTimer(asyncio.TimerHandle):
    """A timer that sorts after every earlier-scheduled timer due at the same instant.

    asyncio orders its timer heap by deadline alone, and a heap does not keep the insertion
    order of equal keys, so timers due together would fire in an order that depends on the
    heap's shape. Guard state shared by many clients (a fleet-wide breaker, budget or limiter)
    depends on that order; the engine's kernel runs ties in scheduling order, and so does this.
    """

    __slots__ = ("_seq",)

    def __init__(self, seq: int, *args: Any) -> None:
        super().__init__(*args)
        self._seq = seq

    def __lt__(self, other: object) -> bool:
        if isinstance(other, _FifoTimer) and self.when() == other.when():
            return self._seq < other._seq
        return super().__lt__(other)  # type: ignore[operator]


class VirtualTimeEventLoop(asyncio.SelectorEventLoop):
    """An asyncio loop whose ``time()`` is virtual and starts at ``start`` (default 0.0).

    Timers due at the same instant fire in the order they were scheduled, as the engine's
    events do.
    """

    def __init__(self, start: float = 0.0) -> None:
        selector = _VirtualSelector()
        super().__init__(selector)
        selector.loop = self
        self._virtual_now = float(start)
        self._pending_threads = 0
        self._timer_seq = itertools.count()

    def call_at(
        self,
        when: float,
        callback: Callable[[*Ts], object],
        *args: *Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        """asyncio's ``call_at``, with a timer that keeps ties in scheduling order."""
        self._check_closed()  # type: ignore[attr-defined]
        timer = _FifoTimer(next(self._timer_seq), when, callback, args, self, context)
        heapq.heappush(self._scheduled, timer)  # type: ignore[attr-defined]
        timer._scheduled = True  # type: ignore[attr-defined]
        return timer

    def time(self) -> float:
        return self._virtual_now

    # asyncio runs every timer due before ``time() + _clock_resolution`` in one batch, at the
    # current time. With the real clock's resolution (1 ns) a timer due one float step later
    # would run early, at a time it was not set for. One float step ahead of the clock means
    # "due now or earlier": each later deadline gets its own exact jump of the clock.
    @property
    def _clock_resolution(self) -> float:
        return math.ulp(self._virtual_now)

    @_clock_resolution.setter
    def _clock_resolution(self, _value: float) -> None:
        """asyncio's constructor assigns the real clock's resolution; it does not apply here."""

    def advance(self, seconds: float) -> None:
        """Move the clock forward (never back) by ``seconds``."""
        if seconds > 0:
            self._virtual_now += seconds

    def jump_to_next_timer(self, timeout: float) -> None:
        """Set the clock to the earliest timer's deadline exactly.

        ``now + (deadline - now)`` is not always ``deadline`` in floating point; a timer set
        for ``t + d`` must fire at exactly ``t + d``, as it does in the engine. The deadline is
        read from the loop's timer heap (``_scheduled``, a CPython asyncio internal), falling
        back to ``now + timeout`` if that is ever unavailable.
        """
        scheduled = getattr(self, "_scheduled", None)
        if scheduled:
            deadline = scheduled[0].when()
            self._virtual_now = max(self._virtual_now, deadline)
            return
        self.advance(timeout)

    def waits_for_threads(self) -> bool:
        return self._pending_threads > 0

    def run_in_executor(
        self,
        executor: concurrent.futures.Executor | None,
        func: Callable[[*Ts], T],
        *args: *Ts,
    ) -> asyncio.Future[T]:
        future = super().run_in_executor(executor, func, *args)
        self._pending_threads += 1

        def done(_: asyncio.Future[T]) -> None:
            self._pending_threads -= 1

        future.add_done_callback(done)
        return future

    async def shutdown_default_executor(self, *args: Any) -> None:
        # Shutting the default executor down waits on a helper thread: count it as pending so
        # the selector blocks for its wake-up instead of reporting a deadlock.
        self._pending_threads += 1
        try:
            await super().shutdown_default_executor(*args)
        finally:
            self._pending_threads -= 1


async def answer_after(delay: float) -> None:
    """``asyncio.sleep(delay)``, over before an ``asyncio.timeout`` of this task due then too.

    The engine's rule for events due at one instant: the answer (or a reset), then the
    client's timeout. A timeout entered around the request (a decorator's ``attempt_timeout``)
    set its timer before the request set its own, so it would fire first; and even fired
    after it, in the same turn of the loop, it would cancel this task before it resumes. So
    such a timeout is set again for the same instant after this sleep's timer, and when that
    fires, set again for now: asyncio then runs it after this task's next step, which leaves
    the timeout's ``async with`` and so cancels it.
    """
    loop = asyncio.get_running_loop()
    due = loop.time() + delay  # what asyncio.sleep's call_later computes
    woken = loop.create_future()
    timeouts = _timeouts_due(loop, due)
    timer = loop.call_at(due, _wake, woken, timeouts)
    for timeout in timeouts:
        timeout.reschedule(due)  # behind this sleep's timer
    try:
        await woken
    finally:
        timer.cancel()


def _wake(future: asyncio.Future[None], timeouts: list[asyncio.Timeout]) -> None:
    if future.done():
        return
    future.set_result(None)  # the task's next step is queued now
    for timeout in timeouts:  # and the timeouts after it, at the same instant
        if timeout.when() is not None and not timeout.expired():
            timeout.reschedule(timeout.when())


def _timeouts_due(loop: asyncio.AbstractEventLoop, due: float) -> list[asyncio.Timeout]:
    """This task's ``asyncio.timeout`` contexts whose timer is due at ``due`` (found on the
    loop's timer heap, a CPython asyncio internal; none found is no harm: a tie is then
    decided in scheduling order)."""
    task = asyncio.current_task()
    found = []
    for handle in getattr(loop, "_scheduled", ()):
        owner = getattr(getattr(handle, "_callback", None), "__self__", None)
        if (
            isinstance(owner, asyncio.Timeout)
            and not handle.cancelled()
            and handle.when() == due
            and getattr(owner, "_task", None) is task
        ):
            found.append(owner)
    return found


def run_virtual(coro: Coroutine[Any, Any, T], *, start: float = 0.0) -> T:
    """Run ``coro`` to completion on a fresh virtual-time loop, with tenacity on its clock."""
    from retrysim.sim.clock import tenacity_virtual_time

    with asyncio.Runner(loop_factory=lambda: VirtualTimeEventLoop(start)) as runner:
        loop = runner.get_loop()
        with tenacity_virtual_time(loop.time):
            return runner.run(coro)
