"""Faults for a test's dependency: down, flaky or slow on a schedule, in virtual time.

The same fault kinds a scenario's ``[[faults]]`` table has (an outage, a flaky window, a latency
spike), applied to one real function or fake client instead of a simulated fleet::

    redis_get = wrap(fake_redis.get, outage(end=2.5))           # down for the first 2.5 s
    client = wrap(FakeClient(), flaky(0.3), latency(0.05))       # every public method
    @outage(start=10, end=20, error="RateLimited")               # a fault is a decorator too
    async def fetch(url): ...

Each call is checked against the faults in the order given: a latency fault that covers the
call's time waits (virtual time under :class:`~retrysim.testing.VirtualTime`, real time
otherwise), a failing fault that covers it raises a fresh error and the call goes no further;
then the real function runs. Times are the virtual clock's ``now`` when a virtual time is
active, else seconds since the wrapper was made. Flaky draws are counter-based
(:mod:`retrysim.sim.streams`): keyed by (seed, dependency name, fault position, call number),
so a seed replays the same failures whatever else the test does. The simulator's engine is not
involved: these are a few lines per call, in the caller's own thread or task.
"""

from __future__ import annotations

import copy
import functools
import inspect
import math
import time
import zlib
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from typing import Any, ParamSpec, Protocol, TypeVar, cast, overload

from retrysim.sim.streams import FAULT_BASE, stream_key, unit
from retrysim.testing.virtual import active

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
T = TypeVar("T")

#: What a failing fault raises: an exception class, an instance (copied for each call, so
#: tracebacks never pile up), one of retrysim's error names ("ConnectionError", "RateLimited",
#: "ServerError", ...: ``retrysim.names.ErrorName``) or a function returning an exception.
ErrorSpec = type[BaseException] | BaseException | str | Callable[[], BaseException]


def _error_factory(spec: ErrorSpec) -> Callable[[str], BaseException]:
    """``make(description)``: a fresh exception for each injected failure."""
    if isinstance(spec, BaseException):
        instance = spec
        return lambda _description: copy.copy(instance)
    if isinstance(spec, str):
        from retrysim.sim.failures import ERROR_CLASSES  # only when a name is used

        if spec not in ERROR_CLASSES:
            raise ValueError(
                f"unknown error name {spec!r}; use an exception class or one of: "
                + ", ".join(ERROR_CLASSES)
            )
        return ERROR_CLASSES[spec]  # called with the description, as a class is
    if isinstance(spec, type) and issubclass(spec, BaseException):
        return spec
    if callable(spec):
        factory = cast("Callable[[], BaseException]", spec)
        return lambda _description: factory()
    raise TypeError(f"error= takes an exception class, instance, name or factory, not {spec!r}")


@dataclass(frozen=True)
class FaultCall:
    """One call of a wrapped dependency, as the dependency saw it."""

    at: float  #: when it arrived (the clock of the faults)
    error: BaseException | None  #: what it raised, injected or its own; None if it returned
    injected: bool  #: whether a fault raised ``error``
    delay: float  #: seconds of latency the faults added

    @property
    def ok(self) -> bool:
        return self.error is None


class Fault:
    """Base of the fault kinds: a window ``[start, end)`` of the faults' clock."""

    start: float
    end: float

    def covers(self, t: float) -> bool:
        return self.start <= t < self.end

    def delay(self) -> float:
        """Seconds this fault makes a covered call wait (latency)."""
        return 0.0

    def failure(self, dependency: Dependency, position: int, call: int) -> BaseException | None:
        """The error this fault makes covered call number ``call`` raise, if any."""
        return None

    @overload
    def __call__(self, target: Callable[P, R]) -> Faulty[P, R]: ...

    @overload
    def __call__(self, target: T) -> T: ...

    def __call__(self, target: Any) -> Any:
        """``@outage(end=2.5)`` above a function (or ``outage(...)(client)``): :func:`wrap`."""
        return wrap(target, self)

    def _check_window(self) -> None:
        if not self.start < self.end:
            raise ValueError(f"a fault's window needs start < end, not [{self.start}, {self.end})")


@dataclass(frozen=True)
class Outage(Fault):
    """Every call in the window fails at once with ``error``."""

    start: float = 0.0
    end: float = math.inf
    error: ErrorSpec = ConnectionError

    def __post_init__(self) -> None:
        self._check_window()
        _error_factory(self.error)  # a bad name fails here, not at the first call

    def failure(self, dependency: Dependency, position: int, call: int) -> BaseException | None:
        return _error_factory(self.error)(f"{dependency.name}: outage (injected)")


