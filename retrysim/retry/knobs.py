"""The base of a resilience mechanism's table of knobs (``[policy.breaker]``, ...)."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer


class Knobs(BaseModel):
    """A mechanism's knobs. A knob left unset falls back to its ``RETRY__*`` setting.

    Only the knobs set explicitly are serialised, so a scenario dumped and parsed again (as
    ``--set`` and the shell do) still tells the knobs the user gave from those left to the
    settings. A resolved table has every knob set, so it dumps whole.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_serializer(mode="wrap")
    def _only_given(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {name: value for name, value in data.items() if name in self.model_fields_set}


def as_written(value: float) -> Fraction:
    """``value`` as the decimal it was written as (``0.07`` is exactly 7/100).

    A knob like a failure rate or a retry share is compared with counts of outcomes, and
    binary floating point gets such comparisons wrong at the boundary (``0.07 * 100`` is
    ``7.000000000000001``, so 7 failures in 100 would not reach a 7% rate). The shortest
    repr of a float is the decimal the user gave (in a scenario, a setting or code), so that
    decimal, as an exact fraction, is what the mechanisms compare with.
    """
    return Fraction(repr(float(value)))
