"""The latency families a fit chooses from, as scipy distributions and as scenario fields.

Each parametric family is a ``scipy.stats`` distribution with its location fixed at 0 (a
latency starts at 0): lognormal (``lognorm``), gamma (``gamma``) and Weibull (``weibull_min``);
the empirical one is the N+1 quantiles at probabilities i/N, linear in between, which is how a
scenario's ``dist = "empirical"`` draws. Durations that are all one value (a tier that only
forwards, a simulated constant) are a ``constant``, which no family of location 0 can fit.
:meth:`Candidate.scenario` writes each in the scenario's own terms (the lognormal by its
median and p99, as everywhere in retrysim).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from retrysim.fit import scipy_api
from retrysim.fit.observations import Floats

PARAMETRIC = ("lognormal", "gamma", "weibull")
FAMILIES = (*PARAMETRIC, "empirical")
#: z of the normal's 0.99 quantile: a lognormal's p99 is median * exp(sigma * Z99).
Z99 = 2.3263478740408408
#: Significant digits written for a fitted number: more than any fit's precision.
DIGITS = 6


def scipy_name(family: str) -> str:
    return {"lognormal": "lognorm", "gamma": "gamma", "weibull": "weibull_min"}[family]


def shape_key(family: str) -> str:
    """The name of a family's shape parameter in scipy (its scale is ``scale``)."""
    return {"lognormal": "s", "gamma": "a", "weibull": "c"}[family]


def rounded(value: float, digits: int = DIGITS) -> float:
    """``value`` to ``digits`` significant digits, so the written file says what the fit can
    tell and the same input gives the same text."""
    if value == 0 or not math.isfinite(value):
        return value
    return float(f"{value:.{digits}g}")


@dataclass(frozen=True)
class Candidate:
    """One family with its parameters: ``shape`` and ``scale`` (scipy's, location 0), or the
    empirical ``quantiles`` (N+1 values at probabilities i/N)."""

    family: str
    shape: float = math.nan
    scale: float = math.nan
    quantiles: tuple[float, ...] = ()

    @property
    def constant(self) -> bool:
        return self.family == "constant"

    def frozen(self) -> Any:
        """The frozen ``scipy.stats`` distribution (parametric families only)."""
        stats = scipy_api.stats()

        dist = getattr(stats, scipy_name(self.family))
        return dist(self.shape, loc=0, scale=self.scale)

    def cdf(self, x: Floats) -> Floats:
        if self.constant:
            return np.where(np.asarray(x) >= self.scale, 1.0, 0.0)
        if self.family == "empirical":
            q = np.asarray(self.quantiles)
            return np.interp(x, q, np.linspace(0.0, 1.0, len(q)), left=0.0, right=1.0)
        return np.asarray(self.frozen().cdf(x), dtype=np.float64)

    def ppf(self, p: Floats) -> Floats:
        if self.constant:
            return np.full(np.shape(p), self.scale)
        if self.family == "empirical":
            q = np.asarray(self.quantiles)
            return np.asarray(np.interp(p, np.linspace(0.0, 1.0, len(q)), q), dtype=np.float64)
        return np.asarray(self.frozen().ppf(p), dtype=np.float64)

    def quantile(self, p: float) -> float:
        return float(self.ppf(np.array([p]))[0])

    def mean(self) -> float:
        if self.constant:
            return self.scale
        if self.family == "empirical":
            q = np.asarray(self.quantiles)
            return float(np.mean((q[1:] + q[:-1]) / 2))  # linear between quantiles
        return float(self.frozen().mean())

    def scenario(self) -> dict[str, Any]:
        """The scenario's latency table for this candidate."""
        if self.constant:
            return {"dist": "constant", "value": rounded(self.scale)}
        if self.family == "lognormal":
            return {
                "dist": "lognormal",
                "median": rounded(self.scale),
                "p99": rounded(self.scale * math.exp(self.shape * Z99)),
            }
        if self.family == "gamma":
            return {
                "dist": "gamma",
                "mean": rounded(self.shape * self.scale),
                "shape": rounded(self.shape),
            }
        if self.family == "weibull":
            return {"dist": "weibull", "shape": rounded(self.shape), "scale": rounded(self.scale)}
        return {"dist": "empirical", "quantiles": [rounded(q) for q in self.quantiles]}

    def parameters(self) -> dict[str, Any]:
        """scipy's parameters, for the report (``loc`` is always 0)."""
        if self.constant:
            return {"value": self.scale}
        if self.family == "empirical":
            return {"quantiles": list(self.quantiles)}
        return {shape_key(self.family): self.shape, "loc": 0.0, "scale": self.scale}


@dataclass(frozen=True)
class Distance:
    """One candidate's held-out distance: KS ``d`` and its p-value (None for binned data,
    where D is taken at the bucket bounds only and has no exact p-value; ``chi2_p`` is the
    chi-square test's there)."""

    family: str
    d: float
    p: float | None
    chi2_p: float | None = None
    loglik: float | None = None  # mean held-out log-likelihood per observation (parametric)

    def to_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "ks": self.d,
            "p": self.p,
            "chi2_p": self.chi2_p,
            "loglik": self.loglik,
        }


def fit_samples(family: str, samples: Floats) -> Candidate:
    """``family`` fitted to positive ``samples`` by scipy's maximum likelihood, location 0."""
    import warnings

    stats = scipy_api.stats()

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        shape, _, scale = getattr(stats, scipy_name(family)).fit(samples, floc=0)
    return Candidate(family, float(shape), float(scale))


def empirical(samples: Floats, n: int) -> Candidate:
    """The N+1 sample quantiles at probabilities i/N (N = ``n``)."""
    levels = np.linspace(0.0, 1.0, n + 1)
    return Candidate("empirical", quantiles=tuple(float(q) for q in np.quantile(samples, levels)))


def from_cdf(edges: npt.NDArray[np.float64], cumulative: Floats, n: int) -> Candidate:
    """The empirical candidate of binned data: linear within each bucket, from 0 up to the
    last finite bound (the caller makes sure nothing fell beyond it)."""
    xs = np.concatenate([[0.0], edges])
    ps = np.concatenate([[0.0], cumulative])
    levels = np.linspace(0.0, 1.0, n + 1)
    upper = np.clip(np.searchsorted(ps, levels, side="left"), 1, len(ps) - 1)
    low, high = ps[upper - 1], ps[upper]
    share = np.divide(levels - low, high - low, out=np.ones_like(levels), where=high > low)
    found = xs[upper - 1] + share * (xs[upper] - xs[upper - 1])
    return Candidate("empirical", quantiles=tuple(float(q) for q in found))
