"""Tests written to kill mutants of ``retrysim/sim/foreign.py`` that survived its own tests.

The mutation run of ``retrysim/sim/`` (docs/mutation.md) left these edits of the module that
turns a user's own tenacity policy into a retrysim policy alive: each test below pins
behaviour its tests did not hold: what probing reads of a stop's time and attempt limits
and of a wait's range, the notes it writes, how strategies are described, how the profile a
policy registers behaves when a scenario or the settings preview names it, and how a policy
with no attempt limit is capped. Every test asserts what a caller sees (probed numbers, a
description, a run's waits, a document), never the text of a mutated line.
"""

from __future__ import annotations

import contextvars
import dataclasses
import random
from typing import Any

import backoff
import numpy as np
import pytest
import tenacity
from tenacity import (
    Retrying,
    retry_if_exception_message,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    stop_after_delay,
    stop_any,
    stop_before_delay,
    wait_exponential,
    wait_fixed,
    wait_random_exponential,
)

from retrysim.model.scenario import parse_scenario
from retrysim.render.settings import settings_document
from retrysim.results.facts import retried_errors
from retrysim.retry.classify import retry_if_transient
from retrysim.retry.profiles import profile_colour
from retrysim.sim.clock import current_stream
from retrysim.sim.engine import simulate
from retrysim.sim.foreign import (
    PolicyTypeError,
    describe,
    foreign_policy,
    policy_label,
    probe,
    tenacity_policy,
)
from retrysim.sim.policy import policy_for


def _down(policy: dict[str, Any]) -> dict[str, Any]:
    """Two clients calling at 1 s into a dependency that is down for the whole run."""
    return {
        "seed": 1,
        "duration": 20,
        "clients": {"count": 2, "arrival": {"kind": "burst", "at": 1}},
        "service": {"kind": "ideal", "latency": 0.1},
        "faults": [{"kind": "outage", "start": 0, "end": 100}],
        "policy": policy,
    }


# --- the profile a user's policy registers ---------------------------------------------------


def test_a_scenario_naming_a_registered_policy_waits_and_reports_its_waits() -> None:
    """Once a policy is made, a scenario may name its profile (``custom:NAME``): the run
    waits the user's own wait (0.5 s), and the policy reports that wait, not the scenario's
    ``min_wait`` of 2 s as a floor (the user's wait is not floored by retrysim)."""
    foreign_policy(Retrying(stop=stop_after_attempt(3), wait=wait_fixed(0.5)), "mut_half")
    scenario = parse_scenario(
        _down({"profile": "custom:mut_half", "max_attempts": 3, "min_wait": 2, "max_wait": 10})
    )
    result = simulate(scenario)
    waits = result.attempts["wait"][result.attempts["attempt"] < 3]
    assert len(waits) == 4 and np.allclose(waits, 0.5)
    policy = policy_for(scenario)
    assert [policy.wait_range(n) for n in (1, 2)] == [(0.5, 0.5), (0.5, 0.5)]


def test_the_settings_preview_of_a_registered_policy_shows_its_formula_and_schedule() -> None:
    """``retrysim settings --profile custom:NAME`` shows the policy's wait as its formula,
    says min_wait means nothing there, and lists the probed waits retry by retry."""
    foreign_policy(Retrying(wait=wait_exponential(multiplier=0.1, max=100)), "mut_doubling")
    document = settings_document(env_file=None, profile="custom:mut_doubling")
    shown = document["profile"]
    assert shown["formula"] == "wait_exponential(multiplier=0.1, min=0, max=100, exp_base=2)"
    assert "your policy" in shown["min_wait_means"]
    rows = document["operations"]["worker"]["schedule"]  # the settings' 3 attempts: 2 waits
    assert [row["min_wait"] for row in rows] == pytest.approx([0.1, 0.2])
    assert [row["max_wait"] for row in rows] == pytest.approx([0.1, 0.2])


