"""Which candidate ``retrysim tune`` recommends: the simplest settings within the noise.

1. Only candidates judged on every seed that meet every constraint compete.
2. The **tie**: those whose objective is the best's within the noise
   (:func:`retrysim.runs.tune_judge.differs`: the seeds' 95% interval or the practical
   threshold per metric, whichever is larger).
3. Of the tie, those no obvious candidate (current settings, defaults, the diagnoses'
   prescriptions) beats on success, p99 latency and load beyond the noise, and no other member
   either; of these, when obvious candidates are in the tie, those at least as good as each of
   them on all three.
4. The one of them with the lowest p99 latency, then load, sets the figures to match; every
   candidate of the tie the same as it within the noise is **equivalent**, and among
   equivalents the tuner takes :data:`PREFERENCE`'s order.

The tuner then puts each knob back to its current value where that changes nothing beyond the
noise (:mod:`retrysim.runs.tune`), so a value is recommended only when it buys something.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from retrysim.runs.tune_judge import (
    Candidate,
    Group,
    MetricFigure,
    dominates,
    equivalent,
    figure,
    figures,
    no_worse,
    practical,
)
from retrysim.runs.tune_space import Tuning

#: The order among equivalent candidates, as the README states it.
PREFERENCE = (
    "the current values (fewest settings changed), then fewer attempts, then shorter waits "
    "(each *_wait key in --search order), then lower p99 latency, then lower load, then the "
    "first tried"
)


@dataclass
class Score:
    """A candidate on one group: the objective across scenarios, and each constraint's worst."""

    objective: float | None
    interval: tuple[float, float] | None  # of the scenario that sets the objective
    constraints: list[float | None]
    feasible: bool
    violation: float


def score(candidate: Candidate, group: Group, tuning: Tuning) -> Score:
    shown = figure(candidate, group.names, tuning.objective.metric, tuning)
    names = group.names
    worsts = [c.worst([candidate.mean(n, c.metric) for n in names]) for c in tuning.constraints]
    holds = [c.holds(v) for c, v in zip(tuning.constraints, worsts, strict=True)]
    violation = sum(c.violation(v) for c, v in zip(tuning.constraints, worsts, strict=True))
    value = shown["mean"]
    return Score(value, shown["ci95"], worsts, all(holds) and value is not None, violation)


def leader(candidates: Sequence[Candidate], group: Group, tuning: Tuning) -> Candidate:
    """The best objective (racing's yardstick); ties: the lower p99, the lighter load, the
    first proposed."""

    def key(candidate: Candidate) -> tuple[float, ...]:
        shown = figures(candidate, group, tuning)
        objective = shown[tuning.objective.metric]["mean"]
        if objective is None:
            return (math.inf, math.inf, math.inf)
        return (
            -objective if tuning.objective.maximize else objective,
            _or_inf(shown["p99_latency"]),
            _or_inf(shown["amplification"]),
        )

    return min(candidates, key=key)  # min keeps the first of equal keys


def clearly_worse(candidate: Candidate, best: Candidate, group: Group, tuning: Tuning) -> bool:
    """Racing: the candidate's objective interval lies wholly on the worse side of the best's,
    further away than the practical threshold (so a practical tie is never dropped)."""
    metric = tuning.objective.metric
    mine = figure(candidate, group.names, metric, tuning)
    theirs = figure(best, group.names, metric, tuning)
    a, b = mine["ci95"], theirs["ci95"]
    if a is None or b is None or mine["mean"] is None or theirs["mean"] is None:
        return False
    gap = practical(metric, mine["mean"], theirs["mean"])
    if tuning.objective.maximize:
        return a[1] + gap < b[0]
    return a[0] - gap > b[1]


def _or_inf(shown: MetricFigure) -> float:
    return math.inf if shown["mean"] is None else shown["mean"]


@dataclass
class Decision:
    """What :func:`choose` decided, and what a simpler variant must match to replace it."""

    best: Candidate
    tie: list[Candidate]  # the objective's tie (step 2)
    anchors: list[Candidate]  # the obvious candidates in the tie the answer must match
    guards: list[Candidate]  # every obvious candidate judged on every seed, feasible

    def accepts(self, other: Candidate, group: Group, tuning: Tuning) -> bool:
        """Whether ``other`` (judged on every seed, feasible) may stand for the best: the same
        within the noise, at least as good as every anchor, beaten by no obvious candidate."""
        mine = figures(other, group, tuning)
        if not equivalent(mine, figures(self.best, group, tuning), tuning):
            return False
        if any(dominates(figures(g, group, tuning), mine, tuning) for g in self.guards):
            return False
        return all(no_worse(mine, figures(a, group, tuning), tuning) for a in self.anchors)


