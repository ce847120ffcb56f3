"""The lock, against queueing theory and against hand-worked cases.

Alone, each server runs on ``MiniEngine`` (tests/test_service.py) with hand-picked requests;
inside real runs (``simulate``), Poisson arrivals check the means queueing theory gives. Every
statistical tolerance is a few standard errors of the estimate it bounds, said where it is set;
the seeds are fixed, so a run is the same on every machine and a failure is a real change.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from retrysim.scenario import Lock, parse_scenario
from retrysim.sim import records as rec
from retrysim.sim.engine import RunResult, simulate
from retrysim.sim.failures import CODES, CONFLICT, TIMEOUT
from retrysim.sim.invariants import violations
from retrysim.sim.service import LockServer, make_server
from tests.test_service import MiniEngine


class Host(MiniEngine):
    """MiniEngine whose client timeouts reach the server, as the engine's do."""

    def abandon(self, t: float, a: int) -> None:
        def give_up(_: Any) -> None:
            if a in self.open:
                self.respond(None, a, TIMEOUT)
                self.server.abandon(None, a)

        self.at(t, give_up, None)


def lock(**kw: Any) -> Lock:
    return Lock(kind="lock", **kw)


def served(server_spec: Lock, requests: list[tuple[float, float]]) -> Host:
    """Run ``requests`` (arrival time, work) through a fresh server; request i is attempt i."""
    host = Host()
    host.server = make_server(host, server_spec)
    for a, (t, work) in enumerate(requests):
        host.request(t, a, work)
    host.run()
    return host


def ends(host: Host) -> list[float]:
    return [host.answers[a][0] for a in sorted(host.answers)]


# --- against queueing theory ------------------------------------------------------------------

EXPONENTIAL_1S = {"dist": "exponential", "mean": 1.0}
WARM_UP = 0.1  # the first tenth of the calls: the server starts empty, far from steady state


def poisson_run(service: dict[str, Any], rate: float, duration: float, seed: int) -> RunResult:
    """Open-loop Poisson arrivals, one attempt per call, no faults, no timeouts."""
    scenario = parse_scenario(
        {
            "seed": seed,
            "duration": duration,
            "policy": {"max_attempts": 1},
            "clients": {"count": 1, "arrival": {"kind": "poisson", "rate": rate}},
            "service": service,
        }
    )
    result = simulate(scenario)
    assert violations(result) == []
    assert np.all(result.calls["outcome"] == rec.SUCCEEDED)
    return result


def steady(result: RunResult) -> np.ndarray:
    calls = result.calls[np.argsort(result.calls["start"], kind="stable")]
    return calls[int(len(calls) * WARM_UP) :]


def batch_means(values: np.ndarray, batches: int = 20) -> tuple[float, float]:
    """The mean and its standard error from the means of ``batches`` consecutive batches.

    Response times of neighbouring calls are correlated; batches many relaxation times long
    (here ~900 s against tens of seconds) are nearly independent, so the spread of their means
    estimates the standard error honestly. Checked over seeds 0-19 for each case below that
    uses it: the batch-means error was within about 10% of the spread of the means across
    seeds.
    """
    means = np.array([chunk.mean() for chunk in np.array_split(values, batches)])
    return float(values.mean()), float(means.std(ddof=1) / math.sqrt(batches))


def mm1_standard_error(rho: float, mu: float, seconds: float) -> float:
    """Standard error of the mean response time of an M/M/1 (FIFO or PS) run ``seconds`` long.

    With exponential work both disciplines have the same birth-death number-in-system process,
    whose time average has asymptotic variance 2 rho (1 + rho) / (mu (1 - rho)^4) per second
    (Whitt, "Planning queueing simulations", 1989); Little's law turns it into response time
    (divide by lambda). Over 30 seeds the call-averaged response spread 0.6-0.8 times this,
    so it is a conservative error.
    """
    variance = 2 * rho * (1 + rho) / (mu * (1 - rho) ** 4) / seconds
    return math.sqrt(variance) / (rho * mu)


# --- the lock ----------------------------------------------------------------------------------


def test_lock_waiters_take_turns_in_arrival_order() -> None:
    host = served(lock(latency=1.0), [(0.0, 1.0), (0.2, 1.0), (0.1, 1.0)])
    assert ends(host) == [1.0, 3.0, 2.0]  # the one at 0.1 queued before the one at 0.2
    assert host.server.capacity == 1.0


