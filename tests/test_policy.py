"""build_policy: settings + explicit overrides -> tenacity strategies, ranges and schedules."""

from __future__ import annotations

import asyncio
import math
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tenacity import AsyncRetrying, Retrying, retry_if_exception_type

from retrysim.retry import (
    DEFAULT_RETRYABLE,
    OPERATIONS,
    PROFILES,
    ConflictError,
    RateLimitedError,
    RetrySettings,
    ServerError,
    TransientError,
    build_policy,
    use_settings,
)

DOCUMENTED = {
    "worker": (3, 1.0, 10.0),
    "storage": (5, 0.5, 5.0),
    "scheduler": (3, 1.0, 8.0),
    "api": (4, 1.0, 15.0),
}


def retries(policy, exc: BaseException, call_state) -> bool:
    """Would ``policy`` retry after an attempt that raised ``exc``?"""
    state = call_state(policy)
    try:
        raise exc
    except BaseException:
        state.set_exception(sys.exc_info())
    return bool(policy.retry(state))


# --- numbers --------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", OPERATIONS)
def test_policy_takes_the_operation_settings(operation: str) -> None:
    policy = build_policy(operation)
    assert (policy.max_attempts, policy.min_wait, policy.max_wait) == DOCUMENTED[operation]
    assert policy.profile == "documented"
    assert policy.jitter == 1.0
    assert policy.overrides == frozenset()
    assert policy.operation == operation


def test_policy_reads_current_settings() -> None:
    use_settings(RetrySettings(api_max_attempts=9, profile="full_jitter", jitter=0.5))
    policy = build_policy("api")
    assert (policy.max_attempts, policy.profile, policy.jitter) == (9, "full_jitter", 0.5)


def test_explicit_settings_argument_wins_over_current() -> None:
    use_settings(RetrySettings(worker_max_attempts=9))
    assert build_policy("worker", RetrySettings(worker_max_attempts=2)).max_attempts == 2


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"max_attempts": 1}, (1, 0.5, 5.0)),
        ({"min_wait": 0.0}, (5, 0.0, 5.0)),
        ({"max_wait": 0.5}, (5, 0.5, 0.5)),
        ({"min_wait": 0, "max_wait": 0}, (5, 0.0, 0.0)),
    ],
)
def test_falsy_overrides_are_explicit(
    overrides: dict[str, Any], expected: tuple[int, float, float]
) -> None:
    policy = build_policy("storage", **overrides)
    assert (policy.max_attempts, policy.min_wait, policy.max_wait) == expected
    assert policy.overrides == frozenset(overrides)


def test_jitter_zero_override_is_explicit() -> None:
    policy = build_policy("worker", jitter=0.0)
    assert policy.jitter == 0.0
    assert policy.wait_range(1) == (1.0, 1.0)


@pytest.mark.parametrize(
    ("overrides", "word"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": -1}, "max_attempts"),
        ({"max_attempts": True}, "max_attempts"),
        ({"max_attempts": 2.5}, "max_attempts"),
        ({"min_wait": -0.1}, "min_wait"),
        ({"max_wait": -1.0}, "max_wait"),
        ({"jitter": -1.0}, "jitter"),
        ({"min_wait": math.inf, "max_wait": math.inf}, "min_wait"),
        ({"max_wait": math.nan}, "max_wait"),
        ({"min_wait": 3.0, "max_wait": 2.0}, "min_wait"),
        ({"profile": "linear"}, "linear"),
        ({"max_delay": 0}, "max_delay"),
    ],
)
def test_invalid_overrides_fail_naming_the_override(overrides: dict[str, Any], word: str) -> None:
    with pytest.raises(ValueError, match=word):
        build_policy("worker", **overrides)


def test_unknown_operation_is_rejected() -> None:
    with pytest.raises(ValueError, match="database"):
        build_policy("database")


