"""Errors: how often each kind happens, and when (fault windows), as the scenario's faults.

The failed share of requests is cut into stretches by :mod:`retrysim.fit.changepoints`
(binomial likelihood, one unit a request in time order, or a scrape interval's requests).
The stretch covering the most time is the steady state; a stretch failing more often, by more
than the penalty (:func:`~retrysim.fit.changepoints.departure`), is a fault window. A window's
ends lie between the last request before it and the first in it (the midpoint is written;
the gap is the precision). A window failing at least
:data:`OUTAGE_SHARE` of its requests is an outage (``mode = "blackhole"`` when they timed
out), else a flaky window with that probability. Outside the windows each error name's
steady share is a flaky fault over the whole run; gates are asked in order and the first
that fails an attempt wins, so each later one is given its probability among the attempts
the earlier ones let through.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from retrysim.fit.changepoints import (
    Segment,
    binomial,
    departure,
    penalty,
    segments,
    steady_rate,
)
from retrysim.fit.families import rounded
from retrysim.fit.observations import Floats, Observations
from retrysim.fit.values import scenario_error

#: The failed share from which a window is an outage rather than a flaky stretch.
OUTAGE_SHARE = 0.98
#: Timed-out requests a client timeout is read from, and how alike their durations must be
#: (interquartile range over median).
MIN_TIMEOUTS, TIMEOUT_SPREAD = 5, 0.05
TIMEOUT_NAMES = frozenset({"TimeoutError"})


@dataclass(frozen=True)
class Window:
    """A fault window: ``[start, end)`` (each end known to within ``start_gap``/``end_gap``
    seconds: the gap between the requests either side), ``requests`` in it of which
    ``failed``, by error name (``names``), and ``gain``: twice the log-likelihood gain of its
    own failed share over the steady one, which beat the penalty ``bar``."""

    start: float
    end: float
    start_gap: float
    end_gap: float
    requests: int
    failed: int
    names: dict[str, int]
    gain: float
    bar: float

    @property
    def share(self) -> float:
        return self.failed / self.requests if self.requests else 0.0

    @property
    def dominant(self) -> str:
        return min(self.names, key=lambda n: (-self.names[n], n))

    @property
    def kind(self) -> str:
        return "outage" if self.share >= OUTAGE_SHARE else "flaky"

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "start_gap": self.start_gap,
            "end_gap": self.end_gap,
            "requests": self.requests,
            "failed": self.failed,
            "share": self.share,
            "names": dict(self.names),
            "kind": self.kind,
            "gain": self.gain,
            "bar": self.bar,
        }


@dataclass(frozen=True)
class ErrorFit:
    """``requests`` (``failed`` of them) by error name (``names``), the fault ``windows``,
    the requests outside them (``steady_requests``) and their failures by name (``steady``),
    and the failed share per bin for a figure (``bin_starts``, ``bin_requests``,
    ``bin_failed``)."""

    requests: int
    failed: int
    names: dict[str, int]
    windows: tuple[Window, ...]
    steady_requests: int
    steady: dict[str, int]
    bin_starts: Floats = field(default_factory=lambda: np.zeros(0))
    bin_requests: Floats = field(default_factory=lambda: np.zeros(0))
    bin_failed: Floats = field(default_factory=lambda: np.zeros(0))
    binned: bool = False

    def faults(self) -> list[tuple[dict[str, Any], str]]:
        """The scenario's faults, each with the one line saying what it stands for."""
        out: list[tuple[dict[str, Any], str]] = []
        for window in self.windows:
            fault: dict[str, Any] = {"kind": window.kind, "start": round(window.start, 3)}
            fault["end"] = round(window.end, 3)
            if window.kind == "flaky":
                fault["probability"] = rounded(window.share, 4)
            elif window.dominant in TIMEOUT_NAMES:
                fault["mode"] = "blackhole"
            note = _failure(fault, window.dominant) if fault.get("mode") is None else None
            out.append((fault, note or ""))
        let_through = 1.0
        for name, count in sorted(self.steady.items(), key=lambda kv: (-kv[1], kv[0])):
            share = count / self.steady_requests
            fault = {"kind": "flaky", "probability": rounded(min(1.0, share / let_through), 4)}
            out.append((fault, _failure(fault, name) or ""))
            let_through -= share
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "failed": self.failed,
            "names": dict(self.names),
            "windows": [w.to_dict() for w in self.windows],
            "steady_requests": self.steady_requests,
            "steady": dict(self.steady),
            "bin_starts": self.bin_starts.tolist(),
            "bin_requests": self.bin_requests.tolist(),
            "bin_failed": self.bin_failed.tolist(),
            "binned": self.binned,
        }


def _failure(fault: dict[str, Any], name: str) -> str | None:
    """Sets the fault's ``error`` (or ``answer``, for a value the records name ``result:X``)
    and returns why it differs from the data's name, if it does."""
    if name.startswith("result:"):
        value = name.removeprefix("result:")
        fault["answer"] = int(value) if value.isdigit() and int(value) <= 999 else value
        return None
    fault["error"], why = scenario_error(name)
    return why


