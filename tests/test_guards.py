"""Attempt guards: one protocol, called by the decorators, the engine and fidelity mode alike.

The guard used here is a small test breaker (refuse for a while after k failures in a row),
not a product feature: it shows that the same guard object gives the same records whether the
engine steps tenacity or the real decorator runs on a virtual-time loop.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrysim.model.scenario import Scenario, parse_scenario
from retrysim.retry import (
    GuardChain,
    GuardSpec,
    GuardStates,
    reset_retry_metrics,
    retry_metrics,
    retry_worker_operation,
)
from retrysim.retry.guards import Scope
from retrysim.sim import records as rec
from retrysim.sim.engine import simulate
from retrysim.sim.failures import CODES
from retrysim.sim.fidelity import run_with_decorators
from tests.test_fidelity import assert_same


class TripAfter:
    """Refuses with ConnectionRefusedError for ``cool`` seconds after ``k`` failures in a row."""

    def __init__(self, k: int = 2, cool: float = 1.5) -> None:
        self.k, self.cool = k, cool
        self.failures = 0
        self.until = -math.inf
        self.seen: list[tuple[float, str | None]] = []

    def before_attempt(self, now: float, attempt: int) -> BaseException | None:
        if now < self.until:
            return ConnectionRefusedError("tripped (test guard)")
        return None

    def after_outcome(self, now: float, error: BaseException | None) -> None:
        self.seen.append((now, None if error is None else type(error).__name__))
        if error is None:
            self.failures = 0
            return
        self.failures += 1
        if self.failures >= self.k:
            self.until, self.failures = now + self.cool, 0


class Log:
    """Allows everything; remembers what it was asked and told."""

    def __init__(self, name: str, log: list[str], refuse: bool = False) -> None:
        self.name, self.log, self.refuse = name, log, refuse

    def before_attempt(self, now: float, attempt: int) -> BaseException | None:
        self.log.append(f"{self.name}.before")
        return ConnectionRefusedError(self.name) if self.refuse else None

    def after_outcome(self, now: float, error: BaseException | None) -> None:
        self.log.append(f"{self.name}.after:{type(error).__name__ if error else 'ok'}")


# --- the chain and the declared state --------------------------------------------------------


def test_first_refusal_wins_and_earlier_guards_hear_of_it() -> None:
    log: list[str] = []
    chain = GuardChain([Log("a", log), Log("b", log, refuse=True), Log("c", log)])
    refusal = chain.before_attempt(0.0, 1)
    assert isinstance(refusal, ConnectionRefusedError) and str(refusal) == "b"
    assert log == ["a.before", "b.before", "a.after:ConnectionRefusedError"]


def test_an_allowed_attempt_reaches_every_guard_in_order() -> None:
    log: list[str] = []
    chain = GuardChain([Log("a", log), Log("b", log)])
    assert chain.before_attempt(0.0, 1) is None
    chain.after_outcome(1.0, TimeoutError())
    assert log == ["a.before", "b.before", "a.after:TimeoutError", "b.after:TimeoutError"]


def test_state_is_shared_exactly_as_declared() -> None:
    states = GuardStates()
    per_call = GuardSpec("x", "call", TripAfter)
    per_client = GuardSpec("dep", "client", TripAfter)
    fleet = GuardSpec("budget", "fleet", TripAfter)
    assert states.instance(per_call, 1) is not states.instance(per_call, 1)
    assert states.instance(per_client, 1) is states.instance(per_client, 1)
    assert states.instance(per_client, 1) is not states.instance(per_client, 2)
    assert states.instance(fleet, 1) is states.instance(fleet, 2)
    # the same name under another scope is another state
    assert states.instance(GuardSpec("dep", "fleet", TripAfter), 1) is not states.instance(
        per_client, 1
    )


def test_an_unknown_scope_is_refused() -> None:
    with pytest.raises(ValueError, match="scope"):
        GuardSpec("x", "galaxy", TripAfter)  # type: ignore[arg-type]  # an unknown scope on purpose


# --- the production decorators -------------------------------------------------------------


def _flaky(fail: int) -> tuple[list[int], Callable[[], str]]:
    calls: list[int] = []

    def op() -> str:
        calls.append(1)
        if len(calls) <= fail:
            raise ConnectionError("down")
        return "ok"

    return calls, op


def test_decorators_ask_guards_with_the_given_clock_and_count_only_what_ran() -> None:
    reset_retry_metrics()
    clock = iter(float(t) for t in range(100))
    states = GuardStates()
    guard = TripAfter(k=2, cool=3.0)
    spec = GuardSpec("dep", "client", lambda: guard)
    calls, op = _flaky(fail=10)
    decorated = retry_worker_operation(
        max_attempts=4,
        min_wait=0.0,
        max_wait=0.0,
        guards=[spec],
        guard_states=states,
        sleep=lambda s: None,
        clock=lambda: next(clock),
    )(op)
    with pytest.raises(ConnectionRefusedError):
        decorated()
    # attempts 1 and 2 run and fail; the guard trips at t=3 (the 4th clock reading) and
    # refuses attempts 3 and 4, which never reach the function.
    assert len(calls) == 2
    assert guard.seen == [(1.0, "ConnectionError"), (3.0, "ConnectionError")]
    counters = next(iter(retry_metrics().values()))
    assert counters.attempts == 2 and counters.failures_by_type["ConnectionError"] == 2


def test_async_decorators_run_the_same_guards() -> None:
    states = GuardStates()
    log: list[str] = []
    spec = GuardSpec("dep", "client", lambda: Log("g", log))
    calls: list[int] = []

    @retry_worker_operation(
        max_attempts=3, min_wait=0.0, max_wait=0.0, guards=[spec], guard_states=states
    )
    async def op() -> str:
        calls.append(1)
        if len(calls) < 2:
            raise TimeoutError("slow")
        return "ok"

    assert asyncio.run(op()) == "ok"
    assert log == ["g.before", "g.after:TimeoutError", "g.before", "g.after:ok"]


# --- the engine and fidelity mode ----------------------------------------------------------


def _outage_scenario(profile: str = "exponential", count: int = 30) -> Scenario:
    return parse_scenario(
        {
            "seed": 3,
            "policy": {"profile": profile, "max_attempts": 6, "min_wait": 0.5, "max_wait": 4},
            "clients": {
                "count": count,
                "arrival": {"kind": "uniform", "start": 0, "end": 4},
                "timeout": 1.0,
            },
            "service": {"kind": "ideal", "latency": {"dist": "exponential", "mean": 0.05}},
            "faults": [
                {"kind": "outage", "start": 0.5, "end": 6, "error": "ConnectionResetError"},
                {"kind": "flaky", "start": 6, "end": 12, "probability": 0.3},
            ],
        }
    )


@pytest.mark.parametrize("scope", ["call", "client", "fleet"])
def test_engine_and_decorators_agree_with_a_guard(scope: Scope) -> None:
    scenario = _outage_scenario()
    guards = [GuardSpec("dep", scope, lambda: TripAfter(k=2, cool=1.5))]
    engine = simulate(scenario, guards=guards)
    assert_same(engine, run_with_decorators(scenario, guards=guards))
    refused = engine.attempts["error"] == CODES["ConnectionRefusedError"]
    assert refused.sum() > 0, "the guard never refused: the test would prove nothing"
    assert np.all(engine.attempts["executed"][refused] == 0)
    assert np.all(engine.attempts["end"][refused] == engine.attempts["start"][refused])


def test_fleet_state_refuses_more_than_per_client_state() -> None:
    """One fleet-wide breaker trips on everybody's failures; per-client ones on their own."""
    scenario = _outage_scenario(count=40)

    def refusals(scope: Scope) -> int:
        spec = GuardSpec("dep", scope, lambda: TripAfter(k=2, cool=1.5))
        result = simulate(scenario, guards=[spec])
        return int(np.sum(result.attempts["error"] == CODES["ConnectionRefusedError"]))

    assert refusals("fleet") > refusals("client")


class AllowAll:
    def before_attempt(self, now: float, attempt: int) -> BaseException | None:
        return None

    def after_outcome(self, now: float, error: BaseException | None) -> None:
        pass


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32), profile=st.sampled_from(["documented", "decorrelated"]))
def test_a_guard_that_allows_everything_changes_nothing(seed: int, profile: str) -> None:
    scenario = _outage_scenario(profile, count=15)
    plain = simulate(scenario, seed=seed)
    guarded = simulate(scenario, seed=seed, guards=[GuardSpec("g", "fleet", AllowAll)])
    assert plain.attempts.tobytes() == guarded.attempts.tobytes()
    assert plain.calls.tobytes() == guarded.calls.tobytes()
    assert np.all(plain.calls["outcome"] != rec.UNFINISHED)


def test_a_refusal_the_records_cannot_hold_is_reported_as_a_guard_bug() -> None:
    class OddError(Exception):
        pass

    class RefuseOdd(AllowAll):
        def before_attempt(self, now: float, attempt: int) -> BaseException | None:
            return OddError("no")

    with pytest.raises(TypeError, match="OddError cannot be recorded"):
        simulate(_outage_scenario(count=2), guards=[GuardSpec("g", "fleet", RefuseOdd)])
