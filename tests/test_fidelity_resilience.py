"""The engine against the real decorators, call by call, with every resilience mechanism on.

Each mechanism (breaker in both modes, every budget kind, ``max_total_time``, adaptive backoff,
the send-rate limiter), per client and fleet-wide, runs the same seeded scenario twice: through
the engine and through ``retrysim.retry``'s own decorator on a virtual-time loop. Attempts, waits,
outcomes and times must agree call by call, and the guards' events (sorted by time, then
fields) must be the same.

Fleet-wide state makes the order of events due at the same instant matter (a burst of calls
all failing at once against one breaker). The rule, in both runs: events due at the same
instant run in the order they were scheduled (the engine's kernel and the virtual loop's
timers both keep it).
"""

from __future__ import annotations

import asyncio
import copy
from collections import Counter
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retrysim.model.scenario import Scenario, parse_scenario
from retrysim.retry.guards import GuardEvent
from retrysim.sim import records as rec
from retrysim.sim.aio import run_virtual
from retrysim.sim.engine import RunResult, simulate
from retrysim.sim.failures import CIRCUIT_OPEN
from retrysim.sim.fidelity import run_with_decorators
from tests.test_fidelity import assert_same, per_call

UNIFORM: dict[str, Any] = {
    "seed": 4,
    "duration": 40,
    "policy": {"operation": "worker", "max_attempts": 5, "min_wait": 0.2, "max_wait": 3},
    "clients": {
        "count": 60,
        "calls_per_client": 3,
        "think_time": 0.5,
        "timeout": 1.0,
        "arrival": {"kind": "uniform", "start": 0, "end": 5},
    },
    "service": {"kind": "ideal", "latency": {"dist": "lognormal", "median": 0.1, "p99": 1.5}},
    "faults": [
        {"kind": "outage", "start": 2, "end": 8, "error": "ConnectionResetError"},
        {"kind": "flaky", "start": 0, "end": 20, "probability": 0.1, "error": "RateLimited"},
    ],
}
# Every client starts at the same instant and fails at once, with waits without jitter: ties
# everywhere, which fleet-wide state must see in the same order in both runs.
BURST: dict[str, Any] = {
    **UNIFORM,
    "policy": {**UNIFORM["policy"], "profile": "exponential"},
    "clients": {
        **UNIFORM["clients"],
        "calls_per_client": 4,
        "think_time": 1.5,
        "arrival": {"kind": "burst", "at": 1.0},
    },
    "faults": [
        {"kind": "outage", "start": 0.5, "end": 3, "error": "ConnectionResetError"},
        {"kind": "outage", "start": 3, "end": 4, "mode": "blackhole"},
        {"kind": "flaky", "start": 0, "end": 20, "probability": 0.1, "error": "RateLimited"},
    ],
}
BASES = {"uniform": UNIFORM, "burst": BURST}

MECHANISMS: dict[str, dict[str, Any]] = {
    "breaker": {
        "breaker": {
            "enabled": True,
            "failure_threshold": 3,
            "recovery_timeout": 2.0,
            "half_open_probes": 2,
        }
    },
    "breaker-rate": {
        "breaker": {
            "enabled": True,
            "failure_threshold": 0,
            "failure_rate": 0.5,
            "minimum_calls": 3,
            "window_seconds": 3.0,
            "recovery_timeout": 1.0,
        }
    },
    "breaker-retries": {
        "breaker": {
            "enabled": True,
            "mode": "retries",
            "failure_threshold": 3,
            "recovery_timeout": 2.0,
            "half_open_probes": 2,
        }
    },
    "tokens": {"budget": {"enabled": True, "max_tokens": 3, "token_ratio": 0.5}},
    "ratio": {
        "budget": {
            "enabled": True,
            "kind": "ratio",
            "percent": 0.3,
            "min_retries_per_second": 0.2,
            "window": 3,
        }
    },
    "ratio-allowance": {
        "budget": {
            "enabled": True,
            "kind": "ratio",
            "percent": 0.1,
            "min_retries_per_second": 0.0,
            "window": 3,
            "initial_allowance": 4,
        }
    },
    "quota": {"budget": {"enabled": True, "kind": "quota", "quota_capacity": 12}},
    "max_total_time": {"budget": {"max_total_time": 2.5}},
    "adaptive": {"adaptive": {"enabled": True, "window": 5, "max_factor": 3}},
    "limiter": {"adaptive": {"limiter": True}},
    "everything": {
        "breaker": {"enabled": True, "failure_threshold": 4, "recovery_timeout": 1.0},
        "budget": {"enabled": True, "max_total_time": 6},
        "adaptive": {"enabled": True, "limiter": True},
    },
}


