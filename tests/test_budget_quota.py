"""The ``quota`` retry budget (the AWS SDKs' standard retry mode), token by token.

The numbers are botocore's: a bucket of 500, a retry costs 5, a retry after a timeout 10, a
call that succeeds puts back what its last retry took, or 1 if it needed no retry. The edges are
checked exactly (the 100th retry empties the bucket, the 101st is refused; 5 left allow a
retry but not a timeout's), refunds are each call's own (two calls interleaved refund what each
took), a hypothesis model of interleaved calls keeps the bucket within [0, capacity] and equal
to an independent ledger, and the real decorators end a call the quota refuses at once with its
own error.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from retrysim.retry import GuardChain, GuardStates, retry_worker_operation
from retrysim.retry.budget import BudgetOptions, QuotaCall, RetryQuota, budget_guards
from retrysim.retry.exceptions import CircuitOpenError, RateLimitedError, ServerError
from retrysim.retry.guards import GuardEvent
from retrysim.sim.catalogue import stand_in
from tests.test_budget import failing_worker, in_threads

DOWN = ConnectionResetError("reset")
SLOW = TimeoutError("timed out")


def call(quota: RetryQuota) -> QuotaCall:
    """A call's view, as its guard chain makes it."""
    (view,) = GuardChain([quota]).guards
    assert isinstance(view, QuotaCall)
    return view


def retry_after(view: QuotaCall, error: BaseException, now: float = 0.0) -> bool:
    """The call's attempt failed with ``error``; may it retry?"""
    view.after_outcome(now, error)
    return view.allow_retry(now)


# --- the AWS defaults -----------------------------------------------------------------------


def test_the_defaults_are_the_aws_standard_modes() -> None:
    options = BudgetOptions(enabled=True, kind="quota")
    (placed,) = budget_guards("api", options)
    quota = placed.spec.make()
    assert isinstance(quota, RetryQuota) and placed.stage == "ration"
    assert (quota.capacity, quota.available) == (500, 500)
    assert (quota.retry_cost, quota.timeout_retry_cost, quota.success_refund) == (5, 10, 1)


def test_a_hundred_retries_empty_the_bucket_and_the_next_is_refused() -> None:
    quota = RetryQuota("q")
    view = call(quota)
    assert all(retry_after(view, DOWN) for _ in range(100))
    assert quota.available == 0
    assert not retry_after(view, DOWN)
    assert quota.refused == 1 and quota.available == 0


def test_fifty_timeout_retries_empty_it() -> None:
    quota = RetryQuota("q")
    view = call(quota)
    assert all(retry_after(view, SLOW) for _ in range(50))
    assert quota.available == 0 and not retry_after(view, SLOW)


def test_five_left_allow_a_retry_but_not_a_timeouts() -> None:
    quota = RetryQuota("q", capacity=15)
    view = call(quota)
    assert retry_after(view, SLOW) and quota.available == 5
    assert not retry_after(view, SLOW)  # 10 > 5: refused, and nothing taken
    assert quota.available == 5 and quota.refused == 1
    assert retry_after(view, DOWN) and quota.available == 0  # 5 <= 5: allowed, to exactly 0


@pytest.mark.parametrize(
    ("error", "cost"),
    [
        (TimeoutError("t"), 10),
        (stand_in("redis.exceptions.TimeoutError")("t"), 10),
        (stand_in("httpx.ReadTimeout")("t"), 10),
        (stand_in("httpx.ConnectTimeout")("t"), 10),
        (stand_in("requests.exceptions.Timeout")("t"), 10),
        (ConnectionRefusedError("r"), 5),
        (stand_in("redis.exceptions.ConnectionError")("c"), 5),
        (stand_in("httpx.ConnectError")("c"), 5),
        (RateLimitedError("slow down"), 5),
        (ServerError("500"), 5),
    ],
)
def test_a_retry_costs_ten_after_any_timeout_and_five_after_anything_else(
    error: BaseException, cost: int
) -> None:
    quota = RetryQuota("q")
    assert retry_after(call(quota), error)
    assert quota.available == 500 - cost


# --- refunds --------------------------------------------------------------------------------


def test_a_first_attempt_success_puts_back_one_never_above_the_capacity() -> None:
    quota = RetryQuota("q")
    call(quota).after_outcome(0.0, None)
    assert quota.available == 500  # full: nothing to put back
    assert retry_after(call(quota), DOWN)  # 495
    for expected in (496, 497):
        view = call(quota)
        view.before_attempt(1.0, 1)
        view.after_outcome(1.0, None)
        assert quota.available == expected


