"""Fault strategies alone (like tenacity's strategy tests), then each fault kind in a run."""

from __future__ import annotations

import math
import typing
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from retrysim.model.scenario import (
    ERROR_NAMES,
    Constant,
    Fault,
    fault_windows,
    parse_scenario,
)
from retrysim.results import metrics
from retrysim.retry.exceptions import ConflictError, RateLimitedError, ServerError
from retrysim.sim import records as rec
from retrysim.sim.engine import RunResult, simulate
from retrysim.sim.failures import CODE_NAMES, CODES, ERROR_CLASSES, make_error
from retrysim.sim.faults import (
    BLACKHOLE,
    PASS,
    FlakyGate,
    NotSimulatedError,
    OutageGate,
    RampGate,
    ResetRule,
    Spike,
    compile_faults,
)
from retrysim.sim.invariants import violations
from retrysim.sim.latency import sampler
from retrysim.sim.streams import RESET_POINT, stream_key

KEY = 0x1234_5678_9ABC_DEF0


def run(data: dict[str, Any]) -> RunResult:
    result = simulate(parse_scenario(data))
    assert violations(result) == []
    return result


def name_of(result: RunResult, code: int) -> str:
    return result.error_names[int(code)]


def band(p: float, n: int) -> float:
    """Five standard deviations of a binomial share."""
    return 5 * math.sqrt(max(p * (1 - p), 1e-12) / n)


# --- the error registry ----------------------------------------------------------------------


def test_error_registry_codes_and_classes() -> None:
    assert CODE_NAMES[0] == "" and CODE_NAMES[1:] == ERROR_NAMES
    assert all(CODE_NAMES[CODES[name]] == name for name in ERROR_NAMES)
    for name in ERROR_NAMES:
        error = make_error(CODES[name])
        assert type(error) is ERROR_CLASSES[name]
    assert ERROR_CLASSES["RateLimited"] is RateLimitedError
    assert ERROR_CLASSES["Conflict"] is ConflictError
    assert ERROR_CLASSES["ServerError"] is ServerError
    hinted = make_error(CODES["RateLimited"], 2.5)
    assert isinstance(hinted, RateLimitedError) and hinted.retry_after == 2.5


def test_fresh_error_instances() -> None:
    code = CODES["ConnectionError"]
    assert make_error(code) is not make_error(code)


# --- strategies alone ------------------------------------------------------------------------


@given(st.floats(0, 50), st.floats(0.001, 50), st.floats(-10, 120, allow_nan=False))
def test_outage_window_is_half_open(start: float, width: float, t: float) -> None:
    end = start + width
    gate = OutageGate(start, end, 7)
    assert gate(t, KEY, 1) == (7 if start <= t < end else PASS)
    assert gate(start, KEY, 1) == 7
    assert gate(end, KEY, 1) == PASS


def test_flaky_gate_fails_about_p_of_attempts_and_only_in_its_window() -> None:
    p, n = 0.3, 20_000
    gate = FlakyGate(10.0, 20.0, p, 4, KEY)
    verdicts = [gate(15.0, call, 1) for call in range(n)]
    share = sum(v == 4 for v in verdicts) / n
    assert abs(share - p) < band(p, n)
    assert set(verdicts) == {PASS, 4}
    assert all(gate(t, call, 1) == PASS for t in (9.999, 20.0, 25.0) for call in range(200))


def test_flaky_gate_extremes() -> None:
    never, always = FlakyGate(0, 1, 0.0, 3, KEY), FlakyGate(0, 1, 1.0, 3, KEY)
    assert all(never(0.5, c, a) == PASS for c in range(300) for a in (1, 2))
    assert all(always(0.5, c, a) == 3 for c in range(300) for a in (1, 2))


