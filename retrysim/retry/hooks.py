"""Hooks: tell a service when a call retries, gives up or a circuit breaker changes state;
and fallbacks: what a call that gave up returns instead of raising.

A service reports these to its error tracker or pages someone. Hooks come two ways: per
decorated function (the ``on_retry=``, ``on_exhausted=`` and ``on_breaker_change=`` options)
and process-wide (:func:`add_retry_hook`, :func:`add_exhausted_hook`, :func:`add_breaker_hook`),
for a service that wants one place. Fallbacks too: ``fallback=`` per function, and
:func:`set_fallback` for every call of the process (or of one operation type).

Every hook is a plain function of one argument, called synchronously, exactly once per event
(a function registered both ways is still called once). It must not be able to break the call
it reports on: an exception a hook raises is logged on the ``retrysim.retry`` logger, with the
hook's name and the traceback, and goes no further; the call returns or raises as it would
have. Keep hooks quick (hand slow work to a thread or a queue): they run in the thread, or on
the event loop, of the call that caused the event.

A breaker reports a change while it holds its own lock, so its hooks are not run there: the
change is queued for the thread that caused it and delivered as soon as the guards have
answered. A hook may therefore call through the same breaker again without deadlocking, and a
slow hook never holds up other threads' calls at the breaker.

A fallback is not a hook: it is the call's answer. It runs once, after the ``on_exhausted``
hooks, and what it returns is what the caller gets; an exception it raises is what the caller
sees (a fallback that declines re-raises ``call.error``).
"""

from __future__ import annotations

import inspect
import logging
import threading
import weakref
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from retrysim.names import OPERATIONS
from retrysim.retry.breaker import BreakerState, CircuitBreaker
from retrysim.retry.guards import PROCESS_GUARDS, GuardChain, GuardEvent, GuardStates

logger = logging.getLogger("retrysim.retry")


@dataclass(frozen=True)
class ExhaustedCall:
    """A call that gave up on an outcome its policy retries: its attempts, time or retry budget
    ran out.

    ``operation`` is the counter key (``module.qualname`` of the decorated function, the
    ``operation`` label of the metrics), ``function`` its plain name, ``kind`` the operation type
    whose settings it used (``worker``, ``storage``, ``scheduler``, ``api``). ``attempts`` were
    made of ``max_attempts`` allowed; ``error`` is the last attempt's exception (the one the
    caller sees), or None when the last attempt returned a ``result`` the retry strategy
    retries (``tenacity.retry_if_result``; the caller then sees ``tenacity.RetryError``, as
    with tenacity's own ``reraise=True``); ``elapsed`` the seconds since the first attempt, by
    the call's clock.
    """

    operation: str
    function: str
    kind: str
    attempts: int
    max_attempts: int
    error: BaseException | None
    elapsed: float
    result: Any = None


@dataclass(frozen=True)
class RetryEvent:
    """A call is about to wait ``wait`` seconds and retry: attempt ``attempt`` failed.

    ``operation``, ``function`` and ``kind`` are :class:`ExhaustedCall`'s; ``attempt`` is the
    number of the attempt that failed (1 = the first), of ``max_attempts`` allowed; ``error``
    its exception, or None when it returned a ``result`` the retry strategy retries;
    ``elapsed`` the seconds from the first attempt to that outcome, by the call's clock. The
    same fields ride on the retry's log record (``extra``, each as ``retry_<field>``).
    """

    operation: str
    function: str
    kind: str
    attempt: int
    max_attempts: int
    wait: float
    elapsed: float
    error: BaseException | None
    result: Any = None


@dataclass(frozen=True)
class BreakerChange:
    """A circuit breaker entered ``state`` (``closed``, ``open`` or ``half_open``).

    ``breaker`` is its name (the dependency; calls naming the same one share it), ``time`` the
    guards' clock at the change (``time.monotonic()`` in production), ``client`` whose state it
    is (None in production, where the process is the one client).
    """

    breaker: str
    state: BreakerState
    time: float
    client: Hashable = None


ExhaustedHook = Callable[[ExhaustedCall], object]
BreakerHook = Callable[[BreakerChange], object]
RetryHook = Callable[[RetryEvent], object]
_Hook = TypeVar("_Hook", bound=Callable[..., object])
#: A fallback: the value a call that gave up returns, or a function of its
#: :class:`ExhaustedCall` returning it (a value that is itself callable is called).
Fallback = object

_lock = threading.Lock()
_exhausted_hooks: list[ExhaustedHook] = []
_breaker_hooks: list[BreakerHook] = []
_retry_hooks: list[RetryHook] = []
#: The process-wide fallbacks, by operation type ("" for every type).
_fallbacks: dict[str, Fallback] = {}


