"""Tuning: which ``RETRY__*`` values to set, found by simulating the candidates (``retrysim tune``).

The answer to "what should I set?" is a search over policy settings, each candidate judged on
every scenario the service lives through with the same seeds (common random numbers, so two
candidates differ by their settings and not by luck), an objective to optimise over the
scenarios' worst case (or a weighted mean), and constraints every scenario must meet.

- **Settings are per operation.** A scenario names its operation (worker, storage, scheduler,
  api) and ``RETRY__SCHEDULER_MAX_ATTEMPTS`` does not touch storage calls, so scenarios are
  tuned in groups of one operation each; a global setting (``profile``, ``jitter``) puts them
  all in one group.
- **Search that fits the space.** A small finite grid is tried exhaustively; anything larger or
  continuous is searched by Optuna's TPE sampler (seeded, with the constraints), batch by batch,
  when the ``retrysim[tune]`` extra is installed, and by seeded random search otherwise.
- **Racing over seeds.** Candidates are judged on the first seeds, then those clearly worse
  than the best so far (their 95% interval entirely below its interval) or clearly infeasible
  are dropped before the next seeds: the budget goes to the close calls.

Every run goes through :func:`retrysim.runs.sweep.compare`, so runs are parallel, checkpointed and
resumable like a sweep's, and the result is a pure function of (scenarios, search, seeds,
budget, search seed).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retrysim.errors import BadInputError
from retrysim.model.scenario import TIMEOUT_KEYS, Scenario
from retrysim.retry.options import GLOBAL_OPTIONS
from retrysim.retry.settings import RetrySettings
from retrysim.retry.variables import option_variable
from retrysim.runs.executors import Executor
from retrysim.runs.sweep import Variant, VariantResult, compare
from retrysim.runs.tune_search import label_of, proposer, strategy
from retrysim.runs.tune_space import Constraint as Constraint
from retrysim.runs.tune_space import Dimension as Dimension
from retrysim.runs.tune_space import Objective as Objective
from retrysim.runs.tune_space import TuneError as TuneError
from retrysim.runs.tune_space import Tuning as Tuning

#: Seeds added at each racing stage.
RACE_STEP = 2
#: The metrics a Pareto front weighs: success against tail latency and load.
PARETO = (("success_rate", True), ("p99_latency", False), ("amplification", False))


@dataclass
class Candidate:
    """One set of settings and its documents per scenario, seed by seed."""

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

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.scenarios]

    @property
    def operations(self) -> list[str]:
        return sorted({s.policy.operation for s in self.scenarios})


@dataclass
class TuneResult:
    groups: list[Group]
    tuning: Tuning


def tune(
    scenarios: Sequence[Scenario],
    tuning: Tuning,
    settings: RetrySettings | None = None,
    workers: int = 1,
    checkpoint: Path | None = None,
    on_done: Callable[[int, int], None] | None = None,
    *,
    executor: Executor | None = None,
) -> TuneResult:
    """Search ``tuning``'s space over ``scenarios``; see the module docstring.

    ``on_done(done, total)`` counts runs (candidate x scenario x seed); the total grows as the
    search proposes candidates and shrinks as racing drops them. ``executor`` runs them
    (:mod:`retrysim.runs.executors`; else ``workers`` local processes).
    """
    check(tuning, scenarios)
    progress = _Progress(on_done)
    groups = []
    for operation, members in _groups(scenarios, tuning.dimensions):
        group = Group(operation, members)
        _search(group, tuning, settings, workers, checkpoint, progress, executor)
        groups.append(group)
    return TuneResult(groups, tuning)


def seeds_of(scenario: Scenario, tuning: Tuning) -> list[int]:
    """The seeds every candidate runs ``scenario`` with (common random numbers)."""
    first = scenario.seed if tuning.first_seed is None else tuning.first_seed
    return [first + i for i in range(tuning.seeds)]


def check(tuning: Tuning, scenarios: Sequence[Scenario]) -> None:
    """Refuse, before any run, what cannot be tuned: one line naming what is wrong."""
    if not tuning.dimensions:
        raise TuneError("tune needs at least one --search KEY=LOW..HIGH or KEY=V1,V2")
    if tuning.seeds < 1:
        raise TuneError(f"--seeds {tuning.seeds}: at least 1")
    if tuning.budget is not None and tuning.budget < 1:
        raise TuneError(f"--budget {tuning.budget}: at least 1 candidate")
    for dim in tuning.dimensions:
        if dim.key == TIMEOUT_KEYS[0]:  # the same timeout as the policy option: search that
            raise TuneError(
                f"--search {dim.key}: search {TIMEOUT_KEYS[1]}, the same timeout, which "
                "RETRY__<OPERATION>_ATTEMPT_TIMEOUT sets"
            )
        if not dim.key.startswith("policy."):
            raise TuneError(
                f"--search {dim.key}: only policy settings (policy.*) have RETRY__ variables "
                "to recommend; change the scenario with --set"
            )
        for scenario in scenarios:
            if option_variable(dim.option, scenario.policy.operation) is None:
                raise TuneError(f"--search {dim.key}: no RETRY__ variable sets this option")
    if tuning.how not in ("worst", "mean"):
        raise TuneError(f"--aggregate {tuning.how!r}: allowed: worst, mean")
    if tuning.search not in ("auto", "grid", "optuna", "random"):
        raise TuneError(f"--strategy {tuning.search!r}: allowed: auto, grid, optuna, random")
    if tuning.search == "grid" and not all(d.finite for d in tuning.dimensions):
        raise TuneError("--strategy grid needs whole-number ranges or listed values")
    names = [s.name for s in scenarios]
    unknown = sorted(set(tuning.weights) - set(names))
    if unknown:
        raise TuneError(f"--weight {unknown[0]}: not one of the scenarios ({', '.join(names)})")


# --- groups ----------------------------------------------------------------------------------


def _groups(
    scenarios: Sequence[Scenario], dimensions: Sequence[Dimension]
) -> list[tuple[str | None, list[Scenario]]]:
    if any(d.option in GLOBAL_OPTIONS for d in dimensions):
        return [(None, list(scenarios))]
    by_operation: dict[str, list[Scenario]] = {}
    for scenario in scenarios:
        by_operation.setdefault(scenario.policy.operation, []).append(scenario)
    return list(by_operation.items())


# --- the search ------------------------------------------------------------------------------


class _Progress:
    def __init__(self, on_done: Callable[[int, int], None] | None) -> None:
        self.on_done = on_done
        self.done = 0
        self.total = 0

    def plan(self, runs: int) -> None:
        self.total += runs
        self._report()

    def finished(self, runs: int) -> None:
        self.done += runs
        self._report()

    def _report(self) -> None:
        if self.on_done is not None:
            self.on_done(self.done, max(self.total, self.done))


def _search(
    group: Group,
    tuning: Tuning,
    settings: RetrySettings | None,
    workers: int,
    checkpoint: Path | None,
    progress: _Progress,
    executor: Executor | None = None,
) -> None:
    first = range(min(RACE_STEP, tuning.seeds))  # seed indices of the first stage

    def evaluate(candidates: list[Candidate], indices: range) -> None:
        if not candidates or not indices:
            return
        progress.plan(len(candidates) * len(indices) * len(group.scenarios))
        variants = [Variant(c.label, c.sets) for c in candidates]
        for scenario in group.scenarios:
            stage = seeds_of(scenario, tuning)[indices.start : indices.stop]

            def seen(done: int, total: int, start: int = progress.done) -> None:
                if progress.on_done is not None:
                    progress.on_done(start + done, max(progress.total, start + done))

            results = compare(
                scenario,
                variants,
                stage,
                settings=settings,
                workers=workers,
                checkpoint=checkpoint,
                on_done=seen,
                executor=executor,
            )
            progress.finished(len(variants) * len(stage))
            for candidate, result in zip(candidates, results, strict=True):
                held = candidate.results.get(scenario.name)
                if held is None:
                    candidate.results[scenario.name] = result
                else:
                    held.documents.extend(result.documents)

    group.search = strategy(tuning)
    proposals = proposer(group.search, tuning)
    evaluated: list[Candidate] = []
    known: set[str] = set()
    invalid: list[Candidate] = []
    while len(evaluated) < proposals.budget:
        offered = [Candidate(sets, label_of(sets)) for sets in proposals.propose()]
        batch = [c for c in offered if c.label not in known]
        if not batch:
            break
        batch = batch[: proposals.budget - len(evaluated)]
        known.update(c.label for c in batch)
        valid = [c for c in batch if _valid(c, group, settings)]
        invalid += [c for c in batch if c.dropped is not None]
        evaluate(valid, first)
        proposals.observe([(c.sets, *_told(c, group, tuning)) for c in batch])
        evaluated.extend(valid)
    group.candidates = evaluated
    group.invalid = invalid
    # Racing: more seeds for the candidates still in the running, stage by stage.
    done = len(first)
    while done < tuning.seeds:
        _race(group, tuning)
        stage = range(done, min(done + RACE_STEP, tuning.seeds))
        evaluate([c for c in evaluated if c.dropped is None], stage)
        done = stage.stop
    _choose(group, tuning)


def _valid(candidate: Candidate, group: Group, settings: RetrySettings | None) -> bool:
    """Whether the candidate makes a policy in every scenario (min_wait <= max_wait, ...)."""
    from retrysim.sim.policy import policy_for

    for scenario in group.scenarios:
        try:
            policy_for(scenario.with_overrides(candidate.sets), settings)
        except (BadInputError, ValueError) as error:
            candidate.dropped = f"invalid: {str(error).splitlines()[0]}"
            return False
    return True


@dataclass
class Score:
    """A candidate on one group: the objective across scenarios, and each constraint's worst."""

    objective: float | None
    interval: tuple[float, float] | None  # of the scenario that sets the objective
    constraints: list[float | None]
    feasible: bool
    violation: float


