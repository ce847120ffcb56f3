"""Tests written to kill mutants of ``retrysim/sim/`` modules that survived their own tests.

A sampled run of ``scripts/mutate.py`` (docs/mutation.md) left these edits alive: each test
below pins the behaviour one of them would break silently, grouped by module. Every test
asserts what a caller of the module sees (a run's records, a function's answer), never the
text of the line the mutant changed.
"""

from __future__ import annotations

import asyncio
import gc
import math
import resource
import threading
from typing import Any

import numpy as np
import pytest
from tenacity import RetryCallState, Retrying, stop_after_attempt
from tenacity.wait import wait_random

from retrysim.model.scenario import Poisson, RateStep, parse_scenario
from retrysim.model.service import Ideal
from retrysim.retry import CircuitOpenError
from retrysim.retry.settings import RetrySettings
from retrysim.sim import limits
from retrysim.sim import records as rec
from retrysim.sim.aio import VirtualTimeEventLoop, answer_after, run_virtual
from retrysim.sim.arrivals import expected_calls, rate_segments
from retrysim.sim.catalogue import BY_NAME
from retrysim.sim.clock import current_stream, rebind, routed_jitter
from retrysim.sim.engine import simulate
from retrysim.sim.failures import (
    ANSWER_BASE,
    CIRCUIT_OPEN,
    CODE_NAMES,
    CODES,
    ERROR_CLASSES,
    Answers,
    code_of,
    make_error,
)
from retrysim.sim.invariants import violations
from retrysim.sim.kernel import REPORT_EVERY, Kernel, quiet_collector
from retrysim.sim.latency import mean_of, sampler
from retrysim.sim.policy import client_timeout, policy_for
from retrysim.sim.result import RunResult, TierRun
from retrysim.sim.streams import Stream
from retrysim.sim.wait_samples import sample_waits

# -- latency ------------------------------------------------------------------------------------


def _latency(data: dict[str, Any]) -> Any:
    """A latency distribution as a scenario file writes it."""
    service = parse_scenario({"service": {"kind": "ideal", "latency": data}}).service
    assert isinstance(service, Ideal)
    return service.latency


def _grid_mean(dist: Any, n: int = 200_000) -> float:
    """The mean of what ``sampler(dist)`` draws, by the midpoint rule over u in (0, 1)."""
    draw = sampler(dist)
    return math.fsum(draw((i + 0.5) / n) for i in range(n)) / n


@pytest.mark.parametrize(
    "latency",
    [
        {"dist": "uniform", "low": 0.5, "high": 2.5},
        {"dist": "lognormal", "median": 0.1, "p99": 0.2},
        {"dist": "lognormal", "median": 2.0, "p99": 30.0},
    ],
)
def test_mean_of_uniform_and_lognormal_is_the_mean_of_their_draws(latency: dict[str, Any]) -> None:
    """``mean_of`` (what capacity estimates divide by) is the mean the sampler really draws:
    (low + high) / 2 for the uniform, median * exp(sigma^2 / 2) for the lognormal."""
    dist = _latency(latency)
    expected = mean_of(dist)
    assert isinstance(expected, float)
    assert _grid_mean(dist) == pytest.approx(expected, rel=2e-3)


@pytest.mark.parametrize(
    "latency",
    [
        {"dist": "normal", "mean": 1.0, "std": 0.5},
        {"dist": "lognormal", "median": 0.1, "p99": 0.5},
    ],
)
def test_a_draw_of_one_gives_the_latency_of_the_largest_draw_below_it(
    latency: dict[str, Any],
) -> None:
    """The sampler keeps u inside (0, 1) at the top too: u = 1 (outside [0, 1), which a
    caller may still pass) is treated as the largest double below 1, a finite latency,
    rather than the inverse CDF's infinity (an error)."""
    draw = sampler(_latency(latency))
    top = draw(1.0)
    assert math.isfinite(top)
    assert top == draw(1 - 2**-53)
    assert top > draw(0.999)


# -- arrivals -----------------------------------------------------------------------------------


