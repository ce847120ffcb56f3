"""Tests written to kill mutants that once survived the whole suite or a module's own tests.

Each test pins one behaviour a plausible edit would break silently: the memory guard's
threshold, KeyboardInterrupt not counted as a failure, no follow-up call at exactly the end of
the duration, and every call's own random stream. The sections below the first tests answer the
survivors of ``python scripts/mutate.py`` (docs/mutation.md), module by module.
"""

from __future__ import annotations

import dataclasses
import gc
import heapq
import itertools
import math
import time
from typing import Any, cast

import numpy as np
import pytest
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_fixed,
    wait_incrementing,
)

import retrysim
from retrysim.model.scenario import parse_scenario
from retrysim.results import metric_table, metrics
from retrysim.results.document import ResultDocument
from retrysim.results.sections import Timeline
from retrysim.retry import (
    PROFILES,
    CircuitOpenError,
    PolicyOptions,
    RateLimitedError,
    RetrySettings,
    TransientError,
    build_policy,
    retry_metrics,
    retry_worker_operation,
    waits,
)
from retrysim.retry import guards as guards_mod
from retrysim.sim import engine, failures, faults, invariants, limits, routing, service
from retrysim.sim import records as rec
from retrysim.sim.arrivals import expected_calls
from retrysim.sim.streams import FAULT_BASE, stream_key


def test_the_memory_guard_refuses_exactly_past_its_threshold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A guard ten times looser (or tighter) than documented fails one side of this."""
    scenario = parse_scenario({"clients": {"count": 1000}})
    need = expected_calls(scenario) * (limits.BYTES_PER_CALL + 3 * limits.BYTES_PER_ATTEMPT)
    limit = need / 0.8  # refused when need > 80% of what is available
    monkeypatch.setattr(limits, "available_memory", lambda: limit * 0.99)
    with pytest.raises(limits.ScenarioTooLargeError, match=r"clients\.count"):
        limits.check_memory(scenario, 3)
    monkeypatch.setattr(limits, "available_memory", lambda: limit * 1.01)
    limits.check_memory(scenario, 3)  # fits: no error


def test_the_memory_guard_matches_what_runs_were_measured_to_need(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Measured on this project's machine (thundering-herd, burst): 100,000 clients peak at
    462 MiB of RSS, 1,000,000 at 4.1 GiB. With 2 GiB free the first must run and the second
    must be refused; a guard ten times looser lets the second through."""
    herd = retrysim.load_scenario("thundering-herd")
    monkeypatch.setattr(limits, "available_memory", lambda: 2.0 * (1 << 30))
    limits.check_memory(herd.with_overrides({"clients.count": 100_000}), 3)
    with pytest.raises(limits.ScenarioTooLargeError):
        limits.check_memory(herd.with_overrides({"clients.count": 1_000_000}), 3)


def test_a_keyboard_interrupt_is_not_counted_as_a_non_retryable_failure() -> None:
    @retry_worker_operation(max_attempts=3, min_wait=0.0, max_wait=0.0)
    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    counters = next(iter(retry_metrics().values()))
    assert (counters.calls, counters.attempts, counters.non_retryable) == (1, 1, 0)
    assert counters.exhausted == 0 and counters.successes == 0


def test_no_follow_up_call_starts_at_exactly_the_duration() -> None:
    """Calls take 1 s and think 1 s: starts at 0 and 2; the next would start at 4 = duration."""
    scenario = parse_scenario(
        {
            "duration": 4,
            "clients": {"count": 1, "think_time": 1.0, "arrival": {"kind": "closed"}},
            "service": {"kind": "ideal", "latency": 1.0},
        }
    )
    starts = sorted(float(t) for t in retrysim.simulate(scenario).calls["start"])
    assert starts == [0.0, 2.0]


def test_every_call_of_every_client_draws_from_its_own_stream() -> None:
    """Clients' follow-up calls once shared streams when call keys overlapped."""
    scenario = parse_scenario(
        {
            "policy": {"max_attempts": 2, "min_wait": 1.0, "max_wait": 10.0, "jitter": 1.0},
            "clients": {"count": 40, "calls_per_client": 4, "think_time": 0.5},
            "faults": [{"kind": "flaky", "start": 0, "probability": 1.0}],
        }
    )
    result = retrysim.simulate(scenario)
    first_waits = result.attempts["wait"][result.attempts["attempt"] == 1]
    assert len(first_waits) == 40 * 4
    assert len(np.unique(first_waits)) == len(first_waits), "two calls drew the same jitter"
    pairs = {(int(c["client"]), int(c["index"])) for c in result.calls}
    assert pairs == set(itertools.product(range(40), range(4)))


# -- retrysim/retry/policy.py ---------------------------------------------------------------------


def test_a_policy_is_immutable() -> None:
    """The decorators, the engine and fidelity mode share one policy object."""
    policy = build_policy("worker", RetrySettings.defaults())
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.operation = "api"  # type: ignore[misc]


def test_max_delay_and_retry_after_read_the_resolved_options() -> None:
    policy = build_policy("api", RetrySettings.defaults(), max_delay=30.0, respect_retry_after=True)
    assert (policy.max_delay, policy.respect_retry_after) == (30.0, True)
    plain = build_policy("api", RetrySettings.defaults())
    assert (plain.max_delay, plain.respect_retry_after) == (None, False)


def test_schedule_lists_at_most_limit_retries() -> None:
    many = build_policy("worker", RetrySettings.defaults(), max_attempts=500)
    assert [row[0] for row in many.schedule()] == list(range(1, 101))
    assert [row[0] for row in many.schedule(3)] == [1, 2, 3]
    exact = build_policy("worker", RetrySettings.defaults(), max_attempts=101)
    assert len(exact.schedule()) == 100


@pytest.mark.parametrize("profile", sorted(PROFILES))
@pytest.mark.parametrize(
    ("attempts", "min_wait", "max_wait"),
    [(1, 1, 8), (2, 1, 8), (9, 0.5, 5), (12, 2, 2), (14, 1, 60)],
)
def test_worst_case_total_is_the_sum_of_the_longest_waits(
    profile: str, attempts: int, min_wait: float, max_wait: float
) -> None:
    policy = build_policy(
        "storage",
        RetrySettings.defaults(),
        profile=profile,
        max_attempts=attempts,
        min_wait=min_wait,
        max_wait=max_wait,
    )
    longest = [policy.wait_range(n)[1] for n in range(1, attempts)]
    assert policy.worst_case_total() == pytest.approx(sum(longest))


