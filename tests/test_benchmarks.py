"""The benchmark suite's instruments, at tiny sizes: models that agree, a document that is whole.

No timing is asserted (a shared machine's speed is not the code's); what is checked is that the
yardsticks model what retrysim simulates (the SimPy model and the floor agree with retrysim's
results to sampling noise, over a few seeds, with the server queueing, rejecting and timing
out), that the bare loop replays a run, and that the suite's JSON and table hold every figure.
"""

from __future__ import annotations

import dataclasses
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import suite
from benchmarks.bare import bare_loop_alive
from benchmarks.engine import herd
from benchmarks.models import HerdSpec, Summary, run_floor, run_simpy, summary_of
from retrysim.model.library import load_scenario
from retrysim.model.scenario import Scenario
from retrysim.sim.engine import simulate

ROOT = Path(__file__).resolve().parents[1]
SEEDS = (1, 2, 3, 4, 5)


def small_herd(**overrides: object) -> Scenario:
    base: dict[str, object] = {"clients.count": 1000}
    return load_scenario("thundering-herd").with_overrides({**base, **overrides})


def mean_of(runs: list[Summary]) -> tuple[float, float]:
    return (
        statistics.fmean(s.success_rate for s in runs),
        statistics.fmean(s.attempts_per_call for s in runs),
    )


@pytest.mark.parametrize(
    "scenario",
    [
        small_herd(),
        # a starved queue: refusals when full and, with a short timeout, abandoned requests (a
        # model without either is 0.08 off on success rate here)
        small_herd(**{"service.concurrency": 2, "service.queue_limit": 50}),
        small_herd(
            **{"service.concurrency": 2, "service.queue_limit": 500, "clients.timeout": 0.5}
        ),
        herd(600),
    ],
    ids=["herd", "rejecting", "timing-out", "burst"],
)
def test_simpy_model_and_floor_agree_with_retrysim(scenario: Scenario) -> None:
    pytest.importorskip("simpy")
    spec = HerdSpec.of(scenario)
    ours = [summary_of(simulate(scenario, seed=seed)) for seed in SEEDS]
    for model in (run_simpy, run_floor):
        theirs = [model(dataclasses.replace(spec, seed=seed)) for seed in SEEDS]
        assert {s.calls for s in theirs} == {s.calls for s in ours}  # every client's calls made
        (ours_rate, ours_per_call), (rate, per_call) = mean_of(ours), mean_of(theirs)
        # seed-to-seed spread of a 1,000-client run's success rate is up to ~0.02 when starved
        assert rate == pytest.approx(ours_rate, abs=0.04), model.__name__
        assert per_call == pytest.approx(ours_per_call, abs=0.03), model.__name__


def test_herd_spec_refuses_what_the_models_do_not_model() -> None:
    with pytest.raises(ValueError, match="burst"):
        HerdSpec.of(load_scenario("redis-blip"))


def test_the_bare_loop_replays_every_recorded_attempt() -> None:
    for scenario in (small_herd(), herd(300)):
        result = simulate(scenario, engine="reference")
        assert bare_loop_alive(scenario, result) >= 0.0  # (it checks its replay itself)


def test_the_bare_loop_refuses_a_run_it_does_not_replay() -> None:
    scenario = herd(300)
    result = simulate(scenario)
    result.attempts["error"][:] = 0  # every first attempt succeeds: the calls end too early
    with pytest.raises(AssertionError, match="disagree"):
        bare_loop_alive(scenario, result)


def tiny_document(monkeypatch: pytest.MonkeyPatch, simpy: bool) -> dict[str, Any]:
    if not simpy:
        monkeypatch.setattr(suite, "simpy_available", lambda: False)
    return suite.run_suite(
        herd_clients=200,
        burst_clients=200,
        sizes=[200] if simpy else [],
        repeat=1,
        whole_runs=1 if simpy else 0,
        fidelity_clients=50,
        skipped_1m=True,
    )


def test_the_suite_document_holds_every_figure(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("simpy")
    doc = tiny_document(monkeypatch, simpy=True)
    assert set(doc) >= {"command", "machine", "settings", "ratios", "fidelity"}
    assert set(doc) >= {"whole_process", "scaling", "checks", "loadavg_after", "notes"}
    machine = doc["machine"]
    for key in ("platform", "cpu_count", "loadavg", "python", "tenacity", "numpy", "simpy"):
        assert machine[key] is not None, key
    ratios = doc["ratios"]
    assert len(ratios) == 2
    for block in ratios.values():
        assert set(block["cpu_s"]) == {"fast", "reference", "simpy", "floor", "bare_alive"}
        for name in ("fast/reference", "fast/simpy", "fast/floor", "reference/bare_alive"):
            assert block["ratios"][name]["median"] > 0, name
        assert set(block["agreement"]) == {"retrysim", "simpy", "floor"}
    assert set(doc["whole_process"]) == {
        "retrysim --help",
        "retrysim run redis-blip --quiet",
    }
    (row,) = doc["scaling"]
    assert row["clients"] == 200 and row["engine"] == "fast"
    assert row["attempts"] > 0 and row["max_rss_mib"] > 0 and row["us_per_attempt"] > 0
    checks = {check["name"]: check for check in doc["checks"]}
    assert checks["per-attempt cost, 1M / 10k clients"]["verdict"].startswith("not measured")
    table = suite.table(doc)
    assert "| measurement | figure | target | verdict |" in table
    assert "load average" in table


def test_the_suite_says_when_simpy_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = tiny_document(monkeypatch, simpy=False)
    assert doc["notes"] == [suite.SIMPY_MISSING]
    simpy_checks = [c for c in doc["checks"] if "simpy" in c["name"]]
    assert simpy_checks and all(c["value"] is None for c in simpy_checks)
    assert all(suite.SIMPY_MISSING in c["verdict"] for c in simpy_checks)
    assert suite.SIMPY_MISSING in suite.table(doc)


def test_python_m_benchmarks_runs_the_suite_by_default_and_keeps_the_others() -> None:
    for args, prog in (([], "benchmarks suite"), (["engine"], "benchmarks engine")):
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks", *args, "--help"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
        )
        assert prog in done.stdout
