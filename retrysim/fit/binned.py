"""Latency families fitted to histogram bucket counts (Prometheus), where no single duration
is known: a binned maximum likelihood.

The likelihood of counts c_i in buckets (l_i, u_i] is prod (F(u_i) - F(l_i))^c_i, with F a
candidate's CDF from ``scipy.stats``; ``scipy.optimize.minimize`` finds its maximum over the
log of the shape and scale (so both stay positive), from a start given by scipy's own fit to
the bucket midpoints. Halves for held-out choice are made by giving every other observation
in each bucket to each half. Distances are the KS statistic at the bucket bounds (the only
points where the data's CDF is known) and a chi-square test of the held-out counts.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from retrysim.fit import scipy_api
from retrysim.fit.families import Candidate, Distance, fit_samples, from_cdf, rounded
from retrysim.fit.observations import Floats

#: Expected count each chi-square cell is made to reach by merging neighbouring buckets.
MIN_EXPECTED = 5.0


def halves(counts: Floats) -> tuple[Floats, Floats]:
    """Each bucket's observations dealt alternately to two halves (the odd one of an odd count
    going to the first half in even buckets and to the second in odd ones)."""
    whole = np.round(counts).astype(np.int64)
    first = whole // 2 + (whole % 2) * (np.arange(len(whole)) % 2 == 0)
    return first.astype(np.float64), (whole - first).astype(np.float64)


def _lower(edges: Floats) -> Floats:
    return np.concatenate([[0.0], edges[:-1]])


def log_likelihood(candidate: Candidate, edges: Floats, counts: Floats) -> float:
    mass = candidate.cdf(edges) - candidate.cdf(_lower(edges))
    used = counts > 0
    with np.errstate(divide="ignore"):
        return float(np.sum(counts[used] * np.log(np.maximum(mass[used], 1e-300))))


def fit(family: str, edges: Floats, counts: Floats) -> Candidate:
    """``family`` fitted to bucket ``counts`` by binned maximum likelihood (see the module
    docstring)."""
    optimize = scipy_api.optimize()

    start = _start(family, edges, counts)

    def minus(theta: Floats) -> float:
        shape, scale = math.exp(theta[0]), math.exp(theta[1])
        return -log_likelihood(Candidate(family, shape, scale), edges, counts)

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        found = optimize.minimize(
            minus,
            np.log([start.shape, start.scale]),
            method="Nelder-Mead",
            options={"xatol": 1e-6, "fatol": 1e-9, "maxiter": 4000},
        )
    return Candidate(family, math.exp(found.x[0]), math.exp(found.x[1]))


def _start(family: str, edges: Floats, counts: Floats) -> Candidate:
    """scipy's fit to each bucket's midpoint repeated by its count (at most 2,000 points): a
    start near the answer, so the binned optimum found is the global one."""
    lower, upper = _lower(edges), edges.copy()
    last = float(edges[np.isfinite(edges)][-1])
    upper[~np.isfinite(upper)] = 2 * last
    middles = np.where(lower > 0, np.sqrt(np.maximum(lower, 1e-12) * upper), upper / 2)
    weights = counts / max(counts.sum(), 1.0)
    repeats = np.round(weights * 2000).astype(np.int64)
    points = np.repeat(middles, repeats)
    return fit_samples(family, points[points > 0])


def empirical(edges: Floats, counts: Floats, quantiles: int) -> Candidate:
    finite = np.isfinite(edges)
    cumulative = np.cumsum(counts[finite]) / max(float(counts.sum()), 1.0)
    return from_cdf(edges[finite], cumulative, quantiles)


def distance(candidate: Candidate, edges: Floats, counts: Floats) -> Distance:
    """Held-out KS distance at the bucket bounds and the chi-square test's p-value."""
    stats = scipy_api.stats()

    total = float(counts.sum())
    finite = np.isfinite(edges)
    data_cdf = np.cumsum(counts)[finite] / total
    d = float(np.max(np.abs(data_cdf - candidate.cdf(edges[finite]))))
    expected = (candidate.cdf(edges) - candidate.cdf(_lower(edges))) * total
    observed, wanted = _merged(counts, expected)
    p = None
    if len(observed) > 3:
        wanted = wanted * observed.sum() / wanted.sum()
        ddof = 0 if candidate.family == "empirical" else 2
        p = float(stats.chisquare(observed, wanted, ddof=ddof).pvalue)
    loglik = None
    if candidate.family != "empirical":
        loglik = log_likelihood(candidate, edges, counts) / max(total, 1.0)
    return Distance(candidate.family, d, None, p, loglik)


def _merged(observed: Floats, expected: Floats) -> tuple[Floats, Floats]:
    """Neighbouring buckets merged until each expects at least :data:`MIN_EXPECTED`."""
    cells_o: list[float] = []
    cells_e: list[float] = []
    run_o = run_e = 0.0
    for o, e in zip(observed, expected, strict=True):
        run_o, run_e = run_o + float(o), run_e + float(e)
        if run_e >= MIN_EXPECTED:
            cells_o.append(run_o)
            cells_e.append(run_e)
            run_o = run_e = 0.0
    if cells_o and (run_o or run_e):
        cells_o[-1] += run_o
        cells_e[-1] += run_e
    return np.array(cells_o), np.array(cells_e)


def qq(candidate: Candidate, edges: Floats, counts: Floats) -> tuple[tuple[float, float], ...]:
    """(model quantile, data quantile) at each finite bucket bound: the data's quantile there
    is the bound itself, at the level the data's CDF reaches."""
    finite = np.isfinite(edges)
    levels = np.cumsum(counts)[finite] / max(float(counts.sum()), 1.0)
    pairs = []
    for level, bound in zip(levels, edges[finite], strict=True):
        if 0 < level < 1:
            pairs.append((rounded(candidate.quantile(float(level))), rounded(float(bound))))
    return tuple(pairs)