def test_worst_case_total_of_the_most_attempts_allowed_is_exact() -> None:
    """Once the waits sit at max_wait the rest are counted by one multiplication, not 9,998
    additions whose rounding would drift (a sum of 0.1 s 9,999 times is off by 1.6e-13)."""
    doubling = build_policy(
        "worker",
        RetrySettings.defaults(),
        profile="exponential",
        max_attempts=10_000,
        min_wait=1.0,
        max_wait=10.0,
    )
    assert doubling.worst_case_total() == 1 + 2 + 4 + 8 + 10.0 * (10_000 - 5)
    flat = build_policy(
        "worker",
        RetrySettings.defaults(),
        profile="exponential",
        max_attempts=10_000,
        min_wait=0.1,
        max_wait=0.1,
    )
    assert flat.worst_case_total() == pytest.approx(999.9, rel=1e-15, abs=0)


def test_options_object_and_keyword_overrides_combine() -> None:
    policy = build_policy(
        "worker", RetrySettings.defaults(), options=PolicyOptions(max_attempts=5), min_wait=0.25
    )
    assert (policy.max_attempts, policy.min_wait) == (5, 0.25)
    assert policy.overrides == {"max_attempts", "min_wait"}


class _Guard:
    """A call guard that never refuses an attempt; subclasses add one capability."""

    def before_attempt(self, now: float, attempt: int) -> BaseException | None:
        return None

    def after_outcome(self, now: float, error: BaseException | None) -> None:
        return None


class _NoRetries(_Guard):
    def allow_retry(self, now: float) -> bool:
        return False


class _Triples(_Guard):
    def wait_factor(self, now: float) -> float:
        return 3.0


def _attempts_and_sleeps(policy: Any, chain: Any) -> tuple[int, list[float]]:
    sleeps: list[float] = []
    attempts = 0

    def flaky() -> None:
        nonlocal attempts
        attempts += 1
        raise TransientError("down")

    with pytest.raises(TransientError):
        policy.retrying(chain, lambda: 0.0, sleep=sleeps.append)(flaky)
    return attempts, sleeps


def test_a_retry_gate_of_the_call_joins_the_policys_stop() -> None:
    policy = build_policy("api", profile="exponential", min_wait=1.0, max_wait=1.0)
    assert _attempts_and_sleeps(policy, guards_mod.GuardChain([])) == (4, [1.0, 1.0, 1.0])
    assert _attempts_and_sleeps(policy, guards_mod.GuardChain([_NoRetries()])) == (1, [])


def test_a_wait_scaler_of_the_call_stretches_the_policys_wait() -> None:
    policy = build_policy("api", profile="exponential", min_wait=1.0, max_wait=1.0)
    chain = guards_mod.GuardChain([_Triples()])
    assert _attempts_and_sleeps(policy, chain) == (4, [3.0, 3.0, 3.0])


def test_the_options_mechanisms_become_the_policys_guards_and_refusals_are_never_retried() -> None:
    everything = retry_if_exception_type(Exception)
    guarded = build_policy("api", breaker=True, retry=everything, min_wait=0.0, max_wait=0.0)
    assert [guard.name for guard in guarded.guards] == ["breaker:api"]
    plain = build_policy("api", retry=everything, min_wait=0.0, max_wait=0.0)
    assert plain.guards == ()
    for policy, attempts in ((guarded, 1), (plain, 4)):
        calls = 0

        def refused() -> None:
            nonlocal calls
            calls += 1
            raise CircuitOpenError("api")

        with pytest.raises(CircuitOpenError):
            policy.retrying(sleep=lambda seconds: None)(refused)
        assert calls == attempts


def test_respect_retry_after_makes_the_policy_wait_as_long_as_the_server_asks() -> None:
    error = RateLimitedError(retry_after=5.0)
    state = RetryCallState(retry_object=Retrying(), fn=None, args=(), kwargs={})
    state.set_exception((type(error), error, None))
    fixed: dict[str, Any] = {"profile": "exponential", "min_wait": 1.0, "max_wait": 1.0}
    assert build_policy("api", respect_retry_after=True, **fixed).wait(state) == 5.0
    assert build_policy("api", respect_retry_after=False, **fixed).wait(state) == 1.0


# -- retrysim/retry/waits.py ----------------------------------------------------------------------


