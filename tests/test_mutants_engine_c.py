"""The engine (``retrysim/sim/engine.py``): behaviour its mutation run found untested.

These pin the end of an attempt as the engine hears it (from line 406 of the module on): an
answer over a pool with no network, a replica's count of outstanding requests, what guards
are told of a success or an answer, a wait a propagated deadline cuts short, a served None
the policy rejects, an answer the policy takes as the call's result, and ``retryings``
naming a tier. Each fails under a mutant of the module that survived the rest of its row.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from tenacity import Retrying, retry_if_result, stop_after_attempt, wait_fixed

from retrysim.model.scenario import parse_scenario
from retrysim.model.tier_keys import UnknownTierError
from retrysim.sim import records as rec
from retrysim.sim.engine import RunResult, simulate
from retrysim.sim.invariants import violations


def named(result: RunResult, codes: Any) -> list[str]:
    """The error names of record codes (``""``: none)."""
    return [result.error_names[int(code)] for code in codes]


# -- an answer over a pool, with no network ------------------------------------------------------


@pytest.mark.parametrize("pooled", [False, True])
def test_an_answer_due_at_the_timeout_instant_is_heard_with_or_without_pools(
    pooled: bool,
) -> None:
    """A server answering exactly when the client's timeout is due is heard first: every
    attempt succeeds. Over a pool with no network the answer has no trip back to make, so it
    is heard the instant it is sent, as on the direct path."""
    clients: dict[str, Any] = {"count": 4, "timeout": 0.5}
    if pooled:
        clients["pool_size"] = 2
    result = simulate(
        parse_scenario(
            {
                "duration": 5,
                "policy": {"max_attempts": 1},
                "clients": clients,
                "service": {"kind": "ideal", "latency": 0.5},
            }
        )
    )
    assert (result.connections is not None) == pooled
    assert result.attempts["outcome"].tolist() == [rec.OK] * 4
    assert result.calls["outcome"].tolist() == [rec.SUCCEEDED] * 4
    assert (result.attempts["end"] - result.attempts["start"] == 0.5).all()


# -- replicas -----------------------------------------------------------------------------------


def replica_picks(balance: str) -> list[int]:
    """The replica each attempt of one client's 24 calls in sequence went to (each call is
    answered before the next starts)."""
    result = simulate(
        parse_scenario(
            {
                "seed": 3,
                "duration": 100,
                "clients": {"count": 1, "calls_per_client": 24, "think_time": 0.5},
                "service": {
                    "kind": "ideal",
                    "latency": 0.01,
                    "replicas": 2,
                    "balance": balance,
                },
            }
        )
    )
    return [int(r) for r in result.attempts["replica"]]


def test_power_of_two_with_nothing_outstanding_picks_as_random_does() -> None:
    """With every request answered before the next is sent, no replica has one outstanding:
    power_of_two's two choices tie and its first pick stands, so it sends each attempt where
    the ``random`` rule does (an answered request no longer counts against its replica)."""
    picks = replica_picks("power_of_two")
    assert picks == replica_picks("random")
    assert set(picks) == {0, 1}


# -- what guards hear ---------------------------------------------------------------------------


BREAKER: dict[str, Any] = {
    "enabled": True,
    "failure_threshold": 3,
    "recovery_timeout": 5.0,
    "scope": "fleet",
}


def guarded(faults: list[dict[str, Any]]) -> RunResult:
    """Twenty calls through a fleet-wide breaker that opens at the third failure."""
    return simulate(
        parse_scenario(
            {
                "seed": 2,
                "duration": 10,
                "policy": {"operation": "api", "max_attempts": 2, "breaker": BREAKER},
                "clients": {"count": 20, "arrival": {"kind": "uniform", "end": 4}},
                "service": {"kind": "ideal", "latency": 0.01},
                "faults": faults,
            }
        )
    )


def test_a_breaker_hears_a_success_as_no_failure() -> None:
    """A healthy service's successes are no failures to a breaker: it never opens."""
    result = guarded([])
    assert result.guard_events == []
    assert (result.calls["outcome"] == rec.SUCCEEDED).all()


