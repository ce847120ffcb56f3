"""The run step: the same document as simulate + baseline + summarize, fewer baseline runs.

Engine runs are counted with a wrapper around ``retrysim.sim.engine.simulate`` (the function the
run step calls), never by timing, so a cache that silently stopped working fails here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import retrysim
from retrysim import output
from retrysim.model.scenario import Scenario
from retrysim.results import metrics
from retrysim.results.document import ResultDocument
from retrysim.retry import RetrySettings
from retrysim.runs import runner
from retrysim.sim import engine

WITH_FAULTS = ["startup-race", "postgres-restart", "redis-blip"]
WITHOUT_FAULTS = ["lock-contention", "api-rate-limit"]


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    runner.clear_baseline_cache()
    yield
    runner.clear_baseline_cache()


@pytest.fixture
def engine_runs(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every engine run from here on: the scenario, seed, settings and progress it was given."""
    runs: list[dict[str, Any]] = []
    real = engine.simulate

    def counting(
        scenario: Scenario,
        seed: int | None = None,
        settings: RetrySettings | None = None,
        progress: Any = None,
        retrying: Any = None,
        engine: str = "auto",
        retryings: Any = None,
    ) -> Any:
        runs.append(
            {"scenario": scenario, "seed": seed, "settings": settings, "progress": progress}
        )
        result = real(
            scenario,
            seed=seed,
            settings=settings,
            progress=progress,
            retrying=retrying,
            retryings=retryings,
            engine=engine,
        )
        runs[-1]["calls"] = result.calls
        return result

    monkeypatch.setattr(engine, "simulate", counting)
    return runs


def _bytes(doc: ResultDocument) -> str:
    return output.dumps({**doc, "wall_time": 0.0})  # the only field that is not a pure function


def _old_path(scenario: Scenario, seed: int | None = None, settings: Any = None) -> str:
    """What the CLI, shell and sweep did before the run step, by hand."""
    result = engine.simulate(scenario, seed=seed, settings=settings)
    baseline = (
        engine.simulate(scenario.without_faults(), seed=seed, settings=settings)
        if scenario.faults
        else None
    )
    return _bytes(metrics.summarize(result, baseline))


@pytest.mark.parametrize("name", WITH_FAULTS + WITHOUT_FAULTS)
def test_document_is_the_old_simulate_baseline_summarize_path(name: str) -> None:
    scenario = retrysim.load_scenario(name)
    expected = _old_path(scenario)
    fresh = runner.run(scenario)
    again = runner.run(scenario)  # from the cache where there is a baseline
    assert _bytes(fresh.document) == expected
    assert _bytes(again.document) == expected
    assert fresh.baseline == ("simulated" if scenario.faults else "none")
    assert again.baseline == ("cached" if scenario.faults else "none")
    if scenario.faults:
        assert fresh.document["latency_overhead"] is not None


def test_other_seed_and_settings_match_the_old_path_too() -> None:
    scenario = retrysim.load_scenario("startup-race")
    settings = RetrySettings(storage_max_attempts=7, storage_min_wait=0.2)
    doc = runner.run(scenario, seed=3, settings=settings).document
    assert _bytes(doc) == _old_path(scenario, seed=3, settings=settings)


def test_result_is_the_main_run() -> None:
    scenario = retrysim.load_scenario("startup-race")
    step = runner.run(scenario, seed=4)
    assert step.result.seed == 4 and step.result.scenario == scenario
    assert _bytes(metrics.summarize(step.result)) == _bytes(
        {**step.document, "latency_overhead": None}
    )


def test_no_faults_means_no_baseline_run(engine_runs: list[dict[str, Any]]) -> None:
    step = runner.run(retrysim.load_scenario("lock-contention"))
    assert len(engine_runs) == 1
    assert step.baseline == "none" and step.document["latency_overhead"] is None


def test_no_baseline_when_the_caller_does_not_need_it(engine_runs: list[dict[str, Any]]) -> None:
    scenario = retrysim.load_scenario("startup-race")
    step = runner.run(scenario, baseline=False)
    assert len(engine_runs) == 1
    assert step.baseline == "none" and step.document["latency_overhead"] is None
    assert _bytes(step.document) == _bytes(metrics.summarize(engine.simulate(scenario)))
    runner.run(scenario)  # and it did not put anything in the cache
    assert len(engine_runs) == 4  # the summarize check above, then run + baseline


def test_a_cache_hit_skips_the_baseline_run(engine_runs: list[dict[str, Any]]) -> None:
    scenario = retrysim.load_scenario("startup-race")
    first = runner.run(scenario)
    assert [r["scenario"].faults for r in engine_runs] == [scenario.faults, []]
    second = runner.run(scenario)
    assert len(engine_runs) == 3  # the main run only
    assert (first.baseline, second.baseline) == ("simulated", "cached")


def test_cached_baseline_gives_a_byte_identical_document() -> None:
    scenario = retrysim.load_scenario("postgres-restart")
    runner.run(scenario, seed=5)
    cached = runner.run(scenario, seed=5)
    uncached = runner.run(scenario, seed=5, cache=False)
    assert (cached.baseline, uncached.baseline) == ("cached", "simulated")
    assert _bytes(cached.document) == _bytes(uncached.document)


def test_cache_false_neither_reads_nor_writes(engine_runs: list[dict[str, Any]]) -> None:
    scenario = retrysim.load_scenario("startup-race")
    runner.run(scenario, cache=False)
    runner.run(scenario, cache=False)
    assert len(engine_runs) == 4
    assert runner.run(scenario).baseline == "simulated"