def test_later_schedule_steps_win_the_pieces_they_overlap() -> None:
    """Overlapping steps: each piece takes the rate of the last step covering it, and a piece
    painted by a later step is never repainted by an earlier one (nor does painting stall)."""
    arrival = Poisson(
        kind="poisson",
        rate=1.0,
        schedule=[
            RateStep(start=0, end=10, rate=2.0),
            RateStep(start=5, end=15, rate=3.0),
            RateStep(start=8, end=12, rate=4.0),
            RateStep(start=2, end=20, rate=5.0),
            RateStep(start=3, end=4, rate=6.0),
        ],
    )
    assert rate_segments(arrival, 30.0) == [
        (0.0, 2.0, 2.0),
        (2.0, 3.0, 5.0),
        (3.0, 4.0, 6.0),
        (4.0, 5.0, 5.0),
        (5.0, 8.0, 5.0),
        (8.0, 10.0, 5.0),
        (10.0, 12.0, 5.0),
        (12.0, 15.0, 5.0),
        (15.0, 20.0, 5.0),
        (20.0, 30.0, 1.0),
    ]


def test_later_schedule_steps_win_when_painted_pieces_sit_between_unpainted_ones() -> None:
    """A step over pieces a later step already painted skips them (following the skip
    pointers through several painted pieces) and paints only the gaps."""
    arrival = Poisson(
        kind="poisson",
        rate=1.0,
        schedule=[
            RateStep(start=0, end=10, rate=9.0),
            RateStep(start=1, end=2, rate=7.0),
            RateStep(start=2, end=3, rate=7.5),
            RateStep(start=5, end=6, rate=8.0),
        ],
    )
    rates = [rate for _, _, rate in rate_segments(arrival, 10.0)]
    assert rates == [9.0, 7.0, 7.5, 9.0, 8.0, 9.0]


def test_a_closed_loop_expects_each_clients_first_call_even_in_a_short_run() -> None:
    """Each client's first call starts within the duration whatever its length: the estimate
    is count x (duration / per-call time + 1), never below one call per client."""
    scenario = parse_scenario(
        {
            "duration": 1,
            "clients": {"count": 3, "think_time": 10, "arrival": {"kind": "closed"}},
            "service": {"kind": "ideal", "latency": 0},
        }
    )
    assert expected_calls(scenario) == pytest.approx(3 * (1 / 10 + 1))
    assert expected_calls(scenario) >= scenario.clients.count


# -- attempt / call: see the report (killed by existing files or equivalent) -------------------

# -- catalogue ----------------------------------------------------------------------------------


def test_a_library_errors_module_and_qualname_are_its_stand_ins() -> None:
    """Each catalogue entry names the module and qualified name the stand-in class carries (the
    real class's), and the scenario's name ends with that qualified name."""
    for name, entry in BY_NAME.items():
        cls = type(make_error(CODES[name]))
        assert (entry.module, entry.qualname) == (cls.__module__, cls.__qualname__)
        assert name.endswith("." + entry.qualname)
        assert entry.module.split(".")[0] == entry.library


# -- clock --------------------------------------------------------------------------------------


def test_tenacitys_wait_random_draws_from_the_current_calls_stream() -> None:
    """Inside ``routed_jitter`` tenacity's ``wait_random`` (which calls ``random.random()``)
    draws from the stream of the call being decided: the same wait as that stream gives."""
    wait = wait_random(0, 2)
    state = RetryCallState(retry_object=Retrying(), fn=None, args=(), kwargs={})
    with routed_jitter():
        token = current_stream.set(Stream(12345, 6))
        try:
            first, second = wait(state), wait(state)
        finally:
            current_stream.reset(token)
    twin = Stream(12345, 6)
    assert (first, second) == (2 * twin.random(), 2 * twin.random())


def test_rebind_sets_each_binding_and_its_undo_puts_them_back() -> None:
    """``rebind`` applies every binding at once; the function it returns restores them."""

    class Target:
        clock = "real"
        jitter = "real"

    undo = rebind([(Target, "clock", "virtual"), (Target, "jitter", "seeded")])
    assert (Target.clock, Target.jitter) == ("virtual", "seeded")
    undo()
    assert (Target.clock, Target.jitter) == ("real", "real")