def test_flaky_gate_draws_per_attempt_so_a_retry_can_pass() -> None:
    gate = FlakyGate(0, 100, 0.5, 2, KEY)
    first = [gate(1.0, c, 1) for c in range(2000)]
    second = [gate(1.0, c, 2) for c in range(2000)]
    both = sum(a == b == 2 for a, b in zip(first, second, strict=True)) / 2000
    assert abs(both - 0.25) < band(0.25, 2000)  # independent draws: 0.5 * 0.5


def test_recovery_ramp_falls_linearly_to_zero() -> None:
    gate = RampGate(10.0, 20.0, 0.8, 5, KEY)
    n = 20_000
    shares = []
    for t in (10.0, 12.5, 15.0, 17.5, 19.99):
        share = sum(gate(t, c, 1) == 5 for c in range(n)) / n
        expected = 0.8 * (20.0 - t) / 10.0
        assert abs(share - expected) < band(expected, n) + 1e-9
        shares.append(share)
    assert shares == sorted(shares, reverse=True)
    assert all(gate(t, c, 1) == PASS for t in (9.9, 20.0) for c in range(500))


def test_spike_adds_its_draw_only_inside_the_window() -> None:
    spike = Spike(1.0, 2.0, sampler(Constant(value=0.75)), KEY)
    assert spike(1.0, 3, 1) == 0.75 and spike(1.5, 3, 1) == 0.75
    assert spike(0.999, 3, 1) == 0.0 and spike(2.0, 3, 1) == 0.0


def test_reset_rule_gives_a_share_of_the_latency() -> None:
    rule = ResetRule(0.0, 10.0, 0.5, 3, KEY, stream_key(KEY, RESET_POINT))
    shares = [rule(5.0, c, 1) for c in range(10_000)]
    hit = [s for s in shares if s is not None]
    assert abs(len(hit) / len(shares) - 0.5) < band(0.5, len(shares))
    assert all(0.0 <= s < 1.0 for s in hit)
    assert abs(np.mean(hit) - 0.5) < 5 * math.sqrt(1 / 12 / len(hit))  # uniform share
    assert all(rule(t, c, 1) is None for t in (-1.0, 10.0) for c in range(200))


def test_compile_faults_sorts_kinds_into_strategies() -> None:
    s = parse_scenario(
        {
            "service": {"kind": "queue", "concurrency": 3},
            "faults": [
                {"kind": "outage", "start": 0, "end": 1, "error": "OSError"},
                {"kind": "outage", "start": 2, "end": 3, "mode": "blackhole"},
                {"kind": "flaky", "start": 1, "probability": 0.5},
                {"kind": "recovery_ramp", "start": 3, "end": 4},
                {"kind": "latency_spike", "start": 0, "end": 9, "extra": 1.0},
                {"kind": "reset", "probability": 0.1},
                {"kind": "capacity_loss", "start": 5, "end": 6, "slots": 1},
            ],
        }
    )
    plan = compile_faults(s.faults, seed=1)
    assert [type(g).__name__ for g in plan.gates] == [
        "OutageGate",
        "OutageGate",
        "FlakyGate",
        "RampGate",
    ]
    assert plan.gates[0](0.5, KEY, 1) == CODES["OSError"]
    assert plan.gates[1](2.5, KEY, 1) == BLACKHOLE
    assert plan.gates[2].end == math.inf  # open-ended window
    assert len(plan.spikes) == 1 and len(plan.resets) == 1
    assert plan.capacity_windows == ((5.0, 6.0, 1),)
    assert not plan.empty and compile_faults([], 1).empty
    windows = fault_windows(s)
    assert [w["kind"] for w in windows] == [f.kind for f in s.faults]
    assert [w["index"] for w in windows] == list(range(len(s.faults)))
    assert windows[1] == {"index": 1, "kind": "outage", "start": 2.0, "end": 3.0}
    assert windows[2] == {"index": 2, "kind": "flaky", "start": 1.0, "end": None}  # open-ended


