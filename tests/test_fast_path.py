"""The fast path is proved identical to the reference path, record for record, bit for bit.

The reference path steps tenacity's own ``Retrying.iter()``; the fast path calls the policy's
strategies directly, tenacity's common ones as mirrors (``retrysim/sim/compiled.py``). Here:
every bundled scenario under every profile, with every resilience mechanism, and generated
scenarios, run on both paths and compared array for array (the raw bytes of the attempt and
call records, the guard events, the connection counters). A drift check fails when tenacity
changes the source of a method the fast path mirrors: the hashes below were taken from
tenacity 9.2.1, the version in uv.lock; the equality proof ran against it.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import inspect
import textwrap
from collections.abc import Iterable
from typing import Any

import numpy as np
import pytest
import tenacity
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import retrysim
from retrysim.model.scenario import Scenario, parse_scenario
from retrysim.names import PROFILES
from retrysim.retry.exceptions import ConflictError, ServerError
from retrysim.retry.policy import build_policy
from retrysim.retry.settings import RetrySettings
from retrysim.sim import compiled as compiled_module
from retrysim.sim.decide import (
    MIRRORED,
    EngineChoiceError,
    FastCallState,
    fast_refusal,
    unmirrored,
)
from retrysim.sim.engine import RunResult, policy_for, simulate
from retrysim.sim.failures import CODE_NAMES, make_error
from retrysim.sim.streams import Stream
from tests.test_fidelity import PER_ERROR
from tests.test_fidelity_resilience import MECHANISMS, scenario_with
from tests.test_fidelity_resilience import UNIFORM as RESILIENCE_BASE
from tests.test_invariants import scenarios as generated_scenarios

BUNDLED = sorted(retrysim.bundled_scenarios())


@pytest.fixture(autouse=True)
def _without_the_native_core(monkeypatch: pytest.MonkeyPatch) -> None:
    """This proof is the Python engine's: it runs with the native core turned off, as on a
    machine where it is not built (``auto`` then takes the fast path; tests/test_native.py
    proves the core against the same reference)."""
    monkeypatch.setenv("RETRYSIM_NATIVE", "0")


#: Bundled scenarios big enough to take seconds a pair; run at full size, marked slow.
LARGE = {"thundering-herd", "retry-storm"}


def both(scenario: Scenario, **kw: Any) -> tuple[RunResult, RunResult]:
    fast = simulate(scenario, engine="fast", **kw)
    reference = simulate(scenario, engine="reference", **kw)
    assert (fast.engine, reference.engine) == ("fast", "reference")
    return fast, reference


def assert_identical(fast: RunResult, reference: RunResult) -> None:
    assert fast.attempts.dtype == reference.attempts.dtype
    assert len(fast.attempts) == len(reference.attempts)
    for name in fast.attempts.dtype.names or ():
        ours, theirs = fast.attempts[name], reference.attempts[name]
        assert ours.tobytes() == theirs.tobytes(), f"attempts[{name!r}] differ"
    for name in fast.calls.dtype.names or ():
        ours, theirs = fast.calls[name], reference.calls[name]
        assert ours.tobytes() == theirs.tobytes(), f"calls[{name!r}] differ"
    assert [tier.name for tier in fast.tiers] == [tier.name for tier in reference.tiers]
    for ours_tier, theirs_tier in zip(fast.tiers, reference.tiers, strict=True):
        for records in ("attempts", "calls", "parents"):
            mine, other = getattr(ours_tier, records), getattr(theirs_tier, records)
            assert mine.tobytes() == other.tobytes(), f"tier {ours_tier.name}: {records} differ"
    assert fast.guard_events == reference.guard_events
    assert fast.connections == reference.connections
    assert (fast.end_time, fast.events, fast.stopped) == (
        reference.end_time,
        reference.events,
        reference.stopped,
    )


def bundled(name: str, profile: str) -> Scenario:
    scenario = retrysim.load_scenario(name)
    return scenario.with_overrides({"policy.profile": profile})


# -- every bundled scenario under every profile -------------------------------------------------


CASES = [
    pytest.param(name, profile, marks=[pytest.mark.slow] if name in LARGE else [])
    for name in BUNDLED
    for profile in PROFILES
]


@pytest.mark.parametrize(("name", "profile"), CASES)
def test_every_bundled_scenario_under_every_profile(name: str, profile: str) -> None:
    fast, reference = both(bundled(name, profile))
    assert len(fast.attempts) > 0
    assert_identical(fast, reference)


@pytest.mark.parametrize("respect", [True, False])
def test_retry_after_hints_either_way(respect: bool) -> None:
    scenario = retrysim.load_scenario("api-rate-limit").with_overrides(
        {"policy.respect_retry_after": respect}
    )
    assert_identical(*both(scenario))


#: Connected scenarios whose every leg a random rtt draws: a bundled one, and a read-then-write
#: through library errors of three families (a connection error, a busy server, an answer).
NETWORKED: dict[str, Any] = {
    "real-redis-blip": None,
    "read then write, library errors": {
        "seed": 4,
        "duration": 20,
        "policy": {"operation": "storage", "max_attempts": 4, "min_wait": 0.05},
        "clients": {"count": 40, "think_time": 0.2, "timeout": 0.5, "pool_size": 2,
                    "processes": 8, "arrival": {"kind": "closed", "ramp": 1}},
        "service": {"kind": "occ", "protocol": "read_then_write", "latency": 0.002},
        "network": {"rtt": {"dist": "lognormal", "median": 0.002, "p99": 0.03},
                    "accept_backlog": 4},
        "faults": [
            {"kind": "outage", "start": 5, "end": 7, "error": "redis.exceptions.ConnectionError"},
            {"kind": "flaky", "start": 8, "end": 12, "probability": 0.3,
             "error": "redis.exceptions.BusyLoadingError"},
            {"kind": "reset", "start": 12, "end": 15, "probability": 0.2,
             "error": "httpx.ReadError"},
        ],
    },
}  # fmt: skip


@pytest.mark.parametrize("draws", ["per_leg", "per_attempt"])
@pytest.mark.parametrize("name", sorted(NETWORKED))
def test_network_draws_either_way(name: str, draws: str) -> None:
    data = NETWORKED[name]
    scenario = retrysim.load_scenario(name) if data is None else parse_scenario(data)
    fast, reference = both(scenario.with_overrides({"network.draws": draws}))
    assert fast.connections is not None and fast.connections["connect_failures"] > 0
    assert_identical(fast, reference)


@pytest.mark.parametrize("mechanism", sorted(MECHANISMS))
@pytest.mark.parametrize("scope", ["client", "fleet"])
def test_every_resilience_mechanism(mechanism: str, scope: str) -> None:
    fast, reference = both(scenario_with(RESILIENCE_BASE, mechanism, scope))
    without = simulate(parse_scenario(RESILIENCE_BASE), engine="fast")
    # the mechanism acted (the records differ from the same run without it), so the comparison
    # covers what it did
    assert fast.attempts.tobytes() != without.attempts.tobytes()
    assert_identical(fast, reference)


@pytest.mark.parametrize("name", ["redis-blip", "retry-storm"])
@pytest.mark.slow
def test_bundled_scenarios_with_every_mechanism_on(name: str) -> None:
    scenario = retrysim.load_scenario(name)
    for table, knobs in MECHANISMS["everything"].items():
        scenario = scenario.with_overrides({f"policy.{table}.{k}": v for k, v in knobs.items()})
    assert_identical(*both(scenario))


def test_a_delay_limit_and_a_budget_compose_as_tenacity_composes_them() -> None:
    scenario = bundled("redis-blip", "decorrelated").with_overrides(
        {"policy.max_delay": 3.0, "policy.budget.max_total_time": 5.0, "policy.max_attempts": 9}
    )
    policy = policy_for(scenario)
    assert isinstance(policy.stop, tenacity.stop.stop_any)  # attempts | delay | budget
    assert_identical(*both(scenario))


def test_a_predicate_registered_as_transient_decides_on_both_paths_alike() -> None:
    """The fast path learns the retry verdict once per error code and run, instead of making
    an error object for every failed attempt: a predicate given to ``register_transient``
    must still decide, the same on both paths, and be asked afresh by the next run."""
    scenario = parse_scenario(
        {
            "name": "conflicts",
            "seed": 3,
            "duration": 10,
            "policy": {"operation": "worker", "max_attempts": 4, "min_wait": 0.1},
            "clients": {"count": 40, "calls_per_client": 2, "arrival": {"kind": "burst", "at": 0}},
            "service": {"kind": "ideal", "latency": {"dist": "constant", "value": 0.01}},
            "faults": [{"kind": "outage", "start": 0, "end": 1, "error": "ServerError"}],
        }
    )
    not_retried = simulate(scenario, engine="fast")
    assert int(not_retried.attempts["attempt"].max()) == 1  # a 500 is not transient

    def server_errors_are_transient(error: BaseException) -> bool:
        return isinstance(error, ServerError)

    retrysim.retry.register_transient(server_errors_are_transient)
    try:
        fast, reference = both(scenario)
    finally:
        retrysim.retry.unregister_transient(server_errors_are_transient)
    assert int(fast.attempts["attempt"].max()) > 1  # the predicate was asked, and said yes
    assert_identical(fast, reference)
    again = simulate(scenario, engine="fast")  # a fresh run learns afresh
    assert again.attempts.tobytes() == not_retried.attempts.tobytes()


#: The per-error scenario of tests/test_fidelity.py three ways: its Retry-After honoured by the
#: 429s (a strategy called as it is), every strategy a mirror (no hint, none honoured: the
#: verdicts learnt by code), and behind a breaker (each call's own strategies).
PER_ERROR_VARIANTS: dict[str, dict[str, Any]] = {
    "hint honoured": {},
    "mirrors only": {
        "policy.rate_limited.respect_retry_after": False,
        "faults.0.retry_after": None,
    },
    "with a breaker": {
        "policy.breaker.enabled": True,
        "policy.breaker.failure_threshold": 6,
        "policy.breaker.recovery_timeout": 1.0,
    },
}


@pytest.mark.parametrize("variant", sorted(PER_ERROR_VARIANTS))
@pytest.mark.parametrize("profile", PROFILES)
def test_per_error_policies_are_identical_on_both_paths(variant: str, profile: str) -> None:
    overrides: dict[str, Any] = {"policy.profile": profile, **PER_ERROR_VARIANTS[variant]}
    if profile == "bindu":  # it retries socket errors alone, as shipped
        overrides["policy.retry_on"] = ["RateLimited", "ConnectionRefusedError", "TimeoutError"]
    scenario = parse_scenario(PER_ERROR).with_overrides(overrides)
    fast, reference = both(scenario)
    assert simulate(scenario).engine == "fast"  # auto takes it: the per-error strategies mirror
    # the families' own limits acted: more than the policy's 3 attempts, and fewer
    assert int(fast.calls["attempts"].max()) > 3
    refused = fast.error_names.index("ConnectionRefusedError")
    assert 2 in fast.calls["attempts"][fast.calls["error"] == refused].tolist()
    assert_identical(fast, reference)


def test_a_hundred_thousand_clients() -> None:
    """The issue's bar: both paths identical at 100,000 clients (a burst through an outage)."""
    scenario = retrysim.load_scenario("thundering-herd").with_overrides(
        {"clients.count": 100_000, "clients.calls_per_client": 1, "duration": 40}
    )
    fast, reference = both(scenario)
    assert len(fast.calls) == 100_000
    assert_identical(fast, reference)


