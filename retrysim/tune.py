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

Every run goes through :func:`retrysim.sweep.compare`, so runs are parallel, checkpointed and
resumable like a sweep's, and the result is a pure function of (scenarios, search, seeds,
budget, search seed).
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from retrysim.errors import BadInputError
from retrysim.metric_table import METRIC_TABLE
from retrysim.retry.options import GLOBAL_OPTIONS
from retrysim.retry.settings import RetrySettings
from retrysim.retry.variables import option_variable
from retrysim.scenario import Scenario
from retrysim.sweep import Variant, VariantResult, compare

#: Grids up to this many candidates are tried whole when no --budget is given.
EXHAUSTIVE_LIMIT = 64
#: Candidates a search proposes when no --budget is given and the space is not a small grid.
DEFAULT_BUDGET = 40
#: Candidates Optuna proposes at a time: fixed, so results do not depend on the worker count.
BATCH = 8
#: Seeds added at each racing stage.
RACE_STEP = 2
#: The metrics a Pareto front weighs: success against tail latency and load.
PARETO = (("success_rate", True), ("p99_latency", False), ("amplification", False))
_BETTER = {m.name: m.better for m in METRIC_TABLE}
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}


class TuneError(BadInputError):
    """The search, objective or constraints cannot be tuned as given."""


@dataclass(frozen=True)
class Dimension:
    """One setting to search: a range ``low..high`` (whole numbers when both are) or values."""

    key: str  # dotted scenario key under policy: policy.max_attempts, policy.breaker.enabled
    low: float | None = None
    high: float | None = None
    integer: bool = False
    values: tuple[Any, ...] = ()

    @property
    def option(self) -> str:
        return self.key.removeprefix("policy.")

    @property
    def finite(self) -> bool:
        return bool(self.values) or self.integer

    def grid(self) -> list[Any]:
        if self.values:
            return list(self.values)
        assert self.integer and self.low is not None and self.high is not None
        return list(range(int(self.low), int(self.high) + 1))


@dataclass(frozen=True)
class Constraint:
    """``metric op limit``, e.g. ``p99_latency <= 30``, held in every scenario of a group."""

    metric: str
    op: str
    limit: float

    def holds(self, value: float | None) -> bool:
        return value is not None and _OPS[self.op](value, self.limit)

    def violation(self, value: float | None) -> float:
        """How far ``value`` is past the limit, relative to the limit (0 when it holds)."""
        if self.holds(value):
            return 0.0
        if value is None:
            return math.inf
        return abs(value - self.limit) / max(abs(self.limit), 1e-12)

    def worst(self, values: Sequence[float | None]) -> float | None:
        """The value across scenarios that comes closest to breaking the constraint."""
        known = [v for v in values if v is not None]
        if len(known) < len(values) or not known:
            return None
        return max(known) if self.op in ("<=", "<") else min(known)

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.limit:g}"


@dataclass(frozen=True)
class Objective:
    metric: str
    maximize: bool

    @classmethod
    def of(cls, metric: str, maximize: bool | None = None) -> Objective:
        if maximize is None:
            better = _BETTER.get(metric)
            if better not in ("higher", "lower"):
                raise TuneError(
                    f"--objective {metric}: say --maximize or --minimize (the metric has no "
                    "better direction of its own)"
                )
            maximize = better == "higher"
        return cls(metric, maximize)


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


@dataclass(frozen=True)
class Tuning:
    """Everything a tuning run is asked: the search space, the goal, and how to spend runs."""

    dimensions: Sequence[Dimension]
    objective: Objective
    constraints: Sequence[Constraint] = ()
    seeds: int = 3  # seeds per candidate and scenario, the same for every candidate
    first_seed: int | None = None  # default: each scenario's own seed, then the next ones
    budget: int | None = None
    how: str = "worst"  # worst | mean
    weights: dict[str, float] = field(default_factory=dict)  # scenario name -> weight (mean)
    search: str = "auto"  # auto | grid | optuna | random
    search_seed: int = 0


