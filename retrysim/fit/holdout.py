"""The held-out check: a scenario fitted on half the calls, simulated, against the other half.

The calls are dealt alternately to two halves (every attempt of a call goes with it), so
both halves cover the same time, the same fault windows and half the rate each. The scenario
is fitted on the first half and simulated with ``seeds`` seeds; each metric of the second
half is compared with the simulated runs' 95% prediction interval, mean +- t(0.975, K-1) *
sd * sqrt(1 + 1/K): where one more simulated run would fall 95% of the time. A metric outside
it says the fit misses something the data shows.

The metrics are the service's side, which the fit claims to reproduce: calls and attempts per
second, the failed share of attempts, the latency of successful attempts (p50, p99) and the
attempts per call. The last depends on the retry policy too, which the data shows only in
part (the waits are not fitted).

A call graph (traces of several services, a saved run of tiers) is dealt by the clients' calls
at the top, each with every request below it, and judged tier by tier, each metric named with
its tier (``db: latency p50 (successful attempts)``): :mod:`retrysim.fit.holdout_graph`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np

from retrysim.fit import holdout_graph, scipy_api
from retrysim.fit.observations import Observations, table
from retrysim.fit.options import FitOptions
from retrysim.fit.pipeline import fit_data, tier_names
from retrysim.fit.read import Data
from retrysim.fit.retries import first_attempts, numbered

#: Each metric: its name, unit, and how it is read off a table of attempts over ``seconds``.
Metric = tuple[str, str, Callable[[Observations, float], float]]
#: Runs' records: attempt outcomes still open at the end (no request answered).
_OPEN = 3


def _ok_quantile(q: float) -> Callable[[Observations, float], float]:
    def read(rows: Observations, seconds: float) -> float:
        ok = rows.duration[~rows.failed & np.isfinite(rows.duration)]
        return float(np.quantile(ok, q)) if len(ok) else math.nan

    return read


METRICS: tuple[Metric, ...] = (
    ("calls per second", "1/s", lambda r, s: float(np.count_nonzero(first_attempts(r))) / s),
    ("attempts per second", "1/s", lambda r, s: len(r) / s),
    ("failed share of attempts", "", lambda r, s: float(np.mean(r.failed)) if len(r) else math.nan),
    ("latency p50 (successful attempts)", "s", _ok_quantile(0.5)),
    ("latency p99 (successful attempts)", "s", _ok_quantile(0.99)),
    (
        "attempts per call",
        "",
        lambda r, s: len(r) / max(float(np.count_nonzero(first_attempts(r))), 1.0),
    ),
)


@dataclass(frozen=True)
class Judged:
    """One metric: the held-out half's ``real`` value, the simulated runs' values and their
    prediction interval ``[low, high]``; ``tier``: the call graph's tier it is of ("" for one
    service, whose JSON has no such key, as before call graphs were checked)."""

    name: str
    unit: str
    real: float
    simulated: tuple[float, ...]
    low: float
    high: float
    tier: str = ""

    @property
    def inside(self) -> bool:
        """Within the interval, give or take float rounding: a constant latency's runs all
        agree, and the data's own time (a difference of differences) is that constant to
        within 1e-15 s, not exactly."""
        slack = 1e-9 * max(abs(self.low), abs(self.high)) + 1e-12
        return self.low - slack <= self.real <= self.high + slack

    def to_dict(self) -> dict[str, Any]:
        found = {
            "name": self.name,
            "unit": self.unit,
            "real": self.real,
            "simulated": list(self.simulated),
            "low": self.low,
            "high": self.high,
            "inside": self.inside,
        }
        return {**found, "tier": self.tier} if self.tier else found


@dataclass(frozen=True)
class HeldOutCheck:
    """Every metric judged, the seeds simulated, and the fitted half's scenario."""

    metrics: tuple[Judged, ...]
    seeds: tuple[int, ...]
    scenario: dict[str, Any]
    calls: tuple[int, int]  # calls in the fitted half and in the held-out one (the clients')

    @property
    def inside(self) -> int:
        return sum(metric.inside for metric in self.metrics)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": [m.to_dict() for m in self.metrics],
            "seeds": list(self.seeds),
            "inside": self.inside,
            "calls": list(self.calls),
            "scenario": self.scenario,
        }


def _tiered(data: Data) -> bool:
    return data.graph is not None and len(data.graph.chain) > 1


