"""Tests written for mutants of ``retrysim/retry/breaker.py`` that its own tests let survive
(a full mutation run, ``python scripts/mutate.py --module breaker``): each pins a behaviour of
the circuit breaker that a plausible wrong edit would change.

The clock is virtual (plain floats as ``now``, or a hand-moved clock given to the decorators):
nothing sleeps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from retrysim.retry import BreakerChange, GuardChain, GuardStates, retry_api_call
from retrysim.retry.breaker import BreakerOptions, CircuitBreaker, RetryBreaker
from retrysim.retry.exceptions import CircuitOpenError, GuardRefusedError

DOWN = ConnectionError("down")


def make(**knobs: Any) -> CircuitBreaker:
    return CircuitBreaker("dep", BreakerOptions(enabled=True, **knobs))


def make_retries(**knobs: Any) -> RetryBreaker:
    return RetryBreaker("dep", BreakerOptions(enabled=True, mode="retries", **knobs))


def send(breaker: CircuitBreaker, now: float, error: BaseException | None, times: int = 1) -> None:
    """``times`` attempts the breaker lets through, each answered at once with ``error``."""
    for _ in range(times):
        assert breaker.before_attempt(now, 1) is None, f"refused at {now} in {breaker.state}"
        breaker.after_outcome(now, error)


def state_of(breaker: CircuitBreaker) -> str:
    """The breaker's state, read afresh (no narrowing from an earlier assert: it changes)."""
    return breaker.state


class Refuse:
    """A later guard that refuses every attempt (as a budget or a second breaker might)."""

    def before_attempt(self, now: float, attempt: int) -> BaseException | None:
        return GuardRefusedError("refused by a later guard")

    def after_outcome(self, now: float, error: BaseException | None) -> None:
        pass


