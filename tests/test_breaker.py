"""The circuit breaker's state machine, edge by edge, on a virtual clock (plain floats as ``now``).

Every transition is tested exactly at its boundary and one step short of it; a model-based test
replays random sequences against a small independent model of the documented semantics; the
real decorators show that an open breaker fails fast, is never retried, and is shared by name;
sixteen threads show the state machine stays valid under contention.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import threading
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tenacity import retry_always

from retrysim.retry import (
    GuardChain,
    GuardStates,
    retry_api_call,
    retry_worker_operation,
)
from retrysim.retry.breaker import BreakerOptions, CircuitBreaker
from retrysim.retry.decorators import retry_with_circuit_breaker
from retrysim.retry.exceptions import CircuitOpenError, GuardRefusedError
from retrysim.retry.guards import PROCESS_GUARDS, GuardEvent
from tests.test_budget import in_threads

DOWN = ConnectionError("down")


def make(**knobs: Any) -> CircuitBreaker:
    return CircuitBreaker("dep", BreakerOptions(enabled=True, **knobs))


def send(breaker: CircuitBreaker, now: float, error: BaseException | None) -> None:
    """One attempt the breaker allows, answered at once."""
    assert breaker.before_attempt(now, 1) is None, f"refused at {now} in {breaker.state}"
    breaker.after_outcome(now, error)


def fail(breaker: CircuitBreaker, now: float = 0.0, times: int = 1) -> None:
    for _ in range(times):
        send(breaker, now, DOWN)


def succeed(breaker: CircuitBreaker, now: float = 0.0, times: int = 1) -> None:
    for _ in range(times):
        send(breaker, now, None)


def state_of(breaker: CircuitBreaker) -> str:
    """The breaker's state, read afresh (no narrowing from an earlier assert: it changes)."""
    return breaker.state


def events_of(breaker: CircuitBreaker) -> list[tuple[float, str]]:
    """Connect the breaker's notifier; return the list its state changes land in."""
    seen: list[tuple[float, str]] = []
    breaker.notify.listeners = (lambda e: seen.append((e.time, str(e.value))),)
    return seen


def ticking_clock() -> Callable[[], float]:
    """A clock threads share: each reading is 0.1 ms past the one before (taken under a lock),
    so every call sees a distinct, increasing time and the breaker goes round quickly."""
    lock = threading.Lock()
    clock = [0.0]

    def now() -> float:
        with lock:
            clock[0] += 0.0001
            return clock[0]

    return now


class Refuse:
    """A later guard that refuses every attempt (as a budget or a second breaker might)."""

    def before_attempt(self, now: float, attempt: int) -> BaseException | None:
        return GuardRefusedError("refused by a later guard")

    def after_outcome(self, now: float, error: BaseException | None) -> None:
        pass


# --- closed -> open ------------------------------------------------------------------------


@pytest.mark.parametrize("threshold", [1, 2, 5, 9])
def test_opens_at_exactly_the_consecutive_threshold(threshold: int) -> None:
    breaker = make(failure_threshold=threshold)
    fail(breaker, times=threshold - 1)
    assert state_of(breaker) == "closed"
    fail(breaker)
    assert state_of(breaker) == "open" and breaker.opened == 1


def test_a_success_resets_the_consecutive_count() -> None:
    breaker = make(failure_threshold=3)
    fail(breaker, times=2)
    succeed(breaker)
    fail(breaker, times=2)
    assert state_of(breaker) == "closed"
    fail(breaker)
    assert state_of(breaker) == "open"


@pytest.mark.parametrize("minimum", [1, 4, 10])
def test_the_failure_rate_counts_from_minimum_calls_on(minimum: int) -> None:
    """All failures, but the rate is not judged until ``minimum_calls`` outcomes are in."""
    breaker = make(failure_threshold=0, failure_rate=0.5, minimum_calls=minimum, window=20)
    fail(breaker, times=minimum - 1)
    assert state_of(breaker) == "closed"
    fail(breaker)
    assert state_of(breaker) == "open"