def _score(candidate: Candidate, group: Group, tuning: Tuning) -> Score:
    objective, names = tuning.objective, group.names
    means = {n: candidate.mean(n, objective.metric) for n in names}
    known = {n: v for n, v in means.items() if v is not None}
    value: float | None = None
    interval = None
    if len(known) == len(names):
        if tuning.how == "mean":
            weights = {n: tuning.weights.get(n, 1.0) for n in names}
            total = sum(weights.values())
            value = sum(known[n] * weights[n] for n in names) / total
            intervals = [candidate.interval(n, objective.metric) for n in names]
            if all(i is not None for i in intervals):
                lows = sum(i[0] * weights[n] for n, i in zip(names, intervals, strict=True) if i)
                highs = sum(i[1] * weights[n] for n, i in zip(names, intervals, strict=True) if i)
                interval = (lows / total, highs / total)
        else:
            pick = min if objective.maximize else max
            worst = pick(names, key=lambda n: known[n])
            value, interval = known[worst], candidate.interval(worst, objective.metric)
    worsts = [c.worst([candidate.mean(n, c.metric) for n in names]) for c in tuning.constraints]
    holds = [c.holds(v) for c, v in zip(tuning.constraints, worsts, strict=True)]
    violation = sum(c.violation(v) for c, v in zip(tuning.constraints, worsts, strict=True))
    return Score(value, interval, worsts, all(holds) and value is not None, violation)


