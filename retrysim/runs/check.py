"""``retrysim check``: a retry change reviewed on a list of scenarios, before against after.

Each scenario runs with the same seeds under both sides' settings (common random numbers, as
``compare``): seed ``k`` draws the same arrivals, faults and service times before and after,
so the per-seed difference is the change's doing, not luck. For every metric the check
reports both means, the mean paired difference and its 95% interval; a metric is *worse beyond
its interval* when the whole interval lies on its worse side (which side is worse is the
metric table's ``better``). Each gate is judged on the means. The check passes when every
gate holds and no watched metric is worse beyond its interval.

The interval is Student's t on the per-seed paired differences, ``mean ± t·sd/√n`` with
``n - 1`` degrees of freedom: t from the table in :func:`retrysim.runs.sweep.t95` up to 30,
the normal 1.96 beyond (scipy is not a dependency). One seed gives no interval, so nothing can
be worse beyond it (gates still apply). A metric some seed has no value for is judged on the
seeds that have one on both sides.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypedDict

from retrysim.model.check_config import CheckConfigError, Gate, ScenarioCheck
from retrysim.model.scenario import Scenario
from retrysim.results import metric_table
from retrysim.results.document import ResultDocument
from retrysim.results.metrics import table_metrics
from retrysim.runs import check_metrics
from retrysim.runs.check_env import Side, settings_diff
from retrysim.runs.executors import Executor, Task
from retrysim.runs.sweep import seeds_for, t95
from retrysim.suggest import hint

#: The document's shape; raise it when a key changes meaning or goes away.
SCHEMA_VERSION = 1

#: What a check watches unless its configuration says (``watch``): the metrics compare shows,
#: each that has a better side.
DEFAULT_WATCH: tuple[str, ...] = tuple(
    name
    for name in metric_table.DEFAULT_TABLE_METRICS
    if metric_table.get(name).better != "neither"
)


@dataclass(frozen=True)
class Planned:
    """One scenario ready to run: its configuration, the loaded scenario (its ``set`` applied)
    and the seeds both sides run."""

    check: ScenarioCheck
    scenario: Scenario
    seeds: tuple[int, ...]


def plan(
    check: ScenarioCheck, scenario: Scenario, seeds: int | None = None, where: str = ""
) -> Planned:
    """``check``'s scenario with its seeds (``seeds`` overrides the configuration's count).

    A gate on a tier's figure must name a tier of the scenario: a CheckConfigError naming
    ``where`` (the configuration), the gate and the scenario's tiers otherwise.
    """
    for gate in check.gates:
        split = check_metrics.split_tier(gate.metric)
        if split is not None and split[0] not in scenario.tiers:
            tiers = ", ".join(scenario.tiers) or "none: it is not a call graph"
            raise CheckConfigError(
                f"{where}: gates.{gate.metric}: scenario {check.name} has no tier "
                f"{split[0]!r}{hint(split[0], list(scenario.tiers), list_allowed=False)} "
                f"(its tiers: {tiers})"
            )
    count = check.seeds if seeds is None else seeds
    return Planned(check, scenario, tuple(seeds_for(scenario, count, check.seed)))


@dataclass(frozen=True)
class MetricVerdict:
    """One metric of one scenario, before against after."""

    name: str
    before: float | None
    after: float | None
    change: float | None  # the mean paired difference, after - before
    interval: tuple[float, float] | None  # its 95% interval (None with fewer than 2 pairs)
    worse: bool  # the whole interval on the worse side
    watched: bool  # worse fails the check

    @property
    def fails(self) -> bool:
        return self.worse and self.watched


@dataclass(frozen=True)
class GateVerdict:
    """One gate of one scenario: the figures it was judged on and whether it held (None: a
    side had no value, so nothing to hold against it)."""

    gate: Gate
    before: float | None
    after: float | None
    limit: float | None
    holds: bool | None

    def message(self) -> str:
        """What the gate says, with its figures: ``amplification = 2.11x, limit 2.03x (<= before
        * 1.1, before 1.85x): broken``."""
        name = self.gate.metric
        if self.holds is None:
            return f"{name} {self.gate.text}: no value to judge (not measured in these runs)"
        assert self.after is not None and self.limit is not None
        figures = f"{name} = {check_metrics.show(name, self.after)}, limit "
        figures += check_metrics.show(name, self.limit)
        if self.gate.relative:
            figures += f" ({self.gate.text}, before {check_metrics.show(name, self.before)})"
        else:
            figures += f" ({self.gate.text})"
        return f"{figures}: {'holds' if self.holds else 'broken'}"


@dataclass(frozen=True)
class ScenarioVerdict:
    """One scenario's verdict: every metric shown and every gate."""

    planned: Planned
    metrics: tuple[MetricVerdict, ...]
    gates: tuple[GateVerdict, ...]
    #: The (before, after) result documents, one pair per seed: what a report draws.
    runs: tuple[tuple[ResultDocument, ResultDocument], ...] = field(
        default=(), repr=False, compare=False
    )

    @property
    def name(self) -> str:
        return self.planned.check.name

    @property
    def broken(self) -> tuple[GateVerdict, ...]:
        return tuple(g for g in self.gates if g.holds is False)

    @property
    def worse(self) -> tuple[MetricVerdict, ...]:
        return tuple(m for m in self.metrics if m.fails)

    @property
    def passed(self) -> bool:
        return not self.broken and not self.worse