def test_the_rate_opens_at_the_rate_and_not_one_failure_below() -> None:
    # 10 outcomes, rate 0.3: 3 failures reach it, 2 do not.
    below = make(failure_threshold=0, failure_rate=0.3, minimum_calls=10, window=10)
    succeed(below, times=8)
    fail(below, times=2)
    assert state_of(below) == "closed"
    at = make(failure_threshold=0, failure_rate=0.3, minimum_calls=10, window=10)
    succeed(at, times=7)
    fail(at, times=2)
    assert state_of(at) == "closed"  # 9 outcomes: below minimum_calls
    fail(at)
    assert state_of(at) == "open"


@pytest.mark.parametrize(("rate", "outcomes"), [(0.07, 100), (0.14, 50), (0.29, 100), (0.58, 50)])
def test_a_rate_reached_exactly_opens_despite_binary_floats(rate: float, outcomes: int) -> None:
    """``0.07 * 100`` is ``7.000000000000001`` in binary floating point: 7 failures in 100 must
    still reach a 7% rate (they did not, before the rate was compared as a decimal)."""
    failures = round(Fraction(str(rate)) * outcomes)
    breaker = make(failure_threshold=0, failure_rate=rate, minimum_calls=outcomes, window=outcomes)
    succeed(breaker, times=outcomes - failures)
    fail(breaker, times=failures - 1)
    succeed(breaker)  # outcomes - 1 ... now the window is full with one failure too few
    assert state_of(breaker) == "closed"
    fail(breaker)  # the oldest success leaves the window, a failure enters: exactly the rate
    assert state_of(breaker) == "open"


@settings(max_examples=200, deadline=None)
@given(percent=st.integers(1, 99), outcomes=st.integers(1, 400))
def test_the_rate_compares_as_the_decimal_written(percent: int, outcomes: int) -> None:
    rate = percent / 100
    exact = Fraction(percent, 100) * outcomes
    need = math.ceil(exact)  # the fewest failures whose share reaches the rate
    for failures, opens in ((need - 1, False), (need, True)):
        if not 0 <= failures <= outcomes:
            continue
        breaker = make(
            failure_threshold=0, failure_rate=rate, minimum_calls=outcomes, window=outcomes
        )
        succeed(breaker, times=outcomes - failures)
        if failures:
            fail(breaker, times=failures)
        assert (state_of(breaker) == "open") is opens, (rate, outcomes, failures)


def test_a_count_window_smaller_than_minimum_calls_counts_once_full() -> None:
    """window=5 with the default minimum_calls=10 could never hold 10 outcomes: as in
    resilience4j, a full window is enough (it used to never open on its rate)."""
    breaker = make(failure_threshold=0, failure_rate=0.6, window=5)
    assert breaker.options.minimum_calls == 10
    succeed(breaker, times=2)
    fail(breaker, times=2)
    assert state_of(breaker) == "closed"  # 4 outcomes: not full yet
    fail(breaker)
    assert state_of(breaker) == "open"  # 3 of 5
    timed = make(failure_threshold=0, failure_rate=0.6, window=5, window_seconds=60)
    fail(timed, times=9)
    assert state_of(timed) == "closed"  # a time window has no size: minimum_calls it is
    fail(timed)
    assert state_of(timed) == "open"


def test_the_count_window_forgets_its_oldest_outcome() -> None:
    """Window 4, rate 0.5: F S S S S F F has 3 failures in 7 (below 0.5) but 2 in the last 4."""
    breaker = make(failure_threshold=0, failure_rate=0.5, minimum_calls=4, window=4)
    fail(breaker)
    succeed(breaker, times=4)
    fail(breaker)
    assert state_of(breaker) == "closed"  # last 4: S S S F
    fail(breaker)
    assert state_of(breaker) == "open"  # last 4: S S F F


