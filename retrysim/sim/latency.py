"""Latency distributions sampled by inverse CDF from one uniform draw.

One uniform in, one latency out: draws stay counter-based (see ``streams``), so the engine and
the asyncio cross-check compute the same latency for the same (call, attempt).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist
from typing import Literal

from retrysim.model.scenario import Constant, Exponential, Lognormal, Normal, UniformLatency

Sampler = Callable[[float], float]
_Z99 = NormalDist().inv_cdf(0.99)
_STD = NormalDist()


def sampler(dist: Constant | UniformLatency | Exponential | Normal | Lognormal) -> Sampler:
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
    raise TypeError(f"unknown latency distribution {dist!r}")


def mean_of(dist: Constant | UniformLatency | Exponential | Normal | Lognormal) -> float:
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
    raise TypeError(f"unknown latency distribution {dist!r}")


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
