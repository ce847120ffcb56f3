"""``t`` in the lab: the current scenario handed to ``retrysim tune``, and its answer applied.

What is searched is fixed and small, so a bundled scenario's tuning ends in a minute on one
core: ``max_attempts`` over 2..8 and ``jitter`` over a few values around the current one, one
seed, at most :data:`BUDGET` candidates besides the obvious ones ``tune`` always tries (the
current settings, the defaults, the diagnoses' prescriptions), for the best success rate
(differences within the noise are ties, which go to the simplest settings, as ``tune``
breaks them). It runs through :func:`retrysim.runs.tune.tune`
in this process, so its progress is reported run by run and a stale tuning can be stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from retrysim.lab.model import BY_OPTION, LabError, LabModel
from retrysim.model.scenario import Scenario
from retrysim.results.metric_table import show

#: Candidates tried, at most.
BUDGET = 12


def tuning(model: LabModel) -> Any:
    """The search ``t`` runs, around the model's current values."""
    from retrysim.runs.tune import Dimension, Objective, Tuning

    jitter = float(model.value(BY_OPTION["jitter"]))
    jitters = sorted({0.0, round(jitter / 2, 3), round(jitter, 3), round(max(jitter, 0.5) * 2, 3)})
    return Tuning(
        dimensions=[
            Dimension("policy.max_attempts", 2, 8, integer=True),
            Dimension("policy.jitter", values=tuple(jitters)),
        ],
        objective=Objective.of("success_rate"),
        seeds=1,
        first_seed=model.seed,
        budget=BUDGET,
        search="random",
        search_seed=0,
    )


def run_tune(
    model: LabModel, scenario: Scenario, on_done: Callable[[int, int], None] | None = None
) -> dict[str, Any]:
    """Tune ``scenario`` (the model's, as the knobs have it): the ``tune --json`` document."""
    from retrysim.render.tune_report import document
    from retrysim.runs.tune import tune

    return document(tune([scenario], tuning(model), settings=model.settings, on_done=on_done))


def recommendation(doc: dict[str, Any]) -> dict[str, Any]:
    """The best candidate's settings (``policy.*`` key -> value); empty when none was."""
    for group in doc.get("groups") or []:
        best = group.get("best")
        if best:
            return dict(best["settings"])
    return {}


def summary(doc: dict[str, Any]) -> list[str]:
    """What the screen says of a tuning: the settings, the .env lines and the figures."""
    best = recommendation(doc)
    if not best:
        return ["tune found no candidate that makes a policy here"]
    lines = [
        "recommended: " + ", ".join(f"{k.removeprefix('policy.')}={v}" for k, v in best.items())
    ]
    lines += [f"{name}={value}" for name, value in (doc.get("env") or {}).items()]
    for group in doc.get("groups") or []:
        figures = (group.get("best") or {}).get("figures") or {}
        for scenario, metrics in figures.items():
            shown = ", ".join(
                f"{name} {show(name, item.get('mean'))}" for name, item in metrics.items()
            )
            lines.append(f"{scenario}: {shown}")
    return lines


def apply(model: LabModel, doc: dict[str, Any]) -> list[str]:
    """Set the knobs to the recommendation; the options set. All or nothing: a LabError if
    one is refused, with the knobs as they were."""
    values = []
    for key, value in recommendation(doc).items():
        knob = BY_OPTION.get(key.removeprefix("policy."))
        if knob is None:
            raise LabError(f"{key}: not a knob of the lab")
        values.append((knob, value))
    before = model.loaded.data  # set() replaces the data, never edits it in place
    try:
        for knob, value in values:
            model.set(knob, value)
    except LabError:
        model.loaded.data = before
        raise
    return [knob.option for knob, _ in values]
