"""Behaviour of the engine's deciders (``retrysim/sim/decide.py``) its mutation run found untested.

The fast decider's rarer branches: a policy that is not the counted common shape (a delay limit,
per-error attempt limits) deciding on a cached verdict, a Retry-After hint on the counted shape,
per-error waits on it, the hedging question (``retries``); and the reference decider's care for
memory: no cycle left for the collector when a call gives up, and the collector kept running
while tenacity's loop may make them. Most tests compare the fast path with the reference path
(tenacity's own ``iter()``) record for record, the law ``tests/test_fast_path.py`` proves.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    wait_fixed,
)

from retrysim.model.scenario import Scenario, parse_scenario
from retrysim.retry.classify import register_transient, unregister_transient
from retrysim.retry.exceptions import ServerError
from retrysim.retry.policy import build_policy
from retrysim.sim import kernel
from retrysim.sim import records as rec
from retrysim.sim.engine import Engine, RunResult, simulate
from tests.test_fast_path import assert_identical, both

#: 120 calls over 8 s on an ideal 10 ms service; faults and policy per test.
BASE: dict[str, Any] = {
    "name": "decide",
    "seed": 5,
    "duration": 30,
    "clients": {"count": 120, "arrival": {"kind": "uniform", "end": 8}},
    "service": {"kind": "ideal", "latency": 0.01},
}


def scenario(policy: dict[str, Any], faults: list[dict[str, Any]], **more: Any) -> Scenario:
    return parse_scenario({**BASE, "policy": policy, "faults": faults, **more})


def names(result: RunResult, column: np.ndarray) -> list[str]:
    return [result.error_names[int(code)] for code in column]


def gave_up_on(result: RunResult) -> list[str]:
    calls = result.calls
    return names(result, calls["error"][calls["outcome"] == rec.GAVE_UP])


def retried_after(result: RunResult, name: str) -> np.ndarray:
    """The waits that followed attempts failed with ``name`` (NaN where none followed)."""
    attempts = result.attempts
    return np.asarray(attempts["wait"][attempts["error"] == result.error_names.index(name)])


# -- the fast path's general decide: a policy that is not the counted common shape ---------------


def test_a_familys_own_attempt_limit_ends_its_calls_alike_on_both_paths() -> None:
    """Per-error attempt limits (connection errors: 2, the rest: 4) read the family of the
    attempt's own error: a call failing with connection errors gives up after 2 attempts."""
    policy = {"max_attempts": 4, "min_wait": 0.1, "max_wait": 0.2}
    policy["connection_error"] = {"max_attempts": 2}  # type: ignore[assignment]
    faults = [
        {"kind": "outage", "start": 2, "end": 4, "error": "ConnectionRefusedError"},
        {"kind": "flaky", "start": 5, "end": 7, "probability": 0.9, "error": "TimeoutError"},
    ]
    fast, reference = both(scenario(policy, faults))
    assert_identical(fast, reference)
    calls = fast.calls
    ended = np.asarray(gave_up_on(fast))
    attempts = calls["attempts"][calls["outcome"] == rec.GAVE_UP]
    assert set(attempts[ended == "ConnectionRefusedError"].tolist()) == {2}
    assert set(attempts[ended == "TimeoutError"].tolist()) == {4}


def test_a_delay_limited_policy_gives_up_on_an_error_it_does_not_retry_and_takes_answers() -> None:
    """With a delay limit (stop_any: not the counted shape) a ServerError, which the
    documented retry does not retry, ends its call at once, and a 503 answered as a value is
    the call's result: both paths alike."""
    policy = {"max_attempts": 4, "min_wait": 0.1, "max_wait": 0.2, "max_delay": 20}
    faults = [
        {"kind": "outage", "start": 2, "end": 3, "answer": 503},
        {"kind": "flaky", "start": 4, "end": 6, "probability": 0.5, "error": "ServerError"},
        {"kind": "outage", "start": 6.5, "end": 7, "error": "ConnectionResetError"},
    ]
    fast, reference = both(scenario(policy, faults))
    assert_identical(fast, reference)
    assert "ServerError" in gave_up_on(fast)
    calls, attempts = fast.calls, fast.attempts
    server_errors = calls["error"] == fast.error_names.index("ServerError")
    assert (calls["attempts"][server_errors & (calls["outcome"] == rec.GAVE_UP)] == 1).all()
    answered = attempts["error"] == fast.error_names.index("result:503")
    assert answered.any() and (attempts["outcome"][answered] == rec.OK).all()
    assert (retried_after(fast, "ConnectionResetError") > 0).any()


