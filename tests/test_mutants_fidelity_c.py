"""Fidelity-mode behaviour that the mutation run of ``retrysim/sim/fidelity.py`` found untested.

Each test runs a small scenario through the engine and through fidelity mode (the real
decorators on a virtual-time loop), requires the two to agree call by call at every tier, as
``tests/test_fidelity_tiers.py`` does, and checks that the scenario exercised what the test
names: hedged sends cut short by a sibling's answer or by their timeout, answers and give-ups
passed up from a tier below, your own tenacity policy's request timeouts, replicas picked by
the balancer, a guard's refused attempt that is retried, and what a fidelity run reports.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_fixed

from retrysim.model.scenario import Scenario, parse_scenario
from retrysim.retry.guards import GuardSpec
from retrysim.sim import records as rec
from retrysim.sim.engine import simulate
from retrysim.sim.failures import ANSWER_BASE, CODES, TIMEOUT
from retrysim.sim.fidelity import run_with_decorators
from tests.test_fidelity_tiers import Key, assert_tiers_agree, sends

Row = tuple[Any, ...]  # an attempt row as ``per_call`` has it


def rows_of(calls: dict[Key, dict[str, Any]]) -> list[Row]:
    """Every attempt row of a tier: (attempt, wait, outcome, error, executed, start, end)."""
    return [row for call in calls.values() for row in call["rows"]]


def agreed(scenario: Scenario, **options: Any) -> list[dict[Key, dict[str, Any]]]:
    """Both runs of ``scenario`` (with ``options`` for both), which must agree at every tier;
    each tier's calls, top first."""
    engine = simulate(scenario, **options)
    decorated = run_with_decorators(scenario, **options)
    return assert_tiers_agree(scenario, engine, decorated)


# --- hedged sends cut short ------------------------------------------------------------------

#: Every attempt is hedged once 0.1 s after its first send; latencies up to 0.8 s.
HEDGED: dict[str, Any] = {
    "seed": 1,
    "duration": 10,
    "policy": {
        "operation": "worker",
        "max_attempts": 2,
        "hedge": {"enabled": True, "max_attempts": 2, "delay": 0.1},
    },
    "clients": {
        "count": 12,
        "calls_per_client": 1,
        "arrival": {"kind": "uniform", "start": 0, "end": 2},
    },
    "service": {"kind": "ideal", "latency": {"dist": "uniform", "low": 0.05, "high": 0.8}},
}


def test_a_send_its_siblings_answer_cuts_is_cancelled_without_an_error() -> None:
    """No timeout: the send that lost the race ends when its sibling answers, CANCELLED with
    no error code, as the engine records it (not timed out, not left open)."""
    (calls,) = agreed(parse_scenario(HEDGED))
    made = sends(calls)
    cancelled = [row for _, _, row in made if row[2] == rec.CANCELLED]
    assert len(cancelled) >= 5
    assert all(row[3] == 0 for row in cancelled)
    assert not any(row[2] == rec.OPEN for _, _, row in made)
    for call in calls.values():  # a cancelled send ends as its sibling's answer comes
        for row in call["rows"]:
            if row[2] == rec.CANCELLED:
                winners = [r for r in call["rows"] if r[0] == row[0] and r[2] == rec.OK]
                assert [w[6] for w in winners] == [row[6]]


def test_with_a_timeout_a_cut_send_is_cancelled_and_an_expired_one_times_out() -> None:
    """With a 0.3 s timeout per send: a send cut by its sibling's answer before its timeout is
    CANCELLED (error 0); a send whose timeout passes while its sibling still runs is
    TIMED_OUT with TimeoutError at exactly its start plus the timeout."""
    scenario = parse_scenario(HEDGED).with_overrides({"clients.timeout": 0.3})
    (calls,) = agreed(scenario)
    made = sends(calls)
    cancelled = [row for _, _, row in made if row[2] == rec.CANCELLED]
    assert len(cancelled) >= 5
    assert all(row[3] == 0 and row[6] < row[5] + 0.3 for row in cancelled)
    expired = [
        row
        for call in calls.values()
        for row in call["rows"]
        if row[2] == rec.TIMED_OUT and len([r for r in call["rows"] if r[0] == row[0]]) > 1
    ]
    assert len(expired) >= 5  # timed out in a group of two sends
    assert all(row[3] == TIMEOUT and row[6] == row[5] + 0.3 for row in expired)


