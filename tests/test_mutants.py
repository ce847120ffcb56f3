"""Tests written to kill mutants that once survived the whole suite.

Each test pins one behaviour a plausible edit would break silently: the memory guard's
threshold, KeyboardInterrupt not counted as a failure, no follow-up call at exactly the end of
the duration, and every call's own random stream.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import retrysim
from retrysim.retry import retry_metrics, retry_worker_operation
from retrysim.scenario import parse_scenario
from retrysim.sim import guards
from retrysim.sim.arrivals import expected_calls


def test_the_memory_guard_refuses_exactly_past_its_threshold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A guard ten times looser (or tighter) than documented fails one side of this."""
    scenario = parse_scenario({"clients": {"count": 1000}})
    need = expected_calls(scenario) * (guards.BYTES_PER_CALL + 3 * guards.BYTES_PER_ATTEMPT)
    limit = need / 0.8  # refused when need > 80% of what is available
    monkeypatch.setattr(guards, "available_memory", lambda: limit * 0.99)
    with pytest.raises(guards.ScenarioTooLargeError, match=r"clients\.count"):
        guards.check_memory(scenario, 3)
    monkeypatch.setattr(guards, "available_memory", lambda: limit * 1.01)
    guards.check_memory(scenario, 3)  # fits: no error


def test_the_memory_guard_matches_what_runs_were_measured_to_need(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Measured on this project's machine (thundering-herd, burst): 100,000 clients peak at
    462 MiB of RSS, 1,000,000 at 4.1 GiB. With 2 GiB free the first must run and the second
    must be refused; a guard ten times looser lets the second through."""
    herd = retrysim.load_scenario("thundering-herd")
    monkeypatch.setattr(guards, "available_memory", lambda: 2.0 * (1 << 30))
    guards.check_memory(herd.with_overrides({"clients.count": 100_000}), 3)
    with pytest.raises(guards.ScenarioTooLargeError):
        guards.check_memory(herd.with_overrides({"clients.count": 1_000_000}), 3)


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