@pytest.fixture
def counted_predicate() -> Iterator[list[str]]:
    """A predicate registered as transient that retries ServerError, noting each error asked."""
    asked: list[str] = []

    def server_errors_are_transient(error: BaseException) -> bool:
        asked.append(type(error).__name__)
        return isinstance(error, ServerError)

    register_transient(server_errors_are_transient)
    try:
        yield asked
    finally:
        unregister_transient(server_errors_are_transient)


def test_the_fast_path_asks_a_registered_predicate_once_a_run_per_kind_of_error(
    counted_predicate: list[str],
) -> None:
    """register_transient's promise: the fast path asks a predicate once a run for each kind of
    simulated error (here on a delay-limited policy, not the counted shape), while tenacity's
    loop asks it of every failed attempt; the decisions are the same."""
    policy = {"max_attempts": 3, "min_wait": 0.1, "max_wait": 0.2, "max_delay": 20}
    faults = [{"kind": "flaky", "start": 2, "end": 6, "probability": 0.5, "error": "ServerError"}]
    fast = simulate(scenario(policy, faults), engine="fast")
    on_fast = list(counted_predicate)
    counted_predicate.clear()
    reference = simulate(scenario(policy, faults), engine="reference")
    assert_identical(fast, reference)
    failed = int((fast.attempts["error"] == fast.error_names.index("ServerError")).sum())
    assert failed > 10
    assert on_fast == ["ServerError"]
    assert counted_predicate == ["ServerError"] * failed


# -- the fast path's counted decide: stop_after_attempt and mirrors only --------------------------


def test_per_error_waits_follow_the_attempts_own_error_on_a_counted_policy() -> None:
    """Per-error waits without per-error limits keep the counted shape: a connection error's
    retry waits its family's 3 s, a timeout's the policy's 0.1 to 0.2 s."""
    policy = {"max_attempts": 3, "min_wait": 0.1, "max_wait": 0.2}
    policy["connection_error"] = {"min_wait": 3, "max_wait": 3}  # type: ignore[assignment]
    faults = [
        {"kind": "outage", "start": 2, "end": 2.5, "error": "ConnectionRefusedError"},
        {"kind": "flaky", "start": 4, "end": 6, "probability": 0.5, "error": "TimeoutError"},
    ]
    fast, reference = both(scenario(policy, faults))
    assert_identical(fast, reference)
    connection = retried_after(fast, "ConnectionRefusedError")
    timeout = retried_after(fast, "TimeoutError")
    connection, timeout = connection[~np.isnan(connection)], timeout[~np.isnan(timeout)]
    assert len(connection) and (connection == 3).all()
    assert len(timeout) and (timeout <= 0.2).all()


def test_a_retry_after_hint_not_honoured_is_retried_as_any_rate_limit_is() -> None:
    """A 429 with a Retry-After hint, under a counted policy that does not honour hints: the
    error (made with its hint) is retried after the policy's own wait, on both paths alike."""
    policy = {"max_attempts": 4, "min_wait": 0.1, "max_wait": 0.2}
    faults = [
        {"kind": "flaky", "start": 1, "end": 7, "probability": 0.5, "error": "RateLimited",
         "retry_after": 3},
    ]  # fmt: skip
    fast, reference = both(scenario(policy, faults))
    assert_identical(fast, reference)
    waits = retried_after(fast, "RateLimited")
    assert (waits[~np.isnan(waits)] <= 0.2).all() and (~np.isnan(waits)).sum() > 10
    assert set(gave_up_on(fast)) <= {"RateLimited"}
    assert (fast.calls["outcome"] == rec.SUCCEEDED).sum() > 100


