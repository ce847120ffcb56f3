"""The resilience mechanisms as guards and tenacity strategies, built from resolved options.

A policy's mechanism tables (``breaker``, ``budget``, ``adaptive``: whatever
:mod:`retrysim.retry.mechanisms` registers) become :class:`GuardSpec` declarations here, in the
order a send meets them (:data:`~retrysim.retry.knobs.STAGES`: the rate limiter, the breaker,
the budget, the failure-rate tracker), and extra stops (a per-call time budget's
``stop_before_delay``). The parts that decide about waiting are real tenacity strategies composed
with the policy's own: :class:`stop_unless_allowed` for a shared budget and
:class:`wait_stretched` for adaptive backoff. The decorators, the engine and fidelity mode all
get them from :meth:`RetryPolicy.retrying`, so each exists once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from tenacity import RetryCallState
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from retrysim.retry.guards import GuardChain, GuardSpec
from retrysim.retry.knobs import STAGES, Knobs
from retrysim.retry.mechanisms import REGISTRY

Clock = Callable[[], float]


def mechanism_guards(operation: str, tables: Mapping[str, Knobs]) -> tuple[GuardSpec, ...]:
    """The guard declarations of the enabled mechanisms, in the order a send meets them.

    ``tables`` is each registered mechanism's resolved table, by name
    (``PolicyOptions.mechanisms()``).
    """
    placed = [
        guard
        for name, mechanism in REGISTRY.items()
        for guard in mechanism.guards(operation, tables[name])
    ]
    placed.sort(key=lambda guard: STAGES.index(guard.stage))  # stable: registry order within
    return tuple(guard.spec for guard in placed)


def mechanism_stops(tables: Mapping[str, Knobs]) -> tuple[stop_base, ...]:
    """The stops the mechanisms add to the policy's own, in registry order."""
    stops = (mechanism.stop(tables[name]) for name, mechanism in REGISTRY.items())
    return tuple(stop for stop in stops if stop is not None)


class stop_unless_allowed(stop_base):  # noqa: N801 - named like tenacity's own strategies
    """Stop when a guard of the call (a retry budget) does not allow another retry.

    Composed after the policy's own stop (``policy_stop | stop_unless_allowed(...)``): tenacity
    asks it only when the policy would retry, so a budget is never charged for a retry that the
    attempt limit refused anyway.
    """

    def __init__(self, chain: GuardChain, clock: Clock) -> None:
        self.chain = chain
        self.clock = clock

    def __call__(self, retry_state: RetryCallState) -> bool:
        return not self.chain.allow_retry(self.clock())


class wait_stretched(wait_base):  # noqa: N801
    """The policy's wait, times the call's guards' factor (adaptive backoff) at that moment."""

    def __init__(self, wait: wait_base, chain: GuardChain, clock: Clock) -> None:
        self.wait = wait
        self.chain = chain
        self.clock = clock

    def __call__(self, retry_state: RetryCallState) -> float:
        return self.wait(retry_state) * self.chain.wait_factor(self.clock())
