"""The effective retry settings as a plain document: values, their sources, backoff schedules.

``retrysim settings`` renders this; ``--json`` prints it as is. Keys are stable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from retrysim.retry.effective import Effective, effective_policy
from retrysim.retry.mechanisms import MECHANISMS
from retrysim.retry.options import GLOBAL_OPTIONS, PER_OPERATION_OPTIONS, PolicyOptions
from retrysim.retry.policy import build_policy
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
        rows = policy.schedule(SCHEDULE_ROWS)
        operations[op] = {
            **fields,
            "schedule": [
                {"retry": n, "min_wait": lo, "max_wait": hi, "worst_case_total_wait": total}
                for n, lo, hi, total in rows
            ],
            "schedule_truncated": len(rows) < policy.max_attempts - 1,
            "worst_case_total_wait": policy.worst_case_total(),
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
