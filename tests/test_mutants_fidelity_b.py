"""Pin fidelity-mode behaviour that the mutation run of ``retrysim/sim/fidelity.py`` found
untested: the run's end (its ``end_time``, work past ``limits.max_time``, the last follow-up
call), hedged sends, the calls a tier makes below and the deadlines passed down, sends the
limiter holds back, your own tenacity policy's timeouts, the runner under a real fleet
(``retrysim.chaos``), and a few record fields.

Most tests run a small scenario through the engine and through the real decorators and
compare what a reader of the records would see, tier by tier and send by send.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import numpy as np
from tenacity import Retrying, stop_after_attempt, wait_fixed

from retrysim.chaos.http_run import run_http
from retrysim.model.scenario import parse_scenario
from retrysim.sim import records as rec
from retrysim.sim.aio import run_virtual
from retrysim.sim.clock import routed_jitter
from retrysim.sim.engine import RunResult, simulate
from retrysim.sim.failures import CODES, TIMEOUT
from retrysim.sim.fidelity import _Runner, run_with_decorators
from retrysim.sim.result import TierRun

Key = tuple[int, int]  # a call: (client, index), the same call in either run


def _number(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def _tiers(run: RunResult) -> list[TierRun]:
    """A run's tiers, top first; a one-tier run is its own only tier."""
    if run.tiers:
        return run.tiers
    top = np.full(len(run.calls), -1, dtype=np.int64)
    return [TierRun("", run.attempts, run.calls, top, None, 1, None, run.policy, run.engine)]


def records(run: RunResult) -> list[dict[Key, dict[str, Any]]]:
    """Per tier, top first: each call's fields, its sends (attempt, hedge, replica, times,
    wait, outcome, error, executed) in order, and the send above it served, by identity."""
    out: list[dict[Key, dict[str, Any]]] = []
    above: list[tuple[int, int, int, int]] = []
    for tier in _tiers(run):
        calls, attempts = tier.calls, tier.attempts
        keys = [(int(c), int(i)) for c, i in zip(calls["client"], calls["index"], strict=True)]
        mine: dict[Key, dict[str, Any]] = {}
        for row, key in enumerate(keys):
            c = calls[row]
            parent = int(tier.parents[row])
            mine[key] = {
                "start": float(c["start"]),
                "end": _number(c["end"]),
                "outcome": int(c["outcome"]),
                "error": int(c["error"]),
                "attempts": int(c["attempts"]),
                "executions": int(c["executions"]),
                "parent": None if parent < 0 else above[parent],
                "sends": [],
            }
        for a in attempts:
            mine[keys[int(a["call"])]]["sends"].append(
                (
                    int(a["attempt"]),
                    int(a["hedge"]),
                    int(a["replica"]),
                    float(a["start"]),
                    _number(a["end"]),
                    _number(a["wait"]),
                    int(a["outcome"]),
                    int(a["error"]),
                    int(a["executed"]),
                )
            )
        for call in mine.values():
            call["sends"].sort()
        above = [(*keys[int(a["call"])], int(a["attempt"]), int(a["hedge"])) for a in attempts]
        out.append(mine)
    return out


def agree(
    data: dict[str, Any], retrying: Any = None
) -> tuple[RunResult, RunResult, list[dict[Key, dict[str, Any]]]]:
    """Run ``data`` both ways (under your own tenacity policy ``retrying``, if given); assert
    every tier's calls and sends agree. Returns the engine's run, the decorated one and its
    records (for the test's own checks)."""
    scenario = parse_scenario(data)
    engine = simulate(scenario, retrying=retrying)
    decorated = run_with_decorators(scenario, retrying=retrying)
    theirs, ours = records(engine), records(decorated)
    assert len(theirs) == len(ours)
    for a, b in zip(theirs, ours, strict=True):
        assert a.keys() == b.keys()
        differ = [key for key in a if a[key] != b[key]]
        assert not differ, f"{differ[0]}: {a[differ[0]]} != {b[differ[0]]}"
    return engine, decorated, ours


# --- the run's end ---------------------------------------------------------------------------


