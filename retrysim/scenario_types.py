"""The scenario vocabulary: bounded numbers, the strict model base, latency distributions.

Shared by every part of a scenario (policy, clients, network, service, faults), so it lives
below them all. Bounds are part of the vocabulary: no value a file can hold overflows a
computation or vanishes below what a float resolves.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: Bounds on every time and rate a scenario holds, so that no value can overflow a computation
#: or vanish below what a float can resolve: times from a nanosecond to about 31 years, rates
#: from one call in 11 days to a billion a second.
MIN_SECONDS, MAX_SECONDS = 1e-9, 1e9
MIN_RATE, MAX_RATE = 1e-6, 1e9
#: A lognormal's p99 at most this many times its median (already an absurdly heavy tail).
MAX_TAIL_RATIO = 1e6


#: Units, as metadata of the bounded types: the JSON schema's ``"unit"`` of a value, which the
#: scenario reference (``retrysim.scenario_reference``) shows. A number without one is a count.
SECONDS = Field(json_schema_extra={"unit": "s"})
PER_SECOND = Field(json_schema_extra={"unit": "1/s"})
PROBABILITY = Field(json_schema_extra={"unit": "probability"})

#: Seconds, 0 allowed (a constant latency of 0, a fault from t=0).
NonNeg = Annotated[float, Field(ge=0, le=MAX_SECONDS, allow_inf_nan=False), SECONDS]
#: Seconds that must be positive.
Pos = Annotated[float, Field(ge=MIN_SECONDS, le=MAX_SECONDS, allow_inf_nan=False), SECONDS]
#: Calls or requests per second, 0 allowed (a pause in a rate schedule).
Rate = Annotated[float, Field(ge=0, le=MAX_RATE, allow_inf_nan=False), PER_SECOND]
#: A rate something divides by (a token bucket's refill): one per 11 days at the least.
PosRate = Annotated[float, Field(ge=MIN_RATE, le=MAX_RATE, allow_inf_nan=False), PER_SECOND]
Prob = Annotated[float, Field(ge=0, le=1), PROBABILITY]


class Model(BaseModel):
    """Strict, immutable base: unknown keys are errors, values are checked at construction."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


# --- latency distributions -------------------------------------------------------------------


class Constant(Model):
    dist: Literal["constant"] = "constant"
    value: NonNeg = 0.01


class UniformLatency(Model):
    dist: Literal["uniform"]
    low: NonNeg
    high: NonNeg

    @model_validator(mode="after")
    def _ordered(self) -> UniformLatency:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must be <= high ({self.high})")
        return self


class Exponential(Model):
    dist: Literal["exponential"]
    mean: Pos


class Normal(Model):
    dist: Literal["normal"]
    mean: NonNeg
    std: NonNeg


class Lognormal(Model):
    dist: Literal["lognormal"]
    median: Pos
    p99: Pos

    @model_validator(mode="after")
    def _tail(self) -> Lognormal:
        if self.p99 < self.median:
            raise ValueError(f"p99 ({self.p99}) must be >= median ({self.median})")
        if self.p99 > self.median * MAX_TAIL_RATIO:
            raise ValueError(
                f"p99 ({self.p99:g}) must be at most {MAX_TAIL_RATIO:g} times the median "
                f"({self.median:g})"
            )
        return self


Latency = Annotated[
    Constant | UniformLatency | Exponential | Normal | Lognormal,
    Field(discriminator="dist"),
    SECONDS,
]


def latency_from_number(value: Any) -> Any:
    """Let ``latency = 0.02`` mean a constant latency."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"dist": "constant", "value": value}
    return value
