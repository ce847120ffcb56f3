"""Tests written for mutants of ``retrysim/retry/policy.py`` that its own tests let survive
(a full mutation run, ``python scripts/mutate.py --module policy``): each pins a behaviour a
plausible wrong edit would change."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from tenacity import Retrying

from retrysim.retry import RateLimitedError, RetryPolicy, build_policy

# --- policy: running a policy's own strategies ----------------------------------------------


def _runs(policy: RetryPolicy, error: BaseException) -> tuple[int, list[float]]:
    """How many times a function that always raises ``error`` runs under ``policy``'s stop,
    wait and retry (tenacity's own loop), and the waits it asked for."""
    waits: list[float] = []
    runs = 0

    def fail() -> None:
        nonlocal runs
        runs += 1
        raise error

    retrying = Retrying(
        stop=policy.stop, wait=policy.wait, retry=policy.retry, sleep=waits.append, reraise=True
    )
    with pytest.raises(type(error)):
        retrying(fail)
    return runs, waits


def _quick(**options: object) -> RetryPolicy:
    return build_policy("worker", jitter=0.0, profile="exponential", **options)  # type: ignore[arg-type]


# --- policy: per-error attempts -------------------------------------------------------------


def test_each_error_family_stops_at_its_own_attempts() -> None:
    """With ``rate_limited.max_attempts=2`` and ``max_attempts=5``, a rate-limited error is
    tried twice and any other error five times."""
    policy = _quick(max_attempts=5, min_wait=0.0, max_wait=0.0, rate_limited={"max_attempts": 2})
    assert _runs(policy, RateLimitedError("slow down"))[0] == 2
    assert _runs(policy, ConnectionError("down"))[0] == 5


def test_attempts_for_an_error_is_its_familys_limit_else_the_policys() -> None:
    """``attempts_for`` answers with the latest error's family's own limit where it has one,
    else ``max_attempts`` (no error yet, an error of no family, a family without one)."""
    policy = _quick(max_attempts=3, rate_limited={"max_attempts": 6})
    assert policy.error_policies["rate_limited"].max_attempts == 6
    assert policy.error_policies["server_error"].max_attempts is None
    assert policy.attempts_for(RateLimitedError("slow down")) == 6
    assert policy.attempts_for(None) == 3
    assert policy.attempts_for(ConnectionError("down")) == 3
    assert policy.attempts_for(ValueError("bug")) == 3


def test_most_attempts_is_the_largest_limit_of_any_family() -> None:
    """``most_attempts`` is the most attempts any call can make: the largest of ``max_attempts``
    and every family's own limit (smaller family limits do not lower it)."""
    assert _quick(max_attempts=3).most_attempts == 3
    policy = _quick(
        max_attempts=3, rate_limited={"max_attempts": 6}, server_error={"max_attempts": 2}
    )
    assert policy.most_attempts == 6
    assert _quick(max_attempts=4, server_error={"max_attempts": 2}).most_attempts == 4


# --- policy: for_family ---------------------------------------------------------------------


def test_for_family_is_the_policy_a_call_of_that_family_meets() -> None:
    """``for_family("rate_limited")`` takes the family's attempts and waits in place of the
    policy's, and keeps the retry and the guards: any error then runs 6 times, waiting 1 s."""
    policy = _quick(
        max_attempts=3,
        min_wait=10.0,
        max_wait=10.0,
        rate_limited={
            "max_attempts": 6,
            "min_wait": 1.0,
            "max_wait": 1.0,
            "respect_retry_after": False,
        },
    )
    family = policy.for_family("rate_limited")
    assert (family.max_attempts, family.min_wait, family.max_wait) == (6, 1.0, 1.0)
    assert family.retry is policy.retry
    assert family.guards == policy.guards
    assert all(table.max_attempts is None for table in family.error_policies.values())
    assert _runs(family, ConnectionError("down")) == (6, [1.0] * 5)
    assert _runs(policy, ConnectionError("down")) == (3, [10.0] * 2)


def test_for_family_refuses_an_unknown_family_naming_the_allowed() -> None:
    """An unknown family is a ValueError listing the allowed ones."""
    with pytest.raises(ValueError, match="unknown error family 'dns'; allowed: rate_limited"):
        _quick().for_family("dns")


# --- policy: what the mechanisms add --------------------------------------------------------


def test_a_limiter_under_a_time_limit_gets_its_pacing_deadline() -> None:
    """A policy whose limiter is on and whose calls have a time limit (``max_delay``) carries
    the per-call pacing deadline, after the mechanisms' guards; without a limit it has none."""

    def names(make: Callable[[], RetryPolicy]) -> list[str]:
        return [guard.name for guard in make().guards]

    limited = names(lambda: _quick(max_delay=5.0, adaptive={"enabled": True, "limiter": True}))
    assert limited[-1] == "pacing-deadline"
    unlimited = names(lambda: _quick(adaptive={"enabled": True, "limiter": True}))
    assert "pacing-deadline" not in unlimited
    assert limited[:-1] == unlimited


def test_a_per_call_time_budget_stops_retrying() -> None:
    """``budget.max_total_time`` stops a call whose next wait would carry it past the limit:
    with 1 s waits and a 0.5 s budget the first failure is the last, whatever max_attempts."""
    policy = _quick(max_attempts=10, min_wait=1.0, max_wait=1.0, budget={"max_total_time": 0.5})
    assert _runs(policy, ConnectionError("down"))[0] == 1
    unbounded = _quick(max_attempts=10, min_wait=1.0, max_wait=1.0)
    assert _runs(unbounded, ConnectionError("down"))[0] == 10
