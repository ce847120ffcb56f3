"""Every bundled scenario loads, describes itself, runs and obeys the invariants; and the
thundering herd shows what the shipped jitter does to the first retry."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

import retrysim
from retrysim.model.library import bundled_scenarios, scenarios_dir
from retrysim.results import metrics
from retrysim.sim import records as rec
from retrysim.sim.engine import RunResult, simulate
from retrysim.sim.invariants import violations

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"
FILES = sorted(SCENARIO_DIR.glob("*.toml"))
SLOW = {"thundering-herd"}  # 30,000 calls: about 2 s


def test_the_bundled_set_is_the_scenarios_folder() -> None:
    assert FILES, "no scenarios found"
    assert [p.resolve() for p in bundled_scenarios().values()] == [p.resolve() for p in FILES]
    assert scenarios_dir().resolve() == SCENARIO_DIR


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_bundled_file_loads_and_describes_itself(path: Path) -> None:
    scenario = retrysim.load_scenario(path)
    assert scenario == retrysim.load_scenario(path.stem)
    assert scenario.name == path.stem
    assert len(scenario.description) > 40
    # the raw file carries the same description (what `scenarios list` shows)
    with path.open("rb") as handle:
        assert tomllib.load(handle)["description"] == scenario.description


def _run(name: str) -> RunResult:
    result = simulate(retrysim.load_scenario(name))
    assert result.stopped is None
    assert violations(result) == []
    return result


@pytest.mark.parametrize(
    "name",
    [pytest.param(p.stem, marks=[pytest.mark.slow] if p.stem in SLOW else []) for p in FILES],
)
def test_bundled_scenario_runs_and_satisfies_the_invariants(name: str) -> None:
    result = _run(name)
    calls = result.calls
    assert len(calls) > 0 and len(result.attempts) >= len(calls)
    n_ok = int(np.sum(calls["outcome"] == rec.SUCCEEDED))
    n_failed = int(np.sum(calls["outcome"] == rec.GAVE_UP))
    n_open = int(np.sum(calls["outcome"] == rec.UNFINISHED))
    assert n_ok + n_failed + n_open == len(calls)
    doc = retrysim.summarize(result)
    assert doc["scenario"] == name
    assert doc["calls"]["total"] == len(calls)
    for metric_name in metrics.METRICS:
        metrics.metric(doc, metric_name)  # every named metric resolves


@pytest.mark.slow
def test_thundering_herd_first_retries_bunch_under_the_shipped_jitter() -> None:
    """10,000 clients x 3 calls, all in a Redis outage at t=0.

    Under ``bindu`` the first wait is U(min_wait, clamp(2^0, min_wait, max_wait)) = U(1, 1):
    exactly min_wait = 1 s (REFERENCE section 1). Every client's first call fails at t=0, so all
    10,000 first retries of those calls start at exactly t=1.0, inside one 100 ms window. The
    calls that follow also fail and retry, so these are one third of the 30,000 first retries:
    the peak share is at least 10,000 / 30,000 = 1/3.

    ``documented`` waits min_wait + U(0, 1) and ``full_jitter`` U(0, min_wait): the same 10,000
    retries are spread uniformly over a whole second, so about 1/10 of them (1/30 of all first
    retries) share a 100 ms window.
    """
    herd = retrysim.load_scenario("thundering-herd")
    shares = {}
    for profile in ("bindu", "documented", "full_jitter"):
        result = simulate(herd.with_overrides({"policy.profile": profile}))
        assert violations(result) == []
        shares[profile] = metrics.metric(metrics.summarize(result), "first_retry_peak_share")
    assert shares["bindu"] is not None and shares["bindu"] >= 0.3
    assert shares["documented"] is not None and shares["documented"] < 0.1
    assert shares["full_jitter"] is not None and shares["full_jitter"] < 0.1
    assert shares["bindu"] > 3 * max(shares["documented"], shares["full_jitter"])
