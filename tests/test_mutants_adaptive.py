"""Tests written for mutants of ``retrysim/retry/adaptive.py`` that its own tests let survive
(a full mutation run, ``python scripts/mutate.py --module adaptive``): each pins a behaviour of
the adaptive limiter that a plausible wrong edit would change.

The expected numbers are worked out by hand in each docstring from the module's rules: after
the first throttle the allowed rate is ``max(floor, min(beta * send rate, 2 * send rate))``,
the token bucket starts empty, refills at the allowed rate and holds at most
``max(rate, 1)`` tokens; the send rate before the first closed half-second bucket is the
answers so far over at least half a second. Nothing sleeps: clocks are hand-made and only the
injected sleeps move them.
"""

from __future__ import annotations

from typing import Any

import pytest

from retrysim.retry import (
    AdaptiveOptions,
    GuardStates,
    RateLimitedError,
    build_policy,
    retry_worker_operation,
)
from retrysim.retry.adaptive import CubicRateLimiter, adaptive_guards
from retrysim.retry.guards import GuardEvent

THROTTLE = RateLimitedError("slow down")


class FakeTime:
    """A clock that only the injected sleep moves; it remembers every sleep."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def _process_limiter(states: GuardStates, options: AdaptiveOptions) -> Any:
    """The ``worker`` operation's send-rate limiter in ``states`` (the one its decorated calls
    share, as a process's calls share it), made before any call so a test can set its line."""
    (placed,) = adaptive_guards("worker", options)
    return states.instance(placed.spec, None)


# --- adaptive: the options' defaults -----------------------------------------------------------


@pytest.mark.parametrize(
    ("failed_at", "wait"),
    [
        (29.5, 1.5 * (1 + 3 * (1 / 2))),  # the success is remembered: half the outcomes failed
        (30.5, 1.5 * 4),  # the success is forgotten: every remembered outcome failed
    ],
)
def test_default_adaptive_backoff_remembers_30_seconds_and_stretches_at_most_4_times(
    failed_at: float, wait: float
) -> None:
    """Adaptive backoff switched on with nothing else set: a success at t=0, then a call whose
    first attempt fails at ``failed_at``. The wait before its retry is the profile's 1.5 s
    times ``1 + (4 - 1) * share``: a success 29.5 s old still counts (share 1/2), one 30.5 s
    old is out of the 30 s window (share 1, the longest stretch: 4 times)."""
    time = FakeTime(0.0)
    answers: list[Exception | None] = [None, ConnectionError("reset"), None]

    @retry_worker_operation(
        max_attempts=2,
        min_wait=1.5,
        max_wait=1.5,
        profile="exponential",
        adaptive={"enabled": True},
        guard_states=GuardStates(),
        sleep=time.sleep,
        clock=time,
    )
    def op() -> str:
        answer = answers.pop(0)
        if answer is not None:
            raise answer
        return "ok"

    assert op() == "ok"
    time.now = failed_at
    assert op() == "ok"
    assert time.waits == pytest.approx([wait])


def test_the_default_limiter_grows_back_along_cubics_curve_with_c_0_4() -> None:
    """The limiter switched on with nothing else set follows the AWS SDKs' constants: a
    throttle at t=0 (one answer over half a second: 2/s) sets W_max = 2 and
    K = cbrt(2 * (1 - 0.7) / 0.4); a success at t=0.2 then sets the rate to CUBIC's
    ``0.4 (0.2 - K)^3 + 2`` (below twice the send rate, 2 answers / 0.5 s = 4/s)."""
    limiter = _process_limiter(GuardStates(), AdaptiveOptions(limiter=True))
    limiter.after_outcome(0.0, THROTTLE)
    assert limiter.stats()["rate"] == pytest.approx(0.7 * 2.0)
    limiter.after_outcome(0.2, None)
    k = (2.0 * (1 - 0.7) / 0.4) ** (1 / 3)
    cubic = 0.4 * (0.2 - k) ** 3 + 2.0
    assert 0.5 < cubic < 2 * 4.0
    assert limiter.stats()["rate"] == pytest.approx(cubic)


# --- adaptive: a call's time limit bounds the limiter's hold ----------------------------------