@dataclass(frozen=True)
class CheckResult:
    """The whole check: both sides, each scenario's verdict, the settings that differ."""

    before: Side
    after: Side
    scenarios: tuple[ScenarioVerdict, ...]
    watch: tuple[str, ...]
    ignored_environment: tuple[str, ...] = ()  # RETRY__* variables set, and ignored

    @property
    def passed(self) -> bool:
        return all(s.passed for s in self.scenarios)

    @property
    def diff(self) -> list[tuple[str, str | None, str | None]]:
        return settings_diff(self.before, self.after)

    def verdict(self) -> str:
        """One line: passed, or what broke where."""
        if self.passed:
            count = sum(len(s.gates) for s in self.scenarios)
            return (
                f"check passed: {len(self.scenarios)} scenario(s), {count} gate(s) hold and no "
                "watched metric is worse beyond its interval"
            )
        parts = []
        for scenario in self.scenarios:
            what = []
            if scenario.broken:
                gates = ", ".join(f"{g.gate.metric} {g.gate.text}" for g in scenario.broken)
                what.append(f"gate(s) broken: {gates}")
            if scenario.worse:
                names = ", ".join(row.name for row in scenario.worse)
                what.append(f"worse beyond the interval: {names}")
            if what:
                parts.append(f"{scenario.name}: {'; '.join(what)}")
        return "check failed: " + " | ".join(parts)


def run_check(
    planned: Sequence[Planned],
    before: Side,
    after: Side,
    executor: Executor,
    watch: Sequence[str] = DEFAULT_WATCH,
    on_done: Callable[[int, int], None] | None = None,
    ignored_environment: Sequence[str] = (),
) -> CheckResult:
    """Run every scenario with every seed on both sides, then judge them.

    A run is a pure function of (scenario, seed, settings), so the result does not depend on
    the executor or on the order runs finish in; with equal settings on both sides each run is
    made once and used for both.
    """
    same = before.settings == after.settings
    tasks: list[Task] = []
    for item in planned:
        for seed in item.seeds:
            tasks.append(Task(item.scenario, {}, seed, before.settings))
            if not same:
                tasks.append(Task(item.scenario, {}, seed, after.settings))
    docs: dict[int, ResultDocument] = {}

    def finished(index: int, doc: ResultDocument) -> None:
        docs[index] = doc
        if on_done is not None:
            on_done(len(docs), len(tasks))

    if on_done is not None:
        on_done(0, len(tasks))
    executor.run(tasks, finished)
    verdicts = []
    index = 0
    for item in planned:
        pairs = []
        for _ in item.seeds:
            first = docs[index]
            second = first if same else docs[index + 1]
            pairs.append((first, second))
            index += 1 if same else 2
        verdicts.append(judge(item, pairs, watch))
    return CheckResult(before, after, tuple(verdicts), tuple(watch), tuple(ignored_environment))


def judge(
    planned: Planned,
    pairs: Sequence[tuple[ResultDocument, ResultDocument]],
    watch: Sequence[str] = DEFAULT_WATCH,
) -> ScenarioVerdict:
    """One scenario's verdict from its (before, after) documents, one pair per seed."""
    docs = [doc for pair in pairs for doc in pair]
    gated = [gate.metric for gate in planned.check.gates]
    names = list(
        dict.fromkeys([*table_metrics(metric_table.DEFAULT_TABLE_METRICS, docs), *gated, *watch])
    )
    rows = []
    for name in names:
        row = _metric(name, pairs, name in watch)
        if row.before is None and row.after is None and name not in gated:
            continue  # nothing measured either side: no row to show
        rows.append(row)
    by_name = {row.name: row for row in rows}
    gates = []
    for gate in planned.check.gates:
        row = by_name[gate.metric]
        gates.append(
            GateVerdict(
                gate,
                row.before,
                row.after,
                gate.limit(row.before),
                gate.holds(row.after, row.before),
            )
        )
    return ScenarioVerdict(planned, tuple(rows), tuple(gates), tuple(pairs))