def test_lock_on_busy_fail_is_a_try_lock() -> None:
    # Held 0-1 by the first; the second tries at 0.5 and fails at once; the third tries at
    # 1.2, after the release, and holds it until 2.2.
    host = served(lock(latency=1.0, on_busy="fail"), [(0.0, 1.0), (0.5, 1.0), (1.2, 1.0)])
    assert host.answers == {0: (1.0, 0, None), 1: (0.5, CONFLICT, None), 2: (2.2, 0, None)}
    assert set(host.executed) == {0, 2}


def test_lock_full_queue_fails_with_the_busy_error() -> None:
    spec = lock(latency=1.0, queue_limit=1, busy_error="ConnectionAbortedError")
    host = served(spec, [(0.0, 1.0)] * 3)
    assert host.answers == {
        0: (1.0, 0, None),
        1: (2.0, 0, None),
        2: (0.0, CODES["ConnectionAbortedError"], None),
    }


def test_lock_wait_timeout_fails_a_waiter_then_and_frees_its_place() -> None:
    # Hold 1 s, wait at most 1.5 s; three at t=0 and one at 1.6. The first holds 0-1; the
    # second waited 1 s, holds 1-2; the third has waited 1.5 s at t=1.5 and fails then,
    # leaving the queue; the fourth queues at 1.6 and holds 2-3. (The second's own wait
    # timeout, at 1.5, finds it holding the lock and does nothing.)
    host = served(lock(latency=1.0, wait_timeout=1.5), [(0, 1.0), (0, 1.0), (0, 1.0), (1.6, 1.0)])
    assert host.answers == {
        0: (1.0, 0, None),
        1: (2.0, 0, None),
        2: (1.5, CONFLICT, None),
        3: (3.0, 0, None),
    }
    assert set(host.executed) == {0, 1, 3}


def test_lock_wait_timeout_removes_a_waiter_whose_client_already_left() -> None:
    # The second's client gives up at 0.5; its wait timeout (1.0) still takes it out of the
    # queue before the lock frees at 2.0, so it is never executed and answers no one twice.
    host = Host()
    host.server = LockServer(host, lock(latency=2.0, wait_timeout=1.0))
    host.request(0.0, 0, 2.0)
    host.request(0.0, 1, 2.0)
    host.abandon(0.5, 1)
    host.run()
    assert host.answers == {0: (2.0, 0, None), 1: (0.5, TIMEOUT, None)}
    assert set(host.executed) == {0}


def test_lock_with_waiters_is_mm1() -> None:
    """Exponential holds, Poisson arrivals, waiting: M/M/1, E[T] = 1 / (mu - lambda)."""
    rho = 0.6
    calls = steady(poisson_run({"kind": "lock", "latency": EXPONENTIAL_1S}, rho, 20_000, 4))
    seconds = float(calls["start"][-1] - calls["start"][0])
    took = calls["end"] - calls["start"]
    # Measured: 2.445, tolerance +-0.322.
    assert took.mean() == pytest.approx(2.5, abs=3 * mm1_standard_error(rho, 1.0, seconds))


def test_lock_with_a_constant_hold_is_md1() -> None:
    """Constant hold 1/mu: M/D/1, E[T] = 1/mu + rho / (2 mu (1 - rho)) (Pollaczek-Khinchine)."""
    rho = 0.7
    calls = steady(poisson_run({"kind": "lock", "latency": 1.0}, rho, 20_000, 5))
    mean, error = batch_means(calls["end"] - calls["start"])
    expected = 1 + rho / (2 * (1 - rho))  # 2.167 s
    # Measured: 2.079 +- 0.039 (-2.3 errors; over seeds 0-19 the mean was 2.162, sd 0.058).
    assert mean == pytest.approx(expected, abs=4 * error)


def test_lock_contention_in_a_run_serialises_and_retries_get_everyone_through() -> None:
    # 20 workers at t=0 try a lock held 0.05 s; a busy lock fails at once. Every call
    # eventually succeeds with one execution; no two holds overlap.
    result = simulate(
        parse_scenario(
            {
                "policy": {"max_attempts": 50, "min_wait": 0.01, "max_wait": 1.0},
                "clients": {"count": 20},
                "service": {"kind": "lock", "latency": 0.05, "on_busy": "fail"},
            }
        )
    )
    assert violations(result) == []
    assert np.all(result.calls["outcome"] == rec.SUCCEEDED)
    assert np.all(result.calls["executions"] == 1)
    a = result.attempts
    held = np.sort(a["end"][a["outcome"] == rec.OK])
    assert np.all(np.diff(held) >= 0.05 - 1e-9)  # one holder at a time
    assert np.all(a["end"][a["error"] == CONFLICT] == a["start"][a["error"] == CONFLICT])