def test_the_run_ends_when_its_last_call_ends_and_unfinished_calls_do_not_count() -> None:
    """``end_time`` is the latest end of a call that ended: neither the earliest, nor an
    unfinished call's (a black hole with no timeout), nor 0."""
    engine, run, (calls,) = agree(
        {
            "clients": {"count": 6, "arrival": {"kind": "uniform", "start": 0, "end": 4}},
            "service": {"kind": "ideal", "latency": {"dist": "uniform", "low": 0.1, "high": 0.3}},
            "faults": [{"kind": "outage", "start": 1, "end": 2, "mode": "blackhole"}],
        }
    )
    ends = [call["end"] for call in calls.values()]
    assert None in ends  # a call the black hole kept for ever
    finished = [end for end in ends if end is not None]
    assert len(set(finished)) > 1
    assert run.end_time == max(finished) == engine.end_time


def test_a_run_in_which_no_call_ends_ends_at_zero() -> None:
    """Every call waits for ever on a black hole: the run has no end time to report (0)."""
    engine, run, (calls,) = agree(
        {
            "clients": {"count": 2},
            "faults": [{"kind": "outage", "start": 0, "end": 100, "mode": "blackhole"}],
            "limits": {"max_time": 50},
        }
    )
    assert all(call["outcome"] == rec.UNFINISHED for call in calls.values())
    assert run.end_time == 0.0 == engine.end_time


def test_work_still_running_at_max_time_is_not_executed() -> None:
    """The run stops at ``limits.max_time``: a request whose work would end later was never
    executed, and its call is unfinished, as in the engine."""
    *_, (calls,) = agree(
        {
            "clients": {"count": 1},
            "service": {"kind": "ideal", "latency": 10.0},
            "limits": {"max_time": 5},
        }
    )
    (call,) = calls.values()
    assert call["outcome"] == rec.UNFINISHED and call["executions"] == 0
    assert [send[-1] for send in call["sends"]] == [0]


def test_no_follow_up_call_starts_at_the_duration_itself() -> None:
    """A follow-up call due exactly when the duration ends is not made: one second of work,
    one of think time, a four-second run: calls at 0 and 2, none at 4."""
    *_, (calls,) = agree(
        {
            "duration": 4,
            "clients": {
                "count": 1,
                "arrival": {"kind": "burst", "at": 0},
                "calls_per_client": 10,
                "think_time": 1.0,
            },
            "service": {"kind": "ideal", "latency": 1.0},
        }
    )
    assert [call["start"] for call in calls.values()] == [0.0, 2.0]


def test_an_attempts_replica_is_the_only_one_there_is() -> None:
    """With one replica every attempt's ``replica`` is 0, in both runs."""
    flaky = {"kind": "flaky", "start": 0, "end": 10, "probability": 0.5}
    _, run, _ = agree({"clients": {"count": 8}, "faults": [flaky]})
    assert len(run.attempts) > 8
    assert set(run.attempts["replica"].tolist()) == {0}


# --- hedged sends ----------------------------------------------------------------------------

#: Three sends per attempt at most (the next 0.2 s after the latest), three attempts, three
#: replicas; slow answers and many failures, so groups are cut by an answer, time out, fail
#: whole and are retried.
HEDGED: dict[str, Any] = {
    "seed": 4,
    "duration": 10,
    "policy": {
        "operation": "worker",
        "max_attempts": 3,
        "min_wait": 0.1,
        "max_wait": 0.5,
        "hedge": {"enabled": True, "max_attempts": 3, "delay": 0.2},
    },
    "clients": {"count": 6, "calls_per_client": 2, "think_time": 0.5, "timeout": 0.7},
    "service": {"kind": "ideal", "replicas": 3, "latency": {"dist": "exponential", "mean": 0.6}},
    "faults": [{"kind": "flaky", "start": 0, "end": 10, "probability": 0.6}],
}


