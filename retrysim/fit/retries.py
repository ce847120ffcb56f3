"""Retries already in the data, so the fitted service is the service, not service-plus-retries.

Each attempt is one request the service saw: the latency and the error rates are fitted per
attempt. The arrival process is the callers' calls, so only first attempts count as arrivals.
Attempt numbers come from an attempt column, else from call ids (a call's rows numbered in
time order); with neither, every row is taken as one call of one attempt, and the fit says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from retrysim.fit.observations import Observations


@dataclass(frozen=True)
class RetriesSeen:
    """What the data says about retries: ``how`` the attempts were known (``attempt column``,
    ``call ids``, or ``none``: every row one call), the ``calls`` and ``attempts``, the
    ``most`` attempts one call made, calls by attempts made (``per_call``; empty without call
    ids), ``gave_up_at``: the most attempts of a call that failed throughout (the policy's
    limit, when one did), and the median wait before each retry (``waits``: retry number ->
    seconds from the previous attempt's end)."""

    how: str
    calls: int
    attempts: int
    most: int = 1
    per_call: dict[int, int] = field(default_factory=dict)
    gave_up_at: int | None = None
    waits: dict[int, float] = field(default_factory=dict)

    @property
    def known(self) -> bool:
        return self.how != "none"

    def to_dict(self) -> dict[str, Any]:
        return {
            "how": self.how,
            "calls": self.calls,
            "attempts": self.attempts,
            "per_call": {str(k): v for k, v in self.per_call.items()},
            "most": self.most,
            "gave_up_at": self.gave_up_at,
            "waits": {str(k): v for k, v in self.waits.items()},
        }

    def line(self) -> str:
        """One line for a comment or a report."""
        if not self.known:
            return "no attempt numbers or call ids: each row is taken as one request and one call"
        mean = self.attempts / self.calls if self.calls else 0.0
        line = (
            f"retries in the data ({self.how}): {self.calls:,} calls made {self.attempts:,} "
            f"attempts ({mean:.3g} per call, at most {self.most})"
        )
        if self.gave_up_at is not None:
            line += f"; calls that failed throughout made up to {self.gave_up_at}"
        return line


def numbered(observations: Observations) -> tuple[Observations, str]:
    """The table with attempt numbers, and how they were known."""
    if observations.attempt is not None:
        return observations, "attempt column"
    if observations.call is None:
        return observations, "none"
    order = np.lexsort((observations.time, observations.call))
    calls = observations.call[order]
    starts = np.concatenate([[True], calls[1:] != calls[:-1]])
    group_start = np.maximum.accumulate(np.where(starts, np.arange(len(calls)), 0))
    attempt = np.empty(len(calls), dtype=np.int64)
    attempt[order] = np.arange(len(calls)) - group_start + 1
    return replace(observations, attempt=attempt), "call ids"


def first_attempts(observations: Observations) -> npt.NDArray[np.bool_]:
    """Which rows are calls' first attempts (every row, when attempts are unknown)."""
    if observations.attempt is None:
        return np.ones(len(observations), dtype=bool)
    return np.asarray(observations.attempt == 1)


def seen(observations: Observations, how: str) -> RetriesSeen:
    """What ``observations`` (numbered by :func:`numbered`) say about retries."""
    n = len(observations)
    if how == "none" or observations.attempt is None:
        return RetriesSeen("none", n, n)
    attempts = observations.attempt
    most = int(attempts.max()) if n else 1
    if observations.call is None:  # attempt numbers alone: which rows are one call is unknown
        return RetriesSeen(how, int(np.count_nonzero(attempts == 1)), n, most)
    calls_of = observations.call
    ids, per = np.unique(calls_of, return_counts=True)
    sizes, how_many = np.unique(per, return_counts=True)
    per_call = {int(s): int(c) for s, c in zip(sizes, how_many, strict=True)}
    failed = np.zeros(len(ids), dtype=np.int64)
    np.add.at(failed, np.searchsorted(ids, calls_of), observations.failed.astype(np.int64))
    throughout = per[failed == per]
    gave_up = int(throughout.max()) if len(throughout) else None
    waits = _waits(observations, calls_of) if n else {}
    return RetriesSeen(how, len(ids), n, most, per_call, gave_up, waits)


def _waits(observations: Observations, calls_of: npt.NDArray[np.int64]) -> dict[int, float]:
    """Median seconds from an attempt's end to the next attempt of its call, by retry."""
    assert observations.attempt is not None
    order = np.lexsort((observations.time, calls_of))
    calls = calls_of[order]
    same = calls[1:] == calls[:-1]
    ends = (observations.time + observations.duration)[order]
    gaps = observations.time[order][1:] - ends[:-1]
    retry = observations.attempt[order][1:] - 1
    found: dict[int, float] = {}
    for number in sorted(set(retry[same].tolist())):
        chosen = gaps[same & (retry == number)]
        chosen = chosen[np.isfinite(chosen)]
        if len(chosen):
            found[int(number)] = float(np.median(chosen))
    return found