test_a_hundred_thousand_clients = pytest.mark.slow(test_a_hundred_thousand_clients)


# -- generated scenarios ------------------------------------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(generated_scenarios(), st.sampled_from(["none", *sorted(MECHANISMS)]))
def test_generated_scenarios_are_identical_on_both_paths(
    data: dict[str, Any], mechanism: str
) -> None:
    data = copy.deepcopy(data)
    if mechanism != "none":
        for table, knobs in MECHANISMS[mechanism].items():
            data["policy"][table] = dict(knobs)
    assert_identical(*both(parse_scenario(data)))


# -- which path runs ----------------------------------------------------------------------------


def test_auto_takes_the_fast_path_for_every_built_in_profile() -> None:
    for profile in PROFILES:
        result = simulate(bundled("redis-blip", profile))
        assert result.engine == "fast", profile


def test_your_own_policy_runs_on_the_reference_path_and_fast_is_refused() -> None:
    scenario = bundled("redis-blip", "documented")
    mine = tenacity.Retrying(stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_fixed(0.5))
    result = simulate(scenario, retrying=mine)
    assert result.engine == "reference"
    assert result.engine_note == (
        "a policy of your own, given with --policy, always runs on the reference path"
    )
    with pytest.raises(EngineChoiceError, match="--engine fast: a policy of your own"):
        simulate(scenario, retrying=mine, engine="fast")
    with pytest.raises(EngineChoiceError, match="allowed: auto, native, fast, reference"):
        simulate(scenario, engine="quick")


