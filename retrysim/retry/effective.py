"""Each effective policy value and where it came from: the precedence rule, worked out once.

A policy key's value (an option, ``max_wait``, or a table's knob, ``breaker.enabled``,
``rate_limited.max_attempts``) is, highest first:

1. ``--set``: the command line set ``policy.<key>`` (or a whole table, for the knobs that
   table gives);
2. a flag that sets it (``--profile``; the caller names the flag and its label);
3. ``scenario``: the options given (a scenario's ``[policy]`` table, a decorator's keywords);
4. the ``RETRY__*`` setting the key falls back to: ``env``, ``.env`` or ``default``, as
   :func:`~retrysim.retry.settings.setting_sources` found it;
5. ``default``: the option's own default, for an option no setting reads.

:func:`resolve` fills in and validates the options for :func:`~retrysim.retry.policy.build_policy`;
:func:`effective_policy` gives every key's value and source for the CLI's sources column (the
``retrysim run`` header, the result document's ``sources``), ``retrysim settings`` and the lab.
Its own module because it reads both the options and the settings, which import in that order.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from retrysim.retry.options import OPTION_NAMES, PolicyOptions, setting_for
from retrysim.retry.settings import RetrySettings


@dataclass(frozen=True)
class Effective:
    """A policy key's value in effect and its source (``--set``, ``scenario``, ``env``, ...)."""

    value: Any
    source: str


def resolve(options: PolicyOptions, operation: str, settings: RetrySettings) -> PolicyOptions:
    """Every option filled in: explicit values, then the settings, then the defaults.

    Validated as a whole, so a combination the options refuse (a scenario's ``min_wait`` above
    the setting's ``max_wait``) raises pydantic's ``ValidationError``.
    """
    return PolicyOptions.model_validate(_filled(options, operation, settings))


def _filled(options: PolicyOptions, operation: str, settings: RetrySettings) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in OPTION_NAMES:
        value = getattr(options, name)
        field = setting_for(name, operation)
        values[name] = getattr(settings, field) if value is None and field is not None else value
    for name, knobs in options.tables().items():  # the error families' and the mechanisms'
        values[name] = {
            knob: getattr(knobs, knob)
            if knob in knobs.model_fields_set
            else getattr(settings, _setting(f"{name}.{knob}", operation))
            for knob in type(knobs).model_fields
        }
    return values


def effective_policy(
    options: PolicyOptions,
    operation: str,
    settings: RetrySettings | None = None,
    setting_sources: Mapping[str, str] | None = None,
    *,
    sets: Collection[str] = (),
    flags: Mapping[str, str] | None = None,
) -> dict[str, Effective]:
    """Every policy key's value in effect for ``operation`` and where it came from.

    ``settings`` are what unset keys fall back to (default: the documented defaults);
    ``setting_sources`` is :func:`~retrysim.retry.settings.setting_sources`'s answer for them
    (a field missing from it is ``default``). ``sets`` are the dotted keys given with ``--set``
    (``policy.max_wait``); ``flags`` maps a key to the label of the flag that set it
    (``{"profile": "--profile"}``). Keys are :data:`~retrysim.retry.options.POLICY_KEYS`. Values
    are not validated together (:func:`resolve` does that).
    """
    settings = settings if settings is not None else RetrySettings.defaults()
    where = setting_sources or {}
    labels = flags or {}
    filled = _filled(options, operation, settings)
    given = options.given()
    out: dict[str, Effective] = {}
    for name in OPTION_NAMES:
        by_set = f"policy.{name}" in sets
        source = _source(name, operation, by_set, name in given, labels, where)
        out[name] = Effective(filled[name], source)
    for table, knobs in options.tables().items():
        whole_table = f"policy.{table}" in sets  # --set policy.budget=true, or a table
        for knob, value in filled[table].items():
            key = f"{table}.{knob}"
            explicit = knob in knobs.model_fields_set
            by_set = f"policy.{key}" in sets or (whole_table and explicit)
            out[key] = Effective(value, _source(key, operation, by_set, explicit, labels, where))
    return out


def _source(
    key: str,
    operation: str,
    by_set: bool,
    explicit: bool,
    flags: Mapping[str, str],
    where: Mapping[str, str],
) -> str:
    """The precedence rule of the module docstring, for one key."""
    if by_set:
        return "--set"
    if key in flags:
        return flags[key]
    if explicit:
        return "scenario"
    field = setting_for(key, operation)
    return "default" if field is None else where.get(field, "default")


def _setting(key: str, operation: str) -> str:
    field = setting_for(key, operation)
    assert field is not None, f"every table knob has a setting ({key})"
    return field
