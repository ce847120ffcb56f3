"""The benchmark suite's instruments, at tiny sizes: models that agree, a document that is whole.

No timing is asserted (a shared machine's speed is not the code's); what is checked is that the
yardsticks model what retrysim simulates (the SimPy models, the Python floor and the C floor
agree with retrysim's results to sampling noise, over a few seeds, with the server queueing,
rejecting and timing out), that the bare loop replays a run, that instruction counts and the
README's tune example are found, and that the suite's JSON and table hold every figure, with
its target, measured or saying why not.
"""

from __future__ import annotations

import ast
import dataclasses
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from benchmarks import one_run, suite
from benchmarks.bare import bare_loop_alive
from benchmarks.c_floor import GCC_MISSING, build, run_c_floor
from benchmarks.engine import herd
from benchmarks.instructions import c_floor_instructions
from benchmarks.models import (
    HerdSpec,
    Summary,
    run_floor,
    run_simpy,
    run_simpy_lean,
    summary_of,
)
from benchmarks.native_figures import instruction_checks, tune_check
from benchmarks.tune_speed import readme_tune_example, tune_speedup
from retrysim.model.library import load_scenario
from retrysim.model.scenario import Scenario
from retrysim.sim.engine import simulate
from tests.conftest import missing

ROOT = Path(__file__).resolve().parents[1]
SEEDS = (1, 2, 3, 4, 5)


