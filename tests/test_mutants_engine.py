"""The engine (``retrysim/sim/engine.py``): behaviour its mutation run found untested.

These pin what a caller of :func:`~retrysim.sim.engine.simulate` sees (records, progress
reports, the attempts budget, a tier's own tenacity policy) that the engine's mutation run
showed no test of its row checked.
"""

from __future__ import annotations

from typing import Any

import pytest
import tenacity

from retrysim.model.scenario import parse_scenario
from retrysim.sim import kernel, limits
from retrysim.sim import records as rec
from retrysim.sim.engine import Engine, simulate
from retrysim.sim.invariants import violations


def _two_tiers(database_faults: list[dict[str, Any]]) -> dict[str, Any]:
    """Ten clients calling a gateway (3 attempts) that calls a database."""
    return {
        "duration": 1,
        "policy": {"max_attempts": 1},
        "clients": {"count": 10},
        "tiers": {
            "gateway": {
                "policy": {"max_attempts": 3, "min_wait": 0.1, "max_wait": 0.1},
                "service": {"kind": "ideal", "latency": 0.001},
            },
            "database": {
                "service": {"kind": "ideal", "latency": 0.001},
                "faults": database_faults,
            },
        },
    }


def test_a_tiers_own_retrying_governs_its_calls_below() -> None:
    """``retryings={"gateway": ...}``: each gateway call to a database that is down makes that
    policy's 5 attempts, not the gateway tier's scenario policy's 3."""
    scenario = parse_scenario(_two_tiers([{"kind": "outage", "end": 100}]))
    mine = tenacity.Retrying(stop=tenacity.stop_after_attempt(5))
    result = simulate(scenario, retryings={"gateway": mine})
    gateway, database = result.tiers
    assert len(gateway.attempts) == 10
    assert database.calls["attempts"].tolist() == [5] * 10
    assert len(database.attempts) == 50


def test_a_served_call_below_answers_its_request_above_as_a_success() -> None:
    """A database call that succeeds answers the gateway's request with no error: every
    request and every top call succeeds at its first attempt."""
    result = simulate(parse_scenario(_two_tiers([])))
    assert violations(result) == []
    assert (result.calls["outcome"] == rec.SUCCEEDED).all()
    assert result.attempts["error"].tolist() == [0] * 10
    assert (result.tiers[1].calls["outcome"] == rec.SUCCEEDED).all()


def test_a_rate_limiters_reject_answer_is_recorded_under_its_answer_code() -> None:
    """A rate limiter's ``reject_answer`` comes back as the value 429: the refused attempts
    are recorded as ``result:429`` and their calls take it as their result."""
    scenario = parse_scenario(
        {
            "duration": 5,
            "clients": {"count": 8, "arrival": {"kind": "burst", "at": 1}},
            "service": {"kind": "rate_limited", "rate": 1, "burst": 3, "reject_answer": 429},
        }
    )
    result = simulate(scenario)
    names = [result.error_names[code] for code in result.attempts["error"].tolist()]
    assert names.count("result:429") == 5
    assert (result.calls["outcome"] == rec.SUCCEEDED).all()
    assert result.calls["attempts"].tolist() == [1] * 8


STORM: dict[str, Any] = {
    "duration": 10,
    "policy": {"max_attempts": 1_000, "min_wait": 0, "max_wait": 0, "jitter": 0},
    "clients": {"count": 5},
    "faults": [{"kind": "outage", "start": 0, "end": 1000}],
}


@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_the_attempts_budget_stops_a_storm(monkeypatch: pytest.MonkeyPatch, engine: str) -> None:
    """A storm of zero waits stops at the attempts budget (here lowered to 300), not after
    every call's 1,000 attempts."""
    monkeypatch.setattr(limits, "ATTEMPTS_FLOOR", 300)
    result = simulate(parse_scenario(STORM), engine=engine)
    assert result.stopped == limits.attempts_stopped(300)
    assert len(result.attempts) == 300


def _reports(data: dict[str, Any]) -> tuple[list[tuple[int, int]], int]:
    seen: list[tuple[int, int]] = []
    result = simulate(parse_scenario(data), progress=lambda done, total: seen.append((done, total)))
    return seen, len(result.calls)


def test_a_short_run_reports_its_progress_once_at_the_end() -> None:
    """A run too short for a report mid-run still tells ``progress`` once, at its end, that
    all the calls it made are done."""
    seen, made = _reports({"duration": 2, "clients": {"count": 7}})
    assert made == 7
    assert seen == [(7, 7)]


def test_a_poisson_runs_reports_count_every_drawn_arrival(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An open loop draws its arrivals up front: every report mid-run counts exactly the calls
    the run makes, not an extrapolation of the calls started so far."""
    monkeypatch.setattr(kernel, "REPORT_EVERY", 8)
    data = {"duration": 10, "clients": {"count": 3, "arrival": {"kind": "poisson", "rate": 6}}}
    seen, made = _reports(data)
    assert len(seen) > 5
    assert {total for _, total in seen} == {made}


def test_a_closed_loop_with_calls_per_client_reports_the_calls_it_will_make(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A closed loop with ``calls_per_client`` knows its calls up front: every report mid-run
    counts clients x calls_per_client, though few have started when the first comes."""
    monkeypatch.setattr(kernel, "REPORT_EVERY", 8)
    data = {
        "duration": 100,
        "clients": {"count": 4, "calls_per_client": 5, "think_time": 1.0},
    }
    seen, made = _reports(data)
    assert made == 20
    assert len(seen) > 3
    assert {total for _, total in seen} == {20}


def _room_at_the_end(data: dict[str, Any]) -> tuple[int, int]:
    """(calls made, room the call columns had for them) as the run ends, read through
    ``progress``'s last report, made before the columns become records."""
    seen: list[tuple[int, int]] = []
    engine = Engine(
        parse_scenario(data),
        progress=lambda done, total: seen.append((engine.calls.size, engine.calls.capacity)),
    )
    engine.run()
    return seen[-1]


def test_an_open_loops_call_columns_are_sized_once_to_its_arrivals() -> None:
    """A Poisson run draws its arrivals up front, so its call columns get room for exactly
    that many calls before the first starts: none grown by half during the run, none to spare
    (5,000 calls: more than the columns' first room)."""
    data = {
        "duration": 50,
        "clients": {"count": 10, "arrival": {"kind": "poisson", "rate": 100}},
    }
    made, room = _room_at_the_end(data)
    assert made > rec.FIRST_CAPACITY
    assert room == made


def test_a_run_of_few_calls_keeps_the_columns_first_room() -> None:
    """Calls known to fit the columns' first room add none to it."""
    data = {"duration": 10, "clients": {"count": 3, "calls_per_client": 2}}
    assert _room_at_the_end(data) == (6, rec.FIRST_CAPACITY)


def test_a_plain_run_keeps_no_replica_or_hedge_column_while_running() -> None:
    """With one replica and no hedging the attempt columns hold only what the run writes:
    33 bytes an attempt while running (no replica or hedge column; the records show 0)."""
    engine = Engine(parse_scenario({"duration": 2, "clients": {"count": 3}}))
    columns = engine.attempts
    assert sum(getattr(columns, name).itemsize for name in columns.fields) == 33
    result = engine.run()
    assert result.attempts["replica"].tolist() == [0, 0, 0]
    assert result.attempts["hedge"].tolist() == [0, 0, 0]
