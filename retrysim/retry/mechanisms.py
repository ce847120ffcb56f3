"""The resilience mechanisms a policy can turn on, each registered once here.

A mechanism is its own module (``breaker.py``, ``budget.py``, ``adaptive.py``, ``hedge.py``):
its ``Knobs`` table, its guard, and the function that declares the guard from a resolved table
(hedging declares none: the attempt loop reads its table, :func:`~retrysim.retry.hedge.hedging_of`).
Its entry below is all the rest of retrysim needs. From the registry come:

- the nested ``PolicyOptions`` field (``[policy.breaker]`` in a scenario, ``breaker={...}`` or
  ``breaker=True`` on a decorator, ``--set policy.breaker.enabled=true``) with its shorthand,
  in :mod:`retrysim.retry.options`;
- one setting per knob and operation (``RETRY__API_BREAKER_FAILURE_THRESHOLD``), in
  :mod:`retrysim.retry.settings`;
- the guards and extra stops a policy gets, in :mod:`retrysim.retry.resilience`;
- the sources column, ``retrysim settings``' knobs and the ``.env`` variables, through those.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from tenacity.stop import stop_base

from retrysim.retry.adaptive import AdaptiveOptions, adaptive_guards
from retrysim.retry.breaker import BreakerOptions, breaker_guards
from retrysim.retry.budget import BudgetOptions, budget_guards, budget_stop
from retrysim.retry.hedge import HedgeOptions, hedge_guards
from retrysim.retry.knobs import Knobs, PlacedGuard

K = TypeVar("K", bound=Knobs)


def no_stop(options: Knobs) -> stop_base | None:
    """A mechanism that never ends a call by itself (most of them)."""
    return None


@dataclass(frozen=True)
class Mechanism(Generic[K]):
    """One mechanism: its table of knobs and what a resolved table adds to a policy.

    ``guards(operation, table)`` declares its guards, each at its stage of a send (none when it
    is off); ``stop(table)`` is a tenacity stop to compose with the policy's, or None.
    ``description`` is the policy option's (the scenario reference shows it).
    """

    knobs: type[K]
    description: str
    guards: Callable[[str, K], Sequence[PlacedGuard]]
    stop: Callable[[K], stop_base | None] = no_stop


#: Mechanism name -> its entry. The name is the policy key (``[policy.<name>]``) and the middle
#: of its settings' names (``RETRY__<OPERATION>_<NAME>_<KNOB>``).
REGISTRY: dict[str, Mechanism[Any]] = {
    "breaker": Mechanism(
        BreakerOptions, "circuit breaker (retrysim.retry.breaker)", breaker_guards
    ),
    "budget": Mechanism(
        BudgetOptions, "retry budgets (retrysim.retry.budget)", budget_guards, budget_stop
    ),
    "adaptive": Mechanism(
        AdaptiveOptions,
        "adaptive backoff and send-rate limiter (retrysim.retry.adaptive)",
        adaptive_guards,
    ),
    "hedge": Mechanism(
        HedgeOptions, "hedged requests, coroutines only (retrysim.retry.hedge)", hedge_guards
    ),
}

#: Mechanism name -> its options model (the view most code needs).
MECHANISMS: dict[str, type[Knobs]] = {name: entry.knobs for name, entry in REGISTRY.items()}
MECHANISM_NAMES: tuple[str, ...] = tuple(REGISTRY)


def mechanism_setting(operation: str, mechanism: str, knob: str) -> str:
    """The ``RetrySettings`` field of one knob: ``api_breaker_failure_threshold``."""
    return f"{operation}_{mechanism}_{knob}"