def minimal_fault(model: type[BaseModel]) -> BaseModel:
    """The smallest valid instance of a fault model: its kind, and 1 for each required field
    (a window [0, 1), one slot, a constant second of latency), but a probability of 0.5 (packet
    loss must stay below 1) and a count of 2 (every_nth's least)."""
    data: dict[str, Any] = {"kind": typing.get_args(model.model_fields["kind"].annotation)[0]}
    for name, info in model.model_fields.items():
        if name != "kind" and info.is_required():
            data[name] = {"probability": 0.5, "n": 2}.get(name, 1)
    return model.model_validate(data)


FAULT_MODELS: tuple[type[BaseModel], ...] = typing.get_args(typing.get_args(Fault)[0])
#: Kinds only the proxy can apply (retrysim chaos): the simulator refuses them in one line.
PROXY_ONLY = {"SlowClose", "LimitData"}


def test_the_fault_union_is_what_the_test_walks() -> None:
    kinds = [typing.get_args(m.model_fields["kind"].annotation)[0] for m in FAULT_MODELS]
    assert len(kinds) == len(set(kinds)) >= 6
    assert "capacity_loss" in kinds and "reset" in kinds


@pytest.mark.parametrize("model", FAULT_MODELS, ids=lambda m: m.__name__)
def test_every_fault_kind_compiles_to_one_strategy(model: type[BaseModel]) -> None:
    """A kind the scenario accepts but ``compile_faults`` had no case for would validate and
    then do nothing: each one must become a gate, a spike, a reset rule or a capacity window."""
    fault = minimal_fault(model)
    if model.__name__ in PROXY_ONLY:  # refused in one line, never run as if absent
        with pytest.raises(NotSimulatedError, match=r"^faults\.0: .*retrysim chaos$"):
            compile_faults([fault], seed=1)  # type: ignore[list-item]
        return
    if model.__name__ == "Slicer":
        fault = fault.model_copy(update={"answer_bytes": 3})
    plan = compile_faults([fault], seed=1)  # type: ignore[list-item]
    made = [*plan.gates, *plan.spikes, *plan.resets, *plan.capacity_windows]
    assert len(made) == 1, model.__name__


def test_a_fault_without_a_case_is_refused_not_ignored() -> None:
    class Unknown:
        until = 1.0
        recurrence = None
        clients = connections = None

    with pytest.raises(AssertionError):
        compile_faults([Unknown()], seed=1)  # type: ignore[list-item]


def test_plan_first_failing_gate_wins_and_spikes_add_up() -> None:
    s = parse_scenario(
        {
            "faults": [
                {"kind": "outage", "start": 0, "end": 10, "error": "OSError"},
                {"kind": "outage", "start": 5, "end": 15, "error": "ServerError"},
                {"kind": "latency_spike", "start": 0, "end": 10, "extra": 1.0},
                {"kind": "latency_spike", "start": 5, "end": 10, "extra": 0.5},
            ]
        }
    )
    plan = compile_faults(s.faults, seed=0)
    assert plan.gate(7.0, KEY, 1) == CODES["OSError"]
    assert plan.gate(12.0, KEY, 1) == CODES["ServerError"]
    assert plan.gate(15.0, KEY, 1) == PASS
    assert plan.extra_latency(7.0, KEY, 1) == 1.5
    assert plan.extra_latency(2.0, KEY, 1) == 1.0
    assert plan.extra_latency(10.0, KEY, 1) == 0.0


def test_each_fault_has_its_own_stream() -> None:
    s = parse_scenario(
        {
            "faults": [
                {"kind": "flaky", "probability": 0.5},
                {"kind": "flaky", "probability": 0.5},
            ]
        }
    )
    a, b = compile_faults(s.faults, seed=3).gates
    va = [a(1.0, c, 1) for c in range(2000)]
    vb = [b(1.0, c, 1) for c in range(2000)]
    agree = sum(x == y for x, y in zip(va, vb, strict=True)) / 2000
    assert abs(agree - 0.5) < band(0.5, 2000)  # independent, not the same draws