def fit_rows(observations: Observations, bin_width: float, start: float, end: float) -> ErrorFit:
    """The error fit of request rows (time order)."""
    failed = observations.failed.astype(np.float64)
    names = observations.error_names
    counts = Counter(names[c] for c in observations.error[observations.failed].tolist())
    found = segments(failed, np.ones_like(failed), binomial)
    times = observations.time
    bounds = _row_bounds(found, times, start, end)
    spans = [b - a for a, b, _, _ in bounds]
    steady_at = max(range(len(found)), key=lambda i: (spans[i], -i))
    base = found[steady_at].rate
    windows, inside = [], np.zeros(len(times), dtype=bool)
    bar = penalty(len(times))
    for index, segment in enumerate(found):
        gain = departure(segment, steady_rate(found[steady_at]), binomial)
        if segment.rate <= base or gain <= bar:
            continue
        a, b, gap_a, gap_b = bounds[index]
        rows = slice(segment.start, segment.stop)
        inside[rows] = True
        codes = observations.error[rows][observations.failed[rows]]
        window_names = dict(sorted(Counter(names[c] for c in codes.tolist()).items()))
        windows.append(
            Window(
                a,
                b,
                gap_a,
                gap_b,
                segment.stop - segment.start,
                int(segment.x),
                window_names,
                gain,
                bar,
            )
        )
    steady_codes = observations.error[~inside & observations.failed]
    steady = dict(sorted(Counter(names[c] for c in steady_codes.tolist()).items()))
    edges = np.arange(start, end + bin_width / 2, bin_width)
    if len(edges) < 2:
        edges = np.array([start, end])
    bin_requests = np.histogram(times, bins=edges)[0].astype(np.float64)
    bin_failed = np.histogram(times[observations.failed], bins=edges)[0].astype(np.float64)
    return ErrorFit(
        len(times),
        int(failed.sum()),
        dict(sorted(counts.items())),
        tuple(windows),
        int(np.count_nonzero(~inside)),
        steady,
        edges[:-1],
        bin_requests,
        bin_failed,
    )


def _row_bounds(
    found: list[Segment], times: Floats, start: float, end: float
) -> list[tuple[float, float, float, float]]:
    """Each stretch's start and end time (midpoints between neighbouring requests) and the
    gap either side."""
    out = []
    for segment in found:
        if segment.start == 0:
            a, gap_a = start, 0.0
        else:
            before, first = float(times[segment.start - 1]), float(times[segment.start])
            a, gap_a = (before + first) / 2, first - before
        if segment.stop == len(times):
            # to the data's end, or past it: a tier's retries can go on after the last call
            # arrived, and a window must not end before it starts
            b, gap_b = max(end, float(times[-1])), 0.0
        else:
            last, after = float(times[segment.stop - 1]), float(times[segment.stop])
            b, gap_b = (last + after) / 2, after - last
        out.append((a, b, gap_a, gap_b))
    return out


def fit_binned(
    requests: Floats, errors: dict[str, Floats], starts: Floats, ends: Floats
) -> ErrorFit:
    """The error fit of requests and errors counted per scrape interval."""
    failed = np.sum(list(errors.values()), axis=0) if errors else np.zeros_like(requests)
    total = int(requests.sum())
    found = segments(failed, requests, binomial, observations=total)
    spans = [float(ends[s.stop - 1] - starts[s.start]) for s in found]
    steady_at = max(range(len(found)), key=lambda i: (spans[i], -i))
    base = found[steady_at].rate
    windows = []
    inside = np.zeros(len(requests), dtype=bool)
    bar = penalty(total)
    for segment in found:
        gain = departure(segment, steady_rate(found[steady_at]), binomial)
        if segment.rate <= base or gain <= bar:
            continue
        rows = slice(segment.start, segment.stop)
        inside[rows] = True
        names = {n: int(v[rows].sum()) for n, v in errors.items() if v[rows].sum() > 0}
        width = float(ends[segment.start] - starts[segment.start])
        windows.append(
            Window(
                float(starts[segment.start]),
                float(ends[segment.stop - 1]),
                width,
                width,
                int(segment.w),
                int(segment.x),
                names,
                gain,
                bar,
            )
        )
    steady = {n: int(v[~inside].sum()) for n, v in errors.items() if v[~inside].sum() > 0}
    return ErrorFit(
        int(requests.sum()),
        int(failed.sum()),
        {n: int(v.sum()) for n, v in errors.items()},
        tuple(windows),
        int(requests[~inside].sum()),
        steady,
        starts,
        requests,
        failed,
        binned=True,
    )


def client_timeout(observations: Observations) -> tuple[float, int, float] | None:
    """The clients' timeout per attempt, when timed-out requests all lasted about as long:
    (median seconds, how many, their interquartile range)."""
    codes = [i for i, n in enumerate(observations.error_names) if n in TIMEOUT_NAMES]
    if not codes:
        return None
    durations = observations.duration[np.isin(observations.error, codes)]
    durations = durations[np.isfinite(durations) & (durations > 0)]
    if len(durations) < MIN_TIMEOUTS:
        return None
    median = float(np.median(durations))
    spread = float(np.subtract(*np.percentile(durations, [75, 25])))
    if spread > TIMEOUT_SPREAD * median:
        return None
    return median, len(durations), spread