def test_hedged_sends_are_numbered_drawn_and_ended_as_the_engine_does() -> None:
    """Each send of a hedged attempt is a row of its own: the attempt's number, its index in
    the group, its own draws and replica; a send a sibling's answer made moot is cancelled,
    one that ran out of time timed out; a group that failed whole is retried."""
    *_, (calls,) = agree(HEDGED)
    sends = [send for call in calls.values() for send in call["sends"]]
    assert {send[1] for send in sends} == {0, 1, 2}
    assert any(send[1] > 0 and send[6] == rec.OK for send in sends)  # a hedge won
    assert any(send[6] == rec.CANCELLED for send in sends)
    assert any(send[1] > 0 and send[6] == rec.TIMED_OUT for send in sends)
    assert any(send[0] > 1 and send[1] > 0 for send in sends)  # a retry hedged too
    for call in calls.values():  # one group per attempt, hedges numbered 0, 1, ...
        groups: dict[int, list[int]] = {}
        for send in call["sends"]:
            groups.setdefault(send[0], []).append(send[1])
        assert sorted(groups) == list(range(1, call["attempts"] + 1))
        assert all(group == list(range(len(group))) for group in groups.values())


# --- tiers -----------------------------------------------------------------------------------


def _graph(gateway: dict[str, Any], **more: Any) -> dict[str, Any]:
    """Two clients, one attempt each with 0.5 s, through a gateway (``gateway``: how it
    calls below; ``more``: tiers between it and the database) to a database that takes 1 s."""
    return {
        "duration": 5,
        "policy": {"operation": "api", "max_attempts": 1},
        "clients": {"count": 2, "timeout": 0.5},
        "tiers": {
            "gateway": {
                "callers": 1,
                "service": {"kind": "ideal", "latency": 0.01},
                **gateway,
            },
            **more,
            "db": {"service": {"kind": "ideal", "latency": 1.0}},
        },
    }


def test_work_below_outlives_the_calls_that_gave_up_on_it() -> None:
    """The gateway stops waiting for the database at 0.3 s; the database finishes its work
    anyway (at 1.01 s), after every call of the run ended: that work is executed. Each call
    below names the request above it served."""
    gateway = {"policy": {"operation": "worker", "max_attempts": 1}, "timeout": 0.3}
    *_, (top, db) = agree(_graph(gateway))
    assert [call["end"] for call in db.values()] == [0.31, 0.31]
    sends = [send for call in db.values() for send in call["sends"]]
    assert [send[6:] for send in sends] == [(rec.TIMED_OUT, TIMEOUT, 1)] * 2
    assert sorted(call["parent"] for call in db.values()) == sorted((*key, 1, 0) for key in top)


def test_a_deadline_passed_down_ends_the_call_below_when_it_passes() -> None:
    """With ``propagate_deadline`` the gateway's call to a slow database carries the clients'
    deadline (0.5 s): at it, the call below gives up on a timeout, in both runs."""
    gateway = {"policy": {"operation": "worker", "max_attempts": 3}, "propagate_deadline": True}
    *_, (_, db) = agree(_graph(gateway))
    assert db and all(
        (call["outcome"], call["error"], call["end"]) == (rec.GAVE_UP, TIMEOUT, 0.5)
        for call in db.values()
    )


def test_a_deadline_from_above_is_passed_on_through_every_tier() -> None:
    """Three tiers, each passing the deadline on: the call the service makes to the database
    carries the clients' deadline (0.5 s) through the gateway, which has no timeout of its
    own, and ends at it."""
    passing = {"policy": {"operation": "worker", "max_attempts": 2}, "propagate_deadline": True}
    service = {
        "service": {
            "callers": 1,
            "service": {"kind": "ideal", "latency": 0.01},
            **passing,
        }
    }
    *_, (_, _, db) = agree(_graph(passing, **service))
    assert db and all(
        (call["outcome"], call["error"], call["end"]) == (rec.GAVE_UP, TIMEOUT, 0.5)
        for call in db.values()
    )


# --- the send-rate limiter -------------------------------------------------------------------

