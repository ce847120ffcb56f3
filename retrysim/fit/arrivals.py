"""The arrival process: calls per second over time, Poisson or not, open or closed loop.

Calls are counted in bins (:func:`choose_bin_width`); the rate's changes are found by
:mod:`retrysim.fit.changepoints` (Poisson likelihood); a stretch whose rate departs from the
longest stretch's by more than the penalty is a ``schedule`` step, and the base rate is that
of all the others together. Whether the calls are Poisson is checked
within those stretches:

- the index of dispersion: sum over bins of (count - expected)^2 / expected, against the
  chi-square distribution with (bins - stretches) degrees of freedom (``scipy.stats.chi2``),
  two-sided: burstier than Poisson when it is large, more regular when it is small;
- with single arrival times, a KS test of the longest stretch's gaps times its rate against
  the unit exponential (``scipy.stats.kstest``; approximate, the rate being estimated).

A closed loop (each client calls again a think time after its previous call ends) shows as
clients whose calls never overlap and whose gap from one call's end to the next start is
far steadier than the gap between starts; it is written as ``kind = "closed"``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from retrysim.fit import scipy_api
from retrysim.fit.changepoints import departure, penalty, poisson, segments, steady_rate
from retrysim.fit.families import rounded
from retrysim.fit.observations import Floats, Observations

#: Calls an arrival fit needs.
MIN_CALLS = 20
#: Bin widths the rate is counted in, seconds: round numbers a reader can check.
NICE_WIDTHS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600)
#: Calls per bin wanted on average, and bins at most.
PER_BIN, MAX_BINS = 10, 1000
#: Calls per client a closed loop is judged on (fewer: open).
CLOSED_MIN_CALLS = 3


@dataclass(frozen=True)
class Step:
    """A stretch with its own rate: ``calls`` in ``[start, end)``, and ``departure``: twice
    the log-likelihood gain of its rate over the base rate, which beat the ``bar``."""

    start: float
    end: float
    rate: float
    calls: int = 0
    departure: float = math.nan
    bar: float = math.nan

    def scenario(self) -> dict[str, float]:
        return {
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "rate": rounded(self.rate),
        }

    def to_dict(self) -> dict[str, float]:
        return {
            "start": self.start,
            "end": self.end,
            "rate": self.rate,
            "calls": self.calls,
            "departure": self.departure,
            "bar": self.bar,
        }


@dataclass(frozen=True)
class Closed:
    """A closed loop: ``clients`` each calling again ``think_time`` after a call ends, first
    calls spread over ``ramp`` seconds; ``evidence``: the one line that says why."""

    clients: int
    think_time: float
    ramp: float
    evidence: str


@dataclass(frozen=True)
class ArrivalFit:
    """Calls per second: the base ``rate`` and ``schedule`` steps in ``[start, end)``; the
    counts per bin (``bin_starts``, ``counts`` of ``bin_width`` seconds) for a figure; the
    Poisson check (``dispersion`` index, its ``dof`` and two-sided ``p``; the gaps' KS ``ks_d``
    and ``ks_p``) and its ``verdict``; ``closed`` when the calls are a closed loop."""

    n: int
    start: float
    end: float
    rate: float
    schedule: tuple[Step, ...]
    bin_width: float
    bin_starts: Floats
    counts: Floats
    dispersion: float
    dof: int
    p: float
    verdict: str
    ks_d: float | None = None
    ks_p: float | None = None
    closed: Closed | None = None
    timed: bool = True
    notes: tuple[str, ...] = field(default_factory=tuple)

    def scenario(self) -> dict[str, Any]:
        """The scenario's ``clients.arrival``."""
        if self.closed is not None:
            return {"kind": "closed", "ramp": rounded(self.closed.ramp)}
        arrival: dict[str, Any] = {"kind": "poisson", "rate": rounded(self.rate)}
        if self.schedule:
            arrival["schedule"] = [step.scenario() for step in self.schedule]
        if self.start > 0:
            arrival["start"] = round(self.start, 3)
        return arrival

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "start": self.start,
            "end": self.end,
            "rate": self.rate,
            "schedule": [s.to_dict() for s in self.schedule],
            "bin_width": self.bin_width,
            "bin_starts": self.bin_starts.tolist(),
            "counts": self.counts.tolist(),
            "dispersion": self.dispersion,
            "dof": self.dof,
            "p": self.p,
            "verdict": self.verdict,
            "ks_d": self.ks_d,
            "ks_p": self.ks_p,
            "closed": None if self.closed is None else self.closed.__dict__,
            "scenario": self.scenario(),
            "notes": list(self.notes),
        }


