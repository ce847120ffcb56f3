"""Driving an existing asyncio loop by a virtual clock, for as long as a test runs.

A test's event loop is usually made by someone else: pytest-asyncio's runner, anyio's test
runner, an ``asyncio.run`` inside the test. Rather than asking each of them for a loop of our
own class (pytest-asyncio's hook for that is new and per-session, anyio's differs again), the
clock is put into the loop they made. Three instance attributes change: ``time()`` reads the
virtual clock; the selector, when asked to wait for the next timer, moves the clock to that
timer's deadline instead of blocking; ``run_in_executor`` counts work in threads, so the clock
never jumps while a thread is working (the loop then waits on the selector for real, as it
would without us). ``_scheduled`` (the timer heap) is a CPython asyncio internal read as
:class:`retrysim.sim.aio.VirtualTimeEventLoop` reads it.

When the test ends the loop gets its selector and executor method back and a ``time()`` that is
the real clock shifted to continue from the virtual one, so time never runs backwards for the
fixtures that tear down on it and every timer it still holds keeps its meaning.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import selectors
from collections.abc import Callable
from typing import Any, Protocol

from retrysim.sim.aio import VirtualTimeEventLoop


class UnsupportedLoopError(RuntimeError):
    """The running event loop is not one virtual time can drive (uvloop, a proactor, trio)."""


class Timeline(Protocol):
    """The clock a loop is attached to: one float of virtual seconds, read and moved."""

    def read(self) -> float: ...

    def move_to(self, seconds: float) -> None: ...


def can_drive(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether ``loop`` is a selector-based asyncio loop whose clock can be replaced."""
    return (
        isinstance(loop, asyncio.BaseEventLoop)
        and not isinstance(loop, VirtualTimeEventLoop)
        and isinstance(getattr(loop, "_selector", None), selectors.BaseSelector)
        and isinstance(getattr(loop, "_scheduled", None), list)
    )


class _Selector:
    """Stands in for the loop's selector: a wait for the next timer moves the clock instead."""

    def __init__(self, real: selectors.BaseSelector, attachment: Attachment) -> None:
        self._real = real
        self._attachment = attachment

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._real.select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None or self._attachment.threads > 0:
            # Nothing is scheduled (a thread or a signal will wake us), or a thread is working:
            # wait for real, as the loop would; the clock does not jump past a thread's work.
            return self._real.select(timeout)
        self._attachment.jump_to_next_timer(timeout)
        return []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)  # register, unregister, get_key, get_map, close, ...


class Attachment:
    """One loop driven by a timeline: what was changed, and how to give it back."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeline: Timeline) -> None:
        if not can_drive(loop):
            raise UnsupportedLoopError(
                f"retrysim virtual time drives asyncio's selector event loop; this test runs on "
                f"{type(loop).__module__}.{type(loop).__qualname__}, whose clock and waits "
                "cannot be replaced"
            )
        self.loop = loop
        self.timeline = timeline
        self.threads = 0
        self._real_time: Callable[[], float] = loop.time
        self._real_selector: selectors.BaseSelector = loop._selector  # type: ignore[attr-defined]
        self._real_run_in_executor = loop.run_in_executor
        # A loop with no timer yet depends on nothing its clock said: it adopts the test's
        # timeline as is, so loop.time() and the test's clock agree to the bit. A loop that
        # already holds timers (an async fixture's) keeps its own reading; the two then differ
        # by a fixed offset and each of those timers stays as far away as it was.
        pending = loop._scheduled  # type: ignore[attr-defined]
        self.offset = self._real_time() - timeline.read() if pending else 0.0
        loop._selector = _Selector(self._real_selector, self)  # type: ignore[attr-defined]
        setattr(loop, "time", self.time)  # noqa: B010 (an instance attribute shadows the method)
        setattr(loop, "run_in_executor", self.run_in_executor)  # noqa: B010

    def time(self) -> float:
        return self.timeline.read() + self.offset

    def jump_to_next_timer(self, timeout: float) -> None:
        """Move the clock so that ``time()`` reads the earliest timer's deadline, or later.

        With a zero offset that is the deadline exactly, as in the engine; with an offset the
        clock is nudged up float step by float step until ``time()`` is not short of it, so the
        loop never spins on a timer a rounding error away.
        """
        scheduled = self.loop._scheduled  # type: ignore[attr-defined]
        deadline = scheduled[0].when() if scheduled else self.time() + timeout
        target = deadline - self.offset
        while target + self.offset < deadline:
            target = math.nextafter(target, math.inf)
        if target > self.timeline.read():
            self.timeline.move_to(target)

    def run_in_executor(
        self,
        executor: concurrent.futures.Executor | None,
        func: Callable[..., Any],
        *args: Any,
    ) -> asyncio.Future[Any]:
        future = self._real_run_in_executor(executor, func, *args)
        self.threads += 1

        def done(_: asyncio.Future[Any]) -> None:
            self.threads -= 1

        future.add_done_callback(done)
        return future

    def detach(self) -> None:
        """Give the loop back its selector and executor, and a real clock that goes on from
        the virtual reading (so a timer set in virtual time keeps its distance)."""
        loop = self.loop
        if loop._selector is not None:  # type: ignore[attr-defined]  # None once closed
            loop._selector = self._real_selector  # type: ignore[attr-defined]
        vars(loop).pop("run_in_executor", None)
        shift = self.time() - self._real_time()
        real_time = self._real_time

        def continued() -> float:
            return real_time() + shift

        setattr(loop, "time", continued)  # noqa: B010
