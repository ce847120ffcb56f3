"""Hedged attempts in the engine (``retrysim/sim/hedging.py``): behaviour its mutation run found
untested.

Each test pins what a user reads off a hedged run's records (when each send went, how each
ended, what it drew) and fails under a mutant of the module that survived the rest of its row.
None depends on a hedge falling due at the very instant a sibling answers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from retrysim.model.scenario import Scenario, parse_scenario
from retrysim.model.service import Ideal
from retrysim.sim import records as rec
from retrysim.sim.call import CALL_KEY_SHIFT
from retrysim.sim.engine import simulate
from retrysim.sim.latency import sampler
from retrysim.sim.streams import LATENCY, stream_key, unit
from tests.test_hedging_engine import groups, groups_of, hedged


def test_every_hedge_goes_delay_after_the_one_before_while_none_answered() -> None:
    """Every send takes 1 s; hedges go every 0.1 s: each attempt sends all three (at 0, 0.1
    and 0.2 s after its first), the first answers and wins, and the two hedges still out are
    cancelled as it answers."""
    result = simulate(
        hedged(sends=3, delay=0.1, clients=20, service={"kind": "ideal", "latency": 1.0})
    )
    sent = groups(result)
    assert len(sent) == 20
    for attempt in sent.values():
        assert attempt["hedge"].tolist() == [0, 1, 2]
        offsets = attempt["start"] - attempt["start"][0]
        assert np.allclose(offsets, [0.0, 0.1, 0.2])
        assert attempt["outcome"].tolist() == [rec.OK, rec.CANCELLED, rec.CANCELLED]
        assert np.all(attempt["end"] == attempt["start"][0] + 1.0)


def test_a_cancelled_send_records_no_error() -> None:
    """A send cancelled because a sibling won had no error of its own: its error code is 0
    (none), as the winner's is."""
    result = simulate(
        hedged(sends=3, delay=0.1, clients=20, service={"kind": "ideal", "latency": 1.0})
    )
    cancelled = result.attempts["outcome"] == rec.CANCELLED
    assert np.count_nonzero(cancelled) == 40
    assert np.all(result.attempts["error"][cancelled] == 0)


def test_a_send_that_failed_before_the_winner_keeps_its_failure() -> None:
    """Half the sends fail at once (flaky): a failed send sends the next at once, and when a
    later send wins, the failed ones stay as they were: failed, with their error and their
    own end time; only sends still out are cancelled."""
    result = simulate(hedged(sends=3, delay=0.05, clients=100, flaky=0.5, seed=2))
    failed_before_a_win = 0
    for attempt in groups(result).values():
        won = attempt["outcome"] == rec.OK
        if not won.any():
            continue
        winner_end = attempt["end"][won][0]
        failed = attempt["outcome"] == rec.FAILED
        failed_before_a_win += int(np.count_nonzero(failed))
        assert np.all(attempt["error"][failed] != 0)
        assert np.all(attempt["end"][failed] == attempt["start"][failed])  # failed at once
        assert np.all(attempt["end"][failed] <= winner_end)
        cancelled = attempt["outcome"] == rec.CANCELLED
        assert np.all(attempt["error"][cancelled] == 0)
    assert failed_before_a_win > 10  # the premise: wins after a failed send


def test_a_hedge_draws_latency_of_its_own_keyed_by_its_index() -> None:
    """A hedge draws its own latency: send ``h`` of attempt ``n`` draws what the latency
    stream gives for draw index ``n + h * 2**16`` (attempt numbers fit in 16 bits, so no two
    sends share a draw). Every send that answered took exactly that long (an ideal server)."""
    scenario = hedged(sends=3, delay=0.01, clients=40, seed=7)
    result = simulate(scenario)
    calls = result.calls
    assert isinstance(scenario.service, Ideal)
    latency = sampler(scenario.service.latency)
    key = stream_key(scenario.seed, LATENCY)
    answered = result.attempts[result.attempts["outcome"] == rec.OK]
    assert np.count_nonzero(answered["hedge"] > 0) > 5  # the premise: hedges won
    for send in answered:
        call = calls[send["call"]]
        call_key = (int(call["client"]) << CALL_KEY_SHIFT) | int(call["index"])
        draw = int(send["attempt"]) + int(send["hedge"]) * 2**16
        expected = latency(unit(key, call_key, draw))
        assert math.isclose(send["end"] - send["start"], expected, rel_tol=1e-9, abs_tol=1e-12)