# --- what a tier below answers ---------------------------------------------------------------

#: Clients -> gateway -> db; the db refuses 40% of requests (ConnectionError) and answers 503
#: to 20%, which the gateway takes as an answer and passes up.
TIERED: dict[str, Any] = {
    "seed": 2,
    "duration": 10,
    "policy": {"operation": "api", "max_attempts": 2},
    "clients": {
        "count": 10,
        "calls_per_client": 2,
        "think_time": 0.5,
        "arrival": {"kind": "uniform", "start": 0, "end": 2},
    },
    "tiers": {
        "gateway": {
            "callers": 2,
            "policy": {"operation": "worker", "max_attempts": 2},
            "timeout": 0.3,
            "service": {"kind": "ideal", "latency": {"dist": "uniform", "low": 0.01, "high": 0.05}},
        },
        "db": {
            "service": {"kind": "ideal", "latency": {"dist": "uniform", "low": 0.05, "high": 0.4}},
            "faults": [
                {"kind": "flaky", "probability": 0.4},
                {"kind": "flaky", "probability": 0.2, "answer": 503},
            ],
        },
    },
}


def test_a_tier_below_passes_up_its_answer_and_the_error_it_gave_up_with() -> None:
    """The gateway's request is answered with what its call to the db ended with: served, the
    db's 503 answer (a value the client's attempt returns), or ConnectionError when the
    gateway's call gave up on it (a failed attempt at the top)."""
    top, db = agreed(parse_scenario(TIERED))
    rows = rows_of(top)
    answered = [row for row in rows if row[2] == rec.OK and row[3] == ANSWER_BASE]
    refused = [row for row in rows if row[2] == rec.FAILED and row[3] == CODES["ConnectionError"]]
    served = [row for row in rows if row[2] == rec.OK and row[3] == 0]
    assert answered and refused and served
    assert any(call["error"] == CODES["ConnectionError"] for call in db.values())


#: Your own tenacity policy: two attempts, 0.1 s apart, on connection errors and timeouts.
OWN_POLICY = Retrying(
    stop=stop_after_attempt(2),
    wait=wait_fixed(0.1),
    retry=retry_if_exception_type((ConnectionError, TimeoutError)),
)


def test_your_own_policy_over_tiers_times_out_requests_at_the_clients_timeout() -> None:
    """Your own policy has no attempt_timeout: a request to the gateway times out by itself at
    the clients' 0.25 s, while the gateway's work and its call to the db run on."""
    scenario = parse_scenario(TIERED).with_overrides({"clients.timeout": 0.25})
    top, *_ = agreed(scenario, retrying=OWN_POLICY)
    rows = rows_of(top)
    timed_out = [row for row in rows if row[2] == rec.TIMED_OUT]
    assert len(timed_out) >= 5
    assert all(row[3] == TIMEOUT and row[6] == row[5] + 0.25 for row in timed_out)
    assert any(row[2] == rec.OK for row in rows)


#: One tier, a 0.3 s client timeout, latencies up to 0.5 s and a blackhole from 1 s to 2 s.
ONE_TIER: dict[str, Any] = {
    "seed": 3,
    "duration": 10,
    "policy": {"operation": "worker", "max_attempts": 3},
    "clients": {
        "count": 10,
        "calls_per_client": 2,
        "think_time": 0.5,
        "timeout": 0.3,
        "arrival": {"kind": "uniform", "start": 0, "end": 3},
    },
    "service": {"kind": "ideal", "latency": {"dist": "uniform", "low": 0.05, "high": 0.5}},
    "faults": [{"kind": "outage", "start": 1, "end": 2, "mode": "blackhole"}],
}


def test_your_own_policy_times_out_slow_and_blackholed_requests_after_the_timeout() -> None:
    """Under your own policy a request times out at its start plus the clients' timeout both
    when the server is slower than that (the work still executes) and when a blackhole never
    answers (nothing executes)."""
    (calls,) = agreed(parse_scenario(ONE_TIER), retrying=OWN_POLICY)
    timed_out = [row for row in rows_of(calls) if row[2] == rec.TIMED_OUT]
    assert all(row[3] == TIMEOUT and row[6] == row[5] + 0.3 for row in timed_out)
    assert sum(row[4] == 0 for row in timed_out) >= 3  # blackholed
    assert sum(row[4] == 1 for row in timed_out) >= 3  # slow


