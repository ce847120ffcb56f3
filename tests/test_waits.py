"""Each profile's waits against its formula (REFERENCE.md section 3).

The policy's real ``wait`` object is driven with real tenacity ``RetryCallState`` objects.
Jitter comes from a seeded ``random.Random``; the expected value is computed independently by
replaying the same seed through the formula, so the draws line up one for one.
"""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tenacity import RetryCallState, Retrying, wait_fixed

from retrysim.retry import (
    OPERATIONS,
    PROFILES,
    RateLimitedError,
    RetryPolicy,
    RetrySettings,
    build_policy,
)
from retrysim.retry.waits import (
    RETRY_AFTER_CAP,
    wait_decorrelated_jitter,
    wait_equal_jitter,
    wait_retry_after,
)

JITTERED_OPS = ("worker", "scheduler", "api")
SEEDS = st.integers(0, 2**32 - 1)
MIN_WAITS = st.floats(0, 10)
EXTRA = st.floats(0, 50)
JITTERS = st.floats(0, 5)
RETRY_NUMBERS = st.integers(1, 64)
FAST = settings(max_examples=150, deadline=None)


def policy_for(
    profile: str, operation: str, lo: float, hi: float, *, jitter: float = 1.0, n: int = 1
):
    return build_policy(
        operation,
        RetrySettings(),
        profile=profile,
        min_wait=lo,
        max_wait=hi,
        jitter=jitter,
        max_attempts=n + 1,
    )


def close(got: float, want: float) -> bool:
    return math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12)


def assert_in_range(wait: float, bounds: tuple[float, float]) -> None:
    lo, hi = bounds
    tol = 1e-9 * (1 + abs(hi))
    assert lo - tol <= wait <= hi + tol, f"{wait} outside {bounds}"


def sample(policy: RetryPolicy, n: int, seed: int, seeded_jitter, call_state) -> float:
    with seeded_jitter(seed):
        return policy.wait(call_state(policy, n))


def doubling(base: float, cap: float, n: int) -> float:
    return min(cap, base * 2.0 ** (n - 1))


# --- one law per profile --------------------------------------------------------------------


@FAST
@given(
    seed=SEEDS,
    lo=MIN_WAITS,
    extra=EXTRA,
    jitter=JITTERS,
    n=RETRY_NUMBERS,
    op=st.sampled_from(OPERATIONS),
)
def test_documented(*, seeded_jitter, call_state, seed, lo, extra, jitter, n, op) -> None:
    hi = lo + extra
    policy = policy_for("documented", op, lo, hi, jitter=jitter, n=n)
    wait = sample(policy, n, seed, seeded_jitter, call_state)
    replay = random.Random(seed)
    assert close(wait, min(hi, lo * 2.0 ** (n - 1) + replay.uniform(0, jitter)))
    assert_in_range(wait, policy.wait_range(n))
    assert 0 <= wait <= hi


@FAST
@given(seed=SEEDS, lo=MIN_WAITS, extra=EXTRA, n=RETRY_NUMBERS, op=st.sampled_from(JITTERED_OPS))
def test_bindu_jittered_operations(*, seeded_jitter, call_state, seed, lo, extra, n, op) -> None:
    hi = lo + extra
    policy = policy_for("bindu", op, lo, hi, n=n)
    wait = sample(policy, n, seed, seeded_jitter, call_state)
    top = max(lo, min(2.0 ** (n - 1), hi))  # clamp(2^(n-1), min_wait, max_wait)
    assert close(wait, random.Random(seed).uniform(lo, top))
    assert_in_range(wait, policy.wait_range(n))
    assert lo - 1e-12 <= wait <= top + 1e-9


@FAST
@given(seed=SEEDS, lo=MIN_WAITS, extra=EXTRA, n=RETRY_NUMBERS)
def test_bindu_storage_is_exact(*, seeded_jitter, call_state, seed, lo, extra, n) -> None:
    hi = lo + extra
    policy = policy_for("bindu", "storage", lo, hi, n=n)
    wait = sample(policy, n, seed, seeded_jitter, call_state)
    assert close(wait, max(lo, min(2.0 ** (n - 1), hi)))
    assert wait == sample(policy, n, seed + 1, seeded_jitter, call_state)  # no jitter at all
    assert_in_range(wait, policy.wait_range(n))


