"""Attempts per second: the busiest second, and the timeline's bins and series.

Apart from :mod:`retrysim.results.metrics` (which re-exports them) so that the sections built
from several record sets, each tier's (:mod:`retrysim.results.tiers`) and each replica's
(:mod:`retrysim.results.replicas`), count in the same bins as the run's own timeline without
importing the module that assembles the document.
"""

from __future__ import annotations

import math

import numpy as np

from retrysim.results.sections import Load, Timeline
from retrysim.sim import records as rec


def load(attempts: np.ndarray, calls: np.ndarray, capacity: float | None) -> Load:
    """Peak attempts per second, amplification (attempts per call) and the server's capacity.

    ``attempts`` are those sent to the dependency (:func:`summarize` leaves out the ones a
    breaker refused): this is the load the server saw.
    """
    starts = attempts["start"]
    peak = 0
    if len(starts):
        _, counts = np.unique(np.floor(starts).astype(np.int64), return_counts=True)
        peak = int(counts.max())
    return {
        "peak_attempts_per_s": float(peak),
        "amplification": len(attempts) / len(calls) if len(calls) else None,
        "capacity": capacity,
        "peak_over_capacity": None if not capacity else peak / capacity,
    }


def bin_width(end_time: float) -> float:
    """Timeline resolution: 1 s up to 10 minutes of virtual time, then ~600 bins."""
    return 1.0 if end_time <= 600 else float(math.ceil(end_time / 600))


def timeline_bins(attempts: np.ndarray, width: float) -> int:
    """Bins of ``width`` seconds that cover every attempt row, from its start to its end."""
    end = max(
        float(np.nanmax(attempts["end"]))
        if len(attempts) and np.any(~np.isnan(attempts["end"]))
        else 0.0,
        float(attempts["start"].max()) if len(attempts) else 0.0,
    )
    return max(1, math.ceil((end + 1e-9) / width))


def timeline(
    attempts: np.ndarray,
    calls: np.ndarray,
    width: float,
    max_attempt_series: int = 4,
    sent: np.ndarray | None = None,
    bins: int | None = None,
) -> Timeline:
    """Attempts per second per bin, stacked by attempt number, and goodput per bin.

    Series: first tries, retry 1, retry 2, ... with the last series holding every later retry.
    Goodput is calls succeeding per second. ``sent`` (a mask of ``attempts``) picks the rows
    counted as attempts; the time axis spans every row, so series of refused attempts drawn
    beside it (the ``guards`` section) line up. ``bins`` fixes the number of bins (a tier's
    timeline in the run's bins): anything later counts in the last.
    """
    n_bins = bins if bins is not None else timeline_bins(attempts, width)
    series = np.zeros((max_attempt_series, n_bins), dtype=np.int64)
    counted = attempts if sent is None else attempts[sent]
    if len(counted):
        idx = np.minimum((counted["start"] / width).astype(np.int64), n_bins - 1)
        which = np.minimum(counted["attempt"].astype(np.int64), max_attempt_series) - 1
        np.add.at(series, (which, idx), 1)
    good = calls["end"][calls["outcome"] == rec.SUCCEEDED]
    goodput = np.zeros(n_bins, dtype=np.int64)
    if len(good):
        np.add.at(goodput, np.minimum((good / width).astype(np.int64), n_bins - 1), 1)
    labels = ["first try"] + [f"retry {k}" for k in range(1, max_attempt_series - 1)]
    labels.append(f"retry {max_attempt_series - 1}+")
    return {
        "bin_width": width,
        "labels": labels,
        "attempts_per_s": (series / width).tolist(),
        "goodput_per_s": (goodput / width).tolist(),
    }