def test_a_strategy_the_fast_path_does_not_mirror_is_named() -> None:
    class wait_mine(tenacity.wait.wait_base):  # noqa: N801
        def __call__(self, retry_state: Any) -> float:
            return 1.0

    stop = tenacity.stop_after_attempt(3) | tenacity.stop_after_delay(5)
    assert unmirrored((stop, wait_mine() + tenacity.wait_fixed(1), tenacity.retry_always)) == [
        "_retry_always",
        "wait_mine",
    ]
    policy = policy_for(retrysim.load_scenario("redis-blip"))
    assert fast_refusal(policy) is None


def test_the_cli_names_the_engine_and_refuses_fast_for_your_policy(tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from retrysim.cli.app import app

    runner = CliRunner()
    shown = runner.invoke(app, ["run", "redis-blip", "--quiet"])
    assert shown.exit_code == 0, shown.output
    assert "engine: fast" in shown.output
    forced = runner.invoke(app, ["run", "redis-blip", "--quiet", "--engine", "reference"])
    assert "engine: reference (asked for with --engine reference)" in forced.output
    (tmp_path / "mypolicy.py").write_text(
        "import tenacity\nPOLICY = tenacity.Retrying(stop=tenacity.stop_after_attempt(2))\n"
    )
    import os

    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        refused = runner.invoke(
            app, ["run", "redis-blip", "--policy", "mypolicy:POLICY", "--engine", "fast"]
        )
    finally:
        os.chdir(here)
    assert refused.exit_code == 2
    assert "--engine fast: a policy of your own, given with --policy" in refused.output
    assert "Traceback" not in refused.output


# -- the mirrors, one by one, against tenacity ----------------------------------------------------


def _mirror_cases() -> list[Any]:
    exp = tenacity.wait_exponential
    return [
        exp(multiplier=0.5, max=8),
        exp(multiplier=0.5, max=8, min=1),
        exp(multiplier=0.0, max=8),
        exp(multiplier=3, max=float("inf")),
        exp(multiplier=1, max=60, exp_base=3),
        tenacity.wait_random_exponential(multiplier=0.25, max=10, min=0.1),
        tenacity.wait_exponential_jitter(multiplier=0.5, max=8, jitter=1, min=0.3),
        tenacity.wait_exponential_jitter(multiplier=1, max=float("inf"), jitter=0),
        tenacity.wait_random(0.5, 2.5),
        tenacity.wait_fixed(0.75),
        tenacity.wait_none(),
        tenacity.wait_fixed(1) + tenacity.wait_random(0, 1) + tenacity.wait_exponential(),
    ]


def _states_at(key: int, attempt: int) -> tuple[FastCallState, tenacity.RetryCallState]:
    """(the fast path's call state, tenacity's) of call ``key`` at ``attempt``, started at 0."""
    ours = FastCallState(key=key, call=attempt, start_time=0.0)
    ours.attempt_number = attempt
    theirs = tenacity.RetryCallState(tenacity.Retrying(), None, (), {})
    theirs.attempt_number = attempt
    return ours, theirs


def _tenacity_draw(wait: Any, state: tenacity.RetryCallState, key: int) -> Any:
    """What tenacity's ``wait`` draws for ``state``, its jitter routed to the stream of call
    ``key``'s attempt, as the engine routes it (what a mirror must draw, bit for bit)."""
    from retrysim.sim.clock import current_stream, routed_jitter

    token = current_stream.set(Stream(key, state.attempt_number))
    try:
        with routed_jitter():
            return wait(state)
    finally:
        current_stream.reset(token)


def assert_mirror_draws_as_tenacity(wait: Any, attempts: Iterable[int], seed: int) -> None:
    """``wait``'s mirror draws exactly what tenacity's ``wait`` draws at each attempt number,
    from the same stream: the same type and, for a float, the same bits (signed zeros too);
    an int is tenacity's integer arithmetic, exact (an int multiplier with no cap)."""
    mirror = compiled_module.compiled(wait)
    assert mirror is not wait  # it really is a mirror
    for attempt in attempts:
        ours, theirs = _states_at(seed, attempt)
        expected = _tenacity_draw(wait, theirs, seed)
        got = mirror(ours)
        assert type(got) is type(expected), (attempt, got, expected)
        if isinstance(got, float):
            assert np.float64(got).tobytes() == np.float64(expected).tobytes(), attempt
        else:
            assert got == expected, attempt


@pytest.mark.parametrize("wait", _mirror_cases(), ids=lambda w: type(w).__name__)
def test_each_wait_mirror_draws_what_tenacity_draws(wait: Any) -> None:
    assert_mirror_draws_as_tenacity(wait, [*range(1, 40), 1023, 1024, 1025, 5000], seed=99)


def _stop_cases() -> list[Any]:
    return [
        tenacity.stop_after_attempt(3),
        tenacity.stop_after_delay(2.5),
        tenacity.stop_before_delay(2.5),
        tenacity.stop_after_attempt(4) | tenacity.stop_after_delay(1.5),
        tenacity.stop_after_attempt(4)
        | tenacity.stop_after_delay(9)
        | tenacity.stop_before_delay(3),
        tenacity.stop_all(tenacity.stop_after_attempt(2), tenacity.stop_after_delay(1)),
    ]


@pytest.mark.parametrize("stop", _stop_cases(), ids=lambda s: type(s).__name__)
def test_each_stop_mirror_decides_as_tenacity_decides(stop: Any) -> None:
    mirror = compiled_module.compiled(stop)
    for attempt in range(1, 7):
        for elapsed in (0.0, 0.5, 1.0, 1.5, 2.4999999, 2.5, 3.0, 9.0):
            for sleep in (0.0, 0.4, 1.0):
                ours, theirs = stop_states(attempt, elapsed, sleep)
                assert bool(mirror(ours)) == stop(theirs), (attempt, elapsed, sleep)


@pytest.mark.parametrize(
    "retry",
    [
        tenacity.retry_if_exception_type((ConnectionError, TimeoutError)),
        tenacity.retry_if_not_exception_type(ConflictError),
        tenacity.retry_unless_exception_type(ConflictError),
        tenacity.retry_if_exception_type(OSError)
        & tenacity.retry_if_not_exception_type(ConnectionResetError),
        tenacity.retry_if_exception_type(ConflictError) | tenacity.retry_if_exception_type(OSError),
    ],
    ids=lambda r: type(r).__name__,
)
def test_each_retry_mirror_decides_as_tenacity_decides(retry: Any) -> None:
    mirror = compiled_module.compiled(retry)
    for error in (ConnectionError(), ConnectionResetError(), TimeoutError(), ConflictError("x")):
        ours = FastCallState(key=1, call=1, start_time=0.0)
        ours.failure = error
        theirs = tenacity.RetryCallState(tenacity.Retrying(), None, (), {})
        theirs.set_exception((type(error), error, None))
        assert bool(mirror(ours)) == retry(theirs), error


def _per_error_strategies() -> tuple[Any, Any]:
    policy = build_policy(
        "api",
        RetrySettings.defaults(),
        max_attempts=3,
        min_wait=0.1,
        profile="documented",
        rate_limited={"max_attempts": 8, "max_wait": 30.0},
        server_error={"max_attempts": 5},
        connection_error={"max_attempts": 2, "max_wait": 0.5},
    )
    return policy.stop, policy.wait


def test_the_per_error_mirrors_decide_and_draw_as_the_strategies_do() -> None:
    """For every record code (every error the simulator raises, and the answers past them,
    which are of no family): the stop mirror's verdict and the wait mirror's draw are the
    strategy's own on a tenacity call state holding that code's error (or its result)."""
    stop, wait = _per_error_strategies()
    stop_mirror, wait_mirror = compiled_module.compiled(stop), compiled_module.compiled(wait)
    assert stop_mirror is not stop and wait_mirror is not wait
    for code in range(compiled_module.CODE_ROWS):
        outcome = make_error(code) if 0 < code < len(CODE_NAMES) else None
        for attempt in range(1, 10):
            ours, theirs = _states_at(5, attempt)
            ours.error_code = code
            if outcome is None:
                theirs.set_result(code)
            else:
                theirs.set_exception((type(outcome), outcome, None))
            assert bool(stop_mirror(ours)) == stop(theirs), (code, attempt)
            expected = _tenacity_draw(wait, theirs, 5)
            got = wait_mirror(ours)
            assert np.float64(got).tobytes() == np.float64(expected).tobytes(), (code, attempt)


# -- the drift check ----------------------------------------------------------------------------

#: sha256 of the source of every tenacity method the fast path mirrors or relies on, taken from
#: tenacity 9.2.1. A mismatch means tenacity changed it: re-read the method, update the mirror
#: in retrysim/sim/compiled.py (or the decision order in retrysim/sim/decide.py) to match, run
#: this file, then record the new hash here.
MIRRORED_SOURCES: dict[str, str] = {
    "stop.stop_after_attempt.__call__": "de1bb15e8e880ef1",
    "stop.stop_after_delay.__call__": "8ea8b0d435df1808",
    "stop.stop_before_delay.__call__": "1f81be8ed5e6a779",
    "stop.stop_any.__call__": "e04094cfaec51c32",
    "stop.stop_all.__call__": "e5e1470def7a520b",
    "wait.wait_fixed.__call__": "24abf9c68a9063d1",
    "wait.wait_random.__call__": "c93940550073151a",
    "wait.wait_exponential.__call__": "e9e2c214aa67ded0",
    "wait.wait_random_exponential.__call__": "7d154843a8fe0b89",
    "wait.wait_exponential_jitter.__call__": "39bd64bde7ad27f5",
    "wait.wait_combine.__call__": "b29bbd230775c1a6",
    "retry.retry_if_exception.__call__": "a347d30e9ae6ebf7",
    "retry.retry_if_exception_type.__init__": "9087a674a87d7637",
    "retry.retry_if_not_exception_type.__init__": "9087a674a87d7637",
    "retry.retry_unless_exception_type.__init__": "9087a674a87d7637",
    "retry.retry_unless_exception_type.__call__": "33377872821bcbac",
    "retry.retry_all.__call__": "5c03f51e9f47c7d4",
    "retry.retry_any.__call__": "40665b079a10cec7",
    "RetryCallState.seconds_since_start": "cb59875e73cb34e7",
    "RetryCallState.prepare_for_next_attempt": "07e96a4057d390a2",
    "BaseRetrying._begin_iter": "931e8d65d0d4f93b",
    "BaseRetrying._post_retry_check_actions": "c87e862d9671ae8b",
    "BaseRetrying._post_stop_check_actions": "cf1359f5456b0c84",
    "BaseRetrying._run_retry": "ff004d2f038e0238",
    "BaseRetrying._run_wait": "b096d13b9970ad1f",
    "BaseRetrying._run_stop": "2182709d20019918",
}


def _source_hash(dotted: str) -> str:
    first, *rest = dotted.split(".")
    # "wait.wait_fixed.__call__" is in the module tenacity.wait; "BaseRetrying._run_wait" at
    # tenacity's top level (``tenacity.retry`` itself is the decorator, not the module).
    target: Any = importlib.import_module(f"tenacity.{first}") if first.islower() else tenacity
    for part in rest if first.islower() else (first, *rest):
        target = getattr(target, part)
    if isinstance(target, property):
        target = target.fget
    source = textwrap.dedent(inspect.getsource(target))
    return hashlib.sha256(source.encode()).hexdigest()[:16]


@pytest.mark.parametrize("dotted", sorted(MIRRORED_SOURCES))
def test_tenacity_has_not_changed_what_the_fast_path_mirrors(dotted: str) -> None:
    assert _source_hash(dotted) == MIRRORED_SOURCES[dotted], (
        f"tenacity's {dotted} changed since the fast path mirrored it (tenacity 9.2.1): "
        "see MIRRORED_SOURCES"
    )


def test_every_mirror_is_a_strategy_the_fast_path_accepts() -> None:
    assert set(compiled_module.MIRRORS) <= MIRRORED


def test_a_calls_own_strategies_are_not_kept_after_it_ends() -> None:
    """Guards that shape retries give each call strategies of its own (a budget's stop); the
    run keeps compiled only the policy's shared ones, however many calls there were."""
    from retrysim.sim.engine import Engine

    scenario = scenario_with(RESILIENCE_BASE, "tokens", "fleet")
    engine = Engine(scenario, engine="fast")
    shared = len(engine.decider._memo.known)  # type: ignore[union-attr]
    result = engine.run()
    assert len(result.calls) > 10
    assert len(engine.decider._memo.known) == shared > 0  # type: ignore[union-attr]


def stop_states(attempt: int, elapsed: float, sleep: float) -> tuple[Any, Any]:
    """(the fast path's call state, tenacity's) after ``elapsed`` seconds of a call at
    ``attempt``, ``sleep`` seconds of wait to come."""
    ours = FastCallState(key=1, call=1, start_time=10.0)
    ours.attempt_number, ours.upcoming_sleep = attempt, sleep
    ours.outcome_timestamp = 10.0 + elapsed
    theirs = tenacity.RetryCallState(tenacity.Retrying(), None, (), {})
    theirs.attempt_number, theirs.upcoming_sleep = attempt, sleep
    theirs.start_time, theirs.outcome_timestamp = 10.0, 10.0 + elapsed
    return ours, theirs