def test_a_time_window_forgets_an_outcome_exactly_window_seconds_old() -> None:
    def breaker_after(second: float) -> CircuitBreaker:
        breaker = make(failure_threshold=0, failure_rate=0.5, minimum_calls=2, window_seconds=10)
        fail(breaker, 0.0)
        succeed(breaker, second)
        return breaker

    # just inside the window: F and S count, 1/2 reaches the rate
    assert breaker_after(math.nextafter(10.0, 0.0)).state == "open"
    # exactly at the horizon the failure is gone: one outcome, below minimum_calls
    gone = breaker_after(10.0)
    assert state_of(gone) == "closed"
    fail(gone, 10.0)  # S@10 F@10: 1/2
    assert state_of(gone) == "open"


# --- open -> half-open -> closed / open -----------------------------------------------------


def test_open_refuses_until_exactly_recovery_timeout() -> None:
    breaker = make(failure_threshold=1, recovery_timeout=30.0)
    fail(breaker, 5.0)
    early = breaker.before_attempt(math.nextafter(35.0, 0.0), 1)
    assert isinstance(early, CircuitOpenError)
    assert early.retry_in == pytest.approx(0.0, abs=1e-12) and early.retry_in > 0
    assert isinstance(breaker.before_attempt(20.0, 1), CircuitOpenError)
    assert breaker.refused == 2 and state_of(breaker) == "open"
    assert breaker.before_attempt(35.0, 1) is None  # exactly at the timeout: a probe
    assert state_of(breaker) == "half_open"


def test_the_refusal_says_how_long_until_a_probe() -> None:
    breaker = make(failure_threshold=1, recovery_timeout=60.0)
    fail(breaker, 100.0)
    refusal = breaker.before_attempt(115.0, 2)
    assert isinstance(refusal, CircuitOpenError)
    assert refusal.retry_in == 45.0 and refusal.breaker == "dep"
    assert "dep" in str(refusal) and "45.0s" in str(refusal)


@pytest.mark.parametrize("probes", [1, 2, 3])
def test_half_open_closes_after_that_many_successful_probes(probes: int) -> None:
    breaker = make(failure_threshold=1, recovery_timeout=10.0, half_open_probes=probes)
    seen = events_of(breaker)
    fail(breaker, 0.0)
    for _ in range(probes):  # every probe goes out before any answer: concurrent probes
        assert breaker.before_attempt(10.0, 1) is None
    over = breaker.before_attempt(10.0, 1)  # the K+1th, while K are in flight
    assert isinstance(over, CircuitOpenError) and over.retry_in == 0.0
    for answered in range(probes):
        assert state_of(breaker) == "half_open", answered
        breaker.after_outcome(11.0, None)
    assert state_of(breaker) == "closed"
    assert seen == [(0.0, "open"), (10.0, "half_open"), (11.0, "closed")]
    # closed again with a fresh count
    fail(breaker, 12.0)
    assert state_of(breaker) == "open" and breaker.opened == 2


def test_a_failed_probe_reopens_and_the_new_open_period_starts_then() -> None:
    breaker = make(failure_threshold=1, recovery_timeout=30.0, half_open_probes=2)
    seen = events_of(breaker)
    fail(breaker, 0.0)
    assert breaker.before_attempt(30.0, 1) is None
    assert breaker.before_attempt(31.0, 1) is None
    breaker.after_outcome(32.0, None)  # one probe succeeded
    breaker.after_outcome(37.0, TimeoutError())  # the other failed: open again, from t=37
    assert state_of(breaker) == "open" and breaker.opened == 2
    assert isinstance(breaker.before_attempt(math.nextafter(67.0, 0.0), 1), CircuitOpenError)
    assert breaker.before_attempt(67.0, 1) is None
    assert seen == [(0.0, "open"), (30.0, "half_open"), (37.0, "open"), (67.0, "half_open")]


