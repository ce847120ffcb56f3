"""Tuning: which ``RETRY__*`` values to set, found by simulating the candidates (``retrysim tune``).

The answer to "what should I set?" is a search over policy settings, each candidate judged on
every scenario the service lives through with the same seeds (common random numbers, so two
candidates differ by their settings and not by luck), an objective to optimise over the
scenarios' worst case (or a weighted mean), and constraints every scenario must meet.

- **Settings are per operation.** A scenario names its operation (worker, storage, scheduler,
  api) and ``RETRY__SCHEDULER_MAX_ATTEMPTS`` does not touch storage calls, so scenarios are
  tuned in groups of one operation each; a global setting (``profile``, ``jitter``) puts them
  all in one group.
- **The obvious candidates first.** The current settings (the scenario's, then the
  environment's, then the defaults; as they are, even outside the search space), the
  documented defaults, each setting the current run's diagnoses prescribe and all of them
  together (these clipped to the search space) are always tried (:class:`Baseline`,
  :mod:`retrysim.runs.tune_baselines`), before and beyond the search's budget.
- **Search that fits the space, the same everywhere.** A small finite grid is tried whole;
  anything larger or continuous is searched by seeded random search
  (:mod:`retrysim.runs.tune_search`), which needs no extra, so the same command and seeds give
  the same answer on every install. Optuna's TPE sampler runs only when asked
  (``--strategy optuna``, the ``retrysim[tune]`` extra).
- **Racing over seeds.** Candidates are judged on the first seeds, then those clearly worse
  than the best so far (their 95% interval wholly on the worse side of its interval, by more
  than the practical threshold) or clearly infeasible are dropped before the next seeds.
- **Differences within the noise are ties** (:mod:`retrysim.runs.tune_judge`), and among
  equivalent candidates the simplest wins (:mod:`retrysim.runs.tune_choose`, whose
  ``PREFERENCE`` is the order: the current values (fewest settings changed), then fewer
  attempts, then shorter waits, then lower p99 latency, then lower load). Then each knob whose
  change moves nothing beyond the noise goes back to its current value, and each value still
  recommended is explained (:class:`KnobExplanation`: the figures with it and with that knob
  back at its current value). An attempts knob also steps down, one attempt at a time, while
  the figures stay the same within the noise: no attempt is recommended that buys nothing.

Every run goes through :func:`retrysim.runs.sweep.compare`, so runs are parallel, checkpointed and
resumable like a sweep's (a run already made, in this tuning or under the same ``--out``, is
read back, not run again), and the result is a pure function of (scenarios, search, seeds,
budget, search seed).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrysim.errors import BadInputError
from retrysim.model.scenario import TIMEOUT_KEYS, Scenario
from retrysim.retry.options import GLOBAL_OPTIONS
from retrysim.retry.settings import RetrySettings
from retrysim.retry.variables import option_variable
from retrysim.runs.executors import Executor
from retrysim.runs.sweep import Variant, compare
from retrysim.runs.tune_baselines import current_values, documented, prescribed
from retrysim.runs.tune_choose import PREFERENCE as PREFERENCE
from retrysim.runs.tune_choose import Decision, at_current, choose, clearly_worse, leader, score
from retrysim.runs.tune_choose import Score as Score
from retrysim.runs.tune_judge import PARETO as PARETO
from retrysim.runs.tune_judge import THRESHOLDS as THRESHOLDS
from retrysim.runs.tune_judge import Baseline as Baseline
from retrysim.runs.tune_judge import Candidate as Candidate
from retrysim.runs.tune_judge import Group as Group
from retrysim.runs.tune_judge import KnobExplanation as KnobExplanation
from retrysim.runs.tune_judge import MetricFigure as MetricFigure
from retrysim.runs.tune_judge import differs, figures, maximized
from retrysim.runs.tune_judge import explained as explained
from retrysim.runs.tune_judge import pareto_front as pareto_front
from retrysim.runs.tune_search import DEFAULT_BUDGET, label_of, proposer, strategy
from retrysim.runs.tune_space import Constraint as Constraint
from retrysim.runs.tune_space import Dimension as Dimension
from retrysim.runs.tune_space import Objective as Objective
from retrysim.runs.tune_space import TuneError as TuneError
from retrysim.runs.tune_space import Tuning as Tuning
from retrysim.runs.tune_space import grid_size

#: Seeds added at each racing stage.
RACE_STEP = 2
#: The obvious candidates every group runs besides the search's: the current settings and the
#: defaults (the diagnoses' prescriptions and the knobs put back come on top, when there are any).
BASELINES = 2


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


def planned_runs(tuning: Tuning, scenarios: Sequence[Scenario]) -> int:
    """The runs a tuning plans before racing drops any: every candidate the search proposes,
    and the baselines, on every seed of every scenario. Counted, never built, so the CLI can
    ask for ``--yes`` as sweep does (``retrysim.cli.compare_cmd.check_size``) before a run."""
    if strategy(tuning) == "grid":
        size = grid_size(tuning.dimensions)
        candidates = size if tuning.budget is None else min(tuning.budget, size)
    else:
        candidates = tuning.budget if tuning.budget is not None else DEFAULT_BUDGET
    return (candidates + BASELINES) * tuning.seeds * len(scenarios)


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


class _Runs:
    """Runs candidates on a group's scenarios, seed range by seed range, through ``compare``."""

    def __init__(
        self,
        group: Group,
        tuning: Tuning,
        settings: RetrySettings | None,
        workers: int,
        checkpoint: Path | None,
        progress: _Progress,
        executor: Executor | None,
    ) -> None:
        self.group, self.tuning, self.settings = group, tuning, settings
        self.workers, self.checkpoint, self.progress = workers, checkpoint, progress
        self.executor = executor

    def run(self, candidates: list[Candidate], indices: range) -> None:
        if not candidates or not indices:
            return
        progress = self.progress
        progress.plan(len(candidates) * len(indices) * len(self.group.scenarios))
        variants = [Variant(c.label, c.sets) for c in candidates]
        for scenario in self.group.scenarios:
            stage = seeds_of(scenario, self.tuning)[indices.start : indices.stop]

            def seen(done: int, total: int, start: int = progress.done) -> None:
                if progress.on_done is not None:
                    progress.on_done(start + done, max(progress.total, start + done))

            results = compare(
                scenario,
                variants,
                stage,
                settings=self.settings,
                workers=self.workers,
                checkpoint=self.checkpoint,
                on_done=seen,
                executor=self.executor,
            )
            progress.finished(len(variants) * len(stage))
            for candidate, result in zip(candidates, results, strict=True):
                held = candidate.results.get(scenario.name)
                if held is None:
                    candidate.results[scenario.name] = result
                else:
                    held.documents.extend(result.documents)

    def complete(self, candidate: Candidate) -> None:
        """Run the seeds ``candidate`` has not run yet (all of them when new)."""
        self.run([candidate], range(candidate.seeds(), self.tuning.seeds))