def test_variants_that_differ_only_in_faults_share_a_baseline(
    engine_runs: list[dict[str, Any]],
) -> None:
    scenario = retrysim.load_scenario("startup-race")
    short = scenario.with_overrides({"faults.0.end": 4})
    one_fault = scenario.model_copy(update={"faults": scenario.faults[:1]})
    runner.run(scenario)
    shared = [runner.run(short), runner.run(one_fault)]
    assert len(engine_runs) == 4  # 2 for the first, then main runs only
    assert [s.baseline for s in shared] == ["cached", "cached"]
    for variant, step in zip((short, one_fault), shared, strict=True):
        assert _bytes(step.document) == _old_path(variant)


@pytest.mark.parametrize(
    "change",
    [
        {"policy.max_attempts": 2},
        {"policy.profile": "full_jitter"},
        {"clients.count": 41},
        {"service.latency.median": 0.31},
    ],
)
def test_anything_but_faults_gets_its_own_baseline(
    change: dict[str, Any], engine_runs: list[dict[str, Any]]
) -> None:
    scenario = retrysim.load_scenario("startup-race")
    variant = scenario.with_overrides(change)
    runner.run(scenario)
    step = runner.run(variant)
    assert len(engine_runs) == 4 and step.baseline == "simulated"
    assert engine_runs[-1]["scenario"] == variant.without_faults()
    assert _bytes(step.document) == _old_path(variant)


def test_seed_and_settings_are_part_of_the_key(engine_runs: list[dict[str, Any]]) -> None:
    scenario = retrysim.load_scenario("startup-race")
    runner.run(scenario, seed=1)
    assert runner.run(scenario, seed=2).baseline == "simulated"
    tuned = RetrySettings(storage_max_attempts=6)
    assert runner.run(scenario, seed=1, settings=tuned).baseline == "simulated"
    assert len(engine_runs) == 6


def test_defaults_spelled_two_ways_share_a_baseline() -> None:
    """seed=None is the scenario's seed, settings=None the documented defaults: one run each."""
    scenario = retrysim.load_scenario("startup-race")
    runner.run(scenario)
    same = runner.run(scenario, seed=scenario.seed, settings=RetrySettings.defaults())
    assert same.baseline == "cached"
    assert runner.baseline_key(scenario, None, None) == runner.baseline_key(
        scenario, scenario.seed, RetrySettings()
    )


def test_key_tells_none_apart_from_a_value_json_would_merge() -> None:
    """JSON writes None, inf and nan all as null; the key must not merge them."""
    scenario = retrysim.load_scenario("startup-race")
    inf = scenario.model_copy(
        update={"policy": scenario.policy.model_copy(update={"max_delay": float("inf")})}
    )
    assert runner.baseline_key(scenario, None, None) != runner.baseline_key(inf, None, None)


def test_cache_is_bounded_and_least_recently_used_goes_first(
    monkeypatch: pytest.MonkeyPatch, engine_runs: list[dict[str, Any]]
) -> None:
    monkeypatch.setattr(runner, "CACHE_SIZE", 2)
    scenario = retrysim.load_scenario("startup-race")
    runner.run(scenario, seed=1)
    runner.run(scenario, seed=2)
    runner.run(scenario, seed=1)  # hit: seed 1 is now the most recent
    runner.run(scenario, seed=3)  # evicts seed 2
    assert len(runner._cache) == 2
    assert len(engine_runs) == 7
    assert runner.run(scenario, seed=1).baseline == "cached"
    assert runner.run(scenario, seed=2).baseline == "simulated"


def test_progress_counts_the_baseline_calls_on_the_same_count(
    engine_runs: list[dict[str, Any]],
) -> None:
    seen: list[tuple[int, int]] = []
    step = runner.run(
        retrysim.load_scenario("startup-race"), progress=lambda d, t: seen.append((d, t))
    )
    assert step.baseline == "simulated"
    made = len(engine_runs[0]["calls"]) + len(engine_runs[1]["calls"])
    assert seen[-1] == (made, made)  # the step ends with all its work done
    dones = [done for done, _ in seen]
    assert dones == sorted(dones) and all(done <= total for done, total in seen)
    # the main run's end is reported as half the expected work when a baseline follows
    main = len(engine_runs[0]["calls"])
    assert (main, 2 * main) in seen


def test_progress_of_a_cached_baseline_is_the_main_run_alone() -> None:
    scenario = retrysim.load_scenario("startup-race")
    runner.run(scenario)
    seen: list[tuple[int, int]] = []
    step = runner.run(scenario, progress=lambda d, t: seen.append((d, t)))
    assert step.baseline == "cached"
    made = step.document["calls"]["total"]
    assert seen[-1] == (made, made)


def test_summarize_takes_a_baseline_or_its_latency_with_the_same_result() -> None:
    scenario = retrysim.load_scenario("startup-race")
    result = engine.simulate(scenario)
    baseline = engine.simulate(scenario.without_faults())
    by_records = metrics.summarize(result, baseline, wall_time=0.0)
    by_latency = metrics.summarize(
        result, wall_time=0.0, baseline_latency=metrics.latency(baseline.calls)
    )
    assert output.dumps(by_records) == output.dumps(by_latency)
    with pytest.raises(TypeError, match="not both"):
        metrics.summarize(result, baseline, baseline_latency=metrics.latency(baseline.calls))


def test_exported_lazily_from_the_package() -> None:
    assert retrysim.run is runner.run and retrysim.Run is runner.Run
    assert {"run", "Run"} <= set(retrysim.__all__)
