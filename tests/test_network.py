"""The network and connection pools, against sums worked by hand and queueing theory.

Every timing below is made of binary fractions (0.25, 0.125, ...), so sums are exact and the
tests compare with ``==`` where the hand computation is exact.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from retrysim.model.scenario import parse_scenario
from retrysim.results.metrics import summarize
from retrysim.sim import records as rec
from retrysim.sim.engine import RunResult, simulate
from retrysim.sim.failures import CODES
from retrysim.sim.fidelity import run_with_decorators

C, R, L = 0.25, 0.125, 0.5  # connect, round trip, service time


def run(**parts: Any) -> RunResult:
    data: dict[str, Any] = {
        "duration": 100,
        "policy": {"profile": "exponential", "max_attempts": 4, "min_wait": 1, "max_wait": 1},
        "clients": {"count": 1},
        "service": {"kind": "ideal", "latency": L},
        "network": {"rtt": R, "connect": C},
    }
    for key, value in parts.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        elif value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return simulate(parse_scenario(data))


def durations(result: RunResult) -> list[float]:
    a = result.attempts
    return [float(d) for d in a["end"] - a["start"]]


def test_first_attempt_pays_connect_then_round_trip_and_service() -> None:
    result = run()
    assert durations(result) == [C + R + L]
    assert result.attempts["executed"].tolist() == [1]
    assert result.connections == {
        "connects": 1,
        "connect_failures": 0,
        "connect_timeouts": 0,
        "pool_waits": 0,
    }


def test_later_calls_reuse_the_open_connection() -> None:
    result = run(clients={"calls_per_client": 3, "arrival": {"kind": "closed"}})
    assert durations(result) == [C + R + L, R + L, R + L]
    assert result.connections is not None and result.connections["connects"] == 1


def test_a_refused_connect_costs_the_handshake_and_every_retry_connects_again() -> None:
    # Down from 0 to 2.5: attempts at 0, 0.25+1, 2.5+1... each refused after C; the wait
    # between attempts is 1 s (exponential profile, min = max = 1).
    result = run(faults=[{"kind": "outage", "start": 0, "end": 2.5}])
    a = result.attempts
    assert durations(result) == [C, C, C + R + L]
    assert a["start"].tolist() == [0, C + 1, 2 * (C + 1)]
    assert a["error"].tolist() == [CODES["ConnectionError"], CODES["ConnectionError"], 0]
    assert result.connections is not None
    assert result.connections["connects"] == 3 and result.connections["connect_failures"] == 2


def test_an_error_from_a_live_server_costs_a_round_trip_and_keeps_the_connection() -> None:
    # The first call succeeds (opening the connection); the second call's first attempt meets
    # a ServerError: one round trip, no reconnect, and its retry pays no connect either.
    result = run(
        clients={"calls_per_client": 2, "arrival": {"kind": "closed"}},
        policy={"retry_on": ["ServerError"]},
        faults=[
            {"kind": "flaky", "start": 0.5, "end": 1.0, "probability": 1, "error": "ServerError"}
        ],
    )
    first_end = C + R + L
    assert first_end < 1.0  # the second call starts inside the flaky window
    assert durations(result) == [C + R + L, R, R + L]
    assert result.connections is not None and result.connections["connects"] == 1


def test_a_connection_error_on_an_open_connection_closes_it() -> None:
    result = run(
        clients={"calls_per_client": 2, "arrival": {"kind": "closed"}},
        faults=[{"kind": "flaky", "start": 0.5, "end": 1.0, "probability": 1}],
    )
    # The ConnectionError comes back after the round trip; the retry connects again.
    assert durations(result) == [C + R + L, R, C + R + L]
    assert result.connections is not None and result.connections["connects"] == 2


def test_a_black_hole_costs_the_connect_timeout_or_else_the_client_timeout() -> None:
    fault = [{"kind": "outage", "start": 0, "end": 0.5, "mode": "blackhole"}]
    result = run(faults=fault, clients={"connect_timeout": 0.375, "timeout": 2})
    a = result.attempts
    assert durations(result)[0] == 0.375
    assert a["outcome"][0] == rec.FAILED and a["error"][0] == CODES["TimeoutError"]
    assert result.connections is not None and result.connections["connect_timeouts"] == 1
    result = run(faults=fault, clients={"timeout": 2})
    a = result.attempts
    assert durations(result)[0] == 2 and a["outcome"][0] == rec.TIMED_OUT


def test_a_reset_hits_after_its_share_of_the_work_and_travels_back() -> None:
    # Resets, like latency spikes, hit requests that reach the server inside their window.
    result = run(faults=[{"kind": "reset", "start": 0.25, "end": 0.5, "probability": 1}])
    a = result.attempts
    share = (a["end"][0] - a["start"][0] - C - R) / L  # what is left once the trips are paid
    assert 0 <= share < 1
    assert a["error"][0] == CODES["ConnectionResetError"] and a["executed"][0] == 1


def test_the_client_timeout_covers_the_whole_trip_and_an_answer_on_the_dot_wins() -> None:
    exactly = C + R + L  # 0.875: the answer is heard at the very instant the timeout falls due
    result = run(clients={"timeout": exactly})
    assert result.attempts["outcome"].tolist() == [rec.OK]
    result = run(clients={"timeout": 0.75, "calls_per_client": 1})
    a = result.attempts
    assert a["outcome"][0] == rec.TIMED_OUT and a["end"][0] == 0.75
    assert a["executed"][0] == 1  # the server did the work for no one


def test_without_a_network_and_pool_the_records_are_unchanged() -> None:
    """A scenario that models no connections takes the direct path: no pool waits, no trips."""
    result = run(network=None, faults=[{"kind": "flaky", "start": 0, "probability": 0.5}])
    assert result.connections is None
    assert result.attempts["pool_wait"].tolist() == [0.0] * len(result.attempts)
    assert "connections" not in summarize(result)


def test_fidelity_mode_refuses_connections_rather_than_ignore_them() -> None:
    with pytest.raises(ValueError, match="connections"):
        run_with_decorators(parse_scenario({"network": {"rtt": 0.01}}))


# --- pools ---------------------------------------------------------------------------------


def one_process_queue(
    rate: float, seed: int, latency: Any = 0, calls: int = 20_000, **clients: Any
) -> RunResult:
    """One client process, Poisson arrivals, an ideal server of ``latency``, one attempt a
    call; ``clients`` adds what makes the single-server queue (a pool of one, a CPU)."""
    return simulate(
        parse_scenario(
            {
                "seed": seed,
                "duration": calls / rate,
                "policy": {"max_attempts": 1},
                "clients": {
                    "count": 1000,
                    "processes": 1,
                    "arrival": {"kind": "poisson", "rate": rate},
                    **clients,
                },
                "service": {"kind": "ideal", "latency": latency},
            }
        )
    )


def pooled(rate: float, latency: Any, seed: int) -> RunResult:
    """One process, one connection, Poisson arrivals, an ideal server: a single-server queue."""
    return one_process_queue(rate, seed, latency, pool_size=1)


def steady_mean_response(result: RunResult, warm_up: float = 0.1) -> float:
    calls = result.calls
    kept = calls[int(len(calls) * warm_up) :]
    return float(np.mean(kept["end"] - kept["start"]))


@pytest.mark.parametrize("rho", [0.3, 0.6])
def test_a_pool_of_one_is_an_m_m_1_queue(rho: float) -> None:
    # M/M/1: W = 1 / (mu - lambda). Over ten seeds, 18,000 calls kept, the relative error of
    # the mean response had a standard deviation of 1.3% at rho 0.3 and 3.0% at rho 0.6; the
    # tolerance is three of those.
    result = pooled(rate=rho, latency={"dist": "exponential", "mean": 1.0}, seed=11)
    expected = 1 / (1 - rho)
    assert steady_mean_response(result) == pytest.approx(expected, rel=0.04 if rho < 0.5 else 0.09)
    # Waiting for the connection is the queueing delay: Wq = rho / (mu - lambda).
    waits = result.attempts["pool_wait"][len(result.attempts) // 10 :]
    assert float(np.mean(waits)) == pytest.approx(rho / (1 - rho), rel=0.15)


def test_a_pool_of_one_with_constant_work_is_an_m_d_1_queue() -> None:
    # M/D/1: W = 1/mu + rho / (2 mu (1 - rho)); rho 0.5, mu 1: W = 1.5. The relative error's
    # standard deviation over ten seeds was 1.3%: three of those.
    result = pooled(rate=0.5, latency=1.0, seed=5)
    assert steady_mean_response(result) == pytest.approx(1.5, rel=0.04)


def test_attempts_queue_first_come_first_served_and_the_report_counts_them() -> None:
    # Four clients at once, one process, two connections, service 0.5 and no network: two go
    # at 0, the next two take the connections as they come back at 0.5.
    scenario = parse_scenario(
        {
            "policy": {"max_attempts": 1},
            "clients": {"count": 4, "processes": 1, "pool_size": 2},
            "service": {"kind": "ideal", "latency": 0.5},
        }
    )
    result = simulate(scenario)
    a = result.attempts
    assert sorted(a["pool_wait"].tolist()) == [0, 0, 0.5, 0.5]
    assert sorted(a["end"].tolist()) == [0.5, 0.5, 1.0, 1.0]
    doc = summarize(result)
    assert doc["connections"]["pool_wait"]["attempts"] == 2
    assert doc["connections"]["pool_wait"]["mean"] == 0.5
    assert doc["connections"]["pool_waits"] == 2


def test_a_timeout_in_the_pool_queue_leaves_it_and_frees_nothing_twice() -> None:
    scenario = parse_scenario(
        {
            "policy": {"max_attempts": 1},
            "clients": {"count": 3, "processes": 1, "pool_size": 1, "timeout": 0.75},
            "service": {"kind": "ideal", "latency": 0.5},
        }
    )
    a = simulate(scenario).attempts
    # One runs 0-0.5; the next gets the connection at 0.5 and runs to 1.0 (> 0.75: it times
    # out at 0.75, and its connection is closed); the third times out at 0.75 still queued.
    outcomes = sorted(zip(a["end"].tolist(), a["outcome"].tolist(), strict=True))
    assert outcomes == [(0.5, rec.OK), (0.75, rec.TIMED_OUT), (0.75, rec.TIMED_OUT)]


def test_an_attempt_still_queued_for_a_connection_at_the_end_records_no_pool_wait() -> None:
    """Both calls come at 5 s; one holds the only connection for 10 s, the other is still
    queued when the run stops at its time limit: it never had a connection, so no pool wait
    (not the time it came to the pool), and the document counts no waited attempt."""
    result = simulate(
        parse_scenario(
            {
                "duration": 6,
                "limits": {"max_time": 8},
                "policy": {"max_attempts": 1},
                "clients": {
                    "count": 2,
                    "processes": 1,
                    "pool_size": 1,
                    "arrival": {"kind": "burst", "at": 5.0},
                },
                "service": {"kind": "ideal", "latency": 10.0},
            }
        )
    )
    a = result.attempts
    assert a["outcome"].tolist() == [rec.OPEN, rec.OPEN] and result.stopped is not None
    assert a["pool_wait"].tolist() == [0.0, 0.0]
    assert result.connections is not None and result.connections["pool_waits"] == 1
    assert summarize(result)["connections"]["pool_wait"]["attempts"] == 0


def test_processes_have_pools_of_their_own() -> None:
    scenario = parse_scenario(
        {
            "policy": {"max_attempts": 1},
            "clients": {"count": 4, "processes": 2, "pool_size": 1},
            "service": {"kind": "ideal", "latency": 0.5},
        }
    )
    a = simulate(scenario).attempts
    # Clients 0 and 2 share process 0, clients 1 and 3 process 1: one of each pair waits.
    assert sorted(a["pool_wait"].tolist()) == [0, 0, 0.5, 0.5]


# --- read-then-write contention ------------------------------------------------------------


def test_read_then_write_conflicts_are_decided_between_the_read_and_the_write() -> None:
    # Two clients at 0; rtt 0.125, connect 0.25, read and write 0.0625 each; no backoff.
    # Both: connected 0.25, read arrives 0.3125, answers at 0.375 with version 0; both writes
    # arrive at 0.5. Client 0's write (scheduled first) commits; client 1's is stale: Conflict.
    # Both answers are heard at 0.5 + 0.0625 + 0.0625 = 0.625. Client 1 retries at once on its
    # open connection: read arrives 0.6875, answers 0.75 (version 1), write arrives 0.875,
    # commits, answer heard at 1.0.
    scenario = parse_scenario(
        {
            "policy": {"profile": "exponential", "max_attempts": 3, "min_wait": 0, "max_wait": 0},
            "clients": {"count": 2},
            "network": {"rtt": 0.125, "connect": 0.25},
            "service": {"kind": "occ", "protocol": "read_then_write", "latency": 0.0625},
        }
    )
    result = simulate(scenario)
    a = result.attempts
    rows = sorted(
        zip(
            a["client"].tolist(),
            a["attempt"].tolist(),
            a["end"].tolist(),
            a["error"].tolist(),
            strict=True,
        )
    )
    assert rows == [(0, 1, 0.625, 0), (1, 1, 0.625, CODES["Conflict"]), (1, 2, 1.0, 0)]
    assert a["executed"].tolist().count(1) == 2  # two commits, one stale write done for no one


def test_read_then_write_with_no_round_trip_has_no_conflict_window() -> None:
    # Reads and writes back to back with nothing between them: a burst of 50 commits serially
    # only where writes meet at the same instant, which the versions settle in order.
    data = {
        "policy": {"max_attempts": 1},
        "clients": {"count": 50, "arrival": {"kind": "uniform", "end": 10}},
        "service": {"kind": "occ", "protocol": "read_then_write", "latency": 0.001},
    }
    calls = simulate(parse_scenario(data)).calls
    assert (calls["outcome"] == rec.SUCCEEDED).all()
    single = simulate(parse_scenario({**data, "service": {"kind": "occ", "latency": 0.5}})).calls
    assert (single["outcome"] == rec.GAVE_UP).any()  # the single-request window does conflict


# --- the listener's backlog ------------------------------------------------------------------


def test_a_connect_past_the_backlog_waits_for_its_syn_to_be_sent_again() -> None:
    # Three clients connect at once to a listener holding two: the third's SYN is dropped and
    # sent again after syn_retry (1 s), when the first two have opened (at C).
    result = run(clients={"count": 3}, network={"accept_backlog": 2})
    assert durations(result) == [C + R + L, C + R + L, 1 + C + R + L]
    # A shorter retry finds them still opening and doubles: 0.125, then 0.125 + 0.25.
    result = run(clients={"count": 3}, network={"accept_backlog": 2, "syn_retry": 0.125})
    assert durations(result) == [C + R + L, C + R + L, 0.375 + C + R + L]
    assert result.connections is not None and result.connections["connects"] == 3


def test_the_connect_timeout_counts_the_syn_retries() -> None:
    result = run(
        clients={"count": 2, "connect_timeout": 0.5},
        network={"accept_backlog": 1},
        policy={"max_attempts": 1},
    )
    assert durations(result) == [C + R + L, 0.5]
    assert result.connections is not None and result.connections["connect_timeouts"] == 1


def test_without_a_backlog_any_number_connect_at_once() -> None:
    result = run(clients={"count": 50})
    assert durations(result) == [C + R + L] * 50
