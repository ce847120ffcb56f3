"""The scenario vocabulary: bounded numbers, the strict model base, latency distributions.

Shared by every part of a scenario (policy, clients, network, service, faults), so it lives
below them all. Bounds are part of the vocabulary: no value a file can hold overflows a
computation or vanishes below what a float resolves.
"""

from __future__ import annotations

import math
import re
import reprlib
from collections.abc import Collection
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from retrysim.model.marks import TIME

#: Bounds on every time and rate a scenario holds, so that no value can overflow a computation
#: or vanish below what a float can resolve: times from a nanosecond to about 31 years, rates
#: from one call in 11 days to a billion a second.
MIN_SECONDS, MAX_SECONDS = 1e-9, 1e9
MIN_RATE, MAX_RATE = 1e-6, 1e9
#: A lognormal's p99 at most this many times its median (already an absurdly heavy tail).
MAX_TAIL_RATIO = 1e6
#: The smallest shapes of a gamma and a Weibull: rounded up from where their p99 is
#: MAX_TAIL_RATIO times their median (a gamma's 0.0527, a Weibull's ln(ln 100 / ln 2) / ln 1e6
#: = 0.1371), the same bound on the tail as the lognormal's. The largest: a gamma's spread
#: (std) 0.1% of its mean, a Weibull's less still: as near a constant as a fit can tell (a
#: constant is ``constant``).
MIN_GAMMA_SHAPE, MIN_WEIBULL_SHAPE, MAX_SHAPE = 0.06, 0.14, 1e6
#: An empirical latency's quantiles at most: a thousand steps (every 0.1%) and both ends.
MAX_QUANTILES = 1001


#: Units, as metadata of the bounded types: the JSON schema's ``"unit"`` of a value, which the
#: scenario reference (``retrysim.model.reference``) shows. A number without one is a count.
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
#: A gamma's and a Weibull's shape (a pure number), between the bounds above.
GammaShape = Annotated[float, Field(ge=MIN_GAMMA_SHAPE, le=MAX_SHAPE, allow_inf_nan=False)]
WeibullShape = Annotated[float, Field(ge=MIN_WEIBULL_SHAPE, le=MAX_SHAPE, allow_inf_nan=False)]
#: An empirical latency's quantiles, in seconds: both ends at least (``Empirical`` checks that,
#: before its values: a minimum length here would count a list with a bad value as one value
#: short and say so too), MAX_QUANTILES at most.
Quantiles = Annotated[tuple[NonNeg, ...], Field(max_length=MAX_QUANTILES), SECONDS]

#: A word a dependency answers with: a letter or ``_`` first (so no word reads as a number).
ANSWER_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,31}")


def _answer(value: Any) -> Any:
    """One message for a bad answer, rather than one per member of the union below."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 999:
        return value
    if isinstance(value, str) and ANSWER_WORD.fullmatch(value) and value != "None":
        return value
    raise ValueError(
        f"{value!r} is no answer; allowed: a whole number 0 to 999 (a status, such as 503) or a "
        "word of 1 to 32 letters, digits and _.:- starting with a letter or _ (such as "
        '"busy"; not "None", what a served request returns)'
    )


#: What a dependency returns instead of raising (an HTTP status answered as a value, say): the
#: simulated call's result, which a result predicate (``retry_if_result``) judges.
Answer = Annotated[int | str, BeforeValidator(_answer)]


def check_window(start: float, end: float | None, *, may_be_empty: bool = False) -> None:
    """The one check of a window's ends (a fault's, an arrival's, a rate step's): ``end`` after
    ``start`` (or equal to it, ``may_be_empty``); None is open-ended. Raises the ValueError a
    model validator turns into the scenario's error."""
    if end is None or end > start or (may_be_empty and end == start):
        return
    raise ValueError(f"end ({end}) must be {'>=' if may_be_empty else '>'} start ({start})")


def _at_least(value: float, name: str, info: ValidationInfo, floor: str) -> float | None:
    """Field ``name``'s ``value`` checked against the earlier field ``floor`` (returned; None
    when it was invalid itself, reported on its own). Called by a field validator, not a model
    one: the error then names ``name``, the field to fix."""
    low: float | None = info.data.get(floor)
    if low is not None and value < low:
        raise ValueError(f"{name} ({value:g}) must be >= {floor} ({low:g})")
    return low