def choose_bin_width(span: float, calls: int) -> float:
    """The smallest round width with :data:`PER_BIN` calls a bin on average and at most
    :data:`MAX_BINS` bins (the largest round width when none has)."""
    rate = calls / span if span > 0 else math.inf
    least = max(PER_BIN / rate if rate > 0 else math.inf, span / MAX_BINS)
    return next((float(w) for w in NICE_WIDTHS if w >= least), float(NICE_WIDTHS[-1]))


def window(times: Floats, width: float, known: tuple[float, float] | None) -> tuple[float, float]:
    """The window calls arrived in: a saved run's own, else from the start of the first call's
    bin to the last call, to the millisecond (a whole last bin would add time without calls,
    and read as a lull)."""
    if known is not None:
        return known
    start = math.floor(float(times[0]) / width) * width
    return start, math.floor(float(times[-1]) * 1000 + 1) / 1000


def fit_times(
    times: Floats,
    known: tuple[float, float] | None,
    width: float | None,
    alpha: float,
) -> ArrivalFit | str:
    """The arrival fit of call start times (sorted), or what is missing (one line)."""
    if len(times) < MIN_CALLS:
        return f"{len(times):,} calls; a rate over time needs at least {MIN_CALLS}"
    span = float(times[-1] - times[0]) or 1.0
    width = width or choose_bin_width(span, len(times))
    start, end = window(times, width, known)
    edges = np.arange(start, end, width)
    edges = np.append(edges[edges < end - width / 100], end)  # the last bin may be partial
    counts = np.histogram(times, bins=edges)[0].astype(np.float64)
    exposure = np.diff(edges)
    fit = _fit_counts(counts, exposure, edges, alpha)
    ks_d, ks_p = _gaps(times, fit["longest"])
    return ArrivalFit(
        n=len(times),
        start=start,
        end=end,
        rate=fit["rate"],
        schedule=fit["schedule"],
        bin_width=width,
        bin_starts=edges[:-1],
        counts=counts,
        dispersion=fit["dispersion"],
        dof=fit["dof"],
        p=fit["p"],
        verdict=_verdict(fit["p"], fit["dispersion"], alpha),
        ks_d=ks_d,
        ks_p=ks_p,
    )


def fit_counts(
    counts: Floats, starts: Floats | None, ends: Floats | None, alpha: float
) -> ArrivalFit | str:
    """The arrival fit of requests counted per interval between scrapes."""
    total = int(counts.sum())
    if starts is None or ends is None:
        return "the scrapes have no times (no timestamps, no --scrape-interval)"
    if total < MIN_CALLS or len(counts) < 2:
        return (
            f"{total:,} requests in {len(counts)} intervals; a rate over time needs "
            f"at least {MIN_CALLS} in 2"
        )
    edges = np.append(starts, ends[-1])
    fit = _fit_counts(counts, ends - starts, edges, alpha)
    return ArrivalFit(
        n=total,
        start=float(starts[0]),
        end=float(ends[-1]),
        rate=fit["rate"],
        schedule=fit["schedule"],
        bin_width=float(np.median(ends - starts)),
        bin_starts=starts,
        counts=counts,
        dispersion=fit["dispersion"],
        dof=fit["dof"],
        p=fit["p"],
        verdict=_verdict(fit["p"], fit["dispersion"], alpha),
    )