@pytest.fixture(scope="module")
def c_floor(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``benchmarks/c_floor/herd.c`` compiled as the suite compiles it."""
    if shutil.which("gcc") is None:
        missing("the C floor needs gcc: apt-get install gcc")
    return build(tmp_path_factory.mktemp("c-floor"))


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
def test_simpy_models_and_floors_agree_with_retrysim(scenario: Scenario, c_floor: Path) -> None:
    pytest.importorskip("simpy")
    spec = HerdSpec.of(scenario)
    ours = [summary_of(simulate(scenario, seed=seed)) for seed in SEEDS]
    models: dict[str, Callable[[HerdSpec], Summary]] = {
        "simpy": run_simpy,
        "simpy_lean": run_simpy_lean,
        "floor": run_floor,
        "c_floor": lambda spec: run_c_floor(c_floor, spec).summary,
    }
    for name, model in models.items():
        theirs = [model(dataclasses.replace(spec, seed=seed)) for seed in SEEDS]
        assert {s.calls for s in theirs} == {s.calls for s in ours}  # every client's calls made
        (ours_rate, ours_per_call), (rate, per_call) = mean_of(ours), mean_of(theirs)
        # seed-to-seed spread of a 1,000-client run's success rate is up to ~0.02 when starved
        assert rate == pytest.approx(ours_rate, abs=suite.RATE_TOLERANCE), name
        assert per_call == pytest.approx(ours_per_call, abs=suite.PER_CALL_TOLERANCE), name


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


def tiny_document(monkeypatch: pytest.MonkeyPatch, whole: bool) -> dict[str, Any]:
    """The suite at 200 clients, one round; without callgrind or tune (minutes, not seconds)."""
    return suite.run_suite(
        herd_clients=200,
        burst_clients=200,
        sizes=[200] if whole else [],
        repeat=1,
        whole_runs=1 if whole else 0,
        fidelity_clients=50,
        skipped_1m=True,
        instructions=False,
        tune_pairs=0,
    )


#: The new rows' targets: (a part of the row's name, target, the target an upper bound).
NATIVE_TARGETS = (
    ("fast / native (speed-up of the native core)", 10.0, False),
    ("native / simpy_lean", 0.1, True),
    ("instructions: native / c_floor", 3.0, True),
    ("native core: CPU time", 10.0, True),
    ("native core: max RSS", 600.0, True),
    ("clients.count=1000000`, whole process", 30.0, True),
    ("`retrysim tune` (README example): native off / on", 5.0, False),
)


def test_the_suite_document_holds_every_figure(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("simpy")
    if shutil.which("gcc") is None:
        missing("the C floor needs gcc: apt-get install gcc")
    monkeypatch.delenv("RETRYSIM_NATIVE", raising=False)
    doc = tiny_document(monkeypatch, whole=True)
    assert set(doc) >= {"command", "machine", "settings", "ratios", "fidelity", "tune"}
    assert set(doc) >= {"whole_process", "scaling", "checks", "loadavg_after", "notes"}
    assert set(doc) >= {"instructions", "native_1m"}
    machine = doc["machine"]
    for key in ("platform", "cpu_count", "loadavg", "python", "tenacity", "numpy", "simpy"):
        assert machine[key] is not None, key
    ratios = doc["ratios"]
    assert len(ratios) == 2
    variants = {"fast", "reference", "native", "floor", "c_floor", "bare_alive"}
    for block in ratios.values():
        assert set(block["cpu_s"]) == variants | {"simpy", "simpy_lean"}
        for name in ("fast/reference", "fast/simpy", "fast/floor", "reference/bare_alive"):
            assert block["ratios"][name]["median"] > 0, name
        for name in ("fast/native", "native/simpy_lean", "native/c_floor"):
            assert block["ratios"][name]["median"] > 0, name
        assert set(block["agreement"]) == variants - {"fast", "reference", "bare_alive"} | {
            "retrysim",
            "simpy",
            "simpy_lean",
        }
        assert block["agreement"]["native"] == block["agreement"]["retrysim"]  # same records
    assert set(doc["whole_process"]) == {
        "retrysim --help",
        "retrysim run redis-blip --quiet",
    }
    (row,) = doc["scaling"]
    assert row["clients"] == 200 and row["engine"] == "fast"
    assert row["attempts"] > 0 and row["max_rss_mib"] > 0 and row["us_per_attempt"] > 0
    checks = {check["name"]: check for check in doc["checks"]}
    assert checks["per-attempt cost, 1M / 10k clients"]["verdict"].startswith("not measured")
    for part, target, at_most in NATIVE_TARGETS:
        rows = [(c["target"], c["at_most"]) for c in doc["checks"] if part in c["name"]]
        assert rows and set(rows) == {(target, at_most)}, part
    timed = [
        c for c in doc["checks"] if "native /" in c["name"] and "instructions" not in c["name"]
    ]
    assert len(timed) == 4 and all(c["value"] > 0 and "rounds" in c["note"] for c in timed)
    table = suite.table(doc)
    assert "| measurement | figure | target | verdict |" in table
    assert "native / c_floor (CPU time" in table and "| <= 3 |" in table
    assert "load average" in table


def test_the_suite_says_what_it_could_not_measure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(suite, "simpy_available", lambda: False)
    monkeypatch.setattr(suite, "gcc_available", lambda: False)
    monkeypatch.setenv("RETRYSIM_NATIVE", "0")
    doc = tiny_document(monkeypatch, whole=False)
    assert doc["notes"] == [suite.SIMPY_MISSING, GCC_MISSING]
    simpy_checks = [c for c in doc["checks"] if "simpy" in c["name"]]
    assert simpy_checks and all(c["value"] is None for c in simpy_checks)
    assert all(suite.SIMPY_MISSING in c["verdict"] for c in simpy_checks)
    native = [c for c in doc["checks"] if "native" in c["name"]]
    assert len(native) == 11 and all(c["value"] is None for c in native)
    for block in doc["ratios"].values():
        assert "native" not in block["cpu_s"] and "c_floor" not in block["cpu_s"]
        assert block["not_timed"]["native"].startswith("engine fast (")
        assert "RETRYSIM_NATIVE=0" in block["not_timed"]["native"]
    table = suite.table(doc)
    assert suite.SIMPY_MISSING in table and GCC_MISSING in table
    assert (
        "fast / native (speed-up of the native core) | - | >= 10 | not measured: engine fast"
        in (table)
    )


def test_the_c_floor_counts_instructions_of_its_simulation_alone(c_floor: Path) -> None:
    if shutil.which("valgrind") is None:
        missing("instruction counts need valgrind: apt-get install valgrind")
    spec = HerdSpec.of(small_herd(**{"clients.count": 100}))
    small = c_floor_instructions(c_floor, spec)
    larger = c_floor_instructions(c_floor, dataclasses.replace(spec, clients=400))
    # the run with no clients (start-up, parsing) is subtracted: 4x the clients, ~4x the work
    assert small > 0 and 3 < larger / small < 5.5


def test_instruction_and_tune_rows_read_their_measurements() -> None:
    counts = {"native": 250, "c_floor": 100, "fast": 5000}
    ratio, speedup = instruction_checks({"counts": counts, "notes": {}}, 10_000)
    assert (ratio.value, ratio.met, speedup.value) == (2.5, True, 20.0)
    missing = instruction_checks(
        {"counts": {**counts, "native": None}, "notes": {"native": "x"}}, 1
    )
    assert [c.value for c in missing] == [None, None] and missing[0].verdict() == "not measured: x"
    tune = {"native_s": [10.0], "python_s": [40.0], "median": 4.0, "low": 4.0, "high": 4.0}
    check = tune_check({**tune, "best_times": 4.0, "pairs": 1, "core_missing": []})
    assert check.value == 4.0 and check.verdict().startswith("missed by 1.250x")
    broken = tune_check({**tune, "best_times": 4.0, "pairs": 1, "core_missing": ["not built"]})
    assert broken.value is None and broken.verdict().endswith("did not load: not built")


def test_tune_runs_interleave_the_core_on_and_off_outside_the_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETRYSIM_NATIVE", "0")  # a user's own setting must not leak into "on"
    log = tmp_path / "runs.log"
    fake = (  # stands in for retrysim: notes the switch, the directory and its arguments
        "import os, sys; open(sys.argv[1], 'a').write(repr((os.environ.get('RETRYSIM_NATIVE'), "
        "os.getcwd(), sys.argv[2:])) + '\\n')"
    )
    timed = tune_speedup([sys.executable, "-c", fake, str(log)], pairs=2)
    runs = [ast.literal_eval(line) for line in log.read_text().splitlines()]
    assert [switch for switch, _, _ in runs] == [None, "0", None, "0"]
    assert all(Path(cwd) != ROOT and args == readme_tune_example() for _, cwd, args in runs)
    assert len(timed["native_s"]) == len(timed["python_s"]) == timed["pairs"] == 2
    assert timed["low"] <= timed["median"] <= timed["high"]
    assert timed["core_missing"] == []  # the core loads (checked before each run with it on)


def test_the_tune_example_is_the_readme_s() -> None:
    args = readme_tune_example()
    assert args[:2] == ["tune", "thundering-herd"] and "--objective" in args
    assert "--search" in args and "\\" not in args


def test_one_run_simulates_only_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    one_run.main(["native", "300"])
    assert capsys.readouterr().out.startswith("engine=native attempts=")
    one_run.main(["fast", "300", "--setup-only"])
    assert capsys.readouterr().out == "engine=fast setup only\n"


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