def feasible_full(group: Group, tuning: Tuning) -> list[Candidate]:
    return [
        c
        for c in group.candidates
        if c.dropped is None and c.seeds() == tuning.seeds and score(c, group, tuning).feasible
    ]


def choose(group: Group, tuning: Tuning) -> Decision | None:
    """The recommendation (steps 1-4 of the module docstring); None when nothing is feasible,
    and then ``group.closest`` and ``group.binding`` say why."""
    feasible = feasible_full(group, tuning)
    if not feasible:
        scores = {id(c): score(c, group, tuning) for c in group.candidates}
        ranked = sorted(group.candidates, key=lambda c: scores[id(c)].violation)
        if ranked:
            group.closest = ranked[0]
            group.binding = binding_constraint(tuning, list(scores.values()))
        return None
    shown = {id(c): figures(c, group, tuning) for c in feasible}
    metric = tuning.objective.metric
    top = leader(feasible, group, tuning)
    tie = [c for c in feasible if _objective_tied(shown[id(c)], shown[id(top)], metric, tuning)]
    baseline_ids = {id(b.candidate) for b in group.baselines}
    guards = [c for c in feasible if id(c) in baseline_ids]
    # A wide interval can tie a candidate with the top and an obvious one with it, but not the
    # obvious one with the top: what an obvious candidate beats is out all the same.
    unbeaten = [
        c for c in tie if not any(dominates(shown[id(g)], shown[id(c)], tuning) for g in guards)
    ] or tie
    front = [
        c
        for c in unbeaten
        if not any(dominates(shown[id(d)], shown[id(c)], tuning) for d in unbeaten)
    ] or unbeaten
    anchors = [c for c in unbeaten if id(c) in baseline_ids]
    matching = [
        c for c in front if all(no_worse(shown[id(c)], shown[id(a)], tuning) for a in anchors)
    ]
    if not matching:  # the obvious candidates disagree among themselves: no anchor binds
        matching, anchors = front, []
    target = min(
        matching,
        key=lambda c: (
            _or_inf(shown[id(c)]["p99_latency"]),
            _or_inf(shown[id(c)]["amplification"]),
        ),
    )
    decision = Decision(target, unbeaten, anchors, guards)
    equivalents = [c for c in unbeaten if decision.accepts(c, group, tuning)] or [target]
    order = {id(c): i for i, c in enumerate(group.candidates)}
    best = min(equivalents, key=lambda c: simplicity(c, group, tuning, order[id(c)]))
    decision.best = best
    group.best = best
    group.ties = [c for c in unbeaten if c is not best and decision.accepts(c, group, tuning)]
    return decision


def _objective_tied(
    mine: dict[str, MetricFigure], top: dict[str, MetricFigure], metric: str, tuning: Tuning
) -> bool:
    from retrysim.runs.tune_judge import differs

    return differs(metric, mine[metric], top[metric], tuning.objective.maximize) >= 0


def value_of(candidate: Candidate, key: str, group: Group) -> Any:
    """The candidate's value for a searched key (its current value when it does not set it)."""
    return candidate.sets[key] if key in candidate.sets else group.current.get(key)


def at_current(candidate: Candidate, key: str, group: Group) -> bool:
    if key not in candidate.sets:
        return True
    return key in group.current and _same(candidate.sets[key], group.current[key])


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return bool(a == b)


def simplicity(candidate: Candidate, group: Group, tuning: Tuning, index: int) -> tuple[Any, ...]:
    """:data:`PREFERENCE` as a sort key (smaller is simpler)."""
    keys = [d.key for d in tuning.dimensions]
    changed = sum(not at_current(candidate, key, group) for key in keys)
    attempts = sum(
        _number(value_of(candidate, k, group)) for k in keys if k.endswith("max_attempts")
    )
    waits = tuple(_number(value_of(candidate, k, group)) for k in keys if k.endswith("wait"))
    shown = figures(candidate, group, tuning)
    return (
        changed,
        attempts,
        waits,
        _or_inf(shown["p99_latency"]),
        _or_inf(shown["amplification"]),
        index,
    )


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value)


def binding_constraint(tuning: Tuning, scores: Sequence[Score]) -> str | None:
    """The constraint that rules out the most candidates (ties: the largest total violation)."""
    if not tuning.constraints:
        return None
    tally = []
    for index, constraint in enumerate(tuning.constraints):
        broken = [
            s.constraints[index] for s in scores if not constraint.holds(s.constraints[index])
        ]
        total = sum(constraint.violation(v) for v in broken)
        tally.append((len(broken), total, str(constraint)))
    count, _, name = max(tally)
    return name if count else None
