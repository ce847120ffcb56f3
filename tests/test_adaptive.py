"""Adaptive backoff and the send-rate limiter, against hand-computed values.

The limiter's rate after a known sequence of answers is worked out by hand below (the AWS SDKs'
adaptive mode: CUBIC growth ``C (t - K)^3 + W_max`` with C = 0.4, a cut to beta = 0.7 times the
rate at a throttle, never above twice the measured send rate nor below 0.5/s; the send rate
measured per answer in half-second buckets, smoothed 0.8 new / 0.2 old).
"""

from __future__ import annotations

import math
import threading
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrysim.retry import GuardStates, RateLimitedError, retry_worker_operation
from retrysim.retry.adaptive import CubicRateLimiter, FailureRate
from retrysim.retry.decorators import retry_with_adaptive_backoff
from retrysim.retry.exceptions import CircuitOpenError
from retrysim.retry.guards import GuardEvent

THROTTLE = RateLimitedError("slow down")


def limiter() -> CubicRateLimiter:
    return CubicRateLimiter("limiter", beta=0.7, scale=0.4, min_rate=0.5)


# --- the limiter ---------------------------------------------------------------------------


def test_it_stays_out_of_the_way_until_the_first_throttle() -> None:
    lim = limiter()
    for i in range(200):
        t = i * 0.01
        assert lim.pace(t) == 0.0
        lim.after_outcome(t, None if i % 3 else ConnectionError("not a throttle"))
    assert not lim.enabled and lim.stats()["rate"] == math.inf
    lim.after_outcome(2.0, THROTTLE)
    assert lim.enabled and lim.pace(2.0) > 0


def test_the_rate_after_a_known_sequence_is_the_hand_computed_one() -> None:
    lim = limiter()
    rates: list[GuardEvent] = []
    lim.notify.listeners = (rates.append,)
    # 20 answers before t=1: t = 0.00, 0.05, ..., 0.95 (all successes, limiter not enabled).
    # The first answer opens bucket [0, 0.5) with a count of 1; 0.05..0.45 bring it to 10.
    # At t=0.5 the 11th answer is counted and the bucket closes: 11 / 0.5 s = 22/s, smoothed
    # 0.8 * 22 + 0.2 * 0 = 17.6. Then 0.55..0.95 count 9 in bucket [0.5, 1.0).
    for i in range(20):
        lim.after_outcome(i * 0.05, None)
    assert lim.measured == pytest.approx(0.8 * 22)
    # t=1.0, a throttle: counted (10), bucket [0.5, 1.0) closes at 10 / 0.5 = 20/s:
    measured = 0.8 * 20 + 0.2 * 17.6  # = 19.52
    w_max = measured  # not enabled yet: the rate at the throttle is the measured one
    k = (w_max * (1 - 0.7) / 0.4) ** (1 / 3)  # cbrt(14.64) = 2.4463...
    lim.after_outcome(1.0, THROTTLE)
    assert lim.measured == pytest.approx(measured)
    assert lim.rate == pytest.approx(0.7 * 19.52)  # 13.664, below 2 x 19.52
    assert rates == [GuardEvent(1.0, "limiter_rate", "limiter", None, lim.rate)]
    # t=1.2, a success: same bucket (count 1), measured unchanged; CUBIC decides:
    cubic = 0.4 * (1.2 - 1.0 - k) ** 3 + w_max  # 0.4 * (-2.2463)^3 + 19.52 = 14.986...
    lim.after_outcome(1.2, None)
    assert lim.rate == pytest.approx(cubic) and cubic < 2 * measured
    # t=3.0, a success: bucket [1.0, 1.5) closes with 2 answers over 2 s (1/s):
    measured = 0.8 * (2 / 2.0) + 0.2 * 19.52  # = 4.704
    cubic = 0.4 * (3.0 - 1.0 - k) ** 3 + w_max  # about 19.48: twice the measured rate caps it
    lim.after_outcome(3.0, None)
    assert lim.rate == pytest.approx(2 * 4.704) and cubic > 2 * measured
    # t=3.1, a throttle while enabled: the rate at the throttle is min(measured, rate)
    lim.after_outcome(3.1, THROTTLE)
    assert lim.w_max == pytest.approx(4.704)
    assert lim.k == pytest.approx((4.704 * 0.3 / 0.4) ** (1 / 3))
    assert lim.rate == pytest.approx(0.7 * 4.704)  # 3.2928
    # t=3.2, a throttle: measured is still 4.704, the rate 3.2928: the cut starts from the rate
    lim.after_outcome(3.2, THROTTLE)
    assert lim.rate == pytest.approx(0.7 * 3.2928)  # 2.30496
    # t=4.0, a success: bucket [3.0, 3.5) closes with 3 answers over 1 s
    measured = 0.8 * (3 / 1.0) + 0.2 * 4.704  # = 3.3408
    k = (3.2928 * 0.3 / 0.4) ** (1 / 3)
    cubic = 0.4 * (4.0 - 3.2 - k) ** 3 + 3.2928  # = 3.2256... (still below W_max)
    lim.after_outcome(4.0, None)
    assert lim.rate == pytest.approx(cubic) and cubic < 2 * measured
    assert [e.value for e in rates] == pytest.approx([13.664, 3.2928, 2.30496])