@FAST
@given(seed=SEEDS, lo=MIN_WAITS, extra=EXTRA, n=RETRY_NUMBERS, op=st.sampled_from(OPERATIONS))
def test_full_jitter(*, seeded_jitter, call_state, seed, lo, extra, n, op) -> None:
    hi = lo + extra
    policy = policy_for("full_jitter", op, lo, hi, n=n)
    wait = sample(policy, n, seed, seeded_jitter, call_state)
    assert close(wait, random.Random(seed).uniform(0, doubling(lo, hi, n)))
    assert_in_range(wait, policy.wait_range(n))


@FAST
@given(seed=SEEDS, lo=MIN_WAITS, extra=EXTRA, n=RETRY_NUMBERS, op=st.sampled_from(OPERATIONS))
def test_equal_jitter(*, seeded_jitter, call_state, seed, lo, extra, n, op) -> None:
    hi = lo + extra
    policy = policy_for("equal_jitter", op, lo, hi, n=n)
    wait = sample(policy, n, seed, seeded_jitter, call_state)
    v = doubling(lo, hi, n)
    assert close(wait, v / 2 + random.Random(seed).uniform(0, v / 2))
    assert_in_range(wait, policy.wait_range(n))
    assert v / 2 - 1e-12 <= wait <= v + 1e-9


@FAST
@given(seed=SEEDS, lo=MIN_WAITS, extra=EXTRA, n=st.integers(1, 30), op=st.sampled_from(OPERATIONS))
def test_decorrelated(*, seeded_jitter, call_state, seed, lo, extra, n, op) -> None:
    hi = lo + extra
    policy = policy_for("decorrelated", op, lo, hi, n=n)
    state = call_state(policy, 1)
    got = []
    with seeded_jitter(seed):
        for k in range(1, n + 1):
            state.attempt_number = k
            got.append(policy.wait(state))
    replay, previous = random.Random(seed), lo  # s_0 = min_wait
    for k, wait in enumerate(got, start=1):
        assert lo - 1e-12 <= wait <= min(hi, 3 * previous) + 1e-9
        assert close(wait, min(hi, replay.uniform(lo, 3 * previous)))
        assert_in_range(wait, policy.wait_range(k))
        previous = wait


@FAST
@given(seed=SEEDS, lo=MIN_WAITS, extra=EXTRA, n=RETRY_NUMBERS, op=st.sampled_from(OPERATIONS))
def test_exponential_is_exact(*, seeded_jitter, call_state, seed, lo, extra, n, op) -> None:
    hi = lo + extra
    policy = policy_for("exponential", op, lo, hi, n=n)
    wait = sample(policy, n, seed, seeded_jitter, call_state)
    assert close(wait, doubling(lo, hi, n))
    assert wait == sample(policy, n, seed ^ 0xFFFF, seeded_jitter, call_state)
    assert policy.wait_range(n) == pytest.approx((wait, wait), rel=1e-9, abs=1e-12)


@settings(max_examples=300, deadline=None)
@given(
    seed=SEEDS,
    profile=st.sampled_from(PROFILES),
    op=st.sampled_from(OPERATIONS),
    lo=MIN_WAITS,
    extra=EXTRA,
    jitter=JITTERS,
    n=RETRY_NUMBERS,
)
def test_every_wait_lies_in_wait_range(
    *, seeded_jitter, call_state, seed, profile, op, lo, extra, jitter, n
) -> None:
    policy = policy_for(profile, op, lo, lo + extra, jitter=jitter, n=n)
    wait = sample(policy, n, seed, seeded_jitter, call_state)
    assert_in_range(wait, policy.wait_range(n))
    assert 0 <= wait <= lo + extra + 1e-9


# --- the synchronised first retry -----------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(seed=SEEDS, op=st.sampled_from(JITTERED_OPS), extra=st.floats(0, 50))
def test_bindu_first_retry_is_exactly_min_wait_one(
    *, seeded_jitter, call_state, seed, op, extra
) -> None:
    policy = policy_for("bindu", op, 1.0, 1.0 + extra)
    assert sample(policy, 1, seed, seeded_jitter, call_state) == 1.0
    assert policy.wait_range(1) == (1.0, 1.0)


@pytest.mark.parametrize("operation", OPERATIONS)
def test_bindu_defaults_give_every_client_the_same_first_wait(
    seeded_jitter, call_state, operation: str
) -> None:
    policy = build_policy(operation, profile="bindu")
    firsts = {sample(policy, 1, seed, seeded_jitter, call_state) for seed in range(50)}
    assert firsts == {1.0}


