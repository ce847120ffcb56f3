"""One timeout under two keys: ``clients.timeout`` and the policy's ``attempt_timeout``.

The simulator's client timeout per attempt is the option the decorators enforce
(``attempt_timeout``, ``RETRY__<OPERATION>_ATTEMPT_TIMEOUT``): a scenario may give it under
either key (both: the same value, or it is refused), an override of one replaces the other,
a setting gives it when the scenario does not, fidelity mode enforces it through the
decorator's own ``attempt_timeout``, and the tuner searches it and recommends the variable.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from retrysim.model.scenario import Scenario, ScenarioError, parse_scenario
from retrysim.retry.settings import RetrySettings
from retrysim.runs.tune import Dimension, Objective, TuneError, Tuning, check, tune
from retrysim.sim import records as rec
from retrysim.sim.engine import RunResult, simulate
from retrysim.sim.fidelity import run_with_decorators
from tests.test_fast_path import assert_identical
from tests.test_fidelity import assert_same

HANGS_NAME = "scenario"  # parse_scenario's default name
#: Clients that hang on a black hole from 2 s to 3 s, and a slow tail: timeouts matter.
HANGS: dict[str, Any] = {
    "seed": 5,
    "duration": 12,
    "policy": {"operation": "worker", "max_attempts": 4, "min_wait": 0.1, "max_wait": 1},
    "clients": {"count": 150, "calls_per_client": 2, "think_time": 0.5,
                "arrival": {"kind": "uniform", "end": 6}},
    "service": {"kind": "ideal", "latency": {"dist": "lognormal", "median": 0.05, "p99": 1.2}},
    "faults": [{"kind": "outage", "start": 2, "end": 3, "mode": "blackhole"}],
}  # fmt: skip


def hangs(**timeouts: float) -> Scenario:
    """HANGS with ``clients=`` and ``policy=``: the timeout under either key."""
    data: dict[str, Any] = {
        **HANGS,
        "clients": dict(HANGS["clients"]),
        "policy": dict(HANGS["policy"]),
    }
    for table, seconds in timeouts.items():
        key = "timeout" if table == "clients" else "attempt_timeout"
        data[table][key] = seconds
    return parse_scenario(data)


def timed_out(result: RunResult) -> int:
    return int(np.sum(result.attempts["outcome"] == rec.TIMED_OUT))


# -- the scenario -----------------------------------------------------------------------------


def test_either_key_gives_the_clients_timeout_and_both_must_agree() -> None:
    assert hangs(clients=0.8).client_timeout == 0.8
    assert hangs(policy=0.8).client_timeout == 0.8
    assert hangs(clients=0.8, policy=0.8).client_timeout == 0.8
    assert hangs().client_timeout is None
    with pytest.raises(ScenarioError) as refused:
        hangs(clients=0.8, policy=2.0)
    message = str(refused.value)
    assert "clients.timeout (0.8)" in message and "policy.attempt_timeout (2)" in message
    assert "\n" not in message


def test_an_override_of_one_key_replaces_the_other() -> None:
    moved = hangs(clients=0.8).with_overrides({"policy.attempt_timeout": 2.0})
    assert (moved.clients.timeout, moved.policy.attempt_timeout) == (None, 2.0)
    back = hangs(policy=0.8).with_overrides({"clients.timeout": 1.5})
    assert (back.clients.timeout, back.policy.attempt_timeout) == (1.5, None)
    with pytest.raises(ValidationError, match="are one timeout"):  # both at once: must agree
        hangs().with_overrides({"clients.timeout": 1.0, "policy.attempt_timeout": 2.0})


# -- the engine -------------------------------------------------------------------------------


def test_the_two_keys_and_the_setting_are_one_timeout_to_the_engine() -> None:
    by_clients = simulate(hangs(clients=0.8))
    assert timed_out(by_clients) > 0
    assert_identical(by_clients, simulate(hangs(policy=0.8)))
    setting = RetrySettings(worker_attempt_timeout=0.8)
    assert_identical(by_clients, simulate(hangs(), settings=setting))
    # the scenario's value wins over the setting, as every scenario key does
    assert_identical(by_clients, simulate(hangs(clients=0.8), settings=RetrySettings(
        worker_attempt_timeout=5.0)))  # fmt: skip
    without = simulate(hangs())
    assert timed_out(without) == 0
    assert (without.calls["outcome"] == rec.UNFINISHED).any()  # hung in the black hole


@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_both_paths_time_out_alike(engine: str) -> None:
    assert_identical(
        simulate(hangs(policy=0.6), engine=engine), simulate(hangs(clients=0.6), engine="fast")
    )


# -- fidelity: the decorator's own attempt_timeout --------------------------------------------


@pytest.mark.parametrize("key", ["clients", "policy"])
def test_the_decorator_enforces_the_same_timeout_as_the_engine(key: str) -> None:
    scenario = hangs(**{key: 0.7})
    engine = simulate(scenario)
    assert timed_out(engine) > 0
    assert_same(engine, run_with_decorators(scenario))


def test_a_setting_times_out_the_decorator_as_it_does_the_engine() -> None:
    setting = RetrySettings(worker_attempt_timeout=0.7)
    engine = simulate(hangs(), settings=setting)
    assert timed_out(engine) > 0
    assert_same(engine, run_with_decorators(hangs(), settings=setting))


# -- the tuner --------------------------------------------------------------------------------


def test_tune_searches_attempt_timeout_over_a_scenario_that_sets_clients_timeout() -> None:
    """The scenario's own 5 s ``clients.timeout`` gives way to each candidate; the shortest
    timeout ends hung attempts soonest (the lowest p99), and the recommendation is the
    variable that sets it."""
    from retrysim.render.tune_report import env_lines

    tuning = Tuning(
        [Dimension("policy.attempt_timeout", values=(0.5, 2.0, 4.0))],
        Objective.of("p99_latency"),
        seeds=1,
    )
    result = tune([hangs(clients=5.0)], tuning)
    (group,) = result.groups
    # the three searched, and the current settings (no attempt timeout), always tried
    searched = [c for c in group.candidates if "policy.attempt_timeout" in c.sets]
    assert len(searched) == 3 and not group.invalid
    assert group.baselines[0].role == "current"
    p99: dict[float, float] = {}
    for candidate in searched:
        value = candidate.mean(HANGS_NAME, "p99_latency")
        assert value is not None
        p99[candidate.sets["policy.attempt_timeout"]] = value
    assert p99[0.5] < p99[2.0] < p99[4.0]
    assert group.best is not None and group.best.sets == {"policy.attempt_timeout": 0.5}
    assert env_lines(group, group.best.sets) == {"RETRY__WORKER_ATTEMPT_TIMEOUT": "0.5"}


def test_tune_points_clients_timeout_at_the_policy_key() -> None:
    tuning = Tuning([Dimension("clients.timeout", 0.5, 5.0)], Objective.of("success_rate"))
    with pytest.raises(TuneError, match=r"search policy\.attempt_timeout, the same timeout"):
        check(tuning, [hangs()])