def test_a_throttle_before_any_measured_bucket_reads_the_answers_so_far() -> None:
    lim = limiter()
    lim.after_outcome(0.0, THROTTLE)  # no bucket has closed: 1 answer over (at least) 0.5 s
    assert lim.send_rate(0.0) == 2.0
    assert lim.rate == pytest.approx(0.7 * 2.0)  # not 0.7 * 0, which would be the 0.5/s floor
    assert lim.pace(0.0) == pytest.approx(1 / 1.4)  # the bucket starts empty: one token
    # three answers in the first 0.3 s, the third a throttle: 3 / 0.5 s = 6/s, times 0.7
    lim = limiter()
    lim.after_outcome(0.1, None)
    lim.after_outcome(0.2, None)
    lim.after_outcome(0.3, THROTTLE)
    assert lim.rate == pytest.approx(0.7 * 6.0)


def test_a_throttle_never_sets_the_rate_below_the_floor() -> None:
    lim = CubicRateLimiter("limiter", beta=0.7, scale=0.4, min_rate=2.0)
    lim.after_outcome(0.0, THROTTLE)  # 0.7 * 2/s = 1.4/s, under the floor
    assert lim.rate == 2.0


def test_sends_queue_behind_each_other_once_enabled() -> None:
    lim = limiter()
    for i in range(20):
        lim.after_outcome(i * 0.05, None)
    lim.after_outcome(1.0, THROTTLE)  # rate 13.664/s, as in the worked example
    rate = 0.7 * 19.52
    delays = [lim.pace(1.0) for _ in range(4)]
    assert delays == pytest.approx([1 / rate, 2 / rate, 3 / rate, 4 / rate])
    # a second later the bucket has refilled rate tokens, minus the 4 reserved: no wait
    assert lim.pace(2.0) == 0.0
    assert lim.stats()["delays"] == 4


def test_refused_attempts_are_not_sends() -> None:
    """The decorators and the engine pace an attempt before the other guards see it; one an
    open breaker then refuses never went out, so it is not part of the measured send rate."""
    lim = limiter()
    for i in range(21):
        lim.pace(i * 0.05)
        lim.after_outcome(i * 0.05, CircuitOpenError("dep"))
    assert lim.measured == 0.0 and not lim.enabled
    lim.pace(1.0)
    lim.after_outcome(1.0, None)  # the first real answer opens a bucket: still nothing measured
    assert lim.measured == 0.0


@settings(max_examples=200, deadline=None)
@given(
    answers=st.lists(
        st.tuples(st.floats(0, 2), st.sampled_from(["ok", "throttle", "error", "send"])),
        max_size=150,
    ),
    floor=st.sampled_from([0.5, 0.1, 2.0]),
)
def test_the_rate_never_falls_below_the_floor(
    answers: list[tuple[float, str]], floor: float
) -> None:
    lim = CubicRateLimiter("limiter", beta=0.7, scale=0.4, min_rate=floor)
    now = 0.0
    for step, kind in answers:
        now += step
        if kind == "send":
            assert lim.pace(now) >= 0.0
            continue
        error = {"ok": None, "throttle": THROTTLE, "error": TimeoutError()}[kind]
        lim.after_outcome(now, error)
        if lim.enabled:
            assert lim.rate >= floor
            assert lim.rate <= max(floor, 2 * lim.send_rate(now))


