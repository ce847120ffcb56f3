"""Zero, tiny and huge waits on every wait strategy the fast path mirrors.

tests/test_fast_path.py proves the fast path identical to the reference path on the bundled
scenarios and on generated ones, whose waits stay in everyday ranges. A mirror's shortcuts
(``math.log(max)`` worked out once, powers worked out before the run, the jitter draw written
out) are where a zero or a 1e6 goes wrong: ``retrysim run postgres-restart --profile bindu
--set policy.min_wait=0 --set policy.max_wait=0`` reached ``math.log(0)`` under a mutant that
no test caught. Here every profile (each builds a different wait: a capped random wait, a
mirrored ``wait_exponential``, equal and decorrelated jitter, ``wait_none``), the Retry-After
and per-error wrappers around them, and tenacity's mirrored strategies themselves run at
min_wait = max_wait = 0, at 1e-9 and at 1e6, on both paths (records compared bit for bit) and
mirror by mirror against tenacity's own draw.
"""

from __future__ import annotations

from typing import Any

import pytest
import tenacity

import retrysim
from retrysim.model.scenario import Scenario
from retrysim.names import PROFILES
from retrysim.retry.policy import build_policy
from retrysim.retry.settings import RetrySettings
from retrysim.sim import compiled as compiled_module
from retrysim.sim.decide import MIRRORED, fast_refusal
from retrysim.sim.engine import policy_for, simulate
from tests.test_fast_path import assert_identical, assert_mirror_draws_as_tenacity

#: (min_wait, max_wait) pairs: all zero (the issue's case), tiny, huge, and zero to huge.
EXTREMES: dict[str, tuple[float, float]] = {
    "zero": (0.0, 0.0),
    "tiny": (1e-9, 1e-9),
    "huge": (1e6, 1e6),
    "zero-to-huge": (0.0, 1e6),
}
#: Attempts each mirror is asked about: the first ones, and past the precomputed powers.
ATTEMPTS = [*range(1, 12), 63, 64, 65, 1024, 5000]


def small(profile: str, low: float, high: float, **more: object) -> Scenario:
    """postgres-restart (an outage, then a recovery ramp) shrunk to a few hundred calls."""
    overrides: dict[str, object] = {
        "clients.arrival.rate": 10,
        "duration": 40,
        "policy.profile": profile,
        "policy.min_wait": low,
        "policy.max_wait": high,
        **more,
    }
    return retrysim.load_scenario("postgres-restart").with_overrides(overrides)


def run_both(scenario: Scenario) -> None:
    assert fast_refusal(policy_for(scenario)) is None  # the fast path really takes it
    fast = simulate(scenario, engine="fast")
    reference = simulate(scenario, engine="reference")
    assert (fast.engine, reference.engine) == ("fast", "reference")
    assert len(fast.attempts) > 0
    assert_identical(fast, reference)


# -- both paths, record for record --------------------------------------------------------------


def test_the_issue_case_zero_waits_under_bindu_on_postgres_restart() -> None:
    """The full-size scenario of the report, as ``retrysim run`` builds it."""
    scenario = retrysim.load_scenario("postgres-restart").with_overrides(
        {"policy.profile": "bindu", "policy.min_wait": 0, "policy.max_wait": 0}
    )
    run_both(scenario)


def test_the_issue_command_runs_on_the_fast_path() -> None:
    from typer.testing import CliRunner

    from retrysim.cli.app import app

    command = [
        "run",
        "postgres-restart",
        "--profile",
        "bindu",
        "--set",
        "policy.min_wait=0",
        "--set",
        "policy.max_wait=0",
        "--quiet",
    ]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    assert "engine: native" in result.output  # the native core, proved against the reference
    slow = CliRunner().invoke(app, command, env={"RETRYSIM_NATIVE": "0"})
    assert "engine: fast (the native core is turned off (RETRYSIM_NATIVE=0))" in slow.output