def test_outcomes_that_arrive_while_open_are_ignored() -> None:
    breaker = make(failure_threshold=2, recovery_timeout=10.0)
    allowed = [breaker.before_attempt(0.0, 1) for _ in range(4)]  # four in flight
    assert allowed == [None] * 4
    breaker.after_outcome(1.0, DOWN)
    breaker.after_outcome(1.0, DOWN)
    assert state_of(breaker) == "open"
    breaker.after_outcome(2.0, None)  # a success sent before it opened does not close it
    breaker.after_outcome(3.0, DOWN)  # nor does a late failure extend the open period
    assert state_of(breaker) == "open" and breaker.opened == 1
    assert breaker.before_attempt(11.0, 1) is None  # 10 s after t=1, not after t=3


def test_half_open_hears_only_its_probes() -> None:
    """An answer that comes back half-open while no probe is out was sent before the breaker
    opened: it is ignored, as it would have been while open, and never closes the breaker."""
    breaker = make(failure_threshold=1, recovery_timeout=10.0)
    assert breaker.before_attempt(0.0, 1) is None  # a slow attempt, still in flight
    fail(breaker, 0.5)
    # the first attempt after the timeout is a probe a later guard refuses: its slot comes back
    chain = GuardChain([breaker, Refuse()])
    assert isinstance(chain.before_attempt(10.5, 1), GuardRefusedError)
    assert state_of(breaker) == "half_open"
    breaker.after_outcome(20.0, None)  # the slow attempt answers at last: not a probe
    assert state_of(breaker) == "half_open"
    succeed(breaker, 21.0)  # a real probe closes it
    assert state_of(breaker) == "closed"


# --- refusals are not failures of the dependency --------------------------------------------


def test_a_probe_refused_by_a_later_guard_is_given_back() -> None:
    breaker = make(failure_threshold=1, recovery_timeout=5.0, half_open_probes=1)
    fail(breaker, 0.0)
    chain = GuardChain([breaker, Refuse()])
    for _ in range(3):  # refused downstream three times: the one probe slot comes back each time
        assert isinstance(chain.before_attempt(5.0, 1), GuardRefusedError)
    assert state_of(breaker) == "half_open"
    assert breaker.before_attempt(5.0, 1) is None  # still free for a real probe
    assert isinstance(breaker.before_attempt(5.0, 1), CircuitOpenError)


def test_refusals_never_count_as_failures() -> None:
    breaker = make(failure_threshold=1)
    chain = GuardChain([breaker, Refuse()])
    for _ in range(5):
        chain.before_attempt(0.0, 1)
    breaker.after_outcome(0.0, CircuitOpenError("other"))
    assert state_of(breaker) == "closed" and breaker.consecutive == 0


# --- through the real decorators -----------------------------------------------------------


def test_an_open_breaker_is_never_retried_even_by_a_retry_everything_predicate() -> None:
    states = GuardStates()
    ran: list[int] = []
    sleeps: list[float] = []

    @retry_worker_operation(
        max_attempts=10,
        min_wait=0.0,
        max_wait=0.0,
        retry=retry_always,
        breaker={"enabled": True, "failure_threshold": 2, "recovery_timeout": 60.0},
        guard_states=states,
        sleep=sleeps.append,
        clock=lambda: 0.0,
    )
    def op() -> None:
        ran.append(1)
        raise ConnectionError("down")

    with pytest.raises(CircuitOpenError):
        op()
    # two attempts ran and failed (two sleeps after them); the third was refused and the call
    # ended there, with seven attempts left and a predicate that retries everything
    assert len(ran) == 2 and sleeps == [0.0, 0.0]
    with pytest.raises(CircuitOpenError):
        op()  # the next call fails fast: no attempt, no sleep
    assert len(ran) == 2 and len(sleeps) == 2