def halves(data: Data) -> tuple[Data, Data] | str:
    """The data's calls dealt alternately to two halves (or what is missing, one line); a
    call graph's root calls, each with its requests below (:mod:`.holdout_graph`)."""
    if _tiered(data):
        return holdout_graph.graph_halves(data)
    rows, _ = numbered(data.requests)
    if len(rows) < 2:
        return "the held-out check needs request rows (logs, traces or a saved run)"
    calls = rows.call if rows.call is not None else np.arange(len(rows))
    first = calls % 2 == 0
    one = replace(data, requests=rows.take(first), scrapes=None, graph=None)
    other = replace(data, requests=rows.take(~first), scrapes=None, graph=None)
    return one, other


def held_out_check(
    data: Data,
    options: FitOptions | None = None,
    seeds: int = 5,
    progress: Callable[[int, int], None] | None = None,
) -> HeldOutCheck | str:
    """The check (see the module docstring), or what is missing (one line)."""
    from retrysim.model.scenario import parse_scenario
    from retrysim.runs.runner import run

    split = halves(data)
    if isinstance(split, str):
        return split
    fitted_half, held_out = split
    found = fit_data(fitted_half, options)
    scenario = parse_scenario(dict(found.scenario), "<held-out check>")
    seconds = float(scenario.duration)
    views = _views(data, held_out)
    values: list[list[list[float]]] = [[[] for _ in METRICS] for _ in views]
    for index in range(seeds):
        result = run(scenario, seed=index, baseline=False).result
        if _tiered(data):
            rows = holdout_graph.simulated_tiers(result.tiers, result.error_names)
        else:
            rows = _records(result.attempts, result.error_names)
        for view, (_, _, pick) in enumerate(views):
            chosen = pick(rows)
            for slot, (_, _, read) in enumerate(METRICS):
                values[view][slot].append(read(chosen, seconds))
        if progress is not None:
            progress(index + 1, seeds)
    judged = []
    for view, (tier, real_rows, _) in enumerate(views):
        prefix = f"{tier}: " if tier else ""
        for slot, (name, unit, read) in enumerate(METRICS):
            low, high = _interval(values[view][slot])
            real = read(real_rows, seconds)
            simulated = tuple(values[view][slot])
            judged.append(Judged(prefix + name, unit, real, simulated, low, high, tier))
    if _tiered(data):
        calls = (
            holdout_graph.root_calls(fitted_half.requests),
            holdout_graph.root_calls(held_out.requests),
        )
    else:
        calls = (
            int(np.count_nonzero(first_attempts(numbered(fitted_half.requests)[0]))),
            int(np.count_nonzero(first_attempts(numbered(held_out.requests)[0]))),
        )
    return HeldOutCheck(tuple(judged), tuple(range(seeds)), dict(found.scenario), calls)


#: What is judged: the tier ("" for one service), the held-out half's rows, and how the same rows
#: are picked out of a simulated run's table.
View = tuple[str, Observations, Callable[[Observations], Observations]]


def _views(data: Data, held_out: Data) -> list[View]:
    """One service: the whole table. A call graph: each tier of the chain, top first, named
    as the fitted scenario names it."""
    if not _tiered(data):
        return [("", numbered(held_out.requests)[0], lambda rows: rows)]
    assert data.graph is not None
    names = tier_names(data.graph.chain)
    views: list[View] = []
    for service, name in names.items():
        real = holdout_graph.tier_rows(held_out.requests, service)
        views.append((name, real, partial(holdout_graph.tier_rows, name=name)))
    return views


def _interval(values: list[float]) -> tuple[float, float]:
    """The 95% prediction interval of one more value (a point for a single value)."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return math.nan, math.nan
    mean = float(np.mean(finite))
    if len(finite) < 2:
        return mean, mean
    t = float(scipy_api.stats().t.ppf(0.975, len(finite) - 1))
    half = t * float(np.std(finite, ddof=1)) * math.sqrt(1 + 1 / len(finite))
    return mean - half, mean + half


def _records(attempts: np.ndarray, names: tuple[str, ...]) -> Observations:
    """A run's attempt records as the fit's table (the requests the service saw)."""
    sent = (attempts["outcome"] != _OPEN) & np.array(
        [names[c] != "CircuitOpen" for c in attempts["error"].tolist()], dtype=bool
    )
    chosen = attempts[sent]
    failed = chosen["outcome"] != 0
    errors = [
        names[c] or "error" if bad else ""
        for c, bad in zip(chosen["error"].tolist(), failed, strict=True)
    ]
    return table(
        chosen["start"],
        chosen["end"] - chosen["start"],
        errors,
        call=[str(c) for c in chosen["call"].tolist()],
        attempt=chosen["attempt"].tolist(),
    )