class _Pool:
    """Every candidate of a group once, by label: settings proposed twice (a grid point that is
    also the current settings, a knob put back) reuse the runs already made."""

    def __init__(self, group: Group, tuning: Tuning, settings: RetrySettings | None) -> None:
        self.group, self.tuning, self.settings = group, tuning, settings
        self.known: dict[str, Candidate] = {}

    def get(self, sets: dict[str, Any]) -> tuple[Candidate, bool]:
        """The candidate of ``sets`` (keys in --search order) and whether it is new; a new one
        that makes no valid policy is set aside in ``group.invalid`` and never run."""
        ordered = {d.key: sets[d.key] for d in self.tuning.dimensions if d.key in sets}
        label = label_of(ordered) or "as is"
        if label in self.known:
            return self.known[label], False
        candidate = Candidate(ordered, label)
        self.known[label] = candidate
        if _valid(candidate, self.group, self.settings):
            self.group.candidates.append(candidate)
        else:
            self.group.invalid.append(candidate)
        return candidate, True

    def valid(self, candidate: Candidate) -> bool:
        return all(candidate is not c for c in self.group.invalid)


def _search(
    group: Group,
    tuning: Tuning,
    settings: RetrySettings | None,
    workers: int,
    checkpoint: Path | None,
    progress: _Progress,
    executor: Executor | None = None,
) -> None:
    runs = _Runs(group, tuning, settings, workers, checkpoint, progress, executor)
    pool = _Pool(group, tuning, settings)
    first = range(min(RACE_STEP, tuning.seeds))  # seed indices of the first stage
    _baselines(group, tuning, settings, pool, runs, first)
    group.search = strategy(tuning)
    proposals = proposer(group.search, tuning)
    proposed = 0
    while proposed < proposals.budget:
        offered = proposals.propose()[: proposals.budget - proposed]
        fresh = []
        for sets in offered:
            candidate, new = pool.get(sets)
            if new:
                fresh.append(candidate)
        if not fresh:
            break
        proposed += len(fresh)
        runs.run([c for c in fresh if pool.valid(c)], first)
        told = [pool.get(sets)[0] for sets in offered]
        proposals.observe([(c.sets, *_told(c, group, tuning)) for c in told])
    # Racing: more seeds for the candidates still in the running, stage by stage.
    done = len(first)
    while done < tuning.seeds:
        _race(group, tuning)
        stage = range(done, min(done + RACE_STEP, tuning.seeds))
        runs.run([c for c in group.candidates if c.dropped is None], stage)
        done = stage.stop
    decision = choose(group, tuning)
    if decision is not None:
        _settle(group, tuning, decision, pool, runs)


