"""Putting tenacity on a virtual clock and seeded jitter, for the length of a ``with`` block.

tenacity reads ``time.monotonic()`` through its module global ``tenacity.time`` and draws jitter
from the module global ``random`` in ``tenacity.wait`` (retrysim's own waits use
``retrysim.retry.waits.random``). Inside the block those globals point at the simulation's
clock and at a router that hands each draw to the generator of the call being decided.
Outside, they are restored, so code running before or after is unaffected.

:func:`rebind` does the same swap without a ``with`` block, for a binding that must stay while
arbitrary code runs (a whole test under :mod:`retrysim.testing`).
"""

from __future__ import annotations

import contextlib
import threading
import types
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from typing import Any, Protocol

import tenacity
import tenacity.wait

from retrysim.retry import waits as retrysim_waits

_lock = threading.RLock()


class UniformSource(Protocol):
    """What tenacity's jitter needs from a generator."""

    def random(self) -> float: ...

    def uniform(self, a: float, b: float) -> float: ...


#: The generator of the call whose wait is being decided; set by the engine or by a task.
current_stream: ContextVar[UniformSource] = ContextVar("retrysim_current_stream")


class _StreamRouter:
    """Stands in for the ``random`` module inside tenacity: draws from ``current_stream``."""

    def random(self) -> float:
        return current_stream.get().random()

    def uniform(self, a: float, b: float) -> float:
        return current_stream.get().uniform(a, b)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(
            f"simulation jitter supports random() and uniform(), not random.{name}()"
        )


class _VirtualTimeModule(types.ModuleType):
    """Stands in for the ``time`` module inside tenacity: ``monotonic()`` reads the sim clock."""

    def __init__(self, now: Callable[[], float]) -> None:
        super().__init__("time")
        self.monotonic = now
        self.perf_counter = now
        self.time = now


@contextlib.contextmanager
def tenacity_virtual_time(now: Callable[[], float]) -> Iterator[None]:
    """Make tenacity read ``now()`` as its monotonic clock inside the block."""
    namespace = vars(tenacity)
    with _lock:
        saved = namespace["time"]
        namespace["time"] = _VirtualTimeModule(now)
        try:
            yield
        finally:
            namespace["time"] = saved


@contextlib.contextmanager
def routed_jitter() -> Iterator[None]:
    """Route tenacity's (and retrysim's) jitter draws to ``current_stream`` inside the block."""
    router = _StreamRouter()
    namespaces = (vars(tenacity.wait), vars(retrysim_waits))
    with _lock:
        saved = [namespace["random"] for namespace in namespaces]
        for namespace in namespaces:
            namespace["random"] = router
        try:
            yield
        finally:
            for namespace, original in zip(namespaces, saved, strict=True):
                namespace["random"] = original


def rebind(bindings: Iterable[tuple[object, str, object]]) -> Callable[[], None]:
    """Set each ``(target, name, value)`` now; return the function that puts them all back.

    The swap and the undo each take the lock the ``with`` blocks above hold, so neither lands
    in the middle of a simulation running in another thread. Unlike those blocks the lock is
    not held in between: the code running meanwhile (a test) may itself run a simulation in a
    thread and wait for it, which would deadlock on a held lock.
    """
    with _lock:
        saved = []
        for target, name, value in bindings:
            saved.append((target, name, getattr(target, name)))
            setattr(target, name, value)

    def undo() -> None:
        with _lock:
            for target, name, original in reversed(saved):
                setattr(target, name, original)

    return undo