def test_override_min_wait_above_setting_max_is_rejected() -> None:
    # storage max_wait is 5.0 by default: an explicit min_wait of 6 cannot work with it
    with pytest.raises(ValueError, match="min_wait"):
        build_policy("storage", min_wait=6.0)
    assert build_policy("storage", min_wait=6.0, max_wait=6.0).wait_range(1) == (6.0, 6.0)


# --- tenacity objects -----------------------------------------------------------------------


def test_retrying_objects_carry_the_policy_strategies() -> None:
    policy = build_policy("api", profile="exponential")
    sync, async_ = policy.retrying(), policy.async_retrying()
    assert isinstance(sync, Retrying)
    assert isinstance(async_, AsyncRetrying)
    for r in (sync, async_):
        assert r.stop is policy.stop
        assert r.wait is policy.wait
        assert r.retry is policy.retry
        assert r.reraise is True


def test_stop_after_max_attempts(call_state) -> None:
    policy = build_policy("api")  # 4 attempts
    for attempt in range(1, 6):
        state = call_state(policy, attempt)
        assert policy.stop(state) is (attempt >= 4)


@pytest.mark.parametrize(
    "error",
    [
        ConnectionError("x"),
        ConnectionRefusedError("x"),
        ConnectionResetError("x"),
        TimeoutError("x"),
        TimeoutError(),
        TransientError("x"),
        RateLimitedError(retry_after=1.0),
        ConflictError("x"),
    ],
)
@pytest.mark.parametrize("profile", ["documented", "exponential", "bindu"])
def test_transient_errors_are_retried(call_state, error: Exception, profile: str) -> None:
    policy = build_policy("worker", profile=profile)
    if profile == "bindu" and isinstance(error, TransientError):
        # the shipped predicate knows only builtin socket/timeout/OS errors
        assert not retries(policy, error, call_state)
    else:
        assert retries(policy, error, call_state)


@pytest.mark.parametrize("error", [ValueError("x"), ServerError("503"), KeyError("k")])
@pytest.mark.parametrize("profile", PROFILES)
def test_permanent_errors_are_not_retried(call_state, error: Exception, profile: str) -> None:
    assert not retries(build_policy("worker", profile=profile), error, call_state)


@pytest.mark.parametrize("profile", [p for p in PROFILES if p != "bindu"])
def test_file_not_found_not_retried_outside_bindu(call_state, profile: str) -> None:
    assert not retries(build_policy("storage", profile=profile), FileNotFoundError("f"), call_state)


def test_bindu_retries_every_oserror(call_state) -> None:
    policy = build_policy("storage", profile="bindu")
    assert retries(policy, FileNotFoundError("f"), call_state)
    assert retries(policy, PermissionError("p"), call_state)
    assert not retries(policy, ServerError("500"), call_state)


def test_default_retryable_covers_the_documented_exceptions() -> None:
    for kind in (ConnectionError, TimeoutError, asyncio.TimeoutError):
        assert issubclass(kind, DEFAULT_RETRYABLE)
    assert not issubclass(ServerError, DEFAULT_RETRYABLE)


def test_retry_override_replaces_the_predicate(call_state) -> None:
    policy = build_policy("worker", retry=retry_if_exception_type(ValueError))
    assert retries(policy, ValueError("v"), call_state)
    assert not retries(policy, ConnectionError("c"), call_state)
    assert "retry" in policy.overrides


def test_max_delay_adds_a_time_stop(call_state) -> None:
    policy = build_policy("worker", max_attempts=100, max_delay=10.0)
    state = call_state(policy, 2)
    state.start_time = 0.0
    state.outcome_timestamp = 9.0
    assert not policy.stop(state)
    state.outcome_timestamp = 10.0
    assert policy.stop(state)


# --- wait_range and schedule ----------------------------------------------------------------