def check_hook(option: str, hook: object) -> None:
    """A TypeError naming ``option`` unless ``hook`` is a plain callable (raised at decoration)."""
    if not callable(hook):
        raise TypeError(f"{option} must be a function of one argument, not {hook!r}")
    if is_async_callable(hook):
        raise TypeError(
            f"{option}: {_name(hook)} is async, but hooks are called synchronously (its "
            "coroutine would never run); use a plain function that schedules the async work"
        )


def _add(hooks: list[_Hook], hook: _Hook, option: str) -> _Hook:
    """Add ``hook`` to one kind's process-wide ``hooks``, once (checked first, the error
    naming ``option``); returns it, so the ``add_*_hook`` functions work as decorators."""
    check_hook(option, hook)
    with _lock:
        if hook not in hooks:
            hooks.append(hook)
    return hook


def _remove(hooks: list[_Hook], hook: _Hook) -> None:
    """Take ``hook`` out of ``hooks`` (nothing happens if it is not there)."""
    with _lock:
        if hook in hooks:
            hooks.remove(hook)


def add_exhausted_hook(hook: ExhaustedHook) -> ExhaustedHook:
    """Call ``hook(ExhaustedCall)`` whenever any retried call in this process gives up.

    Returns the hook, so this works as a decorator. Adding one twice calls it once.
    """
    return _add(_exhausted_hooks, hook, "add_exhausted_hook")


def remove_exhausted_hook(hook: ExhaustedHook) -> None:
    """Stop calling ``hook`` (nothing happens if it was not added)."""
    _remove(_exhausted_hooks, hook)


def add_breaker_hook(hook: BreakerHook) -> BreakerHook:
    """Call ``hook(BreakerChange)`` whenever any breaker of this process changes state.

    Returns the hook, so this works as a decorator. Adding one twice calls it once.
    """
    return _add(_breaker_hooks, hook, "add_breaker_hook")


def remove_breaker_hook(hook: BreakerHook) -> None:
    """Stop calling ``hook`` (nothing happens if it was not added)."""
    _remove(_breaker_hooks, hook)


def add_retry_hook(hook: RetryHook) -> RetryHook:
    """Call ``hook(RetryEvent)`` before every retry's wait, for every retried call in this
    process.

    Returns the hook, so this works as a decorator. Adding one twice calls it once.
    """
    return _add(_retry_hooks, hook, "add_retry_hook")


def remove_retry_hook(hook: RetryHook) -> None:
    """Stop calling ``hook`` (nothing happens if it was not added)."""
    _remove(_retry_hooks, hook)


def check_fallback(option: str, fallback: Fallback, allow_async: bool) -> None:
    """A TypeError naming ``option`` for an async fallback where it cannot be awaited."""
    if not allow_async and callable(fallback) and is_async_callable(fallback):
        raise TypeError(
            f"{option}: {_name(fallback)} is async, but it would answer a sync call (its "
            "coroutine would be returned, never run); use a plain function"
        )


def set_fallback(fallback: Fallback, *, kind: str | None = None) -> None:
    """Make every call of this process that gives up return ``fallback`` instead of raising.

    ``fallback`` is a value, or a function given the :class:`ExhaustedCall` (its ``error`` or
    ``result``, ``operation``, ``kind``, ...) returning one; to decline, it re-raises
    ``call.error``. ``kind`` limits it to one operation type (``"api"``), which wins over one
    set for every type; a function's own ``fallback=`` wins over both. Setting again replaces.
    """
    check_fallback("set_fallback", fallback, allow_async=False)
    with _lock:
        _fallbacks[_kind_key(kind)] = fallback


def remove_fallback(*, kind: str | None = None) -> None:
    """Forget the process-wide fallback for ``kind`` (every type: None); harmless if unset."""
    with _lock:
        _fallbacks.pop(_kind_key(kind), None)


def process_fallback(kind: str) -> tuple[bool, Fallback]:
    """(whether a process-wide fallback applies to operation type ``kind``, that fallback)."""
    with _lock:
        for key in (kind, ""):
            if key in _fallbacks:
                return True, _fallbacks[key]
    return False, None


def fallback_answer(fallback: Fallback, call: ExhaustedCall) -> Any:
    """What ``fallback`` answers for ``call`` (a callable is called; anything else is the
    answer). An exception it raises propagates: it is the call's outcome now."""
    return fallback(call) if callable(fallback) else fallback


def _kind_key(kind: str | None) -> str:
    if kind is None:
        return ""
    if kind not in OPERATIONS:
        raise ValueError(f"unknown operation type {kind!r}; allowed: {', '.join(OPERATIONS)}")
    return kind