def test_a_calls_first_send_is_held_no_longer_than_its_earlier_time_limit() -> None:
    """A call that starts at t=10 behind a long line (ten sends queued at 1.4/s: its turn
    would come 11 / 1.4 = 7.9 s later) with ``max_delay`` 2 s and a budget's
    ``max_total_time`` of 100 s is held for the earlier limit's 2 s, no longer, and its send
    goes at t=12."""
    time = FakeTime(10.0)
    states = GuardStates()
    limiter = _process_limiter(states, AdaptiveOptions(limiter=True))
    limiter.after_outcome(10.0, THROTTLE)  # 2/s measured, cut to 1.4/s; the bucket is empty
    twin = CubicRateLimiter("limiter:worker", beta=0.7, scale=0.4, min_rate=0.5)
    twin.after_outcome(10.0, THROTTLE)
    for _ in range(10):
        limiter.pace(10.0)  # other sends of this process take their places in line
        twin.pace(10.0)
    assert twin.pace(10.0) == pytest.approx(11 / 1.4)  # the hold with no time limit
    sent: list[float] = []

    @retry_worker_operation(
        max_attempts=1,
        max_delay=2.0,
        budget={"max_total_time": 100.0},
        adaptive={"limiter": True},
        guard_states=states,
        sleep=time.sleep,
        clock=time,
    )
    def op() -> str:
        sent.append(time.now)
        return "ok"

    assert op() == "ok"
    assert time.waits == pytest.approx([2.0])
    assert sent == pytest.approx([12.0])


def test_a_send_after_a_wait_past_the_calls_time_limit_is_not_held() -> None:
    """``max_delay``'s stop lets a wait run past the limit; the send after it goes at once,
    whatever the limiter's line: the call's time is up, so no hold is left to give. Here a
    call starting at t=10 (a full bucket: its first send is not held) with a 5 s limit fails,
    five other sends queue meanwhile, and its 6 s wait ends at t=16, past the limit."""
    time = FakeTime(10.0)
    states = GuardStates()
    limiter = _process_limiter(states, AdaptiveOptions(limiter=True))
    limiter.after_outcome(0.0, THROTTLE)  # 1.4/s; by t=10 the bucket holds 1.4 tokens
    sent: list[float] = []

    @retry_worker_operation(
        max_attempts=2,
        max_delay=5.0,
        min_wait=6.0,
        max_wait=6.0,
        profile="exponential",
        adaptive={"limiter": True},
        guard_states=states,
        sleep=time.sleep,
        clock=time,
    )
    def op() -> str:
        sent.append(time.now)
        if len(sent) == 1:
            for _ in range(5):
                limiter.pace(time.now)  # other sends of this process queue meanwhile
            raise ConnectionError("reset")
        return "ok"

    assert op() == "ok"
    assert sent == pytest.approx([10.0, 16.0])
    assert time.waits == pytest.approx([6.0])  # the wait only: no hold before either send


def test_only_a_policy_whose_limiter_is_on_gets_a_pacing_deadline() -> None:
    """A time limit alone declares no guard (there is no limiter for it to bound, and a
    policy's guards are state each call and the simulator set up); with the limiter on, the
    limit comes as the call-scoped ``pacing-deadline`` after the limiter."""
    assert build_policy("worker", max_delay=5.0).guards == ()
    assert build_policy("worker", budget={"max_total_time": 5.0}).guards == ()
    limited = build_policy("worker", max_delay=5.0, adaptive={"limiter": True})
    assert [(spec.name, spec.scope) for spec in limited.guards] == [
        ("limiter:worker", "client"),
        ("pacing-deadline", "call"),
    ]


# --- adaptive: what the limiter reports ---------------------------------------------------------


def test_only_held_sends_are_reported_and_their_holds_add_up() -> None:
    """Ten seconds after a throttle (1.4/s) the bucket holds 1.4 tokens: the first send at
    t=10 goes at once and is no event; the next two wait (1 - 0.4) / 1.4 and (2 - 0.4) / 1.4
    seconds, each reported as a ``limiter_delay`` event, and the stats count 2 delays and
    their sum in seconds."""
    events: list[GuardEvent] = []
    limiter = _process_limiter(GuardStates([events.append]), AdaptiveOptions(limiter=True))
    limiter.after_outcome(0.0, THROTTLE)
    assert limiter.stats() == {"delays": 0, "delayed_seconds": 0.0, "rate": pytest.approx(1.4)}
    holds = [limiter.pace(10.0) for _ in range(3)]
    assert holds == pytest.approx([0.0, 0.6 / 1.4, 1.6 / 1.4])
    assert [(e.kind, e.value) for e in events if e.kind == "limiter_delay"] == [
        ("limiter_delay", holds[1]),
        ("limiter_delay", holds[2]),
    ]
    stats = limiter.stats()
    assert stats["delays"] == 2
    assert stats["delayed_seconds"] == pytest.approx(2.2 / 1.4)