def formula_range(profile: str, operation: str, lo: float, hi: float, *, jitter: float, n: int):
    """Bounds of the wait before retry n straight from the profile formulas (REFERENCE §3)."""
    scaled = min(hi, lo * 2.0 ** (n - 1))
    if profile == "documented":
        return scaled, min(hi, lo * 2.0 ** (n - 1) + jitter)
    if profile == "bindu":
        top = max(lo, min(2.0 ** (n - 1), hi))
        return (top if operation == "storage" else lo), top
    if profile == "full_jitter":
        return 0.0, scaled
    if profile == "equal_jitter":
        return scaled / 2, scaled
    if profile == "decorrelated":
        return lo, min(hi, lo * 3.0**n)
    return scaled, scaled


@settings(max_examples=200, deadline=None)
@given(
    profile=st.sampled_from(PROFILES),
    operation=st.sampled_from(OPERATIONS),
    lo=st.floats(0, 10),
    extra=st.floats(0, 50),
    jitter=st.floats(0, 5),
    n=st.integers(1, 60),
)
def test_wait_range_matches_the_formula(
    *, profile: str, operation: str, lo: float, extra: float, jitter: float, n: int
) -> None:
    hi = lo + extra
    policy = build_policy(
        operation,
        RetrySettings(),
        profile=profile,
        min_wait=lo,
        max_wait=hi,
        jitter=jitter,
        max_attempts=n + 1,
    )
    got = policy.wait_range(n)
    want = formula_range(profile, operation, lo, hi, jitter=jitter, n=n)
    assert got[0] <= got[1]
    assert got == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_schedule_rows_accumulate_the_worst_case() -> None:
    policy = build_policy("storage", profile="exponential")  # 5 attempts, 0.5 .. 5.0
    rows = policy.schedule()
    assert [r[0] for r in rows] == [1, 2, 3, 4]
    assert [(r[1], r[2]) for r in rows] == [(0.5, 0.5), (1.0, 1.0), (2.0, 2.0), (4.0, 4.0)]
    assert [r[3] for r in rows] == [0.5, 1.5, 3.5, 7.5]


def test_schedule_bindu_storage_defaults_are_one_two_four_five() -> None:
    rows = build_policy("storage", profile="bindu").schedule()
    assert [(r[1], r[2]) for r in rows] == [(1.0, 1.0), (2.0, 2.0), (4.0, 4.0), (5.0, 5.0)]


def test_single_attempt_has_empty_schedule() -> None:
    assert build_policy("worker", max_attempts=1).schedule() == []


@settings(max_examples=100, deadline=None)
@given(profile=st.sampled_from(PROFILES), attempts=st.integers(1, 12))
def test_schedule_law(profile: str, attempts: int) -> None:
    policy = build_policy("api", RetrySettings(), profile=profile, max_attempts=attempts)
    rows = policy.schedule()
    assert len(rows) == attempts - 1
    total = 0.0
    for n, lo, hi, worst in rows:
        assert (lo, hi) == policy.wait_range(n)
        total += hi
        assert worst == pytest.approx(total)


def test_describe_reports_effective_numbers() -> None:
    described = build_policy("scheduler", max_attempts=2, profile="bindu").describe()
    assert described["operation"] == "scheduler"
    assert described["profile"] == "bindu"
    assert (described["max_attempts"], described["min_wait"], described["max_wait"]) == (
        2,
        1.0,
        8.0,
    )
    assert described["overrides"] == ["max_attempts", "profile"]


@pytest.mark.parametrize("n", [646, 647, 700, 5000])
def test_decorrelated_wait_range_survives_many_retries(n: int) -> None:
    """Long schedules (e.g. RETRY__WORKER_MAX_ATTEMPTS=1000) must not overflow.

    The upper bound is min(max_wait, min_wait * 3^n): for large n it is simply max_wait.
    """
    policy = build_policy("worker", profile="decorrelated", max_attempts=n + 1)
    assert policy.wait_range(n) == (1.0, 10.0)
