"""Tests written to kill mutants of ``retrysim/sim/fidelity.py`` that survived its own tests.

The mutation run of ``retrysim/sim/`` (docs/mutation.md) left these edits of fidelity mode
alive: each test below pins behaviour the module's tests did not hold, from its run-level
checks and its wall time to tiers (the runner of each tier, the user's tenacity policy for a
tier's calls, calls below that outlive their callers) and what the runner's ``main()``
leaves behind for the real fleets that build on it. Every test asserts what a caller sees (a
run's records, an error, the clock when the run ends), never the text of a mutated line.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_fixed

from retrysim.model.scenario import Scenario, parse_scenario
from retrysim.model.tier_keys import UnknownTierError
from retrysim.retry.guards import GuardSpec
from retrysim.retry.settings import get_settings, use_settings
from retrysim.sim import records as rec
from retrysim.sim.aio import run_virtual
from retrysim.sim.clock import routed_jitter
from retrysim.sim.engine import simulate
from retrysim.sim.failures import CODES
from retrysim.sim.fidelity import _Runner, run_with_decorators
from retrysim.sim.result import RunResult
from tests.test_fidelity import assert_same
from tests.test_fidelity_tiers import assert_tiers_agree


@pytest.fixture(autouse=True)
def _quiet_retry_logs() -> Iterator[None]:
    """Retries log a warning each; the records are what is checked."""
    import logging

    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


def _tiers(db_faults: list[dict[str, Any]], **top: Any) -> Scenario:
    """A few clients -> gateway (2 callers, 3 attempts) -> db: small enough to run in a blink."""
    clients = {"count": 4, "timeout": 1.0, "arrival": {"kind": "uniform", "start": 0, "end": 1}}
    return parse_scenario(
        {
            "seed": 2,
            "duration": 5,
            "policy": {"max_attempts": 2, "min_wait": 0.01, "max_wait": 0.05},
            "clients": clients | top,
            "tiers": {
                "gateway": {
                    "callers": 2,
                    "policy": {"max_attempts": 3, "min_wait": 0.01, "max_wait": 0.05},
                    "service": {"kind": "ideal", "latency": 0.01},
                },
                "db": {"service": {"kind": "ideal", "latency": 0.05}, "faults": db_faults},
            },
        }
    )


#: The db refuses every request for the whole run.
DB_DOWN = [{"kind": "outage", "start": 0, "end": 100, "error": "ConnectionRefusedError"}]


def _tier_calls(run: RunResult, level: int) -> np.ndarray:
    return run.tiers[level].calls


def test_wall_time_is_the_time_the_run_took() -> None:
    """A fidelity run's ``wall_time`` is the real seconds it took: positive, and no more
    than the time measured around the call."""
    scenario = parse_scenario({"clients": {"count": 3}, "service": {"kind": "ideal"}})
    started = time.perf_counter()
    result = run_with_decorators(scenario)
    took = time.perf_counter() - started
    assert 0.0 < result.wall_time <= took


def test_retry_on_narrower_than_the_profiles_set_is_what_the_decorator_retries() -> None:
    """``policy.retry_on`` reaches the real decorator: with only ServerError retried, a reset
    connection (which the profile would retry) ends the call after one attempt, as the engine
    has it."""
    scenario = parse_scenario(
        {
            "policy": {"max_attempts": 4, "retry_on": ["ServerError"]},
            "clients": {"count": 5},
            "service": {"kind": "ideal", "latency": 0.1},
            "faults": [{"kind": "reset", "probability": 1.0}],
        }
    )
    engine = simulate(scenario)
    decorated = run_with_decorators(scenario)
    assert_same(engine, decorated)
    assert decorated.calls["attempts"].tolist() == [1] * 5
    assert set(decorated.calls["error"].tolist()) == {CODES["ConnectionResetError"]}


class _RefuseRetries:
    """A guard that lets a call's first attempt through and refuses every later one."""

    def before_attempt(self, now: float, attempt: int) -> BaseException | None:
        return ConnectionRefusedError("refused by the guard") if attempt > 1 else None

    def after_outcome(self, now: float, error: BaseException | None) -> None:
        pass


