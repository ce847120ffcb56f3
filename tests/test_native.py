"""The native core is proved identical to the reference path, record for record, bit for bit.

The reference path steps tenacity's own ``Retrying.iter()``; the native core
(``native/engine.c``, built by ``pip install``) runs the same model compiled. Here, on every
run the core takes: every bundled scenario under every profile, the per-error policies,
100,000 clients, and generated scenarios; the raw bytes of the attempt and call records, the
events, the end time and why a run stopped are compared. Runs it does not take fall back to
the Python engine, named in the report (``engine: fast (the native core has no ...)``),
and ``--engine native`` refuses them in one line.

Under ``RETRYSIM_REQUIRE_SERVICES=1`` (CI) the core must be built: a missing core fails here
instead of every proof quietly running the Python engine against itself.
"""

from __future__ import annotations

import copy
import os
import sys
from functools import partial
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import retrysim
from retrysim.cli.app import app
from retrysim.model.scenario import Scenario, parse_scenario
from retrysim.names import PROFILES
from retrysim.sim import kernel, limits, native
from retrysim.sim.decide import EngineChoiceError
from retrysim.sim.engine import RunResult, simulate
from retrysim.sim.invariants import InvariantError
from retrysim.sim.limits import ScenarioTooLargeError
from retrysim.sim.records import ATTEMPT_DTYPE
from tests.test_fast_path import BUNDLED, LARGE, PER_ERROR_VARIANTS, assert_identical, bundled
from tests.test_fidelity import PER_ERROR
from tests.test_invariants import scenarios as generated_scenarios

BUILT = native.core() is not None
needs_core = pytest.mark.skipif(
    not BUILT, reason=f"{native.absent()}: pip install -e '.[dev]' builds it"
)


def test_the_core_is_built_where_ci_runs() -> None:
    if os.environ.get("RETRYSIM_REQUIRE_SERVICES") == "1":
        assert BUILT, native.absent()
    assert (native.absent() is None) == BUILT


def test_without_the_core_the_python_engine_runs_and_says_how_to_build_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "retrysim.sim._native", None)  # an import that fails
    monkeypatch.delattr(sys.modules["retrysim.sim"], "_native", raising=False)
    assert native.core() is None
    why = native.absent()
    assert why is not None and why.startswith("the native core is not built (")
    assert why.endswith("reinstall with pip install -e .")
    result = simulate(retrysim.load_scenario("redis-blip"))
    assert (result.engine, result.engine_note) == ("fast", why)


def native_and_reference(scenario: Scenario, judge: str = "reference") -> tuple[RunResult, ...]:
    """The run on the core (None when the core does not take it) and on ``judge``."""
    ours = simulate(scenario)
    if ours.engine != "native":
        return (None, ours)  # type: ignore[return-value]
    return ours, simulate(scenario, engine=judge)


# -- every bundled scenario under every profile -------------------------------------------------

CASES = [
    pytest.param(name, profile, marks=[pytest.mark.slow] if name in LARGE else [])
    for name in BUNDLED
    for profile in PROFILES
]


@needs_core
@pytest.mark.parametrize(("name", "profile"), CASES)
def test_every_bundled_scenario_under_every_profile(name: str, profile: str) -> None:
    ours, theirs = native_and_reference(bundled(name, profile))
    if ours is None:  # not the core's: the Python engine ran, and the report says why
        assert theirs.engine in ("fast", "reference")
        assert theirs.engine_note
        return
    assert len(ours.attempts) > 0
    assert_identical(ours, theirs)


@needs_core
def test_the_core_takes_the_bundled_scenarios_it_models() -> None:
    """The scenarios of the README's first runs are the core's under the default profile."""
    for name in ("thundering-herd", "redis-blip", "postgres-restart", "network-timeouts"):
        assert simulate(retrysim.load_scenario(name)).engine == "native", name


@needs_core
@pytest.mark.parametrize("profile", PROFILES)
def test_per_error_policies(profile: str) -> None:
    overrides: dict[str, Any] = {"policy.profile": profile, **PER_ERROR_VARIANTS["mirrors only"]}
    if profile == "bindu":
        overrides["policy.retry_on"] = ["RateLimited", "ConnectionRefusedError", "TimeoutError"]
    ours, theirs = native_and_reference(parse_scenario(PER_ERROR).with_overrides(overrides))
    assert ours is not None, theirs.engine_note
    assert int(ours.calls["attempts"].max()) > 3  # the families' own limits acted
    assert_identical(ours, theirs)


