"""A breaker in ``retries`` mode, edge by edge, on a virtual clock (plain floats as ``now``).

``mode = "retries"`` gates only retries: a call's first attempt goes through whatever the
state and never takes a probe slot. The edges of the shared state machine (thresholds,
rates, windows) are ``tests/test_breaker.py``'s; here are the ones the mode adds: the first
attempt passing an open breaker, the retry refused beside it, half-open hearing exactly the
attempts sent since it half-opened (first attempts and probes, told apart per call), a probe
slot given back only for a probe. A model-based test replays random interleavings of calls
against an independent model; through the real decorators a second call still runs its first
attempt where ``calls`` mode would refuse it; sixteen threads never see a first attempt
refused.
"""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrysim.retry import GuardChain, GuardStates, retry_worker_operation
from retrysim.retry.breaker import (
    BreakerOptions,
    CircuitBreaker,
    RetryBreaker,
    RetryBreakerCall,
    breaker_guards,
)
from retrysim.retry.exceptions import CircuitOpenError, GuardRefusedError
from tests.test_breaker import DOWN, Refuse, events_of, state_of, ticking_clock
from tests.test_budget import in_threads


def make(**knobs: Any) -> RetryBreaker:
    return RetryBreaker("dep", BreakerOptions(enabled=True, mode="retries", **knobs))


def call(breaker: RetryBreaker) -> RetryBreakerCall:
    """A call's view, as its guard chain makes it."""
    (view,) = GuardChain([breaker]).guards
    assert isinstance(view, RetryBreakerCall)
    return view


def open_at(breaker: RetryBreaker, now: float) -> None:
    """Open it with failing first attempts (one failure opens it with failure_threshold=1)."""
    view = call(breaker)
    assert view.before_attempt(now, 1) is None
    view.after_outcome(now, DOWN)
    assert state_of(breaker) == "open"


# --- which class, which view ----------------------------------------------------------------


def test_the_mode_picks_the_breaker_and_calls_mode_keeps_no_view() -> None:
    for mode, kind in (("calls", CircuitBreaker), ("retries", RetryBreaker)):
        (placed,) = breaker_guards("api", BreakerOptions(enabled=True, mode=mode))
        breaker = placed.spec.make()
        assert type(breaker) is kind and placed.stage == "admit"
    plain = CircuitBreaker("dep", BreakerOptions(enabled=True))
    assert GuardChain([plain]).guards == (plain,)  # calls mode: the breaker itself, as before
    retries = make()
    first, second = call(retries), call(retries)
    assert first is not second  # a view per call
    assert first.breaker is retries and second.breaker is retries  # one shared state


def test_a_bad_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="mode"):
        BreakerOptions.model_validate({"mode": "attempts"})


# --- open: first attempts pass, retries are refused -----------------------------------------


def test_the_first_attempt_passes_an_open_breaker_and_its_retry_is_refused() -> None:
    breaker = make(failure_threshold=1, recovery_timeout=30.0)
    open_at(breaker, 5.0)
    view = call(breaker)
    assert view.before_attempt(6.0, 1) is None  # open, but a first attempt goes through
    view.after_outcome(6.5, DOWN)  # heard while open: ignored (the open period does not move)
    refusal = view.before_attempt(7.0, 2)
    assert isinstance(refusal, CircuitOpenError) and refusal.retry_in == 28.0
    assert breaker.refused == 1 and breaker.opened == 1 and state_of(breaker) == "open"


def test_open_refuses_retries_until_exactly_recovery_timeout() -> None:
    breaker = make(failure_threshold=1, recovery_timeout=30.0)
    open_at(breaker, 5.0)
    early = call(breaker).before_attempt(math.nextafter(35.0, 0.0), 3)
    assert isinstance(early, CircuitOpenError) and 0 < early.retry_in < 1e-12
    assert call(breaker).before_attempt(35.0, 3) is None  # exactly then: a probe
    assert state_of(breaker) == "half_open" and breaker.refused == 1