@dataclass(frozen=True)
class Flaky(Fault):
    """Each call in the window fails with probability ``p``, drawn from ``seed``'s stream
    (the active virtual time's seed when None, else 0)."""

    p: float
    error: ErrorSpec = ConnectionError
    start: float = 0.0
    end: float = math.inf
    seed: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"flaky p is a probability in [0, 1], not {self.p}")
        self._check_window()
        _error_factory(self.error)

    def failure(self, dependency: Dependency, position: int, call: int) -> BaseException | None:
        seed = self.seed
        if seed is None:
            clock = active()
            seed = clock.seed if clock is not None else 0
        key = stream_key(seed, FAULT_BASE + position) ^ dependency.salt
        if unit(key, call) >= self.p:
            return None
        return _error_factory(self.error)(f"{dependency.name}: flaky failure (injected)")


@dataclass(frozen=True)
class Latency(Fault):
    """Each call in the window waits ``seconds`` first (a number, or a function called for
    each call: ``itertools.cycle([2.0, 0.01]).__next__``, a seeded ``random.Random``...)."""

    seconds: float | Callable[[], float]
    start: float = 0.0
    end: float = math.inf

    def __post_init__(self) -> None:
        if not callable(self.seconds) and not self.seconds >= 0:
            raise ValueError(f"latency needs seconds >= 0, not {self.seconds}")
        self._check_window()

    def delay(self) -> float:
        seconds = float(self.seconds() if callable(self.seconds) else self.seconds)
        if not seconds >= 0:
            raise ValueError(f"latency function returned {seconds}; seconds must be >= 0")
        return seconds


def outage(start: float = 0.0, end: float = math.inf, error: ErrorSpec = ConnectionError) -> Outage:
    """Down from ``start`` to ``end`` (seconds of the faults' clock): calls raise ``error``."""
    return Outage(start, end, error)


def flaky(
    p: float,
    error: ErrorSpec = ConnectionError,
    *,
    start: float = 0.0,
    end: float = math.inf,
    seed: int | None = None,
) -> Flaky:
    """Each call fails with probability ``p`` (seeded: the same seed fails the same calls)."""
    return Flaky(p, error, start, end, seed)


def latency(
    seconds: float | Callable[[], float], *, start: float = 0.0, end: float = math.inf
) -> Latency:
    """Each call takes ``seconds`` longer (virtual seconds under virtual time)."""
    return Latency(seconds, start, end)


class Dependency:
    """The schedule and call log one wrapper (or one client's methods) share."""

    def __init__(self, name: str, faults: tuple[Fault, ...]) -> None:
        for fault in faults:
            if not isinstance(fault, Fault):
                raise TypeError(f"wrap() takes faults (outage, flaky, latency), not {fault!r}")
        self.name = name
        self.faults = faults
        self.calls: list[FaultCall] = []
        self.salt = zlib.crc32(name.encode())  # not hash(): the same in every process
        self._origin = time.monotonic()

    def now(self) -> float:
        clock = active()
        return clock.now if clock is not None else time.monotonic() - self._origin

    def steps(self, call: int, at: float) -> Generator[float, None, float]:
        """Yield each latency to wait, raise the injected error if one hits; return the delay.

        One generator for the sync and async wrappers, which differ only in how they wait.
        """
        delayed = 0.0
        for position, fault in enumerate(self.faults):
            if not fault.covers(self.now()):
                continue
            seconds = fault.delay()
            if seconds > 0:
                yield seconds
                delayed += seconds
            error = fault.failure(self, position, call)
            if error is not None:
                self.calls.append(FaultCall(at, error, injected=True, delay=delayed))
                raise error
        return delayed


def _wait_sync(seconds: float) -> None:
    clock = active()
    if clock is not None:
        clock.advance(seconds)
    else:
        time.sleep(seconds)


async def _wait_async(seconds: float) -> None:
    clock = active()
    if clock is not None:
        await clock.pause(seconds)
    else:
        import asyncio

        await asyncio.sleep(seconds)


class Faulty(Protocol[P, R_co]):
    """A wrapped function: called like the original; ``calls`` is what the dependency saw."""

    calls: list[FaultCall]

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...


def _run_sync(dependency: Dependency, func: Callable[..., Any], args: Any, kwargs: Any) -> Any:
    call, at = len(dependency.calls), dependency.now()
    steps = dependency.steps(call, at)
    while True:
        try:
            _wait_sync(next(steps))
        except StopIteration as done:
            delayed: float = done.value
            break
    try:
        result = func(*args, **kwargs)
    except BaseException as error:
        dependency.calls.append(FaultCall(at, error, injected=False, delay=delayed))
        raise
    dependency.calls.append(FaultCall(at, None, injected=False, delay=delayed))
    return result


