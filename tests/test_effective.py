"""Each effective policy value and its source, from the one precedence rule.

``--set`` over a flag (``--profile``) over the scenario over the setting's own source (``env``,
``.env``, ``default``) over the option's default. The CLI's sources column, ``retrysim
settings`` and the lab all read :func:`retrysim.retry.effective.effective_policy`.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrysim.cli.common import policy_sources
from retrysim.model.scenario import parse_scenario
from retrysim.retry import RetrySettings, build_policy
from retrysim.retry.effective import effective_policy, resolve
from retrysim.retry.options import POLICY_KEYS, PolicyOptions, setting_for

#: A valid non-default value per key kind, for keys given explicitly.
EXPLICIT: dict[str, Any] = {
    "max_attempts": 7,
    "min_wait": 0.25,
    "max_wait": 3.0,
    "multiplier": 0.5,
    "profile": "bindu",
    "jitter": 0.2,
    "max_delay": 60.0,
    "respect_retry_after": True,
    "breaker.failure_threshold": 9,
    "budget.kind": "ratio",
    "adaptive.max_factor": 2.5,
}
DEFAULTS = RetrySettings.defaults()


def options_with(key: str, value: Any) -> PolicyOptions:
    mechanism, _, knob = key.partition(".")
    return PolicyOptions.model_validate({mechanism: {knob: value}} if knob else {key: value})


def test_every_key_is_reported_once() -> None:
    effective = effective_policy(PolicyOptions(), "worker")
    assert tuple(effective) == POLICY_KEYS
    assert len(set(POLICY_KEYS)) == len(POLICY_KEYS)


@settings(max_examples=300, deadline=None)
@given(
    key=st.sampled_from(sorted(EXPLICIT)),
    by_set=st.booleans(),
    flag=st.sampled_from([None, "--profile", "option"]),
    explicit=st.booleans(),
    setting=st.sampled_from([None, "env", ".env", "default"]),
    operation=st.sampled_from(["worker", "storage", "scheduler", "api"]),
)
def test_the_first_source_in_precedence_order_wins(
    key: str,
    by_set: bool,
    flag: str | None,
    explicit: bool,
    setting: str | None,
    operation: str,
) -> None:
    options = options_with(key, EXPLICIT[key]) if explicit else PolicyOptions()
    field = setting_for(key, operation)
    sources = {field: setting} if field is not None and setting is not None else {}
    effective = effective_policy(
        options,
        operation,
        DEFAULTS,
        sources,
        sets={f"policy.{key}"} if by_set else set(),
        flags={key: flag} if flag is not None else {},
    )[key]
    expected = (
        "--set"
        if by_set
        else flag
        if flag is not None
        else "scenario"
        if explicit
        else (setting or "default")
        if field is not None
        else "default"
    )
    assert effective.source == expected
    fallback = getattr(DEFAULTS, field) if field is not None else None
    if explicit:
        assert effective.value == EXPLICIT[key]
    elif field is not None:
        assert effective.value == fallback


def test_a_whole_table_given_with_set_marks_only_the_knobs_it_gives() -> None:
    scenario = parse_scenario({}).with_overrides({"policy.breaker": {"enabled": True}})
    effective = effective_policy(
        scenario.policy, "worker", DEFAULTS, {}, sets={"policy.breaker": None}
    )
    assert effective["breaker.enabled"].source == "--set"
    assert effective["breaker.failure_threshold"].source == "default"


def test_values_fall_back_to_the_settings_given() -> None:
    custom = RetrySettings(api_max_wait=40.0, api_breaker_recovery_timeout=5.0, jitter=0.5)
    effective = effective_policy(PolicyOptions(max_attempts=2), "api", custom)
    assert effective["max_wait"].value == 40.0
    assert effective["breaker.recovery_timeout"].value == 5.0
    assert effective["jitter"].value == 0.5
    assert effective["max_attempts"].value == 2
    assert effective["multiplier"].value is None  # no setting reads it: its own default


@pytest.mark.parametrize("operation", ["worker", "api"])
def test_the_values_are_the_ones_the_policy_is_built_with(operation: str) -> None:
    options = PolicyOptions(min_wait=0.5, breaker={"recovery_timeout": 7.0})
    effective = effective_policy(options, operation, DEFAULTS)
    built = build_policy(operation, DEFAULTS, options=options).options
    resolved = resolve(options, operation, DEFAULTS)
    assert built == resolved
    for key, value in effective.items():
        mechanism, _, knob = key.partition(".")
        expected = getattr(getattr(built, mechanism), knob) if knob else getattr(built, key)
        assert value.value == expected, key


def test_the_cli_sources_column_is_this_rule() -> None:
    scenario = parse_scenario({"policy": {"operation": "api", "max_wait": 7.0}})
    sets = {"policy.max_attempts": 4}
    setting_sources = {"api_min_wait": "env", "api_breaker_enabled": ".env"}
    column = policy_sources(scenario, sets, setting_sources, "bindu")
    effective = effective_policy(
        scenario.policy,
        "api",
        None,
        setting_sources,
        sets=sets,
        flags={"profile": "--profile"},
    )
    assert column == {key: value.source for key, value in effective.items()}
    assert (column["max_attempts"], column["profile"], column["max_wait"]) == (
        "--set",
        "--profile",
        "scenario",
    )
    assert (column["min_wait"], column["breaker.enabled"], column["jitter"]) == (
        "env",
        ".env",
        "default",
    )