def test_a_named_breaker_is_shared_by_every_function_that_names_it() -> None:
    states = GuardStates()
    knobs = {"enabled": True, "name": "llm-api", "failure_threshold": 3}
    common: dict[str, Any] = {"max_attempts": 1, "guard_states": states, "clock": lambda: 0.0}
    ran: list[str] = []

    @retry_api_call(breaker=knobs, **common)
    def summarise() -> None:
        ran.append("summarise")
        raise TimeoutError("slow")

    @retry_with_circuit_breaker(name="llm-api", failure_threshold=3)
    @retry_worker_operation(**common)
    async def embed() -> str:
        ran.append("embed")
        return "vector"

    @retry_api_call(breaker={**knobs, "name": "search"}, **common)
    def search() -> str:
        ran.append("search")
        return "hits"

    assert asyncio.run(embed()) == "vector"
    for _ in range(3):
        with pytest.raises(TimeoutError):
            summarise()
    with pytest.raises(CircuitOpenError):
        asyncio.run(embed())  # another function, another operation, a task: same dependency
    assert search() == "hits"  # another dependency, another breaker
    assert ran == ["embed", "summarise", "summarise", "summarise", "search"]
    names = sorted(name for name, _, _ in states.instances())
    assert names == ["breaker:llm-api", "breaker:search"]


@pytest.fixture
def process_guards() -> Iterator[GuardStates]:
    PROCESS_GUARDS.clear()
    yield PROCESS_GUARDS
    PROCESS_GUARDS.clear()


def test_by_default_a_breaker_is_shared_by_the_whole_process(
    process_guards: GuardStates,
) -> None:
    """Calls from many threads share one breaker (the production store), and its refusals
    are not failures: it opens once, on the dependency's own failures."""
    ran: list[int] = []
    lock = threading.Lock()

    @retry_api_call(
        max_attempts=1,
        breaker={"enabled": True, "name": "db", "failure_threshold": 5, "recovery_timeout": 1e6},
    )
    def query() -> None:
        with lock:
            ran.append(1)
        raise ConnectionError("db down")

    outcomes: list[str] = []

    def worker() -> None:
        for _ in range(10):
            try:
                query()
            except Exception as error:
                with lock:
                    outcomes.append(type(error).__name__)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (_, owner, breaker), *others = process_guards.instances()
    assert not others and owner is None and isinstance(breaker, CircuitBreaker)
    # the first five failures open it (more may be in flight by then: each one counts once)
    assert 5 <= len(ran) <= 5 + 7 and breaker.opened == 1
    assert outcomes.count("ConnectionError") == len(ran)
    assert outcomes.count("CircuitOpenError") == 80 - len(ran)


# --- under contention ----------------------------------------------------------------------

ALLOWED_MOVES = {
    ("closed", "open"),
    ("open", "half_open"),
    ("half_open", "open"),
    ("half_open", "closed"),
}


def test_sixteen_threads_never_break_the_state_machine() -> None:
    probes = 3
    breaker = make(
        failure_threshold=4,
        failure_rate=0.5,
        minimum_calls=6,
        window=12,
        recovery_timeout=0.002,
        half_open_probes=probes,
    )
    moves: list[GuardEvent] = []
    breaker.notify.listeners = (moves.append,)
    now = ticking_clock()
    problems: list[str] = []

    def hammer(seed: int) -> None:
        rng = random.Random(seed)
        in_flight = 0
        for _ in range(3000):
            if in_flight and rng.random() < 0.5:
                in_flight -= 1
                breaker.after_outcome(now(), DOWN if rng.random() < 0.6 else None)
            elif breaker.before_attempt(now(), 1) is None:
                in_flight += 1
            out = breaker._probes_out
            if not 0 <= out <= probes or breaker.state not in {"closed", "open", "half_open"}:
                problems.append(f"{breaker.state} with {out} probes out")
        while in_flight:
            in_flight -= 1
            breaker.after_outcome(now(), None)

    in_threads(16, hammer)
    assert problems == []
    states = ["closed", *(str(m.value) for m in moves)]
    bad = [pair for pair in itertools.pairwise(states) if pair not in ALLOWED_MOVES]
    assert bad == []
    assert breaker.opened == states.count("open") > 10  # it really went round many times
    assert states.count("closed") > 1


# --- model-based: random sequences against an independent model -----------------------------


