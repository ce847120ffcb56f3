"""Backoff profiles as objects in a registry, in tenacity's style: one small object per formula.

A profile owns everything that differs between wait formulas: its formula as text, the tenacity
wait strategy it builds, the smallest and largest wait it can give before retry n, what
``min_wait`` means in it, which errors it retries, and its colour in figures. Nothing else in
retrysim dispatches on a profile's name; ``register_profile`` adds one.

Two numbers drive every formula: the exponential's ``base`` and a ``floor`` no wait goes below.
With ``multiplier`` unset, ``base`` is ``min_wait`` and there is no floor (the ``bindu`` profile,
as shipped, uses base 1 and ``min_wait`` as the floor). With ``multiplier`` set, ``base`` is the
multiplier and ``min_wait`` is the floor: exactly tenacity's ``wait_exponential(multiplier, min,
max)`` and ``wait_random_exponential(multiplier, min, max)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tenacity import (
    retry_if_exception_type,
    wait_exponential,
    wait_exponential_jitter,
    wait_none,
    wait_random,
    wait_random_exponential,
)
from tenacity.retry import retry_base
from tenacity.wait import wait_base

from retrysim.names import PROFILES as BUILTIN_PROFILES
from retrysim.retry.classify import is_transient, retry_if_transient
from retrysim.retry.exceptions import BINDU_RETRYABLE, DEFAULT_RETRYABLE
from retrysim.retry.waits import (
    capped_exponential,
    wait_capped,
    wait_decorrelated_jitter,
    wait_equal_jitter,
)


@dataclass(frozen=True)
class Shape:
    """The numbers a profile's formula is evaluated with, resolved from the policy options."""

    operation: str
    base: float  # the exponential's base: seconds before the first retry, before clamping
    floor: float  # no wait is shorter (0: none)
    max_wait: float
    jitter: float


class Profile:
    """A backoff profile. Subclasses set the class attributes and the two methods."""

    name: str
    formula: str
    min_wait_means: str  # what min_wait does in this profile, with multiplier unset
    #: Its colour in figures: one of Okabe and Ito's, for colour-blind readers (spelled here,
    #: below the plots layer; retrysim/plots/palette.py names them, tests/test_palette.py checks).
    colour: str
    retryable: tuple[type[BaseException], ...] = DEFAULT_RETRYABLE
    floors_by_default = False  # min_wait is a floor even without a multiplier
    #: What the errors column of ``retrysim errors`` and the docs say this profile retries.
    retries_what = "transient errors: builtin and client libraries' (retrysim.retry.classify)"

    def retry(self) -> retry_base:
        """The tenacity retry strategy: transient errors (:func:`is_transient`) by default."""
        return retry_if_transient()

    def retries(self, error: BaseException) -> bool:
        """Whether :meth:`retry` retries ``error`` (the same decision, without a call state)."""
        return is_transient(error)

    def shape(
        self,
        operation: str,
        min_wait: float,
        max_wait: float,
        jitter: float,
        multiplier: float | None,
    ) -> Shape:
        """Resolve base and floor from the policy numbers (see the module docstring)."""
        if multiplier is None:
            base = self.default_base(min_wait)
            floor = min_wait if self.floors_by_default else 0.0
        else:
            base, floor = multiplier, min_wait
        return Shape(operation, base, floor, max_wait, jitter)

    def default_base(self, min_wait: float) -> float:
        return min_wait

    def wait(self, shape: Shape) -> wait_base:
        """The tenacity wait strategy (tenacity's own wherever it has one)."""
        raise NotImplementedError

    def raw_range(self, shape: Shape, n: int) -> tuple[float, float]:
        """Smallest and largest wait before retry n, before the floor is applied."""
        raise NotImplementedError

    def wait_range(self, shape: Shape, n: int) -> tuple[float, float]:
        """Smallest and largest possible wait before retry ``n`` (1 = the first retry)."""
        lo, hi = self.raw_range(shape, n)
        if shape.floor > 0:
            return max(shape.floor, lo), max(shape.floor, hi)
        return lo, hi

    def __repr__(self) -> str:
        return f"<profile {self.name}: {self.formula}>"


def _pow2(exponent: int) -> float:
    return math.inf if exponent >= 1024 else 2.0**exponent


class Documented(Profile):
    name = "documented"
    formula = "min(max_wait, min_wait*2^(n-1) + U(0, jitter))"
    min_wait_means = "the base: retry 1 waits min_wait plus up to jitter"
    colour = "#0072B2"  # Okabe-Ito blue

    def wait(self, shape: Shape) -> wait_base:
        if shape.base == 0:
            # tenacity's exponential of a zero base overflows to its cap past retry 1024, so
            # the formula with a zero base is written out: min(max_wait, U(0, jitter)).
            return wait_capped(wait_random(0, shape.jitter), shape.max_wait)
        return wait_exponential_jitter(
            multiplier=shape.base, max=shape.max_wait, jitter=shape.jitter, min=shape.floor
        )

    def raw_range(self, shape: Shape, n: int) -> tuple[float, float]:
        scaled = capped_exponential(shape.base, shape.max_wait, n)
        grown = shape.base * _pow2(n - 1) if shape.base > 0 else 0.0  # not 0 * inf, a nan
        return scaled, min(shape.max_wait, grown + shape.jitter)


