"""The fault vocabulary's compiled strategies: what the mutation run of
``retrysim.sim.faults`` found untested in count gates, recurrences, blast radii, packet loss
and the simulator's refusals.

Each test states a law the module docstrings (or ``tests/test_fault_vocabulary.py``) give: a
window, and each recurrence in it, is half-open [start, end); a count restarts exactly when
its recurrence does; the plan's Retry-After hint is the failing gate's; a fault narrowed to
some clients leaves the others alone; a lost segment is given up on after Linux's 15
retransmissions; the proxy draws a chunk's losses as the simulator draws an attempt's
segment; and a compiled strategy (count gates apart) never changes.
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction
from typing import Any, cast

import numpy as np
import pytest

from retrysim.chaos.link import Link
from retrysim.chaos.toxics import PacketLoss as LossToxic
from retrysim.chaos.toxics import Toxic
from retrysim.model.scenario import parse_scenario
from retrysim.sim.engine import simulate
from retrysim.sim.faults import (
    PASS,
    FaultPlan,
    NotSimulatedError,
    compile_faults,
    loss_delay,
)
from retrysim.sim.invariants import violations
from retrysim.sim.streams import FAULT_BASE, stream_key
from tests.fake_proxy import FakeProxy


def plan(*faults: dict[str, Any], seed: int = 3) -> FaultPlan:
    return compile_faults(parse_scenario({"faults": list(faults)}).faults, seed=seed)


# --- windows are half-open, recurrences too ----------------------------------------------------


def test_a_count_gates_window_ends_before_its_end() -> None:
    """[start, end): an attempt at the end is past the window, neither failed nor counted."""
    gate = plan({"kind": "first_n", "n": 3, "start": 10, "end": 20}).gates[0]
    assert gate(20.0, 1, 1) == PASS
    assert gate(25.0, 2, 1) == PASS


def test_each_recurrence_is_half_open_like_its_window() -> None:
    """On for ``for`` seconds from the start of each recurrence: at start + k * every + for
    the fault is already off."""
    gate = plan({"kind": "flaky", "probability": 1.0, "every": 10, "for": 2}).gates[0]
    on = [gate(t, call, 1) != PASS for call, t in enumerate([0.0, 1.999, 2.0, 10.0, 12.0])]
    assert on == [True, True, False, True, False]


def test_recurrences_count_from_the_faults_own_start() -> None:
    """Starting at 3, every 10 for 5: on in [3, 8), [13, 18), ... and a first_n counts again
    in each of these, not at multiples of 10."""
    gate = plan({"kind": "first_n", "n": 1, "start": 3, "every": 10, "for": 5}).gates[0]
    times = [2.0, 3.0, 7.5, 8.0, 12.9, 13.0, 17.9, 23.5]
    assert [gate(t, call, 1) != PASS for call, t in enumerate(times)] == [
        False, True, False, False, False, True, False, True
    ]  # fmt: skip


def test_a_count_restarts_exactly_where_its_recurrence_does() -> None:
    """every = for = 0.1 s: the fault is always on and first_n = 1 fails the first attempt of
    each recurrence. Recurrence k is [k * every, (k + 1) * every) for the numbers as given: the
    float 0.5 is below 5 times the float 0.1 (0.1000000000000000055...), so an attempt at 0.5
    is still in recurrence 4, with the one at 0.45 (1.0 and 1.3 likewise). The expected
    verdicts are computed in exact arithmetic (Fraction) on the same floats."""
    every = 0.1
    gate = plan({"kind": "first_n", "n": 1, "every": every, "for": every}).gates[0]
    times = [0.05, 0.45, 0.5, 0.55, 0.95, 1.0, 1.05, 1.25, 1.3, 1.35]
    exact = [math.floor(Fraction(t) / Fraction(every)) for t in times]
    # the times include some where a float division would round up across a boundary
    assert any(int(t / every) != k for t, k in zip(times, exact, strict=True))
    expected = [k != before for k, before in zip(exact, [-1, *exact], strict=False)]
    assert [gate(t, call, 1) != PASS for call, t in enumerate(times)] == expected
    assert expected.count(False) >= 3


def test_a_recurring_capacity_loss_has_no_window_past_its_end() -> None:
    """From 5 to 24, every 10 for 3: the recurrences starting at 5 and 15; none at 25, after
    the end (a window opened there would never close)."""
    fault = {"kind": "capacity_loss", "start": 5, "end": 24, "slots": 0, "every": 10, "for": 3}
    scenario = parse_scenario({"service": {"kind": "queue", "concurrency": 2}, "faults": [fault]})
    assert compile_faults(scenario.faults, seed=3).capacity_windows == ((5, 8, 0), (15, 18, 0))


# --- the plan's answers --------------------------------------------------------------------------


def test_the_hint_is_the_failing_gates_after_a_count_gate_passed() -> None:
    """A first_n asked twice for one attempt (once by gate(), once by hint()) answers the same:
    when it let the attempt through and the outage behind it failed it, the Retry-After is the
    outage's."""
    p = plan(
        {"kind": "first_n", "n": 1, "error": "RateLimited", "retry_after": 5.0},
        {"kind": "outage", "error": "RateLimited", "retry_after": 1.0, "end": 100},
    )
    assert p.gate(1.0, 1, 1) != PASS and p.hint(1.0, 1, 1) == 5.0
    assert p.gate(2.0, 2, 1) != PASS and p.hint(2.0, 2, 1) == 1.0
    assert p.hint(2.0, 2, 1) == 1.0  # and again: nothing counted twice


