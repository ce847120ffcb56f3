"""The base of a resilience mechanism: its table of knobs (``[policy.breaker]``, ...) and
where its guards sit in a send."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer

from retrysim.retry.guards import GuardSpec

#: Where a mechanism's guard is asked in a send, in the order a send meets them: a limiter
#: ``pace``s it, a breaker ``admit``s it or not, a budget ``ration``s retries, an observer only
#: learns outcomes. The chain's order matters (the first refusal wins and the guards before it
#: hear of it), so it is fixed here, not by the order mechanisms happen to be registered in.
Stage = Literal["pace", "admit", "ration", "observe"]
STAGES: tuple[Stage, ...] = ("pace", "admit", "ration", "observe")


@dataclass(frozen=True)
class PlacedGuard:
    """A mechanism's guard declaration and the stage of a send it belongs to."""

    stage: Stage
    spec: GuardSpec


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
