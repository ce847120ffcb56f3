"""What a diagnosis rule returns: the evidence it found, and the settings to try.

Apart from the registry (:mod:`retrysim.results.diagnose`, which re-exports them) so that a
family of rules kept in a module of its own (:mod:`retrysim.results.diagnose_graph`, the call
graph's and the replicas') builds its findings without importing the registry that calls it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from retrysim.results.sections import Severity

if TYPE_CHECKING:
    from retrysim.results.document import ResultDocument


@dataclass(frozen=True)
class Suggestion:
    """One setting to try: ``env`` sets it in production (None when no variable does),
    ``set`` tries it here (``retrysim run SCENARIO --set ...``). ``pinned``: the scenario
    (or a --set) fixes this option, so the variable alone would not change the simulation."""

    option: str
    value: Any
    env: str | None
    set: str
    pinned: bool = False


@dataclass(frozen=True)
class Finding:
    """What a rule found: the evidence (text and figures) and the change to try."""

    severity: Severity
    evidence: str
    figures: dict[str, Any]
    suggestion: str
    settings: tuple[Suggestion, ...] = ()


def suggest(doc: ResultDocument, option: str, value: Any) -> Suggestion:
    """The setting ``option=value`` for this run's operation, as an env line and a --set.

    ``option`` is a policy option (``max_attempts``) or a mechanism's knob (``budget.enabled``).
    """
    from retrysim.retry.variables import option_variable

    operation = doc["settings"]["operation"]
    shown = _literal(value)
    mechanism, _, knob = option.partition(".")
    env = None
    if not doc["settings"].get("custom"):  # the user's own policy: no RETRY__ variable sets it
        variable = option_variable(option, operation)
        env = None if variable is None else f"{variable}={shown}"
    pinned = (mechanism if knob else option) in doc["settings"].get("overrides", ())
    return Suggestion(option, value, env, f"policy.{option}={shown}", pinned)


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
