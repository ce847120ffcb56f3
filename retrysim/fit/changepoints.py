"""Where a rate changes: seeded binary segmentation on a binomial or Poisson log-likelihood.

scipy has no change-point detection (``scipy.signal`` finds peaks, not changes in a rate, and
``ruptures``-style packages are not dependencies), so this module holds the one small
algorithm the fit needs, written to be read:

1. A sequence of units in time order, each with a count ``x`` and an exposure ``w``: a
   request (``x`` = 1 if it failed, ``w`` = 1), or a bin (failures among its requests; or its
   arrivals, ``w`` = its seconds).
2. A segment's maximised log-likelihood, from its sums X and W alone: binomial
   X log(X/W) + (W-X) log(1 - X/W), Poisson X log(X/W) - X (0 log 0 = 0).
3. The best single split of an interval is the one with the largest gain in log-likelihood,
   found for every split point at once from cumulative sums. It is a candidate when twice the
   gain exceeds the penalty 3 ln n (n: the observations, requests or bins of counts): a BIC
   in which a change costs three parameters (its rate, and its place, which is worth more
   than one parameter when it is chosen among n), so that the noise of a long log is not cut
   into windows.
4. The intervals searched are seeded (Kovacs, Li, Buehlmann and Munk's seeded binary
   segmentation, 2020): the whole sequence, then intervals half as long at each scale,
   overlapping by half (:func:`seeded_intervals`). Plain binary segmentation splits the whole
   first, and a short window in the middle of a long log moves the whole's best split too
   little to be seen; some seeded interval holds it in its middle, where it is.
5. Candidates are taken greedily, the largest gain first, skipping any whose interval holds
   a change already taken (its gain was measured across it) or that would leave a stretch
   shorter than ``min_size`` units; then each stretch left is split as plain binary
   segmentation would, while a split beats the penalty; up to ``max_changes`` in all. The
   same data give the same intervals and the same changes: nothing is random.

A stretch bounded by changes need not differ from the steady state itself (two windows cut
the steady state into three stretches with different noise). :func:`departure` says whether
it does: twice its log-likelihood gain at its own rate over the steady rate, against the same
penalty.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from retrysim.fit.observations import Floats

LogLikelihood = Callable[[Floats, Floats], Floats]
#: Changes found at most: a fit is a summary; a hundred windows would be the data again.
MAX_CHANGES = 20
#: The shortest seeded interval, in units, and a bound on how many intervals a scale has (a
#: million-request log is searched in intervals of at least 500 requests).
SHORTEST, MAX_INTERVALS = 4, 1000


def binomial(x: Floats, w: Floats) -> Floats:
    """Maximised binomial log-likelihood of segments with X failures among W trials."""
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(w > 0, x / np.where(w > 0, w, 1), 0.0)
        first = np.where(x > 0, x * np.log(np.where(p > 0, p, 1)), 0.0)
        rest = np.where(w - x > 0, (w - x) * np.log(np.where(p < 1, 1 - p, 1)), 0.0)
    return np.asarray(first + rest, dtype=np.float64)


def poisson(x: Floats, w: Floats) -> Floats:
    """Maximised Poisson log-likelihood of segments with X events over exposure W."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(w > 0, x / np.where(w > 0, w, 1), 0.0)
        first = np.where(x > 0, x * np.log(np.where(rate > 0, rate, 1)), 0.0)
    return np.asarray(first - x, dtype=np.float64)


@dataclass(frozen=True)
class Segment:
    """Units ``[start, stop)`` and their sums."""

    start: int
    stop: int
    x: float
    w: float

    @property
    def rate(self) -> float:
        return self.x / self.w if self.w else 0.0


def steady_rate(segment: Segment) -> float:
    """A stretch's rate for judging others against, with half an event added (Jeffreys):
    a steady state with no failure in it is not certain never to fail, and a window
    against it gains a finite, comparable amount."""
    return (segment.x + 0.5) / (segment.w + 1.0)


