"""The obvious candidates ``retrysim tune`` always tries: the current settings (the scenario's,
then the environment's, then the defaults), the documented defaults, and each setting the
current run's diagnoses prescribe, alone and all together, clipped to the search space.

The current settings are taken as they are, inside the search space or not: keeping them is
always an answer, and the one the tuner prefers when nothing beats it beyond the noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from retrysim.model.scenario import Scenario
from retrysim.retry.settings import RetrySettings
from retrysim.runs.tune_judge import Candidate
from retrysim.runs.tune_space import Dimension, Tuning

OUT = object()  # a value the search space cannot hold


def documented(tuning: Tuning, operation: str) -> dict[str, Any]:
    """The documented default of each searched key for ``operation``, clipped to the space."""
    from retrysim.retry.effective import effective_policy
    from retrysim.retry.options import PolicyOptions

    values = effective_policy(PolicyOptions(), operation)
    out = {}
    for dim in tuning.dimensions:
        value = clip(dim, values[dim.option].value) if dim.option in values else OUT
        if value is not OUT:
            out[dim.key] = value
    return out


def current_values(
    scenarios: Sequence[Scenario], tuning: Tuning, settings: RetrySettings | None
) -> dict[str, Any]:
    """Each searched key's value in effect, where every scenario of the group agrees."""
    from retrysim.retry.effective import effective_policy

    values = [effective_policy(s.policy, s.policy.operation, settings) for s in scenarios]
    out = {}
    for dim in tuning.dimensions:
        seen = [v[dim.option].value for v in values if dim.option in v]
        if len(seen) == len(values) and all(x == seen[0] for x in seen):
            out[dim.key] = seen[0]
    return out


def prescribed(
    current: Candidate, names: Sequence[str], tuning: Tuning
) -> list[tuple[str, dict[str, Any]]]:
    """Each setting the current run's diagnoses prescribe (first seed, every scenario of the
    group) on top of the current settings, clipped to the search space, then all of them."""
    dims = {d.key: d for d in tuning.dimensions}
    out: list[tuple[str, dict[str, Any]]] = []
    together: dict[str, Any] = {}
    for name in names:
        result = current.results.get(name)
        if result is None or not result.documents:
            continue
        for diagnosis in result.documents[0].get("diagnoses") or []:
            for item in diagnosis.get("settings") or []:
                key = f"policy.{item['option']}"
                value = clip(dims[key], item["value"]) if key in dims else OUT
                if value is OUT:
                    continue
                role = f"diagnosis {diagnosis['id']}: {item['option']}={value}"
                out.append((role, {**current.sets, key: value}))
                together.setdefault(key, value)
    if len(together) > 1:
        out.append(("diagnoses together", {**current.sets, **together}))
    return out


def clip(dim: Dimension, value: Any) -> Any:
    """``value`` as the search space can hold it: a range clamps it (whole numbers rounded), a
    list takes it when listed, or its nearest listed number; ``OUT`` when it cannot."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if dim.values:
        for listed in dim.values:
            if type(listed) is type(value) and listed == value:
                return listed
        numbers = [v for v in dim.values if isinstance(v, int | float) and not isinstance(v, bool)]
        if not number or not numbers:
            return OUT
        return min(numbers, key=lambda v: abs(v - value))
    if not number:
        return OUT
    assert dim.low is not None and dim.high is not None
    clamped = min(max(value, dim.low), dim.high)
    return round(clamped) if dim.integer else clamped
