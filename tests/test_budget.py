"""Retry budgets: the arithmetic against exact models, and what an empty budget does to a call.

The token bucket (gRPC retry throttling) is checked against a model in exact fractions; the
ratio budget (Finagle) against a brute-force model that recounts its whole history at every
question. Through the real decorators, an empty budget ends the call with its original error
and no sleep, and ``max_total_time`` never sleeps past its budget on a virtual clock.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable
from fractions import Fraction
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from retrysim.model.scenario import parse_scenario
from retrysim.retry import GuardStates, retry_storage_operation, retry_worker_operation
from retrysim.retry.budget import BudgetOptions, RatioBudget, TokenBudget, budget_guards
from retrysim.retry.decorators import retry_with_budget
from retrysim.retry.exceptions import CircuitOpenError
from retrysim.retry.guards import GuardEvent
from retrysim.sim import records as rec
from retrysim.sim.clock import tenacity_virtual_time
from retrysim.sim.engine import simulate

# --- the token bucket (gRPC retry throttling) -----------------------------------------------


def test_tokens_start_full_and_retries_stop_at_half() -> None:
    budget = TokenBudget("b", max_tokens=4, token_ratio=0.5)
    assert budget.tokens == 4.0 and budget.allow_retry(0.0)
    budget.after_outcome(0.0, ConnectionError())  # 3 > 2: still allowed
    assert budget.allow_retry(0.0)
    budget.after_outcome(0.0, ConnectionError())  # 2 is not more than half of 4
    assert not budget.allow_retry(0.0)
    budget.after_outcome(0.0, None)  # 2.5
    assert budget.allow_retry(0.0)
    assert budget.stats() == {"refused": 1, "tokens": 2.5}


def test_the_refill_is_exact_where_floats_drift() -> None:
    """Fifty successes of 0.1 bring an empty bucket of 10 to exactly 5.0 (adding 0.1 fifty
    times in floats gives 5.000000000000002, which would wrongly allow a retry)."""
    budget = TokenBudget("b", max_tokens=10, token_ratio=0.1)
    for _ in range(12):
        budget.after_outcome(0.0, TimeoutError())
    assert budget.milli == 0  # never below zero
    for _ in range(50):
        budget.after_outcome(0.0, None)
    assert budget.milli == 5000 and not budget.allow_retry(0.0)  # 5 is not more than 5
    budget.after_outcome(0.0, None)
    assert budget.milli == 5100 and budget.allow_retry(0.0)
    for _ in range(100):
        budget.after_outcome(0.0, None)
    assert budget.milli == 10_000  # never above the size


def test_refused_attempts_cost_no_tokens() -> None:
    budget = TokenBudget("b", max_tokens=3, token_ratio=1)
    for _ in range(10):
        budget.after_outcome(0.0, CircuitOpenError("dep"))
    assert budget.tokens == 3.0


@settings(max_examples=300, deadline=None)
@given(
    size=st.integers(1, 20_000),
    ratio=st.integers(1, 3_000),
    steps=st.lists(st.sampled_from(["ok", "fail", "refused", "ask"]), max_size=300),
)
def test_tokens_match_an_exact_model(size: int, ratio: int, steps: list[str]) -> None:
    """Knobs in thousandths (what the options allow); the model counts in exact fractions."""
    options = BudgetOptions(enabled=True, max_tokens=size / 1000, token_ratio=ratio / 1000)
    budget = TokenBudget("b", options.max_tokens, options.token_ratio)
    full, gain = Fraction(size, 1000), Fraction(ratio, 1000)
    tokens = full
    for step in steps:
        if step == "ok":
            budget.after_outcome(1.0, None)
            tokens = min(full, tokens + gain)
        elif step == "fail":
            budget.after_outcome(1.0, ConnectionResetError())
            tokens = max(Fraction(0), tokens - 1)
        elif step == "refused":
            budget.after_outcome(1.0, CircuitOpenError("dep"))
        else:
            assert budget.allow_retry(1.0) is (tokens > full / 2)
        assert 0 <= budget.milli <= budget.max_milli
        assert Fraction(budget.milli, 1000) == tokens


@pytest.mark.parametrize("knob", ["max_tokens", "token_ratio"])
@pytest.mark.parametrize("value", [0.0001, 0.1235, 2.0005])
def test_token_knobs_are_whole_thousandths(knob: str, value: float) -> None:
    with pytest.raises(ValidationError, match="thousandths"):
        BudgetOptions(**{knob: value})


@pytest.mark.parametrize("value", [0.001, 0.1, 0.125, 2.5, 999.999])
def test_thousandths_are_accepted(value: float) -> None:
    options = BudgetOptions(max_tokens=value, token_ratio=value)
    budget = TokenBudget("b", options.max_tokens, options.token_ratio)
    assert Fraction(budget.max_milli, 1000) == Fraction(str(value))


# --- the ratio budget (Finagle) -------------------------------------------------------------


def test_the_ratio_budget_allows_the_exact_share() -> None:
    """0.29 of 100 first attempts is 29 retries (0.29 * 100 is 28.999999999999996 in floats)."""
    budget = RatioBudget("b", percent=0.29, min_retries_per_second=0.0, window=10.0)
    for _ in range(100):
        budget.before_attempt(1.0, 1)
    budget.before_attempt(1.0, 2)  # a retry is not a first attempt: it earns nothing
    allowed = sum(budget.allow_retry(2.0) for _ in range(40))
    assert allowed == 29 and budget.refused == 11


def test_the_reserve_allows_retries_without_traffic_and_the_window_forgets() -> None:
    budget = RatioBudget("b", percent=0.5, min_retries_per_second=0.5, window=4.0)  # reserve 2
    assert [budget.allow_retry(0.0) for _ in range(3)] == [True, True, False]
    budget.before_attempt(1.0, 1)
    budget.before_attempt(1.0, 1)  # +1 retry
    assert budget.allow_retry(2.0) and not budget.allow_retry(2.0)
    # at t=4 the retries of t=0 are exactly window seconds old: forgotten
    assert budget.balance(4.0) == 2 + 0.5 * 2 - 1
    # at t=5 the first attempts of t=1 are gone too
    assert budget.balance(5.0) == 2 - 1


def test_the_initial_allowance_covers_the_first_window_and_is_forgotten_like_a_deposit() -> None:
    """Deposited at the first attempt (t=1), forgotten exactly ``window`` seconds later; the
    retries it paid for count against the balance for ``window`` seconds each."""
    budget = RatioBudget(
        "b", percent=0.5, min_retries_per_second=0.0, window=4.0, initial_allowance=3
    )
    assert budget.initial_allowance == 3
    budget.before_attempt(1.0, 1)  # 0.5 earned, 3 deposited
    assert [budget.allow_retry(1.5) for _ in range(4)] == [True, True, True, False]
    assert budget.balance(math.nextafter(5.0, 0.0)) == 3.5 - 3
    assert budget.balance(5.0) == -3  # the deposit and the first attempt are gone, not the retries
    assert budget.balance(5.5) == 0  # and now they are too
    assert not budget.allow_retry(6.0)  # no second allowance: the window has history now


def test_without_an_attempt_the_allowance_starts_at_the_first_question() -> None:
    budget = RatioBudget(
        "b", percent=0.2, min_retries_per_second=0.0, window=2.0, initial_allowance=1
    )
    assert budget.allow_retry(10.0) and not budget.allow_retry(10.0)
    assert budget.balance(math.nextafter(12.0, 0.0)) == 0 and budget.balance(12.0) == 0


def test_the_allowance_is_a_ratio_knob_and_reaches_the_bucket() -> None:
    options = BudgetOptions(enabled=True, kind="ratio", initial_allowance=7)
    (placed,) = budget_guards("api", options)
    budget = placed.spec.make()
    assert isinstance(budget, RatioBudget) and budget.initial_allowance == 7
    with pytest.raises(ValidationError, match="initial_allowance"):
        BudgetOptions(initial_allowance=-1)


_events = st.lists(
    st.tuples(
        st.sampled_from([0.0, 0.0, 0.25, 0.5, 1.0, 2.0]), st.sampled_from(["first", "retry", "ask"])
    ),
    max_size=200,
)


@settings(max_examples=300, deadline=None)
@given(
    percent=st.integers(0, 300),
    per_second=st.integers(0, 40),
    window=st.sampled_from([0.5, 1.0, 2.0, 2.5, 10.0]),
    allowance=st.sampled_from([0, 0, 1, 3]),
    events=_events,
)
def test_the_ratio_budget_matches_a_brute_force_model(
    percent: int, per_second: int, window: float, allowance: int, events: list[tuple[float, str]]
) -> None:
    share, floor = Fraction(percent, 100), Fraction(per_second, 10)
    budget = RatioBudget("b", percent / 100, per_second / 10, window, allowance)
    firsts: list[float] = []
    retries: list[float] = []
    born: float | None = None  # the first attempt, or the first question if none came before
    now = 0.0
    for step, kind in events:
        now += step
        if kind == "first":
            budget.before_attempt(now, 1)
            firsts.append(now)
            born = now if born is None else born
            continue
        if kind == "retry":
            budget.before_attempt(now, 2)  # a retry's own attempt: no deposit
            continue
        born = now if born is None else born
        live_firsts = sum(1 for t in firsts if t > now - window)
        live_retries = sum(1 for t in retries if t > now - window)
        balance = floor * Fraction(str(window)) + share * live_firsts - live_retries
        balance += allowance if born > now - window else 0
        allowed = budget.allow_retry(now)
        assert allowed is (balance >= 1), (now, balance)
        if allowed:
            retries.append(now)


# --- through the real decorators -----------------------------------------------------------


class FailingWorker(NamedTuple):
    """A decorated worker operation that always fails, and what it left behind."""

    op: Callable[[], None]
    raised: list[Exception]  # each attempt's error, in order
    sleeps: list[float]
    events: list[GuardEvent]


def failing_worker(budget: dict[str, Any], error: Callable[[int], Exception]) -> FailingWorker:
    """A worker operation under ``budget`` through the real decorator (10 attempts 0.5 s apart,
    no jitter, a clock stopped at 7 s) whose attempt number n raises ``error(n)``."""
    events: list[GuardEvent] = []
    raised: list[Exception] = []
    sleeps: list[float] = []

    @retry_worker_operation(
        max_attempts=10,
        min_wait=0.5,
        max_wait=0.5,
        jitter=0.0,
        budget=budget,
        guard_states=GuardStates([events.append]),
        sleep=sleeps.append,
        clock=lambda: 7.0,
    )
    def op() -> None:
        raised.append(error(len(raised) + 1))
        raise raised[-1]

    return FailingWorker(op, raised, sleeps, events)


def test_an_empty_budget_ends_the_call_with_its_original_error_and_no_sleep() -> None:
    op, raised, sleeps, events = failing_worker(
        {"enabled": True, "max_tokens": 4, "token_ratio": 0.5},
        lambda n: ConnectionError(f"attempt {n}"),
    )

    with pytest.raises(ConnectionError) as info:
        op()
    # attempt 1 fails: 3 tokens left, more than half of 4, so it sleeps and retries; attempt 2
    # fails: 2 left, not more than half, so the call ends at once with attempt 2's own error
    assert info.value is raised[1] and len(raised) == 2
    assert sleeps == [0.5]
    assert events == [GuardEvent(7.0, "budget_refused", "budget:worker", None, 2.0)]
    with pytest.raises(ConnectionError) as again:
        op()  # the next call gets its first attempt, and no retry
    assert again.value is raised[2] and sleeps == [0.5]


def test_retry_with_budget_gives_a_function_a_shared_bucket() -> None:
    states = GuardStates()
    calls: list[int] = []

    @retry_with_budget(max_tokens=2, token_ratio=1)
    @retry_storage_operation(
        max_attempts=5, min_wait=0, max_wait=0, guard_states=states, sleep=lambda s: None
    )
    def op() -> None:
        calls.append(1)
        raise TimeoutError("slow")

    with pytest.raises(TimeoutError):
        op()  # 2 tokens: the first failure leaves 1, not more than half: no retry
    assert len(calls) == 1
    (name, _, bucket), *_ = states.instances()
    assert name == "budget:storage" and isinstance(bucket, TokenBudget)


@settings(max_examples=120, deadline=None)
@given(
    total=st.floats(0.5, 30),
    latency=st.floats(0, 3),
    min_wait=st.floats(0.05, 2),
    spread=st.floats(1, 20),
    profile=st.sampled_from(["exponential", "documented", "full_jitter", "decorrelated"]),
)
def test_max_total_time_never_sleeps_past_the_budget(
    total: float, latency: float, min_wait: float, spread: float, profile: str
) -> None:
    start = 1000.0
    clock = [start]
    sleeps: list[tuple[float, float]] = []

    def sleep(seconds: float) -> None:
        sleeps.append((clock[0], seconds))
        clock[0] += seconds

    @retry_worker_operation(
        max_attempts=10_000,
        min_wait=min_wait,
        max_wait=min_wait * spread,
        profile=profile,
        budget={"max_total_time": total},
        sleep=sleep,
    )
    def op() -> None:
        clock[0] += latency
        raise ConnectionError("down")

    with tenacity_virtual_time(lambda: clock[0]), pytest.raises(ConnectionError):
        op()
    assert len(sleeps) < 9_999, "it stopped on the attempt limit: the test proved nothing"
    for at, seconds in sleeps:
        assert at + seconds - start < total


def test_max_total_time_holds_in_the_simulator_too() -> None:
    scenario = parse_scenario(
        {
            "seed": 9,
            "policy": {"max_attempts": 50, "min_wait": 0.2, "max_wait": 3.0},
            "clients": {"count": 200, "timeout": 0.5},
            "service": {"kind": "ideal", "latency": {"dist": "exponential", "mean": 0.2}},
            "faults": [{"kind": "flaky", "probability": 0.7}],
        }
    ).with_overrides({"policy.budget.max_total_time": 4.0})
    result = simulate(scenario)
    a, calls = result.attempts, result.calls
    waited = ~np.isnan(a["wait"])
    starts = calls["start"][a["call"][waited]]
    assert np.all(a["end"][waited] + a["wait"][waited] - starts < 4.0)
    gave_up = calls[calls["outcome"] == rec.GAVE_UP]
    assert len(gave_up) > 10 and np.all(gave_up["attempts"] < 50)  # the budget stopped them


def test_budget_knobs_name_the_bad_one() -> None:
    with pytest.raises(ValueError, match=r"budget\.kind"):
        retry_worker_operation(budget={"kind": "tickets"})
    bad: dict[str, Any] = {"enabled": True, "percent": 101}
    with pytest.raises(ValueError, match=r"budget\.percent"):
        retry_worker_operation(budget=bad)


# --- under contention ----------------------------------------------------------------------


def in_threads(count: int, work: Any) -> None:
    """Run ``work(i)`` for i in 0 .. count - 1, each on a thread of its own, and wait for all."""
    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _answer(budget: TokenBudget, error: BaseException | None, times: int) -> None:
    for _ in range(times):
        budget.after_outcome(0.0, error)


def test_sixteen_threads_keep_the_bucket_within_bounds_and_exact() -> None:
    budget = TokenBudget("b", max_tokens=50, token_ratio=0.125)
    problems: list[int] = []

    def work(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(2000):
            budget.after_outcome(0.0, None if rng.random() < 0.5 else TimeoutError())
            budget.allow_retry(0.0)
            if not 0 <= budget.milli <= budget.max_milli:
                problems.append(budget.milli)

    in_threads(16, work)
    assert problems == []
    # whatever the interleaving, 16 x 100 failures then empty it, and successes refill exactly
    in_threads(16, lambda i: _answer(budget, TimeoutError(), 100))
    assert budget.milli == 0
    in_threads(16, lambda i: _answer(budget, None, 10))
    assert budget.milli == 16 * 10 * 125


def test_sixteen_threads_get_exactly_the_retries_the_ratio_budget_allows() -> None:
    budget = RatioBudget("b", percent=0.3, min_retries_per_second=0.5, window=10.0)
    for _ in range(1000):
        budget.before_attempt(1.0, 1)
    allowed: list[bool] = []
    in_threads(16, lambda i: allowed.extend(budget.allow_retry(2.0) for _ in range(50)))
    assert sum(allowed) == 5 + 300 and len(allowed) == 800  # 0.5 x 10 + 0.3 x 1000
