"""Tests written for mutants of ``retrysim/retry/options.py`` that its own tests let survive
(a full mutation run, ``python scripts/mutate.py --module options``): each pins a behaviour a
plausible wrong edit would change."""

from __future__ import annotations

import dataclasses

import pytest
from tenacity import Retrying

from retrysim.retry import RateLimitedError, build_policy
from retrysim.retry.options import (
    FromSettings,
    parse_options,
    setting_for,
    shared_setting,
)

# --- options: FromSettings ------------------------------------------------------------------


def test_a_settings_mark_is_immutable_and_hashable() -> None:
    """The mark that ties an option to its setting is a value shared by every model built from
    it: it cannot be changed, and equal marks are equal (and hash alike)."""
    mark = shared_setting(0.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        mark.per_operation = True  # type: ignore[misc]
    assert len({mark, FromSettings(False, (("", 0.5),))}) == 1


# --- options: the limits on seconds ---------------------------------------------------------


def test_seconds_above_the_limit_or_not_finite_are_refused_as_such() -> None:
    """A wait of 1e9 s is the most allowed; a hair more is refused. Infinity and NaN are refused
    as not finite (the message says so), not as too large."""
    assert parse_options({"min_wait": 1e9}).min_wait == 1e9
    with pytest.raises(ValueError, match="min_wait"):
        parse_options({"min_wait": 1e9 + 1.0})
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="finite"):
            parse_options({"max_wait": bad})


# --- options: per-error waits ---------------------------------------------------------------


def test_a_family_with_its_own_waits_waits_them() -> None:
    """A rate-limited error waits the ``rate_limited`` table's own range (1 s here), any other
    error the policy's (10 s): the table's waits differ from the policy's."""
    policy = build_policy(
        "worker",
        max_attempts=2,
        min_wait=10.0,
        max_wait=10.0,
        jitter=0.0,
        profile="exponential",
        rate_limited={"min_wait": 1.0, "max_wait": 1.0, "respect_retry_after": False},
    )

    def first_wait(error: BaseException) -> float:
        waits: list[float] = []
        retrying = Retrying(
            stop=policy.stop,
            wait=policy.wait,
            retry=policy.retry,
            sleep=waits.append,
            reraise=True,
        )

        def fail() -> None:
            raise error

        with pytest.raises(type(error)):
            retrying(fail)
        return waits[0]

    assert first_wait(RateLimitedError("slow down")) == 1.0
    assert first_wait(ConnectionError("down")) == 10.0


# --- options: shorthands --------------------------------------------------------------------


def test_a_mechanism_shorthand_turns_it_on_or_names_it() -> None:
    """``breaker=True`` turns the breaker on, ``breaker=False`` off, and ``breaker="llm-api"``
    turns it on under that name."""
    assert parse_options({"breaker": True}).breaker.enabled is True
    assert parse_options({"breaker": False}).breaker.enabled is False
    named = parse_options({"breaker": "llm-api"}).breaker
    assert named.enabled is True
    assert named.name == "llm-api"


# --- options: setting_for -------------------------------------------------------------------


def test_setting_for_an_unknown_table_or_knob_is_none() -> None:
    """A dotted key names a setting only when both its table and its knob exist."""
    assert setting_for("breaker.failure_threshold", "worker") == (
        "worker_breaker_failure_threshold"
    )
    assert setting_for("breaker.no_such_knob", "worker") is None
    assert setting_for("no_such_table.max_attempts", "worker") is None


# --- options: unknown names -----------------------------------------------------------------


def test_an_unknown_option_lists_the_allowed_names_once() -> None:
    """An unknown option with no close match is a TypeError that lists the allowed names once,
    at its end."""
    with pytest.raises(TypeError) as refused:
        parse_options({"zzzz": 1})
    message = str(refused.value)
    assert message.startswith("unknown retry option(s) 'zzzz'; allowed: ")
    assert message.count("allowed") == 1
