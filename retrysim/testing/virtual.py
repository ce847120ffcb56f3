"""Virtual time for tests of retrying code: tenacity's sleeps, clock and jitter on one clock.

Inside ``with VirtualTime(seed=7) as vt:`` (the pytest plugin enters it around a marked test):

- tenacity's default sleep (``tenacity.nap.sleep``, what ``@tenacity.retry`` and retrysim's
  sync decorators use unless given ``sleep=``) reads ``time.sleep`` from ``tenacity.nap``'s own
  namespace: that name points at a stand-in whose ``sleep`` moves the virtual clock;
- tenacity's ``time.monotonic()`` (``stop_after_delay``, ``statistics``, retrysim's guards and
  call durations, which read tenacity's clock) reads the virtual clock;
- ``asyncio.sleep`` (``AsyncRetrying``'s default sleep and retrysim's async decorators) is
  recorded, and the loop it runs on is driven by the virtual clock (:mod:`.loops`), so it
  returns at once while ``loop.time()`` moves on;
- jitter drawn by tenacity and retrysim's waits comes from a counter-based stream of ``seed``
  (:mod:`retrysim.sim.streams`), so the same seed gives the same waits.

Only the names tenacity looks up are rebound, never the ``time`` module itself: the test's own
``time.sleep`` still sleeps, and everything is put back when the block ends.

A virtual clock never blocks, so a retry loop that never ends would spin a core for ever. Two
caps stop it (:class:`VirtualLimitError`, raised where the test is, naming the cap):
``max_time``, virtual seconds (a clock about to pass it, by a sleep, a timer or ``advance``),
and ``max_steps``, tenacity attempts and sleeps counted together (a loop with zero waits, whose
clock never moves). What is kept per step is a float or an int, never an attempt's outcome,
so memory stays bounded too. The pytest plugin sets both (README: Testing).
"""

from __future__ import annotations

import asyncio
import functools
import types
import weakref
from array import array
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import tenacity
import tenacity.nap
import tenacity.wait

from retrysim.retry import waits as retrysim_waits
from retrysim.sim.aio import VirtualTimeEventLoop
from retrysim.sim.clock import rebind
from retrysim.sim.streams import JITTER, Stream, stream_key
from retrysim.testing.loops import Attachment, UnsupportedLoopError

T = TypeVar("T")

_active: VirtualTime | None = None

#: The caps a ``VirtualTime`` (and so each test under the plugin) gets unless told otherwise:
#: a virtual day, and 100,000 tenacity attempts and sleeps (about two seconds of real work).
DEFAULT_MAX_TIME = 86_400.0
DEFAULT_MAX_STEPS = 100_000


class VirtualLimitError(BaseException):
    """A test in virtual time passed one of its caps: a retry loop that would never end.

    A ``BaseException``, like ``KeyboardInterrupt``: ``except Exception`` in the code under
    test, and tenacity's default retry, let it through rather than retrying it for ever. Once
    raised, every later step on the clock raises it again.
    """


def active() -> VirtualTime | None:
    """The virtual time in force right now, if any (faults read their clock from it)."""
    return _active


class _TenacityTime(types.ModuleType):
    """Stands in for the ``time`` module in tenacity's and tenacity.nap's namespaces."""

    def __init__(self, owner: VirtualTime) -> None:
        super().__init__("time")
        self.monotonic = owner.read
        self.time = owner.read
        self.perf_counter = owner.read
        self.sleep = owner.sleep