def test_a_registered_policy_has_a_colour_of_its_own_in_figures() -> None:
    """Figures colour a registered policy's profile with its own colour, not the fallback."""
    foreign_policy(Retrying(stop=stop_after_attempt(2)), "mut_colour")
    colour = profile_colour("custom:mut_colour", "fallback")
    assert colour != "fallback" and colour.startswith("#") and len(colour) == 7


def test_the_profile_retries_what_the_policy_retries() -> None:
    """A policy that retries only timeouts: its profile says it retries a TimeoutError and
    not a ConnectionError, and the report's retried errors name TimeoutError alone."""
    policy = foreign_policy(
        Retrying(stop=stop_after_attempt(3), retry=retry_if_exception_type(TimeoutError)),
        "mut_timeouts",
    )
    profile = policy.profile_object
    assert profile.retries(TimeoutError("t")) is True
    assert profile.retries(ConnectionError("c")) is False
    scenario = parse_scenario(_down({"max_attempts": 3}))
    assert retried_errors(scenario, policy) == ["TimeoutError"]


def test_the_numbers_a_policy_reports_are_its_probed_waits_without_jitter() -> None:
    """The policy's document gives the shortest and longest probed wait as min_wait and
    max_wait, and no retrysim jitter (the wait's randomness is the policy's own)."""
    described = foreign_policy(
        Retrying(stop=stop_after_attempt(4), wait=wait_exponential(multiplier=0.5, max=4)),
        "mut_numbers",
    ).describe()
    assert (described["min_wait"], described["max_wait"], described["jitter"]) == (0.5, 4, 0)


def test_no_attempt_limit_ends_at_the_records_limit_and_a_limit_is_kept() -> None:
    """A policy without an attempt limit gets one at 10,000 attempts (what records hold): a
    call that always fails is tried 10,000 times and gives up; a policy with a limit keeps
    its own stop object, untouched."""
    calls = [0]

    def always_fails() -> str:
        calls[0] += 1
        if calls[0] > 10_000:
            return "tried past the limit"
        raise ConnectionError("down")

    unlimited = foreign_policy(Retrying(), "mut_unlimited")
    with pytest.raises(ConnectionError):
        unlimited.retrying(sleep=lambda seconds: None)(always_fails)
    assert calls[0] == 10_000
    stop = stop_after_attempt(3)
    assert foreign_policy(Retrying(stop=stop), "mut_limited").stop is stop


def test_probed_findings_cannot_be_changed() -> None:
    """What probing found is a frozen record: a caller cannot edit a policy's numbers."""
    found = probe(Retrying(stop=stop_after_attempt(3)), "frozen")
    with pytest.raises(dataclasses.FrozenInstanceError):
        found.max_attempts = 5  # type: ignore[misc]


# --- probing: attempts, time limits, waits ---------------------------------------------------


def test_twelve_retries_are_probed_and_later_ones_take_the_twelfths_range() -> None:
    """Probing asks the wait before retries 1 to 12; a later retry is shown with the
    twelfth's range (a doubling wait is 2^(n-1) s up to 2048 s, then stays there)."""
    retrying = Retrying(stop=stop_after_attempt(30), wait=wait_exponential(max=10**6))
    found = probe(retrying, "doubling")
    assert found.wait_ranges == tuple((2.0 ** (n - 1), 2.0 ** (n - 1)) for n in range(1, 13))
    policy = foreign_policy(retrying, "mut_doubling_late")
    assert policy.wait_range(20) == (2048.0, 2048.0)


def test_a_time_limit_is_found_and_attempt_limits_are_not_time_limits() -> None:
    """A stop after 0.5 s has that time limit and no attempt limit; a stop of attempts only
    has no time limit; a stop before 30 s (counting the sleep to come) is a 30 s limit."""
    found = probe(Retrying(stop=stop_after_delay(0.5)), "half")
    assert found.max_delay == pytest.approx(0.5) and not found.attempts_limited
    assert probe(Retrying(stop=stop_after_attempt(3)), "three").max_delay is None
    assert probe(Retrying(stop=stop_before_delay(30)), "before").max_delay == pytest.approx(30)


