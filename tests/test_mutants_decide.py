"""Behaviour of the engine's deciders (``retrysim/sim/decide.py``) that the module's mutation
run found untested.

tests/test_fast_path.py proves the fast decider against the reference one on the bundled and
generated scenarios; these pin what those runs never reach: the slim call state as tenacity's
own strategies read it when it is fresh (or begun anew), a policy whose retry retries a served
request's None while a strategy is called as it is, a run with more than one answer, the
garbage collector kept out of a fast run, and the decider's answer to "attempt again?".
"""

from __future__ import annotations

import gc
from typing import Any

import pytest
import tenacity

from retrysim.model.scenario import Scenario, parse_scenario
from retrysim.retry.exceptions import ConflictError
from retrysim.retry.per_error import stop_after_attempt_per_error, wait_per_error
from retrysim.retry.policy import build_policy
from retrysim.retry.settings import RetrySettings
from retrysim.sim import compiled as compiled_module
from retrysim.sim.call import Call, ReferenceCall
from retrysim.sim.decide import SUCCEEDED_NOW, FastCallState, decider_for, fast_refusal
from retrysim.sim.engine import policy_for, simulate
from retrysim.sim.failures import CODE_NAMES, Answers
from tests.test_fast_path import assert_identical, both

#: 30 calls to an ideal service; from 1 s to 2 s an outage fails them (or answers, when a test
#: gives the fault an ``answer``).
SMALL: dict[str, Any] = {
    "name": "small",
    "seed": 5,
    "duration": 6,
    "clients": {"count": 30, "arrival": {"kind": "uniform", "end": 4}},
    "service": {"kind": "ideal", "latency": 0.01},
    "faults": [{"kind": "outage", "start": 1, "end": 2, "error": "ConnectionError"}],
}


def small(**changes: Any) -> Scenario:
    return parse_scenario({**SMALL, **changes})


def _fresh_pair(start: float) -> tuple[Any, tenacity.RetryCallState]:
    """(the fast path's state of a call begun at ``start``, tenacity's state of one): ours as
    Any, as tenacity's strategies are typed for their own state only."""
    ours = FastCallState(key=7, call=3, start_time=start)
    theirs = tenacity.RetryCallState(tenacity.Retrying(), None, (), {})
    theirs.start_time = start
    return ours, theirs


def _assert_reads_as_tenacity(ours: FastCallState, theirs: tenacity.RetryCallState) -> None:
    """Every attribute a strategy called as it is may read (see decide.MIRRORED) is tenacity's."""
    for name in ("attempt_number", "outcome", "outcome_timestamp", "seconds_since_start"):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert type(ours.upcoming_sleep) is type(theirs.upcoming_sleep)
    assert ours.upcoming_sleep == theirs.upcoming_sleep


def test_a_fresh_call_state_reads_as_tenacitys_fresh_call_state() -> None:
    """A call state just made is what tenacity's ``RetryCallState`` is before any attempt
    ended: attempt 1, no outcome, no outcome time (so no seconds since start), no sleep coming;
    tenacity's own strategies called on it (as the fast path calls the ones it does not
    mirror) answer as on tenacity's state."""
    ours, theirs = _fresh_pair(start=4.0)
    _assert_reads_as_tenacity(ours, theirs)
    assert tenacity.stop_after_attempt(1)(ours) == tenacity.stop_after_attempt(1)(theirs)
    with pytest.raises(RuntimeError, match="seconds_since_start"):
        tenacity.stop_after_delay(1.0)(ours)  # as tenacity's: no attempt has ended yet


def test_seconds_since_start_is_the_outcome_time_less_the_start() -> None:
    """Once an attempt ended, ``seconds_since_start`` is its time since the call began, as
    tenacity counts it: tenacity's delay stops, called on the slim state, stop when they
    would on tenacity's."""
    for elapsed in (0.0, 0.5, 1.0, 2.75, 3.0, 10.0):
        ours, theirs = _fresh_pair(start=4.0)
        ours.outcome_timestamp = theirs.outcome_timestamp = 4.0 + elapsed
        ours.upcoming_sleep = theirs.upcoming_sleep = 0.25
        assert ours.seconds_since_start == theirs.seconds_since_start == elapsed
        for stop in (tenacity.stop_after_delay(2.75), tenacity.stop_before_delay(3.0)):
            assert stop(ours) == stop(theirs), (stop, elapsed)


def test_a_fresh_call_state_has_no_error_for_the_per_error_mirrors() -> None:
    """Before an attempt ended there is no error: the per-error stop and wait mirrors answer
    as the per-error strategies do on tenacity's fresh state (the policy's own limit and wait,
    not a connection error's)."""
    stop = stop_after_attempt_per_error(5, {"connection_error": 1})
    wait = wait_per_error(tenacity.wait_fixed(0.5), {"connection_error": tenacity.wait_fixed(9)})
    assert CODE_NAMES[1] == "ConnectionError"  # the first error code is a connection error's
    ours, theirs = _fresh_pair(start=0.0)
    assert stop(theirs) is False and wait(theirs) == 0.5
    assert compiled_module.compiled(stop)(ours) is False
    assert compiled_module.compiled(wait)(ours) == 0.5


