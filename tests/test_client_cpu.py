"""The client processes' own CPU (clients.cpu_per_attempt, clients.cpu_per_connect).

A process does one piece of work at a time, first come first served: an attempt's work before
its request leaves, a new connection's work before its handshake's network time. Every timing
below is a binary fraction, so the sums are exact and compared with ``==``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from retrysim.cli.app import app
from retrysim.model.scenario import ScenarioError, parse_scenario
from retrysim.sim import records as rec
from retrysim.sim.connections import Cpu
from retrysim.sim.engine import RunResult, simulate
from retrysim.sim.fidelity import run_with_decorators
from tests.test_network import one_process_queue, steady_mean_response

P, Q = 0.0625, 0.03125  # CPU per attempt, per connect
C, R, L = 0.25, 0.125, 0.5  # connect, round trip, service time


def run(clients: dict[str, Any] | None = None, **parts: Any) -> RunResult:
    data: dict[str, Any] = {
        "duration": 100,
        "policy": {"profile": "exponential", "max_attempts": 4, "min_wait": 1, "max_wait": 1},
        "clients": {"count": 1, "processes": 1, "cpu_per_attempt": P, **(clients or {})},
        "service": {"kind": "ideal", "latency": L},
        "network": {"rtt": R, "connect": C},
        **parts,
    }
    return simulate(parse_scenario(data))


def durations(result: RunResult) -> list[float]:
    """Each attempt's end minus its start, in record order."""
    a = result.attempts
    return [float(d) for d in a["end"] - a["start"]]


def test_an_attempt_pays_its_cpu_before_the_request_leaves() -> None:
    result = run({"calls_per_client": 2, "arrival": {"kind": "closed"}})
    assert durations(result) == [P + C + R + L, P + R + L]  # the second reuses the connection
    assert result.attempts["pool_wait"].tolist() == [0.0, 0.0]  # CPU is not a pool wait


def test_a_connect_pays_its_cpu_then_the_handshake() -> None:
    result = run({"cpu_per_connect": Q, "calls_per_client": 2, "arrival": {"kind": "closed"}})
    assert durations(result) == [P + Q + C + R + L, P + R + L]


def test_a_process_does_one_piece_of_work_at_a_time_first_come_first_served() -> None:
    # Two clients at 0 in one process: their attempts' work at [0, P] and [P, 2P]; the first
    # client's connect work queues behind the second's attempt: [2P, 2P + Q], then [2P + Q,
    # 2P + 2Q] for the second's connect.
    result = run({"count": 2, "cpu_per_connect": Q})
    assert durations(result) == [2 * P + Q + C + R + L, 2 * P + 2 * Q + C + R + L]
    # Two processes: each does its own.
    result = run({"count": 2, "processes": 2, "cpu_per_connect": Q})
    assert durations(result) == [P + Q + C + R + L] * 2


def test_processes_can_share_a_cpu() -> None:
    # Two processes (two pools) on one CPU, as two pools on one event loop are: the work queues.
    result = run({"count": 2, "processes": 2, "cpus": 1})
    assert durations(result) == [P + C + R + L, 2 * P + C + R + L]
    with pytest.raises(ScenarioError, match=r"clients: .*cpus \(3\) must be <= processes"):
        parse_scenario({"clients": {"count": 4, "processes": 2, "cpus": 3}})


def test_a_refused_connect_costs_its_cpu_and_the_handshake() -> None:
    result = run({"cpu_per_connect": Q}, faults=[{"kind": "outage", "start": 0, "end": 1}])
    assert durations(result)[0] == P + Q + C
    assert result.attempts["start"][1] == P + Q + C + 1  # then the 1 s wait


def test_the_cpu_is_inside_the_attempt_timeout() -> None:
    # Three clients at 0, one process, half a second of work each, a 1.4375 s timeout: the
    # first is done at 0.5 + 0.875; the second leaves at 1 and reaches the server at 1.3125,
    # too late for its answer; the third is still on the CPU (done at 1.5) when its timeout
    # falls due, and never takes a connection.
    result = run(
        {"count": 3, "cpu_per_attempt": 0.5, "timeout": 1.4375}, policy={"max_attempts": 1}
    )
    a = result.attempts
    assert a["outcome"].tolist() == [rec.OK, rec.TIMED_OUT, rec.TIMED_OUT]
    assert durations(result) == [0.5 + C + R + L, 1.4375, 1.4375]
    assert a["executed"].tolist() == [1, 1, 0]  # the second's work done for no one
    assert result.connections is not None and result.connections["connects"] == 2


def test_the_connect_timeout_counts_the_connect_cpu() -> None:
    result = run({"cpu_per_connect": 0.5, "connect_timeout": 0.625}, policy={"max_attempts": 1})
    assert durations(result) == [P + 0.625]  # 0.5 + C = 0.75 > 0.625
    assert result.connections is not None and result.connections["connect_timeouts"] == 1


def test_the_queue_is_lindley_s_recursion() -> None:
    cpu = Cpu()
    assert [cpu.run(0, 1), cpu.run(0.5, 1), cpu.run(5, 0.25), cpu.run(5, 0)] == [1, 2, 5.25, 5.25]


def cpu_bound(rate: float, work: Any, seed: int) -> RunResult:
    """One process, Poisson arrivals, a server that answers at once: the CPU is the queue."""
    return one_process_queue(rate, seed, cpu_per_attempt=work)


def test_a_process_cpu_with_constant_work_is_an_m_d_1_queue() -> None:
    # M/D/1 (Pollaczek-Khinchine): W = S + rho S / (2 (1 - rho)); rho 0.5, S 1: W = 1.5. The
    # relative error's standard deviation over ten seeds was about 1.3%: three of those.
    result = cpu_bound(rate=0.5, work=1.0, seed=5)
    assert steady_mean_response(result) == pytest.approx(1.5, rel=0.04)


@pytest.mark.parametrize("rho", [0.3, 0.6])
def test_a_process_cpu_with_exponential_work_is_an_m_m_1_queue(rho: float) -> None:
    # M/M/1: W = 1 / (mu - lambda), mu = 1. Tolerances as test_network's pool of one.
    result = cpu_bound(rate=rho, work={"dist": "exponential", "mean": 1.0}, seed=11)
    assert steady_mean_response(result) == pytest.approx(
        1 / (1 - rho), rel=0.04 if rho < 0.5 else 0.09
    )


def test_runs_with_cpu_are_deterministic_and_the_draws_are_the_runs_own() -> None:
    work = {"dist": "exponential", "mean": 0.01}
    one, two = (run({"count": 50, "cpu_per_attempt": work, "timeout": 2}) for _ in range(2))
    for field in ("start", "end", "outcome"):
        assert np.array_equal(one.attempts[field], two.attempts[field], equal_nan=True)
    other = run({"count": 50, "cpu_per_attempt": work, "timeout": 2}, seed=1)
    assert not np.array_equal(one.attempts["end"], other.attempts["end"])


@pytest.mark.parametrize("field", ["cpu_per_attempt", "cpu_per_connect"])
def test_negative_cpu_is_refused_naming_the_field(field: str) -> None:
    with pytest.raises(ScenarioError, match=rf"clients\.{field}"):
        parse_scenario({"clients": {field: -0.001}})
    result = CliRunner().invoke(app, ["run", "redis-blip", "--set", f"clients.{field}=-1"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"clients.{field}" in lines[0], result.stderr


def test_fidelity_mode_refuses_a_client_cpu_rather_than_ignore_it() -> None:
    with pytest.raises(ValueError, match="client CPU"):
        run_with_decorators(parse_scenario({"clients": {"cpu_per_attempt": 0.001}}))