# -- failures -----------------------------------------------------------------------------------


def test_code_of_records_each_registry_error_under_its_own_name() -> None:
    """Every error class of the registry (a guard's refusal included) is recorded under its
    own code, and that code names it back."""
    for name, cls in ERROR_CLASSES.items():
        code = code_of(make_error(CODES[name]))
        assert CODE_NAMES[code] == name
        assert type(make_error(code)) is cls
    assert code_of(CircuitOpenError("refused")) == CIRCUIT_OPEN
    assert CODE_NAMES[CIRCUIT_OPEN] == "CircuitOpen"


def test_answers_have_codes_of_their_own_after_the_errors_then_result_none() -> None:
    """A scenario's answers take the codes after the error names, in order, and a served
    answer the policy rejected (``result:None``) the next one: codes and names agree."""
    answers = Answers((503, "busy"))
    assert answers.code(503) == ANSWER_BASE
    assert answers.code("busy") == ANSWER_BASE + 1
    assert answers.none_code == ANSWER_BASE + 2
    for value in (503, "busy"):
        code = answers.code(value)
        assert answers.names[code] == f"result:{value}"
        assert answers.value(code) == value
    assert answers.names[answers.none_code] == "result:None"
    assert answers.value(answers.none_code) is None
    assert len(answers.names) == answers.none_code + 1


# -- invariants ---------------------------------------------------------------------------------


def _one_attempt_run(start: float, end: float, pool_wait: float) -> RunResult:
    calls = rec.empty_calls(1)
    calls["attempts"] = 1
    calls["outcome"] = rec.SUCCEEDED
    calls["start"], calls["end"] = start, end
    attempts = rec.empty_attempts(1)
    attempts["attempt"] = 1
    attempts["start"], attempts["end"] = start, end
    attempts["wait"] = np.nan
    attempts["outcome"] = rec.OK
    attempts["pool_wait"] = pool_wait
    return RunResult(
        scenario=parse_scenario({}),
        seed=0,
        policy={"max_attempts": 3},
        attempts=attempts,
        calls=calls,
        end_time=end,
        events=0,
        wall_time=0.0,
        capacity=None,
    )


def test_a_pool_wait_a_rounding_step_past_a_short_attempt_is_no_violation() -> None:
    """The pool wait is a difference of times, so it may round past the attempt's length: up to
    1 ns (or 1e-9 of a long attempt) is tolerated, even for an attempt of 1 ms; more is not."""
    assert violations(_one_attempt_run(0.0, 0.001, 0.001 + 5e-10)) == []
    assert violations(_one_attempt_run(0.0, 0.001, 0.0011)) == [
        "an attempt waited for a connection longer than it lasted"
    ]


# -- kernel -------------------------------------------------------------------------------------


def test_progress_is_reported_once_every_report_every_events() -> None:
    """``progress()`` runs after every REPORT_EVERY-th event and at no other."""
    kernel = Kernel()
    reports: list[int] = []
    events = 2 * REPORT_EVERY + 5
    for i in range(events):
        kernel.at(float(i), lambda _: None, None)
    ran, stopped = kernel.run(math.inf, 10**9, progress=lambda: reports.append(len(reports)))
    assert (ran, stopped) == (events, None)
    assert len(reports) == 2


@pytest.mark.parametrize("cycles", [False, True])
def test_the_quiet_collector_gives_the_collector_back_as_it_was(cycles: bool) -> None:
    """After the block the garbage collector is on again (and its thresholds as before) when
    it was on; the run's own setting never leaks into the caller's process."""
    before, was_enabled = gc.get_threshold(), gc.isenabled()
    gc.enable()
    try:
        with quiet_collector(cycles):
            pass
        assert gc.isenabled()
        assert gc.get_threshold() == before
        gc.disable()
        with quiet_collector(cycles):
            pass
        assert not gc.isenabled()
    finally:
        if was_enabled:
            gc.enable()


