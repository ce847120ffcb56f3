"""The resilience mechanisms as guards and tenacity strategies, built from resolved options.

A policy's breaker, budget and adaptive tables become :class:`GuardSpec` declarations here (in
the order a send meets them: the rate limiter, the breaker, the budget, the failure-rate
tracker) and, for the parts that decide about waiting, real tenacity strategies composed with
the policy's own: ``stop_before_delay`` for a per-call time budget, :class:`stop_unless_allowed`
for a shared budget and :class:`wait_stretched` for adaptive backoff. The decorators, the
engine and fidelity mode all get them from :meth:`RetryPolicy.retrying`, so each exists once.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from tenacity import RetryCallState
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from retrysim.retry.adaptive import AdaptiveOptions, CubicRateLimiter, FailureRate
from retrysim.retry.breaker import BreakerOptions, CircuitBreaker
from retrysim.retry.budget import BudgetOptions, RatioBudget, TokenBudget
from retrysim.retry.guards import AttemptGuard, GuardChain, GuardSpec

Clock = Callable[[], float]


def mechanism_guards(
    operation: str, breaker: BreakerOptions, budget: BudgetOptions, adaptive: AdaptiveOptions
) -> tuple[GuardSpec, ...]:
    """The guard declarations of the enabled mechanisms, in the order a send meets them."""
    specs: list[GuardSpec] = []
    if adaptive.limiter:
        make_limiter: Callable[[], AttemptGuard] = partial(
            CubicRateLimiter,
            f"limiter:{operation}",
            adaptive.limiter_beta,
            adaptive.limiter_scale,
            adaptive.limiter_min_rate,
        )
        specs.append(GuardSpec(f"limiter:{operation}", adaptive.scope, make_limiter))
    if breaker.enabled:
        name = breaker.name or operation
        specs.append(
            GuardSpec(f"breaker:{name}", breaker.scope, partial(CircuitBreaker, name, breaker))
        )
    if budget.enabled:
        label = f"budget:{operation}"
        make_budget: Callable[[], AttemptGuard]
        if budget.kind == "tokens":
            make_budget = partial(TokenBudget, label, budget.max_tokens, budget.token_ratio)
        else:
            make_budget = partial(
                RatioBudget, label, budget.percent, budget.min_retries_per_second, budget.window
            )
        specs.append(GuardSpec(label, budget.scope, make_budget))
    if adaptive.enabled:
        label = f"adaptive:{operation}"
        specs.append(
            GuardSpec(
                label,
                adaptive.scope,
                partial(FailureRate, label, adaptive.window, adaptive.max_factor),
            )
        )
    return tuple(specs)


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
