"""``[network] draws``: one rtt draw per attempt, or one per leg.

``per_attempt``: one draw is every leg of an attempt (rtt/2 out, rtt/2 back, a read-then-write's
window a whole rtt). ``per_leg`` (the default): each one-way leg is half of a draw of its own
stream, so the legs are independent. Checked here: the legs' correlation (exactly 1, near 0),
the law a round trip's spread follows (per_leg halves its variance), that every leg is the
counter-based draw of its own stream keyed by (seed, stream, call, attempt), that a constant rtt
makes both modes the same run, and that runs are deterministic, in this process and another.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import pytest

from retrysim.model.scenario import ScenarioError, parse_scenario
from retrysim.sim import streams
from retrysim.sim.call import Call
from retrysim.sim.connections import Connections
from retrysim.sim.engine import RunResult, simulate
from retrysim.sim.latency import sampler
from retrysim.sim.streams import NETWORK, NETWORK_BACK, stream_key, unit

MEAN = 0.01  # the exponential rtt's mean: its variance is MEAN ** 2


def scenario_data(draws: str | None, rtt: Any, **parts: Any) -> dict[str, Any]:
    network: dict[str, Any] = {"rtt": rtt, "connect": 0}
    if draws is not None:
        network["draws"] = draws
    return {
        "seed": 21,
        "duration": 400,
        "policy": {"max_attempts": 1},
        "clients": {"count": 50, "arrival": {"kind": "poisson", "rate": 50}},
        "service": {"kind": "ideal", "latency": 0.25},
        "network": network,
        **parts,
    }


def legs(draws: str, n: int = 20_000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Out, back and read-to-write of ``n`` attempts, as the engine asks for them."""
    scenario = parse_scenario(scenario_data(draws, {"dist": "exponential", "mean": MEAN}))
    connections = Connections(scenario, seed=7)
    keys = [(Call(i, i % 97, i // 97).key, 1 + i % 3) for i in range(n)]
    out = np.array([connections.out(k, a) for k, a in keys])
    back = np.array([connections.back(k, a) for k, a in keys])
    window = np.array([connections.read_to_write(k, a) for k, a in keys])
    return out, back, window


def test_the_default_is_per_leg_and_a_wrong_value_is_refused_naming_the_key() -> None:
    network = parse_scenario({"network": {"rtt": 0.01}}).network
    assert network is not None and network.draws == "per_leg"
    with pytest.raises(ScenarioError, match=r"network\.draws.*'per_leg' or 'per_attempt'"):
        parse_scenario({"network": {"rtt": 0.01, "draws": "per_call"}})


def test_per_attempt_legs_are_one_draw() -> None:
    out, back, window = legs("per_attempt")
    assert (out == back).all()  # correlation exactly 1
    assert (window == 2 * out).all()  # the window is the whole rtt: half back, half out
    assert np.corrcoef(out, back)[0, 1] == pytest.approx(1.0, abs=1e-12)


def test_per_leg_legs_are_independent() -> None:
    # 20,000 pairs: the sample correlation of independent legs has a standard error of
    # 1/sqrt(20,000) = 0.007; four of those.
    out, back, window = legs("per_leg")
    assert abs(np.corrcoef(out, back)[0, 1]) < 0.03
    assert abs(np.corrcoef(out, window)[0, 1]) < 0.03
    assert abs(np.corrcoef(back, window)[0, 1]) < 0.03
    # each leg is still half an rtt draw: exponential, mean MEAN / 2
    for leg in (out, back):
        assert leg.mean() == pytest.approx(MEAN / 2, rel=0.03)
        assert leg.std() == pytest.approx(MEAN / 2, rel=0.05)
    assert window.mean() == pytest.approx(MEAN, rel=0.03)  # two legs: a round trip's mean


def test_each_leg_is_the_counter_based_draw_of_its_own_stream() -> None:
    """An attempt's time on an open connection is its leg out (NETWORK's draw) plus the
    service time plus its leg back (NETWORK_BACK's draw), each drawn at (seed, stream, call,
    attempt): nothing depends on the order events ran in."""
    data = scenario_data("per_leg", {"dist": "exponential", "mean": MEAN}, duration=20)
    result = simulate(parse_scenario(data))
    rtt = sampler(parse_scenario(data).network.rtt)  # type: ignore[union-attr]
    out_key, back_key = stream_key(21, NETWORK), stream_key(21, NETWORK_BACK)
    calls = result.calls
    a = result.attempts
    assert len(a) > 500
    for row in range(len(a)):
        call = int(a["call"][row])
        key = Call(call, int(calls["client"][call]), int(calls["index"][call])).key
        n = int(a["attempt"][row])
        expected = rtt(unit(out_key, key, n)) / 2 + 0.25 + rtt(unit(back_key, key, n)) / 2
        assert a["end"][row] - a["start"][row] == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_every_stream_has_its_own_purpose() -> None:
    purposes = [v for k, v in vars(streams).items() if k.isupper() and isinstance(v, int)]
    named = [
        streams.JITTER, streams.LATENCY, streams.ARRIVAL, streams.RESET_POINT, streams.NETWORK,
        streams.CONNECT, streams.SERVER_DRAW, streams.CPU, streams.CONNECT_CPU,
        streams.NETWORK_BACK, streams.OCC_READ_BACK, streams.OCC_WRITE_OUT,
    ]  # fmt: skip
    assert len(set(named)) == len(named)
    assert set(named) <= set(purposes)
    assert max(named) < streams.FAULT_BASE


def round_trips(draws: str) -> np.ndarray:
    """Each attempt's time beyond its service time: its trip out and back (connect is 0)."""
    result = simulate(parse_scenario(scenario_data(draws, {"dist": "exponential", "mean": MEAN})))
    a = result.attempts
    assert len(a) > 15_000
    return np.asarray(a["end"] - a["start"] - 0.25)


def test_a_round_trip_has_rtts_mean_either_way_and_half_its_variance_per_leg() -> None:
    # 20,000 attempts: the variance of an exponential sample has a relative standard error of
    # sqrt(8/20,000) = 2%, of a gamma(2) one less; the tolerances are four of those.
    whole, halves = round_trips("per_attempt"), round_trips("per_leg")
    assert whole.mean() == pytest.approx(MEAN, rel=0.03)
    assert halves.mean() == pytest.approx(MEAN, rel=0.03)
    assert whole.var() == pytest.approx(MEAN**2, rel=0.08)
    assert halves.var() == pytest.approx(MEAN**2 / 2, rel=0.08)


CONSTANT_CASES: dict[str, dict[str, Any]] = {
    "ideal": {},
    "a flaky server error and resets": {
        "policy": {"max_attempts": 3, "retry_on": ["ServerError", "ConnectionResetError"]},
        "faults": [
            {"kind": "flaky", "start": 0, "end": 200, "probability": 0.2, "error": "ServerError"},
            {"kind": "reset", "start": 100, "end": 300, "probability": 0.2},
        ],
    },
    "read then write": {
        "policy": {"max_attempts": 3},
        "service": {"kind": "occ", "protocol": "read_then_write", "latency": 0.001},
    },
}


@pytest.mark.parametrize("case", sorted(CONSTANT_CASES))
def test_with_a_constant_rtt_both_modes_are_the_same_run(case: str) -> None:
    """Half of a constant is the same for every leg, so the modes differ only in what they
    draw: scenarios with a constant rtt keep their results whichever is chosen."""
    parts = CONSTANT_CASES[case]
    runs = [
        simulate(parse_scenario({**scenario_data(draws, 0.125, duration=60), **parts}))
        for draws in ("per_leg", "per_attempt")
    ]
    assert len(runs[0].attempts) > 1000
    assert runs[0].attempts.tobytes() == runs[1].attempts.tobytes()
    assert runs[0].calls.tobytes() == runs[1].calls.tobytes()


def test_read_then_write_conflicts_depend_on_the_draws_with_a_random_rtt() -> None:
    """A random rtt: the modes draw different windows, and the conflicts move with them."""
    occ = {
        "policy": {"max_attempts": 1},
        "service": {"kind": "occ", "protocol": "read_then_write", "latency": 0.001},
    }
    rtt = {"dist": "exponential", "mean": 0.02}
    conflicts = [
        int((simulate(parse_scenario({**scenario_data(d, rtt, duration=60), **occ})).attempts
             ["error"] > 0).sum())
        for d in ("per_leg", "per_attempt")
    ]  # fmt: skip
    assert min(conflicts) > 0 and conflicts[0] != conflicts[1]


# -- determinism ---------------------------------------------------------------------------------


def lognormal_fleet(draws: str) -> RunResult:
    data = scenario_data(
        draws,
        {"dist": "lognormal", "median": 0.0004, "p99": 0.008},
        duration=20,
        faults=[
            {"kind": "outage", "start": 5, "end": 7, "error": "redis.exceptions.ConnectionError"}
        ],
        policy={"profile": "documented", "max_attempts": 4, "min_wait": 0.1},
    )
    data["network"]["accept_backlog"] = 20
    return simulate(parse_scenario(data))


def fingerprint(draws: str) -> bytes:
    result = lognormal_fleet(draws)
    return result.attempts.tobytes() + result.calls.tobytes()


@pytest.mark.parametrize("draws", ["per_leg", "per_attempt"])
def test_runs_are_deterministic_here_and_in_another_process(draws: str) -> None:
    here = fingerprint(draws)
    assert fingerprint(draws) == here
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        assert pool.submit(fingerprint, draws).result() == here


def test_the_two_modes_differ_with_a_random_rtt() -> None:
    assert fingerprint("per_leg") != fingerprint("per_attempt")