def _state(attempt: int = 1, error: BaseException | None = None) -> RetryCallState:
    state = RetryCallState(retry_object=Retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = attempt
    if error is not None:
        state.set_exception((type(error), error, None))
    return state


@pytest.mark.parametrize("retry_number", [1024, 1025, 1026, 10_000])
def test_capped_exponential_reaches_the_cap_without_overflowing(retry_number: int) -> None:
    """2.0**1024 overflows a float: from retry 1025 on the cap is returned without computing it."""
    assert waits.capped_exponential(1.0, 10.0, retry_number) == 10.0


def test_the_jitter_strategies_defaults_are_their_documented_signatures(seeded_jitter) -> None:
    """multiplier/base 1 s, max 60 s, no floor: the same draws as with those values spelled out."""
    pairs = (
        (waits.wait_equal_jitter(), waits.wait_equal_jitter(multiplier=1.0, max=60.0, min=0.0)),
        (
            waits.wait_decorrelated_jitter(),
            waits.wait_decorrelated_jitter(base=1.0, max=60.0, min=0.0),
        ),
    )
    for default, spelled_out in pairs:
        draws = []
        for strategy in (default, spelled_out):
            state = _state()
            with seeded_jitter(7):
                for n in range(1, 16):
                    state.attempt_number = n
                    draws.append([strategy(state) for _ in range(3)])
        assert draws[:15] == draws[15:]
        assert max(max(row) for row in draws) > 30  # waits near the cap were drawn


def test_retry_after_without_an_outcome_is_the_fallback_wait() -> None:
    """Waits are sampled on states that have not failed yet (``retrysim settings --plot``)."""
    assert waits.wait_retry_after(wait_fixed(2.0))(_state()) == 2.0


def test_a_retry_after_hint_under_one_second_is_honoured() -> None:
    error = RateLimitedError(retry_after=0.5)
    assert waits.wait_retry_after(wait_fixed(0.2))(_state(error=error)) == 0.5


@pytest.mark.parametrize(
    "strategy",
    [
        waits.wait_equal_jitter(multiplier=0.1, max=1.0, min=0.5),
        waits.wait_decorrelated_jitter(base=0.1, max=1.0, min=0.5),
    ],
    ids=["equal", "decorrelated"],
)
def test_a_floor_under_one_second_lifts_every_shorter_wait(strategy: Any) -> None:
    """A first retry's jittered wait here is at most 0.3 s; a floor of 0.5 s must lift it."""
    for _ in range(20):
        assert strategy(_state(1)) == 0.5


def test_decorrelated_jitter_has_no_floor_unless_given_one() -> None:
    strategy = waits.wait_decorrelated_jitter(base=0.1, max=1.0)
    assert all(0.1 <= strategy(_state(1)) <= 0.3 for _ in range(20))


def test_decorrelated_jitter_starts_again_from_base_when_a_state_starts_again() -> None:
    """s_1 = U(base, 3 base) even on a state that waited before (one reused for a new call)."""
    strategy = waits.wait_decorrelated_jitter(base=1.0, max=1000.0)
    for _ in range(50):
        state = _state(1)
        for attempt in range(1, 6):
            state.attempt_number = attempt
            strategy(state)
        state.attempt_number = 1
        assert 1.0 <= strategy(state) <= 3.0


# -- retrysim/sim/engine.py -----------------------------------------------------------------------


def test_a_queue_in_a_run_drops_only_requests_whose_client_gave_up() -> None:
    """One slot, 1 s each, clients give up after 1.5 s: B starts at 1 while its client still
    waits (so it runs, too late), C would start at 2 after its client left (so it is dropped)."""
    scenario = parse_scenario(
        {
            "duration": 10,
            "policy": {"max_attempts": 1},
            "clients": {"count": 3, "timeout": 1.5, "calls_per_client": 1},
            "service": {
                "kind": "queue",
                "concurrency": 1,
                "queue_limit": 10,
                "drop_abandoned": True,
                "latency": 1.0,
            },
        }
    )
    attempts = np.sort(retrysim.simulate(scenario).attempts, order="start")
    assert attempts["executed"].tolist() == [1, 1, 0]
    assert attempts["outcome"].tolist() == [rec.OK, rec.TIMED_OUT, rec.TIMED_OUT]


def test_progress_counts_exactly_the_calls_ended_so_far() -> None:
    scenario = retrysim.load_scenario("redis-blip")
    seen: list[tuple[float, int]] = []
    run = engine.Engine(scenario, progress=lambda done, total: seen.append((run.now, done)))
    result = run.run()
    ends = np.sort(result.calls["end"][~np.isnan(result.calls["end"])])
    assert len(seen) > 2
    for now, done in seen[:-1]:
        assert np.searchsorted(ends, now, "left") <= done <= np.searchsorted(ends, now, "right")


def test_a_run_gives_back_the_callers_gc_thresholds_and_measures_its_wall_time() -> None:
    scenario = parse_scenario({"clients": {"count": 50}})
    saved = gc.get_threshold()
    gc.set_threshold(600, 9, 8)  # not the defaults: an earlier run cannot have left these
    try:
        began = time.perf_counter()
        result = retrysim.simulate(scenario)
        elapsed = time.perf_counter() - began
        assert gc.get_threshold() == (600, 9, 8)
    finally:
        gc.set_threshold(*saved)
    assert 0 < result.wall_time <= elapsed


def test_only_a_large_run_collects_before_its_records_and_nothing_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """kernel.give_back_memory runs a full collection after a run of more than
    LARGE_RUN_EVENTS events (to empty the free lists that keep freed arenas mapped), and
    never otherwise: it costs tens of ms, which a small run must not pay."""
    from retrysim.sim import kernel

    scenario = parse_scenario({"clients": {"count": 50}, "faults": [{"kind": "outage", "end": 1}]})
    collections: list[int] = []
    real_collect = gc.collect

    def counted_collect(*args: int) -> int:
        collections.append(1)
        return real_collect(*args)

    monkeypatch.setattr(gc, "collect", counted_collect)
    small = retrysim.simulate(scenario)
    assert collections == [] and small.events > 0
    monkeypatch.setattr(kernel, "LARGE_RUN_EVENTS", small.events - 1)
    large = retrysim.simulate(scenario)
    assert collections == [1]
    assert large.attempts.tobytes() == small.attempts.tobytes()
    assert large.calls.tobytes() == small.calls.tobytes()


def test_a_closed_loop_estimates_its_calls_from_the_rate_so_far() -> None:
    """Without calls_per_client a closed loop makes as many calls as fit: a report at time t
    estimates started * duration / t, and at t = 0 (10,000 zero-latency calls end at once)
    the calls started so far."""
    duration = 2.5
    scenario = parse_scenario(
        {
            "duration": duration,
            "clients": {"count": 10_000, "think_time": 1.0, "arrival": {"kind": "closed"}},
            "service": {"kind": "ideal", "latency": 0.0},
        }
    )
    seen: list[tuple[float, int]] = []
    run = engine.Engine(scenario, progress=lambda done, total: seen.append((run.now, total)))
    starts = np.sort(run.run().calls["start"])
    times = {now for now, _ in seen[:-1]}
    assert {0.0, 1.0, 2.0} <= times
    for now, total in seen[:-1]:
        started = np.searchsorted(starts, now, "left"), np.searchsorted(starts, now, "right")
        if 0 < now < duration:
            lo, hi = (round(int(n) * duration / now) for n in started)
        else:
            lo, hi = (int(n) for n in started)
        assert lo <= total <= hi, (now, total, lo, hi)


def test_finished_calls_leave_no_tenacity_state_or_error_behind_without_the_collector() -> None:
    """Thousands of calls' state must not wait for the cycle collector: the engine drops each
    call's state, its last error and the traceback tenacity attached when it gave up."""
    scenario = parse_scenario(
        {
            "policy": {"max_attempts": 3, "min_wait": 0.1, "max_wait": 1.0},
            "clients": {"count": 30},
            "faults": [{"kind": "flaky", "start": 0, "probability": 0.7}],
        }
    )

    def alive() -> list[object]:
        return [o for o in gc.get_objects() if isinstance(o, RetryCallState | BaseException)]

    gc.collect()
    gc.disable()
    try:
        before = alive()  # held, so none of their ids can be reused
        seen = {id(o) for o in before}
        outcomes = retrysim.simulate(scenario).calls["outcome"].tolist()
        left = [o for o in alive() if id(o) not in seen]
    finally:
        gc.enable()
    assert rec.GAVE_UP in outcomes and rec.SUCCEEDED in outcomes
    assert left == []


def test_an_answer_due_exactly_at_the_timeout_arrives_and_costs_no_timeout_event() -> None:
    scenario = parse_scenario(
        {
            "policy": {"max_attempts": 1},
            "clients": {"count": 1, "timeout": 1.0},
            "service": {"kind": "ideal", "latency": 1.0},
        }
    )
    result = retrysim.simulate(scenario)
    assert result.attempts["outcome"].tolist() == [rec.OK]
    assert result.events == 2  # the arrival and the server's answer


class _AnnouncesOnlyTheFirst(service.Server):
    """A server model that announces when it will finish request 0 and never answers others."""

    def submit(self, call: Any, a: int, t: float, service_time: float) -> None:
        if a == 0:
            self.engine.schedule_done(t + service_time, call, a, 0)


def test_a_request_with_no_announced_end_times_out_after_one_that_had_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The announced end of one request must not stand for the next (ServerHost's contract:
    announcing is optional per request)."""
    monkeypatch.setattr(routing, "make_server", lambda host, spec: _AnnouncesOnlyTheFirst(host))
    scenario = parse_scenario(
        {
            "policy": {"max_attempts": 1},
            "clients": {"count": 2, "timeout": 1.0},
            "service": {"kind": "ideal", "latency": 0.5},
        }
    )
    attempts = retrysim.simulate(scenario).attempts
    assert attempts["outcome"].tolist() == [rec.OK, rec.TIMED_OUT]
    assert attempts["end"].tolist() == [0.5, 1.0]


def test_every_run_checks_its_invariants(monkeypatch: pytest.MonkeyPatch) -> None:
    """The README promises the invariants are checked after every run, not only in tests."""
    checked: list[object] = []
    monkeypatch.setattr(invariants, "assert_invariants", checked.append)
    result = retrysim.simulate(parse_scenario({"clients": {"count": 3}}))
    assert checked == [result]


class _PredicateBrokeError(Exception):
    pass


def test_a_retry_strategy_that_breaks_on_a_first_success_raises_its_own_error() -> None:
    """Not the attempt's error: the engine lets it through, even before any attempt failed."""
    broken = False

    def retry(state: RetryCallState) -> bool:
        if broken and state.outcome is not None and not state.outcome.failed:
            raise _PredicateBrokeError("the predicate broke")
        return False

    policy = Retrying(retry=retry, stop=stop_after_attempt(3), wait=wait_fixed(0.1))
    run = engine.Engine(parse_scenario({"clients": {"count": 2}}), retrying=policy)
    broken = True  # after the engine probed the policy, before the first call's answer
    with pytest.raises(_PredicateBrokeError, match="the predicate broke"):
        run.run()


def test_a_call_with_its_own_retrying_is_begun_like_tenacitys_own_loop() -> None:
    """A retry budget gives each call its own ``Retrying``: its statistics must be set up."""
    scenario = parse_scenario(
        {
            "policy": {
                "max_attempts": 3,
                "min_wait": 0.1,
                "max_wait": 0.1,
                "budget": {"enabled": True},
            },
            "clients": {"count": 20},
            "faults": [{"kind": "flaky", "start": 0, "probability": 0.5}],
        }
    )
    attempts = retrysim.simulate(scenario).attempts["attempt"]
    assert attempts.max() >= 2  # some call retried (and tenacity counted its idle time)


RESET_EVERY_ATTEMPT = {
    "policy": {"max_attempts": 1},
    "clients": {"count": 5},
    "faults": [{"kind": "reset", "probability": 1.0}],
}


def test_a_reset_fault_fails_every_attempt_with_a_connection_reset() -> None:
    result = retrysim.simulate(parse_scenario(RESET_EVERY_ATTEMPT))
    assert set(result.calls["outcome"].tolist()) == {rec.GAVE_UP}
    assert set(result.calls["error"].tolist()) == {failures.CODES["ConnectionResetError"]}


def test_news_of_a_reset_travels_back_to_the_client_over_the_network() -> None:
    """Half the rtt to the server, a share of the service time, half the rtt back: >= rtt."""
    scenario = parse_scenario({**RESET_EVERY_ATTEMPT, "network": {"rtt": 0.5, "connect": 0.001}})
    result = retrysim.simulate(scenario)
    assert set(result.calls["error"].tolist()) == {failures.CODES["ConnectionResetError"]}
    took = result.attempts["end"] - result.attempts["start"]
    assert (took >= 0.5).all()


def test_a_send_rate_limiter_holds_attempts_back_in_a_run() -> None:
    scenario = parse_scenario(
        {
            "policy": {
                "max_attempts": 4,
                "min_wait": 0.1,
                "max_wait": 0.5,
                "adaptive": {"limiter": True, "scope": "fleet"},
            },
            "clients": {"count": 50, "arrival": {"kind": "burst", "at": 1.0}},
            "faults": [{"kind": "flaky", "start": 0, "probability": 0.8, "error": "RateLimited"}],
        }
    )
    result = retrysim.simulate(scenario)
    held = [event for event in result.guard_events if event.kind == "limiter_delay"]
    assert held and all(float(event.value) > 0 for event in held)


def test_adaptive_backoff_stretches_waits_on_the_runs_clock() -> None:
    """Its failure window is read at the simulated time of each decision."""
    scenario = parse_scenario(
        {
            "policy": {
                "max_attempts": 4,
                "min_wait": 0.1,
                "max_wait": 0.1,
                "adaptive": {"enabled": True},
            },
            "clients": {"count": 20},
            "faults": [{"kind": "flaky", "start": 0, "probability": 0.9}],
        }
    )
    waits_drawn = retrysim.simulate(scenario).attempts["wait"]
    assert np.nanmax(waits_drawn) > 0.1  # stretched past the profile's fixed 0.1 s


# -- retrysim/sim/faults.py -----------------------------------------------------------------------

ONE_OF_EACH_FAULT = (
    {"kind": "outage", "start": 0, "end": 1},
    {"kind": "flaky", "start": 1, "probability": 0.5},
    {"kind": "recovery_ramp", "start": 3, "end": 4},
    {"kind": "latency_spike", "start": 0, "end": 9, "extra": 1.0},
    {"kind": "reset", "probability": 0.1},
    {"kind": "capacity_loss", "start": 5, "end": 6, "slots": 1},
)


def _plan(*fault_specs: dict[str, Any]) -> faults.FaultPlan:
    scenario = parse_scenario(
        {"service": {"kind": "queue", "concurrency": 3}, "faults": list(fault_specs)}
    )
    return faults.compile_faults(scenario.faults, seed=1)


@pytest.mark.parametrize("spec", ONE_OF_EACH_FAULT, ids=lambda spec: spec["kind"])
def test_a_plan_with_any_one_fault_is_not_empty(spec: dict[str, Any]) -> None:
    assert not _plan(spec).empty
    assert _plan().empty


def test_compiled_fault_strategies_are_immutable() -> None:
    """One plan serves every call of a run (and fidelity mode): nothing may change it."""
    plan = _plan(*ONE_OF_EACH_FAULT)
    strategies: list[Any] = [*plan.gates, *plan.spikes, *plan.resets]
    assert sorted(type(s).__name__ for s in strategies) == [
        "FlakyGate",
        "OutageGate",
        "RampGate",
        "ResetRule",
        "Spike",
    ]
    for strategy in strategies:
        with pytest.raises(dataclasses.FrozenInstanceError):
            strategy.start = 2.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.gates = ()  # type: ignore[misc]


def test_fault_i_draws_from_its_documented_stream() -> None:
    """streams.FAULT_BASE: fault i uses FAULT_BASE + i, apart from every other stream."""
    plan = _plan(
        {"kind": "flaky", "start": 0, "probability": 0.5},
        {"kind": "flaky", "start": 1, "probability": 0.5},
        {"kind": "flaky", "start": 2, "probability": 0.5},
    )
    keys = [cast(Any, gate).key for gate in plan.gates]
    assert keys == [stream_key(1, FAULT_BASE + i) for i in range(3)]


# -- retrysim/sim/service.py ----------------------------------------------------------------------


class _Host:
    """The least a server model needs of its host: it records the answers given at once."""

    now = 0.0

    def __init__(self) -> None:
        self.answers: dict[int, tuple[int, float | None]] = {}
        self.cancelled: set[int] = set()

    def at(self, t: float, fn: Any, arg: Any) -> int:
        return next(_SEQ)

    def cancel(self, event: int) -> None:
        self.cancelled.add(event)

    def respond(self, call: Any, a: int, code: int, hint: float | None = None) -> None:
        self.answers[a] = (code, hint)

    def schedule_done(self, t: float, call: Any, a: int, code: int) -> None:
        self.answers[a] = (code, None)

    def server_done(self, call: Any, a: int, code: int, hint: float | None = None) -> None:
        pass

    def is_open(self, a: int) -> bool:
        return True

    def round_trip(self, call: Any, a: int) -> float:
        return 0.0  # no network

    def server_unit(self, call: Any, a: int) -> float:
        return 0.5

    def answer_code(self, value: int | str) -> int:
        raise AssertionError("no server here is given an answer")


def _service(spec: dict[str, Any]) -> Any:
    return parse_scenario({"service": spec}).service


def test_a_refusal_hints_the_time_until_the_next_whole_token() -> None:
    """Rate 2/s, burst 1: the token goes at t=0; at t=0.25 half a token is back, so the next
    whole one is 0.25 s away (1 s as HTTP's whole seconds)."""
    for mode, hint in (("exact", 0.25), ("seconds", 1.0)):
        host = _Host()
        spec = _service({"kind": "rate_limited", "rate": 2, "burst": 1, "retry_after": mode})
        server = service.RateLimitedServer(host, spec)
        server.submit(None, 0, 0.0, 0.1)
        server.submit(None, 1, 0.25, 0.1)
        assert host.answers == {0: (0, None), 1: (failures.RATE_LIMITED, hint)}


def test_servers_with_zero_latency_have_no_capacity_bound() -> None:
    host = _Host()
    queue = service.QueueServer(host, _service({"kind": "queue", "concurrency": 2, "latency": 0}))
    occ = service.OccServer(host, _service({"kind": "occ", "latency": 0}))
    assert (queue.capacity, occ.capacity) == (None, None)


@pytest.mark.parametrize(
    ("model", "spec", "capacity"),
    [
        (service.QueueServer, {"kind": "queue", "concurrency": 3, "latency": 0.5}, 6.0),
        (service.LockServer, {"kind": "lock", "latency": 0.5}, 2.0),
        (service.OccServer, {"kind": "occ", "latency": 0.5}, 2.0),
        (
            service.ProcessorSharingServer,
            {"kind": "processor_sharing", "cores": 4, "concurrency": 2, "latency": 0.5},
            4.0,
        ),
        (
            service.ProcessorSharingServer,
            {"kind": "processor_sharing", "cores": 2, "latency": 0.25},
            8.0,
        ),
    ],
    ids=["queue", "lock", "occ", "ps-capped", "ps"],
)
def test_a_servers_capacity_is_its_busy_slots_over_the_mean_service_time(
    model: Any, spec: dict[str, Any], capacity: float
) -> None:
    assert model(_Host(), _service(spec)).capacity == pytest.approx(capacity)


def test_a_service_kind_without_a_server_model_is_refused() -> None:
    with pytest.raises(TypeError, match="unknown service"):
        service.make_server(_Host(), cast(Any, object()))


def test_queued_requests_start_as_soon_as_lost_capacity_comes_back() -> None:
    """Three 5 s requests, one slot until t=2, then three: the two queued ones start at 2, not
    when the first finishes at 5."""
    scenario = parse_scenario(
        {
            "duration": 20,
            "policy": {"max_attempts": 1},
            "clients": {"count": 3},
            "service": {"kind": "queue", "concurrency": 3, "latency": 5.0},
            "faults": [{"kind": "capacity_loss", "start": 0, "end": 2, "slots": 1}],
        }
    )
    assert sorted(retrysim.simulate(scenario).attempts["end"].tolist()) == [5.0, 7.0, 7.0]


class _Loop(_Host):
    """A host that runs the events a server model schedules, in time order."""

    def __init__(self, rtt: float = 0.0) -> None:
        super().__init__()
        self.events: list[tuple[float, int, Any, Any]] = []
        self.done: dict[int, tuple[float, int]] = {}
        self.rtt = rtt

    def at(self, t: float, fn: Any, arg: Any) -> int:
        seq = next(_SEQ)
        heapq.heappush(self.events, (t, seq, fn, arg))
        return seq

    def run(self, until: float = math.inf) -> None:
        while self.events and self.events[0][0] <= until:
            t, seq, fn, arg = heapq.heappop(self.events)
            if seq in self.cancelled:
                continue
            self.now = t
            fn(arg)

    def schedule_done(self, t: float, call: Any, a: int, code: int) -> None:
        self.at(t, lambda _: self.done.__setitem__(a, (t, code)), None)

    def server_done(self, call: Any, a: int, code: int, hint: float | None = None) -> None:
        self.done[a] = (self.now, code)

    def round_trip(self, call: Any, a: int) -> float:
        return self.rtt


_SEQ = itertools.count()


def test_read_then_write_commits_the_first_write_of_a_version_and_conflicts_the_next() -> None:
    """Both read version 0 at 0.25 s; the writes arrive a round trip (0.1 s) later, the first
    commits and the second conflicts, each answered after its write time (0.5 s)."""
    host = _Loop(rtt=0.1)
    spec = {"kind": "occ", "protocol": "read_then_write", "latency": 0.5, "read_latency": 0.25}
    occ = service.OccServer(host, _service(spec))
    occ.submit(None, 0, 0.0, 0.5)
    occ.submit(None, 1, 0.0, 0.5)
    host.run()
    assert host.done[0][0] == host.done[1][0] == pytest.approx(0.85)
    assert (host.done[0][1], host.done[1][1]) == (0, failures.CONFLICT)
    assert occ.version == 1


def test_processor_sharing_frees_the_slot_of_a_cancelled_request() -> None:
    """One slot: the second request waits; cancelling the first at 0.5 s serves it then."""
    host = _Loop()
    spec = {
        "kind": "processor_sharing",
        "cores": 1,
        "concurrency": 1,
        "latency": 1.0,
        "cancel_abandoned": True,
    }
    ps = service.ProcessorSharingServer(host, _service(spec))
    ps.submit(None, 0, 0.0, 1.0)
    ps.submit(None, 1, 0.0, 1.0)
    host.run(until=0.5)
    host.now = 0.5
    ps.abandon(None, 0)
    host.run()
    assert list(host.done) == [1]
    assert host.done[1][0] == pytest.approx(1.5) and host.done[1][1] == 0


# -- retrysim/results/metrics.py -------------------------------------------------------------------

NO_CALLS = rec.empty_calls(0)


def _attempts(starts: list[float], ends: list[float]) -> np.ndarray:
    attempts = rec.empty_attempts(len(starts))
    attempts["attempt"] = 1
    attempts["start"] = starts
    attempts["end"] = ends
    return attempts


def _first_tries(timeline: Timeline) -> list[float]:
    return [count * timeline["bin_width"] for count in timeline["attempts_per_s"][0]]


def test_the_timeline_lasts_until_the_last_answer_not_the_last_start() -> None:
    assert _first_tries(metrics.timeline(_attempts([0.0], [5.5]), NO_CALLS, 1.0)) == [1] + [0] * 5


def test_an_attempt_starting_exactly_at_the_end_gets_a_bin_of_its_own() -> None:
    timeline = metrics.timeline(_attempts([0.0, 5.0], [1.0, math.nan]), NO_CALLS, 1.0)
    assert _first_tries(timeline) == [1, 0, 0, 0, 0, 1]


def test_a_timeline_of_attempts_never_answered_lasts_until_the_last_start() -> None:
    timeline = metrics.timeline(_attempts([0.0, 2.5], [math.nan, math.nan]), NO_CALLS, 1.0)
    assert _first_tries(timeline) == [1, 0, 1]


def test_the_last_bin_of_a_very_long_run_holds_what_happened_at_its_very_end() -> None:
    """At 3.6e7 s the bins are 60,000 s wide and end + 1e-9 == end: an attempt and a success
    at exactly the end fall past the 600th bin unless folded into it."""
    end = 600 * 60_000.0
    width = metrics.bin_width(end)
    calls = rec.empty_calls(1)
    calls["outcome"], calls["end"] = rec.SUCCEEDED, end
    timeline = metrics.timeline(_attempts([0.0, end], [1.0, end]), calls, width)
    assert width == 60_000.0
    assert _first_tries(timeline) == [1] + [0] * 598 + [1]
    assert [g * width for g in timeline["goodput_per_s"]] == [0] * 599 + [1]


def test_a_run_that_ends_at_time_zero_has_one_second_bins() -> None:
    assert metrics.bin_width(0.0) == 1.0


def test_the_document_reports_the_wall_time_it_is_given_or_the_runs_own() -> None:
    result = retrysim.simulate(parse_scenario({"clients": {"count": 2}}))
    assert metrics.summarize(result)["wall_time"] == result.wall_time > 0
    assert metrics.summarize(result, wall_time=0.0)["wall_time"] == 0.0


BREAKER_OVER_A_NETWORK = {
    "policy": {
        "max_attempts": 4,
        "min_wait": 0.1,
        "max_wait": 0.5,
        "breaker": {"enabled": True, "failure_threshold": 3, "recovery_timeout": 2.0},
    },
    "clients": {"count": 30},
    "network": {"rtt": 0.01},
    "faults": [{"kind": "outage", "start": 0, "end": 5}],
}


@pytest.fixture(scope="module")
def breaker_run() -> Any:
    return retrysim.simulate(parse_scenario(BREAKER_OVER_A_NETWORK))


def test_retry_success_rate_is_the_share_of_retried_calls_that_succeeded() -> None:
    calls = rec.empty_calls(4)
    calls["attempts"] = [1, 2, 3, 2]
    calls["outcome"] = [rec.SUCCEEDED, rec.SUCCEEDED, rec.GAVE_UP, rec.GAVE_UP]
    assert metrics.retry_success_rate(calls) == pytest.approx(1 / 3)


def test_the_jitter_spread_histogram_has_sixty_bins_by_default(breaker_run: Any) -> None:
    assert len(metrics.jitter_spread(breaker_run.attempts)["counts"]) == 60


def test_the_timeline_counts_only_the_attempts_sent(breaker_run: Any) -> None:
    attempts, calls = breaker_run.attempts, breaker_run.calls

    def counted(sent: Any) -> int:
        timeline = metrics.timeline(attempts, calls, 1.0, sent=sent)
        return round(float(np.sum(timeline["attempts_per_s"])))  # per second, bins of 1 s

    nothing = np.zeros(len(attempts), dtype=bool)
    assert counted(None) == len(attempts) > 0
    assert counted(nothing) == 0


def test_a_document_from_a_baseline_and_its_latency_at_once_is_refused(breaker_run: Any) -> None:
    with pytest.raises(TypeError, match="not both"):
        metrics.summarize(
            breaker_run, breaker_run, baseline_latency=metrics.latency(breaker_run.calls)
        )


def test_the_document_of_a_run_over_a_network_has_its_connections(breaker_run: Any) -> None:
    assert metrics.summarize(breaker_run)["connections"]


def test_guard_metrics_read_none_without_a_guards_section_and_show_only_with_one(
    breaker_run: Any,
) -> None:
    guarded = metrics.summarize(breaker_run)
    plain = cast(ResultDocument, {key: value for key, value in guarded.items() if key != "guards"})
    assert metrics.metric(plain, "breaker_refused") is None
    assert metrics.metric(guarded, "breaker_refused") == guarded["guards"]["breaker"]["refused"]
    shown = metrics.table_metrics([], [guarded])
    assert {"attempts_sent", "breaker_refused"} <= set(shown)
    assert "budget_refused" not in shown
    assert metrics.table_metrics([], [plain]) == []


def test_goodput_recovery_is_shown_when_some_run_could_be_judged_for_it() -> None:
    def document(value: float | None) -> ResultDocument:
        node: dict[str, Any] = {}
        doc = node
        *parents, last = metric_table.get("goodput_recovery").path
        for part in parents:
            node[part] = {}
            node = node[part]
        node[last] = value
        return cast(ResultDocument, doc)

    assert metrics.table_metrics(["calls"], [document(None), document(2.5)]) == [
        "calls",
        "goodput_recovery",
    ]
    assert metrics.table_metrics(["calls"], [document(None)]) == ["calls"]


# -- retrysim/sim/decide.py ----------------------------------------------------------------------


def test_the_fast_path_refusal_names_the_strategy_it_does_not_mirror() -> None:
    """A retrysim policy with one strategy the fast path has no mirror for: the refusal names
    it, ``auto`` falls back to the reference path and ``fast`` is refused, naming it too (a
    refusal that said nothing would send such a policy down the fast path)."""
    from retrysim.sim.decide import EngineChoiceError, fast_refusal
    from retrysim.sim.engine import policy_for, simulate

    scenario = retrysim.load_scenario("redis-blip").with_overrides({"duration": 5})
    policy = policy_for(scenario)
    assert fast_refusal(policy) is None
    odd = dataclasses.replace(policy, wait=wait_incrementing(start=0.1, increment=0.1))
    assert fast_refusal(odd) == "strategies the fast path does not mirror: wait_incrementing"
    assert simulate(scenario, retrying=odd, engine="auto").engine == "reference"
    with pytest.raises(EngineChoiceError, match="wait_incrementing"):
        simulate(scenario, retrying=odd, engine="fast")


def test_a_hedged_send_that_returned_an_answer_is_judged_by_the_retry_on_both_paths() -> None:
    """A policy with a strategy called as it is (equal jitter, so the fast path asks the
    retry afresh rather than by code), a retry that retries any returned value
    (``retry_unless_exception_type``), hedged sends and a 503 answer: each send's answer is
    judged on the fast path as tenacity judges it on the reference path. (Written for
    decide.py:331, which proved equivalent: see EQUIVALENT in scripts/mutate.py.)"""
    from tenacity import retry_unless_exception_type

    from retrysim.retry.policy import build_policy
    from retrysim.sim.engine import simulate
    from tests.test_fast_path import assert_identical

    scenario = parse_scenario(
        {
            "seed": 3,
            "duration": 10,
            "clients": {"count": 40, "arrival": {"kind": "uniform", "end": 8}},
            "service": {"kind": "ideal", "latency": 0.05},
            "faults": [{"kind": "outage", "start": 2, "end": 4, "answer": 503}],
            "policy": {"hedge": {"enabled": True, "max_attempts": 2, "delay": 0.01}},
        }
    )
    policy = build_policy(
        "worker",
        retry=retry_unless_exception_type(KeyError),
        max_attempts=3,
        profile="equal_jitter",
        hedge={"enabled": True, "max_attempts": 2, "delay": 0.01},
    )
    fast = simulate(scenario, retrying=policy, engine="fast")
    reference = simulate(scenario, retrying=policy, engine="reference")
    assert fast.engine == "fast"
    assert (fast.attempts["hedge"] > 0).any()  # sends were hedged
    assert_identical(fast, reference)


# -- retrysim/sim/balance.py ----------------------------------------------------------------------


def test_round_robin_starts_at_the_first_replica_and_skips_a_tried_one_in_turn() -> None:
    from retrysim.sim.balance import Balancer

    turns = Balancer(3, "round_robin", key=1)
    assert [turns.pick(7, 1) for _ in range(4)] == [0, 1, 2, 0]
    fresh = Balancer(3, "round_robin", key=1)
    # replica 0 was tried: the next in turn after it is 1 (not 2, going backwards)
    assert fresh.pick(7, 2, avoid=0b001) == 1
    assert fresh.pick(8, 2, avoid=0b010) == 2  # the turn moved past 1; 1 is skipped anyway
    assert fresh.pick(9, 2, avoid=0b111) == 0  # every replica tried: all are candidates again


def test_power_of_two_picks_the_lighter_of_two_distinct_uniform_replicas() -> None:
    """Three replicas, one idle: two distinct replicas drawn uniformly include the idle one
    two times in three. A second draw that reuses the first's number, or that always takes
    the first of the others, shifts that share to one half or one third."""
    from retrysim.sim.balance import Balancer

    balancer = Balancer(3, "power_of_two", key=11)
    balancer.outstanding[:] = [5, 5, 0]
    picks = [balancer.pick(call, attempt) for call in range(3000) for attempt in (1, 2)]
    share = picks.count(2) / len(picks)
    assert abs(share - 2 / 3) < 0.03, share  # sd of the share: sqrt(2/9 / 6000) = 0.006


# -- retrysim/sim/hedging.py ----------------------------------------------------------------------


def test_a_hedged_attempt_whose_every_send_failed_is_a_failed_attempt() -> None:
    """Every send fails (an outage the whole run): each attempt is decided once its last send
    failed, so each call retries to its stop and gives up; none is left unfinished."""
    from retrysim.sim.engine import simulate
    from tests.test_hedging_engine import hedged

    outage = [{"kind": "outage", "start": 0, "end": 100, "error": "ConnectionError"}]
    result = simulate(hedged(sends=2, clients=30, faults=outage))
    calls, attempts = result.calls, result.attempts
    assert len(calls) == 30
    assert (calls["outcome"] == rec.GAVE_UP).all()
    assert (calls["attempts"] == 3).all()  # max_attempts, each attempt decided
    assert len(attempts) == 30 * 3 * 2  # two sends an attempt, every one of them failed


def test_a_hedged_calls_group_is_forgotten_when_the_call_ends() -> None:
    """The run keeps no hedge group of a call that ended (memory grows with calls else)."""
    from retrysim.sim.engine import Engine
    from tests.test_hedging_engine import hedged

    # attempts time out (30 ms) while their sends are still open: such a call ends with its
    # group undecided, and only the end of the call lets the group go
    scenario = hedged(sends=3, clients=50, flaky=0.5).with_overrides({"clients.timeout": 0.03})
    engine = Engine(scenario)
    result = engine.run()
    assert (result.attempts["hedge"] > 0).any()
    assert engine._hedges is not None
    assert engine._hedges._groups == {}


def test_a_hedged_send_cut_at_the_deadline_decides_its_attempt_there() -> None:
    """A send whose timeout the caller's deadline cut ends exactly at the deadline: no time is
    left for the next hedge, so its failure decides the attempt then and there. (Were 0 s
    "time left", the next hedge would be due, refuse to go, and the attempt would never end.)"""
    from tests.test_tiers import deadline_chain, late_requests, run

    data = deadline_chain(True)
    # one send out when the deadline passes: the next hedge is not due before it
    data["tiers"]["service"]["policy"]["hedge"] = {"enabled": True, "max_attempts": 3, "delay": 5}
    data["tiers"]["service"]["timeout"] = 1.0  # only the deadline cuts a send short
    data["tiers"]["database"]["service"]["latency"] = 0.5  # longer than any deadline left
    result = run(data)
    cut = result.tiers[1].attempts["outcome"] == rec.TIMED_OUT
    assert cut.any()  # the premise: sends cut at the deadline
    for tier in result.tiers:  # every request at every tier ended (none left hanging below)
        assert not (tier.calls["outcome"] == rec.UNFINISHED).any(), tier.name
    assert late_requests(result) == (0, 0)


def test_a_propagated_deadline_bounds_hedged_sends_below() -> None:
    """tests/test_tiers.py's deadline chain with the middle tier hedging: a hedged send gets
    the time the caller's deadline leaves, so no work below outlives the user's give-up."""
    from tests.test_tiers import deadline_chain, late_requests, run

    data = deadline_chain(True)
    data["tiers"]["service"]["policy"]["hedge"] = {
        "enabled": True,
        "max_attempts": 3,
        "delay": 0.02,
    }
    data["tiers"]["service"]["timeout"] = 1.0  # only the deadline cuts a send short
    # a send that fails at once makes the next hedge go at once: the one left open then
    data["tiers"]["database"]["faults"] = [{"kind": "flaky", "probability": 0.5}]
    result = run(data)
    assert any((tier.attempts["hedge"] > 0).any() for tier in result.tiers)  # sends hedged
    assert late_requests(result) == (0, 0)


# -- retrysim/sim/graph.py ------------------------------------------------------------------------


def test_with_a_propagated_deadline_no_call_below_ends_after_its_caller_gave_up() -> None:
    """A retry that would start past the deadline its caller passed down is not scheduled:
    the call waits for the deadline and ends there (gRPC's DEADLINE_EXCEEDED), never later.
    Some calls below do end exactly at it (the premise: deadlines cut calls short)."""
    from tests.test_tiers import deadline_chain, run

    result = run(deadline_chain(True))
    at_deadline = 0
    for upper, tier in zip(result.tiers, result.tiers[1:], strict=False):
        gave_up = upper.attempts["end"][tier.parents[: len(tier.calls)]]
        assert np.all(tier.calls["end"] <= gave_up), tier.name
        at_deadline += int(
            np.sum((tier.calls["end"] == gave_up) & (tier.calls["outcome"] == rec.GAVE_UP))
        )
    assert at_deadline > 0


# -- retrysim/sim/routing.py ----------------------------------------------------------------------


def test_a_replicated_services_capacity_is_the_sum_of_its_replicas() -> None:
    from retrysim.sim.engine import Engine

    def capacity(replicas: int) -> float | None:
        service = {"kind": "queue", "concurrency": 4, "replicas": replicas, "latency": 0.01}
        scenario = parse_scenario({"duration": 2, "clients": {"count": 5}, "service": service})
        return Engine(scenario).capacity

    one = capacity(1)
    assert one is not None and one > 0
    assert capacity(3) == pytest.approx(3 * one)
    assert capacity(5) == pytest.approx(5 * one)


# -- retrysim/retry/hedge.py ----------------------------------------------------------------------


def test_a_hedge_that_failed_as_the_winner_answered_leaves_no_unretrieved_error() -> None:
    """Two sends finish in the same loop step: the first answers (it wins), the second
    raises. race() returns the answer and still retrieves the loser's error, so asyncio never
    reports "Task exception was never retrieved" when the loser is collected."""
    import asyncio

    from retrysim.retry.hedge import Hedging, race

    reported: list[dict[str, Any]] = []

    async def main() -> Any:
        gate = asyncio.Event()

        async def answers() -> str:
            await gate.wait()
            return "answer"

        async def fails() -> str:
            await gate.wait()
            raise ValueError("the loser")

        async def acceptable(error: BaseException | None, result: Any) -> bool:
            return error is None

        asyncio.get_running_loop().call_later(0.001, gate.set)

        def hedged(n: int) -> None:
            assert n == 2

        return await race(answers(), fails, Hedging(max_attempts=2, delay=0.0), acceptable, hedged)

    loop = asyncio.new_event_loop()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        assert loop.run_until_complete(main()) == "answer"
        gc.collect()
    finally:
        loop.close()
    assert reported == []


# -- retrysim/sim/tiers.py ------------------------------------------------------------------------


def test_a_tiers_seed_is_one_a_scenario_may_hold() -> None:
    """A tier's engine runs a scenario of its own whose seed is drawn from the run's: it must
    be a seed the schema accepts (below 2**63), whatever the run's seed and the tier."""
    from retrysim.sim.tiers import tier_seed, tier_view

    for seed in [0, 1, 2**63 - 1, *range(3, 300, 7)]:
        assert tier_seed(seed, 0) == seed
        below = [tier_seed(seed, level) for level in (1, 2, 3, 4)]
        assert all(0 <= value < 2**63 for value in below), seed
        assert len(set(below)) == 4  # each tier its own streams
        parse_scenario({"seed": below[0]})
    plain = parse_scenario({"duration": 2})
    assert tier_view(plain, 0) is plain  # no tiers: the scenario itself


# -- retrysim/retry/per_error.py ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "family"), [(499, None), (500, "server_error"), (599, "server_error"), (600, None)]
)
def test_an_http_status_is_a_server_error_from_500_to_599_inclusive(
    status: int, family: str | None
) -> None:
    """The edges of the 5xx range, as an aiohttp ``ClientResponseError`` carries them."""
    from retrysim.retry.per_error import per_error_family

    cls = type("ClientResponseError", (Exception,), {"__module__": "aiohttp.client_exceptions"})
    error = cls("status")
    error.status = status
    assert per_error_family(error) == family