# --- each fault kind in a run ------------------------------------------------------------------


def test_outage_refuses_at_once_inside_its_window_only() -> None:
    result = run(
        {
            "duration": 20,
            "policy": {"max_attempts": 1},
            "clients": {"count": 400, "arrival": {"kind": "uniform", "start": 0, "end": 15}},
            "service": {"kind": "ideal", "latency": 0.2},
            "faults": [{"kind": "outage", "start": 5, "end": 10, "error": "OSError"}],
        }
    )
    a = result.attempts
    inside = (a["start"] >= 5) & (a["start"] < 10)
    assert inside.any() and (~inside).any()
    assert np.all(a["outcome"][inside] == rec.FAILED)
    assert np.all(a["end"][inside] == a["start"][inside])  # at once
    assert {name_of(result, c) for c in a["error"][inside]} == {"OSError"}
    assert np.all(a["executed"][inside] == 0)
    assert np.all(a["outcome"][~inside] == rec.OK)
    assert np.all(a["executed"][~inside] == 1)


@pytest.mark.parametrize(
    ("at", "fails"), [(4.999, False), (5.0, True), (9.999, True), (10.0, False)]
)
def test_outage_window_edges_in_a_run(at: float, fails: bool) -> None:
    result = run(
        {
            "policy": {"max_attempts": 1},
            "clients": {"count": 3, "arrival": {"kind": "burst", "at": at}},
            "faults": [{"kind": "outage", "start": 5, "end": 10}],
        }
    )
    expected = rec.GAVE_UP if fails else rec.SUCCEEDED
    assert np.all(result.calls["outcome"] == expected)


def test_blackhole_hangs_until_the_client_timeout() -> None:
    result = run(
        {
            "policy": {"max_attempts": 1},
            "clients": {"count": 5, "timeout": 2.5, "arrival": {"kind": "burst", "at": 1}},
            "faults": [{"kind": "outage", "start": 0, "end": 10, "mode": "blackhole"}],
        }
    )
    a = result.attempts
    assert np.all(a["outcome"] == rec.TIMED_OUT)
    assert np.all(a["end"] == 1 + 2.5)
    assert {name_of(result, c) for c in a["error"]} == {"TimeoutError"}
    assert np.all(a["executed"] == 0)  # the request never reached the server
    assert np.all(result.calls["outcome"] == rec.GAVE_UP)


def test_blackhole_without_timeout_leaves_the_call_unfinished() -> None:
    result = run(
        {
            "clients": {"count": 4},
            "faults": [{"kind": "outage", "start": 0, "end": 10, "mode": "blackhole"}],
        }
    )
    assert result.stopped is None  # nothing else to do: the run ends by itself
    assert np.all(result.calls["outcome"] == rec.UNFINISHED)
    assert np.all(np.isnan(result.calls["end"]))
    assert np.all(result.attempts["outcome"] == rec.OPEN)
    assert np.all(np.isnan(result.attempts["end"]))
    counts = metrics.call_counts(result.calls)
    assert counts == {
        "total": 4,
        "succeeded": 0,
        "failed": 0,
        "unfinished": 4,
        "success_rate": 0.0,
    }


def test_flaky_fails_about_p_of_attempts() -> None:
    p, n = 0.3, 4000
    result = run(
        {
            "policy": {"max_attempts": 1},
            "clients": {"count": n},
            "faults": [{"kind": "flaky", "probability": p, "error": "ConnectionAbortedError"}],
        }
    )
    failed = result.calls["outcome"] == rec.GAVE_UP
    assert abs(failed.mean() - p) < band(p, n)
    assert metrics.failures_by_type(result.attempts, result.error_names) == {
        "ConnectionAbortedError": int(failed.sum())
    }


