"""The proof that the engine simulates what ships.

The same seeded scenario runs twice: through the engine (tenacity's ``iter()`` stepped on a heap)
and through ``retrysim.retry``'s real decorator on a virtual-time asyncio loop. Both must agree
call by call: attempt counts, wait sequences, outcomes, errors, executed flags and times.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retrysim.model.scenario import parse_scenario
from retrysim.sim import records as rec
from retrysim.sim.engine import RunResult, simulate
from retrysim.sim.fidelity import run_with_decorators
from retrysim.sim.invariants import violations

PROFILES = ["documented", "bindu", "full_jitter", "equal_jitter", "decorrelated", "exponential"]


def _clean(x: float) -> float | None:
    return None if math.isnan(x) else x


def per_call(result: RunResult) -> dict[tuple[int, int], dict[str, Any]]:
    """(client, index) -> everything observable about that call, free of run-specific ids."""
    ids = {int(c["call"]): (int(c["client"]), int(c["index"])) for c in result.calls}
    out: dict[tuple[int, int], dict[str, Any]] = {}
    for c in result.calls:
        out[ids[int(c["call"])]] = {
            "attempts": int(c["attempts"]),
            "outcome": int(c["outcome"]),
            "error": int(c["error"]),
            "executions": int(c["executions"]),
            "start": float(c["start"]),
            "end": _clean(float(c["end"])),
            "rows": [],
        }
    a = result.attempts[np.lexsort((result.attempts["attempt"], result.attempts["call"]))]
    for row in a:
        out[ids[int(row["call"])]]["rows"].append(
            (
                int(row["attempt"]),
                _clean(float(row["wait"])),
                int(row["outcome"]),
                int(row["error"]),
                int(row["executed"]),
                float(row["start"]),
                _clean(float(row["end"])),
            )
        )
    return out


def assert_same(engine: RunResult, decorated: RunResult) -> None:
    assert violations(engine) == []
    assert violations(decorated) == []
    a, b = per_call(engine), per_call(decorated)
    assert a.keys() == b.keys()
    differ = [key for key in a if a[key] != b[key]]
    assert not differ, (
        f"{len(differ)} calls differ, e.g. {differ[0]}: {a[differ[0]]} != {b[differ[0]]}"
    )


FLEET: dict[str, Any] = {
    "seed": 3,
    "duration": 40,
    "policy": {"operation": "worker", "max_attempts": 4},
    "clients": {
        "count": 300,
        "calls_per_client": 3,
        "think_time": 2.0,
        "timeout": 1.5,
        "arrival": {"kind": "uniform", "start": 0, "end": 10},
    },
    "service": {"kind": "ideal", "latency": {"dist": "lognormal", "median": 0.3, "p99": 2.0}},
    "faults": [
        {"kind": "outage", "start": 2, "end": 4, "error": "ConnectionRefusedError"},
        {"kind": "outage", "start": 6, "end": 7, "mode": "blackhole"},
        {"kind": "flaky", "start": 0, "end": 30, "probability": 0.2},
        {"kind": "reset", "start": 0, "end": 30, "probability": 0.1},
        {
            "kind": "latency_spike",
            "start": 8,
            "end": 12,
            "extra": {"dist": "uniform", "low": 0.5, "high": 2.0},
        },
        {
            "kind": "recovery_ramp",
            "start": 12,
            "end": 16,
            "probability": 0.9,
            "error": "ConnectionResetError",
        },
    ],
}


@pytest.mark.parametrize("profile", PROFILES)
def test_engine_and_real_decorators_agree_call_by_call(profile: str) -> None:
    scenario = parse_scenario(FLEET).with_overrides({"policy.profile": profile})
    engine = simulate(scenario)
    decorated = run_with_decorators(scenario)
    # the scenario exercises what it claims to: retries, every outcome, every fault's error
    a = engine.attempts
    assert len(engine.calls) == 900 and len(a) > 1.5 * 900
    assert {rec.OK, rec.FAILED, rec.TIMED_OUT} <= set(a["outcome"].tolist())
    names = {engine.error_names[c] for c in a["error"].tolist() if c}
    assert {
        "ConnectionRefusedError",
        "ConnectionError",
        "ConnectionResetError",
        "TimeoutError",
    } <= names
    assert np.any((a["executed"] == 1) & (a["outcome"] != rec.OK))  # wasted work happens
    assert np.any(engine.calls["outcome"] == rec.GAVE_UP)
    assert_same(engine, decorated)


@pytest.mark.parametrize("profile", ["bindu", "documented"])
def test_agreement_for_storage_with_closed_loop_and_max_delay(profile: str) -> None:
    data = {
        "seed": 8,
        "duration": 25,
        "policy": {"operation": "storage", "profile": profile, "max_delay": 6.0},
        "clients": {
            "count": 80,
            "think_time": 0.5,
            "timeout": 1.0,
            "arrival": {"kind": "closed", "ramp": 3},
        },
        "service": {"kind": "ideal", "latency": {"dist": "exponential", "mean": 0.3}},
        "faults": [
            {"kind": "outage", "start": 4, "end": 9, "error": "OSError"},
            {"kind": "flaky", "probability": 0.15, "error": "ConnectionAbortedError"},
            {"kind": "reset", "probability": 0.05},
        ],
    }
    scenario = parse_scenario(data)
    engine = simulate(scenario)
    assert len(engine.calls) > 200
    assert_same(engine, run_with_decorators(scenario))


def test_agreement_with_retry_on_and_non_retryable_errors() -> None:
    data = {
        "seed": 12,
        "duration": 20,
        "policy": {
            "operation": "api",
            "profile": "full_jitter",
            "retry_on": ["ConnectionResetError", "TimeoutError"],
        },
        "clients": {"count": 120, "calls_per_client": 2, "think_time": 1, "timeout": 0.7},
        "service": {"kind": "ideal", "latency": {"dist": "normal", "mean": 0.4, "std": 0.3}},
        "faults": [
            {"kind": "flaky", "probability": 0.1, "error": "ServerError"},
            {"kind": "reset", "probability": 0.3},
        ],
    }
    scenario = parse_scenario(data)
    engine = simulate(scenario)
    names = {engine.error_names[c] for c in engine.calls["error"].tolist() if c}
    assert "ServerError" in names
    assert_same(engine, run_with_decorators(scenario))


#: 429s with a Retry-After hint all along, refusals in an outage, and timeouts (a family with
#: no table of its own): each family's attempts and waits (retrysim.retry.per_error).
PER_ERROR: dict[str, Any] = {
    "seed": 11,
    "duration": 30,
    "policy": {
        "operation": "api",
        "max_attempts": 3,
        "min_wait": 0.2,
        "max_wait": 2.0,
        "rate_limited": {"max_attempts": 8, "respect_retry_after": True, "max_wait": 5.0},
        "connection_error": {"max_attempts": 2, "min_wait": 0.05, "max_wait": 0.5},
    },
    "clients": {
        "count": 200,
        "calls_per_client": 3,
        "think_time": 1.0,
        "timeout": 1.2,
        "arrival": {"kind": "uniform", "start": 0, "end": 10},
    },
    "service": {"kind": "ideal", "latency": {"dist": "lognormal", "median": 0.05, "p99": 1.5}},
    "faults": [
        {
            "kind": "flaky",
            "start": 0,
            "end": 25,
            "probability": 0.6,
            "error": "RateLimited",
            "retry_after": 1.5,
        },
        {"kind": "outage", "start": 4, "end": 7, "error": "ConnectionRefusedError"},
    ],
}


@pytest.mark.parametrize("profile", ["documented", "decorrelated", "full_jitter"])
def test_agreement_with_per_error_policies(profile: str) -> None:
    """A 429 schedule (8 attempts, Retry-After honoured) and a refusal schedule (2 attempts,
    short waits) in one policy: the engine and the real decorators agree call by call."""
    scenario = parse_scenario(PER_ERROR).with_overrides({"policy.profile": profile})
    engine = simulate(scenario)
    names = engine.error_names
    calls, attempts = engine.calls, engine.attempts
    gave_up = calls["outcome"] == rec.GAVE_UP
    last = np.array([names[c] for c in calls["error"].tolist()])
    # each family's own limit and the policy's own (timeouts) ended calls: a call gives up at
    # its latest error's limit, or later when 429s had taken it past that limit already
    assert set(calls["attempts"][gave_up & (last == "RateLimited")].tolist()) == {8}
    for name, limit in (("ConnectionRefusedError", 2), ("TimeoutError", 3)):
        ended = calls["attempts"][gave_up & (last == name)]
        assert len(ended) and ended.min() == limit and (ended > limit).any(), name
    # every wait after a 429 honoured its 1.5 s hint
    retried = ~np.isnan(attempts["wait"])
    after_429 = attempts[retried & (attempts["error"] == names.index("RateLimited"))]
    assert len(after_429) > 100 and after_429["wait"].min() >= 1.5
    assert_same(engine, run_with_decorators(scenario))


def test_agreement_on_unfinished_calls_without_a_timeout() -> None:
    data = {
        "clients": {"count": 10, "arrival": {"kind": "uniform", "start": 0, "end": 4}},
        "service": {"kind": "ideal", "latency": {"dist": "uniform", "low": 0.1, "high": 0.3}},
        "faults": [{"kind": "outage", "start": 1, "end": 2, "mode": "blackhole"}],
    }
    scenario = parse_scenario(data)
    engine = simulate(scenario)
    assert np.any(engine.calls["outcome"] == rec.UNFINISHED)
    assert np.any(engine.calls["outcome"] == rec.SUCCEEDED)
    assert_same(engine, run_with_decorators(scenario))


def test_agreement_when_latency_equals_the_timeout() -> None:
    """An attempt exactly as slow as the timeout is not slower than it: both runs must agree.

    The engine lets it succeed; the decorated run races two asyncio timers due at the same
    instant (the server's sleep and ``wait_for``'s timeout), whose order is arbitrary.
    """
    data = {
        "policy": {"max_attempts": 2},
        "clients": {"count": 6, "timeout": 1.0},
        "service": {"kind": "ideal", "latency": 1.0},
    }
    scenario = parse_scenario(data)
    engine = simulate(scenario)
    assert np.all(engine.attempts["outcome"] == rec.OK)
    assert_same(engine, run_with_decorators(scenario))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"service": {"kind": "queue", "concurrency": 2}}, "ideal"),
        ({"clients": {"arrival": {"kind": "poisson", "rate": 1}}}, "Poisson"),
        (
            {
                "service": {"kind": "queue", "concurrency": 2},
                "faults": [{"kind": "capacity_loss", "start": 0, "end": 1, "slots": 1}],
            },
            "ideal",
        ),
    ],
)
def test_unsupported_scenarios_are_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run_with_decorators(parse_scenario(change))


def test_fidelity_mode_leaves_the_process_settings_alone() -> None:
    from retrysim.retry.settings import RetrySettings, get_settings, use_settings

    mine = RetrySettings(worker_max_attempts=9)
    use_settings(mine)
    result = run_with_decorators(
        parse_scenario({"faults": [{"kind": "outage", "start": 0, "end": 100}]}),
        settings=RetrySettings(worker_max_attempts=2),
    )
    assert int(result.calls["attempts"][0]) == 2
    assert get_settings() is mine


# --- generated scenarios ---------------------------------------------------------------------

_latency = st.one_of(
    st.builds(lambda m: {"dist": "exponential", "mean": m}, st.floats(0.01, 1)),
    st.builds(
        lambda lo, w: {"dist": "uniform", "low": lo, "high": lo + w},
        st.floats(0, 0.5),
        st.floats(0.01, 1),
    ),
    st.builds(
        lambda m, f: {"dist": "lognormal", "median": m, "p99": m * f},
        st.floats(0.01, 0.5),
        st.floats(1.5, 10),
    ),
)


@st.composite
def _ideal_scenarios(draw: st.DrawFn) -> dict[str, Any]:
    faults = []
    for _ in range(draw(st.integers(0, 3))):
        start = draw(st.floats(0, 8))
        end = start + draw(st.floats(0.1, 6))
        kind = draw(
            st.sampled_from(["outage", "blackhole", "flaky", "reset", "latency_spike", "ramp"])
        )
        if kind == "outage":
            faults.append({"kind": "outage", "start": start, "end": end})
        elif kind == "blackhole":
            faults.append({"kind": "outage", "start": start, "end": end, "mode": "blackhole"})
        elif kind == "flaky":
            faults.append({"kind": "flaky", "start": start, "probability": draw(st.floats(0, 1))})
        elif kind == "reset":
            faults.append({"kind": "reset", "start": start, "probability": draw(st.floats(0, 1))})
        elif kind == "latency_spike":
            faults.append(
                {"kind": "latency_spike", "start": start, "end": end, "extra": draw(_latency)}
            )
        else:
            faults.append({"kind": "recovery_ramp", "start": start, "end": end})
    arrival = draw(
        st.sampled_from(
            [
                {"kind": "burst", "at": 0.5},
                {"kind": "uniform", "start": 0, "end": 6},
                {"kind": "closed", "ramp": 2},
            ]
        )
    )
    clients: dict[str, Any] = {
        "count": draw(st.integers(1, 15)),
        "arrival": arrival,
        "think_time": draw(st.floats(0.2, 2)),
    }
    if arrival["kind"] != "closed" or draw(st.booleans()):
        clients["calls_per_client"] = draw(st.integers(1, 3))
    if draw(st.booleans()):
        clients["timeout"] = draw(st.floats(0.1, 2))
    return {
        "seed": draw(st.integers(0, 2**40)),
        "duration": 12,
        "policy": {
            "operation": draw(st.sampled_from(["worker", "storage", "scheduler", "api"])),
            "profile": draw(st.sampled_from(PROFILES)),
            "max_attempts": draw(st.integers(1, 5)),
            "min_wait": draw(st.floats(0, 0.5)),
        },
        "clients": clients,
        "service": {"kind": "ideal", "latency": draw(_latency)},
        "faults": faults,
    }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_ideal_scenarios())
def test_generated_scenarios_agree(data: dict[str, Any]) -> None:
    scenario = parse_scenario(data)
    assert_same(simulate(scenario), run_with_decorators(scenario))