def departure(segment: Segment, rate: float, kind: LogLikelihood) -> float:
    """Twice the log-likelihood gain of ``segment`` at its own rate over ``rate`` (``kind``:
    :func:`binomial` or :func:`poisson`); compare it with :func:`penalty`."""
    x, w = np.array([segment.x]), np.array([segment.w])
    own = float(kind(x, w)[0])
    with np.errstate(divide="ignore"):
        if kind is binomial:
            at = _xlog(segment.x, rate) + _xlog(segment.w - segment.x, 1 - rate)
        else:
            at = _xlog(segment.x, rate) - rate * segment.w
    return 2 * (own - at)


def _xlog(count: float, p: float) -> float:
    """count * ln(p), 0 when count is 0 (and -inf when p is 0 and count is not)."""
    if count == 0:
        return 0.0
    return count * math.log(p) if p > 0 else -math.inf


def penalty(units: int) -> float:
    """What twice a split's gain must exceed to be kept (see the module docstring)."""
    return 3.0 * math.log(max(units, 2))


def seeded_intervals(n: int, shortest: int) -> list[tuple[int, int]]:
    """The whole ``[0, n)``, then at each scale intervals half as long as the last, each
    overlapping its neighbour by half, down to ``shortest`` units: a deterministic cover in
    which every stretch of the data is the middle of some interval about its size."""
    found = [(0, n)]
    length = n / 2
    while length >= shortest:
        step = length / 2
        for i in range(math.ceil((n - length) / step) + 1):
            start = round(i * step)
            found.append((start, min(n, round(i * step + length))))
        length /= 2
    return list(dict.fromkeys(found))


def segments(
    x: Floats,
    w: Floats,
    loglik: LogLikelihood,
    *,
    min_size: int = 1,
    max_changes: int = MAX_CHANGES,
    observations: int | None = None,
) -> list[Segment]:
    """The segments seeded binary segmentation finds (see the module docstring), in order.

    ``observations``: the n of the penalty, when it is not the units (binned requests: the
    requests, each one a binomial observation, not the bins)."""
    n = len(x)
    if n == 0:
        return []
    cx = np.concatenate([[0.0], np.cumsum(x, dtype=np.float64)])
    cw = np.concatenate([[0.0], np.cumsum(w, dtype=np.float64)])
    bar = penalty(observations or n)
    shortest = max(2 * min_size, SHORTEST, n // MAX_INTERVALS)
    candidates: list[tuple[float, int, int, int]] = []  # (-gain, start, stop, split)
    for start, stop in seeded_intervals(n, shortest):
        found = _best_split(cx, cw, start, stop, loglik, min_size)
        if found is not None and 2 * found[1] > bar:
            candidates.append((-found[1], start, stop, found[0]))
    cuts: list[int] = []
    for _, start, stop, split in sorted(candidates):
        if len(cuts) >= max_changes:
            break
        if any(start < cut < stop or abs(cut - split) < min_size for cut in cuts):
            continue  # its gain was measured across a change already taken
        cuts.append(split)
    while len(cuts) < max_changes:  # then plain binary segmentation inside what is left
        bounds = [0, *sorted(cuts), n]
        best = None
        for start, stop in itertools.pairwise(bounds):
            found = _best_split(cx, cw, start, stop, loglik, min_size)
            if found is not None and 2 * found[1] > bar and (best is None or found[1] > best[1]):
                best = found
        if best is None:
            break
        cuts.append(best[0])
    bounds = [0, *sorted(cuts), n]
    return [
        Segment(a, b, float(cx[b] - cx[a]), float(cw[b] - cw[a]))
        for a, b in itertools.pairwise(bounds)
    ]


def _best_split(
    cx: Floats, cw: Floats, start: int, stop: int, loglik: LogLikelihood, min_size: int
) -> tuple[int, float] | None:
    """The split of ``[start, stop)`` with the largest gain, and the gain (None: too short)."""
    splits = np.arange(start + min_size, stop - min_size + 1)
    if len(splits) == 0:
        return None
    whole = loglik(np.array([cx[stop] - cx[start]]), np.array([cw[stop] - cw[start]]))[0]
    left = loglik(cx[splits] - cx[start], cw[splits] - cw[start])
    right = loglik(cx[stop] - cx[splits], cw[stop] - cw[splits])
    gains = left + right - whole
    best = int(np.argmax(gains))  # the earliest of equal gains: deterministic
    return int(splits[best]), float(gains[best])