def test_guards_given_to_the_run_reach_the_decorator() -> None:
    """``guards`` go to the decorator: a guard refusing every retry shows as refused attempts
    (no work done, ended as they start) after each failed first attempt, as in the engine."""
    scenario = parse_scenario(
        {
            "policy": {"max_attempts": 3, "min_wait": 0.1, "max_wait": 0.1},
            "clients": {"count": 4},
            "service": {"kind": "ideal", "latency": 0.05},
            "faults": [{"kind": "outage", "start": 0, "end": 10, "error": "ConnectionResetError"}],
        }
    )
    guards = [GuardSpec("refuse", "call", _RefuseRetries)]
    engine = simulate(scenario, guards=guards)
    decorated = run_with_decorators(scenario, guards=guards)
    assert_same(engine, decorated)
    attempts = decorated.attempts
    refused = attempts[attempts["attempt"] > 1]
    assert len(refused) == 8  # 4 calls, attempts 2 and 3 each
    assert set(refused["error"].tolist()) == {CODES["ConnectionRefusedError"]}
    assert np.all(refused["end"] == refused["start"])
    assert np.all(refused["executed"] == 0)


@pytest.mark.parametrize(
    ("name", "message"), [("nowhere", "nowhere"), ("db", "tier 'db' is the last")]
)
def test_retryings_for_a_tier_that_calls_no_one_are_refused(name: str, message: str) -> None:
    """A ``retryings`` key must name a tier that calls another: an unknown tier, or the last,
    is one line of error, not a policy silently ignored."""
    policy = AsyncRetrying(stop=stop_after_attempt(2))
    with pytest.raises(UnknownTierError, match=message):
        run_with_decorators(_tiers(DB_DOWN), retryings={name: policy})


def test_two_tiers_agree_with_the_engine_at_each_tier() -> None:
    """A two-tier run builds a runner per tier: both tiers' records, each call's attempts and
    the request above it served, are the engine's; the gateway retries the refusing db with
    its own policy (3 attempts) under the top's."""
    scenario = _tiers(DB_DOWN)
    engine = simulate(scenario)
    decorated = run_with_decorators(scenario)
    assert_tiers_agree(scenario, engine, decorated)
    gateway, db = _tier_calls(decorated, 0), _tier_calls(decorated, 1)
    assert gateway["attempts"].tolist() == [2] * 4
    assert db["attempts"].tolist() == [3] * 8  # each gateway attempt's call below
    assert set(db["outcome"].tolist()) == {rec.GAVE_UP}


def test_a_tiers_own_tenacity_policy_runs_its_calls_below() -> None:
    """``retryings={"gateway": ...}``: the gateway's calls to the db run under that policy
    (5 attempts), not the gateway tier's own (3); the top's calls keep the top's policy."""
    policy = AsyncRetrying(
        stop=stop_after_attempt(5),
        wait=wait_fixed(0.01),
        retry=retry_if_exception_type(ConnectionError),
    )
    scenario = _tiers(DB_DOWN)
    engine = simulate(scenario, retryings={"gateway": policy})
    decorated = run_with_decorators(scenario, retryings={"gateway": policy})
    assert_tiers_agree(scenario, engine, decorated)
    assert _tier_calls(decorated, 0)["attempts"].tolist() == [2] * 4
    assert _tier_calls(decorated, 1)["attempts"].tolist() == [5] * 8


def test_calls_below_run_on_after_every_caller_gave_up() -> None:
    """The top's calls all time out long before the db answers; the gateway's work and its
    calls to the db run on to their end (wasted work), as in the engine, and are recorded
    as succeeded, after their callers had given up."""
    scenario = _tiers([], timeout=0.1, arrival={"kind": "burst"}).with_overrides(
        {"policy.max_attempts": 1, "tiers.db.service.latency": 0.5}
    )
    engine = simulate(scenario)
    decorated = run_with_decorators(scenario)
    assert_tiers_agree(scenario, engine, decorated)
    top, db = _tier_calls(decorated, 0), _tier_calls(decorated, 1)
    assert set(top["outcome"].tolist()) == {rec.GAVE_UP}
    assert set(db["outcome"].tolist()) == {rec.SUCCEEDED}
    assert db["end"].min() > top["end"].max()


