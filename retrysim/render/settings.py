"""The effective retry settings as a plain document: values, their sources, backoff schedules.

``retrysim settings`` renders this; ``--json`` prints it as is. Keys are stable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from retrysim.retry.mechanisms import MECHANISMS, mechanism_setting
from retrysim.retry.options import GLOBAL_OPTIONS, PER_OPERATION_OPTIONS
from retrysim.retry.policy import build_policy
from retrysim.retry.profiles import get_profile
from retrysim.retry.settings import (
    OPERATIONS,
    RetrySettings,
    Source,
    env_file_present,
    env_name,
    load_settings,
    setting_sources,
)

#: Retries listed per operation; a larger max_attempts is summarised by its worst-case total.
SCHEDULE_ROWS = 100


def settings_document(
    env_file: str | Path | None = ".env",
    profile: str | None = None,
    settings: RetrySettings | None = None,
    sources: dict[str, Source] | None = None,
) -> dict[str, Any]:
    """Effective settings per operation with sources, and the schedule each implies.

    ``profile`` previews another backoff profile with the same numbers. A caller that already
    read the settings and their sources passes both, so ``env_file`` is not read again.
    """
    if settings is None:
        settings = load_settings(env_file)
    if sources is None:
        sources = setting_sources(env_file)
    operations: dict[str, Any] = {}
    for op in OPERATIONS:
        policy = build_policy(op, settings, profile=profile)
        fields = {}
        for knob in PER_OPERATION_OPTIONS:
            name = f"{op}_{knob}"
            fields[knob] = {
                "value": getattr(settings, name),
                "source": sources[name],
                "variable": env_name(name),
            }
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
    shared: dict[str, Any] = {
        name: {
            "value": getattr(settings, name),
            "source": sources[name],
            "variable": env_name(name),
        }
        for name in GLOBAL_OPTIONS
    }
    chosen = get_profile(profile or settings.profile)
    shared["profile"].update(
        value=chosen.name,
        source="option" if profile else sources["profile"],
        formula=chosen.formula,
        min_wait_means=chosen.min_wait_means,
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
        out[op] = {}
        for mechanism, model in MECHANISMS.items():
            knobs = {}
            for knob in model.model_fields:
                name = mechanism_setting(op, mechanism, knob)
                knobs[knob] = {
                    "value": getattr(settings, name),
                    "source": sources[name],
                    "variable": env_name(name),
                }
            out[op][mechanism] = knobs
    return out
