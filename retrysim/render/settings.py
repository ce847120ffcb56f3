"""The effective retry settings as a plain document: values, their sources, backoff schedules.

``retrysim settings`` renders this; ``--json`` prints it as is. Keys are stable. Each operation
lists its error families' own policies too (``operations.api.per_error.rate_limited``): every
knob with its source and variable, the numbers in effect (a knob unset inherits the
operation's) and the schedule a call whose every error is of that family meets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from retrysim.retry.effective import Effective, effective_policy
from retrysim.retry.mechanisms import MECHANISMS
from retrysim.retry.options import (
    GLOBAL_OPTIONS,
    PER_OPERATION_OPTIONS,
    ErrorPolicy,
    PolicyOptions,
)
from retrysim.retry.per_error import PER_ERROR_FAMILIES
from retrysim.retry.policy import RetryPolicy, build_policy
from retrysim.retry.profiles import get_profile
from retrysim.retry.settings import (
    OPERATIONS,
    RetrySettings,
    Source,
    env_file_present,
    load_settings,
    setting_sources,
)
from retrysim.retry.variables import option_variable

#: Retries listed per operation; a larger max_attempts is summarised by its worst-case total.
SCHEDULE_ROWS = 100


def settings_document(
    env_file: str | Path | None = ".env",
    profile: str | None = None,
    settings: RetrySettings | None = None,
    sources: dict[str, Source] | None = None,
) -> dict[str, Any]:
    """Effective settings per operation with sources, and the schedule each implies.

    ``profile`` previews another backoff profile with the same numbers (its source is then
    ``option``). A caller that already read the settings and their sources passes both, so
    ``env_file`` is not read again.
    """
    if settings is None:
        settings = load_settings(env_file)
    if sources is None:
        sources = setting_sources(env_file)
    preview = PolicyOptions(profile=profile)
    flags = {"profile": "option"} if profile else {}
    effective = {
        op: effective_policy(preview, op, settings, sources, flags=flags) for op in OPERATIONS
    }
    operations: dict[str, Any] = {}
    for op in OPERATIONS:
        policy = build_policy(op, settings, profile=profile)
        fields = {knob: _entry(effective[op], knob, op) for knob in PER_OPERATION_OPTIONS}
        operations[op] = {
            **fields,
            **_schedule(policy),
            "per_error": per_error_document(policy, effective[op]),
        }
    any_operation = OPERATIONS[0]  # a shared setting is the same for every operation
    shared = {
        name: _entry(effective[any_operation], name, any_operation) for name in GLOBAL_OPTIONS
    }
    chosen = get_profile(shared["profile"]["value"])
    shared["profile"].update(
        value=chosen.name, formula=chosen.formula, min_wait_means=chosen.min_wait_means
    )
    return {
        "env_file": None if env_file is None else str(env_file),
        "env_file_found": env_file_present(env_file),
        **shared,
        "operations": operations,
        "mechanisms": mechanisms_document(settings, sources),
    }


def _schedule(policy: RetryPolicy) -> dict[str, Any]:
    """The waits before each retry (the first :data:`SCHEDULE_ROWS`) and their worst case."""
    rows = policy.schedule(SCHEDULE_ROWS)
    return {
        "schedule": [
            {"retry": n, "min_wait": lo, "max_wait": hi, "worst_case_total_wait": total}
            for n, lo, hi, total in rows
        ],
        "schedule_truncated": len(rows) < policy.max_attempts - 1,
        "worst_case_total_wait": policy.worst_case_total(),
    }


def per_error_document(
    policy: RetryPolicy, effective: dict[str, Effective]
) -> dict[str, dict[str, Any]]:
    """Per error family of ``policy``'s operation: its knobs (value, source, variable; a value
    None inherits), whether any is set (``own``), the numbers in effect and its schedule:
    ``per_error.rate_limited.max_attempts.variable`` is ``RETRY__API_RATE_LIMITED_MAX_ATTEMPTS``."""
    out: dict[str, dict[str, Any]] = {}
    for family, errors in PER_ERROR_FAMILIES.items():
        knobs = {
            knob: _entry(effective, f"{family}.{knob}", policy.operation)
            for knob in ErrorPolicy.model_fields
        }
        view = policy.for_family(family)
        out[family] = {
            "errors": errors,
            **knobs,
            "own": any(knob["value"] is not None for knob in knobs.values()),
            "in_effect": {
                "max_attempts": view.max_attempts,
                "min_wait": view.min_wait,
                "max_wait": view.max_wait,
                "respect_retry_after": view.respect_retry_after,
            },
            **_schedule(view),
        }
    return out


def mechanisms_document(
    settings: RetrySettings, sources: dict[str, Source]
) -> dict[str, dict[str, dict[str, Any]]]:
    """Per operation, per mechanism (breaker, budget, adaptive), every knob's value, source
    and variable: ``mechanisms.api.breaker.failure_threshold.variable`` is
    ``RETRY__API_BREAKER_FAILURE_THRESHOLD``."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for op in OPERATIONS:
        effective = effective_policy(PolicyOptions(), op, settings, sources)
        out[op] = {
            mechanism: {
                knob: _entry(effective, f"{mechanism}.{knob}", op) for knob in model.model_fields
            }
            for mechanism, model in MECHANISMS.items()
        }
    return out


def _entry(effective: dict[str, Effective], key: str, operation: str) -> dict[str, Any]:
    """One setting as the document lists it: its value, its source and its variable."""
    value = effective[key]
    return {
        "value": value.value,
        "source": value.source,
        "variable": option_variable(key, operation),
    }
