"""A figure of the suite's table: what was measured, its value, its target, its verdict.

Its own module so that every module adding rows to the table (:mod:`benchmarks.suite`,
:mod:`benchmarks.native_figures`) builds them the one way, and the table reads them back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Check:
    """One figure of the table: what, how much, its target (if any) and whether it is met."""

    name: str
    value: float | None  # None: not measured (the note says why)
    unit: str = "x"
    target: float | None = None
    at_most: bool = True  # the target is an upper bound (else a lower bound)
    note: str = ""

    @property
    def met(self) -> bool | None:
        if self.value is None or self.target is None:
            return None
        return self.value <= self.target if self.at_most else self.value >= self.target

    def verdict(self) -> str:
        if self.value is None:
            return "not measured" + (f": {self.note}" if self.note else "")
        if self.target is None or self.met is None:
            return ""
        if self.met:
            return "met"
        factor = self.value / self.target if self.at_most else self.target / self.value
        return f"missed by {factor:.3f}x"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "target": self.target,
            "at_most": self.at_most,
            "met": self.met,
            "verdict": self.verdict(),
            "note": self.note,
        }