def test_the_simulator_says_what_to_use_instead_of_connections() -> None:
    with pytest.raises(NotSimulatedError) as refused:
        plan({"kind": "flaky", "probability": 0.5, "connections": 0.5})
    assert str(refused.value) == (
        "faults.0: connections is the proxy's blast radius (a simulated attempt has no "
        "connection to pick); use clients; run it for real with retrysim chaos"
    )


# --- packet loss ---------------------------------------------------------------------------------


def test_packet_loss_delays_only_inside_its_window() -> None:
    """A draw depends on the attempt, not on when in the window it comes: an attempt at the
    start is delayed as one in the middle; before the start and at the end, no delay."""
    p = plan({"kind": "packet_loss", "probability": 0.5, "start": 2, "end": 4})
    inside = [p.extra_latency(3.0, call, 1) for call in range(200)]
    assert sum(d > 0 for d in inside) > 100
    assert [p.extra_latency(2.0, call, 1) for call in range(200)] == inside
    for t in (0.5, 1.999, 4.0, 9.0):
        assert [p.extra_latency(t, call, 1) for call in range(200)] == [0.0] * 200


def test_a_segment_is_given_up_on_after_linuxs_fifteen_retransmissions() -> None:
    """tcp_retries2 = 15: with p = 0.9 a segment is lost 15 times or more with chance
    0.9**15 = 0.206, and then it is late by rto * (2**15 - 1), never more."""
    p = plan({"kind": "packet_loss", "probability": 0.9, "rto": 0.2, "segments": 1})
    delays = np.array([p.extra_latency(1.0, call, 1) for call in range(4000)])
    longest = loss_delay(15, 0.2)
    assert longest == pytest.approx(0.2 * (2**15 - 1))
    assert delays.max() == longest
    assert abs(np.mean(delays == longest) - 0.9**15) < 5 * math.sqrt(0.206 * 0.794 / 4000)