def test_a_first_attempt_after_the_timeout_half_opens_it_without_a_probe_slot() -> None:
    breaker = make(failure_threshold=1, recovery_timeout=10.0, half_open_probes=1)
    seen = events_of(breaker)
    open_at(breaker, 0.0)
    firsts = [call(breaker) for _ in range(5)]
    assert all(view.before_attempt(10.0, 1) is None for view in firsts)  # never a slot
    assert state_of(breaker) == "half_open"
    assert call(breaker).before_attempt(10.0, 2) is None  # the one probe slot is still free
    over = call(breaker).before_attempt(10.0, 2)
    assert isinstance(over, CircuitOpenError) and over.retry_in == 0.0
    assert call(breaker).before_attempt(10.0, 1) is None  # first attempts still go
    assert seen == [(0.0, "open"), (10.0, "half_open")]


# --- half-open hears exactly the attempts sent since it half-opened -------------------------


def test_half_open_closes_on_first_attempts_sent_since_it_half_opened() -> None:
    breaker = make(failure_threshold=1, recovery_timeout=10.0, half_open_probes=2)
    seen = events_of(breaker)
    open_at(breaker, 0.0)
    stale = call(breaker)
    assert stale.before_attempt(9.0, 1) is None  # sent while open
    fresh = [call(breaker) for _ in range(2)]
    for view in fresh:
        assert view.before_attempt(10.0, 1) is None  # sent half-open
    stale.after_outcome(11.0, None)  # its success is not evidence about the half-open period
    assert state_of(breaker) == "half_open"
    stale.after_outcome(11.0, DOWN)  # nor would its failure be
    assert state_of(breaker) == "half_open"
    fresh[0].after_outcome(12.0, None)
    assert state_of(breaker) == "half_open"  # one success of two
    fresh[1].after_outcome(13.0, None)
    assert state_of(breaker) == "closed"
    assert seen == [(0.0, "open"), (10.0, "half_open"), (13.0, "closed")]


def test_a_failure_sent_half_open_reopens_it_whether_first_attempt_or_probe() -> None:
    for attempt in (1, 2):
        breaker = make(failure_threshold=1, recovery_timeout=10.0, half_open_probes=3)
        open_at(breaker, 0.0)
        view = call(breaker)
        assert view.before_attempt(10.0, attempt) is None
        view.after_outcome(12.0, TimeoutError())
        assert state_of(breaker) == "open" and breaker.opened == 2
        assert isinstance(call(breaker).before_attempt(math.nextafter(22.0, 0.0), 2), Exception)
        assert call(breaker).before_attempt(22.0, 2) is None  # the new period began at 12


def test_an_attempt_from_an_earlier_half_open_period_is_not_heard_in_the_next() -> None:
    breaker = make(failure_threshold=1, recovery_timeout=10.0, half_open_probes=1)
    open_at(breaker, 0.0)
    slow, quick = call(breaker), call(breaker)
    assert slow.before_attempt(10.0, 1) is None and quick.before_attempt(10.0, 1) is None
    quick.after_outcome(11.0, DOWN)  # reopens at 11
    assert call(breaker).before_attempt(21.0, 1) is None  # half-open again (period 2)
    slow.after_outcome(22.0, None)  # sent in period 1: not heard in period 2
    assert state_of(breaker) == "half_open"


def test_closed_hears_every_outcome_first_attempts_and_retries_alike() -> None:
    breaker = make(failure_threshold=3)
    views = [call(breaker) for _ in range(3)]
    for attempt, view in zip((1, 2, 1), views, strict=True):
        assert view.before_attempt(0.0, attempt) is None
    for view in views:
        view.after_outcome(1.0, DOWN)
    assert state_of(breaker) == "open"  # three consecutive failures, whichever attempts


# --- refusals by a later guard ----------------------------------------------------------------


def test_a_probe_refused_later_gives_its_slot_back_and_a_first_attempt_gives_none() -> None:
    breaker = make(failure_threshold=1, recovery_timeout=5.0, half_open_probes=1)
    open_at(breaker, 0.0)
    refused_later = GuardChain([breaker, Refuse()])
    for _ in range(3):  # probes refused downstream: the one slot comes back each time
        assert isinstance(refused_later.before_attempt(5.0, 2), GuardRefusedError)
    assert state_of(breaker) == "half_open"
    probe = call(breaker)
    assert probe.before_attempt(5.0, 2) is None  # the slot is free for a real probe
    for _ in range(3):  # first attempts refused downstream took no slot and give none back
        assert isinstance(refused_later.before_attempt(5.0, 1), GuardRefusedError)
    assert isinstance(call(breaker).before_attempt(5.0, 2), CircuitOpenError)
    probe.after_outcome(6.0, None)
    assert state_of(breaker) == "closed"