@needs_core
@pytest.mark.parametrize("balance", ["round_robin", "random", "least_outstanding", "power_of_two"])
@pytest.mark.parametrize("other_host", [False, True])
@pytest.mark.parametrize("more_faults", [False, True])
@pytest.mark.parametrize("hedged", [False, True])
def test_replicas_under_every_balance_rule(
    balance: str, other_host: bool, more_faults: bool, hedged: bool
) -> None:
    """Each replica its own server and faults, the balancer's picks and counts, a retry
    steered off the replicas its call tried: over a pooled network, so every path crosses."""
    overrides: dict[str, Any] = {
        "service.balance": balance,
        "policy.retry_other_host": other_host,
        "clients.pool_size": 2,
        "clients.processes": 20,
        "policy.hedge.enabled": hedged,  # a hedge goes to a replica its siblings did not
        "policy.hedge.delay": 0.05,
    }
    scenario = retrysim.load_scenario("replica-down").with_overrides(overrides)
    if more_faults:  # a replica that loses slots, another that fails some requests
        data = scenario.model_dump(mode="json")
        data["faults"] += [
            {"kind": "capacity_loss", "start": 2, "end": 6, "slots": 1, "replicas": [1]},
            {"kind": "flaky", "probability": 0.3, "replicas": [3], "error": "ServerError"},
        ]
        scenario = parse_scenario(data)
    ours, theirs = native_and_reference(scenario)
    assert ours is not None, theirs.engine_note
    assert len(set(ours.attempts["replica"].tolist())) == 5
    assert_identical(ours, theirs)


@needs_core
@pytest.mark.slow
def test_a_hundred_thousand_clients() -> None:
    scenario = retrysim.load_scenario("thundering-herd").with_overrides(
        {"clients.count": 100_000, "clients.calls_per_client": 1, "duration": 40}
    )
    ours, theirs = native_and_reference(scenario, judge="fast")  # fast = reference, proved
    assert ours is not None
    assert len(ours.calls) == 100_000
    assert_identical(ours, theirs)


@needs_core
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(generated_scenarios())
def test_generated_scenarios(data: dict[str, Any]) -> None:
    ours, theirs = native_and_reference(parse_scenario(copy.deepcopy(data)))
    if ours is not None:
        assert_identical(ours, theirs)


@needs_core
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(generated_scenarios(), st.integers(2, 4), st.sampled_from([0.0, 0.01, 0.2]))
def test_generated_scenarios_hedged(data: dict[str, Any], sends: int, delay: float) -> None:
    """The same scenarios with hedged attempts: each send a row, the first outcome the retry
    takes wins and the rest are cancelled, a failure sends the next at once."""
    data = copy.deepcopy(data)
    data["policy"]["hedge"] = {"enabled": True, "max_attempts": sends, "delay": delay}
    ours, theirs = native_and_reference(parse_scenario(data))
    assert ours is not None, theirs.engine_note
    assert_identical(ours, theirs)


def test_a_refused_hedge_of_a_call_that_has_ended_is_heard_by_no_one() -> None:
    """Hypothesis's counterexample: the third send of a hedged attempt waits for a pooled
    connection, gets one when the winning send's sibling is cancelled, and reaches a full
    server after its call has ended. The refusal came back to a call with no state left (the
    Python engine raised AttributeError); now, as for every answer, only an open attempt's
    client hears it. Both Python paths and the core agree."""
    scenario = parse_scenario(
        {
            "duration": 1.0,
            "policy": {
                "operation": "worker",
                "max_attempts": 1,
                "hedge": {"enabled": True, "max_attempts": 3, "delay": 0.0},
            },
            "clients": {"count": 1, "arrival": {"kind": "poisson", "rate": 1.0}, "pool_size": 2},
            "service": {"kind": "queue", "latency": 0.0, "concurrency": 1, "queue_limit": 0},
        }
    )
    fast, reference = simulate(scenario, engine="fast"), simulate(scenario, engine="reference")
    assert_identical(fast, reference)
    assert (fast.calls["outcome"] == 0).all()  # every call won with its first send
    assert (fast.attempts["outcome"][fast.attempts["hedge"] > 0] == 4).all()  # cancelled
    if BUILT:
        assert_identical(simulate(scenario, engine="native"), reference)


@needs_core
def test_generated_scenarios_mostly_run_on_the_core() -> None:
    """The property above is not vacuous: most generated scenarios are the core's."""
    taken = []

    @settings(max_examples=40, deadline=None, database=None)
    @given(generated_scenarios())
    def count(data: dict[str, Any]) -> None:
        taken.append(simulate(parse_scenario(copy.deepcopy(data))).engine == "native")

    count()
    assert sum(taken) >= len(taken) * 9 // 10, f"{sum(taken)} of {len(taken)}"


# -- the lowering, part by part ------------------------------------------------------------------