def test_flaky_with_retries_recovers_most_calls() -> None:
    # Each attempt fails independently with p, so a call of 3 attempts gives up with p^3.
    p, n = 0.5, 4000
    result = run(
        {
            "policy": {
                "max_attempts": 3,
                "min_wait": 0.1,
                "max_wait": 0.1,
                "profile": "exponential",
            },
            "clients": {"count": n},
            "faults": [{"kind": "flaky", "probability": p}],
        }
    )
    gave_up = (result.calls["outcome"] == rec.GAVE_UP).mean()
    assert abs(gave_up - p**3) < band(p**3, n)


def test_latency_spike_adds_latency_to_requests_arriving_in_its_window() -> None:
    result = run(
        {
            "duration": 5,
            "policy": {"max_attempts": 1},
            "clients": {"count": 300, "arrival": {"kind": "uniform", "start": 0, "end": 3}},
            "service": {"kind": "ideal", "latency": 0.1},
            "faults": [{"kind": "latency_spike", "start": 1, "end": 2, "extra": 0.5}],
        }
    )
    a = result.attempts
    inside = (a["start"] >= 1) & (a["start"] < 2)
    took = a["end"] - a["start"]
    assert inside.any() and (~inside).any()
    assert np.allclose(took[inside], 0.6, rtol=0, atol=1e-12)
    assert np.allclose(took[~inside], 0.1, rtol=0, atol=1e-12)


def test_recovery_ramp_failure_rate_falls_over_the_window() -> None:
    n = 8000
    result = run(
        {
            "duration": 12,
            "policy": {"max_attempts": 1},
            "clients": {"count": n, "arrival": {"kind": "uniform", "start": 0, "end": 10}},
            "faults": [{"kind": "recovery_ramp", "start": 0, "end": 10, "probability": 1.0}],
        }
    )
    a = result.attempts
    failed = a["outcome"] == rec.FAILED
    rates = []
    for lo in range(0, 10, 2):
        sel = (a["start"] >= lo) & (a["start"] < lo + 2)
        expected = (10 - (lo + 1)) / 10  # p(t) = (end - t) / (end - start), mean over the bin
        rate = failed[sel].mean()
        assert abs(rate - expected) < band(expected, int(sel.sum()))
        rates.append(rate)
    assert rates == sorted(rates, reverse=True)


def test_reset_cuts_the_client_off_mid_request_but_the_server_still_works() -> None:
    result = run(
        {
            "policy": {"max_attempts": 1},
            "clients": {"count": 50},
            "service": {"kind": "ideal", "latency": 1.0},
            "faults": [{"kind": "reset", "start": 0, "end": 10, "probability": 1.0}],
        }
    )
    a = result.attempts
    assert np.all(a["outcome"] == rec.FAILED)
    assert {name_of(result, c) for c in a["error"]} == {"ConnectionResetError"}
    assert np.all((a["end"] >= a["start"]) & (a["end"] < a["start"] + 1.0))
    assert np.all(a["executed"] == 1)
    assert np.all(result.calls["executions"] == 1)
    assert metrics.wasted_work(a) == 50
    assert result.end_time == 1.0  # the server finished the work after every client left


def test_reset_then_retry_counts_a_duplicate() -> None:
    result = run(
        {
            "policy": {"max_attempts": 2, "profile": "exponential", "min_wait": 1, "max_wait": 1},
            "clients": {"count": 20},
            "service": {"kind": "ideal", "latency": 0.5},
            "faults": [{"kind": "reset", "start": 0, "end": 0.5, "probability": 1.0}],
        }
    )
    assert np.all(result.calls["outcome"] == rec.SUCCEEDED)
    assert np.all(result.calls["executions"] == 2)
    assert metrics.duplicates(result.calls) == 20
    assert metrics.wasted_work(result.attempts) == 20


