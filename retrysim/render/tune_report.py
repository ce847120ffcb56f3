"""What ``retrysim tune`` shows and saves: the recommendation per operation, its figures per
scenario with 95% intervals, the Pareto front, and the ``.env`` lines to paste.

``document`` is the data (``tune --json``, ``tune.json`` under ``--out``); ``render`` draws
it with Rich. Both read a :class:`~retrysim.runs.tune.TuneResult` and nothing else, so what is
printed and what is saved cannot disagree.
"""

from __future__ import annotations

from typing import Any

from retrysim.env_write import env_value
from retrysim.results import metric_table
from retrysim.results.metric_table import METRIC_TABLE
from retrysim.retry.variables import option_variable
from retrysim.runs.tune import PARETO, Candidate, Group, TuneResult, pareto_front, score_of
from retrysim.safe import markup, visible

_LABELS = {m.name: m.label for m in METRIC_TABLE}
_FORMATS = {m.name: m.format for m in METRIC_TABLE}
#: Rows of the Pareto table shown (the JSON keeps them all).
PARETO_ROWS = 12


def env_lines(group: Group, sets: dict[str, Any]) -> dict[str, str]:
    """``RETRY__*`` name -> value for ``sets``, for every operation in the group."""
    lines: dict[str, str] = {}
    for key, value in sets.items():
        option = key.removeprefix("policy.")
        for operation in group.operations:
            name = option_variable(option, operation)
            if name is not None:
                lines[name] = env_value(value)
    return lines


def metrics_shown(result: TuneResult) -> list[str]:
    """The objective, each constrained metric, then success, p99 latency and load."""
    names = [result.tuning.objective.metric]
    names += [c.metric for c in result.tuning.constraints]
    names += [name for name, _ in PARETO]
    return list(dict.fromkeys(names))