LATENCIES: dict[str, dict[str, Any]] = {
    "constant": {"dist": "constant", "value": 0.004},
    "uniform": {"dist": "uniform", "low": 0.001, "high": 0.009},
    "exponential": {"dist": "exponential", "mean": 0.004},
    "normal clipped": {"dist": "normal", "mean": 0.002, "std": 0.004},
    "normal reflected": {"dist": "normal", "mean": 0.002, "std": 0.004, "negative": "reflect"},
    "lognormal": {"dist": "lognormal", "median": 0.003, "p99": 0.05},
    "weibull": {"dist": "weibull", "shape": 0.7, "scale": 0.004},
    "empirical": {"dist": "empirical", "quantiles": [0.001, 0.002, 0.004, 0.02, 0.2]},
}


@needs_core
@pytest.mark.parametrize("latency", sorted(LATENCIES))
def test_every_latency_the_core_draws_as_the_python_engine_draws(latency: str) -> None:
    """The service's latency and a spike's extra seconds, each kind by its own sampler."""
    scenario = retrysim.load_scenario("redis-blip").with_overrides(
        {"service.latency": LATENCIES[latency], "clients.timeout": 0.03}
    )
    data = scenario.model_dump(mode="json")
    data["faults"].append(
        {"kind": "latency_spike", "start": 1, "end": 9, **{"extra": LATENCIES[latency]}}
    )
    ours, theirs = native_and_reference(parse_scenario(data))
    assert ours is not None, theirs.engine_note
    assert len(set(ours.attempts["end"] - ours.attempts["start"])) > 2 or latency == "constant"
    assert_identical(ours, theirs)


def test_attempt_bounds_of_every_stop_the_tables_are_cut_by() -> None:
    """How many attempts a stop lets a call make: the per-attempt tables stop there."""
    import tenacity

    from retrysim.sim.native_lower import attempt_bound

    after = tenacity.stop_after_attempt
    delay = tenacity.stop_after_delay(5)
    assert attempt_bound(after(4)) == 4
    assert attempt_bound(delay) is None
    assert attempt_bound(after(4) | after(7)) == 4  # any: the first to stop
    assert attempt_bound(after(4) | delay) == 4
    assert attempt_bound(tenacity.stop_any(delay)) is None
    assert attempt_bound(after(4) & after(7)) == 7  # all: the last
    assert attempt_bound(after(4) & delay) is None
    assert attempt_bound(tenacity.stop_all()) is None


def test_a_number_a_double_cannot_hold_is_refused_and_nan_passes() -> None:
    from retrysim.sim.native_lower import Refused, exact

    assert exact(3, "n") == 3.0 and isinstance(exact(3, "n"), float)
    assert exact(0.1, "x") == 0.1
    with pytest.raises(Refused, match=r"a fixed wait \(1152921504606846977\) is not exactly"):
        exact(2**60 + 1, "a fixed wait")
    assert np.isnan(exact(float("nan"), "nan"))


# -- limits, progress, memory ------------------------------------------------------------------


@needs_core
@pytest.mark.parametrize(
    "limits",
    [{"limits.max_time": 12.5}, {"limits.max_events": 5_000}],
    ids=["time", "events"],
)
def test_a_run_stopped_by_a_limit_stops_where_the_python_engine_stops(
    limits: dict[str, Any],
) -> None:
    scenario = retrysim.load_scenario("thundering-herd").with_overrides(
        {"clients.count": 2_000, **limits}
    )
    ours, theirs = native_and_reference(scenario, judge="fast")
    assert ours is not None and ours.stopped
    assert (ours.calls["outcome"] == 2).any()  # unfinished calls, their attempts counted
    assert_identical(ours, theirs)


@needs_core
def test_the_attempts_budget_stops_a_retry_storm_as_the_python_engine_does() -> None:
    scenario = parse_scenario(
        {
            "clients": {"count": 200, "arrival": {"kind": "burst"}},
            "policy": {"max_attempts": 10_000, "min_wait": 0.0, "max_wait": 0.0},
            "faults": [{"kind": "outage", "start": 0, "end": 1e9}],
            "duration": 10,
        }
    )
    ours, theirs = native_and_reference(scenario, judge="fast")
    assert ours is not None and ours.stopped and "attempts budget" in ours.stopped
    assert_identical(ours, theirs)


def _report_into(reports: list[tuple[int, int]], done: int, total: int) -> None:
    reports.append((done, total))