def test_bindu_second_retry_does_spread(seeded_jitter, call_state) -> None:
    policy = build_policy("worker", profile="bindu")
    seconds = {sample(policy, 2, seed, seeded_jitter, call_state) for seed in range(50)}
    assert len(seconds) == 50
    assert all(1.0 <= w <= 2.0 for w in seconds)


def test_documented_profile_spreads_the_first_retry(seeded_jitter, call_state) -> None:
    policy = build_policy("worker")  # documented, jitter 1.0
    firsts = [sample(policy, 1, seed, seeded_jitter, call_state) for seed in range(200)]
    assert len(set(firsts)) == 200
    assert min(firsts) < 1.1 and max(firsts) > 1.9
    assert all(1.0 <= w <= 2.0 for w in firsts)


def test_bindu_storage_defaults_are_1_2_4_5(seeded_jitter, call_state) -> None:
    policy = build_policy("storage", profile="bindu")
    assert [sample(policy, n, 7, seeded_jitter, call_state) for n in (1, 2, 3, 4)] == [
        1.0,
        2.0,
        4.0,
        5.0,
    ]


def test_full_jitter_uses_the_whole_window(seeded_jitter, call_state) -> None:
    policy = build_policy("api", profile="full_jitter", min_wait=1.0, max_wait=15.0)
    waits = [sample(policy, 4, seed, seeded_jitter, call_state) for seed in range(300)]
    assert all(0.0 <= w <= 8.0 for w in waits)
    assert min(waits) < 0.5 and max(waits) > 7.5


# --- very long retry sequences --------------------------------------------------------------


@pytest.mark.parametrize("profile", ["exponential", "full_jitter", "equal_jitter", "documented"])
def test_zero_min_wait_stays_zero_for_any_retry_number(
    seeded_jitter, call_state, profile: str
) -> None:
    """min_wait=0 makes min_wait*2^(n-1) zero for every n, however large.

    Beyond n = 1024 the float power overflows; the wait must not jump to max_wait.
    """
    policy = build_policy(
        "worker", profile=profile, min_wait=0.0, max_wait=5.0, jitter=1.0, max_attempts=2000
    )
    ceiling = 1.0 if profile == "documented" else 0.0  # documented adds U(0, jitter)
    for n in (1, 1024, 1025, 1999):
        wait = sample(policy, n, 3, seeded_jitter, call_state)
        assert 0.0 <= wait <= ceiling, f"retry {n}: {wait}"
        assert_in_range(wait, policy.wait_range(n))


@pytest.mark.parametrize("profile", PROFILES)
def test_huge_retry_numbers_are_capped_at_max_wait(seeded_jitter, call_state, profile: str) -> None:
    policy = build_policy("worker", profile=profile, max_attempts=3000)
    for n in (1100, 2999):
        wait = sample(policy, n, 11, seeded_jitter, call_state)
        assert 0.0 <= wait <= 10.0


# --- the strategies tenacity lacks, directly ------------------------------------------------