def test_a_success_after_retries_puts_back_what_its_last_retry_took() -> None:
    quota = RetryQuota("q")
    view = call(quota)
    assert retry_after(view, DOWN) and retry_after(view, SLOW)  # 5 + 10 taken
    assert quota.available == 485
    view.after_outcome(1.0, None)
    assert quota.available == 495  # the last retry's 10, not 15, and not the first's 5


def test_a_call_that_fails_puts_nothing_back() -> None:
    quota = RetryQuota("q")
    view = call(quota)
    assert retry_after(view, DOWN)
    view.after_outcome(1.0, DOWN)  # its last attempt failed too; the policy gave up
    assert quota.available == 495


def test_refused_attempts_cost_nothing_and_earn_nothing() -> None:
    quota = RetryQuota("q")
    view = call(quota)
    assert retry_after(view, SLOW)
    view.after_outcome(1.0, CircuitOpenError("dep"))  # never sent: no refund, not a timeout
    assert quota.available == 490
    assert view.allow_retry(1.0) and quota.available == 480  # still the timeout's cost


def test_interleaved_calls_each_refund_what_they_took() -> None:
    quota = RetryQuota("q")
    slow, flaky, fine = call(quota), call(quota), call(quota)
    assert retry_after(slow, SLOW)  # 490
    assert retry_after(flaky, DOWN)  # 485
    fine.after_outcome(0.5, None)  # 486: a first-attempt success among them
    slow.after_outcome(1.0, None)  # 496: slow took 10
    flaky.after_outcome(1.0, None)  # 500 (501 capped): flaky took 5
    assert quota.available == 500
    assert retry_after(flaky, DOWN) and quota.available == 495


def test_used_directly_it_treats_what_it_hears_as_one_call_at_a_time() -> None:
    quota = RetryQuota("q")
    quota.before_attempt(0.0, 1)
    quota.after_outcome(0.0, SLOW)
    assert quota.allow_retry(0.0) and quota.available == 490
    quota.before_attempt(0.0, 2)
    quota.after_outcome(0.0, None)
    assert quota.available == 500
    quota.before_attempt(1.0, 1)  # a new call: its success is a first attempt's
    quota.after_outcome(1.0, DOWN)
    assert quota.allow_retry(1.0) and quota.available == 495
    quota.before_attempt(1.0, 2)
    quota.after_outcome(1.0, DOWN)  # that call gave up: nothing back
    quota.before_attempt(2.0, 1)
    quota.after_outcome(2.0, None)
    assert quota.available == 496  # 1, not the 5 of the call before


def test_a_refusal_says_so_with_the_tokens_left() -> None:
    quota = RetryQuota("q", capacity=12)
    seen: list[GuardEvent] = []
    quota.notify.listeners = (seen.append,)
    view = call(quota)
    assert retry_after(view, SLOW, 3.0) and not retry_after(view, SLOW, 4.0)
    assert seen == [GuardEvent(4.0, "budget_refused", "q", None, 2.0)]
    assert quota.stats() == {"refused": 1, "tokens": 2}


# --- the knobs ------------------------------------------------------------------------------


@pytest.mark.parametrize("knob", ["retry_cost", "timeout_retry_cost"])
def test_a_cost_above_the_capacity_is_refused_naming_both(knob: str) -> None:
    with pytest.raises(ValidationError, match=f"{knob} \\(600\\) is more than its quota_capacity"):
        BudgetOptions(enabled=True, kind="quota", **{knob: 600})
    BudgetOptions(enabled=False, kind="quota", **{knob: 600})  # off: nothing to refuse
    BudgetOptions(enabled=True, kind="tokens", **{knob: 600})  # not a quota: unused


@pytest.mark.parametrize(
    ("knob", "value"),
    [("quota_capacity", 0), ("retry_cost", 0), ("timeout_retry_cost", 0), ("success_refund", -1)],
)
def test_knobs_out_of_bounds_are_refused(knob: str, value: int) -> None:
    with pytest.raises(ValidationError, match=knob):
        BudgetOptions(**{knob: value})