#: 429s for three seconds bring the limiter down to half a send a second; the run stops at
#: 4 s (``limits.max_time``), with sends still held back.
PACED: dict[str, Any] = {
    "seed": 2,
    "duration": 10,
    "policy": {
        "operation": "api",
        "max_attempts": 4,
        "min_wait": 0.1,
        "max_wait": 0.5,
        "adaptive": {"limiter": True, "limiter_min_rate": 0.5},
    },
    "clients": {
        "count": 10,
        "calls_per_client": 4,
        "think_time": 0.1,
        "arrival": {"kind": "uniform", "start": 0, "end": 2},
    },
    "service": {"kind": "ideal", "latency": 0.05},
    "faults": [{"kind": "flaky", "start": 0, "end": 3, "probability": 0.5, "error": "RateLimited"}],
    "limits": {"max_time": 4},
}


def test_sends_the_limiter_holds_back_keep_their_waits_and_a_held_call_has_no_attempt() -> None:
    """The limiter holds first sends and retries back: a retry's wait stays the policy's (the
    hold shows only as a later start), and a call whose first send was still held when the
    run stopped is unfinished with no attempt at all, as in the engine."""
    *_, (calls,) = agree(PACED)
    held = [call for call in calls.values() if call["attempts"] == 0]
    assert held and all(call["outcome"] == rec.UNFINISHED for call in held)
    assert all(not call["sends"] for call in held)


# --- your own tenacity policy ----------------------------------------------------------------


def test_your_own_policys_requests_time_out_by_themselves() -> None:
    """A policy of your own has no ``attempt_timeout``: the request enforces the client's
    timeout. A black hole's attempts and too slow answers time out at it, in both runs."""
    data = {
        "clients": {
            "count": 8,
            "timeout": 0.5,
            "arrival": {"kind": "uniform", "start": 0, "end": 4},
        },
        "service": {"kind": "ideal", "latency": {"dist": "uniform", "low": 0.2, "high": 0.7}},
        "faults": [{"kind": "outage", "start": 0, "end": 1, "mode": "blackhole"}],
    }
    retrying = Retrying(stop=stop_after_attempt(2), wait=wait_fixed(0.1))
    *_, (calls,) = agree(data, retrying)
    sends = [send for call in calls.values() for send in call["sends"]]
    timed_out = [send for send in sends if send[6] == rec.TIMED_OUT]
    assert all(send[4] == send[3] + 0.5 for send in timed_out)
    assert {send[3] < 1 for send in timed_out} == {True, False}  # in the black hole, and after
    assert any(send[6] == rec.OK for send in sends)


# --- the runner under a real fleet (retrysim.chaos) ------------------------------------------


def test_calls_start_at_their_arrival_however_late_the_fleet_starts() -> None:
    """A real fleet (``retrysim.chaos``) starts its clients on a loop whose clock began
    before its service and proxy were up: each call still starts at its arrival time on that
    clock, as in the engine, not that much later."""
    scenario = parse_scenario(
        {"clients": {"count": 5, "arrival": {"kind": "uniform", "start": 1, "end": 3}}}
    )
    runner = _Runner(scenario, scenario.seed, None, ())

    async def late() -> None:
        await asyncio.sleep(0.5)  # the service and the proxy starting
        await runner.main()

    with routed_jitter():
        run_virtual(late())
    starts = sorted(call["start"] for call in runner.calls)
    assert starts == sorted(simulate(scenario).calls["start"].tolist())
    assert starts[0] > 1.0


def test_a_real_clients_own_errors_are_recorded_on_its_attempts() -> None:
    """Against a real HTTP service answering 500s, the client's own error (httpx's) fails
    each attempt: it ends, is FAILED, and carries the simulator's code for that error."""
    scenario = parse_scenario(
        {
            "duration": 0.1,
            "policy": {"operation": "api", "max_attempts": 1},
            "clients": {"count": 2},
            "service": {"kind": "ideal", "latency": 0.001},
            "faults": [{"kind": "outage", "start": 0, "end": 5, "error": "ServerError"}],
        }
    )
    result, *_ = run_http(scenario)
    attempts = result.attempts
    assert len(attempts) == 2
    assert set(attempts["outcome"].tolist()) == {rec.FAILED}
    assert set(attempts["error"].tolist()) == {CODES["ServerError"]}
    assert np.all(attempts["end"] >= attempts["start"])
    assert set(result.calls["outcome"].tolist()) == {rec.GAVE_UP}
