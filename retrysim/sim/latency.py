"""Latency distributions sampled by inverse CDF from one uniform draw.

One uniform in, one latency out: draws stay counter-based (see ``streams``), so the engine and
the asyncio cross-check compute the same latency for the same (call, attempt). Each sampler is
one plain formula of u (the gamma's is scipy's inverse regularized incomplete gamma, imported
when a gamma sampler is built, so that the engine runs without scipy until a scenario asks for
a gamma).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist
from typing import Literal

from retrysim.errors import BadInputError
from retrysim.model.base import empirical_mean
from retrysim.model.scenario import (
    Constant,
    Empirical,
    Exponential,
    Gamma,
    Lognormal,
    Normal,
    UniformLatency,
    Weibull,
)

Sampler = Callable[[float], float]
#: Every latency distribution a scenario can hold (the members of ``model.base.Latency``).
Dist = Constant | UniformLatency | Exponential | Normal | Lognormal | Gamma | Weibull | Empirical
_Z99 = NormalDist().inv_cdf(0.99)
_STD = NormalDist()

#: The extra that brings scipy, named when a gamma latency is drawn without it.
FIT_EXTRA = "retrysim[fit]"


class MissingScipyError(BadInputError):
    """A scenario draws from a gamma latency where scipy (``retrysim[fit]``) is not installed."""


def sampler(dist: Dist) -> Sampler:
    """A function u -> latency (seconds) for ``dist``, u uniform in [0, 1)."""
    match dist:
        case Constant(value=value):
            return lambda u: value
        case UniformLatency(low=low, high=high):
            return lambda u: low + (high - low) * u
        case Exponential(mean=mean):
            return lambda u: -mean * math.log1p(-u)
        case Normal(mean=mean, std=std, negative="reflect"):
            return lambda u: abs(mean + std * _inv_cdf(u))
        case Normal(mean=mean, std=std):
            return lambda u: max(0.0, mean + std * _inv_cdf(u))
        case Lognormal(median=median, p99=p99):
            mu, sigma = math.log(median), math.log(p99 / median) / _Z99
            return lambda u: math.exp(mu + sigma * _inv_cdf(u))
        case Gamma(mean=mean, shape=shape):
            inverse, scale = _gammaincinv(), mean / shape
            return lambda u: scale * float(inverse(shape, u))
        case Weibull(shape=shape, scale=scale):
            power = 1 / shape
            return lambda u: scale * (-math.log1p(-u)) ** power
        case Empirical(quantiles=quantiles):
            return _interpolate(quantiles)
    raise TypeError(f"unknown latency distribution {dist!r}")


def mean_of(dist: Dist) -> float:
    """Expected value of what :func:`sampler` draws, for capacity estimates.

    For the normal that is the mean after negative draws are clipped or reflected, not the
    ``mean`` parameter: a server's capacity is concurrency over the mean service time it
    really sees.
    """
    match dist:
        case Constant(value=value):
            return value
        case UniformLatency(low=low, high=high):
            return (low + high) / 2
        case Exponential(mean=mean):
            return mean
        case Normal(mean=mean, std=std, negative=negative):
            return normal_mean(mean, std, negative)
        case Lognormal(median=median, p99=p99):
            sigma = math.log(p99 / median) / _Z99
            return median * math.exp(sigma * sigma / 2)
        case Gamma(mean=mean):
            return mean
        case Weibull(shape=shape, scale=scale):
            return scale * math.gamma(1 + 1 / shape)
        case Empirical(quantiles=quantiles):
            return empirical_mean(quantiles)
    raise TypeError(f"unknown latency distribution {dist!r}")


def _gammaincinv() -> Callable[[float, float], float]:
    """scipy's inverse of the regularized lower incomplete gamma P(k, x): P(k, x) = u at x =
    gammaincinv(k, u), the quantile of a gamma of shape k and scale 1. A one-line
    :class:`MissingScipyError` naming the extra when scipy is not installed."""
    try:  # untyped unless scipy-stubs is installed, which retrysim does not require
        from scipy.special import gammaincinv  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        raise MissingScipyError(
            'a gamma latency (dist = "gamma") needs scipy, which is not installed: '
            f"pip install '{FIT_EXTRA}'"
        ) from None
    found: Callable[[float, float], float] = gammaincinv
    return found


def _interpolate(quantiles: tuple[float, ...]) -> Sampler:
    """The empirical quantile function: u in [i/N, (i+1)/N] falls on the straight line from
    q[i] to q[i+1]. u * N is floored to the step, kept below N for a u that rounds up to 1;
    the min keeps a rounding of q[i] + (q[i+1] - q[i]) above q[i+1] from passing it, so draws
    never decrease as u grows, and none exceeds the last quantile."""
    q, steps = quantiles, len(quantiles) - 1

    def draw(u: float) -> float:
        x = u * steps
        i = min(int(x), steps - 1)
        return min(q[i] + (q[i + 1] - q[i]) * (x - i), q[i + 1])

    return draw


def normal_mean(mu: float, s: float, negative: Literal["clip", "reflect"]) -> float:
    """The mean of max(0, X) (``clip``) or |X| (``reflect``) for X ~ Normal(mu, s), mu >= 0.

    clip: mu * Phi(mu/s) + s * phi(mu/s). reflect (the folded normal):
    s * sqrt(2/pi) * exp(-mu^2 / 2s^2) + mu * (1 - 2 Phi(-mu/s)), written with erf. Both are mu
    when s is 0 (a constant) and tend to mu as s / mu falls (no mass below 0 to move).
    """
    if s == 0:
        return mu
    z = mu / s  # inf for a subnormal s: Phi(z) = 1 and phi(z) = 0, the constant mu again
    density = math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    if negative == "reflect":
        return 2 * s * density + mu * math.erf(z / math.sqrt(2))
    return mu * 0.5 * math.erfc(-z / math.sqrt(2)) + s * density


def _inv_cdf(u: float) -> float:
    # Keep u inside (0, 1): a draw of exactly 0 would be -inf.
    return _STD.inv_cdf(min(max(u, 1e-300), 1 - 2**-53))