def _told(candidate: Candidate, group: Group, tuning: Tuning) -> tuple[float | None, list[float]]:
    """What a model-based search learns of a candidate: its objective, and a penalty per
    constraint (<= 0: met; otherwise how far past its limit, relatively)."""
    scored = _score(candidate, group, tuning)
    penalties = [
        min(c.violation(v), 1e9) if not c.holds(v) else -1.0
        for c, v in zip(tuning.constraints, scored.constraints, strict=True)
    ]
    return scored.objective, penalties


def _race(group: Group, tuning: Tuning) -> None:
    """Drop candidates clearly worse than the best feasible one, or clearly infeasible."""
    maximize = tuning.objective.maximize
    alive = [c for c in group.candidates if c.dropped is None]
    scores = {id(c): _score(c, group, tuning) for c in alive}
    for candidate in alive:
        reason = _clearly_infeasible(candidate, group, tuning)
        if reason:
            candidate.dropped = reason
    feasible = [c for c in alive if c.dropped is None and scores[id(c)].feasible]
    if not feasible:
        return
    best = _pick(feasible, scores, maximize, group)
    bound = scores[id(best)].interval
    if bound is None:
        return
    for candidate in feasible:
        mine = scores[id(candidate)].interval
        if candidate is best or mine is None:
            continue
        if (maximize and mine[1] < bound[0]) or (not maximize and mine[0] > bound[1]):
            candidate.dropped = f"clearly worse than {best.label} after {candidate.seeds()} seeds"