def tune(
    scenarios: Sequence[Scenario],
    tuning: Tuning,
    settings: RetrySettings | None = None,
    workers: int = 1,
    checkpoint: Path | None = None,
    on_done: Callable[[int, int], None] | None = None,
) -> TuneResult:
    """Search ``tuning``'s space over ``scenarios``; see the module docstring.

    ``on_done(done, total)`` counts runs (candidate x scenario x seed); the total grows as the
    search proposes candidates and shrinks as racing drops them.
    """
    check(tuning, scenarios)
    progress = _Progress(on_done)
    groups = []
    for operation, members in _groups(scenarios, tuning.dimensions):
        group = Group(operation, members)
        _search(group, tuning, settings, workers, checkpoint, progress)
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
            )
            progress.finished(len(variants) * len(stage))
            for candidate, result in zip(candidates, results, strict=True):
                held = candidate.results.get(scenario.name)
                if held is None:
                    candidate.results[scenario.name] = result
                else:
                    held.documents.extend(result.documents)

    group.search = _strategy(tuning)
    proposals = _proposer(group.search, tuning)
    evaluated: list[Candidate] = []
    known: set[str] = set()
    invalid: list[Candidate] = []
    while len(evaluated) < proposals.budget:
        batch = [c for c in proposals.propose() if c.label not in known]
        if not batch:
            break
        batch = batch[: proposals.budget - len(evaluated)]
        known.update(c.label for c in batch)
        valid = [c for c in batch if _valid(c, group, settings)]
        invalid += [c for c in batch if c.dropped is not None]
        evaluate(valid, first)
        proposals.observe(batch, lambda c: _score(c, group, tuning))
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


def _better(a: float, b: float, maximize: bool) -> bool:
    return a > b if maximize else a < b


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
    best = _pick(feasible, scores, maximize)
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


def _pick(candidates: Sequence[Candidate], scores: dict[int, Score], maximize: bool) -> Candidate:
    """The best by objective; ties go to the first proposed (deterministic)."""
    best = candidates[0]
    for candidate in candidates[1:]:
        a, b = scores[id(candidate)].objective, scores[id(best)].objective
        if a is not None and (b is None or _better(a, b, maximize)):
            best = candidate
    return best


def _choose(group: Group, tuning: Tuning) -> None:
    """The recommendation: the best feasible candidate judged on every seed."""
    full = [c for c in group.candidates if c.dropped is None and c.seeds() == tuning.seeds]
    scores = {id(c): _score(c, group, tuning) for c in group.candidates}
    feasible = [c for c in full if scores[id(c)].feasible]
    if feasible:
        group.best = _pick(feasible, scores, tuning.objective.maximize)
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


# --- proposals -------------------------------------------------------------------------------


def _strategy(tuning: Tuning) -> str:
    if tuning.search != "auto":
        return tuning.search
    dims = tuning.dimensions
    if all(d.finite for d in dims):
        size = math.prod(len(d.grid()) for d in dims)
        if size <= (tuning.budget if tuning.budget is not None else EXHAUSTIVE_LIMIT):
            return "grid"
    return "optuna" if _optuna_available() else "random"


def _optuna_available() -> bool:
    try:
        import optuna  # noqa: F401
    except ImportError:
        return False
    return True


class _Proposer:
    budget: int

    def propose(self) -> list[Candidate]:
        raise NotImplementedError

    def observe(self, batch: list[Candidate], score: Callable[[Candidate], Score]) -> None:
        """Learn from a scored batch (only the model-based search does)."""


def _proposer(strategy: str, tuning: Tuning) -> _Proposer:
    if strategy == "grid":
        return _Grid(tuning)
    if strategy == "optuna":
        if not _optuna_available():
            raise TuneError("--strategy optuna needs Optuna: pip install 'retrysim[tune]'")
        return _Optuna(tuning)
    return _Random(tuning)


def candidate(sets: dict[str, Any]) -> Candidate:
    label = ", ".join(f"{k.removeprefix('policy.')}={_show(v)}" for k, v in sets.items())
    return Candidate(dict(sets), label)


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).lower() if isinstance(value, bool) else str(value)