def is_async_callable(func: object) -> bool:
    """Whether calling ``func`` makes a coroutine: an async function, or an object whose
    ``__call__`` is one (the hooks, fallbacks and tenacity's async retry strategies)."""
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, "__call__", None)  # noqa: B004 - an object whose __call__ is async
    )


def _name(hook: object) -> str:
    name = getattr(hook, "__qualname__", None) or getattr(hook, "__name__", None)
    if name is None:
        return repr(hook)
    module = getattr(hook, "__module__", None)
    return f"{module}.{name}" if module else str(name)


def _unique(own: object | None, shared: Iterable[object]) -> list[object]:
    hooks: list[object] = [] if own is None else [own]
    for hook in shared:
        if hook not in hooks:
            hooks.append(hook)
    return hooks


def _call_each(what: str, hooks: Iterable[object], payload: object) -> None:
    for hook in hooks:
        try:
            hook(payload)  # type: ignore[operator]  # checked callable when registered
        except Exception:
            logger.exception(
                "%s hook %s raised; ignored, the call's outcome is unchanged", what, _name(hook)
            )


def call_exhausted_hooks(info: ExhaustedCall, own: ExhaustedHook | None = None) -> None:
    """Run the call's own ``on_exhausted`` hook, then the process-wide ones, each once."""
    with _lock:
        shared = tuple(_exhausted_hooks)
    _call_each("on_exhausted", _unique(own, shared), info)


def call_retry_hooks(event: RetryEvent, own: RetryHook | None = None) -> None:
    """Run the call's own ``on_retry`` hook, then the process-wide ones, each once."""
    with _lock:
        shared = tuple(_retry_hooks)
    if own is not None or shared:
        _call_each("on_retry", _unique(own, shared), event)


# --- breaker changes: queued by the listener, delivered after the guards answered ----------


class BreakerRouter:
    """The listener on one :class:`GuardStates` that hands breaker changes to their hooks.

    Per-function hooks subscribe to the breakers their calls go through (by the breaker's
    name and client, as its events carry them); the process-wide hooks hear every breaker of
    :data:`PROCESS_GUARDS`.
    """

    def __init__(self, process_wide: bool) -> None:
        self.process_wide = process_wide
        self._lock = threading.Lock()
        self._subscribers: dict[tuple[str, Hashable], list[BreakerHook]] = {}

    def __call__(self, event: GuardEvent) -> None:
        if event.kind == "breaker":
            _pending().append((self, event))

    def subscribe(self, chain: GuardChain, hook: BreakerHook) -> None:
        """Call ``hook`` on every change of the breakers in ``chain`` (once, however often)."""
        for guard in chain.guards:
            if isinstance(guard, CircuitBreaker):
                key = (guard.notify.name, guard.notify.client)
                with self._lock:
                    hooks = self._subscribers.setdefault(key, [])
                    if hook not in hooks:
                        hooks.append(hook)

    def dispatch(self, event: GuardEvent) -> None:
        with self._lock:
            own = tuple(self._subscribers.get((event.name, event.client), ()))
        shared: tuple[BreakerHook, ...] = ()
        if self.process_wide:
            with _lock:
                shared = tuple(_breaker_hooks)
        hooks = _unique(None, (*own, *shared))
        if hooks:
            state: BreakerState = event.value  # type: ignore[assignment]  # a breaker's event
            change = BreakerChange(event.name, state, event.time, event.client)
            _call_each("on_breaker_change", hooks, change)


_local = threading.local()


def _pending() -> deque[tuple[BreakerRouter, GuardEvent]]:
    queue: deque[tuple[BreakerRouter, GuardEvent]] | None = getattr(_local, "queue", None)
    if queue is None:
        queue = _local.queue = deque()
    return queue


def deliver_pending() -> None:
    """Run the hooks of the breaker changes this thread caused (each change once).

    Called by the decorators after every question to the guards; a hook that makes a call
    of its own delivers that call's changes itself, and nothing is delivered twice.
    """
    queue: deque[tuple[BreakerRouter, GuardEvent]] | None = getattr(_local, "queue", None)
    while queue:
        router, event = queue.popleft()
        router.dispatch(event)


PROCESS_ROUTER = BreakerRouter(process_wide=True)
PROCESS_GUARDS.listeners.append(PROCESS_ROUTER)
_routers: weakref.WeakKeyDictionary[GuardStates, BreakerRouter] = weakref.WeakKeyDictionary()


def router_for(states: GuardStates) -> BreakerRouter:
    """The router listening to ``states`` (attached on first use; the process's is ready)."""
    if states is PROCESS_GUARDS:
        return PROCESS_ROUTER
    with _lock:
        router = _routers.get(states)
        if router is None:
            router = _routers[states] = BreakerRouter(process_wide=False)
            states.listeners.append(router)
        return router