def test_the_proxy_loses_a_chunk_as_the_simulator_loses_that_segment() -> None:
    """streams.LOSS_SEGMENT: an attempt's segment s draws from LOSS_SEGMENT + s, and the proxy's
    upstream chunks draw as segment 0 (the request), its downstream ones as segment 1 (the
    answer). So, on the fault's stream, connection n's chunk c is lost as call n's attempt c:
    the upstream alone is a one-segment attempt, both directions a two-segment one."""
    seed, probability, rto = 5, 0.4, 0.2
    key = stream_key(seed, FAULT_BASE)  # fault 0's stream, as the proxy keys toxic 0
    toxics: tuple[Toxic, ...] = (
        LossToxic(stream="upstream", probability=probability, rto=rto),
        LossToxic(stream="downstream", probability=probability, rto=rto),
    )
    ends = cast(Any, (None, None))
    fault = {"kind": "packet_loss", "probability": probability, "rto": rto}
    one = plan({**fault, "segments": 1}, seed=seed)
    two = plan({**fault, "segments": 2}, seed=seed)
    lost_down = 0
    for connection in range(40):
        link = Link(FakeProxy(toxics, [key, key]), connection, ends, ends)
        for chunk in range(5):
            up = link._lost("upstream", chunk, 0.0)
            down = link._lost("downstream", chunk, 0.0)
            assert up == one.extra_latency(1.0, connection, chunk)
            assert up + down == pytest.approx(two.extra_latency(1.0, connection, chunk))
            lost_down += down > 0
    assert lost_down > 40


# --- narrowed faults -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "latency_spike", "end": 10, "extra": 0.5},
        {"kind": "packet_loss", "probability": 0.5},
        {"kind": "slicer", "average_size": 100, "delay": 0.05, "answer_bytes": 1000},
    ],
    ids=["latency_spike", "packet_loss", "slicer"],
)
def test_a_delay_on_listed_clients_leaves_the_others_at_the_service_time(
    fault: dict[str, Any],
) -> None:
    result = simulate(
        parse_scenario(
            {
                "duration": 10,
                "policy": {"max_attempts": 1},
                "clients": {"count": 4, "calls_per_client": 5},
                "service": {"kind": "ideal", "latency": 0.01},
                "faults": [{**fault, "clients": [0]}],
            }
        )
    )
    assert violations(result) == []
    a = result.attempts
    client = result.calls["client"][a["call"]]
    took = a["end"] - a["start"]
    assert len(a) == 20
    assert took[client != 0] == pytest.approx(0.01)
    assert np.any(took[client == 0] > 0.05)


def test_compiled_narrowed_and_packet_loss_strategies_are_immutable() -> None:
    """One plan serves every call of a run: a recurring or client-limited strategy, and packet
    loss's, cannot be changed (count gates keep their count, by design, and nothing else)."""
    p = plan(
        {"kind": "flaky", "probability": 0.5, "clients": 0.5},
        {"kind": "packet_loss", "probability": 0.1},
    )
    strategies: list[Any] = [p.gates[0], p.spikes[0]]
    assert [type(s).__name__ for s in strategies] == ["Narrowed", "LossDelay"]
    for strategy in strategies:
        for field in dataclasses.fields(strategy):
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(strategy, field.name, getattr(strategy, field.name))


def test_a_recurring_gate_keeps_its_retry_after_and_a_recurring_reset_its_error() -> None:
    """Wrapped to recur, a rate-limit keeps the Retry-After its failures carry, and a reset
    the error its client sees: what the plan reads of them is the wrapped fault's."""
    from retrysim.sim.failures import CODES

    recurring = {"every": 10, "for": 5}
    p = plan(
        {"kind": "outage", "end": 50, "error": "RateLimited", "retry_after": 2.5, **recurring},
        {"kind": "reset", "probability": 1.0, "error": "ConnectionAbortedError", **recurring},
    )
    assert p.hinted and p.hint(1.0, 7, 1) == 2.5
    assert p.hint(6.0, 7, 1) is None  # off: the attempt passed
    found = p.reset_share(1.0, 7, 1)
    assert found is not None and found[1] == CODES["ConnectionAbortedError"]
    assert p.reset_share(6.0, 7, 1) is None