@pytest.mark.parametrize("profile", ["documented", "bindu"])
def test_server_error_is_not_retried_by_default(profile: str) -> None:
    result = run(
        {
            "policy": {"max_attempts": 4, "profile": profile},
            "clients": {"count": 10},
            "faults": [{"kind": "flaky", "probability": 1.0, "error": "ServerError"}],
        }
    )
    assert np.all(result.calls["attempts"] == 1)
    assert np.all(result.calls["outcome"] == rec.GAVE_UP)
    assert {name_of(result, c) for c in result.calls["error"]} == {"ServerError"}


@pytest.mark.parametrize(
    ("profile", "error", "attempts"),
    [
        ("documented", "ConnectionResetError", 4),  # a ConnectionError
        ("documented", "TimeoutError", 4),
        ("documented", "RateLimited", 4),  # TransientError
        ("documented", "OSError", 1),  # not retried by retrysim's default
        ("bindu", "OSError", 4),  # the shipped mechanism retries every OSError
        ("bindu", "Conflict", 1),  # ... but not retrysim's TransientError
    ],
)
def test_which_errors_each_profile_retries(profile: str, error: str, attempts: int) -> None:
    result = run(
        {
            "policy": {"max_attempts": 4, "profile": profile, "min_wait": 0.1, "max_wait": 0.2},
            "clients": {"count": 3},
            "faults": [{"kind": "flaky", "probability": 1.0, "error": error}],
        }
    )
    assert np.all(result.calls["attempts"] == attempts)


def test_retry_on_limits_what_is_retried() -> None:
    result = run(
        {
            "policy": {"max_attempts": 3, "retry_on": ["ConnectionResetError"], "min_wait": 0.1},
            "clients": {"count": 6, "timeout": 0.5},
            "service": {"kind": "ideal", "latency": 0.2},
            "faults": [
                {"kind": "reset", "end": 0.05, "probability": 1.0},
                {"kind": "latency_spike", "start": 0.05, "end": 100, "extra": 1.0},
            ],
        }
    )
    # attempt 1 (t=0, 0.2 s) is reset before the timeout and retried; attempt 2 (t>=0.1,
    # 1.2 s) times out, and TimeoutError is not in retry_on
    assert np.all(result.calls["attempts"] == 2)
    assert {name_of(result, c) for c in result.calls["error"]} == {"TimeoutError"}


@pytest.mark.parametrize("path", ["direct", "connected", "fidelity"])
def test_a_rate_limited_fault_carries_its_retry_after(path: str) -> None:
    """A 429 window's hint reaches the policy on every path, as an HTTP Retry-After would:
    with respect_retry_after, each retry waits the 0.5 s hint, not the 0.05 s backoff."""
    from retrysim.sim.fidelity import run_with_decorators

    data: dict[str, Any] = {
        "seed": 1,
        "duration": 1,
        "policy": {
            "operation": "api",
            "max_attempts": 3,
            "min_wait": 0.01,
            "max_wait": 0.05,
            "respect_retry_after": True,
        },
        "clients": {"count": 5, "calls_per_client": 1},
        "faults": [
            {"kind": "outage", "start": 0, "end": 5, "error": "RateLimited", "retry_after": 0.5}
        ],
    }
    if path == "connected":
        data["network"] = {"rtt": 0.001}
    scenario = parse_scenario(data, "test")
    result = run_with_decorators(scenario) if path == "fidelity" else simulate(scenario)
    waits = result.attempts["wait"][~np.isnan(result.attempts["wait"])]
    assert len(waits) == 10 and set(waits.tolist()) == {0.5}


def test_retry_after_goes_with_rate_limited_only() -> None:
    bad = {"faults": [{"kind": "flaky", "probability": 0.5, "error": "ServerError"}]}
    bad["faults"][0]["retry_after"] = 0.5
    with pytest.raises(ValueError, match=r"x\.toml: faults\.0: retry_after is the hint"):
        parse_scenario(bad, "x.toml")
