"""The fault kinds users know from Toxiproxy, in the simulator: packet loss (TCP's doubling
retransmission timeout), count-based faults (first_n, every_nth) and recurring windows."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from retrysim.errors import BadInputError
from retrysim.model.scenario import parse_scenario
from retrysim.sim import records as rec
from retrysim.sim.engine import RunResult, simulate
from retrysim.sim.faults import (
    MAX_RETRANSMISSIONS,
    PASS,
    compile_faults,
    loss_delay,
    retransmissions,
)
from retrysim.sim.invariants import violations


def run(data: dict[str, Any], **kwargs: Any) -> RunResult:
    result = simulate(parse_scenario(data), **kwargs)
    assert violations(result) == []
    return result


def plan(*faults: dict[str, Any]) -> Any:
    return compile_faults(parse_scenario({"faults": list(faults)}).faults, seed=3)


# --- the law of packet loss ------------------------------------------------------------------


@given(st.floats(0, 1, exclude_max=True), st.floats(0.001, 0.9))
def test_retransmissions_invert_the_geometric_tail(u: float, p: float) -> None:
    """K >= k exactly when 1 - u <= p**k: P(K >= k) = p**k, a segment lost k times in a row
    with chance p**k (1 - p); never past the cap."""
    k = retransmissions(u, p)
    assert 0 <= k <= MAX_RETRANSMISSIONS
    if k < MAX_RETRANSMISSIONS:
        assert p ** (k + 1) < 1 - u or math.isclose(p ** (k + 1), 1 - u)
    assert k == 0 or p**k >= (1 - u) * (1 - 1e-12)


def test_no_loss_never_delays_and_delays_double() -> None:
    assert retransmissions(0.999999, 0.0) == 0
    assert [loss_delay(k, 0.2) for k in range(4)] == pytest.approx([0.0, 0.2, 0.6, 1.4])


@pytest.mark.parametrize("p", [0.05, 0.2, 0.4])
def test_the_mean_delay_an_attempt_gets_is_the_formula(p: float) -> None:
    """E[rto (2**K - 1)] = rto p / (1 - 2p) for p < 1/2 (a geometric K); per attempt, times
    its segments. 40,000 attempts, against five standard errors of their own spread."""
    rto, segments = 0.2, 2
    strategy = plan({"kind": "packet_loss", "probability": p, "rto": rto}).spikes[0]
    delays = np.array([strategy(1.0, call, 1) for call in range(40_000)])
    expected = segments * rto * p / (1 - 2 * p)
    assert abs(delays.mean() - expected) < 5 * delays.std() / math.sqrt(len(delays))
    lost_once = segments * p * (1 - p) ** (segments - 1) * (1 - p)  # one segment lost once
    assert abs(np.mean(np.isclose(delays, rto)) - lost_once) < 0.01


def test_packet_loss_slows_attempts_into_the_clients_timeout() -> None:
    """Loss delays, it does not fail: without a timeout every call succeeds, later; with a
    timeout shorter than two RTOs, the attempts that lost a segment twice time out."""
    data: dict[str, Any] = {
        "duration": 20,
        "policy": {"max_attempts": 1},
        "clients": {"count": 2000, "arrival": {"kind": "uniform", "end": 10}},
        "service": {"kind": "ideal", "latency": 0.01},
        "faults": [{"kind": "packet_loss", "probability": 0.3, "rto": 0.2}],
    }
    slow = run(data)
    assert np.all(slow.calls["outcome"] == rec.SUCCEEDED)
    late = slow.attempts["end"] - slow.attempts["start"] > 0.2
    assert abs(late.mean() - (1 - 0.7**2)) < 0.05  # some segment lost at least once
    data["clients"]["timeout"] = 0.5
    cut = run(data)
    timed_out = cut.attempts["outcome"] == rec.TIMED_OUT
    # 0.5 s passes only with 0.6 s or more: a segment lost twice (p^2), or both once (p^2)...
    p = 0.3
    at_most_one_loss = 0.7**2 + 2 * p * 0.7 * 0.7
    assert abs(timed_out.mean() - (1 - at_most_one_loss)) < 0.05


# --- count-based faults ----------------------------------------------------------------------


def test_first_n_fails_the_first_n_attempts_in_its_window_and_no_more() -> None:
    gates = plan({"kind": "first_n", "n": 3, "start": 10, "end": 20}).gates
    verdicts = [gates[0](t, call, 1) for call, t in enumerate([5, 10, 11, 12, 13, 14, 25])]
    assert [v != PASS for v in verdicts] == [False, True, True, True, False, False, False]


def test_every_nth_fails_every_nth_attempt() -> None:
    gate = plan({"kind": "every_nth", "n": 3}).gates[0]
    verdicts = [gate(float(t), t, 1) != PASS for t in range(9)]
    assert verdicts == [False, False, True] * 3


def test_asking_again_for_the_same_attempt_counts_it_once() -> None:
    """The plan asks the failing gate again for its Retry-After hint: that is no new attempt."""
    p = plan({"kind": "first_n", "n": 1, "error": "RateLimited", "retry_after": 2.0})
    assert p.gate(1.0, 7, 1) != PASS
    assert p.hint(1.0, 7, 1) == 2.0
    assert p.gate(1.5, 8, 1) == PASS  # the second attempt: one was the count


def test_a_call_retries_through_first_n_failures() -> None:
    """One client, first_n = 3: its first call fails three times and succeeds on the fourth
    attempt; every later call succeeds at once. The classic retry test, simulated."""
    result = run(
        {
            "duration": 30,
            "policy": {"max_attempts": 5, "min_wait": 0.1, "max_wait": 0.1, "jitter": 0},
            "clients": {"count": 1, "think_time": 1.0, "arrival": {"kind": "closed"}},
            "service": {"kind": "ideal", "latency": 0.01},
            "faults": [{"kind": "first_n", "n": 3, "error": "ConnectionError"}],
        }
    )
    attempts = result.attempts[np.argsort(result.attempts["start"], kind="stable")]
    failed = attempts["outcome"] == rec.FAILED
    assert failed.sum() == 3 and failed[:3].all()
    assert result.calls["attempts"][0] == 4
    assert np.all(result.calls["attempts"][1:] == 1) and len(result.calls) > 10
    assert np.all(result.calls["outcome"] == rec.SUCCEEDED)


def test_count_faults_count_per_run_so_runs_repeat_on_either_engine() -> None:
    data = {
        "duration": 10,
        "clients": {"count": 300, "arrival": {"kind": "uniform", "end": 5}},
        "faults": [
            {"kind": "first_n", "n": 40, "start": 1, "end": 4},
            {"kind": "every_nth", "n": 7, "start": 2},
        ],
    }
    first, second = run(data, engine="fast"), run(data, engine="reference")
    assert first.attempts.tobytes() == second.attempts.tobytes()
    assert run(data).attempts.tobytes() == first.attempts.tobytes()  # auto: the native core
    assert (first.attempts["outcome"] == rec.FAILED).sum() > 40


# --- recurring windows -----------------------------------------------------------------------


def test_a_recurring_fault_is_on_only_in_each_recurrence() -> None:
    result = run(
        {
            "duration": 60,
            "policy": {"max_attempts": 1},
            "clients": {"count": 3000, "arrival": {"kind": "uniform", "end": 50}},
            "faults": [
                {"kind": "flaky", "probability": 1.0, "start": 5, "end": 45, "every": 10, "for": 2}
            ],
        }
    )
    a = result.attempts
    on = (a["start"] >= 5) & (a["start"] < 45) & ((a["start"] - 5) % 10 < 2)
    assert np.all((a["outcome"] == rec.FAILED) == on)
    assert on.sum() > 300


def test_a_recurring_first_n_counts_again_each_time() -> None:
    gate = plan({"kind": "first_n", "n": 2, "every": 10, "for": 5}).gates[0]
    times = [0, 1, 2, 6, 10, 11, 12, 20.5]
    assert [gate(t, i, 1) != PASS for i, t in enumerate(times)] == [
        True, True, False, False, True, True, False, True
    ]  # fmt: skip


def test_a_recurring_capacity_loss_is_a_window_per_recurrence() -> None:
    fault = {"kind": "capacity_loss", "start": 0, "end": 25, "slots": 0, "every": 10, "for": 3}
    scenario = parse_scenario({"service": {"kind": "queue", "concurrency": 2}, "faults": [fault]})
    p = compile_faults(scenario.faults, seed=3)
    assert p.capacity_windows == ((0, 3, 0), (10, 13, 0), (20, 23, 0))


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        ({"every": 10}, "every and for go together"),
        ({"for": 1}, "every and for go together"),
        ({"every": 5, "for": 6}, "must be at most every"),
    ],
)
def test_a_recurrence_that_cannot_be_is_refused(fault: dict[str, Any], says: str) -> None:
    with pytest.raises(BadInputError, match=says):
        parse_scenario({"faults": [{"kind": "flaky", "probability": 0.5, **fault}]})


def test_for_is_written_as_for_and_set_by_its_dotted_key() -> None:
    scenario = parse_scenario(
        {"faults": [{"kind": "flaky", "probability": 1, "every": 4, "for": 1}]}
    )
    assert scenario.model_dump(mode="json")["faults"][0]["for"] == 1.0
    changed = scenario.with_overrides({"faults.0.for": 3})
    assert changed.faults[0].recurrence == (4.0, 3.0)


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        ({"kind": "packet_loss", "probability": 1.0}, "probability"),
        ({"kind": "every_nth", "n": 1}, "n"),
        ({"kind": "first_n", "n": 0}, "n"),
    ],
)
def test_impossible_counts_and_losses_are_refused(fault: dict[str, Any], says: str) -> None:
    with pytest.raises(BadInputError, match=says):
        parse_scenario({"faults": [fault]})


def test_the_real_decorators_see_the_same_counts_as_the_engine() -> None:
    """Fidelity mode runs the real retry decorators on the simulator's clock: a count fault
    fails the same attempts there."""
    from retrysim.sim.fidelity import run_with_decorators

    scenario = parse_scenario(
        {
            "duration": 5,
            "policy": {"max_attempts": 4, "min_wait": 0.05, "max_wait": 0.2},
            "clients": {"count": 20, "calls_per_client": 2},
            "faults": [
                {"kind": "first_n", "n": 15, "start": 0.0},
                {"kind": "every_nth", "n": 4, "start": 1.0},
            ],
        }
    )
    engine, real = simulate(scenario), run_with_decorators(scenario)
    assert sorted(engine.calls["attempts"].tolist()) == sorted(real.calls["attempts"].tolist())
    assert (
        (engine.attempts["outcome"] == rec.FAILED).sum()
        == (real.attempts["outcome"] == rec.FAILED).sum()
        >= 15
    )


# --- slicer, slow close, limit data ----------------------------------------------------------


def test_a_slicer_delays_an_answer_by_its_pieces() -> None:
    """1,000 bytes in pieces of 300: four pieces, three delays of 50 ms."""
    result = run(
        {
            "duration": 5,
            "policy": {"max_attempts": 1},
            "clients": {"count": 50, "calls_per_client": 1},
            "service": {"kind": "ideal", "latency": 0.01},
            "faults": [
                {"kind": "slicer", "average_size": 300, "delay": 0.05, "answer_bytes": 1000}
            ],
        }
    )
    took = result.attempts["end"] - result.attempts["start"]
    assert took == pytest.approx(0.01 + 3 * 0.05)


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        ({"kind": "slow_close", "delay": 0.5}, r"faults\.0: slow_close holds a connection's close"),
        ({"kind": "limit_data", "bytes": 100}, r"faults\.0: limit_data closes a connection"),
        ({"kind": "slicer", "average_size": 10, "delay": 0.1}, r"faults\.0: a slicer needs"),
        ({"kind": "flaky", "probability": 0.5, "connections": 0.5}, r"connections is the proxy's"),
    ],
)
def test_what_only_the_proxy_can_apply_the_simulator_refuses_in_one_line(
    fault: dict[str, Any], says: str, tmp_path: Any
) -> None:
    from typer.testing import CliRunner

    from retrysim.cli.app import app

    path = tmp_path / "s.toml"
    lines = [f"{k} = {v!r}".replace("'", '"') for k, v in fault.items()]
    path.write_text("duration = 2\n\n[[faults]]\n" + "\n".join(lines) + "\n")
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 2
    message = result.output.strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in message
    assert re.search(says, message) and message.endswith("run it for real with retrysim chaos")


# --- blast radius ----------------------------------------------------------------------------


def test_a_fault_on_a_share_of_clients_hits_the_same_clients_throughout() -> None:
    result = run(
        {
            "duration": 20,
            "policy": {"max_attempts": 1},
            "clients": {"count": 400, "think_time": 1.0, "arrival": {"kind": "closed"}},
            "faults": [{"kind": "flaky", "probability": 1.0, "clients": 0.25}],
        }
    )
    a = result.attempts
    client = result.calls["client"][a["call"]]
    hit = np.unique(client[a["outcome"] == rec.FAILED])
    spared = np.unique(client[a["outcome"] == rec.OK])
    assert len(np.intersect1d(hit, spared)) == 0  # a client is in the radius or not, for good
    assert abs(len(hit) / 400 - 0.25) < 5 * math.sqrt(0.25 * 0.75 / 400)


def test_a_fault_on_listed_clients_hits_those_alone_and_counts_only_theirs() -> None:
    result = run(
        {
            "duration": 10,
            "policy": {"max_attempts": 1},
            "clients": {"count": 10, "think_time": 0.5, "arrival": {"kind": "closed"}},
            "faults": [{"kind": "first_n", "n": 6, "clients": [2, 7]}],
        }
    )
    a = result.attempts
    client = result.calls["client"][a["call"]]
    failed = a["outcome"] == rec.FAILED
    assert set(client[failed].tolist()) == {2, 7} and failed.sum() == 6


def test_the_proxy_takes_a_share_of_connections_and_refuses_clients_and_other_replicas() -> None:
    from retrysim.chaos.toxics import ChaosError, toxics_from_scenario

    shared = parse_scenario({"faults": [{"kind": "flaky", "probability": 0.5, "connections": 0.4}]})
    assert toxics_from_scenario(shared)[0].toxicity == pytest.approx(0.2)
    for fault, says in (
        ({"kind": "outage", "end": 1, "clients": [1]}, r"faults\.0\.clients: the proxy sees"),
        ({"kind": "outage", "end": 1, "replicas": [1]}, r"faults\.0\.replicas: the proxy fronts"),
    ):
        data = {"service": {"kind": "ideal", "replicas": 2}, "faults": [fault]}
        with pytest.raises(ChaosError, match=says):
            toxics_from_scenario(parse_scenario(data))


def test_a_share_of_replicas_is_the_first_of_them_as_a_list() -> None:
    data: dict[str, Any] = {
        "service": {"kind": "ideal", "replicas": 5},
        "faults": [{"kind": "outage", "end": 1, "replicas": 0.4}],
    }
    assert parse_scenario(data).faults[0].replicas == [0, 1]
    assert data["faults"][0]["replicas"] == 0.4  # the caller's data kept as written
    data["faults"][0]["replicas"] = 0.01
    assert parse_scenario(data).faults[0].replicas == [0]  # at least one
    tiered = {
        "tiers": {
            "api": {"policy": {"max_attempts": 2}},
            "db": {
                "service": {"kind": "ideal", "replicas": 4},
                "faults": [{"kind": "outage", "end": 1, "replicas": 0.5}],
            },
        }
    }
    assert parse_scenario(tiered).tiers["db"].faults[0].replicas == [0, 1]
    data["faults"][0]["replicas"] = 1.5
    with pytest.raises(BadInputError, match=r"faults\.0\.replicas: a share must be in \(0, 1\]"):
        parse_scenario(data)


def test_the_proxy_applies_a_fault_to_the_connections_listed_only() -> None:
    from retrysim.chaos.toxics import toxics_from_scenario

    listed = parse_scenario({"faults": [{"kind": "first_n", "n": 5, "connections": [1, 3]}]})
    (toxic,) = toxics_from_scenario(listed)
    assert toxic.connections == frozenset({1, 3}) and toxic.toxicity == 1.0


def test_compiling_some_faults_keeps_each_on_its_own_stream() -> None:
    """``keep`` compiles a subset (what an HTTP server applies itself), each fault still drawing
    as it does among all of them: the kept flaky fails exactly the attempts it fails in the
    whole plan."""
    faults = parse_scenario(
        {
            "faults": [
                {"kind": "packet_loss", "probability": 0.2},
                {"kind": "flaky", "probability": 0.5},
                {"kind": "slicer", "average_size": 10, "delay": 0.1, "answer_bytes": 50},
            ]
        }
    ).faults
    whole = compile_faults(faults, seed=9)
    some = compile_faults(faults, seed=9, keep=lambda fault: fault.kind == "flaky")
    assert len(some.gates) == 1 and not some.spikes
    assert [some.gate(1.0, call, 1) for call in range(200)] == [
        whole.gate(1.0, call, 1) for call in range(200)
    ]
    assert compile_faults(faults, seed=9, keep=lambda fault: False).empty