def _run_main(runner: _Runner) -> tuple[float, set[asyncio.Task[Any]]]:
    """``runner.main()`` as fidelity mode runs it; when it returned (the loop's clock) and
    which other tasks were still running then."""

    async def main() -> tuple[float, set[asyncio.Task[Any]]]:
        await runner.main()
        others = asyncio.all_tasks() - {asyncio.current_task()}
        return asyncio.get_running_loop().time(), {t for t in others if not t.done()}

    previous = get_settings()
    use_settings(runner.settings)
    try:
        with routed_jitter():
            return run_virtual(main())
    finally:
        use_settings(previous)


def test_main_returns_when_the_last_call_ends_if_no_server_works() -> None:
    """With every request refused at the door, no server ever works: ``main()`` returns as
    the last call ends, not later (a real fleet runs it on a real-time loop: any wait is
    wall time)."""
    scenario = parse_scenario(
        {
            "policy": {"max_attempts": 1},
            "clients": {"count": 5, "arrival": {"kind": "uniform", "start": 0, "end": 0.5}},
            "service": {"kind": "ideal", "latency": 0.1},
            "faults": [DB_DOWN[0]],
        }
    )
    runner = _Runner(scenario, scenario.seed, None, ())
    ended, _ = _run_main(runner)
    result = runner.result(0.0)
    assert set(result.calls["outcome"].tolist()) == {rec.GAVE_UP}
    assert 0.0 < ended == result.end_time == result.calls["end"].max() < 0.5


def test_main_leaves_no_task_running_when_the_time_limit_cuts_the_work_below() -> None:
    """``limits.max_time`` ends the run while the calls below still wait on a slow db: by
    the time ``main()`` returns, every task it started (the callers and the servers working
    for them) has been stopped and has finished, and the work cut is left unfinished."""
    scenario = _tiers([], timeout=0.1).with_overrides(
        {"policy.max_attempts": 1, "tiers.db.service.latency": 5.0, "limits.max_time": 1.0}
    )
    runner = _Runner(scenario, scenario.seed, None, ())
    ended, running = _run_main(runner)
    assert running == set()
    assert ended == 1.0
    result = runner.result(0.0)
    assert set(result.calls["outcome"].tolist()) == {rec.GAVE_UP}
    assert set(result.tiers[1].calls["outcome"].tolist()) == {rec.UNFINISHED}


class _OwnErrorRunner(_Runner):
    """A runner whose requests fail with the client library's own error, as a real fleet's
    do (``retrysim.chaos``): not the fake server's."""

    async def request(
        self, key: int, n: int, attempt: dict[str, Any], record: dict[str, Any]
    ) -> int | None:
        await asyncio.sleep(0.2)
        raise ConnectionResetError("the peer hung up")


def test_a_requests_own_error_fails_its_attempt_under_the_errors_code() -> None:
    """An error the request raised itself fails the attempt (no timeout: the base runner
    knows no client library's timeouts), recorded under its own code, and is retried by the
    policy as any other."""
    scenario = parse_scenario(
        {
            "policy": {"max_attempts": 3, "min_wait": 0.1, "max_wait": 0.1},
            "clients": {"count": 2},
            "service": {"kind": "ideal"},
        }
    )
    runner = _OwnErrorRunner(scenario, scenario.seed, None, ())
    _run_main(runner)
    result = runner.result(0.0)
    assert result.attempts["outcome"].tolist() == [rec.FAILED] * 6
    assert set(result.attempts["error"].tolist()) == {CODES["ConnectionResetError"]}
    assert result.calls["attempts"].tolist() == [3, 3]
    assert set(result.calls["outcome"].tolist()) == {rec.GAVE_UP}
