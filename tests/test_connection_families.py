"""What an error does to a connection is its family's, for builtin and library errors alike.

Every error name a scenario may use (the builtin ones and the catalogue's) is classified by
hand below; each is then run through the connected path twice, once meeting a connect and once
an open connection, and its connects, failed connects, closes and timings are checked against
its family's rule (``retrysim.sim.connections.WIRE``). The timings are binary fractions, so the
sums are exact and compared with ``==``.
"""

from __future__ import annotations

from typing import Any, get_args

import numpy as np
import pytest

from retrysim.model.scenario import parse_scenario
from retrysim.names import ERROR_NAMES
from retrysim.results.error_matrix import library_module, real_error
from retrysim.retry.classify import FAMILIES, Family, error_family
from retrysim.sim.catalogue import BY_NAME, LIBRARY_ERROR_NAMES
from retrysim.sim.connections import CLOSES_CONNECTION, FAILS_CONNECT, WIRE
from retrysim.sim.engine import RunResult, simulate
from retrysim.sim.failures import CODES, make_error
from tests.test_client_cpu import durations

C, R, L = 0.25, 0.125, 0.5  # connect, round trip, service time

#: Every name's family, decided by reading what the real client does (see FAMILIES).
EXPECTED: dict[str, Family] = {
    "ConnectionError": "connection",
    "ConnectionRefusedError": "connection",
    "ConnectionResetError": "connection",
    "ConnectionAbortedError": "connection",
    "TimeoutError": "timeout",
    "OSError": "connection",
    "RateLimited": "answer",
    "Conflict": "answer",
    "ServerError": "answer",
    "CircuitOpen": "refusal",
    "redis.exceptions.ConnectionError": "connection",
    "redis.exceptions.TimeoutError": "timeout",
    "redis.exceptions.BusyLoadingError": "busy",
    "redis.exceptions.ResponseError": "answer",
    "httpx.ConnectError": "connection",
    "httpx.ConnectTimeout": "timeout",
    "httpx.ReadTimeout": "timeout",
    "httpx.RemoteProtocolError": "connection",
    "httpx.HTTPStatusError": "answer",
    "aiohttp.ClientConnectionError": "connection",
    "aiohttp.ClientResponseError": "answer",
    "requests.exceptions.ConnectionError": "connection",
    "requests.exceptions.Timeout": "timeout",
    "urllib3.exceptions.ProtocolError": "connection",
    "asyncpg.exceptions.CannotConnectNowError": "connection",
    "asyncpg.exceptions.SerializationError": "answer",
    "psycopg.OperationalError": "connection",
    "botocore.exceptions.EndpointConnectionError": "connection",
    "botocore.exceptions.ClientError": "answer",
    "httpx.ReadError": "connection",
}


def test_every_error_name_is_classified_here_and_every_family_has_a_rule() -> None:
    assert set(EXPECTED) == set(ERROR_NAMES)
    assert set(LIBRARY_ERROR_NAMES) <= set(ERROR_NAMES)
    assert set(WIRE) == set(FAMILIES) == set(get_args(Family))


@pytest.mark.parametrize("name", ERROR_NAMES)
def test_the_classifier_gives_each_name_its_family(name: str) -> None:
    assert error_family(make_error(CODES[name])) == EXPECTED[name]


def test_the_real_library_classes_are_in_the_family_of_their_stand_ins() -> None:
    """Where the library is installed, its own class is classified as the simulator's stand-in
    is (redis-py and httpx are in the dev environment, so at least their rows are checked)."""
    checked = set()
    for name in LIBRARY_ERROR_NAMES:
        real = real_error(name, library_module(BY_NAME[name].library))
        if real is not None:
            assert error_family(real) == EXPECTED[name], name
            checked.add(BY_NAME[name].library)
    assert {"redis", "httpx"} <= checked


@pytest.mark.parametrize(
    ("sqlstate", "family"),
    [("08006", "connection"), ("57P03", "connection"), ("53300", "connection"),
     ("57014", "timeout"), ("40001", "answer"), ("23505", "answer")],
)  # fmt: skip
def test_a_database_error_is_classified_by_its_sqlstate(sqlstate: str, family: str) -> None:
    psycopg_error = type("DatabaseError", (Exception,), {"__module__": "psycopg"})
    error = psycopg_error("x")
    error.sqlstate = sqlstate
    assert error_family(error) == family


def test_errors_nobody_knows_are_other_and_keep_the_connection() -> None:
    assert error_family(ValueError("x")) == "other"
    assert error_family(type("Unavailable", (Exception,), {"__module__": "mylib"})()) == "other"
    assert WIRE["other"] == WIRE["answer"]


def test_the_code_sets_follow_the_families() -> None:
    for name in ERROR_NAMES:
        wire = WIRE[EXPECTED[name]]
        assert (CODES[name] in CLOSES_CONNECTION) == wire.closes, name
        assert (CODES[name] in FAILS_CONNECT) == wire.fails_connect, name


# -- through the connected path ------------------------------------------------------------------


def run(name: str, **parts: Any) -> RunResult:
    data: dict[str, Any] = {
        "duration": 100,
        "policy": {
            "profile": "exponential",
            "max_attempts": 2,
            "min_wait": 1,
            "max_wait": 1,
            "retry_on": [name],
        },
        "clients": {"count": 1},
        "service": {"kind": "ideal", "latency": L},
        "network": {"rtt": R, "connect": C},
        **parts,
    }
    return simulate(parse_scenario(data))