def test_first_attempts_are_delayed_once_throttled() -> None:
    states = GuardStates()
    log: list[str] = []
    now = [10.0]
    answers = [THROTTLE, None, None]

    @retry_worker_operation(
        max_attempts=1,
        adaptive={"limiter": True},
        guard_states=states,
        sleep=lambda s: log.append(f"sleep {s:.3f}"),
        clock=lambda: now[0],
    )
    def op() -> None:
        log.append("send")
        answer = answers.pop(0)
        if answer is not None:
            raise answer

    with pytest.raises(RateLimitedError):
        op()  # the first throttle: one answer in the first half second, 2/s, so 0.7 * 2 = 1.4/s
    op()  # a new call: its first attempt waits for a token (1 / 1.4 = 0.714 s)
    now[0] = 20.0
    op()  # 10 s later the bucket has a token again (capacity 1.4): no wait
    assert log == ["send", "sleep 0.714", "send", "send"]


# --- adaptive backoff ----------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    outcomes=st.lists(st.tuples(st.integers(0, 40), st.booleans()), max_size=60),
    window=st.integers(1, 30),
    factor=st.integers(1, 8),
    at=st.integers(0, 80),
)
def test_the_factor_is_one_plus_the_failure_share_of_the_stretch(
    outcomes: list[tuple[int, bool]], window: int, factor: int, at: int
) -> None:
    rate = FailureRate("adaptive", float(window), float(factor))
    times = sorted(t for t, _ in outcomes)
    history = list(zip(times, (failed for _, failed in outcomes), strict=True))
    for t, failed in history:
        rate.after_outcome(float(t), ConnectionError() if failed else None)
    now = max([at, *times])
    recent = [failed for t, failed in history if t > now - window]
    share = Fraction(sum(recent), len(recent)) if recent else Fraction(0)
    assert rate.wait_factor(float(now)) == pytest.approx(float(1 + (factor - 1) * share))


def test_the_window_forgets_an_outcome_exactly_window_seconds_old() -> None:
    rate = FailureRate("adaptive", window=30.0, max_factor=4.0)
    rate.after_outcome(0.0, TimeoutError())
    assert rate.wait_factor(math.nextafter(30.0, 0.0)) == 4.0
    assert rate.wait_factor(30.0) == 1.0
    rate.after_outcome(31.0, CircuitOpenError("dep"))  # a refusal is not an outcome
    assert rate.wait_factor(31.0) == 1.0


def test_waits_stretch_with_the_recent_failure_rate() -> None:
    states = GuardStates()
    sleeps: list[float] = []
    answers: list[Exception | None] = [None, None, ConnectionError(), ConnectionError(), None]

    @retry_with_adaptive_backoff(window=60.0, max_factor=3.0)
    @retry_worker_operation(
        max_attempts=5,
        min_wait=1.0,
        max_wait=100.0,
        profile="exponential",
        guard_states=states,
        sleep=sleeps.append,
        clock=lambda: 0.0,
    )
    def op() -> str:
        answer = answers.pop(0)
        if answer is not None:
            raise answer
        return "ok"

    assert op() == "ok" and op() == "ok"  # two successes in the window
    assert op() == "ok"  # fails twice, then succeeds
    # after the 1st failure: 1 of 3 outcomes failed, factor 1 + 2 * 1/3; the wait is 1 s
    # after the 2nd: 2 of 4 failed, factor 1 + 2 * 1/2 = 2; the wait is 2 s
    assert sleeps == pytest.approx([1.0 * (1 + 2 / 3), 2.0 * 2])


def test_sixteen_threads_queue_behind_each_other_exactly() -> None:
    lim = limiter()
    lim.after_outcome(0.0, THROTTLE)  # rate 1.4/s (0.7 * 2/s, see above), an empty bucket
    delays: list[float] = []

    def work() -> None:
        for _ in range(25):
            delays.append(lim.pace(0.0))

    threads = [threading.Thread(target=work) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # whatever the interleaving, every send got its own place in the queue: n / 1.4 s each
    assert sorted(delays) == pytest.approx([n / 1.4 for n in range(1, 401)])
