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

A guard whose state is shared but who must also remember something per call (a retry quota
refunds what that call's last retry cost; a breaker that gates only retries must know which of
its outcomes belong to probes) has ``for_call()``: each call's :class:`GuardChain` asks the view
it returns instead of the shared guard, and the view keeps the call's part and asks the shared
guard for the rest.

Three optional capabilities extend the shape, each found by name on a guard: ``allow_retry(now)``
(a retry budget: may this call retry? asked after the wait is drawn, before sleeping; a "no"
ends the call with its last error), ``pace(now, most=inf)`` (a send-rate limiter: seconds to
wait before sending, first attempts included, never more than ``most``, the time a call with a
time limit has left) and ``wait_factor(now)`` (adaptive backoff: how much longer
than the profile's formula to wait). A guard that changes state says so through
:class:`GuardEvent`; :class:`GuardStates` hands the events to its listeners (the simulator's
records, the production hooks and metrics).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

#: How widely a guard's state is shared: fresh for every ``call``; one per ``client`` (a process
#: of the fleet; a breaker per dependency lives here); one for the whole ``fleet``.
Scope = Literal["call", "client", "fleet"]
SCOPES: tuple[Scope, ...] = ("call", "client", "fleet")
#: The scopes a breaker, budget or limiter may declare (their state outlives a call).
SharedScope = Literal["client", "fleet"]


class AttemptGuard(Protocol):
    """Asked before every attempt, told after it. Guards shared across threads lock themselves."""

    def before_attempt(self, now: float, attempt: int) -> BaseException | None:
        """None lets attempt number ``attempt`` (1 = the call's first) run; an exception
        refuses it (the caller sees that error)."""

    def after_outcome(self, now: float, error: BaseException | None) -> None:
        """The attempt this guard allowed ended: ``error`` is None on success."""


@dataclass(frozen=True)
class GuardEvent:
    """Something a guard did that a report or an operator wants to see.

    ``kind`` is ``breaker`` (``value`` the new state: ``closed``, ``open``, ``half_open``),
    ``budget_refused`` (a retry the budget did not allow), ``limiter_delay`` (``value`` the
    seconds a send was held back) or ``limiter_rate`` (``value`` the new send rate, per second).
    ``client`` is the simulated client whose state it is (None: fleet-wide or production).
    """

    time: float
    kind: str
    name: str
    client: Hashable
    value: float | str


Listener = Callable[[GuardEvent], None]


class Notifier:
    """How a guard reports events: a no-op until :class:`GuardStates` connects it."""

    __slots__ = ("client", "listeners", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self.client: Hashable = None
        self.listeners: tuple[Listener, ...] = ()

    def __call__(self, now: float, kind: str, value: float | str) -> None:
        if self.listeners:
            event = GuardEvent(now, kind, self.name, self.client, value)
            for listener in self.listeners:
                listener(event)


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
    a guard that reserved something (a half-open probe, a token) can give it back. A guard with
    ``for_call()`` is asked through the per-call view it returns (see the module docstring).
    """

    __slots__ = ("bounds", "gates", "guards", "pacers", "scalers")

    def __init__(self, guards: Sequence[AttemptGuard]) -> None:
        guards = self.guards = tuple(_for_call(guard) for guard in guards)
        self.gates: tuple[Callable[[float], bool], ...] = _capability(guards, "allow_retry")
        self.pacers: tuple[Callable[..., float], ...] = _capability(guards, "pace")
        self.scalers: tuple[Callable[[float], float], ...] = _capability(guards, "wait_factor")
        # pace_limit(now): the most a pacer may hold the call back (its time limit's rest)
        self.bounds: tuple[Callable[[float], float], ...] = _capability(guards, "pace_limit")

    def __bool__(self) -> bool:
        return bool(self.guards)

    def shapes_retries(self) -> bool:
        """Whether a guard decides if or how long to wait (the call needs its own Retrying)."""
        return bool(self.gates or self.scalers)

    def allow_retry(self, now: float) -> bool:
        """Whether every retry gate lets the call retry (asked in order; the first "no" wins)."""
        return all(gate(now) for gate in self.gates)

    def pace(self, now: float) -> float:
        """Seconds to hold the next send back: the longest any limiter asks for. A call with
        a time limit (``pace_limit``: :class:`retrysim.retry.adaptive.PacingDeadline`) asks
        each limiter ``pace(now, most)``, the time it has left: no hold is longer."""
        if not self.bounds:
            return max((pace(now) for pace in self.pacers), default=0.0)
        left = min(bound(now) for bound in self.bounds)
        return min(left, max((pace(now, left) for pace in self.pacers), default=0.0))

    def wait_factor(self, now: float) -> float:
        """How many times the profile's wait to wait (the product of the scalers' factors)."""
        factor = 1.0
        for scale in self.scalers:
            factor *= scale(now)
        return factor

    def before_attempt(self, now: float, attempt: int) -> BaseException | None:
        for index, guard in enumerate(self.guards):
            refusal = guard.before_attempt(now, attempt)
            if refusal is not None:
                for earlier in self.guards[:index]:
                    earlier.after_outcome(now, refusal)
                return refusal
        return None

    def after_outcome(self, now: float, error: BaseException | None) -> None:
        for guard in self.guards:
            guard.after_outcome(now, error)


def _for_call(guard: AttemptGuard) -> AttemptGuard:
    """The guard a call asks: the per-call view of a guard that has one, else the guard."""
    view: Callable[[], AttemptGuard] | None = getattr(guard, "for_call", None)
    return guard if view is None else view()


def _capability(guards: Sequence[AttemptGuard], name: str) -> tuple[Any, ...]:
    return tuple(method for g in guards if (method := getattr(g, name, None)) is not None)


class GuardStates:
    """Where guard state lives: one instance per (guard name, scope, client where it matters).

    ``listeners`` are told every :class:`GuardEvent` of the guards made here (a guard with a
    ``notify`` :class:`Notifier` attribute reports through it).
    """

    def __init__(self, listeners: Sequence[Listener] = ()) -> None:
        self._lock = threading.Lock()
        self._shared: dict[tuple[str, str, Hashable], AttemptGuard] = {}
        self.listeners: list[Listener] = list(listeners)

    def instance(self, spec: GuardSpec, client: Hashable) -> AttemptGuard:
        """The guard ``spec`` declares, for a call made by ``client``."""
        if spec.scope == "call":
            return self._made(spec, client)
        owner = client if spec.scope == "client" else None
        key = (spec.name, spec.scope, owner)
        with self._lock:
            guard = self._shared.get(key)
            if guard is None:
                guard = self._shared[key] = self._made(spec, owner)
            return guard

    def _made(self, spec: GuardSpec, owner: Hashable) -> AttemptGuard:
        guard = spec.make()
        notify = getattr(guard, "notify", None)
        if isinstance(notify, Notifier):
            notify.client = owner
            notify.listeners = (self._tell,)
        return guard

    def _tell(self, event: GuardEvent) -> None:
        for listener in tuple(self.listeners):
            listener(event)

    def instances(self) -> list[tuple[str, Hashable, AttemptGuard]]:
        """Every shared guard made so far, as (name, owning client or None, guard)."""
        with self._lock:
            return [(name, owner, guard) for (name, _, owner), guard in self._shared.items()]

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