def _clearly_infeasible(candidate: Candidate, group: Group, tuning: Tuning) -> str | None:
    """A constraint whose 95% interval lies wholly on the wrong side in some scenario."""
    for constraint in tuning.constraints:
        for name in group.names:
            interval = candidate.interval(name, constraint.metric)
            if interval is None:
                continue
            lo, hi = interval
            wrong_side = (
                lo > constraint.limit if constraint.op in ("<=", "<") else hi < constraint.limit
            )
            if wrong_side:
                return f"breaks {constraint} on {name} after {candidate.seeds()} seeds"
    return None


def _pick(
    candidates: Sequence[Candidate], scores: dict[int, Score], maximize: bool, group: Group
) -> Candidate:
    """The best by objective; a tie (100% success is common) goes to the lighter load, then
    the shorter p99 latency, then the first proposed: deterministic, and the cheaper cure."""

    def key(candidate: Candidate) -> tuple[float, ...]:
        objective = scores[id(candidate)].objective
        if objective is None:
            return (math.inf, math.inf, math.inf)
        tail = [_worst(candidate, group, metric) for metric in ("amplification", "p99_latency")]
        return (
            -objective if maximize else objective,
            *(math.inf if v is None else v for v in tail),
        )

    return min(candidates, key=key)  # min keeps the first of equal keys


def _worst(candidate: Candidate, group: Group, metric: str) -> float | None:
    values = [candidate.mean(name, metric) for name in group.names]
    known = [v for v in values if v is not None]
    return max(known) if known and len(known) == len(values) else None


def _choose(group: Group, tuning: Tuning) -> None:
    """The recommendation: the best feasible candidate judged on every seed."""
    full = [c for c in group.candidates if c.dropped is None and c.seeds() == tuning.seeds]
    scores = {id(c): _score(c, group, tuning) for c in group.candidates}
    feasible = [c for c in full if scores[id(c)].feasible]
    if feasible:
        group.best = _pick(feasible, scores, tuning.objective.maximize, group)
        return
    ranked = sorted(group.candidates, key=lambda c: scores[id(c)].violation)
    if ranked:
        group.closest = ranked[0]
        group.binding = binding_constraint(group, tuning, scores)


def binding_constraint(group: Group, tuning: Tuning, scores: dict[int, Score]) -> str | None:
    """The constraint that rules out the most candidates (ties: the largest total violation)."""
    if not tuning.constraints:
        return None
    tally = []
    for index, constraint in enumerate(tuning.constraints):
        broken = [
            s.constraints[index]
            for s in scores.values()
            if not constraint.holds(s.constraints[index])
        ]
        total = sum(constraint.violation(v) for v in broken)
        tally.append((len(broken), total, str(constraint)))
    count, _, name = max(tally)
    return name if count else None


def score_of(candidate: Candidate, group: Group, tuning: Tuning) -> Score:
    """What the report shows of a candidate (public for the CLI and tests)."""
    return _score(candidate, group, tuning)


def pareto_front(group: Group) -> list[Candidate]:
    """Candidates no other beats on every one of success, p99 latency and load (worst case)."""

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

    points = [(c, p) for c in group.candidates if (p := point(c)) is not None]
    front, taken = [], set()
    for c, p in points:
        dominated = any(
            q != p and all(qi >= pi for qi, pi in zip(q, p, strict=True)) for _, q in points
        )
        if not dominated and p not in taken:  # equal points: the first proposed stands for all
            front.append(c)
            taken.add(p)
    return front