def test_the_knobs_are_settings_and_reach_a_decorated_function(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from retrysim.retry import load_settings, use_settings

    monkeypatch.setenv("RETRY__WORKER_BUDGET_ENABLED", "true")
    monkeypatch.setenv("RETRY__WORKER_BUDGET_KIND", "quota")
    monkeypatch.setenv("RETRY__WORKER_BUDGET_QUOTA_CAPACITY", "30")
    monkeypatch.setenv("RETRY__WORKER_BUDGET_TIMEOUT_RETRY_COST", "15")
    use_settings(load_settings(env_file=None))  # the conftest puts the defaults back after
    ran: list[float] = []

    @retry_worker_operation(
        max_attempts=10, min_wait=0, max_wait=0, guard_states=GuardStates(), sleep=ran.append
    )
    def op() -> None:
        raise TimeoutError("slow")

    with pytest.raises(TimeoutError):
        op()
    assert len(ran) == 2  # 30 tokens, 15 a timeout retry: two retries, the third refused


# --- through the real decorators -----------------------------------------------------------


def test_an_empty_quota_ends_the_call_with_its_original_error_and_no_sleep() -> None:
    op, raised, sleeps, events = failing_worker(
        {"enabled": True, "kind": "quota", "quota_capacity": 25},
        lambda n: DOWN if n == 1 else TimeoutError(f"attempt {n}"),
    )

    with pytest.raises(OSError) as info:
        op()
    # attempt 1: a reset, its retry takes 5 (20 left); attempts 2 and 3 time out, their retries
    # take 10 each (0 left); attempt 4 times out and its retry (10) is refused at once
    assert info.value is raised[3] and len(raised) == 4
    assert sleeps == [0.5, 0.5, 0.5]
    assert events == [GuardEvent(7.0, "budget_refused", "budget:worker", None, 0.0)]


def test_a_decorated_success_refunds_through_the_calls_view() -> None:
    states = GuardStates()
    answers = iter([SLOW, None, None])

    @retry_worker_operation(
        max_attempts=3,
        min_wait=0,
        max_wait=0,
        budget={"enabled": True, "kind": "quota"},
        guard_states=states,
        sleep=lambda s: None,
    )
    def op() -> str:
        answer = next(answers)
        if answer is not None:
            raise answer
        return "ok"

    assert op() == "ok"  # a timeout (10 taken), then a success (10 back)
    ((_, _, quota),) = states.instances()
    assert isinstance(quota, RetryQuota) and quota.available == 500
    assert op() == "ok" and quota.available == 500  # a first-attempt success on a full bucket


# --- laws -----------------------------------------------------------------------------------


_actions = st.lists(
    st.tuples(
        st.integers(0, 5),  # which of six concurrent calls
        st.sampled_from(["ok", "reset", "timeout", "refused", "new"]),
    ),
    max_size=300,
)


@settings(max_examples=300, deadline=None)
@given(
    capacity=st.integers(1, 80),
    cost=st.integers(1, 12),
    timeout_cost=st.integers(1, 25),
    refund=st.integers(0, 6),
    actions=_actions,
)
def test_interleaved_calls_match_a_ledger_and_stay_within_the_bucket(
    capacity: int, cost: int, timeout_cost: int, refund: int, actions: list[tuple[int, str]]
) -> None:
    """Each call answers an attempt (and, failed, asks for a retry) or starts afresh; the
    ledger, kept here per call, says what botocore's request context would."""
    quota = RetryQuota("q", capacity, cost, timeout_cost, refund)
    views = [call(quota) for _ in range(6)]
    took: list[int | None] = [None] * 6
    tokens = capacity
    for who, action in actions:
        view = views[who]
        if action == "new":
            view.before_attempt(0.0, 1)
            took[who] = None
        elif action == "ok":
            view.after_outcome(0.0, None)
            last = took[who]
            tokens = min(capacity, tokens + (refund if last is None else last))
            views[who], took[who] = call(quota), None  # the call is over: a new one
        elif action == "refused":
            view.after_outcome(0.0, CircuitOpenError("dep"))
        else:
            need = timeout_cost if action == "timeout" else cost
            allowed = retry_after(view, SLOW if action == "timeout" else DOWN)
            assert allowed is (need <= tokens)
            if allowed:
                tokens -= need
                took[who] = need
        assert 0 <= quota.available <= capacity
        assert quota.available == tokens


def test_sixteen_threads_keep_the_quota_within_bounds_and_exact() -> None:
    quota = RetryQuota("q", capacity=300)
    problems: list[int] = []

    def work(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(1500):
            view = call(quota)
            view.before_attempt(0.0, 1)
            for _ in range(3):
                if rng.random() < 0.4:
                    view.after_outcome(0.0, None)
                    break
                if not retry_after(view, SLOW if rng.random() < 0.5 else DOWN):
                    break
            if not 0 <= quota.available <= quota.capacity:
                problems.append(quota.available)

    in_threads(16, work)
    assert problems == [] and quota.refused > 0
    # whatever the interleaving: 16 x 30 reset retries empty it exactly ...
    quota.refund(quota.capacity)
    in_threads(16, lambda i: [retry_after(call(quota), DOWN) for _ in range(30)])
    assert quota.available == 0

    # ... and 16 x 10 first-attempt successes put back exactly 160
    def succeed(times: int) -> None:
        for _ in range(times):
            call(quota).after_outcome(0.0, None)

    in_threads(16, lambda i: succeed(10))
    assert quota.available == 160
