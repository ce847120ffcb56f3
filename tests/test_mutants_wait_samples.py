"""Behaviour of ``sample_waits`` that the mutation run of ``retrysim/sim/wait_samples.py`` found
untested: its defaults, its bounds on ``samples`` and ``max_retries``, and that a sample is the
very schedule the engine gives a call (the same draws, in the same order).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from retrysim.model.scenario import parse_scenario
from retrysim.retry.settings import RetrySettings
from retrysim.sim.engine import simulate
from retrysim.sim.wait_samples import sample_waits

SETTINGS = RetrySettings.defaults()


def first_call_waits(profile: str, seed: int | None) -> list[float]:
    """The waits the engine schedules for the first call of a one-client run against a
    dependency that is always down (``seed=None``: the scenario sets none)."""
    data: dict[str, Any] = {
        "duration": 3000,
        "clients": {"count": 1, "arrival": {"kind": "burst", "at": 1}},
        "service": {"kind": "ideal", "latency": 0.001},
        "faults": [{"kind": "outage", "start": 0, "end": 3000}],
        "policy": {"operation": "worker", "profile": profile},
    }
    if seed is not None:
        data["seed"] = seed
    attempts = simulate(parse_scenario(data), settings=SETTINGS).attempts
    waits = attempts["wait"][attempts["call"] == 0]
    assert np.isnan(waits[-1])  # the last attempt is followed by no wait
    return [float(w) for w in waits[:-1]]


@pytest.mark.parametrize("profile", ["full_jitter", "decorrelated"])
def test_a_sample_is_the_schedule_the_engine_draws_for_a_call(profile: str) -> None:
    """Sample 0 for a seed is, draw for draw, the waits the engine schedules for the first call
    of a run with that seed: the figure shows the simulated policy, not a lookalike."""
    engine = first_call_waits(profile, seed=11)
    sampled = sample_waits("worker", profile, SETTINGS, samples=1, seed=11)
    assert len(engine) >= 2
    assert sampled[0].tolist() == engine


def test_by_default_waits_are_drawn_as_a_run_that_sets_no_seed() -> None:
    """With no ``seed``, the samples are those of seed 0, a scenario's default seed: sample 0
    is the first call's schedule in a run of a scenario without a seed."""
    sampled = sample_waits("worker", "full_jitter", SETTINGS, samples=1)
    assert sampled[0].tolist() == first_call_waits("full_jitter", seed=None)


def test_two_thousand_samples_by_default() -> None:
    """``samples`` defaults to 2000 rows, one per simulated call."""
    waits = sample_waits("api", "full_jitter", SETTINGS)
    assert waits.shape[0] == 2000


def test_one_sample_is_enough_and_none_is_refused() -> None:
    """``samples=1`` gives one row; ``samples=0`` is refused with a ValueError naming it."""
    assert sample_waits("api", "full_jitter", SETTINGS, samples=1).shape[0] == 1
    with pytest.raises(ValueError, match="samples must be >= 1, got 0"):
        sample_waits("api", "full_jitter", SETTINGS, samples=0)


def test_one_retry_samples_the_first_wait() -> None:
    """``max_retries=1`` (the lab's preview of a first wait) gives the first column of the full
    schedule, drawn, not an empty or unset column."""
    one = sample_waits("api", "full_jitter", SETTINGS, samples=50, seed=2, max_retries=1)
    full = sample_waits("api", "full_jitter", SETTINGS, samples=50, seed=2)
    assert one.shape == (50, 1)
    np.testing.assert_array_equal(one[:, 0], full[:, 0])
    assert np.unique(one).size > 1  # drawn waits, each its own