def scenario_with(base: dict[str, Any], mechanism: str, scope: str) -> Scenario:
    data = copy.deepcopy(base)
    for table, knobs in MECHANISMS[mechanism].items():
        shared = table != "budget" or "enabled" in knobs
        data["policy"][table] = {**knobs, **({"scope": scope} if shared else {})}
    return parse_scenario(data)


def _key(event: GuardEvent) -> tuple[Any, ...]:
    return (event.time, event.kind, event.name, repr(event.client), repr(event.value))


def assert_same_guard_events(engine: RunResult, decorated: RunResult) -> None:
    a, b = sorted(engine.guard_events, key=_key), sorted(decorated.guard_events, key=_key)
    assert len(a) == len(b), f"{len(a)} events != {len(b)}"
    differ = [(x, y) for x, y in zip(a, b, strict=True) if x != y]
    assert not differ, f"{len(differ)} events differ, e.g. {differ[0]}"


def kinds(result: RunResult) -> Counter[str]:
    """How many events of each kind (breaker events by state)."""
    return Counter(
        f"breaker:{e.value}" if e.kind == "breaker" else e.kind for e in result.guard_events
    )


def assert_exercised(mechanism: str, engine: RunResult, base: dict[str, Any]) -> None:
    """The mechanism did something in this run, or the agreement would prove little."""
    seen = kinds(engine)
    refused = int(np.sum(engine.attempts["error"] == CIRCUIT_OPEN))
    if mechanism.startswith("breaker"):
        assert seen["breaker:open"] and seen["breaker:half_open"] and refused, seen
    if mechanism == "breaker-retries":  # it gated retries only
        firsts = engine.attempts["attempt"] == 1
        assert not np.any(firsts & (engine.attempts["error"] == CIRCUIT_OPEN))
    if mechanism in ("tokens", "ratio", "ratio-allowance", "quota"):
        assert seen["budget_refused"] > 5, seen
    if mechanism == "limiter":
        assert seen["limiter_delay"] and seen["limiter_rate"], seen
    if mechanism == "everything":  # at least three of breaker, budget and limiter acted
        assert len({kind.split(":")[0] for kind in seen}) >= 3, seen
    if mechanism == "max_total_time":
        calls = engine.calls
        short = (calls["outcome"] == rec.GAVE_UP) & (calls["attempts"] < 5)
        assert np.sum(short) > 5
    if mechanism == "adaptive":  # the waits are the profile's, stretched: not the plain ones
        plain = simulate(parse_scenario(base))
        assert not np.array_equal(plain.attempts["wait"], engine.attempts["wait"], equal_nan=True)


@pytest.mark.parametrize("base", list(BASES))
@pytest.mark.parametrize("scope", ["client", "fleet"])
@pytest.mark.parametrize("mechanism", list(MECHANISMS))
def test_engine_and_decorators_agree_with_each_mechanism(
    mechanism: str, scope: str, base: str
) -> None:
    scenario = scenario_with(BASES[base], mechanism, scope)
    engine = simulate(scenario)
    decorated = run_with_decorators(scenario)
    assert_same(engine, decorated)
    assert_same_guard_events(engine, decorated)
    assert_exercised(mechanism, engine, BASES[base])


def test_a_fleet_breaker_cycles_through_every_state_in_both_runs() -> None:
    """A burst meets one breaker: it opens on the first failures, refuses the rest of the
    burst at the same instant, lets exactly two probes through when calls return together
    after the recovery timeout, and closes on their success."""
    scenario = scenario_with(BURST, "breaker", "fleet")
    engine = simulate(scenario)
    seen = kinds(engine)
    assert seen["breaker:open"] >= 1 and seen["breaker:half_open"] >= 1
    assert seen["breaker:closed"] >= 1
    assert all(e.client is None for e in engine.guard_events)  # one fleet-wide state
    assert_same_guard_events(engine, run_with_decorators(scenario))


@pytest.mark.parametrize("mechanism", list(MECHANISMS))
def test_the_same_seed_gives_the_same_records_and_events(mechanism: str) -> None:
    scenario = scenario_with(UNIFORM, mechanism, "fleet")
    first, second = simulate(scenario), simulate(scenario)
    assert first.attempts.tobytes() == second.attempts.tobytes()
    assert first.calls.tobytes() == second.calls.tobytes()
    assert first.guard_events == second.guard_events
    other = simulate(scenario, seed=scenario.seed + 1)
    assert other.attempts.tobytes() != first.attempts.tobytes()  # the seed matters


def test_fidelity_mode_is_deterministic_too() -> None:
    scenario = scenario_with(UNIFORM, "everything", "fleet")
    first, second = run_with_decorators(scenario), run_with_decorators(scenario)
    assert per_call(first) == per_call(second)
    assert first.guard_events == second.guard_events