# -- limits -------------------------------------------------------------------------------------


def test_a_scenario_needing_exactly_80_percent_of_memory_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The memory guard refuses only above 80% of what is available: at exactly 80% it lets
    the scenario run."""
    scenario = parse_scenario({"clients": {"count": 1000}})
    need = expected_calls(scenario) * (limits.BYTES_PER_CALL + 3 * limits.BYTES_PER_ATTEMPT)
    available = need / 0.8
    while 0.8 * available > need:
        available = math.nextafter(available, 0)
    while 0.8 * available < need:
        available = math.nextafter(available, math.inf)
    assert 0.8 * available == need
    monkeypatch.setattr(limits, "available_memory", lambda: available)
    limits.check_memory(scenario, 3)  # does not raise
    monkeypatch.setattr(limits, "available_memory", lambda: math.nextafter(available, 0))
    with pytest.raises(limits.ScenarioTooLargeError):
        limits.check_memory(scenario, 3)


def test_a_closed_loop_too_fast_to_estimate_still_has_the_attempts_floor() -> None:
    """A closed loop whose calls take (next to) no time has no finite estimate of calls: its
    attempts budget is the floor, a number the engine can count against."""
    scenario = parse_scenario(
        {
            "clients": {"count": 2, "think_time": 5e-324, "arrival": {"kind": "closed"}},
            "service": {"kind": "ideal", "latency": 0},
        }
    )
    assert math.isinf(expected_calls(scenario))
    assert limits.attempt_limit(scenario) == limits.ATTEMPTS_FLOOR


def test_without_the_processs_size_the_whole_address_space_limit_is_left(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where the process's size cannot be read (no /proc), the room left under ``ulimit -v`` is
    the whole soft limit, not a byte less."""
    soft = 3 * (1 << 30) + 7
    monkeypatch.setattr(resource, "getrlimit", lambda _: (soft, soft))

    def no_proc(*_: object, **__: object) -> Any:
        raise OSError("no /proc here")

    monkeypatch.setattr(limits, "open", no_proc, raising=False)
    assert limits._address_space_left() == float(soft)


# -- result -------------------------------------------------------------------------------------


def test_a_tier_built_without_its_flags_claims_neither() -> None:
    """A ``TierRun`` made by hand (a test, a reader of saved records) that says nothing of
    deadlines or host avoidance neither propagates deadlines nor avoids tried hosts."""
    tier = TierRun(
        name="db",
        attempts=rec.empty_attempts(0),
        calls=rec.empty_calls(0),
        parents=np.empty(0, dtype=np.int64),
        capacity=None,
        replicas=1,
        timeout=None,
        policy={"max_attempts": 3},
        engine="fast",
    )
    assert tier.propagates_deadline is False
    assert tier.retry_other_host is False


# -- sim_policy (retrysim/sim/policy.py) --------------------------------------------------------


def test_a_policy_already_made_is_used_as_it_is() -> None:
    """``policy_for(retrying=...)`` given a policy already made (and named) returns that very
    policy, not a new wrapping of it."""
    scenario = parse_scenario({})
    made = policy_for(scenario, retrying=Retrying(stop=stop_after_attempt(2)))
    assert policy_for(scenario, retrying=made) is made


def test_retry_on_limits_the_errors_a_scenarios_policy_retries() -> None:
    """With ``policy.retry_on`` naming only TimeoutError, calls failing with ConnectionError
    are not retried; without it they are, up to max_attempts."""
    outage = [{"kind": "outage", "start": 0, "end": 100}]
    only_timeouts = parse_scenario(
        {"policy": {"operation": "api", "retry_on": ["TimeoutError"]}, "faults": outage}
    )
    default = parse_scenario({"policy": {"operation": "api"}, "faults": outage})
    assert set(simulate(only_timeouts).calls["attempts"].tolist()) == {1}
    assert set(simulate(default).calls["attempts"].tolist()) == {4}