# --- the obvious candidates ------------------------------------------------------------------


def _baselines(
    group: Group,
    tuning: Tuning,
    settings: RetrySettings | None,
    pool: _Pool,
    runs: _Runs,
    first: range,
) -> None:
    """Try the current settings and the defaults, then what the current run's diagnoses
    prescribe, each alone and all together (see the module docstring)."""
    group.current = current_values(group.scenarios, tuning, settings)
    present = {k: v for k, v in group.current.items() if v is not None}  # None: left unset
    defaults = documented(tuning, group.scenarios[0].policy.operation)
    current = _try(group, [("current", present), ("defaults", defaults)], pool, runs, first)
    if current is not None:
        _try(group, prescribed(current, group.names, tuning), pool, runs, first)


def _try(
    group: Group, wanted: list[tuple[str, dict[str, Any]]], pool: _Pool, runs: _Runs, first: range
) -> Candidate | None:
    """Add ``wanted`` as baselines and run the new valid ones; the first one's candidate."""
    made = []
    for role, sets in wanted:
        candidate, new = pool.get(sets)
        if pool.valid(candidate):
            group.baselines.append(Baseline(role, candidate))
            if new:
                made.append(candidate)
    runs.run(made, first)
    if not wanted:
        return None
    head = pool.get(wanted[0][1])[0]
    return head if pool.valid(head) else None


# --- after the search: each knob back where it buys nothing, and what each value buys -------


def _settle(group: Group, tuning: Tuning, decision: Decision, pool: _Pool, runs: _Runs) -> None:
    best = decision.best
    kept: dict[str, str] = {}
    for dim in tuning.dimensions:
        if at_current(best, dim.key, group):
            continue
        other = _reverted(best, dim.key, group, pool, runs)
        if other is None or not score(other, group, tuning).feasible:
            continue
        if decision.accepts(other, group, tuning):
            kept[dim.key] = (
                f"{dim.option}={_shown(best.sets[dim.key])} changed nothing beyond the noise"
            )
            best = other
    for dim in tuning.dimensions:  # an attempt that buys nothing is not recommended either
        if not dim.option.endswith("max_attempts"):
            continue
        while not at_current(best, dim.key, group):
            fewer = _fewer(dim, best.sets[dim.key])
            if fewer is None:
                break
            other, _ = pool.get({**best.sets, dim.key: fewer})
            if not pool.valid(other):
                break
            runs.complete(other)
            if not score(other, group, tuning).feasible:
                break
            if not decision.accepts(other, group, tuning):
                break
            other.dropped = None
            best = other
    group.best = best
    group.ties = [c for c in decision.tie if c is not best and decision.accepts(c, group, tuning)]
    group.explanation = [
        _explain(best, dim, group, tuning, pool, runs, kept) for dim in tuning.dimensions
    ]