class _Jitter(Stream):
    """The seeded stream tenacity's jitter draws from while a virtual time is active."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"virtual-time jitter supports random() and uniform(), not {name}()")


class VirtualTime:
    """One virtual clock for a test, and what happened on it.

    ``now`` is the virtual seconds elapsed, ``sleeps`` every sleep in order, ``attempts`` the
    attempts tenacity started; ``advance(s)`` lets time pass without anyone sleeping.
    ``max_time`` (virtual seconds, ``math.inf``: none) and ``max_steps`` (tenacity attempts and
    sleeps together) are the caps past which a step raises :class:`VirtualLimitError`.
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        max_time: float = DEFAULT_MAX_TIME,
        max_steps: int = DEFAULT_MAX_STEPS,
    ) -> None:
        if not max_time > 0:
            raise ValueError(f"max_time is a positive number of virtual seconds, not {max_time!r}")
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"max_steps is a whole number of at least 1, not {max_steps!r}")
        self.seed = seed
        self.max_time = float(max_time)
        self.max_steps = max_steps
        self._now = 0.0
        self._sleeps = array("d")  # 8 bytes a sleep, however many
        self._calls = array("q")  # each call's attempts so far, in order of starting
        self._index: weakref.WeakKeyDictionary[tenacity.RetryCallState, int] = (
            weakref.WeakKeyDictionary()
        )
        self._steps = 0
        self._stopped: str | None = None
        self._loops: dict[asyncio.AbstractEventLoop, Attachment] = {}
        self._undo: Callable[[], None] | None = None
        self._tenacity_time = _TenacityTime(self)
        self._jitter = _Jitter(stream_key(seed, JITTER), 0)
        self._real_sleep: Callable[..., Coroutine[Any, Any, Any]] = asyncio.sleep

    def __repr__(self) -> str:
        return (
            f"<VirtualTime seed={self.seed} now={self._now:.6g}s "
            f"sleeps={len(self._sleeps)} attempts={self.attempts}>"
        )

    # --- what a test asserts on -----------------------------------------------------------

    @property
    def now(self) -> float:
        """Virtual seconds since the clock started (sleeps, latency and ``advance`` add up)."""
        return self._now

    @property
    def sleeps(self) -> list[float]:
        """Every sleep requested through tenacity's sleep or ``asyncio.sleep``, in order (a
        copy). Fault latency and ``advance`` pass time without appearing here."""
        return self._sleeps.tolist()

    @property
    def attempts(self) -> int:
        """Attempts tenacity started on this clock, over every retried call (a retrysim
        guard's refusal counts: tenacity made the attempt, the guard refused to send it)."""
        return sum(self._calls)

    @property
    def attempts_per_call(self) -> list[int]:
        """For each retried call on this clock, in order of starting, its attempts so far."""
        return self._calls.tolist()

    @property
    def steps(self) -> int:
        """Tenacity attempts and recorded sleeps so far: what ``max_steps`` caps."""
        return self._steps

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` of virtual time pass (a breaker's recovery, a cache's expiry)."""
        if not seconds >= 0:
            raise ValueError(f"advance() needs a non-negative number of seconds, not {seconds}")
        self._check_time(self._now + seconds)
        self._now += seconds

    # --- the caps ---------------------------------------------------------------------------

    def _stop(self, why: str) -> VirtualLimitError:
        self._stopped = self._stopped or why
        return VirtualLimitError(self._stopped)

    def _check_time(self, target: float) -> None:
        """Raise before the clock passes ``max_time`` (or at all, once a cap was hit)."""
        if self._stopped is not None:
            raise VirtualLimitError(self._stopped)
        if target > self.max_time:
            raise self._stop(
                f"virtual time would pass {self.max_time:g} s (the retrysim max_time cap) "
                f"after {self._steps:,} tenacity attempts and sleeps: a retry loop that never "
                "ends? Raise it with @pytest.mark.retrysim(max_time=...) or the "
                "retrysim_max_time ini option"
            )

    def _step(self) -> None:
        """Count one tenacity attempt or sleep; raise past ``max_steps``."""
        if self._stopped is not None:
            raise VirtualLimitError(self._stopped)
        if self._steps >= self.max_steps:
            raise self._stop(
                f"{self.max_steps:,} tenacity attempts and sleeps (the retrysim max_steps cap) "
                f"at virtual time {self._now:g} s: a retry loop that never ends (zero waits?). "
                "Raise it with @pytest.mark.retrysim(max_steps=...) or the retrysim_max_steps "
                "ini option"
            )
        self._steps += 1

    # --- the clock, as tenacity and the loops see it --------------------------------------

    def read(self) -> float:
        return self._now

    def move_to(self, seconds: float) -> None:
        if seconds > self._now:
            self._check_time(seconds)
            self._now = seconds

    def sleep(self, seconds: float) -> None:
        """tenacity's ``time.sleep``: recorded, then the clock moves on; returns at once."""
        if not seconds >= 0:  # what time.sleep says to a negative or NaN duration
            raise ValueError("sleep length must be non-negative")
        self._step()
        self._check_time(self._now + seconds)
        self._sleeps.append(float(seconds))
        self._now += seconds

    async def _asyncio_sleep(self, delay: float, result: T | None = None) -> T | None:
        """``asyncio.sleep`` while active: recorded when the loop runs on this clock (and
        refused, in the sleeping task, when it would pass a cap)."""
        if self.drives(asyncio.get_running_loop()):
            self._step()
            if delay > 0:
                self._check_time(self._now + delay)
            self._sleeps.append(float(delay))
        returned: T | None = await self._real_sleep(delay, result)
        return returned

    async def pause(self, seconds: float) -> None:
        """Let ``seconds`` pass on the running loop without recording a sleep (fault latency)."""
        self.drives(asyncio.get_running_loop())
        await self._real_sleep(seconds)

    def drives(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Attach ``loop`` to this clock if it is not yet; False for a loop with a virtual
        clock of its own (retrysim's ``VirtualTimeEventLoop``: a simulation inside the test).

        Raises :class:`UnsupportedLoopError` for a loop that cannot be driven (uvloop, say):
        sleeping for real there would be the silent failure this module exists to prevent.
        """
        if loop in self._loops:
            return True
        if isinstance(loop, VirtualTimeEventLoop):
            return False
        self._loops[loop] = Attachment(loop, self)
        return True

    # --- running ----------------------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` to completion on a new asyncio loop driven by this clock.

        For async tests that no plugin runs (and for code outside pytest); must be active.
        """
        if _active is not self:
            raise RuntimeError("VirtualTime.run() needs the virtual time active: use `with vt:`")
        with asyncio.Runner(loop_factory=asyncio.SelectorEventLoop) as runner:
            self.drives(runner.get_loop())
            return runner.run(coro)

    def virtualised(
        self, func: Callable[..., Coroutine[Any, Any, T]]
    ) -> Callable[..., Coroutine[Any, Any, T]]:
        """``func`` as a coroutine function that first puts the loop it runs on onto this clock
        (how a test run by pytest-asyncio or anyio gets virtual time: their loop, our clock)."""

        @functools.wraps(func)
        async def on_virtual_time(*args: Any, **kwargs: Any) -> T:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                raise UnsupportedLoopError(
                    "retrysim virtual time runs async tests on asyncio; this one runs on "
                    "another event loop (trio?): use anyio's asyncio backend"
                ) from None
            self.drives(loop)
            return await func(*args, **kwargs)

        return on_virtual_time

    def __enter__(self) -> VirtualTime:
        # One virtual time at a time, process-wide: the names it rebinds are process-wide too.
        global _active  # noqa: PLW0603
        if _active is not None:
            raise RuntimeError("a retrysim VirtualTime is already active; they do not nest")
        self._real_sleep = asyncio.sleep
        self._undo = rebind(self._bindings())
        _active = self
        return self

    def __exit__(self, *exc_info: object) -> None:
        global _active  # noqa: PLW0603
        try:
            for attachment in self._loops.values():
                attachment.detach()
            self._loops.clear()
        finally:
            _active = None
            if self._undo is not None:
                self._undo()
                self._undo = None

    def _bindings(self) -> Iterator[tuple[object, str, object]]:
        yield tenacity, "time", self._tenacity_time
        yield tenacity.nap, "time", self._tenacity_time
        yield tenacity.wait, "random", self._jitter
        yield retrysim_waits, "random", self._jitter
        yield asyncio, "sleep", self._asyncio_sleep
        yield tenacity.RetryCallState, "__init__", self._counting_init()
        yield tenacity.RetryCallState, "prepare_for_next_attempt", self._counting_next()

    def _counting_init(self) -> Callable[..., None]:
        """``RetryCallState.__init__`` that also counts each call made on this clock (its
        first attempt is a step).

        A simulation run inside the test puts tenacity on its own clock and jitter for its
        run, so its many calls are not counted here. Only a weak reference to the state is
        kept: a finished call's outcome (its exception, its traceback) is freed as usual.
        """
        original = tenacity.RetryCallState.__init__
        calls, index = self._calls, self._index
        ours = self._tenacity_time
        jitter = self._jitter

        def __init__(state: tenacity.RetryCallState, *args: Any, **kwargs: Any) -> None:  # noqa: N807
            original(state, *args, **kwargs)
            if vars(tenacity)["time"] is ours and vars(tenacity.wait)["random"] is jitter:
                index[state] = len(calls)
                calls.append(state.attempt_number)
                self._step()

        return __init__

    def _counting_next(self) -> Callable[[tenacity.RetryCallState], None]:
        """``RetryCallState.prepare_for_next_attempt`` that counts a call's next attempt."""
        original = tenacity.RetryCallState.prepare_for_next_attempt
        calls, index = self._calls, self._index

        def prepare_for_next_attempt(state: tenacity.RetryCallState) -> None:
            original(state)
            found = index.get(state)
            if found is not None:
                calls[found] = state.attempt_number
                self._step()

        return prepare_for_next_attempt