# --- replicas --------------------------------------------------------------------------------

#: Three replicas behind least_outstanding balancing; replica 1 answers 503 half the time.
REPLICAS: dict[str, Any] = {
    "seed": 4,
    "duration": 10,
    "policy": {"operation": "worker", "max_attempts": 3},
    "clients": {
        "count": 12,
        "calls_per_client": 2,
        "think_time": 0.2,
        "arrival": {"kind": "uniform", "start": 0, "end": 1},
    },
    "service": {
        "kind": "ideal",
        "replicas": 3,
        "balance": "least_outstanding",
        "latency": {"dist": "uniform", "low": 0.1, "high": 0.6},
    },
    "faults": [{"kind": "flaky", "probability": 0.5, "answer": 503, "replicas": [1]}],
}


def test_replicas_are_balanced_by_outstanding_requests_and_answer_with_their_faults() -> None:
    """Each attempt goes to the replica with the fewest requests still outstanding (an answered
    one no longer counts), the same one in both runs; replica 1's 503 is the attempt's answer."""
    (calls,) = agreed(parse_scenario(REPLICAS))
    placed = [
        (replica, row)
        for call in calls.values()
        for replica, row in zip(call["replicas"], call["rows"], strict=True)
    ]
    assert {replica for replica, _ in placed} == {0, 1, 2}
    answers = [(replica, row) for replica, row in placed if row[3] >= ANSWER_BASE]
    assert answers and {replica for replica, _ in answers} == {1}


def test_least_outstanding_spreads_a_burst_and_reuses_replicas_that_answered() -> None:
    """A burst of six calls at one instant goes two to each of the three replicas (each pick
    counts the requests still outstanding); once they answer, the next calls start from
    empty replicas again, so the spread holds for the second round too."""
    data = copy.deepcopy(REPLICAS)
    data["faults"] = []
    data["clients"] |= {"count": 6, "arrival": {"kind": "burst", "at": 0.5}, "think_time": 2.0}
    (calls,) = agreed(parse_scenario(data))
    for index in (0, 1):
        firsts = [call["replicas"][0] for key, call in calls.items() if key[1] == index]
        assert sorted(firsts) == [0, 0, 1, 1, 2, 2], index


# --- a guard's refusal, retried --------------------------------------------------------------


class _RefuseFirstAttempt:
    """A guard refusing each call's first attempt with ConnectionRefusedError (a connection
    still warming up): a refusal the policy retries, after its wait."""

    def before_attempt(self, now: float, attempt: int) -> BaseException | None:
        return ConnectionRefusedError("warming up") if attempt == 1 else None

    def after_outcome(self, now: float, error: BaseException | None) -> None:
        return None


def test_a_refused_attempt_that_is_retried_carries_the_wait_before_the_retry() -> None:
    """An attempt a guard refused is recorded, never sent, with the error the guard refused
    it with and the wait tenacity drew before the retry, which starts when that wait ends."""
    data = copy.deepcopy(REPLICAS)
    data |= {
        "faults": [],
        "service": {"kind": "ideal", "latency": {"dist": "uniform", "low": 0.01, "high": 0.05}},
    }
    spec = GuardSpec("warming-up", "call", _RefuseFirstAttempt)
    (calls,) = agreed(parse_scenario(data), guards=[spec])
    for call in calls.values():
        refused, retry = call["rows"][:2]
        assert refused[2:5] == (rec.FAILED, CODES["ConnectionRefusedError"], 0)  # never sent
        assert refused[1] is not None and refused[1] > 0
        assert math.isclose(retry[5], refused[6] + refused[1])
        assert call["outcome"] == rec.SUCCEEDED


# --- what a fidelity run reports -------------------------------------------------------------


def test_a_fidelity_run_reports_no_engine_events() -> None:
    """Fidelity mode steps no event heap: its result counts no engine events (the report's
    "N events" line), while the engine's run of the same scenario counts its own."""
    scenario = parse_scenario(ONE_TIER)
    assert run_with_decorators(scenario).events == 0
    assert simulate(scenario).events > 0
