"""Laws every run obeys (checked by ``violations``), on real and generated runs, and proof that
``violations`` notices when records break them."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retrysim.model.scenario import ERROR_NAMES, parse_scenario
from retrysim.sim import records as rec
from retrysim.sim.engine import RunResult, simulate
from retrysim.sim.invariants import InvariantError, assert_invariants, violations

PROFILES = ["documented", "bindu", "full_jitter", "equal_jitter", "decorrelated", "exponential"]


def conserved(result: RunResult) -> bool:
    """calls = succeeded + failed + unfinished, with every outcome one of the three."""
    outcome = result.calls["outcome"]
    parts = [int(np.sum(outcome == o)) for o in (rec.SUCCEEDED, rec.GAVE_UP, rec.UNFINISHED)]
    return sum(parts) == len(result.calls)


# --- generated scenarios ------------------------------------------------------------------------

_latency = st.one_of(
    st.floats(0, 1),
    st.builds(
        lambda lo, w: {"dist": "uniform", "low": lo, "high": lo + w},
        st.floats(0, 0.5),
        st.floats(0, 1),
    ),
    st.builds(lambda m: {"dist": "exponential", "mean": m}, st.floats(0.001, 1)),
    st.builds(
        lambda m, s, n: {"dist": "normal", "mean": m, "std": s, "negative": n},
        st.floats(0, 1),
        st.floats(0, 1),
        st.sampled_from(["clip", "reflect"]),
    ),
    st.builds(
        lambda m, f: {"dist": "lognormal", "median": m, "p99": m * f},
        st.floats(0.001, 0.5),
        st.floats(1, 20),
    ),
)


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    duration = draw(st.floats(1, 20))
    kind = draw(st.sampled_from(["burst", "uniform", "poisson", "closed"]))
    clients: dict[str, Any] = {"count": draw(st.integers(1, 10))}
    if kind == "burst":
        clients["arrival"] = {"kind": "burst", "at": draw(st.floats(0, duration * 0.9))}
    elif kind == "uniform":
        clients["arrival"] = {"kind": "uniform", "start": 0, "end": draw(st.floats(0, duration))}
    elif kind == "poisson":
        clients["arrival"] = {"kind": "poisson", "rate": draw(st.floats(0, 4))}
    else:
        clients["arrival"] = {"kind": "closed", "ramp": draw(st.floats(0, duration))}
        clients["think_time"] = draw(st.floats(0.2, 3))
    if kind != "poisson" and draw(st.booleans()):
        clients["calls_per_client"] = draw(st.integers(1, 3))
        clients.setdefault("think_time", draw(st.floats(0, 2)))
    if draw(st.booleans()):
        clients["timeout"] = draw(st.floats(0.05, 3))
    network = None
    if draw(st.booleans()):  # connections: pools, connect timeouts, a network
        if draw(st.booleans()):
            clients["pool_size"] = draw(st.integers(1, 3))
            clients["processes"] = draw(st.integers(1, clients["count"]))
        if draw(st.booleans()):
            clients["connect_timeout"] = draw(st.floats(0.01, 1))
        if draw(st.booleans()):  # the client processes' own CPU, per attempt and per connect
            clients["cpu_per_attempt"] = draw(st.floats(0, 0.2) | _latency)
            if draw(st.booleans()):
                clients["cpu_per_connect"] = draw(st.floats(0, 0.2) | _latency)
            if "processes" not in clients:
                clients["processes"] = draw(st.integers(1, clients["count"]))
            if draw(st.booleans()):
                clients["cpus"] = draw(st.integers(1, clients["processes"]))
            clients["cpu_discipline"] = draw(st.sampled_from(["fifo", "processor_sharing"]))
        if draw(st.booleans()):
            network = {"rtt": draw(_latency)}
            if draw(st.booleans()):
                network["connect"] = draw(_latency)
            if draw(st.booleans()):  # a listen backlog and its SYN retries
                network["accept_backlog"] = draw(st.integers(1, 4))
                network["syn_retry"] = draw(st.floats(0.01, 2))

    service_kind = draw(
        st.sampled_from(
            ["ideal", "queue", "load_latency", "occ", "rate_limited", "processor_sharing", "lock"]
        )
    )
    service: dict[str, Any] = {"kind": service_kind}
    if service_kind == "load_latency":
        service["base"] = draw(_latency)
        service["per_request"] = draw(st.floats(0, 0.2))
    else:
        service["latency"] = draw(_latency)
    if service_kind == "queue":
        service["concurrency"] = draw(st.integers(1, 3))
        service["queue_limit"] = draw(st.integers(0, 4))
        service["drop_abandoned"] = draw(st.booleans())
        service["reject_error"] = draw(st.sampled_from(ERROR_NAMES))
    if service_kind == "occ" and draw(st.booleans()):
        service["protocol"] = "read_then_write"
        if draw(st.booleans()):
            service["read_latency"] = draw(_latency)
    if service_kind == "processor_sharing":
        service["cores"] = draw(st.floats(0.5, 4))
        service["concurrency"] = draw(st.none() | st.integers(1, 4))
        service["queue_limit"] = draw(st.integers(0, 4))
        service["cancel_abandoned"] = draw(st.booleans())
    if service_kind == "lock":
        service["on_busy"] = draw(st.sampled_from(["wait", "fail"]))
        service["queue_limit"] = draw(st.integers(0, 4))
        service["wait_timeout"] = draw(st.none() | st.floats(0.01, 2))
        service["busy_error"] = draw(st.sampled_from(ERROR_NAMES))
    if service_kind == "rate_limited":
        service["rate"] = draw(st.floats(0.5, 10))
        service["burst"] = draw(st.floats(1, 4))
        service["retry_after"] = draw(st.sampled_from(["seconds", "exact", "none"]))

    kinds = ["outage", "flaky", "latency_spike", "recovery_ramp", "reset"]
    if service_kind == "queue":
        kinds.append("capacity_loss")
    faults = []
    for _ in range(draw(st.integers(0, 3))):
        fault_kind = draw(st.sampled_from(kinds))
        start = draw(st.floats(0, duration))
        fault: dict[str, Any] = {"kind": fault_kind, "start": start}
        if fault_kind not in ("flaky", "reset") or draw(st.booleans()):
            fault["end"] = start + draw(st.floats(0.01, 10))
        if fault_kind == "outage":
            fault["mode"] = draw(st.sampled_from(["refuse", "blackhole"]))
            fault["error"] = draw(st.sampled_from(ERROR_NAMES))
        elif fault_kind in ("flaky", "reset", "recovery_ramp"):
            fault["probability"] = draw(st.floats(0, 1))
            fault["error"] = draw(st.sampled_from(ERROR_NAMES))
        elif fault_kind == "latency_spike":
            fault["extra"] = draw(_latency)
        else:
            fault["slots"] = draw(st.integers(0, 3))
        faults.append(fault)

    min_wait = draw(st.floats(0, 1))
    policy: dict[str, Any] = {
        "operation": draw(st.sampled_from(["worker", "storage", "scheduler", "api"])),
        "profile": draw(st.sampled_from(PROFILES)),
        "max_attempts": draw(st.integers(1, 5)),
        "min_wait": min_wait,
        "max_wait": min_wait + draw(st.floats(0, 3)),
        "respect_retry_after": draw(st.booleans()),
    }
    if draw(st.booleans()):
        policy["max_delay"] = draw(st.floats(0.1, 10))
    if draw(st.booleans()):
        policy["retry_on"] = draw(st.lists(st.sampled_from(ERROR_NAMES), max_size=4, unique=True))
    scenario = {
        "seed": draw(st.integers(0, 2**40)),
        "duration": duration,
        "policy": policy,
        "clients": clients,
        "service": service,
        "faults": faults,
    }
    if network is not None:
        scenario["network"] = network
    return scenario


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_generated_runs_satisfy_every_invariant(data: dict[str, Any]) -> None:
    scenario = parse_scenario(data)
    result = simulate(scenario)
    assert violations(result) == []
    assert conserved(result)
    a, c = result.attempts, result.calls
    max_attempts = result.policy["max_attempts"]
    assert np.all(c["attempts"] >= 1) and np.all(c["attempts"] <= max_attempts)
    # attempts answered only by the client's own view: an attempt is open iff its call is
    assert np.all((a["outcome"] == rec.OPEN) == np.isnan(a["end"]))
    open_calls = set(a["call"][a["outcome"] == rec.OPEN].tolist())
    assert open_calls == set(np.flatnonzero(c["outcome"] == rec.UNFINISHED).tolist())
    # a failed attempt carries an error, a successful one none
    answered_ok_or_open = (a["outcome"] == rec.OK) | (a["outcome"] == rec.OPEN)
    assert np.all((a["error"] == 0) == answered_ok_or_open)
    # executions are exactly the executed attempts
    assert int(a["executed"].sum()) == int(c["executions"].sum())
    # a client timeout, when set, bounds every closed attempt
    timeout = scenario.clients.timeout
    closed = a["outcome"] != rec.OPEN
    if timeout is not None:
        took = a["end"][closed] - a["start"][closed]
        assert np.all(took <= timeout + 1e-9 * np.maximum(1.0, a["start"][closed]))


def test_real_runs_have_no_violations() -> None:
    for data in (
        {"clients": {"count": 50}, "faults": [{"kind": "flaky", "probability": 0.5}]},
        {
            "clients": {"count": 40, "timeout": 0.5, "arrival": {"kind": "uniform", "end": 5}},
            "service": {"kind": "queue", "concurrency": 2, "latency": 0.2},
            "faults": [{"kind": "outage", "start": 1, "end": 2, "mode": "blackhole"}],
        },
    ):
        result = simulate(parse_scenario(data))
        assert violations(result) == []
        assert_invariants(result)  # does not raise


# --- violations notices corrupted records ---------------------------------------------------------


@pytest.fixture(scope="module")
def retried() -> RunResult:
    """A run where every call retries: 5 calls x 3 attempts against a permanent outage."""
    return simulate(
        parse_scenario(
            {
                "policy": {"profile": "exponential", "min_wait": 1, "max_wait": 1},
                "clients": {"count": 5},
                "faults": [{"kind": "outage", "start": 0, "end": 1000}],
            }
        )
    )


def corrupt(result: RunResult, **changes: Any) -> RunResult:
    return dataclasses.replace(
        result,
        attempts=changes.pop("attempts", result.attempts.copy()),
        calls=changes.pop("calls", result.calls.copy()),
        **changes,
    )


def second_attempt_index(result: RunResult, call: int = 0) -> int:
    a = result.attempts
    return int(np.flatnonzero((a["call"] == call) & (a["attempt"] == 2))[0])


def test_the_fixture_is_clean(retried: RunResult) -> None:
    assert violations(retried) == []
    assert np.all(retried.calls["attempts"] == 3)


def test_detects_an_attempt_starting_before_previous_end_plus_wait(retried: RunResult) -> None:
    bad = corrupt(retried)
    i = second_attempt_index(bad)
    bad.attempts["start"][i] -= 0.5  # the previous attempt ended at 0 and waited 1 s
    assert any("before the previous one ended plus its wait" in v for v in violations(bad))
    with pytest.raises(InvariantError):
        assert_invariants(bad)


def test_detects_too_many_attempts(retried: RunResult) -> None:
    bad = corrupt(retried, policy={**retried.policy, "max_attempts": 2})
    assert any("more than max_attempts=2" in v for v in violations(bad))


def test_detects_attempt_numbers_with_gaps(retried: RunResult) -> None:
    bad = corrupt(retried)
    a = bad.attempts
    i = int(np.flatnonzero((a["call"] == 1) & (a["attempt"] == 3))[0])
    a["attempt"][i] = 4
    bad = corrupt(bad, policy={**retried.policy, "max_attempts": 10})
    assert any("not 1, 2, 3" in v for v in violations(bad))


def test_detects_numbering_from_zero(retried: RunResult) -> None:
    bad = corrupt(retried)
    bad.attempts["attempt"] -= 1
    assert any("starts at 1" in v for v in violations(bad))


def test_detects_attempt_counts_that_do_not_match_the_records(retried: RunResult) -> None:
    bad = corrupt(retried)
    bad.calls["attempts"][3] = 2
    assert any("attempt records per call differ" in v for v in violations(bad))


def test_detects_an_attempt_ending_before_it_started(retried: RunResult) -> None:
    bad = corrupt(retried)
    i = second_attempt_index(bad, call=2)
    bad.attempts["end"][i] = bad.attempts["start"][i] - 0.25
    assert any("ended before it started" in v for v in violations(bad))


def test_detects_a_call_ending_before_it_started(retried: RunResult) -> None:
    bad = corrupt(retried)
    bad.calls["end"][4] = bad.calls["start"][4] - 1
    assert any("a call ended before it started" in v for v in violations(bad))


def test_detects_end_times_on_unfinished_calls_and_missing_ones_on_finished(
    retried: RunResult,
) -> None:
    bad = corrupt(retried)
    bad.calls["end"][0] = np.nan  # finished (gave up) but no end
    assert any("end time iff it finished" in v for v in violations(bad))
    bad = corrupt(retried)
    bad.calls["outcome"][0] = rec.UNFINISHED  # unfinished but with an end
    assert any("end time iff it finished" in v for v in violations(bad))


def test_detects_a_retry_without_a_recorded_wait(retried: RunResult) -> None:
    bad = corrupt(retried)
    a = bad.attempts
    i = int(np.flatnonzero((a["call"] == 0) & (a["attempt"] == 1))[0])
    a["wait"][i] = np.nan
    assert any("no recorded end or wait" in v for v in violations(bad))


def test_detects_calls_that_break_conservation(retried: RunResult) -> None:
    bad = corrupt(retried)
    bad.calls["outcome"][2] = 7  # not succeeded, failed or unfinished
    assert any("succeeded + failed + unfinished" in v for v in violations(bad))


def test_hand_built_records_with_too_many_attempts() -> None:
    calls = rec.empty_calls(1)
    calls["attempts"] = 4
    calls["outcome"] = rec.GAVE_UP
    calls["end"] = 3.0
    attempts = rec.empty_attempts(4)
    attempts["attempt"] = [1, 2, 3, 4]
    attempts["start"] = [0.0, 1.0, 2.0, 3.0]
    attempts["end"] = [0.0, 1.0, 2.0, 3.0]
    attempts["wait"] = [1.0, 1.0, 1.0, np.nan]
    attempts["outcome"] = rec.FAILED
    attempts["error"] = 1
    result = RunResult(
        scenario=parse_scenario({}),
        seed=0,
        policy={"max_attempts": 3},
        attempts=attempts,
        calls=calls,
        end_time=3.0,
        events=0,
        wall_time=0.0,
        capacity=None,
    )
    assert violations(result) == ["a call made more than max_attempts=3 attempts"]
    assert violations(dataclasses.replace(result, policy={"max_attempts": 4})) == []