def test_a_per_error_wait_shows_its_parts() -> None:
    from retrysim.retry.per_error import wait_per_error

    wait = wait_per_error(wait_fixed(1), {"rate_limited": wait_fixed(5)})
    shown = repr(wait)
    assert shown.startswith("wait_per_error(") and "rate_limited" in shown


# -- retrysim/sim/connected.py --------------------------------------------------------------------


def test_an_attempt_that_queued_for_a_connection_meets_its_own_replicas_fault() -> None:
    """Replicas behind a small connection pool: an attempt waits in the pool while others are
    routed elsewhere, and when it gets its connection it meets the faults of the replica it
    was routed to, not of the last one routed (tests/test_balance.py's law, with a pool)."""
    from tests.test_balance import replicated

    down = 1
    outage = {"kind": "outage", "start": 1, "end": 3, "replicas": [down]}
    data = replicated(3, "round_robin", faults=[outage], seed=4)
    data["clients"] |= {"processes": 1, "pool_size": 2}
    result = engine.simulate(parse_scenario(data))
    attempts = result.attempts
    assert (attempts["pool_wait"] > 0).sum() > 10  # the premise: attempts queued
    failed = attempts["outcome"] != rec.OK
    there = attempts["replica"] == down
    inside = (attempts["start"] >= 1) & (attempts["start"] < 3)
    assert failed.any()
    assert np.all(there[failed])  # every failure is the dead replica's
    assert np.all(failed[there & inside & (attempts["pool_wait"] == 0)])