def test_a_policy_that_never_retries_has_one_attempt_and_no_time_limit() -> None:
    """A stop that ends every call after its first attempt (an attempt limit of one, or a
    time limit of zero) is one attempt, with no time limit to report."""
    for stop in (stop_after_attempt(1) | stop_after_delay(30), stop_after_delay(0)):
        found = probe(Retrying(stop=stop), "once")
        assert (found.max_attempts, found.attempts_limited, found.max_delay) == (1, True, None)


def test_the_largest_attempt_limit_is_found() -> None:
    """An attempt limit of 10,000 (the most records hold) is found as that limit."""
    found = probe(Retrying(stop=stop_after_attempt(10_000)), "most")
    assert (found.max_attempts, found.attempts_limited) == (10_000, True)


def test_a_time_limit_beyond_the_probed_billion_seconds_is_no_limit() -> None:
    """Probing looks for a time limit within 1e9 s: a stop half a second past that never
    ends a call in any run, and is reported as no time limit."""
    assert probe(Retrying(stop=stop_after_delay(1e9 + 0.5)), "far").max_delay is None


class _TinyDelayStop:
    """A stop of the user's own: three attempts, or a time limit too small to bisect to."""

    def __init__(self) -> None:
        self.asked = 0

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        self.asked += 1
        seconds = retry_state.seconds_since_start or 0.0
        return retry_state.attempt_number >= 3 or seconds >= 1e-60


def test_probing_a_time_limit_asks_the_stop_a_bounded_number_of_times() -> None:
    """However small a time limit, probing asks the stop at most 205 times: three for the
    attempt limit, two for the ends of the time range, and 200 halvings of it."""
    stop = _TinyDelayStop()
    found = probe(Retrying(stop=stop), "tiny")
    assert found.max_attempts == 3
    assert found.max_delay is not None and found.max_delay < 1e-50
    assert stop.asked <= 3 + 2 + 200


def test_a_random_exponential_wait_is_probed_between_its_floor_and_its_cap() -> None:
    """tenacity's random exponential draws uniform(min, 2^(n-1)): probing finds its range
    from the floor (0.5 s) to the exponential (1, 2, 4 s)."""
    wait = wait_random_exponential(multiplier=1, max=10, min=0.5)
    found = probe(Retrying(wait=wait, stop=stop_after_attempt(3)), "random")
    assert found.wait_ranges[:3] == ((0.5, 1.0), (0.5, 2.0), (0.5, 4.0))


def test_probing_leaves_the_callers_jitter_stream_as_it_was() -> None:
    """Probing draws from fixed jitter sources of its own; afterwards the context's jitter
    stream is the caller's again."""

    class Source:
        def random(self) -> float:
            return 0.25

        def uniform(self, a: float, b: float) -> float:
            return a + (b - a) * 0.25

    def probe_with_a_stream_set() -> object:
        source = Source()
        current_stream.set(source)
        probe(Retrying(wait=wait_random_exponential(max=4), stop=stop_after_attempt(2)), "s")
        return current_stream.get() is source

    assert contextvars.copy_context().run(probe_with_a_stream_set) is True


def test_what_a_policy_retries_is_asked_after_the_first_attempt() -> None:
    """A retry of the user's own that retries only after a first attempt: probing asks it
    as of the first failed attempt, so it retries connection errors and returned Nones."""

    def first_attempt_only(state: tenacity.RetryCallState) -> bool:
        return state.attempt_number == 1

    found = probe(Retrying(retry=first_attempt_only, stop=stop_after_attempt(3)), "first")
    assert ConnectionError in found.retried
    assert any("returned None" in note for note in found.notes)


