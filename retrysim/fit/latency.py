"""The service latency: lognormal, gamma, Weibull or empirical, chosen on held-out data.

The requests are split in two halves, alternating in time order (so a drift over the day is
in both). Every candidate is fitted on the first half by scipy (maximum likelihood, location
0; binned data: :mod:`retrysim.fit.binned`) and judged on the second by its Kolmogorov-Smirnov
distance D (``scipy.stats.kstest``; binned data: at the bucket bounds). The rule:

    the parametric family with the smallest held-out D, unless the empirical one's D is
    smaller by more than the test's 5% critical distance for the held-out sample
    (1.358 / sqrt(n)): a parametric family is kept unless it is measurably worse. Families
    whose D is within half that distance of the smallest are more alike than the KS test
    can tell on this sample; among them the one with the highest held-out log-likelihood
    (``logpdf``, binned: each bucket's probability) wins, the more powerful judge of the two.

The chosen family is then fitted again on every request, and that is what is written. Only
successful requests count: a failed one ended early (refused at the door) or at a timeout,
and either would describe the fault or the client, not the service.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from retrysim.fit import binned, scipy_api
from retrysim.fit.families import (
    PARAMETRIC,
    Candidate,
    Distance,
    empirical,
    fit_samples,
    rounded,
)
from retrysim.fit.observations import Floats

#: Requests a latency fit needs: half to fit on, half to judge with (a KS test on fewer than
#: 50 tells families apart only when they differ grossly).
MIN_SAMPLES = 100
#: The KS test's 5% critical distance is this over sqrt(n) (large n).
KS_CRITICAL = 1.358
#: Points of the Q-Q data kept for a report's figure.
QQ_POINTS = 99
#: Durations whose interquartile range is below this share of their median are one value.
CONSTANT_SPREAD = 1e-3


@dataclass(frozen=True)
class LatencyFit:
    """The chosen ``candidate`` (fitted on all ``n`` requests) and every candidate's held-out
    distance (``n_test`` requests held out), the ``rule`` that chose, and Q-Q pairs (model
    quantile, held-out quantile) of the chosen family for a figure. ``held_out``: the held-out
    durations (empty for binned data); ``zeros``: durations of 0 left out (no family of
    location 0 has mass there)."""

    candidate: Candidate
    distances: tuple[Distance, ...]
    n: int
    n_test: int
    binned: bool
    rule: str
    qq: tuple[tuple[float, float], ...]
    held_out: Floats = field(default_factory=lambda: np.zeros(0))
    zeros: int = 0

    @property
    def family(self) -> str:
        return self.candidate.family

    def distance(self, family: str) -> Distance:
        return next(d for d in self.distances if d.family == family)

    def scenario(self) -> dict[str, Any]:
        return self.candidate.scenario()

    def to_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "scenario": self.scenario(),
            "parameters": self.candidate.parameters(),
            "median": self.candidate.quantile(0.5),
            "p99": self.candidate.quantile(0.99),
            "n": self.n,
            "n_test": self.n_test,
            "binned": self.binned,
            "rule": self.rule,
            "distances": [d.to_dict() for d in self.distances],
            "qq": [list(pair) for pair in self.qq],
            "zeros": self.zeros,
        }


def halves(samples: Floats) -> tuple[Floats, Floats]:
    """Alternate samples (in the order given: time order) to the fitting and held-out half."""
    return samples[0::2], samples[1::2]


def choose(distances: list[Distance], n_test: int) -> tuple[str, str]:
    """The family the rule picks (see the module docstring), and the rule as one line."""
    parametric = [d for d in distances if d.family in PARAMETRIC]
    closest = min(parametric, key=lambda d: (d.d, PARAMETRIC.index(d.family)))
    margin = KS_CRITICAL / math.sqrt(max(n_test, 1))
    found = next((d for d in distances if d.family == "empirical"), None)
    if found is not None and closest.d - found.d > margin:
        return "empirical", (
            f"empirical: its held-out D is {closest.d - found.d:.3g} below the closest "
            f"family's ({closest.family}), more than the 5% critical distance {margin:.3g}"
        )
    tied = [d for d in parametric if d.d - closest.d <= margin / 2 and d.loglik is not None]
    best = closest
    if len(tied) > 1 and closest in tied:
        best = max(tied, key=lambda d: (d.loglik or -math.inf, -PARAMETRIC.index(d.family)))
    why = f"{best.family}: smallest held-out D of the parametric families"
    if len(tied) > 1 and closest in tied:
        names = ", ".join(d.family for d in tied)
        why = (
            f"{best.family}: of the families whose held-out D is within half the 5% critical "
            f"distance of the smallest ({names}), the highest held-out log-likelihood"
        )
    return best.family, (
        f"{why}; the empirical one is not better by more than the 5% critical distance {margin:.3g}"
    )


def fit_samples_latency(samples: Floats, quantiles: int) -> LatencyFit | str:
    """The latency fit of durations in time order (seconds), or what is missing (one line)."""
    samples = samples[np.isfinite(samples)]
    zeros = int(np.count_nonzero(samples <= 0))
    positive = samples[samples > 0]
    if len(positive) < MIN_SAMPLES:
        return (
            f"{len(positive):,} successful requests with a positive duration; "
            f"a fit needs at least {MIN_SAMPLES}"
        )
    stats = scipy_api.stats()

    median = float(np.median(positive))
    if float(np.subtract(*np.percentile(positive, [75, 25]))) <= CONSTANT_SPREAD * median:
        return _constant(positive, median, zeros)
    train, test = halves(positive)
    candidates = [fit_samples(family, train) for family in PARAMETRIC]
    candidates.append(empirical(train, quantiles))
    distances = []
    for candidate in candidates:
        result = stats.kstest(test, candidate.cdf)
        loglik = None
        if candidate.family in PARAMETRIC:
            loglik = float(np.mean(candidate.frozen().logpdf(test)))
        distances.append(
            Distance(candidate.family, float(result.statistic), float(result.pvalue), None, loglik)
        )
    family, rule = choose(distances, len(test))
    chosen = empirical(positive, quantiles) if family == "empirical" else None
    chosen = chosen or fit_samples(family, positive)
    levels = (np.arange(1, QQ_POINTS + 1) - 0.5) / QQ_POINTS
    model = chosen.ppf(levels)
    data = np.quantile(test, levels)
    qq = tuple((rounded(float(m)), rounded(float(d))) for m, d in zip(model, data, strict=True))
    return LatencyFit(
        chosen, tuple(distances), len(positive), len(test), False, rule, qq, test, zeros
    )


def _constant(samples: Floats, median: float, zeros: int) -> LatencyFit:
    spread = float(np.max(np.abs(samples - median)))
    rule = (
        f"constant: the middle half of the durations spans at most {CONSTANT_SPREAD:g} of their "
        f"median (all lie within {spread:.3g} s of it), a point no family of location 0 fits"
    )
    candidate = Candidate("constant", scale=median)
    share = float(np.mean(np.abs(samples - median) <= CONSTANT_SPREAD * median))
    distance = Distance("constant", 1.0 - share, None)
    return LatencyFit(
        candidate, (distance,), len(samples), len(samples), False, rule, (), samples, zeros
    )


def fit_binned_latency(edges: Floats, counts: Floats, quantiles: int) -> LatencyFit | str:
    """The latency fit of histogram bucket counts (bounds in seconds, ``inf`` last), or what
    is missing (one line)."""
    total = round(float(counts.sum()))
    if total < MIN_SAMPLES:
        return f"{total:,} observations in the histogram; a fit needs at least {MIN_SAMPLES}"
    finite = int(np.count_nonzero(np.isfinite(edges)))
    if finite < 3:
        return f"the histogram has {finite} finite buckets; a fit needs at least 3"
    train, test = binned.halves(counts)
    candidates = [binned.fit(family, edges, train) for family in PARAMETRIC]
    beyond = float(counts[~np.isfinite(edges)].sum())
    if beyond == 0:
        candidates.append(binned.empirical(edges, train, quantiles))
    distances = [binned.distance(c, edges, test) for c in candidates]
    family, rule = choose(distances, int(test.sum()))
    if beyond > 0:
        rule += f"; no empirical candidate: {beyond:,.0f} observations beyond the last bound"
    if family == "empirical":
        chosen = binned.empirical(edges, counts, quantiles)
    else:
        chosen = binned.fit(family, edges, counts)
    qq = binned.qq(chosen, edges, test)
    return LatencyFit(chosen, tuple(distances), total, int(test.sum()), True, rule, qq)
