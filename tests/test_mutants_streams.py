"""Stream purposes: what ``retrysim.sim.streams``' mutation run found untested.

Each kind of randomness a run draws (an attempt's CPU, its connect, each network leg, a
server's own draw, a balancer's pick, a reset's point, ...) has a stream of its own, so no two
share draws. A purpose number changed by one makes two purposes the same stream (their draws
for a call and attempt become the same number, perfectly correlated) or re-keys one purpose
(the same seed then gives another run). Checked here through whole runs, as a user sees them:
an attempt's time varies as the sum of independent parts, a random balancer's pick says nothing
about a later attempt's trip, and a small run that draws from every purpose is pinned. The
fault vocabulary's purposes within a fault's stream (LOSS_SEGMENT, BLAST_RADIUS, and the
proxy's SLICES) are pinned the same way: a run with packet loss on every client and a flaky
fault on a share of them, and the pieces the proxy's slicer cuts.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from retrysim.chaos.link import Link
from retrysim.chaos.toxics import Slicer, Toxic
from retrysim.model.scenario import parse_scenario
from retrysim.sim.engine import simulate
from retrysim.sim.streams import FAULT_BASE, stream_key
from tests.fake_proxy import FakeProxy

MEAN = 0.01  # each exponential part's mean: its variance is MEAN ** 2


def exponential(mean: float) -> dict[str, Any]:
    return {"dist": "exponential", "mean": mean}


def test_an_attempts_parts_are_independent_so_its_variance_is_the_sum_of_theirs() -> None:
    """An attempt over a new connection to a read-then-write service is eight random parts:
    its CPU, the connect's CPU, the connect, the request out, the read, the read's answer back,
    the write out and the answer back (the write's own time is a constant). Each is an
    exponential of variance MEAN ** 2 (a leg is half of an rtt of mean 2 * MEAN), so the
    attempt's time has variance 8 * MEAN ** 2 when the parts are independent, and 10 *
    MEAN ** 2 when two of them draw the same numbers. Every client makes one call on its own
    process and connection, so nothing queues and no part waits for another client (a write
    that conflicts takes the same time: its answer comes after its service time).

    6,000 attempts: the sample variance of a sum of eight exponentials has a relative standard
    error of sqrt(2.75 / 6000) = 0.021; the bound is about five of those, and a shared stream
    moves the ratio to 1.25.
    """
    scenario = parse_scenario(
        {
            "seed": 7,
            "duration": 60,
            "policy": {"max_attempts": 1},
            "clients": {
                "count": 6000,
                "cpu_per_attempt": exponential(MEAN),
                "cpu_per_connect": exponential(MEAN),
            },
            "service": {
                "kind": "occ",
                "protocol": "read_then_write",
                "latency": 0.001,
                "read_latency": exponential(MEAN),
            },
            "network": {"rtt": exponential(2 * MEAN), "connect": exponential(MEAN)},
        }
    )
    attempts = simulate(scenario).attempts
    assert len(attempts) == 6000
    took = attempts["end"] - attempts["start"]
    assert float(took.mean()) == pytest.approx(8 * MEAN + 0.001, rel=0.02)
    assert abs(float(took.var()) / (8 * MEAN**2) - 1) < 0.12


def test_a_random_balancers_pick_says_nothing_about_the_next_attempts_trip() -> None:
    """A call's first attempt goes to replica 0 or 1 at random and fails half the time (a
    flaky fault, before the server); its second attempt, when it gets past the fault, reads,
    waits for the read's answer back, and writes out. The second attempt's time must not depend
    on where the first went: the pick and the network's legs are separate streams. (A pick
    draws at twice its attempt's number, so a pick sharing the write's stream would be the
    draw of a later attempt's write.) Bound: four standard errors of the difference of the two
    groups' means; a shared stream makes it about fifteen.
    """
    scenario = parse_scenario(
        {
            "seed": 3,
            "duration": 60,
            "policy": {
                "profile": "exponential",
                "max_attempts": 2,
                "min_wait": 0.001,
                "max_wait": 0.001,
            },
            "clients": {"count": 4000},
            "service": {
                "kind": "occ",
                "protocol": "read_then_write",
                "latency": 0.001,
                "replicas": 2,
                "balance": "random",
            },
            "network": {"rtt": exponential(2 * MEAN), "connect": 0},
            "faults": [{"kind": "flaky", "probability": 0.5, "start": 0, "end": 60}],
        }
    )
    result = simulate(scenario)
    attempts = result.attempts
    flaky = result.error_names.index("ConnectionError")  # the fault's error: no server trip
    first = attempts[attempts["attempt"] == 1]
    went_to = dict(zip(first["call"].tolist(), first["replica"].tolist(), strict=True))
    second = attempts[(attempts["attempt"] == 2) & (attempts["error"] != flaky)]
    before = np.array([went_to[call] for call in second["call"].tolist()])
    took = second["end"] - second["start"]
    groups = [took[before == replica] for replica in (0, 1)]
    assert min(len(group) for group in groups) > 700
    difference = float(groups[0].mean() - groups[1].mean())
    error = math.sqrt(sum(float(group.var()) / len(group) for group in groups))
    assert abs(difference) < 4 * error


#: The attempts of PINNED_RUN: (call, attempt, replica, error code, start, end), times rounded
#: to 9 decimals. Computed once from the run itself and reviewed.
PINNED_ATTEMPTS = [
    (0, 1, 1, 3, 0.010923558, 0.040085453),
    (0, 2, 0, 3, 0.052461513, 0.063820127),
    (0, 3, 2, 0, 0.123116209, 0.193153423),
    (1, 1, 0, 3, 0.778057436, 0.827003142),
    (1, 2, 2, 1, 0.867756221, 0.90039746),
    (1, 3, 0, 3, 0.959583168, 0.973777053),
    (2, 1, 2, 0, 2.111404965, 2.224472404),
    (3, 1, 1, 0, 2.180183462, 2.280786271),
    (4, 1, 2, 0, 2.460407291, 2.54805335),
    (5, 1, 2, 0, 4.657623698, 4.704707009),
]


def test_a_seed_gives_the_same_run_in_every_version() -> None:
    """A small run that draws from every stream purpose (arrivals, jitter, the write's
    latency, a reset's point, a flaky fault, the client's CPU for attempts and connects, the
    connect, every network leg of a read-then-write, the read's own draw, a random balancer's
    picks) gives the same attempts, to the nanosecond, as it did when pinned: the same seed is
    the same run in every version, as the goldens (tests/test_reliability.py) hold whole
    bundled runs to. A change of the stream layout (a purpose's number, how a key is made)
    changes every seed's results: it must be a deliberate, documented change, with this table
    and the goldens updated in the same change.
    """
    scenario = parse_scenario(
        {
            "seed": 11,
            "duration": 5,
            "policy": {
                "profile": "full_jitter",
                "max_attempts": 3,
                "min_wait": 0.05,
                "max_wait": 0.2,
            },
            "clients": {
                "count": 4,
                "arrival": {"kind": "poisson", "rate": 2},
                "cpu_per_attempt": exponential(0.002),
                "cpu_per_connect": exponential(0.003),
            },
            "service": {
                "kind": "occ",
                "protocol": "read_then_write",
                "latency": exponential(0.01),
                "read_latency": exponential(0.004),
                "replicas": 3,
                "balance": "random",
            },
            "network": {"rtt": exponential(0.02), "connect": exponential(0.01)},
            "faults": [
                {"kind": "reset", "probability": 0.3, "start": 0, "end": 5},
                {"kind": "flaky", "probability": 0.3, "start": 0, "end": 5},
            ],
        }
    )
    attempts = np.sort(simulate(scenario).attempts, order=["call", "attempt", "hedge"])
    seen = [
        (
            int(row["call"]),
            int(row["attempt"]),
            int(row["replica"]),
            int(row["error"]),
            round(float(row["start"]), 9),
            round(float(row["end"]), 9),
        )
        for row in attempts
    ]
    assert seen == PINNED_ATTEMPTS


#: PINNED_FAULT_RUN's clients a flaky fault on a share of 0.5 of them fails (its blast radius,
#: BLAST_RADIUS), and the others', and the seconds each attempt of the others takes (0.01 s of
#: service plus its packet loss's retransmission timeouts, LOSS_SEGMENT + segment), in call
#: order, rounded to 9 decimals. Computed once from the run itself and reviewed: 5 of 12
#: clients hit; 7 of 21 spared attempts lost a segment once (0.05 s), twice (0.15 s in all)
#: or both segments once each (0.1 s).
PINNED_HIT = [1, 2, 4, 5, 8]
PINNED_SPARED = [0, 3, 6, 7, 9, 10, 11]
PINNED_SPARED_TOOK = [
    0.01, 0.06, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.06, 0.01, 0.01,
    0.16, 0.01, 0.01, 0.01, 0.06, 0.06, 0.11, 0.01, 0.01, 0.16,
]  # fmt: skip


def test_a_seed_gives_the_same_blast_radius_and_losses_in_every_version() -> None:
    """The same seed is the same run: which clients a share of clients picks and which
    segments are lost, as pinned (see test_a_seed_gives_the_same_run_in_every_version)."""
    scenario = parse_scenario(
        {
            "seed": 13,
            "duration": 5,
            "policy": {"max_attempts": 1},
            "clients": {"count": 12, "calls_per_client": 3},
            "service": {"kind": "ideal", "latency": 0.01},
            "faults": [
                {"kind": "packet_loss", "probability": 0.3, "rto": 0.05},
                {"kind": "flaky", "probability": 1.0, "clients": 0.5},
            ],
        }
    )
    result = simulate(scenario)
    attempts = np.sort(result.attempts, order=["call", "attempt", "hedge"])
    client = result.calls["client"][attempts["call"]]
    failed = attempts["error"] != 0
    assert sorted(set(client[failed].tolist())) == PINNED_HIT
    assert sorted(set(client[~failed].tolist())) == PINNED_SPARED
    took = attempts["end"] - attempts["start"]
    assert [round(float(x), 9) for x in took[~failed]] == PINNED_SPARED_TOOK


#: The sizes of the pieces the proxy's slicer (100 +- 40 bytes) cuts a 600-byte chunk into,
#: for connections 0 and 1, chunks 0 and 1, on toxic 0's stream of seed 13 (SLICES). Computed
#: once from Link._slices itself and reviewed: each in 60..140 but a last piece of what is
#: left, each list summing to 600.
PINNED_PIECES = [
    [83, 116, 130, 122, 72, 77],
    [62, 120, 121, 67, 115, 115],
    [79, 114, 96, 118, 82, 111],
    [88, 122, 136, 134, 113, 7],
]


def test_a_seed_gives_the_proxy_the_same_slices_in_every_version() -> None:
    toxics: tuple[Toxic, ...] = (Slicer(average_size=100, size_variation=40, delay=0.01),)
    proxy = FakeProxy(toxics, [stream_key(13, FAULT_BASE)])
    ends: Any = (None, None)
    pieces = []
    for connection in range(2):
        link = Link(proxy, connection, ends, ends)
        for chunk in range(2):
            cut = link._slices("downstream", chunk, 600, 0.0)
            assert [delay for _, delay in cut] == [0.0] + [0.01] * (len(cut) - 1)
            pieces.append([end - start for (start, end), _ in cut])
    assert pieces == PINNED_PIECES
