"""What a diagnosis rule returns: the evidence it found, and the settings to try.

Apart from the registry (:mod:`retrysim.results.diagnose`, which re-exports both) so that a
family of rules kept in a module of its own (:mod:`retrysim.results.diagnose_graph`, the call
graph's and the replicas') builds its findings without importing the registry that calls it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from retrysim.results.sections import Severity


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