def test_refusals_never_count_as_failures() -> None:
    breaker = make(failure_threshold=1)
    chain = GuardChain([breaker, Refuse()])
    for attempt in (1, 2, 3):
        chain.before_attempt(0.0, attempt)
    assert state_of(breaker) == "closed" and breaker.consecutive == 0


def test_used_directly_it_treats_what_it_hears_as_one_call() -> None:
    breaker = make(failure_threshold=1, recovery_timeout=10.0)
    assert breaker.before_attempt(0.0, 1) is None
    breaker.after_outcome(0.0, DOWN)
    assert breaker.before_attempt(1.0, 1) is None  # open: first attempts pass
    assert isinstance(breaker.before_attempt(1.0, 2), CircuitOpenError)
    assert breaker.before_attempt(10.0, 2) is None  # a probe
    breaker.after_outcome(10.5, None)
    assert state_of(breaker) == "closed"


# --- through the real decorators -----------------------------------------------------------


def _failing_op(mode: str, ran: list[int], sleeps: list[float]) -> Any:
    @retry_worker_operation(
        max_attempts=5,
        min_wait=0.0,
        max_wait=0.0,
        breaker={"enabled": True, "mode": mode, "failure_threshold": 2, "recovery_timeout": 60},
        guard_states=GuardStates(),
        sleep=sleeps.append,
        clock=lambda: 0.0,
    )
    def op() -> None:
        ran.append(1)
        raise ConnectionError("down")

    return op


def test_through_the_decorators_the_next_call_still_sends_its_first_attempt() -> None:
    ran: list[int] = []
    sleeps: list[float] = []
    op = _failing_op("retries", ran, sleeps)
    with pytest.raises(CircuitOpenError):
        op()  # attempts 1 and 2 fail and open it; the retry after them is refused
    assert len(ran) == 2 and sleeps == [0.0, 0.0]
    with pytest.raises(CircuitOpenError):
        op()  # open: the first attempt runs (and fails), its retry is refused
    assert len(ran) == 3 and sleeps == [0.0, 0.0, 0.0]
    calls_ran: list[int] = []
    calls_mode = _failing_op("calls", calls_ran, [])
    for _ in range(2):
        with pytest.raises(CircuitOpenError):
            calls_mode()
    assert len(calls_ran) == 2  # calls mode refuses the second call's first attempt too


def test_a_retries_breaker_lets_a_call_that_succeeds_first_time_through() -> None:
    states = GuardStates()
    answers = iter([DOWN, DOWN, None, None])

    @retry_worker_operation(
        max_attempts=1,
        breaker={"enabled": True, "mode": "retries", "failure_threshold": 2},
        guard_states=states,
        clock=lambda: 0.0,
    )
    def op() -> str:
        error = next(answers)
        if error is not None:
            raise error
        return "ok"

    for _ in range(2):
        with pytest.raises(ConnectionError):
            op()
    ((_, _, breaker),) = states.instances()
    assert isinstance(breaker, RetryBreaker) and breaker.state == "open"
    assert op() == "ok" and op() == "ok"  # open, and every call is served


# --- under contention ----------------------------------------------------------------------