def test_the_virtual_loop_runs_timers_due_together_in_scheduling_order() -> None:
    """A heap does not keep the insertion order of equal keys; the virtual loop must."""
    order: list[int] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for i in range(64):
            loop.call_at(5.0 if i % 3 else 2.0, order.append, i)
        loop.call_later(1.0, order.append, -1)
        await asyncio.sleep(6.0)

    run_virtual(main())
    assert order == [-1, *range(0, 64, 3), *(i for i in range(64) if i % 3)]


# --- generated scenarios with random mechanism knobs ----------------------------------------


@st.composite
def _mechanism_tables(draw: st.DrawFn) -> dict[str, Any]:
    scope = draw(st.sampled_from(["client", "fleet"]))
    tables: dict[str, Any] = {}
    if draw(st.booleans()):
        threshold = draw(st.integers(0, 5))
        tables["breaker"] = {
            "enabled": True,
            "mode": draw(st.sampled_from(["calls", "retries"])),
            "failure_threshold": threshold,
            "failure_rate": draw(st.sampled_from([0.25, 0.5, 0.75])) if not threshold else 0.0,
            "minimum_calls": draw(st.integers(1, 6)),
            "window": 6,
            "window_seconds": draw(st.sampled_from([0.0, 1.5])),
            "recovery_timeout": draw(st.sampled_from([0.0, 0.5, 1.0, 2.0])),
            "half_open_probes": draw(st.integers(1, 3)),
            "scope": scope,
        }
    budget: dict[str, Any] = {}
    if draw(st.booleans()):
        budget["max_total_time"] = draw(st.sampled_from([0.5, 1.5, 4.0]))
    kind = draw(st.sampled_from([None, "tokens", "ratio", "quota"]))
    if kind == "tokens":
        budget |= {
            "enabled": True,
            "max_tokens": draw(st.integers(1, 6)),
            "token_ratio": draw(st.sampled_from([0.1, 0.5, 1.0])),
            "scope": scope,
        }
    elif kind == "ratio":
        budget |= {
            "enabled": True,
            "kind": "ratio",
            "percent": draw(st.sampled_from([0.0, 0.1, 0.5])),
            "min_retries_per_second": draw(st.sampled_from([0.0, 0.5, 2.0])),
            "window": draw(st.sampled_from([1.0, 3.0])),
            "initial_allowance": draw(st.sampled_from([0, 2])),
            "scope": scope,
        }
    elif kind == "quota":
        budget |= {
            "enabled": True,
            "kind": "quota",
            "quota_capacity": draw(st.sampled_from([10, 25, 500])),
            "retry_cost": draw(st.sampled_from([1, 5])),
            "timeout_retry_cost": draw(st.sampled_from([5, 10])),
            "success_refund": draw(st.sampled_from([0, 1, 3])),
            "scope": scope,
        }
    if budget:
        tables["budget"] = budget
    adaptive = {"enabled": draw(st.booleans()), "limiter": draw(st.booleans())}
    if any(adaptive.values()):
        tables["adaptive"] = {
            **adaptive,
            "window": draw(st.sampled_from([1.0, 5.0])),
            "max_factor": draw(st.sampled_from([1.0, 2.0, 4.0])),
            "limiter_min_rate": draw(st.sampled_from([0.5, 2.0])),
            "scope": scope,
        }
    return tables


@st.composite
def _scenarios(draw: st.DrawFn) -> dict[str, Any]:
    arrival = draw(
        st.sampled_from(
            [
                {"kind": "burst", "at": 0.5},
                {"kind": "uniform", "start": 0, "end": 3},
                {"kind": "closed", "ramp": 1},
            ]
        )
    )
    start = draw(st.sampled_from([0.0, 0.5, 1.0]))
    faults: list[dict[str, Any]] = [
        {"kind": "outage", "start": start, "end": start + draw(st.sampled_from([0.5, 2.0, 4.0]))},
        {
            "kind": "flaky",
            "probability": draw(st.sampled_from([0.1, 0.3])),
            "error": draw(st.sampled_from(["RateLimited", "ConnectionError"])),
        },
    ]
    if draw(st.booleans()):
        faults.append({"kind": "outage", "start": 5, "end": 6, "mode": "blackhole"})
    latency = draw(
        st.sampled_from(
            [
                {"dist": "exponential", "mean": 0.1},
                {"dist": "uniform", "low": 0.05, "high": 0.3},
                0.1,  # a constant: answers due together
            ]
        )
    )
    max_delay = draw(st.sampled_from([None, 0.2, 1.0]))
    return {
        "seed": draw(st.integers(0, 2**32)),
        "duration": 10,
        "policy": {
            **({} if max_delay is None else {"max_delay": max_delay}),
            "operation": draw(st.sampled_from(["worker", "api"])),
            "profile": draw(st.sampled_from(["documented", "exponential", "full_jitter"])),
            "max_attempts": draw(st.integers(2, 5)),
            "min_wait": draw(st.sampled_from([0.0, 0.1, 0.3])),
            "max_wait": 2.0,
            **draw(_mechanism_tables()),
        },
        "clients": {
            "count": draw(st.integers(1, 12)),
            "arrival": arrival,
            "calls_per_client": draw(st.integers(1, 3)),
            "think_time": draw(st.sampled_from([0.0, 0.3])),
            "timeout": 0.5,
        },
        "service": {"kind": "ideal", "latency": latency},
        "faults": faults,
    }