@needs_core
@pytest.mark.parametrize("arrival", ["burst", "poisson", "closed"])
def test_progress_is_reported_as_the_python_engine_reports_it(
    arrival: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The calls expected, known up front (drawn arrivals, calls per client) or extrapolated
    (a closed loop for the duration), reported as the Python engine reports them."""
    monkeypatch.setattr(kernel, "REPORT_EVERY", 64)
    arrivals = {
        "burst": {"kind": "burst"},
        "poisson": {"kind": "poisson", "rate": 300.0},
        "closed": {"kind": "closed"},
    }
    data = {
        "duration": 20,
        "clients": {"count": 40, "arrival": arrivals[arrival], "think_time": 0.5},
        "faults": [{"kind": "outage", "start": 2, "end": 6}],
    }
    if arrival == "burst":
        data["clients"]["calls_per_client"] = 5  # type: ignore[index]
    scenario = parse_scenario(data)
    seen: dict[str, list[tuple[int, int]]] = {"native": [], "fast": []}
    for engine, reports in seen.items():
        simulate(scenario, engine=engine, progress=partial(_report_into, reports))
    assert len(seen["native"]) > 5
    assert seen["native"] == seen["fast"]


@needs_core
def test_records_are_numpy_views_of_the_cores_rows_not_copies() -> None:
    result = simulate(retrysim.load_scenario("redis-blip"), engine="native")
    assert not result.attempts.flags.owndata  # numpy reads the core's block in place
    rows = native.core().Rows  # type: ignore[union-attr]
    assert isinstance(result.attempts.base, memoryview)
    assert isinstance(result.attempts.base.obj, rows)
    result.calls["attempts"][0] += 0  # writable, as the Python engine's records are


@needs_core
def test_a_scenario_too_large_for_memory_is_refused_before_the_core_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(limits, "available_memory", lambda: 1_000_000.0)
    with pytest.raises(ScenarioTooLargeError, match=r"clients\.count"):
        simulate(retrysim.load_scenario("thundering-herd"), engine="native")


@needs_core
def test_the_wall_time_is_the_cores_run() -> None:
    result = simulate(retrysim.load_scenario("redis-blip"), engine="native")
    assert 0 < result.wall_time < 60


@needs_core
def test_the_cores_records_pass_the_invariants_or_the_run_fails() -> None:
    """A core that wrote a wrong record (here: an attempt numbered 7 for a first attempt)
    is caught by the same invariants every run passes."""
    real = native.core()
    assert real is not None
    real_run = real.run

    class Corrupting:
        @staticmethod
        def run(*args: Any) -> tuple[Any, ...]:
            out = real_run(*args)
            np.frombuffer(out[0], dtype=ATTEMPT_DTYPE)["attempt"][0] = 7
            return tuple(out)

    from retrysim.sim.engine import Engine
    from retrysim.sim.native_lower import lower

    engine = Engine(retrysim.load_scenario("redis-blip"))
    with pytest.raises(InvariantError, match="attempts"):
        native._run(engine, Corrupting, lower(engine))  # type: ignore[arg-type]


# -- which engine runs, and saying so ------------------------------------------------------------


@needs_core
def test_what_the_lowering_refuses_runs_on_the_fast_path_with_the_reason() -> None:
    gamma = retrysim.load_scenario("redis-blip").with_overrides(
        {"service.latency": {"dist": "gamma", "mean": 0.004, "shape": 2.0}}
    )
    result = simulate(gamma)
    assert (result.engine, result.engine_note) == ("fast", "the native core has no gamma latency")
    one_tier = simulate(parse_scenario({"tiers": {"api": {}}, "clients": {"count": 5}}))
    assert (one_tier.engine, one_tier.engine_note) == ("fast", "the native core has no tiers")


@needs_core
def test_native_is_refused_in_one_line_for_what_it_does_not_model() -> None:
    with pytest.raises(EngineChoiceError, match=r"--engine native: the native core has no tiers"):
        simulate(retrysim.load_scenario("three-tier-storm"), engine="native")


@needs_core
def test_the_report_says_native_or_why_not(tmp_path: Any) -> None:
    runner = CliRunner()
    herd = runner.invoke(app, ["run", "thundering-herd", "--quiet", "--json"])
    assert herd.exit_code == 0, herd.output
    assert '"engine": "native"' in herd.output
    storm = runner.invoke(app, ["run", "three-tier-storm"])
    assert storm.exit_code == 0, storm.output
    assert "engine: fast (the native core has no tiers)" in storm.output
    refused = runner.invoke(app, ["run", "three-tier-storm", "--engine", "native"])
    assert refused.exit_code == 2
    assert "--engine native: the native core has no tiers" in refused.output


def test_turned_off_the_python_engine_runs_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(native.SWITCH, "0")
    result = simulate(retrysim.load_scenario("redis-blip"))
    assert result.engine == "fast"
    assert result.engine_note == f"the native core is turned off ({native.SWITCH}=0)"
    with pytest.raises(EngineChoiceError, match="turned off"):
        simulate(retrysim.load_scenario("redis-blip"), engine="native")
