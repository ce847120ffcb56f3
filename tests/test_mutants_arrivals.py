"""Arrival behaviour that ``retrysim/sim/arrivals.py``'s mutation run found untested.

``scripts/mutate.py`` (docs/mutation.md) left edits of the arrivals module alive: each test
below pins what one of them would break silently, as a caller sees it (the calls a run starts,
the estimate the memory check and attempts budget rest on, the window a Poisson process fills).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from retrysim.model.scenario import Poisson, parse_scenario
from retrysim.sim.arrivals import (
    expected_calls,
    first_calls,
    follow_up_calls,
    poisson_times,
    rate_segments,
)
from retrysim.sim.engine import ScenarioTooLargeError, simulate
from retrysim.sim.streams import ARRIVAL, stream_key

# -- the seed -----------------------------------------------------------------------------------


def test_a_runs_seed_draws_its_arrivals_and_the_scenarios_seed_is_the_default() -> None:
    """``simulate(scenario, seed=s)`` starts calls where the same scenario with ``seed = s``
    does, not where the scenario's own seed would; with no seed, the scenario's seed draws."""
    data: dict[str, Any] = {
        "duration": 10,
        "clients": {"count": 12, "arrival": {"kind": "uniform", "start": 0, "end": 5}},
    }
    own = parse_scenario({**data, "seed": 1})
    other = parse_scenario({**data, "seed": 7})
    starts = simulate(own, seed=7).calls["start"]
    assert np.array_equal(starts, simulate(other).calls["start"])
    assert not np.array_equal(starts, simulate(own).calls["start"])
    times, clients = first_calls(own)
    assert np.array_equal(times, np.sort(simulate(own).calls["start"]))
    assert sorted(clients.tolist()) == list(range(12))


# -- the Poisson process ------------------------------------------------------------------------


def test_a_window_past_the_duration_has_no_pieces_and_no_arrivals() -> None:
    """A Poisson window that starts at or after the duration is cut to nothing: no rate pieces,
    no arrival times (the scenario refuses such a window; the functions still answer empty)."""
    late = Poisson(kind="poisson", rate=10.0, start=70.0)
    key = stream_key(1, ARRIVAL)
    for duration in (60.0, 70.0):
        assert rate_segments(late, duration) == []
        assert len(poisson_times(late, duration, key)) == 0


def test_a_rate_at_or_below_one_per_second_still_makes_arrivals() -> None:
    """Only a zero rate makes no arrivals: 0.5/s over 400 s makes about 200 calls (Poisson, within
    five sigma), and a 1/s schedule step makes its share of them too."""
    steady = parse_scenario(
        {"duration": 400, "clients": {"arrival": {"kind": "poisson", "rate": 0.5}}}
    )
    times, _ = first_calls(steady)
    assert abs(len(times) - 200) < 5 * math.sqrt(200)
    stepped = parse_scenario(
        {
            "duration": 400,
            "clients": {
                "arrival": {
                    "kind": "poisson",
                    "rate": 0,
                    "schedule": [{"start": 100, "end": 300, "rate": 1}],
                }
            },
        }
    )
    times, _ = first_calls(stepped)
    assert abs(len(times) - 200) < 5 * math.sqrt(200)
    assert np.all((times >= 100) & (times < 300))


def test_no_arrival_lands_on_the_end_of_a_window_one_float_wide() -> None:
    """The window is half-open, [start, end), even where floats are coarse: at 2**29 s the
    window up to the next float holds arrivals at start (gaps below half a float step round
    away), and the first longer gap reaches exactly ``end``, which must not count."""
    start = 2.0**29
    end = math.nextafter(start, math.inf)
    rate = 2 / (end - start)  # a gap of one float step is likely, as is one of half a step
    for seed in range(12):
        scenario = parse_scenario(
            {
                "seed": seed,
                "duration": end,
                "clients": {"arrival": {"kind": "poisson", "rate": rate, "start": start}},
            }
        )
        times, _ = first_calls(scenario)
        assert np.all(times == start), seed


# -- the estimate of calls ----------------------------------------------------------------------


def test_a_poisson_estimate_is_the_windows_mean_plus_five_sigma_and_one() -> None:
    """``expected_calls`` of a Poisson arrival (memory check, attempts budget, ``tune`` and
    ``compare`` size checks): mean = sum of rate x piece length over the window actually used,
    plus five standard deviations and one, so the realised count stays below it."""
    windowed = parse_scenario(
        {
            "duration": 60,
            "clients": {"arrival": {"kind": "poisson", "rate": 10, "start": 10, "end": 20}},
        }
    )
    assert expected_calls(windowed) == pytest.approx(100 + 5 * 10 + 1)
    stepped = parse_scenario(
        {
            "duration": 60,
            "clients": {
                "arrival": {
                    "kind": "poisson",
                    "rate": 2,
                    "start": 30,
                    "schedule": [{"start": 40, "end": 50, "rate": 16.4}],
                }
            },
        }
    )
    mean = 2 * 20 + 16.4 * 10  # 30..40 and 50..60 at 2/s, 40..50 at 16.4/s
    assert expected_calls(stepped) == pytest.approx(mean + 5 * math.sqrt(mean) + 1)
    for seed in range(5):
        for scenario in (windowed, stepped):
            reseeded = scenario.model_copy(update={"seed": seed})
            assert len(first_calls(reseeded)[0]) <= expected_calls(reseeded)
    silent = parse_scenario(
        {"duration": 60, "clients": {"arrival": {"kind": "poisson", "rate": 0}}}
    )
    assert expected_calls(silent) == 1.0


def test_a_closed_loop_whose_calls_take_no_time_on_average_is_refused_not_a_crash() -> None:
    """A closed loop with no think time whose mean service time rounds to 0 (uniform up to the
    smallest float) would call without end: the estimate is infinite and the run is refused
    with the one-line memory error, not a division by zero."""
    scenario = parse_scenario(
        {
            "duration": 10,
            "clients": {"count": 2, "think_time": 0, "arrival": {"kind": "closed"}},
            "service": {"kind": "ideal", "latency": {"dist": "uniform", "low": 0, "high": 5e-324}},
        }
    )
    assert expected_calls(scenario) == math.inf
    with pytest.raises(ScenarioTooLargeError, match="unboundedly many calls"):
        simulate(scenario)


# -- follow-up calls ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arrival", "calls_per_client"),
    [
        ({"kind": "burst", "at": 1}, None),
        ({"kind": "uniform", "start": 0, "end": 2}, None),
        ({"kind": "burst", "at": 1}, 3),
        ({"kind": "closed"}, 2),
    ],
)
def test_follow_up_calls_is_how_many_calls_each_client_makes(
    arrival: dict[str, Any], calls_per_client: int | None
) -> None:
    """``follow_up_calls`` counts each client's calls as the engine makes them: one by default
    for burst and uniform arrivals, ``calls_per_client`` when given."""
    clients: dict[str, Any] = {"count": 3, "think_time": 0.5, "arrival": arrival}
    if calls_per_client is not None:
        clients["calls_per_client"] = calls_per_client
    scenario = parse_scenario({"duration": 60, "clients": clients})
    made = np.bincount(simulate(scenario).calls["client"], minlength=3)
    assert follow_up_calls(scenario) == (calls_per_client or 1)
    assert made.tolist() == [follow_up_calls(scenario)] * 3


def test_follow_up_calls_marks_open_and_endless_closed_loops() -> None:
    """0 for open-loop Poisson (every arrival is its own call, none follows it); infinity for a
    closed loop without ``calls_per_client`` (it calls again until the duration ends)."""
    poisson = parse_scenario({"clients": {"count": 4, "arrival": {"kind": "poisson", "rate": 3}}})
    assert follow_up_calls(poisson) == 0
    closed = parse_scenario({"clients": {"think_time": 1, "arrival": {"kind": "closed"}}})
    assert follow_up_calls(closed) == math.inf