@pytest.mark.slow  # about 12 s
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_scenarios())
def test_generated_scenarios_with_random_knobs_agree(data: dict[str, Any]) -> None:
    scenario = parse_scenario(data)
    engine = simulate(scenario)
    decorated = run_with_decorators(scenario)
    assert_same(engine, decorated)
    assert_same_guard_events(engine, decorated)
    policy = data["policy"]
    limits = [policy.get("max_delay"), policy.get("budget", {}).get("max_total_time")]
    if policy.get("adaptive", {}).get("limiter") and any(limits):
        at, _ = _holds(engine)  # no send the limiter held goes past the call's time limit
        assert at.max(initial=0.0) <= min(x for x in limits if x) + 1e-9


# --- the limiter's hold counts against the call's time limit ---------------------------------

#: Calls throttled often and a limiter falling to half a send a second: its line would hold
#: sends for minutes.
PACED: dict[str, Any] = {
    **UNIFORM,
    "faults": [
        {"kind": "flaky", "start": 0, "end": 20, "probability": 0.3, "error": "RateLimited"}
    ],
}
LIMITS = {"max_delay": {"max_delay": 2.0}, "max_total_time": {"budget": {"max_total_time": 2.0}}}


def _paced(scope: str, limit: dict[str, Any]) -> RunResult:
    data = copy.deepcopy(PACED)
    data["policy"].update(limit)
    data["policy"]["adaptive"] = {"limiter": True, "limiter_min_rate": 0.5, "scope": scope}
    return simulate(parse_scenario(data))


def _holds(result: RunResult) -> tuple[np.ndarray, np.ndarray]:
    """(each held send's time from its call's start, how long the limiter held it): a send
    is ready at its call's start (a first attempt) or when its wait ends."""
    a, calls = result.attempts, result.calls
    order = np.lexsort((a["attempt"], a["call"]))
    call, start = a["call"][order], a["start"][order]
    ready = calls["start"][call].astype(float)
    later = np.r_[False, call[1:] == call[:-1]]
    ready[later] = (a["end"][order] + a["wait"][order])[:-1][later[1:]]
    held = start - ready
    shown = held > 1e-9
    return (start - calls["start"][call])[shown], held[shown]


@pytest.mark.parametrize("limit", list(LIMITS))
def test_the_limiters_hold_counts_against_the_calls_time_limit(limit: str) -> None:
    """max_delay=2 (or budget.max_total_time=2) and a limiter whose line is far longer: the
    engine and the decorators agree, no send is held past 2 s into its call, and a call lasts
    at most 2 s plus its last attempt (1 s here; under max_delay plus its last wait, 3 s at
    most, which tenacity's stop_after_delay lets run past the limit). One limiter for the
    fleet: a line per client would be short."""
    scope = "fleet"
    unbounded = _paced(scope, {})
    _, long_holds = _holds(unbounded)
    assert long_holds.max() > 2.0  # without a limit the limiter holds sends longer
    data = copy.deepcopy(PACED)
    data["policy"].update(LIMITS[limit])
    data["policy"]["adaptive"] = {"limiter": True, "limiter_min_rate": 0.5, "scope": scope}
    scenario = parse_scenario(data)
    engine = simulate(scenario)
    decorated = run_with_decorators(scenario)
    assert_same(engine, decorated)
    assert_same_guard_events(engine, decorated)
    at, held = _holds(engine)
    assert len(held) > 10  # the limiter held sends
    assert at.max() <= 2.0 + 1e-9  # never past the call's limit
    delays = [float(e.value) for e in engine.guard_events if e.kind == "limiter_delay"]
    assert max(delays) <= 2.0 + 1e-9  # and it reports the holds it gave
    durations = engine.calls["end"] - engine.calls["start"]
    last_wait = 3.0 if limit == "max_delay" else 0.0
    assert np.nanmax(durations) <= 2.0 + last_wait + 1.0 + 1e-9