def test_a_breaker_hears_an_answer_as_a_returned_value_not_a_failure() -> None:
    """An answer (here 503, the run's only one) is a value returned, as the decorators see it:
    the breaker counts no failure however many come back, and every call takes its answer."""
    result = guarded([{"kind": "outage", "start": 0, "end": 100, "answer": 503}])
    assert result.guard_events == []
    assert set(named(result, result.attempts["error"])) == {"result:503"}
    assert (result.attempts["outcome"] == rec.OK).all()


# -- a propagated deadline ------------------------------------------------------------------------


#: A gateway's (and the database's) latency: 1/1024 s, so every time in these runs is exact.
STEP = 2.0**-10


def deadline_run(database: dict[str, Any], wait: float) -> RunResult:
    """One user request (given up after 0.5 s) to a gateway that passes that deadline down
    and retries its calls to the database every ``wait`` seconds, without end."""
    return simulate(
        parse_scenario(
            {
                "seed": 1,
                "duration": 5,
                "policy": {"max_attempts": 1},
                "clients": {"count": 1, "timeout": 0.5, "arrival": {"kind": "burst", "at": 1}},
                "tiers": {
                    "gateway": {
                        "policy": {
                            "operation": "api",
                            "max_attempts": 50,
                            "min_wait": wait,
                            "max_wait": wait,
                            "jitter": 0.0,
                        },
                        "propagate_deadline": True,
                        "service": {"kind": "ideal", "latency": STEP},
                    },
                    "database": database,
                },
            }
        )
    )


def test_a_wait_the_deadline_cuts_short_is_recorded_on_the_attempt_before_it() -> None:
    """The database refuses at once; the gateway waits 0.25 s between attempts. The second
    attempt's wait would end past the deadline: it is recorded, and no third attempt goes;
    the call ends at the deadline, with TimeoutError."""
    result = deadline_run(
        {
            "service": {"kind": "ideal", "latency": STEP},
            "faults": [{"kind": "outage", "start": 0, "end": 100}],
        },
        wait=0.25,
    )
    database = result.tiers[1]
    assert violations(result) == []
    assert database.attempts["attempt"].tolist() == [1, 2]
    assert database.attempts["wait"].tolist() == [0.25, 0.25]
    assert database.calls["outcome"].tolist() == [rec.GAVE_UP]
    assert named(result, database.calls["error"]) == ["TimeoutError"]
    assert database.calls["attempts"].tolist() == [2]


def test_an_attempt_the_deadline_cut_starts_no_wait_even_a_zero_one() -> None:
    """The database never answers; the gateway retries at once (no wait). Its attempt is cut
    at the deadline, which ends the call there: the attempt starts no wait (a retry due at
    that instant would start after the caller gave up)."""
    result = deadline_run(
        {
            "service": {"kind": "ideal", "latency": STEP},
            "faults": [{"kind": "outage", "start": 0, "end": 100, "mode": "blackhole"}],
        },
        wait=0.0,
    )
    database = result.tiers[1]
    assert violations(result) == []
    assert database.attempts["attempt"].tolist() == [1]
    assert np.isnan(database.attempts["wait"]).all()
    assert database.attempts["outcome"].tolist() == [rec.TIMED_OUT]
    assert database.calls["outcome"].tolist() == [rec.GAVE_UP]
    assert database.calls["end"].tolist() == [1.5]


# -- a served None the policy rejects -------------------------------------------------------------