def _fit_counts(counts: Floats, exposure: Floats, edges: Floats, alpha: float) -> dict[str, Any]:
    """The base rate, the schedule steps and the dispersion check of counts per bin."""
    stats = scipy_api.stats()
    found = segments(counts, exposure, poisson)
    longest = max(found, key=lambda s: (s.w, -s.start))
    bar = penalty(len(counts))
    steady = steady_rate(longest)
    steps = [s for s in found if s != longest and departure(s, steady, poisson) > bar]
    rest = [s for s in found if s not in steps]
    base = sum(s.x for s in rest) / sum(s.w for s in rest)
    expected = base * exposure
    for step in steps:
        expected[step.start : step.stop] = step.rate * exposure[step.start : step.stop]
    used = expected > 0
    chi = float(np.sum((counts[used] - expected[used]) ** 2 / expected[used]))
    dof = int(np.count_nonzero(used)) - 1 - len(steps)
    if dof <= 0:
        p, index = math.nan, math.nan
    else:
        p = float(min(1.0, 2 * min(stats.chi2.sf(chi, dof), stats.chi2.cdf(chi, dof))))
        index = chi / dof
    schedule = tuple(
        Step(
            float(edges[s.start]),
            float(edges[s.stop]),
            s.rate,
            int(s.x),
            departure(s, steady, poisson),
            bar,
        )
        for s in steps
    )
    return {
        "rate": base,
        "schedule": schedule,
        "dispersion": index,
        "dof": dof,
        "p": p,
        "longest": (float(edges[longest.start]), float(edges[longest.stop]), longest.rate),
    }


def _verdict(p: float, index: float, alpha: float) -> str:
    if math.isnan(p):
        return "not checked: too few bins"
    if p >= alpha:
        return f"Poisson (not rejected at {alpha:g})"
    if index > 1:
        return f"not Poisson: burstier (over-dispersed, rejected at {alpha:g})"
    return f"not Poisson: more regular (under-dispersed, rejected at {alpha:g})"


def _gaps(times: Floats, longest: tuple[float, float, float]) -> tuple[float | None, float | None]:
    """KS test of the longest stretch's gaps, times its rate, against the unit exponential."""
    stats = scipy_api.stats()

    start, end, rate = longest
    inside = times[(times >= start) & (times < end)]
    if len(inside) < MIN_CALLS or rate <= 0:
        return None, None
    result = stats.kstest(np.diff(inside) * rate, "expon")
    return float(result.statistic), float(result.pvalue)


def closed_loop(observations: Observations, first: np.ndarray) -> Closed | None:
    """A closed loop, when the clients' calls say so (see the module docstring)."""
    if observations.client is None:
        return None
    call = observations.call if observations.call is not None else np.arange(len(observations))
    ends = observations.time + np.nan_to_num(observations.duration)
    ids, inverse = np.unique(call, return_inverse=True)
    call_end = np.full(len(ids), -np.inf)
    np.maximum.at(call_end, inverse, ends)
    starts = observations.time[first]
    clients = observations.client[first]
    finished = call_end[inverse[first]]
    order = np.lexsort((starts, clients))
    starts, clients, finished = starts[order], clients[order], finished[order]
    same = clients[1:] == clients[:-1]
    after_end = (starts[1:] - finished[:-1])[same]
    between = np.diff(starts)[same]
    per_client = np.bincount(clients)
    per_client = per_client[per_client > 0]
    if len(after_end) < MIN_CALLS or np.median(per_client) < CLOSED_MIN_CALLS:
        return None
    overlapping = float(np.mean(after_end < -1e-9))
    spread_end = float(np.subtract(*np.percentile(after_end, [75, 25])))
    spread_start = float(np.subtract(*np.percentile(between, [75, 25])))
    median_between = float(np.median(between))
    if overlapping > 0.01 or spread_end > 0.5 * spread_start or spread_end > 0.05 * median_between:
        return None
    think = max(0.0, float(np.median(after_end)))
    firsts = starts[np.concatenate([[True], ~same])]
    evidence = (
        f"closed loop: {len(per_client):,} clients' calls never overlap, and the gap from one "
        f"call's end to the next start (median {think:.4g} s, IQR {spread_end:.3g} s) is far "
        f"steadier than between starts (IQR {spread_start:.3g} s)"
    )
    return Closed(len(per_client), think, float(firsts.max()), evidence)