def deadline_tiers(
    *,
    timeout: float | None,
    hedge: dict[str, Any],
    database: dict[str, Any],
    propagate: bool = True,
) -> Scenario:
    """Users (``timeout`` per attempt, None: none) call an api whose calls to a database are
    hedged (``hedge``) and carry the users' deadline with ``propagate``. Every user call
    starts at 0."""
    users: dict[str, Any] = {"count": 10, "arrival": {"kind": "burst", "at": 0}}
    if timeout is not None:
        users["timeout"] = timeout
    return parse_scenario(
        {
            "name": "hedged-deadline",
            "seed": 1,
            "duration": 10,
            "policy": {"operation": "api", "max_attempts": 1},
            "clients": users,
            "tiers": {
                "api": {
                    "policy": {
                        "operation": "api",
                        "max_attempts": 2,
                        "min_wait": 0.125,
                        "max_wait": 0.125,
                        "jitter": 0.0,
                        "hedge": hedge,
                    },
                    "propagate_deadline": propagate,
                    "service": {"kind": "ideal", "latency": 0.01},
                },
                "database": database,
            },
        }
    )


def test_a_failed_send_sends_the_next_at_once_within_a_deadline() -> None:
    """The database fails every request at once; users give up after 0.5 s and the api passes
    that deadline down. Time is left, so a failed send still sends the next hedge at once (not
    5 s later, past the deadline): every attempt below has both its sends, at one instant."""
    scenario = deadline_tiers(
        timeout=0.5,
        hedge={"enabled": True, "max_attempts": 2, "delay": 5.0},
        database={"faults": [{"kind": "flaky", "probability": 1.0}]},
    )
    below = simulate(scenario).tiers[1]
    sent = groups_of(below.attempts)
    assert len(sent) == 20  # ten calls, two attempts each
    for attempt in sent.values():
        assert attempt["hedge"].tolist() == [0, 1]
        assert attempt["start"][1] == attempt["start"][0]
        assert np.all(attempt["outcome"] == rec.FAILED)


def test_hedges_go_as_usual_when_there_is_no_deadline_to_pass_down() -> None:
    """Deadline propagation on, but the users wait for ever and the api sets no timeout: there
    is no deadline, so hedges go every 0.1 s as they do without propagation, and the records
    below are the same either way."""
    database = {"service": {"kind": "ideal", "latency": 0.5}}
    hedge = {"enabled": True, "max_attempts": 3, "delay": 0.1}
    on = simulate(deadline_tiers(timeout=None, hedge=hedge, database=database))
    off = simulate(deadline_tiers(timeout=None, hedge=hedge, database=database, propagate=False))
    below = on.tiers[1].attempts
    assert np.count_nonzero(below["hedge"] == 2) == 10  # every attempt sent its two hedges
    assert below.tobytes() == off.tiers[1].attempts.tobytes()
    assert on.tiers[1].calls.tobytes() == off.tiers[1].calls.tobytes()


def test_no_hedge_goes_at_the_deadline_itself() -> None:
    """Users give up after 0.5 s and the api passes that deadline down; its first send below
    leaves at 0.01 s and a hedge falls due 0.49 s later, at the deadline itself, as the first
    send is cut there. With no time left the hedge is not sent: whichever of the two events
    runs first, nothing starts at or after the deadline (the engine's law; fidelity mode's
    real race at this instant is the known difference in docs/mutation.md)."""
    scenario = deadline_tiers(
        timeout=0.5,
        hedge={"enabled": True, "max_attempts": 2, "delay": 0.49},
        database={"service": {"kind": "ideal", "latency": 1.0}},
    )
    below = simulate(scenario).tiers[1].attempts
    assert len(below) == 10
    assert np.all(below["hedge"] == 0)
    assert np.all(below["start"] == 0.01)
    assert np.all(below["end"] == 0.5)  # cut at the deadline, 0.49 s after it left