def test_sixteen_threads_never_see_a_first_attempt_refused() -> None:
    probes = 2
    breaker = make(failure_threshold=3, recovery_timeout=0.002, half_open_probes=probes, window=10)
    now = ticking_clock()
    problems: list[str] = []

    def hammer(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(1500):
            view = call(breaker)
            attempt = 1
            while attempt <= 3:
                refusal = view.before_attempt(now(), attempt)
                if refusal is not None:
                    if attempt == 1:
                        problems.append("a first attempt was refused")
                    break
                failed = rng.random() < 0.6
                view.after_outcome(now(), DOWN if failed else None)
                if not failed:
                    break
                attempt += 1
            if not 0 <= breaker._probes_out <= probes:
                problems.append(f"{breaker._probes_out} probes out")

    in_threads(16, hammer)
    assert problems == []
    assert breaker.opened > 10 and breaker.refused > 0  # it went round, and gated retries


# --- model-based: random interleavings against an independent model -------------------------


class Model:
    """The documented ``retries`` semantics, from the docstring: consecutive failures open it
    (the rate is ``tests/test_breaker.py``'s), first attempts always pass, half-open hears the
    attempts sent since it half-opened (kept here as a set of attempt ids)."""

    def __init__(self, o: BreakerOptions) -> None:
        self.o = o
        self.state = "closed"
        self.since = 0.0
        self.streak = 0
        self.opens = 0
        self.this_period: set[int] = set()  # attempts sent since it half-opened
        self.probes: set[int] = set()  # probes out of those
        self.ok = 0

    def go(self, state: str, t: float) -> None:
        self.state, self.streak, self.ok = state, 0, 0
        self.this_period, self.probes = set(), set()
        if state == "open":
            self.since, self.opens = t, self.opens + 1

    def ask(self, t: float, ident: int, first: bool) -> bool:
        if self.state == "open" and t >= self.since + self.o.recovery_timeout:
            self.go("half_open", t)
        if self.state == "open":
            return first
        if self.state == "half_open":
            if not first:
                if len(self.probes) == self.o.half_open_probes:
                    return False
                self.probes.add(ident)
            self.this_period.add(ident)
        return True

    def refused_later(self, ident: int) -> None:
        self.probes.discard(ident)
        self.this_period.discard(ident)

    def hear(self, t: float, ident: int, failed: bool) -> None:
        if self.state == "closed":
            self.streak = self.streak + 1 if failed else 0
            if self.streak >= self.o.failure_threshold:
                self.go("open", t)
        elif self.state == "half_open" and ident in self.this_period:
            if failed:
                self.go("open", t)
            else:
                self.ok += 1
                if self.ok >= self.o.half_open_probes:
                    self.go("closed", t)


_steps = st.lists(
    st.one_of(
        st.tuples(st.just("advance"), st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.5])),
        st.tuples(st.just("send"), st.booleans()),
        st.tuples(st.just("send_refused_later"), st.booleans()),
        st.tuples(st.just("answer"), st.integers(0, 50), st.booleans()),
    ),
    max_size=150,
)


@settings(max_examples=300, deadline=None)
@given(
    threshold=st.integers(1, 4),
    timeout=st.sampled_from([0.0, 0.5, 1.0, 3.0]),
    probes=st.integers(1, 3),
    steps=_steps,
)
def test_random_interleavings_match_an_independent_model(
    threshold: int, timeout: float, probes: int, steps: list[tuple[Any, ...]]
) -> None:
    options = BreakerOptions(
        enabled=True,
        mode="retries",
        failure_threshold=threshold,
        recovery_timeout=timeout,
        half_open_probes=probes,
    )
    breaker, model = RetryBreaker("dep", options), Model(options)
    now = 0.0
    in_flight: list[tuple[int, RetryBreakerCall]] = []
    for ident, step in enumerate(steps):
        if step[0] == "advance":
            now += step[1]
        elif step[0] == "send":
            first = step[1]
            view = call(breaker)
            allowed = view.before_attempt(now, 1 if first else 2) is None
            assert allowed == model.ask(now, ident, first), (step, now)
            assert allowed or not first  # a first attempt is never refused
            if allowed:
                in_flight.append((ident, view))
        elif step[0] == "send_refused_later":
            first = step[1]
            refusal = GuardChain([breaker, Refuse()]).before_attempt(now, 1 if first else 2)
            if model.ask(now, ident, first):
                assert isinstance(refusal, GuardRefusedError)
                assert not isinstance(refusal, CircuitOpenError)
                model.refused_later(ident)
            else:
                assert isinstance(refusal, CircuitOpenError) and not first
        elif in_flight:
            sent, view = in_flight.pop(step[1] % len(in_flight))
            failed = step[2]
            view.after_outcome(now, DOWN if failed else None)
            model.hear(now, sent, failed)
        assert state_of(breaker) == model.state, (step, now)
        assert breaker.opened == model.opens
        assert breaker._probes_out == len(model.probes)