def test_a_served_none_the_retry_rejects_is_a_failed_attempt_to_the_last() -> None:
    """A policy whose retry rejects a returned None (``retry_if_result(r is None)``) fails every
    served attempt: each is recorded as ``result:None``, the first two with their wait, and the
    call gives up on it after its three attempts."""
    policy = Retrying(
        retry=retry_if_result(lambda r: r is None),
        stop=stop_after_attempt(3),
        wait=wait_fixed(0.1),
    )
    result = simulate(parse_scenario({"duration": 5, "clients": {"count": 2}}), retrying=policy)
    attempts, calls = result.attempts, result.calls
    assert violations(result) == []
    assert len(attempts) == 6
    assert set(named(result, attempts["error"])) == {"result:None"}
    assert (attempts["outcome"] == rec.FAILED).all()
    waits = attempts["wait"][np.lexsort((attempts["attempt"], attempts["call"]))]
    assert np.array_equal(waits, [0.1, 0.1, np.nan] * 2, equal_nan=True)
    assert calls["outcome"].tolist() == [rec.GAVE_UP] * 2
    assert named(result, calls["error"]) == ["result:None"] * 2


# -- an answer taken as the call's result ---------------------------------------------------------


def test_an_answer_the_policy_takes_is_an_ok_attempt_and_a_call_that_succeeded() -> None:
    """A policy that retries only errors takes the run's one answer (503) as the call's
    result: the attempt is ok, recorded under ``result:503``; the call succeeded at it, with
    no error, when it came back."""
    result = simulate(
        parse_scenario(
            {
                "duration": 5,
                "clients": {"count": 3},
                "service": {"kind": "ideal", "latency": 0.01},
                "faults": [{"kind": "outage", "start": 0, "end": 100, "answer": 503}],
            }
        )
    )
    attempts, calls = result.attempts, result.calls
    assert violations(result) == []
    assert named(result, attempts["error"]) == ["result:503"] * 3
    assert attempts["outcome"].tolist() == [rec.OK] * 3
    assert calls["outcome"].tolist() == [rec.SUCCEEDED] * 3
    assert named(result, calls["error"]) == [""] * 3
    assert calls["end"].tolist() == attempts["end"].tolist()


# -- retryings ----------------------------------------------------------------------------------


def two_tiers() -> dict[str, Any]:
    return {
        "duration": 1,
        "clients": {"count": 2},
        "tiers": {
            "gateway": {"policy": {"max_attempts": 2}, "service": {"kind": "ideal"}},
            "database": {"service": {"kind": "ideal"}},
        },
    }


@pytest.mark.parametrize(
    ("name", "says"),
    [("gatway", "did you mean 'gateway'"), ("database", "is the last and calls no one")],
)
def test_retryings_naming_no_calling_tier_is_refused(name: str, says: str) -> None:
    """``retryings`` for a tier the scenario lacks, or for the last tier (which calls no one),
    is refused in one line naming it, rather than quietly running the scenario's policies."""
    with pytest.raises(UnknownTierError, match=f"retryings '{name}'.*{says}"):
        simulate(parse_scenario(two_tiers()), retryings={name: Retrying()})


def test_a_timed_out_attempt_on_a_server_that_cancels_abandoned_work_is_not_executed() -> None:
    """A processor-sharing server that cancels abandoned work (``cancel_abandoned``): two
    requests of 1 s each arrive together and share it, and each client gives up after 0.5 s.
    On the timeouts the server drops both, so neither is executed; a server that keeps
    abandoned work serves both to the end."""

    def executed(cancel: bool) -> list[int]:
        scenario = parse_scenario(
            {
                "name": "abandoned",
                "seed": 1,
                "duration": 10,
                "policy": {"operation": "api", "max_attempts": 1},
                "clients": {"count": 2, "timeout": 0.5, "arrival": {"kind": "burst", "at": 0}},
                "service": {
                    "kind": "processor_sharing",
                    "concurrency": 8,
                    "cancel_abandoned": cancel,
                    "latency": 1.0,
                },
            }
        )
        result = simulate(scenario)
        assert result.attempts["outcome"].tolist() == [rec.TIMED_OUT] * 2
        return [int(x) for x in result.attempts["executed"]]

    assert executed(True) == [0, 0]
    assert executed(False) == [1, 1]