def _metric(
    name: str, pairs: Sequence[tuple[ResultDocument, ResultDocument]], watched: bool
) -> MetricVerdict:
    befores = [check_metrics.value(b, name) for b, _ in pairs]
    afters = [check_metrics.value(a, name) for _, a in pairs]
    diffs = [a - b for b, a in zip(befores, afters, strict=True) if a is not None and b is not None]
    change = _mean(diffs)
    interval = paired_interval(diffs)
    better = check_metrics.better(name)
    worse = interval is not None and (
        (better == "higher" and interval[1] < 0) or (better == "lower" and interval[0] > 0)
    )
    return MetricVerdict(
        name,
        _mean([v for v in befores if v is not None]),
        _mean([v for v in afters if v is not None]),
        change,
        interval,
        worse,
        watched,
    )


def _mean(values: Sequence[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def paired_interval(diffs: Sequence[float]) -> tuple[float, float] | None:
    """The 95% t interval of the mean of ``diffs`` (None with fewer than two)."""
    n = len(diffs)
    if n < 2:
        return None
    mean = math.fsum(diffs) / n
    sd = math.sqrt(math.fsum((d - mean) ** 2 for d in diffs) / (n - 1))
    half = t95(n - 1) * sd / math.sqrt(n)
    return mean - half, mean + half


# The JSON document (``retrysim check --json``).


class SideDocument(TypedDict):
    origin: str
    note: str
    lines: dict[str, str]


class SettingChange(TypedDict):
    variable: str
    before: str | None
    after: str | None


class MetricDocument(TypedDict):
    name: str
    better: Literal["higher", "lower", "neither"]
    before: float | None
    after: float | None
    change: float | None
    interval: list[float] | None
    worse: bool
    watched: bool


class GateDocument(TypedDict):
    metric: str
    expression: str
    before: float | None
    after: float | None
    limit: float | None
    holds: bool | None
    message: str


class ScenarioDocument(TypedDict):
    name: str
    source: str
    seeds: list[int]
    set: dict[str, object]
    passed: bool
    metrics: list[MetricDocument]
    gates: list[GateDocument]


class CheckDocument(TypedDict):
    schema_version: int
    passed: bool
    verdict: str
    before: SideDocument
    after: SideDocument
    settings_diff: list[SettingChange]
    ignored_environment: list[str]
    watch: list[str]
    scenarios: list[ScenarioDocument]


def document(result: CheckResult) -> CheckDocument:
    """The check as plain data: what ``--json`` prints (nothing in it depends on the machine,
    the clock or the executor, so the same check gives the same document)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "passed": result.passed,
        "verdict": result.verdict(),
        "before": _side(result.before),
        "after": _side(result.after),
        "settings_diff": [
            {"variable": name, "before": old, "after": new} for name, old, new in result.diff
        ],
        "ignored_environment": list(result.ignored_environment),
        "watch": list(result.watch),
        "scenarios": [_scenario(s) for s in result.scenarios],
    }


def _side(side: Side) -> SideDocument:
    return {"origin": side.origin, "note": side.note, "lines": dict(side.lines)}


def _scenario(verdict: ScenarioVerdict) -> ScenarioDocument:
    planned = verdict.planned
    return {
        "name": verdict.name,
        "source": planned.check.source,
        "seeds": list(planned.seeds),
        "set": dict(planned.check.sets),
        "passed": verdict.passed,
        "metrics": [
            {
                "name": row.name,
                "better": check_metrics.better(row.name),
                "before": row.before,
                "after": row.after,
                "change": row.change,
                "interval": None if row.interval is None else list(row.interval),
                "worse": row.worse,
                "watched": row.watched,
            }
            for row in verdict.metrics
        ],
        "gates": [
            {
                "metric": gate.gate.metric,
                "expression": gate.gate.text,
                "before": gate.before,
                "after": gate.after,
                "limit": gate.limit,
                "holds": gate.holds,
                "message": gate.message(),
            }
            for gate in verdict.gates
        ],
    }