def _figures(candidate: Candidate, group: Group, names: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for scenario in group.names:
        out[scenario] = {
            name: {
                "mean": candidate.mean(scenario, name),
                "ci95": candidate.interval(scenario, name),
            }
            for name in names
        }
    return out


def _candidate_doc(
    candidate: Candidate, group: Group, result: TuneResult, names: list[str]
) -> dict[str, Any]:
    score = score_of(candidate, group, result.tuning)
    return {
        "settings": candidate.sets,
        "label": candidate.label,
        "seeds": candidate.seeds(),
        "objective": score.objective,
        "objective_ci95": score.interval,
        "feasible": score.feasible,
        "dropped": candidate.dropped,
        "figures": _figures(candidate, group, names),
    }


def document(result: TuneResult) -> dict[str, Any]:
    """The tune result as data: keys documented in the README ("retrysim tune")."""
    tuning = result.tuning
    names = metrics_shown(result)
    groups = []
    env: dict[str, str] = {}
    for group in result.groups:
        best = group.best
        lines = env_lines(group, best.sets) if best is not None else {}
        env.update(lines)
        front = pareto_front(group)
        groups.append(
            {
                "operations": group.operations,
                "scenarios": group.names,
                "search": group.search,
                "candidates": len(group.candidates),
                "dropped": sum(c.dropped is not None for c in group.candidates),
                "invalid": [{"label": c.label, "why": c.dropped} for c in group.invalid],
                "best": None if best is None else _candidate_doc(best, group, result, names),
                "env": lines,
                "closest": (
                    None
                    if group.closest is None
                    else _candidate_doc(group.closest, group, result, names)
                ),
                "binding": group.binding,
                "pareto": [_candidate_doc(c, group, result, names) for c in front],
            }
        )
    return {
        "objective": {"metric": tuning.objective.metric, "maximize": tuning.objective.maximize},
        "constraints": [str(c) for c in tuning.constraints],
        "aggregate": tuning.how,
        "weights": tuning.weights,
        "seeds": tuning.seeds,
        "search": [
            {"key": d.key, "low": d.low, "high": d.high, "integer": d.integer, "values": d.values}
            for d in tuning.dimensions
        ],
        "groups": groups,
        "env": env,
    }


# --- Rich ------------------------------------------------------------------------------------


def _fmt(name: str, value: float | None) -> str:
    return metric_table.show(name, value)


def _with_interval(name: str, figure: dict[str, Any]) -> str:
    mean, interval = figure["mean"], figure["ci95"]
    text = _fmt(name, mean)
    if interval is not None and mean is not None:
        half = (interval[1] - interval[0]) / 2
        text += f" ±{_fmt(name, half).lstrip('+')}"
    return text


def render(doc: dict[str, Any]) -> list[tuple[Any, str | None]]:
    """The recommendation, group by group, then the ``.env`` lines to paste.

    Returned as (renderable, rows label) pairs: the CLI prints each, turning a table whose
    columns are scenarios when that is what fits its terminal.
    """
    from rich.table import Table
    from rich.text import Text

    out: list[tuple[Any, str | None]] = []

    def say(text: str) -> None:
        out.append((Text.from_markup(text), None))

    objective = doc["objective"]
    goal = "maximise" if objective["maximize"] else "minimise"
    how = "the worst scenario" if doc["aggregate"] == "worst" else "the weighted mean"
    constraints = ", ".join(doc["constraints"]) or "none"
    say(
        f"[bold]retrysim tune[/]: {goal} {objective['metric']} over {how}; constraints: "
        f"{markup(constraints)}; {doc['seeds']} seed(s) per candidate, the same for every one"
    )
    for group in doc["groups"]:
        say("")
        scenarios = ", ".join(visible(s) for s in group["scenarios"])
        operations = ", ".join(group["operations"])
        say(
            f"[bold]{operations}[/] settings, tuned on {markup(scenarios)}: "
            f"{group['candidates']} candidates ({group['search']}), "
            f"{group['dropped']} dropped early by racing"
        )
        best = group["best"]
        if best is None:
            closest = group["closest"]
            say(
                "[bold red]no candidate met every constraint[/]"
                + (f"; {markup(group['binding'])} binds hardest" if group["binding"] else "")
            )
            if closest is not None:
                say(f"closest: [bold]{markup(closest['label'])}[/]")
                out.append((_figures_table(closest), "metric"))
            continue
        say(f"recommended: [bold green]{markup(best['label'])}[/]")
        out.append((_figures_table(best), "metric"))
        front = group["pareto"][:PARETO_ROWS]
        if front:
            table = Table(
                title="Pareto front (worst case over the scenarios): no candidate is better on "
                "all of success, p99 latency and load",
                title_justify="left",
            )
            table.add_column("candidate")
            for name, _ in PARETO:
                table.add_column(_LABELS.get(name, name), justify="right")
            table.add_column("constraints")
            for row in front:
                cells = []
                for name, higher in PARETO:
                    per = [row["figures"][s][name]["mean"] for s in group["scenarios"]]
                    known = [v for v in per if v is not None]
                    worst = (min(known) if higher else max(known)) if known else None
                    cells.append(_fmt(name, worst))
                mark = "[green]met[/]" if row["feasible"] else "[red]not met[/]"
                table.add_row(markup(row["label"]), *cells, mark)
            out.append((table, "candidate"))
    if doc["env"]:
        say("")
        say("[bold]Lines for .env[/] (or the service's environment):")
        for name, value in doc["env"].items():
            out.append((Text(f"{name}={value}"), None))
    return out


def _figures_table(candidate: dict[str, Any]) -> Any:
    from rich.table import Table

    figures = candidate["figures"]
    scenarios = list(figures)
    table = Table(
        title=f"on {candidate['seeds']} seed(s): mean ±95% interval", title_justify="left"
    )
    table.add_column("metric")
    for scenario in scenarios:
        table.add_column(visible(scenario), justify="right")
    names = list(next(iter(figures.values())))
    for name in names:
        table.add_row(
            _LABELS.get(name, name), *(_with_interval(name, figures[s][name]) for s in scenarios)
        )
    return table