class Model(BaseModel):
    """Strict, immutable base: unknown keys are errors, values are checked at construction."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


# --- latency distributions -------------------------------------------------------------------


class Constant(Model):
    """Always ``value`` seconds."""

    dist: Literal["constant"] = "constant"
    value: Annotated[NonNeg, TIME] = Field(0.01, description="the latency")


class UniformLatency(Model):
    """Any time in [``low``, ``high``] equally likely."""

    dist: Literal["uniform"]
    low: NonNeg = Field(description="the shortest")
    high: NonNeg = Field(description="the longest")

    @field_validator("high")
    @classmethod
    def _ordered(cls, high: float, info: ValidationInfo) -> float:
        _at_least(high, "high", info, "low")
        return high


class Exponential(Model):
    """Memoryless: an exponential with the given ``mean``."""

    dist: Literal["exponential"]
    mean: Pos = Field(description="the mean (and the standard deviation)")


class Normal(Model):
    """A normal with ``mean`` and ``std``, made non-negative as ``negative`` says.

    A latency cannot be negative, yet a normal with a large ``std`` draws below 0 often (a
    quarter of the time at std = 1.5 * mean), so what happens to those draws shapes the result
    and is the user's choice, not a silent clip:

    - ``clip`` (the default, what retrysim always did): max(0, x). Every negative draw becomes
      exactly 0 s, a point mass at 0 holding Phi(-mean/std) of the draws: instant responses.
    - ``reflect``: |x|, the folded normal. No point mass; the draws that would fall below 0 land
      between 0 and mean instead.

    Both raise the mean above ``mean`` once std is comparable to it; capacity estimates use the
    mean of what is drawn (``retrysim.sim.latency.mean_of``). ``std = 0`` is a constant.
    """

    dist: Literal["normal"]
    mean: NonNeg = Field(description="the normal's mean, before negative draws are made >= 0")
    std: NonNeg = Field(description="its standard deviation")
    negative: Literal["clip", "reflect"] = Field(
        "clip",
        description=(
            "what a draw below 0 becomes: clip = 0 s (a point mass at 0 holding Phi(-mean/std) "
            "of the draws), reflect = |x| (a folded normal)"
        ),
    )


class Lognormal(Model):
    """A right-skewed latency given by its ``median`` and its ``p99`` (the tail)."""

    dist: Literal["lognormal"]
    median: Pos = Field(description="p50: half of the draws are shorter")
    p99: Pos = Field(description="99% of the draws are shorter; at least the median")

    @field_validator("p99")
    @classmethod
    def _tail(cls, p99: float, info: ValidationInfo) -> float:
        median = _at_least(p99, "p99", info, "median")
        if median is not None and p99 > median * MAX_TAIL_RATIO:
            raise ValueError(
                f"p99 ({p99:g}) must be at most {MAX_TAIL_RATIO:g} times the median ({median:g})"
            )
        return p99


class Gamma(Model):
    """A gamma with the given ``mean`` and ``shape`` (its scale is mean / shape).

    A right-skewed latency with a lighter tail than a lognormal's: shape 1 is an exponential, a
    larger shape a narrower peak about the mean (std = mean / sqrt(shape)), a smaller one most
    draws short and a long tail. Drawing from it needs scipy (``pip install 'retrysim[fit]'``,
    what ``retrysim fit`` needs too); validating a scenario does not.
    """

    dist: Literal["gamma"]
    mean: Pos = Field(description="the mean (shape x scale)")
    shape: GammaShape = Field(
        description=(
            "k, the spread: std = mean / sqrt(k); 1 is an exponential, above 1 a peak, below 1 "
            "mostly short draws and a long tail"
        )
    )


class Weibull(Model):
    """A Weibull with ``shape`` k and ``scale`` s: a uniform u draws s * (-ln(1 - u))^(1/k)."""

    dist: Literal["weibull"]
    shape: WeibullShape = Field(
        description=(
            "k: below 1 a long tail, 1 an exponential, about 3.6 nearly symmetric, above "
            "that ever narrower about the scale"
        )
    )
    scale: Pos = Field(description="s: 63.2% of the draws are shorter, whatever the shape")


class Empirical(Model):
    """A latency read off measured quantiles: ``quantiles[i]`` at probability i/N.

    N + 1 values, the shortest (p0) first and the longest (p100) last, evenly spaced in
    probability; a draw falls between two neighbours, uniformly (the quantile function is
    straight between them), so nothing is drawn outside [q0, qN].
    """

    dist: Literal["empirical"]
    quantiles: Quantiles = Field(
        description=(
            "q0 to qN at probabilities 0, 1/N, ..., 1: 2 or more, non-decreasing, the shortest "
            "first; between neighbours every time is equally likely"
        )
    )

    @field_validator("quantiles", mode="before")
    @classmethod
    def _a_list(cls, value: Any) -> Any:
        """One line for a value that is no list, or a list too short or too long."""
        allowed = (
            f"allowed: a list of 2 to {MAX_QUANTILES} times in seconds, the shortest (p0) first "
            "and the longest (p100) last"
        )
        if not isinstance(value, list | tuple):
            raise ValueError(f"{reprlib.repr(value)} is no list; {allowed}")
        if not 2 <= len(value) <= MAX_QUANTILES:
            raise ValueError(f"a list of {len(value)}; {allowed}")
        return value

    @field_validator("quantiles")
    @classmethod
    def _sorted(cls, quantiles: tuple[float, ...]) -> tuple[float, ...]:
        for i in range(1, len(quantiles)):
            if quantiles[i] < quantiles[i - 1]:
                raise ValueError(
                    f"quantiles.{i} ({quantiles[i]:g}) is below quantiles.{i - 1} "
                    f"({quantiles[i - 1]:g}); allowed: non-decreasing values, the shortest first"
                )
        return quantiles


def empirical_mean(quantiles: tuple[float, ...]) -> float:
    """The mean of an :class:`Empirical` latency: the integral of its piecewise-linear
    quantile function over [0, 1], each step's trapezoid (q[i] + q[i+1]) / 2N. Exact, so the
    engine's capacity estimate and the lint's bound share it."""
    n = len(quantiles) - 1
    mean = (math.fsum(quantiles) - (quantiles[0] + quantiles[-1]) / 2) / n
    return min(max(mean, quantiles[0]), quantiles[-1])  # rounding aside, it lies between


Latency = Annotated[
    Constant | UniformLatency | Exponential | Normal | Lognormal | Gamma | Weibull | Empirical,
    Field(discriminator="dist"),
    SECONDS,
]


def always_zero(latency: Any) -> bool:
    """Whether a latency distribution can only ever draw 0 seconds."""
    match latency:
        case Constant(value=value):
            return value == 0
        case UniformLatency(high=high):
            return high == 0
        case Normal(mean=mean, std=std):
            return mean == 0 and std == 0
        case Empirical(quantiles=quantiles):
            return quantiles[-1] == 0
    return False


def latency_choices(field: str) -> tuple[str, ...]:
    """The values a latency field can take when they are a fixed set, read from the models.

    ``dist`` gives the distribution names, ``negative`` the normal's clip/reflect; any other
    field (a number) gives (). Completion (the shell's and ``--set``'s) offers these, so a new
    distribution or choice completes without an edit there.
    """
    found: list[str] = []
    for model in get_args(get_args(Latency)[0]):
        info = model.model_fields.get(field)
        if info is not None and get_origin(info.annotation) is Literal:
            found += [str(v) for v in get_args(info.annotation) if str(v) not in found]
    return tuple(found)


def latency_from_number(value: Any) -> Any:
    """Let ``latency = 0.02`` mean a constant latency."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"dist": "constant", "value": value}
    return value


def numbers_as_constant(data: Any, keys: Collection[str]) -> Any:
    """A model's raw input with each of ``keys`` that is a plain number made a constant
    distribution (``latency_from_number``); what is not a dict is left to the model."""
    if isinstance(data, dict):
        return {k: latency_from_number(v) if k in keys else v for k, v in data.items()}
    return data
