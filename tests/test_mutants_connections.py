"""Behaviour of ``retrysim/sim/connections.py`` that its mutation run found untested.

Each test pins something a caller of the connection model sees (what a pool hands out, the
run's ``connections`` counts, when a connect opens, what an error met while connecting does)
that a plausible wrong edit of the module changed without any test of its row noticing.
Timings are binary fractions, so the sums are exact and compared with ``==``.
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from typing import Any

import pytest

from retrysim.model.scenario import parse_scenario
from retrysim.sim.connections import CLOSED, OPEN, WIRE, Pool
from retrysim.sim.engine import RunResult, simulate
from retrysim.sim.failures import CODES
from tests.test_connection_families import C, L, R, run


def durations(result: RunResult) -> list[float]:
    """Each attempt's end minus its start, in record order."""
    a = result.attempts
    return [float(d) for d in a["end"] - a["start"]]


# -- the pool --------------------------------------------------------------------------------


def test_a_pool_hands_out_at_most_its_size_and_reuses_what_comes_back_open() -> None:
    """A pool of one: the first taker must connect, a second waits; a connection given back
    open is handed out open (and is then in use again: a further taker waits); one given
    back closed leaves room for a new connection, and still only one."""
    pool = Pool(1)
    assert [pool.take(), pool.take()] == [CLOSED, None]
    pool.give_back(still_open=True)
    assert [pool.take(), pool.take()] == [OPEN, None]
    pool.give_back(still_open=False)
    assert [pool.take(), pool.take()] == [CLOSED, None]


def test_an_unbounded_pool_opens_a_connection_for_every_taker_with_none_idle() -> None:
    """Without a size every taker gets a connection at once; an open one given back is
    preferred to a new one."""
    pool = Pool(None)
    assert [pool.take() for _ in range(3)] == [CLOSED] * 3
    pool.give_back(still_open=True)
    assert [pool.take(), pool.take()] == [OPEN, CLOSED]


def pooled_run(**clients: Any) -> RunResult:
    """Clients at 0 in one process, one attempt each, service 0.5, no network."""
    return simulate(
        parse_scenario(
            {
                "policy": {"max_attempts": 1},
                "clients": {"processes": 1, **clients},
                "service": {"kind": "ideal", "latency": L},
            }
        )
    )


def test_a_pool_without_a_network_connects_for_free_and_counts_the_one_that_waited() -> None:
    """Two clients, a pool of one, no network: the first connects at no cost and is answered
    at 0.5; the second queues and takes the connection back open at 0.5. The run's counts: one
    connect, one pool wait."""
    result = pooled_run(count=2, pool_size=1)
    a = result.attempts
    assert sorted(a["end"].tolist()) == [L, 2 * L]
    assert sorted(a["pool_wait"].tolist()) == [0.0, L]
    assert result.connections == {
        "connects": 1,
        "connect_failures": 0,
        "connect_timeouts": 0,
        "pool_waits": 1,
    }


def test_a_pool_nobody_waits_for_counts_no_waits() -> None:
    """Two clients, a pool of two: nobody waits, and the counts say so (zero, not absent)."""
    result = pooled_run(count=2, pool_size=2)
    assert result.attempts["pool_wait"].tolist() == [0.0, 0.0]
    assert result.connections == {
        "connects": 2,
        "connect_failures": 0,
        "connect_timeouts": 0,
        "pool_waits": 0,
    }


def test_a_pool_of_one_serves_three_queued_attempts_one_after_another() -> None:
    """Three clients, a pool of one: the connection passes from one to the next as each is
    answered; nobody is left in the queue."""
    result = pooled_run(count=3, pool_size=1)
    a = result.attempts
    assert sorted(a["end"].tolist()) == [L, 2 * L, 3 * L]
    assert sorted(a["pool_wait"].tolist()) == [0.0, L, 2 * L]
    assert result.connections is not None and result.connections["pool_waits"] == 2


# -- what an error met while connecting does -------------------------------------------------


def family_run(name: str) -> RunResult:
    """One client whose first attempt, connecting at 0, meets ``name``; its retry a second
    later does not."""
    return run(name, faults=[{"kind": "outage", "start": 0, "end": 0.1, "error": name}])


def test_a_timeout_met_while_connecting_fails_the_connect() -> None:
    """A connect that times out never opens: the error is heard when the handshake would have
    ended (no round trip), it counts as a failed connect, and the retry connects again."""
    result = family_run("TimeoutError")
    assert result.attempts["error"].tolist() == [CODES["TimeoutError"], 0]
    assert durations(result) == [C, C + R + L]
    assert result.connections is not None
    assert (result.connections["connects"], result.connections["connect_failures"]) == (2, 1)


def test_a_server_still_loading_lets_the_connect_open_then_closes_the_connection() -> None:
    """Redis' BusyLoadingError comes from a server that accepted the connection: the connect
    succeeds, the error comes back after a round trip, and it closes the connection, so the
    retry connects again."""
    result = family_run("redis.exceptions.BusyLoadingError")
    assert durations(result) == [C + R, C + R + L]
    assert result.connections is not None
    assert (result.connections["connects"], result.connections["connect_failures"]) == (2, 0)


def test_a_refusal_met_while_connecting_neither_fails_the_connect_nor_closes_it() -> None:
    """A CircuitOpen fault acts as an answer: the connect opens, the error comes back after a
    round trip, and the retry reuses the open connection."""
    result = family_run("CircuitOpen")
    assert durations(result) == [C + R, R + L]
    assert result.connections is not None
    assert (result.connections["connects"], result.connections["connect_failures"]) == (1, 0)


def test_a_family_s_rule_cannot_be_changed_in_place() -> None:
    """The code sets the engine consults (which codes close a connection, which fail a
    connect) are worked out from ``WIRE`` at import, so a rule changed later would leave them
    disagreeing: a rule is a value, and assigning to it raises."""
    rule = WIRE["answer"]
    try:
        with pytest.raises(FrozenInstanceError):
            rule.closes = True  # type: ignore[misc]
    finally:
        object.__setattr__(rule, "closes", False)


# -- the listener's backlog ------------------------------------------------------------------


def backlog_run(connect: float, syn_retry: float = 1.0) -> RunResult:
    """Two clients connecting at 0 to a listener with room for one connect at a time."""
    return simulate(
        parse_scenario(
            {
                "duration": 100,
                "policy": {"max_attempts": 1},
                "clients": {"count": 2},
                "service": {"kind": "ideal", "latency": L},
                "network": {
                    "rtt": R,
                    "connect": connect,
                    "accept_backlog": 1,
                    "syn_retry": syn_retry,
                },
            }
        )
    )


def test_a_backlog_of_one_lets_one_connect_in_and_drops_the_other_s_syn() -> None:
    """The first connect fills the backlog of one until it opens at C; the second's SYN is
    dropped and sent again after syn_retry (1 s), when the first has opened."""
    result = backlog_run(C)
    assert sorted(durations(result)) == [C + R + L, 1 + C + R + L]
    assert result.connections is not None and result.connections["connects"] == 2


def test_a_dropped_syn_waits_twice_as_long_each_time() -> None:
    """The first connect takes 1.25 s: the second's SYN, dropped at 0, is sent again at 1
    (still opening), then 2 s later, at 3, when the first has opened."""
    result = backlog_run(1.25)
    assert sorted(durations(result)) == [1.25 + R + L, 3 + 1.25 + R + L]
