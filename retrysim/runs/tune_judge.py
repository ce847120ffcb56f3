"""How ``retrysim tune`` judges candidates: their figures over a group's scenarios, and when two
differ by more than the noise.

A candidate's figure for a metric is its value over the group's scenarios as the tuner ranks
them (the worst scenario's mean, or the weighted mean), with a 95% interval over the seeds.
Two figures **differ** only when they are further apart than the noise: the larger of either
interval's half-width and a practical threshold per metric (:data:`THRESHOLDS`), so one seed
(no interval) still ties what no one would call different. An interval widens a tie only up to
a material difference (:data:`MATERIAL`): with two seeds a 26-point drop in success can sit
inside the interval, but no one would take it as "the same", so wide intervals call for more
seeds, never for the simpler, worse setting. Everything the tuner decides
(racing, ties, "this knob moves nothing") goes through :func:`differs`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

from retrysim.model.scenario import Scenario
from retrysim.results.metric_table import METRIC_TABLE
from retrysim.runs.sweep import VariantResult
from retrysim.runs.tune_space import Tuning

#: The metrics a Pareto front weighs: success against tail latency and load.
PARETO = (("success_rate", True), ("p99_latency", False), ("amplification", False))

#: The practical threshold below which two figures are the same, per metric: ("abs", size) in
#: the metric's own unit, or ("rel", share) of the larger magnitude. Success rate 0.1 pp, p99
#: latency 1%, load 1%; any other metric 1%.
THRESHOLDS: dict[str, tuple[str, float]] = {
    "success_rate": ("abs", 0.001),
    "p99_latency": ("rel", 0.01),
    "amplification": ("rel", 0.01),
}
DEFAULT_THRESHOLD = ("rel", 0.01)

#: The most an interval may widen a tie, per metric (same forms as THRESHOLDS): success 1 pp,
#: p99 latency 10%, load 5%; any other metric 10%.
MATERIAL: dict[str, tuple[str, float]] = {
    "success_rate": ("abs", 0.01),
    "p99_latency": ("rel", 0.10),
    "amplification": ("rel", 0.05),
}
DEFAULT_MATERIAL = ("rel", 0.10)

_BETTER = {m.name: m.better for m in METRIC_TABLE}


class MetricFigure(TypedDict):
    """One metric of a candidate over a group: as the tuner ranks it, with its interval."""

    mean: float | None
    ci95: tuple[float, float] | None  # the worst scenario's interval, or the weighted mean's


@dataclass
class Candidate:
    """One set of settings and its documents per scenario, seed by seed.

    A searched key missing from ``sets`` is at its current value in each scenario.
    """

    sets: dict[str, Any]
    label: str
    results: dict[str, VariantResult] = field(default_factory=dict)  # scenario name -> runs
    dropped: str | None = None  # why racing stopped judging it

    def seeds(self) -> int:
        return min((len(r.documents) for r in self.results.values()), default=0)

    def mean(self, scenario: str, metric: str) -> float | None:
        result = self.results.get(scenario)
        return None if result is None else result.mean(metric)

    def interval(self, scenario: str, metric: str) -> tuple[float, float] | None:
        result = self.results.get(scenario)
        return None if result is None else result.interval(metric)


@dataclass(frozen=True)
class Baseline:
    """An obvious candidate, always tried: the current settings, the documented defaults, a
    diagnosis's prescription (``role`` says which)."""

    role: str  # "current", "defaults", "diagnosis <id>: <option>=<value>", "diagnoses together"
    candidate: Candidate


@dataclass(frozen=True)
class KnobExplanation:
    """What one recommended value buys: the recommendation with it and with that knob back at
    its current value (``without``), and the difference (``deltas``: with minus without)."""

    key: str  # policy.max_attempts
    current: Any  # in effect before tuning (scenario, env, defaults); None: scenarios disagree
    recommended: Any  # == current when unchanged
    unchanged: str | None  # why the current value is kept; None when it changes
    with_value: dict[str, MetricFigure]  # metric -> the recommendation's figure
    without: dict[str, MetricFigure] | None  # None when unchanged
    without_candidate: Candidate | None
    deltas: dict[str, float | None]  # metric -> with - without; {} when unchanged
    significant: dict[str, bool]  # metric -> the delta is beyond the noise


@dataclass
class Group:
    """The scenarios one operation's settings are tuned on, and what tuning found for them."""

    operation: str | None  # None: a global setting joins every operation
    scenarios: list[Scenario]
    candidates: list[Candidate] = field(default_factory=list)
    best: Candidate | None = None
    closest: Candidate | None = None  # when nothing is feasible: the least violating
    binding: str | None = None  # ... and the constraint that binds hardest
    search: str = ""
    invalid: list[Candidate] = field(default_factory=list)  # proposed, but no valid policy
    current: dict[str, Any] = field(default_factory=dict)  # searched key -> value, if agreed
    baselines: list[Baseline] = field(default_factory=list)
    ties: list[Candidate] = field(default_factory=list)  # equivalent to the recommendation
    explanation: list[KnobExplanation] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.scenarios]

    @property
    def operations(self) -> list[str]:
        return sorted({s.policy.operation for s in self.scenarios})


def explained(tuning: Tuning) -> list[str]:
    """The metrics a recommendation is judged and explained on: the objective, then success,
    p99 latency and load."""
    return list(dict.fromkeys([tuning.objective.metric, *(name for name, _ in PARETO)]))


def maximized(metric: str, tuning: Tuning) -> bool:
    """Whether higher is better for ``metric`` (the objective's direction as asked)."""
    if metric == tuning.objective.metric:
        return tuning.objective.maximize
    return _BETTER.get(metric) == "higher"