@pytest.mark.parametrize("name", ERROR_NAMES)
def test_an_error_met_by_a_connect_acts_as_its_family_says(name: str) -> None:
    """The first attempt has to connect and meets ``name``; its retry, a second later, does
    not. A connection or timeout error fails the connect (heard when the handshake would have
    ended); anything else lets it open and comes back after the round trip, and the retry
    connects again only if the error closed the connection."""
    wire = WIRE[EXPECTED[name]]
    result = run(name, faults=[{"kind": "outage", "start": 0, "end": 0.1, "error": name}])
    a = result.attempts
    assert a["error"].tolist() == [CODES[name], 0]
    stats = result.connections
    assert stats is not None
    if wire.fails_connect:
        assert durations(result) == [C, C + R + L]
        assert (stats["connects"], stats["connect_failures"]) == (2, 1)
    elif wire.closes:
        assert durations(result) == [C + R, C + R + L]
        assert (stats["connects"], stats["connect_failures"]) == (2, 0)
    else:
        assert durations(result) == [C + R, R + L]
        assert (stats["connects"], stats["connect_failures"]) == (1, 0)
    assert a["start"][1] == a["end"][0] + 1  # the wait, exactly


@pytest.mark.parametrize("name", ERROR_NAMES)
def test_an_error_on_an_open_connection_closes_it_if_its_family_does(name: str) -> None:
    """A first call opens the connection; the second meets ``name`` on it (one round trip,
    whatever the family: the connection is already open) and its retry reconnects only if
    the error closed it."""
    closes = WIRE[EXPECTED[name]].closes
    result = run(
        name,
        clients={"count": 1, "calls_per_client": 2, "arrival": {"kind": "closed"}},
        faults=[{"kind": "flaky", "start": 0.5, "end": 1.0, "probability": 1, "error": name}],
    )
    assert durations(result) == [C + R + L, R, (C if closes else 0) + R + L]
    stats = result.connections
    assert stats is not None
    assert (stats["connects"], stats["connect_failures"]) == (2 if closes else 1, 0)


@pytest.mark.parametrize("name", ERROR_NAMES)
def test_a_reset_mid_request_closes_the_connection_if_its_family_does(name: str) -> None:
    closes = WIRE[EXPECTED[name]].closes
    result = run(
        name,
        faults=[{"kind": "reset", "start": 0, "end": 0.5, "probability": 1, "error": name}],
    )
    a = result.attempts
    assert a["error"].tolist() == [CODES[name], 0]
    assert a["executed"].tolist() == [1, 1]  # a reset: the server did the work anyway
    assert durations(result)[1] == (C if closes else 0) + R + L
    stats = result.connections
    assert stats is not None and stats["connects"] == (2 if closes else 1)


# -- the headline: one outage, two names -----------------------------------------------------------


def refused_outage(error: str) -> RunResult:
    """A fleet on a lognormal network with a listen backlog and client CPU, through a 2 s
    refusal named ``error``: every piece of the connected path is exercised."""
    return simulate(
        parse_scenario(
            {
                "seed": 5,
                "duration": 8,
                "policy": {"operation": "storage", "profile": "documented", "max_attempts": 6,
                           "min_wait": 0.25, "max_wait": 2.0, "jitter": 0.25},
                "clients": {"count": 100, "think_time": 1.0, "timeout": 1.0,
                            "arrival": {"kind": "closed", "ramp": 0.5}, "cpus": 1,
                            "cpu_per_attempt": 0.0007, "cpu_per_connect": 0.0006},
                "service": {"kind": "ideal", "latency": 0.0005},
                "network": {"rtt": {"dist": "lognormal", "median": 0.0004, "p99": 0.008},
                            "accept_backlog": 50},
                "faults": [{"kind": "outage", "start": 3, "end": 5, "error": error}],
            }
        )
    )  # fmt: skip


def test_a_refused_outage_is_the_same_whether_builtin_or_redis_names_its_error() -> None:
    builtin = refused_outage("ConnectionRefusedError")
    redis = refused_outage("redis.exceptions.ConnectionError")
    assert builtin.connections == redis.connections
    stats = builtin.connections
    assert stats is not None
    # every attempt in the outage connected again and was refused (the bug: 100 connects, none
    # failed, because the redis name neither failed the connect nor closed the connection)
    assert stats["connect_failures"] > 100 and stats["connects"] > 100 + stats["connect_failures"]
    a, b = builtin.attempts, redis.attempts
    assert a.dtype == b.dtype
    for column in a.dtype.names or ():
        if column == "error":
            continue
        assert a[column].tobytes() == b[column].tobytes(), column
    renamed = np.where(
        a["error"] == CODES["ConnectionRefusedError"],
        CODES["redis.exceptions.ConnectionError"],
        a["error"],
    )
    assert renamed.tolist() == b["error"].tolist()
    # each client's open connection meets the outage once and is closed by it; every refusal
    # after that is a failed connect
    refused = int((a["error"] == CODES["ConnectionRefusedError"]).sum())
    assert refused == stats["connect_failures"] + 100
    for column in builtin.calls.dtype.names or ():
        if column != "error":
            assert builtin.calls[column].tobytes() == redis.calls[column].tobytes(), column