# -- retrysim/retry/waits.py: the Retry-After header -----------------------------------------------


def test_an_http_librarys_retry_after_header_is_honoured() -> None:
    """retrysim/retry/waits.py: an error without a ``retry_after`` attribute but with an
    httpx-style response carrying ``Retry-After: 7`` makes the wait 7 s (capped), as an
    aiohttp-style ``headers`` does; a header of an HTTP date is ignored."""
    import types

    from retrysim.retry.waits import wait_retry_after

    def waited(error: BaseException) -> float:
        state = RetryCallState(Retrying(), None, (), {})
        state.set_exception((type(error), error, None))
        return float(wait_retry_after(wait_fixed(1), cap=5)(state))

    httpx_like = ValueError("429")
    httpx_like.response = types.SimpleNamespace(headers={"Retry-After": "3"})  # type: ignore[attr-defined]
    aiohttp_like = ValueError("503")
    aiohttp_like.headers = {"Retry-After": "60"}  # type: ignore[attr-defined]
    dated = ValueError("429")
    dated.headers = {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}  # type: ignore[attr-defined]
    assert waited(httpx_like) == 3.0
    assert waited(aiohttp_like) == 5.0  # the cap
    assert waited(dated) == 1.0  # the fallback
    assert waited(ValueError("plain")) == 1.0