def figure(candidate: Candidate, names: Sequence[str], metric: str, tuning: Tuning) -> MetricFigure:
    """``metric`` over the scenarios ``names`` as the tuner aggregates (worst or weighted mean)."""
    means = {n: candidate.mean(n, metric) for n in names}
    known = {n: v for n, v in means.items() if v is not None}
    if not names or len(known) < len(names):
        return MetricFigure(mean=None, ci95=None)
    if tuning.how == "mean":
        weights = {n: tuning.weights.get(n, 1.0) for n in names}
        total = sum(weights.values())
        value = sum(known[n] * weights[n] for n in names) / total
        intervals = [candidate.interval(n, metric) for n in names]
        interval = None
        if all(i is not None for i in intervals):
            pairs = [(i, weights[n]) for n, i in zip(names, intervals, strict=True) if i]
            interval = (
                sum(i[0] * w for i, w in pairs) / total,
                sum(i[1] * w for i, w in pairs) / total,
            )
        return MetricFigure(mean=value, ci95=interval)
    pick = min if maximized(metric, tuning) else max
    worst = pick(names, key=lambda n: known[n])
    return MetricFigure(mean=known[worst], ci95=candidate.interval(worst, metric))


def figures(candidate: Candidate, group: Group, tuning: Tuning) -> dict[str, MetricFigure]:
    return {m: figure(candidate, group.names, m, tuning) for m in explained(tuning)}


def _size(rule: tuple[str, float], a: float, b: float) -> float:
    kind, size = rule
    return size if kind == "abs" else size * max(abs(a), abs(b))


def practical(metric: str, a: float, b: float) -> float:
    """The practical threshold between two values of ``metric`` (see :data:`THRESHOLDS`)."""
    return _size(THRESHOLDS.get(metric, DEFAULT_THRESHOLD), a, b)


def material(metric: str, a: float, b: float) -> float:
    """The most the seeds' interval may widen a tie of ``metric`` (see :data:`MATERIAL`)."""
    return _size(MATERIAL.get(metric, DEFAULT_MATERIAL), a, b)


def _half(interval: tuple[float, float] | None) -> float:
    return 0.0 if interval is None else (interval[1] - interval[0]) / 2


def noise(metric: str, a: MetricFigure, b: MetricFigure) -> float:
    """How far apart two figures may be and still be the same: the larger of either interval's
    half-width (at most the material difference) and the practical threshold."""
    assert a["mean"] is not None and b["mean"] is not None
    seeds = min(max(_half(a["ci95"]), _half(b["ci95"])), material(metric, a["mean"], b["mean"]))
    return max(practical(metric, a["mean"], b["mean"]), seeds)


def differs(metric: str, a: MetricFigure, b: MetricFigure, maximize: bool) -> int:
    """+1 when ``a`` is better than ``b`` beyond the noise, -1 when worse, 0 when the same.
    A missing figure is worse than any known one."""
    if a["mean"] is None or b["mean"] is None:
        return 0 if a["mean"] is None and b["mean"] is None else (-1 if a["mean"] is None else 1)
    gap = a["mean"] - b["mean"]
    if abs(gap) <= noise(metric, a, b):
        return 0
    return 1 if (gap > 0) == maximize else -1


def compared(
    a: dict[str, MetricFigure], b: dict[str, MetricFigure], tuning: Tuning
) -> dict[str, int]:
    """:func:`differs` on every explained metric."""
    return {m: differs(m, a[m], b[m], maximized(m, tuning)) for m in explained(tuning)}


def equivalent(a: dict[str, MetricFigure], b: dict[str, MetricFigure], tuning: Tuning) -> bool:
    """The same on every explained metric, within the noise."""
    return not any(compared(a, b, tuning).values())


def no_worse(a: dict[str, MetricFigure], b: dict[str, MetricFigure], tuning: Tuning) -> bool:
    """``a`` at least as good as ``b`` on every explained metric, within the noise."""
    return all(v >= 0 for v in compared(a, b, tuning).values())


def dominates(a: dict[str, MetricFigure], b: dict[str, MetricFigure], tuning: Tuning) -> bool:
    """``a`` no worse than ``b`` anywhere and better beyond the noise somewhere."""
    signs = compared(a, b, tuning).values()
    return all(v >= 0 for v in signs) and any(v > 0 for v in signs)


def pareto_front(group: Group, prefer: Candidate | None = None) -> list[Candidate]:
    """Candidates no other beats on every one of success, p99 latency and load (worst case).

    Of candidates with equal figures one stands for all: ``prefer`` (the recommendation, which
    may be a simpler setting found after the search with the same figures), else the first
    proposed.
    """

    def point(c: Candidate) -> tuple[float, ...] | None:
        values = []
        for metric, higher in PARETO:
            per = [c.mean(n, metric) for n in group.names]
            if any(v is None for v in per):
                return None
            known = [v for v in per if v is not None]
            worst = min(known) if higher else max(known)
            values.append(worst if higher else -worst)  # larger is better on every axis
        return tuple(values)

    ordered = sorted(group.candidates, key=lambda c: c is not prefer)  # stable: prefer first
    points = [(c, p) for c in ordered if (p := point(c)) is not None]
    front, taken = [], set()
    for c, p in points:
        dominated = any(
            q != p and all(qi >= pi for qi, pi in zip(q, p, strict=True)) for _, q in points
        )
        if not dominated and p not in taken:  # equal points: the first proposed stands for all
            front.append(c)
            taken.add(p)
    return front