class _Grid(_Proposer):
    def __init__(self, tuning: Tuning) -> None:
        dims = tuning.dimensions
        combos = itertools.product(*(d.grid() for d in dims))
        self.all = [candidate(dict(zip((d.key for d in dims), c, strict=True))) for c in combos]
        self.budget = len(self.all) if tuning.budget is None else min(tuning.budget, len(self.all))
        self.given = False

    def propose(self) -> list[Candidate]:
        if self.given:
            return []
        self.given = True
        return self.all[: self.budget]


def _round(dim: Dimension, value: float) -> Any:
    return round(value) if dim.integer else round(float(value), 6)


class _Random(_Proposer):
    """Seeded random search: a draw per dimension per candidate, uniform on each range."""

    def __init__(self, tuning: Tuning) -> None:
        import numpy as np

        self.dims = tuning.dimensions
        self.budget = tuning.budget if tuning.budget is not None else DEFAULT_BUDGET
        self.rng = np.random.default_rng(tuning.search_seed)
        self.tries = 0

    def propose(self) -> list[Candidate]:
        self.tries += 1
        if self.tries > 50:  # a small space whose every point was drawn already
            return []
        out = []
        for _ in range(BATCH):
            sets = {}
            for dim in self.dims:
                if dim.values:
                    sets[dim.key] = dim.values[int(self.rng.integers(len(dim.values)))]
                else:
                    assert dim.low is not None and dim.high is not None
                    if dim.integer:
                        sets[dim.key] = int(self.rng.integers(int(dim.low), int(dim.high) + 1))
                    else:
                        sets[dim.key] = _round(dim, self.rng.uniform(dim.low, dim.high))
            out.append(candidate(sets))
        return out


class _Optuna(_Proposer):
    """Optuna's TPE sampler, seeded, asked a fixed batch at a time, told each score in order."""

    def __init__(self, tuning: Tuning) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.optuna = optuna
        self.tuning = tuning
        self.budget = tuning.budget if tuning.budget is not None else DEFAULT_BUDGET
        # Optuna 5 takes constraints from each trial; before it, from a function of the trial.
        self.per_trial = hasattr(optuna.trial.Trial, "set_constraint")
        sampler = optuna.samplers.TPESampler(
            seed=tuning.search_seed,
            constraints_func=(
                None if self.per_trial else lambda trial: trial.user_attrs["constraints"]
            ),
        )
        direction: Literal["maximize", "minimize"] = (
            "maximize" if tuning.objective.maximize else "minimize"
        )
        self.study = optuna.create_study(direction=direction, sampler=sampler)
        self.trials: dict[str, Any] = {}

    def propose(self) -> list[Candidate]:
        out: list[Candidate] = []
        for _ in range(BATCH):
            trial = self.study.ask()
            sets = {}
            for dim in self.tuning.dimensions:
                if dim.values:
                    sets[dim.key] = trial.suggest_categorical(dim.key, list(dim.values))
                elif dim.integer:
                    assert dim.low is not None and dim.high is not None
                    sets[dim.key] = trial.suggest_int(dim.key, int(dim.low), int(dim.high))
                else:
                    assert dim.low is not None and dim.high is not None
                    value = trial.suggest_float(dim.key, dim.low, dim.high)
                    sets[dim.key] = _round(dim, value)
            found = candidate(sets)
            if found.label in self.trials or any(c.label == found.label for c in out):
                self.study.tell(trial, state=self.optuna.trial.TrialState.PRUNED)
                continue
            self.trials[found.label] = trial
            out.append(found)
        return out

    def observe(self, batch: list[Candidate], score: Callable[[Candidate], Score]) -> None:
        for item in batch:
            trial = self.trials[item.label]
            scored = score(item)
            penalties = [
                c.violation(v) if not c.holds(v) else -1.0
                for c, v in zip(self.tuning.constraints, scored.constraints, strict=True)
            ]
            penalties = [min(p, 1e9) for p in penalties]  # <= 0: met
            if self.per_trial:
                for index, penalty in enumerate(penalties):
                    trial.set_constraint(f"constraint{index}", penalty)
            else:
                trial.set_user_attr("constraints", penalties)
            value = scored.objective
            if value is None:
                self.study.tell(trial, state=self.optuna.trial.TrialState.FAIL)
            else:
                self.study.tell(trial, value)