# --- adaptive: the token bucket ----------------------------------------------------------------


def test_the_bucket_refills_at_the_rate_and_holds_at_most_a_seconds_worth() -> None:
    """At 4 sends a second (the floor: a throttle at t=10 asks 1.4/s) the bucket earns one
    token each quarter second from the throttle: two sends at 10.25 go at once and after a
    quarter second, three at 10.5 after 1/4, 2/4 and 3/4 s. After a long pause it holds 4
    tokens, never more: four sends go at once and the fifth waits a quarter second."""
    limiter = CubicRateLimiter("limiter", beta=0.7, scale=0.4, min_rate=4.0)
    limiter.after_outcome(10.0, THROTTLE)
    assert limiter.stats()["rate"] == 4.0
    steady = [limiter.pace(t) for t in (10.25, 10.25, 10.5, 10.5, 10.5)]
    assert steady == pytest.approx([0.0, 0.25, 0.25, 0.5, 0.75])
    burst = [limiter.pace(20.0) for _ in range(5)]
    assert burst == pytest.approx([0.0, 0.0, 0.0, 0.0, 0.25])


def test_a_limiter_slower_than_one_send_a_second_still_lets_one_send_straight_through() -> None:
    """The bucket holds at least one token: at 0.5/s (the floor under 0.1 * 2/s) a send after
    a long pause goes at once, and the next waits the full 1 / 0.5 = 2 s."""
    limiter = CubicRateLimiter("limiter", beta=0.1, scale=0.4, min_rate=0.5)
    limiter.after_outcome(0.0, THROTTLE)
    assert limiter.stats()["rate"] == 0.5
    assert [limiter.pace(10.0), limiter.pace(10.0)] == pytest.approx([0.0, 2.0])


def test_tokens_earned_before_a_rate_change_are_earned_at_the_old_rate() -> None:
    """A throttle at t=0 sets 1.4/s; a success at t=2 raises the rate to 1.6/s (twice the
    measured 0.8/s, under CUBIC's 2.25/s). The two seconds before it filled the bucket at
    1.4/s, to its 1.4-token capacity then: a send at t=2 goes at once and the next waits
    (1 - 0.4) / 1.6 s (not as if the bucket had filled at 1.6/s, to 1.6 tokens)."""
    limiter = CubicRateLimiter("limiter", beta=0.7, scale=0.4, min_rate=0.1)
    limiter.after_outcome(0.0, THROTTLE)
    assert limiter.stats()["rate"] == pytest.approx(1.4)
    limiter.after_outcome(2.0, None)
    assert limiter.stats()["rate"] == pytest.approx(2 * 0.8)
    assert [limiter.pace(2.0), limiter.pace(2.0)] == pytest.approx([0.0, 0.6 / 1.6])


def test_a_measured_send_rate_under_one_a_second_is_the_rate_a_throttle_cuts() -> None:
    """Two answers 5 s apart close a bucket at 2 / 5 s = 0.4/s, smoothed to 0.8 * 0.4 = 0.32/s;
    a throttle at t=5.1 cuts from that measured rate (to 0.7 * 0.32/s), not from the answers
    since the bucket opened (1 over half a second, 2/s), so a send then waits 1 / 0.224 s."""
    limiter = CubicRateLimiter("limiter", beta=0.7, scale=0.4, min_rate=0.1)
    limiter.after_outcome(0.0, None)
    limiter.after_outcome(5.0, None)
    limiter.after_outcome(5.1, THROTTLE)
    rate = 0.7 * 0.8 * 2 / 5
    assert limiter.stats()["rate"] == pytest.approx(rate)
    assert limiter.pace(5.1) == pytest.approx(1 / rate)