def test_probing_notes_a_retry_that_judges_results_and_an_unseedable_wait() -> None:
    """A retry on results (not on None) is noted as judging results; a wait drawing from
    Python's own ``random`` is noted as not repeating exactly."""
    judged = probe(Retrying(retry=retry_if_result(lambda r: r == "bad")), "judged")
    assert any("judges results" in note for note in judged.notes)
    unseeded = probe(
        Retrying(wait=lambda state: random.random(), stop=stop_after_attempt(2)), "unseeded"
    )
    assert any("will not repeat exactly" in note for note in unseeded.notes)


# --- what a policy is, and its name ----------------------------------------------------------


def test_a_plain_function_is_no_policy_and_a_backoff_decorated_one_is() -> None:
    """A function with no retry decorator is refused with its type; one decorated with
    ``@backoff.on_exception`` is translated to the tenacity policy it means."""

    def plain() -> None:
        return None

    with pytest.raises(PolicyTypeError, match="is of type function"):
        tenacity_policy(plain)

    @backoff.on_exception(
        backoff.constant, ConnectionError, interval=0.25, max_tries=3, jitter=None
    )
    def fetch() -> None:
        return None

    policy = foreign_policy(fetch, "mut_backoff")
    assert (policy.max_attempts, policy.wait_range(1)) == (3, (0.25, 0.25))


class _PolicyHolder:
    """An object of the user's own holding a Retrying as ``retry``, and callable."""

    def __init__(self) -> None:
        self.retry = Retrying(stop=stop_after_attempt(2))

    def __call__(self) -> None:
        return None


def test_a_policy_given_as_an_object_is_named_by_its_class() -> None:
    """A Retrying, or a callable object of the user's that has a module but no qualified
    name, is labelled by its class; a decorated function by ``module:function``."""
    assert policy_label(Retrying()) == "Retrying"
    assert policy_label(_PolicyHolder()) == "_PolicyHolder"
    assert policy_label(_PolicyHolder) == f"{__name__}:_PolicyHolder"


# --- describing strategies -------------------------------------------------------------------


def test_tenacitys_strategies_are_described_by_their_numbers_and_error_types() -> None:
    """Error types are named, alone or as a tuple; function-valued fields, unset (None)
    fields are left out; an empty composition still names its class."""
    assert describe(retry_if_exception_type(ConnectionError)) == (
        "retry_if_exception_type(exception_types=ConnectionError)"
    )
    assert describe(retry_if_exception_type((ConnectionError, TimeoutError))) == (
        "retry_if_exception_type(exception_types=(ConnectionError, TimeoutError))"
    )
    assert describe(retry_if_exception_message(match="busy")) == "retry_if_exception_message()"
    assert describe(stop_any()) == "stop_any(stops=())"


def test_flags_and_huge_numbers_are_described_as_a_user_reads_them() -> None:
    """A flag reads True, not 1; tenacity's unbounded default cap (about 4.6e18) reads inf;
    a limit of exactly 1e18 s is still a number."""
    assert describe(retry_if_transient(serialization=True)) == (
        "retry_if_transient(serialization=True)"
    )
    assert describe(wait_exponential()) == (
        "wait_exponential(multiplier=1, min=0, max=inf, exp_base=2)"
    )
    assert describe(stop_after_delay(1e18)) == "stop_after_delay(max_delay=1e+18)"


def _own_stop(state: tenacity.RetryCallState) -> bool:
    return state.attempt_number >= 2


class _OwnWait:
    def __call__(self, state: tenacity.RetryCallState) -> float:
        return 0.1


def test_the_users_own_strategies_are_described_by_their_names() -> None:
    """A function is named by its qualified name, an object by its class's."""
    assert describe(_own_stop) == "_own_stop (your own; probed)"
    assert describe(_OwnWait()) == "_OwnWait (your own; probed)"