def test_begin_makes_a_used_call_state_fresh() -> None:
    """``begin`` starts a new call on a state that held another: it reads as a state just made
    for the new call (tenacity's attributes, no error, and the new call's jitter stream)."""
    used = FastCallState(key=1, call=1, start_time=0.0)
    used.attempt_number, used.error_code = 4, 5
    used.outcome_timestamp, used.upcoming_sleep = 3.0, 2.0
    used.failure = TimeoutError()
    used.uniform(0.0, 1.0)
    used.begin(7, 3, 4.0)
    made = FastCallState(key=7, call=3, start_time=4.0)
    _, theirs = _fresh_pair(start=4.0)
    _assert_reads_as_tenacity(used, theirs)
    assert (used.failure, used.error_code) == (made.failure, made.error_code)
    stop = stop_after_attempt_per_error(5, {"connection_error": 1, "timeout_error": 1})
    assert compiled_module.compiled(stop)(used) is False  # no error yet: the policy's limit
    assert [used.uniform(0.0, 1.0) for _ in range(3)] == [made.uniform(0.0, 1.0) for _ in range(3)]


def test_a_served_none_retried_beside_a_retry_after_wait_is_the_same_on_both_paths() -> None:
    """A policy whose retry retries a returned None (tenacity's ``retry_unless_exception_type``
    says yes to a result) with Retry-After honoured (``wait_retry_after``, called as it is, reads
    the attempt's outcome): every served request is retried until the attempts run out, on the
    fast path exactly as on the reference path."""
    policy = build_policy(
        "api",
        RetrySettings.defaults(),
        retry=tenacity.retry_unless_exception_type(ConflictError),
        max_attempts=3,
        min_wait=0.1,
        max_wait=0.2,
        respect_retry_after=True,
    )
    assert fast_refusal(policy) is None
    fast, reference = both(small(), retrying=policy)
    assert set(fast.attempts["attempt"].tolist()) == {1, 2, 3}  # every call retried its None
    assert "result:None" in {fast.error_names[int(code)] for code in fast.calls["error"]}
    assert_identical(fast, reference)


def test_two_answers_are_each_the_calls_result_on_the_fast_path() -> None:
    """A run with two answers (two faults answering 503 and 429 instead of failing), under a
    policy of mirrors that never retries a result: each answer is its call's result, on the
    fast path exactly as on the reference path."""
    scenario = small(
        faults=[
            {"kind": "outage", "start": 1, "end": 2, "answer": 503},
            {"kind": "outage", "start": 2.5, "end": 3.5, "answer": 429},
        ]
    )
    assert fast_refusal(policy_for(scenario)) is None
    fast, reference = both(scenario)
    results = {fast.error_names[int(code)] for code in fast.attempts["error"]}
    assert {"result:503", "result:429"} <= results
    assert_identical(fast, reference)


def test_the_garbage_collector_stays_out_of_a_fast_run() -> None:
    """The fast path makes no reference cycles, so the collector is off while it runs (and
    back on after); the reference path, whose tenacity raises through frames, keeps it on."""
    seen: dict[str, set[bool]] = {"fast": set(), "reference": set()}
    assert gc.isenabled()
    for engine, states in seen.items():

        def progress(done: int, total: int, states: set[bool] = states) -> None:
            states.add(gc.isenabled())

        simulate(small(), engine=engine, progress=progress)
        assert gc.isenabled()
    assert seen == {"fast": {False}, "reference": {True}}


def test_a_call_begun_or_back_from_its_wait_attempts_again_on_either_path() -> None:
    """``again`` answers the engine's "attempt now?": yes for a call just begun and for one back
    from a wait, on the fast decider as tenacity's ``iter()`` answers it on the reference one."""
    policy = policy_for(small())
    answers = Answers()

    def clock() -> float:
        return 1.0

    fast = decider_for(policy, "fast", clock, 11, answers)
    reference = decider_for(policy, "reference", clock, 11, answers)
    assert (fast.name, reference.name) == ("fast", "reference")
    reference.start()
    for decider, kind in ((fast, Call), (reference, ReferenceCall)):
        call = kind(0, 0, 0)
        decider.begin(call, None)
        assert decider.again(call) is True
    call = Call(1, 0, 1)
    fast.begin(call, None)
    wait = fast.decide(call, CODE_NAMES.index("ConnectionError"), None, None, 1.0)
    assert wait >= 0  # a connection error is retried after a wait
    assert fast.again(call) is True
    assert fast.decide(call, 0, None, None, 1.5) == SUCCEEDED_NOW
    fast.end(call)