class Clock:
    """The guards' clock for a decorated function: it moves only when the test sets it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def flaky(clock: Clock, changes: list[BreakerChange], **breaker: Any) -> Callable[[bool], str]:
    """A decorated single-attempt call with its own breaker (the defaults, but for the knobs
    given) on ``clock``; it fails when asked to and reports every change of its breaker."""

    @retry_api_call(
        max_attempts=1,
        breaker={"enabled": True, **breaker},
        guard_states=GuardStates(),
        clock=clock,
        on_breaker_change=changes.append,
    )
    def fetch(ok: bool) -> str:
        if not ok:
            raise ConnectionError("down")
        return "answer"

    return fetch


# --- breaker -----------------------------------------------------------------------------------


def test_a_default_breaker_opens_on_the_fifth_failure_in_a_row_and_probes_a_minute_later() -> None:
    """An enabled breaker with no other knob set uses the documented defaults: five consecutive
    failures open it (the fifth call still runs), and it lets a probe through exactly 60 s
    after it opened."""
    clock, changes = Clock(), list[BreakerChange]()
    fetch = flaky(clock, changes)
    for _ in range(5):
        with pytest.raises(ConnectionError):
            fetch(False)
    with pytest.raises(CircuitOpenError) as refused:
        fetch(True)
    assert refused.value.retry_in == 60.0
    clock.now = math.nextafter(60.0, 0.0)
    with pytest.raises(CircuitOpenError):
        fetch(True)
    clock.now = 60.0
    assert fetch(True) == "answer"  # the probe, which closes it
    assert [(c.state, c.time) for c in changes] == [
        ("open", 0.0),
        ("half_open", 60.0),
        ("closed", 60.0),
    ]


def test_an_enabled_breaker_that_could_never_open_is_refused() -> None:
    """With ``failure_threshold = 0`` and no ``failure_rate`` (the default) nothing could open
    an enabled breaker: it is refused, naming both knobs. Any rate above 0 alone will do (the
    full range up to 1 included), and a breaker that is off needs neither."""
    for knobs in ({}, {"failure_rate": 0.0}):
        with pytest.raises(ValidationError, match="failure_threshold >= 1 or failure_rate > 0"):
            BreakerOptions(enabled=True, failure_threshold=0, **knobs)
    for rate in (0.01, 0.5, 1.0):
        assert BreakerOptions(enabled=True, failure_threshold=0, failure_rate=rate).enabled
    assert not BreakerOptions(failure_threshold=0).enabled


def test_the_default_count_window_holds_the_last_hundred_outcomes() -> None:
    """The count window is 100 outcomes by default: the 101st pushes the oldest out. A success,
    49 failures and 50 successes are 49% failures; one more failure makes the last hundred
    50% (the oldest success is gone), where the 101 of them would still be below half."""
    breaker = make(failure_threshold=0, failure_rate=0.5, minimum_calls=100)
    send(breaker, 0.0, None)
    send(breaker, 0.0, DOWN, times=49)
    send(breaker, 0.0, None, times=50)
    assert state_of(breaker) == "closed"
    send(breaker, 0.0, DOWN)
    assert state_of(breaker) == "open"


def test_a_sub_second_time_window_is_still_a_time_window() -> None:
    """``window_seconds = 0.5`` is a time window like any other: ``minimum_calls`` is not cut
    to the count window's size (that window is not used), and an outcome exactly 0.5 s old is
    forgotten."""
    breaker = make(failure_threshold=0, failure_rate=0.6, window=5, window_seconds=0.5)
    send(breaker, 0.0, DOWN, times=9)
    assert state_of(breaker) == "closed"  # all failures, but fewer than minimum_calls (10)
    send(breaker, 0.0, DOWN)
    assert state_of(breaker) == "open"
    forgets = make(failure_threshold=0, failure_rate=0.5, minimum_calls=2, window_seconds=0.5)
    send(forgets, 0.0, DOWN)
    send(forgets, 0.5, None)  # the failure is 0.5 s old: gone, one outcome is left
    assert state_of(forgets) == "closed"
    send(forgets, 0.5, DOWN)  # S@0.5 F@0.5: half of two
    assert state_of(forgets) == "open"


def test_an_outcome_leaving_a_time_window_takes_its_failure_with_it() -> None:
    """When a failure falls out of a time window, the window's failure count drops by one: the
    successes heard after it then make a rate of 0, and one new failure among two outcomes is
    the rate again, whatever the time the old failure was heard at."""
    knobs: dict[str, Any] = {"failure_threshold": 0, "failure_rate": 0.5, "minimum_calls": 2}
    breaker = make(window_seconds=10.0, **knobs)
    send(breaker, 1.0, DOWN)
    send(breaker, 11.0, None)  # the failure (10 s old) leaves: S@11 alone
    send(breaker, 11.5, None)
    assert state_of(breaker) == "closed"  # 0 failures in 2
    later = make(window_seconds=10.0, **knobs)
    send(later, 5.0, DOWN)
    send(later, 15.0, None)  # the failure at t=5 leaves
    send(later, 15.0, DOWN)
    assert state_of(later) == "open"  # 1 failure in 2


def test_after_recovering_it_needs_a_fresh_run_of_consecutive_failures() -> None:
    """Once a probe closed it, the failures that opened it are forgotten: with a threshold of
    3, two new failures in a row leave it closed and the third opens it again."""
    clock, changes = Clock(), list[BreakerChange]()
    fetch = flaky(clock, changes, failure_threshold=3, recovery_timeout=10.0)
    for _ in range(3):
        with pytest.raises(ConnectionError):
            fetch(False)
    clock.now = 10.0
    assert fetch(True) == "answer"
    clock.now = 11.0
    for _ in range(3):
        with pytest.raises(ConnectionError):  # each runs: the third opens it
            fetch(False)
    with pytest.raises(CircuitOpenError):
        fetch(True)
    assert [c.state for c in changes] == ["open", "half_open", "closed", "open"]


def test_after_recovering_the_rate_is_judged_on_a_fresh_window() -> None:
    """Once a probe closed it, the failure-rate window starts empty: the outcomes that opened
    it neither count against it (four successes are a rate of 0) nor dilute what follows (a
    failure after them is one in the last four, the rate that opens it)."""
    breaker = make(
        failure_threshold=0, failure_rate=0.25, minimum_calls=4, window=4, recovery_timeout=10.0
    )
    send(breaker, 0.0, None, times=3)
    send(breaker, 0.0, DOWN)
    assert state_of(breaker) == "open"  # 1 in 4
    send(breaker, 10.0, None)  # the probe closes it
    assert state_of(breaker) == "closed"
    send(breaker, 11.0, None, times=4)
    assert state_of(breaker) == "closed"  # 0 in 4
    send(breaker, 11.0, DOWN)
    assert state_of(breaker) == "open"  # S S S F: 1 in 4
    assert breaker.opened == 2


def test_stats_count_every_refusal_open_or_half_open() -> None:
    """``stats()`` (what reports show) counts the times it opened and every attempt it refused:
    while open, and half-open with every probe slot taken; in ``retries`` mode only refused
    retries, never the first attempts it lets through."""
    breaker = make(failure_threshold=1, recovery_timeout=10.0)
    assert breaker.stats() == {"opened": 0, "refused": 0}
    send(breaker, 0.0, DOWN)
    assert isinstance(breaker.before_attempt(5.0, 1), CircuitOpenError)  # open
    assert breaker.before_attempt(10.0, 1) is None  # the probe
    for _ in range(2):
        assert isinstance(breaker.before_attempt(10.0, 1), CircuitOpenError)  # slot taken
    assert breaker.stats() == {"opened": 1, "refused": 3}

    retries = make_retries(failure_threshold=1, recovery_timeout=10.0)
    views = [retries.for_call() for _ in range(4)]
    assert views[0].before_attempt(0.0, 1) is None
    views[0].after_outcome(0.0, DOWN)
    assert isinstance(views[0].before_attempt(5.0, 2), CircuitOpenError)  # a retry, open
    assert views[1].before_attempt(10.0, 2) is None  # the probe
    assert isinstance(views[2].before_attempt(10.0, 2), CircuitOpenError)  # slot taken
    assert views[3].before_attempt(10.0, 1) is None  # a first attempt always goes
    assert retries.stats() == {"opened": 1, "refused": 2}


def test_a_refused_outcome_heard_while_no_probe_is_out_frees_no_probe_slot() -> None:
    """An attempt sent while closed may end, after the breaker half-opened, refused elsewhere
    (another dependency's open breaker inside it): it never ran, and it held no probe slot, so
    there is none to give back. The one probe slot is still the only one."""
    breaker = make(failure_threshold=1, recovery_timeout=10.0, half_open_probes=1)
    assert breaker.before_attempt(0.0, 1) is None  # a slow attempt, sent while closed
    send(breaker, 0.5, DOWN)  # another one fails: open
    chain = GuardChain([breaker, Refuse()])
    assert isinstance(chain.before_attempt(10.5, 1), GuardRefusedError)  # its probe comes back
    assert state_of(breaker) == "half_open"
    breaker.after_outcome(11.0, CircuitOpenError("inner", 3.0))  # the slow attempt's end
    assert breaker.before_attempt(12.0, 1) is None  # the probe
    refusal = breaker.before_attempt(12.0, 1)
    assert isinstance(refusal, CircuitOpenError) and refusal.retry_in == 0.0


def test_a_retries_breaker_used_directly_hears_an_outcome_told_before_any_attempt() -> None:
    """Used directly (or through a call's view), a ``retries`` breaker takes an outcome it is
    told before it admitted anything as a closed breaker's, as a ``calls`` breaker does: a
    failure with a threshold of 1 opens it, and a retry is then refused."""
    for tell in (
        lambda b: b.after_outcome(0.0, DOWN),
        lambda b: b.for_call().after_outcome(0.0, DOWN),
    ):
        breaker = make_retries(failure_threshold=1, recovery_timeout=10.0)
        tell(breaker)
        assert state_of(breaker) == "open" and breaker.opened == 1
        assert isinstance(breaker.before_attempt(1.0, 2), CircuitOpenError)
    plain = make(failure_threshold=1)
    plain.after_outcome(0.0, DOWN)
    assert state_of(plain) == "open"