def _explain(
    best: Candidate,
    dim: Dimension,
    group: Group,
    tuning: Tuning,
    pool: _Pool,
    runs: _Runs,
    kept: dict[str, str],
) -> KnobExplanation:
    mine = figures(best, group, tuning)
    current = group.current.get(dim.key)
    if at_current(best, dim.key, group):
        why = kept.get(dim.key) or "no other value did better beyond the noise"
        if dim.key not in group.current:
            why += " (each scenario keeps its own value)"
        return KnobExplanation(dim.key, current, current, why, mine, None, None, {}, {})
    other = _reverted(best, dim.key, group, pool, runs)
    recommended = best.sets[dim.key]
    if other is None:  # the current value makes no policy with the other recommended values
        return KnobExplanation(dim.key, current, recommended, None, mine, None, None, {}, {})
    theirs = figures(other, group, tuning)
    deltas: dict[str, float | None] = {}
    significant = {}
    for metric, shown in mine.items():
        with_, without = shown["mean"], theirs[metric]["mean"]
        deltas[metric] = None if with_ is None or without is None else with_ - without
        sign = differs(metric, shown, theirs[metric], maximized(metric, tuning))
        significant[metric] = sign != 0
    return KnobExplanation(
        dim.key, current, recommended, None, mine, theirs, other, deltas, significant
    )


def _reverted(
    best: Candidate, key: str, group: Group, pool: _Pool, runs: _Runs
) -> Candidate | None:
    """``best`` with ``key`` back at its current value, run on every seed (None: no policy)."""
    sets = dict(best.sets)
    if group.current.get(key) is not None:
        sets[key] = group.current[key]
    else:
        sets.pop(key, None)
    other, _ = pool.get(sets)
    if not pool.valid(other):
        return None
    runs.complete(other)
    other.dropped = None  # judged on every seed now, whatever racing said at fewer
    return other


def _fewer(dim: Dimension, value: Any) -> Any:
    """The next smaller value of an attempts knob in the search space (None: there is none)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if dim.values:
        below = [
            v for v in dim.values if isinstance(v, int) and not isinstance(v, bool) and v < value
        ]
        return max(below, default=None)
    assert dim.low is not None
    return int(value) - 1 if dim.integer and value - 1 >= dim.low else None


def _shown(value: Any) -> str:
    return label_of({"v": value}).removeprefix("v=")


# --- judging ---------------------------------------------------------------------------------


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


def score_of(candidate: Candidate, group: Group, tuning: Tuning) -> Score:
    """What the report shows of a candidate (public for the CLI and tests)."""
    return score(candidate, group, tuning)


def _told(candidate: Candidate, group: Group, tuning: Tuning) -> tuple[float | None, list[float]]:
    """What a model-based search learns of a candidate: its objective, and a penalty per
    constraint (<= 0: met; otherwise how far past its limit, relatively)."""
    scored = score(candidate, group, tuning)
    penalties = [
        min(c.violation(v), 1e9) if not c.holds(v) else -1.0
        for c, v in zip(tuning.constraints, scored.constraints, strict=True)
    ]
    return scored.objective, penalties


def _race(group: Group, tuning: Tuning) -> None:
    """Drop candidates clearly worse than the best feasible one, or clearly infeasible."""
    alive = [c for c in group.candidates if c.dropped is None]
    for candidate in alive:
        reason = _clearly_infeasible(candidate, group, tuning)
        if reason:
            candidate.dropped = reason
    feasible = [c for c in alive if c.dropped is None and score(c, group, tuning).feasible]
    if not feasible:
        return
    best = leader(feasible, group, tuning)
    for candidate in feasible:
        if candidate is not best and clearly_worse(candidate, best, group, tuning):
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


#: The decision step on its own (tests drive it on hand-made candidates).
_choose = choose