def test_the_scenarios_timeout_wins_over_the_settings_and_the_settings_apply_without_it() -> None:
    """``client_timeout``: the scenario's timeout when it has one, else the policy's resolved
    ``attempt_timeout`` setting."""
    settings = RetrySettings(api_attempt_timeout=4.0)
    own = parse_scenario({"policy": {"operation": "api"}, "clients": {"timeout": 2.5}})
    none = parse_scenario({"policy": {"operation": "api"}})
    assert client_timeout(own, policy_for(own, settings)) == 2.5
    assert client_timeout(none, policy_for(none, settings)) == 4.0


# -- wait_samples -------------------------------------------------------------------------------


def test_sample_waits_keeps_at_most_max_retries_columns() -> None:
    """``max_retries`` caps the columns (one per retry), and 0 leaves none."""
    retries = policy_for(parse_scenario({"policy": {"operation": "api"}})).max_attempts - 1
    assert retries > 2
    assert sample_waits("api", samples=5).shape == (5, retries)
    capped = sample_waits("api", samples=5, max_retries=2)
    assert capped.shape == (5, 2)
    assert np.array_equal(capped, sample_waits("api", samples=5)[:, :2])
    assert sample_waits("api", samples=5, max_retries=0).shape == (5, 0)


# -- aio ----------------------------------------------------------------------------------------


def test_advance_moves_the_virtual_clock_forward_only() -> None:
    """``advance(s)`` adds s to the loop's time; a negative step does nothing."""
    loop = VirtualTimeEventLoop(start=10.0)
    try:
        loop.advance(2.5)
        assert loop.time() == 12.5
        loop.advance(-1.0)
        assert loop.time() == 12.5
    finally:
        loop.close()


def test_shutting_the_default_executor_down_joins_its_threads() -> None:
    """``shutdown_default_executor`` on the virtual loop does asyncio's work: once awaited, the
    worker thread has ended and the loop refuses new executor work."""

    async def main() -> threading.Thread:
        loop = asyncio.get_running_loop()
        worker = await loop.run_in_executor(None, threading.current_thread)
        await loop.shutdown_default_executor()
        assert not worker.is_alive()
        with pytest.raises(RuntimeError):
            loop.run_in_executor(None, threading.current_thread)
        return worker

    assert not run_virtual(main()).is_alive()


def test_answer_after_ends_at_its_delay() -> None:
    """``answer_after(d)`` returns at exactly d of virtual time."""

    async def main() -> float:
        await answer_after(0.75)
        return asyncio.get_running_loop().time()

    assert run_virtual(main()) == 0.75


def test_an_answer_due_with_its_timeout_wins_the_tie() -> None:
    """An answer due at the instant a timeout set before it expires is taken (the engine's
    order: the answer, then the timeout), with the timeout entered first."""

    async def main() -> float:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(1.0):
            await answer_after(1.0)
        return loop.time()

    assert run_virtual(main()) == 1.0


# -- fidelity -----------------------------------------------------------------------------------


def test_fidelity_mode_records_the_attempts_a_breaker_refused_as_the_engine_does() -> None:
    """Under the real decorators an attempt the circuit breaker refuses never reaches the
    decorated function; it is still recorded (CircuitOpen), at the same rows as the engine's."""
    from retrysim.sim.fidelity import run_with_decorators

    scenario = parse_scenario(
        {
            "seed": 3,
            "duration": 10,
            "policy": {
                "operation": "worker",
                "max_attempts": 4,
                "min_wait": 0.5,
                "max_wait": 0.5,
                "breaker": {"enabled": True, "failure_threshold": 2, "recovery_timeout": 30},
            },
            "clients": {"count": 3, "calls_per_client": 2, "think_time": 0.25},
            "service": {"kind": "ideal", "latency": 0.125},
            "faults": [{"kind": "outage", "start": 0, "end": 100}],
        }
    )
    engine = simulate(scenario)
    decorated = run_with_decorators(scenario)
    refused = engine.attempts["error"] == CIRCUIT_OPEN
    assert np.any(refused)
    for column in ("call", "attempt", "start", "error"):
        assert np.array_equal(engine.attempts[column], decorated.attempts[column]), column
