"""Tests written for mutants of ``retrysim/retry/budget.py`` that its own tests let survive
(a full mutation run, ``python scripts/mutate.py --module budget``): each pins a behaviour a
plausible wrong edit would change."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from retrysim.retry import GuardChain
from retrysim.retry.budget import (
    BudgetOptions,
    QuotaCall,
    RatioBudget,
    RetryQuota,
    TokenBudget,
    budget_guards,
)
from retrysim.retry.exceptions import CircuitOpenError
from retrysim.retry.guards import GuardEvent

DOWN = ConnectionResetError("reset")


def _default_budget(kind: str) -> Any:
    """The bucket an operation gets from ``[policy.budget]`` with only ``enabled`` and
    ``kind`` set: every other knob at its default."""
    (placed,) = budget_guards("api", BudgetOptions(enabled=True, kind=kind))
    return placed.spec.make()


# --- budget: the options' defaults ------------------------------------------------------------


def test_the_default_token_bucket_holds_10_and_refills_a_tenth_per_success() -> None:
    """gRPC's defaults: 10 tokens, 0.1 back per success, retries only above half (5). Four
    failures leave 6 (allowed), the fifth leaves 5 (refused); one success makes it 5.1, allowed
    again."""
    budget = _default_budget("tokens")
    assert isinstance(budget, TokenBudget)
    for _ in range(4):
        budget.after_outcome(0.0, DOWN)
    assert budget.allow_retry(0.0)
    budget.after_outcome(0.0, DOWN)
    assert not budget.allow_retry(0.0)
    budget.after_outcome(0.0, None)
    assert budget.allow_retry(0.0)
    assert budget.stats() == {"refused": 1, "tokens": 5.1}


def test_the_default_ratio_budget_allows_100_retries_plus_a_fifth_of_first_attempts() -> None:
    """Finagle's defaults: 10 retries a second over a 10 s window (a reserve of 100) plus 20%
    of the first attempts. Ten first attempts add 2: exactly 102 retries at one instant."""
    budget = _default_budget("ratio")
    assert isinstance(budget, RatioBudget)
    for _ in range(10):
        budget.before_attempt(1.0, 1)
    allowed = sum(budget.allow_retry(2.0) for _ in range(120))
    assert allowed == 102 and budget.refused == 18


# --- budget: the quota's knobs ----------------------------------------------------------------


def test_a_retry_may_cost_the_whole_quota_and_is_then_allowed_once() -> None:
    """A cost equal to ``quota_capacity`` is valid (only a cost above it could never be paid):
    the first retry empties the bucket, the next is refused."""
    options = BudgetOptions(
        enabled=True, kind="quota", quota_capacity=10, retry_cost=10, timeout_retry_cost=10
    )
    (placed,) = budget_guards("api", options)
    (view,) = GuardChain([placed.spec.make()]).guards
    assert isinstance(view, QuotaCall)
    view.after_outcome(0.0, DOWN)
    assert view.allow_retry(0.0) is True
    view.after_outcome(1.0, DOWN)
    assert view.allow_retry(1.0) is False
    with pytest.raises(ValidationError, match="retry_cost"):
        BudgetOptions(enabled=True, kind="quota", quota_capacity=9, retry_cost=10)


# --- budget: the ratio budget's refusals ------------------------------------------------------


def test_a_ratio_refusal_says_so_with_the_balance_left_and_counts_in_stats() -> None:
    """Half of three first attempts is 1.5 retries: one is allowed, leaving 0.5; the next is
    refused, and the event and ``stats`` say so (the balance in retries, not in the bucket's
    internal units)."""
    budget = RatioBudget("r", percent=0.5, min_retries_per_second=0.0, window=10.0)
    seen: list[GuardEvent] = []
    budget.notify.listeners = (seen.append,)
    for _ in range(3):
        budget.before_attempt(0.0, 1)
    assert budget.allow_retry(1.0) and not budget.allow_retry(2.0)
    assert seen == [GuardEvent(2.0, "budget_refused", "r", None, 0.5)]
    assert budget.stats() == {"refused": 1}


# --- budget: the retry quota ------------------------------------------------------------------


def test_take_answers_whether_it_took_the_tokens() -> None:
    """``RetryQuota.take`` answers True and takes the cost while it fits, and False (a bool,
    as its signature says) leaving the bucket alone when it does not."""
    quota = RetryQuota("q", capacity=7)
    assert quota.take(0.0, 5) is True
    assert quota.take(0.0, 5) is False
    assert quota.available == 2 and quota.refused == 1


def test_a_retry_asked_before_any_sent_attempt_costs_the_plain_retry_cost() -> None:
    """A call whose only attempt so far was refused by a guard (never sent), or a quota used
    directly that has heard nothing yet, has no timeout to pay for: its retry costs
    ``retry_cost`` (5), not ``timeout_retry_cost``."""
    quota = RetryQuota("q")
    (view,) = GuardChain([quota]).guards
    assert isinstance(view, QuotaCall)
    view.after_outcome(0.0, CircuitOpenError("dep"))
    assert view.allow_retry(0.0) and quota.available == 495
    assert RetryQuota("fresh").allow_retry(0.0)
