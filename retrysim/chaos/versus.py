"""Real against simulated: one real run's metrics beside the simulation's over K seeds.

For each metric the simulated runs give a mean and a 95% *prediction* interval, the range one
more run of the model would fall in 95% of the time: mean ± t(0.975, K-1) · sd · sqrt(1 + 1/K).
The real run is one run, so that (not the narrower interval of the mean) is what it should fall
in if the model is right; a real value outside it is flagged. With every simulated value equal
the interval is that value. A real value is flagged only when it lies outside by more than the
table shows (half its last digit: 0.005 percentage points, 0.5 ms, ...).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from retrysim.results.document import ResultDocument
from retrysim.results.metrics import metric
from retrysim.results.sections import Versus, VersusRow

if TYPE_CHECKING:
    from retrysim.model.scenario import Scenario
    from retrysim.retry.settings import RetrySettings

#: What the side-by-side compares, in order.
VERSUS_METRICS: tuple[str, ...] = (
    "success_rate",
    "retry_rate",
    "attempts_per_call",
    "amplification",
    "wait_per_call",
    "mean_latency",
    "p50_latency",
    "p99_latency",
    "duplicates",
)

#: Student's t at 0.975 for 1..30 degrees of freedom (beyond: 1.96).
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t975(df: int) -> float:
    return _T975[df - 1] if 1 <= df <= len(_T975) else 1.96


def interval(values: Sequence[float]) -> tuple[float, float, float]:
    """(mean, low, high): the mean of ``values`` and its 95% prediction interval."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, mean, mean
    half = t975(len(values) - 1) * statistics.stdev(values) * math.sqrt(1 + 1 / len(values))
    return mean, mean - half, mean + half


#: Half the last digit each format shows: a real value that differs from the interval's edge by
#: less than what the table can show is not flagged (it would read as inside).
_RESOLUTION = {"percent": 5e-5, "seconds": 5e-4, "count": 0.5, "ratio": 5e-3, "number": 5e-4}


def _inside(name: str, value: float, low: float, high: float) -> bool:
    from retrysim.results import metric_table

    shown = "count" if name == "calls" else metric_table.get(name).format
    slack = max(_RESOLUTION[shown], 1e-9 * max(1.0, abs(low), abs(high)))
    return low - slack <= value <= high + slack


def _calls(document: ResultDocument) -> float:
    return float(document["calls"]["total"])


def _reader(name: str) -> Callable[[ResultDocument], float | None]:
    """Metric ``name`` of a document, as a function of the document."""
    return lambda document: metric(document, name)


def simulated(
    scenario: Scenario, first: int, seeds: int, settings: RetrySettings | None
) -> list[ResultDocument]:
    """The documents of ``scenario`` simulated over ``seeds`` seeds from ``first`` (the real
    run's seed, +1, ...): the other side of :func:`versus`."""
    from retrysim.runs.runner import run

    return [
        run(scenario, seed=first + i, settings=settings, baseline=False).document
        for i in range(seeds)
    ]


def versus(real: ResultDocument, simulated: Sequence[ResultDocument]) -> Versus:
    """The side-by-side document: a row per metric, real value, simulated mean and interval.

    A row's ``outside`` is True when the real value falls outside the simulated interval (None
    when either side has no value: no retries, say). ``calls`` (how many calls were made) comes
    first: a fleet that made fewer calls for real was slowed by something the model lacks.
    """
    from retrysim.results import metric_table

    rows: list[VersusRow] = []
    getters: list[tuple[str, str, Callable[[ResultDocument], float | None]]] = [
        ("calls", "calls", _calls)
    ]
    getters += [(name, metric_table.label(name), _reader(name)) for name in VERSUS_METRICS]
    for name, label, get in getters:
        value = get(real)
        sims = [v for v in (get(d) for d in simulated) if v is not None]
        row: VersusRow = {
            "metric": name,
            "label": label,
            "real": value,
            "mean": None,
            "low": None,
            "high": None,
            "outside": None,
        }
        if sims and len(sims) == len(simulated):
            mean, low, high = interval([float(v) for v in sims])
            row.update({"mean": mean, "low": low, "high": high})
            row["outside"] = None if value is None else not _inside(name, float(value), low, high)
        rows.append(row)
    return {
        "seeds": [d["seed"] for d in simulated],
        "interval": "95% prediction interval over the seeds (t, K-1 degrees of freedom)",
        "rows": rows,
        "outside": [r["metric"] for r in rows if r["outside"]],
    }


def show(name: str, value: float | None) -> str:
    """A value as the side-by-side prints it."""
    from retrysim.results import metric_table

    if value is None:
        return "–"
    if name == "calls":
        return f"{value:,.0f}"
    return metric_table.show(name, value)