# -- the hedging question: would the retry retry this send's outcome? ----------------------------

HEDGE = {"enabled": True, "max_attempts": 3, "delay": 0.05}


def hedged(faults: list[dict[str, Any]], **policy: Any) -> Scenario:
    """Hedged calls (3 sends, 50 ms apart) to a heavy-tailed service (median 20 ms, p99 1 s)."""
    return scenario(
        {"operation": "api", "max_attempts": 3, "min_wait": 0.05, "max_wait": 0.1,
         "hedge": HEDGE, **policy},
        faults,
        service={"kind": "ideal", "latency": {"dist": "lognormal", "median": 0.02, "p99": 1.0}},
    )  # fmt: skip


def test_a_served_hedge_wins_its_attempt_under_a_retry_of_every_exception() -> None:
    """A send that was served returns None, which ``retry_if_exception_type(Exception)`` does not
    retry: it wins its hedged attempt (the other sends cancelled), on both paths alike."""
    policy = build_policy(
        "api",
        retry=retry_if_exception_type(Exception),
        max_attempts=3,
        min_wait=0.05,
        max_wait=0.1,
        hedge=HEDGE,
    )
    plan = hedged([{"kind": "flaky", "probability": 0.2}])
    fast = simulate(plan, retrying=policy, engine="fast")
    reference = simulate(plan, retrying=policy, engine="reference")
    assert_identical(fast, reference)
    cancelled = fast.attempts["outcome"] == rec.CANCELLED
    assert cancelled.any()
    assert (fast.calls["outcome"] == rec.SUCCEEDED).sum() > 100


def test_a_failed_hedge_sends_the_next_when_strategies_run_as_they_are() -> None:
    """Honouring Retry-After puts the fast path on strategies called as they are (no cached
    verdicts): a send failed with an error the retry retries still sends the next hedge at
    once, and the attempt is decided as tenacity decides it."""
    faults = [{"kind": "flaky", "probability": 0.4, "error": "ConnectionResetError"}]
    plan = hedged(faults, respect_retry_after=True)
    fast, reference = both(plan)
    assert_identical(fast, reference)
    hedges = fast.attempts["hedge"]
    assert (hedges > 0).any()
    assert (fast.calls["outcome"] == rec.SUCCEEDED).sum() > 100


# -- memory: what a call leaves behind -----------------------------------------------------------


def _alive() -> list[object]:
    return [o for o in gc.get_objects() if isinstance(o, RetryCallState | BaseException)]


def _left_behind(run: Any) -> tuple[Any, list[object]]:
    """What ``run()`` returns, and the tenacity states and errors it left alive, with the
    cycle collector off (so only what reference counting frees is freed)."""
    gc.collect()
    gc.disable()
    try:
        before = _alive()  # held, so none of their ids can be reused
        seen = {id(o) for o in before}
        result = run()
        left = [o for o in _alive() if id(o) not in seen]
    finally:
        gc.enable()
    return result, left


def _errors_alive_mid_run(
    plan: Scenario, monkeypatch: pytest.MonkeyPatch
) -> tuple[RunResult, list[int]]:
    """The fast run of ``plan``, and how many errors it kept alive at each progress report."""
    monkeypatch.setattr(kernel, "REPORT_EVERY", 64)
    counts: list[int] = []
    gc.collect()
    before = [o for o in gc.get_objects() if isinstance(o, BaseException)]
    seen = {id(o) for o in before}

    def report(done: int, total: int) -> None:
        alive = [o for o in gc.get_objects() if isinstance(o, BaseException) and id(o) not in seen]
        counts.append(len(alive))

    result = Engine(plan, engine="fast", progress=report).run()
    return result, counts


