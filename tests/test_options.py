"""One policy definition: every option defined once, and every entry point derived from it."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
import tenacity
from hypothesis import given, settings
from hypothesis import strategies as st
from tenacity import RetryCallState

from retrysim.cli.common import policy_sources
from retrysim.model.scenario import PolicySpec, parse_scenario
from retrysim.retry import (
    OPERATIONS,
    OPTION_NAMES,
    PolicyOptions,
    RetrySettings,
    build_policy,
    execute_with_retry,
    get_profile,
    retry_api_call,
)
from retrysim.retry.options import (
    ERROR_POLICY_NAMES,
    MECHANISM_NAMES,
    PER_OPERATION_OPTIONS,
    setting_source,
    settings_field,
)
from retrysim.retry.profiles import REGISTRY
from retrysim.sim.policy import policy_for

#: A valid non-default value for every option: the test fails when an option is added without
#: one, which is the point (a new option must be checked through every entry point below).
EXAMPLE: dict[str, Any] = {
    "max_attempts": 7,
    "min_wait": 0.25,
    "max_wait": 3.0,
    "multiplier": 0.5,
    "profile": "equal_jitter",
    "jitter": 0.2,
    "max_delay": 60.0,
    "respect_retry_after": True,
    "attempt_timeout": 2.5,
}


#: A valid table for every error family (``[policy.rate_limited]``, ...), each knob given.
ERROR_EXAMPLE: dict[str, dict[str, Any]] = {
    "rate_limited": {"max_attempts": 8, "min_wait": 2.0, "respect_retry_after": True},
    "server_error": {"max_attempts": 2, "max_wait": 1.0},
    "connection_error": {"max_attempts": 3, "min_wait": 0.1, "max_wait": 0.5},
    "timeout_error": {"max_attempts": 5, "respect_retry_after": False},
}


def test_the_examples_cover_every_option() -> None:
    assert set(EXAMPLE) == set(OPTION_NAMES)
    assert set(ERROR_EXAMPLE) == set(ERROR_POLICY_NAMES)


@pytest.mark.parametrize("name", ERROR_POLICY_NAMES)
def test_every_error_family_reaches_every_entry_point(name: str) -> None:
    table = ERROR_EXAMPLE[name]
    knob, value = next(iter(table.items()))
    given: dict[str, Any] = {name: table}
    defaults = RetrySettings.defaults()
    # the builder
    policy = build_policy("api", defaults, **given)
    assert getattr(policy.options, name).model_dump(exclude_none=True) == table
    assert name in policy.overrides
    assert {k: v for k, v in policy.describe()[name].items() if v is not None} == table
    # a decorator and execute_with_retry
    decorated = retry_api_call(**given)(lambda: None)
    decorated_policy = decorated.retry_policy()  # type: ignore[attr-defined]  # set at runtime
    assert getattr(decorated_policy.options, name) == getattr(policy.options, name)
    assert asyncio.run(execute_with_retry(lambda: "ok", **given)) == "ok"
    # a scenario's [policy.<name>] table, and --set policy.<name>.<knob>
    scenario = parse_scenario({"policy": {"operation": "api", name: table}})
    assert getattr(policy_for(scenario).options, name) == getattr(policy.options, name)
    key = f"policy.{name}.{knob}"
    overridden = parse_scenario({}).with_overrides({key: value})
    assert getattr(getattr(overridden.policy, name), knob) == value
    # where the value came from, and the setting it falls back to
    assert policy_sources(scenario, {}, {}, None)[f"{name}.{knob}"] == "scenario"
    assert policy_sources(overridden, {key: value}, {}, None)[f"{name}.{knob}"] == "--set"
    for operation in OPERATIONS:
        assert f"{operation}_{name}_{knob}" in RetrySettings.model_fields


@pytest.mark.parametrize("name", OPTION_NAMES)
def test_every_option_reaches_every_entry_point(name: str) -> None:
    value = EXAMPLE[name]
    defaults = RetrySettings.defaults()
    # the builder
    policy = build_policy("api", defaults, **{name: value})
    assert getattr(policy.options, name) == value
    assert name in policy.overrides
    assert policy.describe()[name] == value

    # a decorator (validated at decoration time, effective at call time); a coroutine, as
    # attempt_timeout bounds only those
    async def noop() -> None:
        return None

    decorated = retry_api_call(**{name: value})(noop)
    decorated_policy = decorated.retry_policy()  # type: ignore[attr-defined]  # set at runtime
    assert getattr(decorated_policy.options, name) == value
    # a scenario's [policy] table, and --set policy.<name> through with_overrides
    scenario = parse_scenario({"policy": {"operation": "api", name: value}})
    assert getattr(policy_for(scenario).options, name) == value
    overridden = parse_scenario({}).with_overrides({f"policy.{name}": value})
    assert getattr(overridden.policy, name) == value
    # where the value came from
    assert policy_sources(scenario, {}, {}, None)[name] == "scenario"
    assert policy_sources(overridden, {f"policy.{name}": value}, {}, None)[name] == "--set"


@pytest.mark.parametrize("name", OPTION_NAMES)
def test_execute_with_retry_takes_every_option(name: str) -> None:
    seen: dict[str, Any] = {}

    def op(**kwargs: Any) -> str:
        seen.update(kwargs)
        return "ok"

    result = asyncio.run(execute_with_retry(op, **{name: EXAMPLE[name]}, other=1))
    assert result == "ok"
    assert seen == {"other": 1}, "policy options are the retry's, never passed on"


def test_policy_spec_is_the_options_plus_what_a_scenario_adds() -> None:
    assert set(PolicySpec.model_fields) == {
        *OPTION_NAMES,
        *ERROR_POLICY_NAMES,
        *MECHANISM_NAMES,
        "operation",
        "retry_on",
        "retry_other_host",
    }


def test_settings_hold_a_field_for_every_option_read_from_them() -> None:
    for name in OPTION_NAMES:
        if setting_source(name) is None:
            continue
        for operation in OPERATIONS:
            assert settings_field(name, operation) in RetrySettings.model_fields
    assert set(PER_OPERATION_OPTIONS) == {
        "max_attempts",
        "min_wait",
        "max_wait",
        "attempt_timeout",
    }


def test_an_unknown_option_is_a_type_error_with_a_suggestion() -> None:
    with pytest.raises(TypeError, match="did you mean 'max_attempts'"):
        retry_api_call(max_atempts=3)
    with pytest.raises(TypeError, match="did you mean 'multiplier'"):
        build_policy("api", multiplyer=2.0)


@pytest.mark.parametrize(
    ("options", "word"),
    [({"multiplier": 0}, "multiplier"), ({"multiplier": float("nan")}, "multiplier")],
)
def test_multiplier_must_be_a_positive_number(options: dict[str, Any], word: str) -> None:
    with pytest.raises(ValueError, match=word):
        build_policy("api", **options)


def test_the_options_model_is_frozen_and_strict() -> None:
    options = PolicyOptions(max_attempts=3)
    with pytest.raises(ValueError):
        options.max_attempts = 4  # type: ignore[misc]  # frozen on purpose
    with pytest.raises(ValueError):
        PolicyOptions(max_attempts=3, colour="red")  # type: ignore[call-arg]  # unknown field on purpose
    assert options.given() == {"max_attempts"}


# --- profiles as objects -------------------------------------------------------------------


def test_every_profile_owns_its_formula_colour_and_min_wait_meaning() -> None:
    colours = set()
    for name, profile in REGISTRY.items():
        assert profile.name == name and get_profile(name) is profile
        assert profile.formula and profile.min_wait_means
        colours.add(profile.colour)
    assert len(colours) == len(REGISTRY), "each profile looks different in figures"


def _draws(wait: Any, n: int, seed: int) -> list[float]:
    """Waits before retry ``n`` from ``wait``, 20 draws with tenacity's jitter seeded.

    Each draw is a fresh call's: a wait that remembers a call's previous wait (decorrelated
    jitter) would otherwise chain 20 waits of one call, all at attempt ``n``, past its range.
    """
    namespace = vars(tenacity.wait)  # tenacity.wait does not re-export its ``random`` global
    saved = namespace["random"]
    namespace["random"] = random.Random(seed)
    try:
        draws = []
        for _ in range(20):
            state = RetryCallState(tenacity.Retrying(), None, (), {})
            state.attempt_number = n
            draws.append(wait(state))
        return draws
    finally:
        namespace["random"] = saved


@settings(max_examples=60, deadline=None)
@given(
    multiplier=st.floats(0.01, 5),
    min_wait=st.floats(0, 3),
    extra=st.floats(0, 30),
    n=st.integers(1, 12),
    seed=st.integers(0, 1000),
)
def test_with_a_multiplier_the_common_tenacity_shapes_are_tenacity_exactly(
    multiplier: float, min_wait: float, extra: float, n: int, seed: int
) -> None:
    """What most users' code has: wait_(random_)exponential(multiplier, min, max)."""
    max_wait = min_wait + extra
    for profile, theirs in (
        ("exponential", tenacity.wait_exponential),
        ("full_jitter", tenacity.wait_random_exponential),
    ):
        ours = build_policy(
            "api",
            RetrySettings.defaults(),
            profile=profile,
            multiplier=multiplier,
            min_wait=min_wait,
            max_wait=max_wait,
        ).wait
        reference = theirs(multiplier=multiplier, min=min_wait, max=max_wait)
        assert _draws(ours, n, seed) == _draws(reference, n, seed)