class Bindu(Profile):
    name = "bindu"
    formula = (
        "U(min_wait, clamp(2^(n-1), min_wait, max_wait)); "
        "storage: clamp(2^(n-1), min_wait, max_wait)"
    )
    min_wait_means = "a floor; the exponential's base is 1 s (storage: no jitter at all)"
    colour = "#D55E00"  # Okabe-Ito vermillion
    retryable = BINDU_RETRYABLE
    floors_by_default = True
    retries_what = "the shipped set: builtin ConnectionError family, TimeoutError, any OSError"

    def retry(self) -> retry_base:
        return retry_if_exception_type(self.retryable)

    def retries(self, error: BaseException) -> bool:
        return isinstance(error, self.retryable)

    def default_base(self, min_wait: float) -> float:
        return 1.0

    def wait(self, shape: Shape) -> wait_base:
        kind = wait_exponential if shape.operation == "storage" else wait_random_exponential
        return kind(multiplier=shape.base, min=shape.floor, max=shape.max_wait)

    def raw_range(self, shape: Shape, n: int) -> tuple[float, float]:
        top = min(shape.max_wait, capped_exponential(shape.base, math.inf, n))
        return (top if shape.operation == "storage" else 0.0), top


class FullJitter(Profile):
    name = "full_jitter"
    formula = "U(0, min(max_wait, min_wait*2^(n-1)))"
    min_wait_means = "the base: retry 1 waits U(0, min_wait)"
    colour = "#009E73"  # Okabe-Ito bluish green

    def wait(self, shape: Shape) -> wait_base:
        if shape.base == 0:
            return wait_none()
        return wait_random_exponential(multiplier=shape.base, min=shape.floor, max=shape.max_wait)

    def raw_range(self, shape: Shape, n: int) -> tuple[float, float]:
        return 0.0, capped_exponential(shape.base, shape.max_wait, n)


class EqualJitter(Profile):
    name = "equal_jitter"
    formula = "v/2 + U(0, v/2), v = min(max_wait, min_wait*2^(n-1))"
    min_wait_means = "the base: retry 1 waits U(min_wait/2, min_wait)"
    colour = "#CC79A7"  # Okabe-Ito reddish purple

    def wait(self, shape: Shape) -> wait_base:
        return wait_equal_jitter(multiplier=shape.base, max=shape.max_wait, min=shape.floor)

    def raw_range(self, shape: Shape, n: int) -> tuple[float, float]:
        scaled = capped_exponential(shape.base, shape.max_wait, n)
        return scaled / 2, scaled


class Decorrelated(Profile):
    name = "decorrelated"
    formula = "min(max_wait, U(min_wait, 3*previous)), previous starts at min_wait"
    min_wait_means = "the base and the smallest wait; each wait is U(min_wait, 3x the previous)"
    colour = "#E69F00"  # Okabe-Ito orange

    def wait(self, shape: Shape) -> wait_base:
        return wait_decorrelated_jitter(base=shape.base, max=shape.max_wait, min=shape.floor)

    def raw_range(self, shape: Shape, n: int) -> tuple[float, float]:
        base, cap = shape.base, shape.max_wait
        if base <= 0:
            return 0.0, 0.0
        top = cap if n >= 647 else min(cap, base * 3.0**n)  # 3**647 overflows a float
        return min(cap, base), top


class Exponential(Profile):
    name = "exponential"
    formula = "min(max_wait, min_wait*2^(n-1)) (no jitter)"
    min_wait_means = "the base: retry 1 waits exactly min_wait"
    colour = "#000000"  # Okabe-Ito black

    def wait(self, shape: Shape) -> wait_base:
        if shape.base == 0:
            return wait_none()
        return wait_exponential(multiplier=shape.base, min=shape.floor, max=shape.max_wait)

    def raw_range(self, shape: Shape, n: int) -> tuple[float, float]:
        scaled = capped_exponential(shape.base, shape.max_wait, n)
        return scaled, scaled


#: Every known profile by name; the built-in ones first, in the order the docs list them.
REGISTRY: dict[str, Profile] = {}


def register_profile(profile: Profile) -> Profile:
    """Add (or replace) a profile; settings, scenarios and the CLI accept its name at once."""
    REGISTRY[profile.name] = profile
    return profile


for _profile in (Documented(), Bindu(), FullJitter(), EqualJitter(), Decorrelated(), Exponential()):
    register_profile(_profile)
assert tuple(REGISTRY) == BUILTIN_PROFILES, "names.PROFILES lists the built-in profiles in order"


def get_profile(name: str) -> Profile:
    """The profile called ``name``; a ValueError lists the known ones."""
    try:
        return REGISTRY[name]
    except KeyError:
        allowed = ", ".join(repr(known) for known in REGISTRY)
        raise ValueError(f"unknown profile {name!r}; allowed: {allowed}") from None


def check_profile(name: str) -> str:
    """``name`` if it is a known profile (the validator settings and options share)."""
    return get_profile(name).name


def profile_colour(name: str, default: str) -> str:
    """A profile's colour in figures, or ``default`` for anything that is not a profile name."""
    profile = REGISTRY.get(name)
    return default if profile is None else profile.colour