@pytest.mark.parametrize("extreme", EXTREMES)
@pytest.mark.parametrize("profile", PROFILES)
def test_extreme_waits_under_every_profile(profile: str, extreme: str) -> None:
    low, high = EXTREMES[extreme]
    run_both(small(profile, low, high))


@pytest.mark.parametrize("extreme", EXTREMES)
@pytest.mark.parametrize("profile", ["documented", "bindu", "equal_jitter", "decorrelated"])
def test_extreme_waits_with_the_wrappers(profile: str, extreme: str) -> None:
    """Retry-After honoured (wait_retry_after), per-error waits (wait_per_error), a delay limit
    that huge waits run into, and the adaptive guard (wait_stretched)."""
    low, high = EXTREMES[extreme]
    scenario = small(
        profile,
        low,
        high,
        **{
            "policy.respect_retry_after": True,
            "policy.max_delay": 30.0,
            "policy.connection_error.min_wait": high,
            "policy.connection_error.max_wait": high,
            "policy.adaptive.enabled": True,
        },
    )
    run_both(scenario)


# -- mirror by mirror, against tenacity ---------------------------------------------------------


def _extreme_tenacity_waits() -> list[Any]:
    exp, rexp, jit = (
        tenacity.wait_exponential,
        tenacity.wait_random_exponential,
        tenacity.wait_exponential_jitter,
    )
    cases: list[Any] = [tenacity.wait_none()]
    for value in (0.0, 1e-9, 1e6):
        cases += [
            exp(multiplier=1, max=value, min=value),  # bindu's max_wait=min_wait=value
            exp(multiplier=value, max=value, min=value),
            exp(multiplier=value, max=8),
            exp(multiplier=1, max=value),
            rexp(multiplier=1, max=value, min=value),
            rexp(multiplier=value, max=value),
            jit(multiplier=value, max=value, jitter=value, min=value),
            jit(multiplier=1, max=value, jitter=0),
            tenacity.wait_random(value, value),
            tenacity.wait_random(0, value),
            tenacity.wait_fixed(value),
            tenacity.wait_fixed(value) + exp(multiplier=value, max=value) + jit(max=value),
        ]
    return cases


def _name(wait: Any) -> str:
    """A stable id: the strategy and its numbers, never an object's address (xdist's workers
    must collect the same ids)."""
    if isinstance(wait, tenacity.wait.wait_combine):
        return "+".join(_name(part) for part in wait.wait_funcs)
    numbers = ",".join(f"{key}={value}" for key, value in sorted(vars(wait).items()))
    return f"{type(wait).__name__}({numbers})"


def _same_draws(wait: Any) -> None:
    assert_mirror_draws_as_tenacity(wait, ATTEMPTS, seed=7)


@pytest.mark.parametrize("wait", _extreme_tenacity_waits(), ids=_name)
def test_each_mirror_draws_what_tenacity_draws_at_the_extremes(wait: Any) -> None:
    _same_draws(wait)


def _mirrored_parts(wait: Any) -> list[Any]:
    """tenacity's strategies with a mirror inside a policy's wait, however it is wrapped."""
    if type(wait).__module__.startswith("tenacity") and type(wait) in compiled_module.MIRRORS:
        return [wait]
    parts: list[Any] = []
    for attribute in ("inner", "fallback"):
        if hasattr(wait, attribute):
            parts += _mirrored_parts(getattr(wait, attribute))
    return parts


@pytest.mark.parametrize("extreme", EXTREMES)
@pytest.mark.parametrize("profile", PROFILES)
def test_each_profiles_mirrored_wait_draws_what_tenacity_draws(profile: str, extreme: str) -> None:
    """The waits the profiles really build at the extremes: every one is on the fast path,
    and each mirrored part draws tenacity's number."""
    low, high = EXTREMES[extreme]
    policy = build_policy(
        "storage", RetrySettings.defaults(), min_wait=low, max_wait=high, profile=profile
    )
    assert type(policy.wait) in MIRRORED
    for part in _mirrored_parts(policy.wait):
        _same_draws(part)