class Model:
    """The documented semantics, written from the docstring without looking at the code path:
    the whole history is kept and every judgement recomputed from scratch."""

    def __init__(self, o: BreakerOptions) -> None:
        self.o = o
        self.state = "closed"
        self.since = 0.0
        self.history: list[tuple[float, bool]] = []
        self.sent = self.ok = 0
        self.opens = 0

    def go(self, state: str, t: float) -> None:
        self.state, self.history, self.sent, self.ok = state, [], 0, 0
        if state == "open":
            self.since, self.opens = t, self.opens + 1

    def ask(self, t: float) -> bool:
        if self.state == "open":
            if t < self.since + self.o.recovery_timeout:
                return False
            self.go("half_open", t)
        if self.state == "half_open":
            if self.sent == self.o.half_open_probes:
                return False
            self.sent += 1
        return True

    def give_back(self) -> None:
        if self.state == "half_open" and self.sent:
            self.sent -= 1

    def hear(self, t: float, failed: bool) -> None:
        if self.state == "open":
            return
        if self.state == "half_open":
            if self.ok == self.sent:
                return
            if failed:
                self.go("open", t)
            else:
                self.ok += 1
                if self.ok == self.o.half_open_probes:
                    self.go("closed", t)
            return
        self.history.append((t, failed))
        streak = 0
        for _, f in reversed(self.history):
            if not f:
                break
            streak += 1
        if self.o.failure_threshold and streak >= self.o.failure_threshold:
            self.go("open", t)
            return
        if not self.o.failure_rate:
            return
        if self.o.window_seconds:
            recent = [f for s, f in self.history if s > t - self.o.window_seconds]
        else:
            recent = [f for _, f in self.history[-self.o.window :]]
        # a count window smaller than minimum_calls needs only a full window
        need = (
            self.o.minimum_calls
            if self.o.window_seconds
            else min(self.o.minimum_calls, self.o.window)
        )
        if len(recent) >= need and Fraction(sum(recent), len(recent)) >= Fraction(
            str(self.o.failure_rate)
        ):
            self.go("open", t)


_options = st.builds(
    lambda threshold, percent, window, seconds, minimum, timeout, probes: BreakerOptions(
        enabled=True,
        failure_threshold=threshold,
        failure_rate=percent / 100 if percent or threshold else 0.5,
        window=window,
        window_seconds=seconds,
        minimum_calls=minimum,
        recovery_timeout=timeout,
        half_open_probes=probes,
    ),
    st.integers(0, 4),
    st.integers(0, 100),
    st.integers(1, 8),
    st.sampled_from([0.0, 0.0, 1.0, 2.5]),
    st.integers(1, 8),
    st.sampled_from([0.0, 0.5, 1.0, 3.0]),
    st.integers(1, 3),
)
_steps = st.lists(
    st.one_of(
        st.tuples(st.just("advance"), st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.5, 3.0])),
        st.tuples(st.just("ask"), st.just(0)),
        st.tuples(st.just("ask_refused_later"), st.just(0)),
        st.tuples(st.just("answer"), st.integers(0, 50), st.booleans()),
    ),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(options=_options, steps=_steps)
def test_random_sequences_match_an_independent_model(
    options: BreakerOptions, steps: list[tuple[Any, ...]]
) -> None:
    breaker, model = CircuitBreaker("dep", options), Model(options)
    chain = GuardChain([breaker, Refuse()])
    now, in_flight = 0.0, 0
    for step in steps:
        if step[0] == "advance":
            now += step[1]
        elif step[0] == "ask":
            allowed = breaker.before_attempt(now, 1) is None
            assert allowed == model.ask(now), (step, now)
            in_flight += allowed
        elif step[0] == "ask_refused_later":
            refusal = chain.before_attempt(now, 1)
            if model.ask(now):
                assert isinstance(refusal, GuardRefusedError)
                model.give_back()
            else:
                assert isinstance(refusal, CircuitOpenError)
        elif in_flight:
            in_flight -= 1
            failed = step[2]
            breaker.after_outcome(now, DOWN if failed else None)
            model.hear(now, failed)
        assert state_of(breaker) == model.state, (step, now)
        assert breaker.opened == model.opens