def failed_state(exc: BaseException, attempt: int = 1) -> RetryCallState:
    state = RetryCallState(retry_object=Retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = attempt
    try:
        raise exc
    except BaseException as raised:
        state.set_exception((type(raised), raised, raised.__traceback__))
    return state


def test_equal_jitter_strategy_bounds(seeded_jitter) -> None:
    strategy = wait_equal_jitter(multiplier=2.0, max=10.0)
    state = RetryCallState(retry_object=Retrying(), fn=None, args=(), kwargs={})
    expected_v = {1: 2.0, 2: 4.0, 3: 8.0, 4: 10.0, 9: 10.0}
    with seeded_jitter(5):
        for n, v in expected_v.items():
            state.attempt_number = n
            waits = [strategy(state) for _ in range(100)]
            assert all(v / 2 <= w <= v for w in waits)
            assert max(waits) - min(waits) > v / 4


def test_decorrelated_states_are_independent(seeded_jitter) -> None:
    """Interleaved calls sharing one strategy each follow their own previous wait."""
    strategy = wait_decorrelated_jitter(base=1.0, max=1000.0)
    a = RetryCallState(retry_object=Retrying(), fn=None, args=(), kwargs={})
    b = RetryCallState(retry_object=Retrying(), fn=None, args=(), kwargs={})
    last = {id(a): 1.0, id(b): 1.0}
    with seeded_jitter(99):
        for n in range(1, 12):
            for state in (a, b):
                state.attempt_number = n
                wait = strategy(state)
                assert 1.0 <= wait <= 3 * last[id(state)]
                last[id(state)] = wait


def test_decorrelated_restarts_at_first_attempt(seeded_jitter) -> None:
    strategy = wait_decorrelated_jitter(base=2.0, max=10_000.0)
    state = RetryCallState(retry_object=Retrying(), fn=None, args=(), kwargs={})
    with seeded_jitter(1):
        for n in range(1, 10):
            state.attempt_number = n
            strategy(state)
        state.attempt_number = 1
        assert 2.0 <= strategy(state) <= 6.0


def test_retry_after_hint_lengthens_the_wait() -> None:
    strategy = wait_retry_after(wait_fixed(2.0))
    assert strategy(failed_state(RateLimitedError(retry_after=7.5))) == 7.5
    assert strategy(failed_state(RateLimitedError(retry_after=0.5))) == 2.0
    assert strategy(failed_state(RateLimitedError(retry_after=None))) == 2.0
    assert strategy(failed_state(ConnectionError("no hint"))) == 2.0


def test_retry_after_any_exception_with_numeric_hint_and_cap() -> None:
    class ThrottledError(Exception):
        retry_after = 30

    class WeirdHintError(Exception):
        retry_after = "soon"

    assert wait_retry_after(wait_fixed(1.0))(failed_state(ThrottledError())) == 30.0
    assert wait_retry_after(wait_fixed(1.0), cap=12.0)(failed_state(ThrottledError())) == 12.0
    assert wait_retry_after(wait_fixed(1.0))(failed_state(WeirdHintError())) == 1.0


@pytest.mark.parametrize(
    "hint",
    [math.inf, -math.inf, math.nan, -5.0, True, "60", 10**400],
    ids=["inf", "-inf", "nan", "negative", "bool", "string", "huge-int"],
)
def test_invalid_retry_after_hints_fall_back_to_the_strategy(hint: object) -> None:
    class HintedError(Exception):
        retry_after = hint

    assert wait_retry_after(wait_fixed(2.0))(failed_state(HintedError())) == 2.0


def test_an_honoured_hint_is_capped_at_max_of_max_wait_and_the_documented_cap() -> None:
    year = 365 * 24 * 3600.0
    short = build_policy("api", max_wait=1.0, respect_retry_after=True, profile="exponential")
    assert short.wait(failed_state(RateLimitedError(retry_after=year))) == RETRY_AFTER_CAP == 300.0
    assert short.wait(failed_state(RateLimitedError(retry_after=120.0))) == 120.0
    long = build_policy(
        "api", min_wait=1.0, max_wait=600.0, respect_retry_after=True, profile="exponential"
    )
    assert long.wait(failed_state(RateLimitedError(retry_after=year))) == 600.0


def test_an_infinite_hint_retries_and_re_raises_the_original_error(sync_sleep) -> None:
    from retrysim.retry import retry_api_call

    error = RateLimitedError(retry_after=math.inf)

    @retry_api_call(
        max_attempts=2,
        min_wait=0.5,
        max_wait=0.5,
        profile="exponential",
        respect_retry_after=True,
        retry=lambda state: True,
        sleep=sync_sleep,
    )
    def throttled() -> None:
        raise error

    with pytest.raises(RateLimitedError) as raised:
        throttled()
    assert raised.value is error
    assert sync_sleep.waits == [0.5]


def test_respect_retry_after_policy_can_exceed_its_range(call_state) -> None:
    policy = build_policy("api", profile="exponential", respect_retry_after=True)
    state = failed_state(RateLimitedError(retry_after=40.0))
    assert policy.wait(state) == 40.0
    assert policy.wait_range(1) == (1.0, 1.0)
    plain = failed_state(ConnectionError("x"))
    assert policy.wait(plain) == 1.0


def test_documented_with_zero_min_wait_caps_the_jitter_instead_of_shrinking_it(
    seeded_jitter, call_state
) -> None:
    """min(max_wait, 0 + U(0, jitter)) with jitter 2, max_wait 1: mean 0.75, half at the cap.

    The shortcut once drew U(0, min(jitter, max_wait)) instead: mean 0.5, never at the cap.
    """
    policy = build_policy("worker", min_wait=0.0, max_wait=1.0, jitter=2.0)
    waits = [sample(policy, 3, seed, seeded_jitter, call_state) for seed in range(4000)]
    assert 0.72 < sum(waits) / len(waits) < 0.78
    assert 0.45 < sum(w == 1.0 for w in waits) / len(waits) < 0.55