async def _run_async(
    dependency: Dependency, func: Callable[..., Any], args: Any, kwargs: Any
) -> Any:
    call, at = len(dependency.calls), dependency.now()
    steps = dependency.steps(call, at)
    while True:
        try:
            await _wait_async(next(steps))
        except StopIteration as done:
            delayed: float = done.value
            break
    try:
        result = await func(*args, **kwargs)
    except BaseException as error:
        dependency.calls.append(FaultCall(at, error, injected=False, delay=delayed))
        raise
    dependency.calls.append(FaultCall(at, None, injected=False, delay=delayed))
    return result


def _wrap_function(func: Callable[..., Any], dependency: Dependency) -> Any:
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def faulty_async(*args: Any, **kwargs: Any) -> Any:
            return await _run_async(dependency, func, args, kwargs)

        wrapper: Any = faulty_async
    else:

        @functools.wraps(func)
        def faulty(*args: Any, **kwargs: Any) -> Any:
            return _run_sync(dependency, func, args, kwargs)

        wrapper = faulty
    wrapper.calls = dependency.calls
    wrapper.faults = dependency.faults
    return wrapper


class _FaultyClient:
    """A fake client whose public methods (or the ``methods`` named) go through the faults:
    one schedule and one call log for all of them, as for one real dependency."""

    def __init__(
        self, target: object, dependency: Dependency, methods: frozenset[str] | None
    ) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_dependency", dependency)
        object.__setattr__(self, "_methods", methods)
        object.__setattr__(self, "_wrapped", {})

    @property
    def calls(self) -> list[FaultCall]:
        return self._dependency.calls  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        wrapped: dict[str, Any] = object.__getattribute__(self, "_wrapped")
        if name in wrapped:
            return wrapped[name]
        value = getattr(object.__getattribute__(self, "_target"), name)
        methods: frozenset[str] | None = object.__getattribute__(self, "_methods")
        chosen = name in methods if methods is not None else not name.startswith("_")
        if chosen and callable(value):
            wrapped[name] = _wrap_function(value, object.__getattribute__(self, "_dependency"))
            return wrapped[name]
        return value

    def __setattr__(self, name: str, value: object) -> None:
        setattr(object.__getattribute__(self, "_target"), name, value)

    def __repr__(self) -> str:
        return f"<faulty {object.__getattribute__(self, '_target')!r}>"


@overload
def wrap(target: Callable[P, R], *faults: Fault, name: str | None = None) -> Faulty[P, R]: ...


@overload
def wrap(
    target: T, *faults: Fault, name: str | None = None, methods: Iterable[str] | None = None
) -> T: ...


def wrap(
    target: Any, *faults: Fault, name: str | None = None, methods: Iterable[str] | None = None
) -> Any:
    """``target`` with ``faults`` applied to every call, in order.

    A function (sync or async) gives a function of the same kind with a ``calls`` list of
    :class:`FaultCall`; any other object gives a proxy whose public methods (or those named in
    ``methods``) are wrapped and share one schedule and one ``calls`` list. ``name`` (default:
    the function's or class's qualified name) keys the flaky draws and names the errors.
    """
    is_function = inspect.isroutine(target) or isinstance(target, functools.partial)
    if name is None:
        named = target.func if isinstance(target, functools.partial) else target
        owner = named if is_function else type(named)
        name = f"{getattr(owner, '__module__', '?')}.{getattr(owner, '__qualname__', '?')}"
    dependency = Dependency(name, faults)
    if is_function:
        if methods is not None:
            raise TypeError("methods= picks a client's methods; a function is wrapped whole")
        return _wrap_function(target, dependency)
    return _FaultyClient(target, dependency, None if methods is None else frozenset(methods))


def calls_of(dependency: object) -> list[FaultCall]:
    """The calls a wrapped function or client saw (its ``calls``, for type checkers)."""
    found = getattr(dependency, "calls", None)
    if not isinstance(found, list):
        raise TypeError(f"{dependency!r} was not made by retrysim.testing.wrap")
    return found


class Faults:
    """What the ``faults`` fixture gives a test: the fault kinds and :func:`wrap`, with flaky
    draws seeded by the test's seed."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    outage = staticmethod(outage)
    latency = staticmethod(latency)
    wrap = staticmethod(wrap)
    calls_of = staticmethod(calls_of)

    def flaky(
        self,
        p: float,
        error: ErrorSpec = ConnectionError,
        *,
        start: float = 0.0,
        end: float = math.inf,
        seed: int | None = None,
    ) -> Flaky:
        """Like :func:`flaky`, drawing from the test's seed unless given another."""
        return Flaky(p, error, start, end, self.seed if seed is None else seed)
