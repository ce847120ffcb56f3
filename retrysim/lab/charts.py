"""The lab's figures as text: bars of Unicode block characters, a row marking fault windows.

Pure functions of a result document (or of a list of times) and a size, so they are tested
without a terminal; :mod:`retrysim.lab.widgets` colours what they return. They show what the
matplotlib figures show (:mod:`retrysim.plots.timeline`, :mod:`retrysim.plots.spread`): the
attempts started per time bin with the fault windows marked, and the spread of the waits
before each call's first retry, in 100 ms bins (the window of the jitter-spread metrics): the
narrower it is, the more a fleet that failed together retries together.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from retrysim.results.document import ResultDocument
    from retrysim.results.sections import Timeline

#: Eighths of a cell, from empty to full.
BLOCKS = " ▁▂▃▄▅▆▇█"
#: What marks a column inside a fault window, on the row under the bars.
FAULT_MARK = "▀"
#: The histogram's finest bin: the 100 ms window of the peak-share metrics.
SPREAD_BIN = 0.1


@dataclass(frozen=True)
class Chart:
    """A drawn figure: ``rows`` of bars (top first, all ``width`` wide), ``marks`` (one flag
    per column: inside a fault window), the axis line under them, and what the columns are."""

    rows: list[str]
    marks: list[bool]
    axis: str
    peak: float
    bin_width: float
    title: str


def bar_rows(values: Sequence[float], height: int, top: float | None = None) -> list[str]:
    """Vertical bars, one column per value, ``height`` rows (top row first).

    A bar's height is its value over ``top`` (default: the largest value), in eighths of a
    row; any value above zero shows at least one eighth, so a small wave is never invisible.
    """
    if height < 1:
        return []
    peak = top if top is not None else max(values, default=0.0)
    eighths = []
    for value in values:
        if peak <= 0 or value <= 0:
            eighths.append(0)
        else:
            eighths.append(max(1, min(8 * height, round(8 * height * value / peak))))
    rows = []
    for row in range(height - 1, -1, -1):  # top row first
        floor = 8 * row
        rows.append("".join(BLOCKS[min(8, max(0, e - floor))] for e in eighths))
    return rows


def resample(values: Sequence[float], columns: int) -> list[float]:
    """``values`` in at most ``columns`` columns: each the largest of the values it covers
    (a peak is what a timeline is read for, and a mean would flatten a one-second spike), or,
    when there are fewer values than columns, each value repeated a whole number of times."""
    count = len(values)
    if count == 0 or columns < 1:
        return list(values)
    if count <= columns:
        return [v for v in values for _ in range(columns // count)]
    bounds = [count * c // columns for c in range(columns + 1)]
    return [max(values[bounds[c] : max(bounds[c + 1], bounds[c] + 1)]) for c in range(columns)]


def timeline(document: ResultDocument, width: int, height: int) -> Chart:
    """Attempts started per time bin (all attempt numbers together) and the fault windows."""
    tl: Timeline | dict[str, Any] = document.get("timeline") or {}
    series = [list(map(float, row)) for row in tl.get("attempts_per_s") or []]
    bins = max((len(row) for row in series), default=0)
    totals = [sum(row[i] for row in series if i < len(row)) for i in range(bins)]
    bin_width = float(tl.get("bin_width") or 1.0)
    shown = resample(totals, width)
    per_column = bin_width * (bins / len(shown)) if shown else bin_width
    end = bins * bin_width
    marks = [
        _in_faults(document, c * per_column, (c + 1) * per_column, end) for c in range(len(shown))
    ]
    peak = max(shown, default=0.0)
    return Chart(
        rows=[row.ljust(width) for row in bar_rows(shown, height)] or [],
        marks=marks + [False] * (width - len(marks)),
        axis=_axis(0.0, end, len(shown), width, "s"),
        peak=peak,
        bin_width=per_column,
        title=f"attempts/s (peak {peak:,.0f})",
    )


def histogram(
    times: Sequence[float], width: int, height: int, what: str = "retry 1 waits"
) -> Chart:
    """How ``times`` (seconds) spread: counts per bin of 100 ms (a multiple of 100 ms when
    the spread does not fit ``width`` columns), from the smallest to the largest."""
    if not times:
        return Chart(
            [" " * width for _ in range(height)],
            [False] * width,
            "no retries".ljust(width),
            0.0,
            SPREAD_BIN,
            f"{what}: none",
        )
    low, high = min(times), max(times)
    start = math.floor(low / SPREAD_BIN) * SPREAD_BIN
    span = max(high - start, SPREAD_BIN)
    per = SPREAD_BIN * max(1, math.ceil(span / SPREAD_BIN / max(width, 1) - 1e-9))
    count = min(width, max(1, math.ceil(span / per - 1e-9)))
    counts = [0.0] * count
    for t in times:
        counts[min(count - 1, int((t - start) / per))] += 1
    peak = max(counts)
    share = peak / len(times)
    shown = resample(counts, width)
    return Chart(
        rows=[row.ljust(width) for row in bar_rows(shown, height)],
        marks=[False] * width,
        axis=_axis(start, start + count * per, len(shown), width, "s"),
        peak=peak,
        bin_width=per,
        title=f"{what}, {per * 1000:.0f} ms bins, peak {100 * share:.1f}%",
    )


def _in_faults(document: ResultDocument, start: float, end: float, run_end: float) -> bool:
    for fault in document.get("faults") or []:
        f_start = float(fault.get("start") or 0.0)
        f_end = fault.get("end")
        f_end = run_end if f_end is None else float(f_end)
        if f_start < end and f_end > start:
            return True
    return False


def _axis(start: float, end: float, columns: int, width: int, unit: str) -> str:
    """``0s`` under the first column and the end under the last, as wide as the chart."""
    left, right = f"{start:g}{unit}", f"{_round(end):g}{unit}"
    gap = max(1, columns - len(left) - len(right))
    return (left + " " * gap + right).ljust(width)[: max(width, len(left) + len(right) + 1)]


def _round(value: float) -> float:
    return round(value, 1) if abs(value) < 100 else round(value)