@settings(max_examples=80, deadline=None)
@given(
    profile=st.sampled_from(list(REGISTRY)),
    operation=st.sampled_from(OPERATIONS),
    multiplier=st.one_of(st.none(), st.floats(0.01, 5)),
    min_wait=st.floats(0, 3),
    extra=st.floats(0, 30),
    n=st.integers(1, 12),
    seed=st.integers(0, 1000),
)
def test_sampled_waits_stay_inside_the_profile_range(
    profile: str,
    operation: str,
    multiplier: float | None,
    min_wait: float,
    extra: float,
    n: int,
    seed: int,
) -> None:
    policy = build_policy(
        operation,
        RetrySettings.defaults(),
        profile=profile,
        multiplier=multiplier,
        min_wait=min_wait,
        max_wait=min_wait + extra,
    )
    lo, hi = policy.wait_range(n)
    tolerance = 1e-9 * max(1.0, hi)
    for wait in _draws(policy.wait, n, seed):
        assert lo - tolerance <= wait <= hi + tolerance


def test_a_registered_profile_is_accepted_by_the_cli_as_by_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from retrysim.cli.app import app
    from retrysim.retry.profiles import Exponential

    class Slow(Exponential):
        name = "slow_exponential"

    monkeypatch.setitem(REGISTRY, "slow_exponential", Slow())
    result = CliRunner().invoke(
        app,
        [
            "run",
            "redis-blip",
            "--set",
            "clients.count=20",
            "--profile",
            "slow_exponential",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert '"profile": "slow_exponential"' in result.stdout