def test_the_reference_path_leaves_no_error_behind_when_a_call_gives_up_on_one() -> None:
    """tenacity re-raises the last error of a call that gave up, through frames that hold the
    call's state: the reference decider breaks that cycle, so it is freed without the
    collector."""
    plan = scenario(
        {"max_attempts": 3, "min_wait": 0.1, "max_wait": 0.2},
        [{"kind": "flaky", "start": 0, "probability": 0.7}],
        clients={"count": 30},
    )
    result, left = _left_behind(lambda: simulate(plan, engine="reference"))
    assert rec.GAVE_UP in result.calls["outcome"].tolist()
    assert left == []


def test_the_reference_path_leaves_no_retry_error_behind_when_answers_run_out() -> None:
    """Attempts running out on an answer the retry rejects: tenacity raises RetryError (there is
    no error of the attempt's to re-raise); it, too, is freed without the collector."""
    plan = scenario(
        {"max_attempts": 3},
        [{"kind": "outage", "start": 0, "end": 30, "answer": 503}],
        clients={"count": 20},
    )
    policy = Retrying(
        retry=retry_if_result(lambda r: r == 503), stop=stop_after_attempt(2), wait=wait_fixed(0.1)
    )
    result, left = _left_behind(lambda: simulate(plan, retrying=policy))
    assert result.engine == "reference"
    assert (result.calls["outcome"] == rec.GAVE_UP).all()
    assert left == []


def test_the_collector_runs_during_a_reference_run_and_not_during_a_fast_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """tenacity's loop makes reference cycles (it raises through frames), so a reference run
    keeps the collector on (its young threshold raised); a fast run makes none and switches it
    off. Seen from the run's progress reports, the caller's collector back on afterwards."""
    monkeypatch.setattr(kernel, "REPORT_EVERY", 64)
    plan = scenario({"max_attempts": 3}, [{"kind": "flaky", "start": 0, "probability": 0.3}])
    states: dict[str, set[tuple[bool, int]]] = {}
    assert gc.isenabled()
    for engine in ("fast", "reference"):
        seen = states.setdefault(engine, set())

        def report(done: int, total: int, seen: set[tuple[bool, int]] = seen) -> None:
            seen.add((gc.isenabled(), gc.get_threshold()[0]))

        Engine(plan, engine=engine, progress=report).run()
        assert gc.isenabled()
    young = max(gc.get_threshold()[0], kernel.GC_YOUNG_THRESHOLD)
    assert states["reference"] == {(True, young)}
    assert {enabled for enabled, _ in states["fast"]} == {False}


def test_a_call_waiting_after_a_hinted_error_does_not_hold_the_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The counted fast path makes a 429's error (with its hint) to ask the retry, then lets it
    go: thousands of calls waiting out their backoff hold no error between attempts."""
    faults = [
        {"kind": "flaky", "start": 1, "end": 7, "probability": 0.5, "error": "RateLimited",
         "retry_after": 3},
    ]  # fmt: skip
    plan = scenario({"max_attempts": 4, "min_wait": 1, "max_wait": 2}, faults)
    result, counts = _errors_alive_mid_run(plan, monkeypatch)
    assert (~np.isnan(retried_after(result, "RateLimited"))).sum() > 10
    assert len(counts) > 3
    assert counts == [0] * len(counts)


def test_a_call_that_gave_up_does_not_hold_its_last_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On strategies called as they are the fast path keeps the attempt's error on the call
    while deciding; a call that gave up drops it, though the call object lives on (here its
    timed-out request is still at the server for 1.5 s)."""
    plan = scenario(
        {"max_attempts": 2, "min_wait": 0.1, "max_wait": 0.2, "respect_retry_after": True},
        [],
        clients={"count": 120, "timeout": 0.5, "arrival": {"kind": "uniform", "end": 8}},
        service={"kind": "ideal", "latency": 2.0},
    )
    result, counts = _errors_alive_mid_run(plan, monkeypatch)
    assert set(gave_up_on(result)) == {"TimeoutError"}
    assert len(counts) > 3
    assert counts == [0] * len(counts)
