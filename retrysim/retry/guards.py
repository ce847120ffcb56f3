"""Attempt guards: what is asked before an attempt and told after it.

Circuit breakers, retry budgets, rate limiters and counters all have the same shape: before an
attempt they may refuse it (with the error the caller then sees), and after it they learn its
outcome. :class:`AttemptGuard` is that shape. The clock is passed in, so the same guard object
runs in production (``time.monotonic``), in the simulator (virtual time) and in fidelity mode
(the virtual event loop's clock), through the same code: the decorators, the engine and fidelity
mode all call :class:`GuardChain`.

Guard state is declared, never improvised: a :class:`GuardSpec` names the state and says how
widely it is shared (:data:`Scope`), and a :class:`GuardStates` store hands out one instance per
declared key. In production a process is one client, so ``client`` and ``fleet`` state are both
process-wide there; in a simulation every client is its own process and ``fleet`` state is shared
by all of them (a budget kept in a shared store, say).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

#: How widely a guard's state is shared: fresh for every ``call``; one per ``client`` (a process
#: of the fleet; a breaker per dependency lives here); one for the whole ``fleet``.
Scope = Literal["call", "client", "fleet"]
SCOPES: tuple[Scope, ...] = ("call", "client", "fleet")


class AttemptGuard(Protocol):
    """Asked before every attempt, told after it. Guards shared across threads lock themselves."""

    def before_attempt(self, now: float) -> BaseException | None:
        """None lets the attempt run; an exception refuses it (the caller sees that error)."""

    def after_outcome(self, now: float, error: BaseException | None) -> None:
        """The attempt this guard allowed ended: ``error`` is None on success."""


@dataclass(frozen=True)
class GuardSpec:
    """A declared guard: the name of its state, how widely it is shared, how to make one."""

    name: str
    scope: Scope
    make: Callable[[], AttemptGuard]

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise ValueError(
                f"guard {self.name!r}: scope must be one of {SCOPES}, not {self.scope!r}"
            )


class GuardChain:
    """The guards of one call, asked in order; the first refusal wins.

    Guards that allowed an attempt a later guard refused are told the refusal as its outcome, so
    a guard that reserved something (a half-open probe, a token) can give it back.
    """

    __slots__ = ("guards",)

    def __init__(self, guards: Sequence[AttemptGuard]) -> None:
        self.guards = tuple(guards)

    def __bool__(self) -> bool:
        return bool(self.guards)

    def before_attempt(self, now: float) -> BaseException | None:
        for index, guard in enumerate(self.guards):
            refusal = guard.before_attempt(now)
            if refusal is not None:
                for earlier in self.guards[:index]:
                    earlier.after_outcome(now, refusal)
                return refusal
        return None

    def after_outcome(self, now: float, error: BaseException | None) -> None:
        for guard in self.guards:
            guard.after_outcome(now, error)


class GuardStates:
    """Where guard state lives: one instance per (guard name, scope, client where it matters)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._shared: dict[tuple[str, str, Hashable], AttemptGuard] = {}

    def instance(self, spec: GuardSpec, client: Hashable) -> AttemptGuard:
        """The guard ``spec`` declares, for a call made by ``client``."""
        if spec.scope == "call":
            return spec.make()
        key = (spec.name, spec.scope, client if spec.scope == "client" else None)
        with self._lock:
            guard = self._shared.get(key)
            if guard is None:
                guard = self._shared[key] = spec.make()
            return guard

    def chain(
        self,
        specs: Sequence[GuardSpec],
        client: Hashable = None,
        extra: Sequence[AttemptGuard] = (),
    ) -> GuardChain:
        """The chain for one call by ``client``: declared guards, then ``extra`` ones."""
        return GuardChain([*(self.instance(spec, client) for spec in specs), *extra])

    def clear(self) -> None:
        """Forget every shared state (tests; a service resetting its breakers)."""
        with self._lock:
            self._shared.clear()


#: The production process's guard state (a process is one client of the fleet).
PROCESS_GUARDS = GuardStates()
