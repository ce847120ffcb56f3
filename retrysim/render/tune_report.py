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
from retrysim.runs.tune import (
    PARETO,
    PREFERENCE,
    Candidate,
    Group,
    KnobExplanation,
    TuneResult,
    pareto_front,
    score_of,
)
from retrysim.safe import markup, visible

_LABELS = {m.name: m.label for m in METRIC_TABLE}
_FORMATS = {m.name: m.format for m in METRIC_TABLE}
#: Rows of the Pareto table shown, best objective first; past them the table says how many
#: more there are and where (the JSON keeps them all).
PARETO_ROWS = 20


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


def _worst(row: dict[str, Any], name: str, higher: bool) -> float | None:
    """A candidate document's figure for ``name`` in its worst scenario (as the front ranks)."""
    per = [figures.get(name, {}).get("mean") for figures in row["figures"].values()]
    known = [float(v) for v in per if v is not None]
    if not known or len(known) < len(per):
        return None
    return min(known) if higher else max(known)


def front_order(rows: list[dict[str, Any]], maximize: bool) -> list[dict[str, Any]]:
    """Front members best objective first; equal objectives by success, p99 and load (each its
    better way), then by label: the order the table and ``tune.json`` list them in."""

    def key(row: dict[str, Any]) -> tuple[Any, ...]:
        objective = row["objective"]
        ranked = (0, -objective if maximize else objective) if objective is not None else (1, 0)
        rest = []
        for name, higher in PARETO:
            value = _worst(row, name, higher)
            rest.append((1, 0.0) if value is None else (0, -value if higher else value))
        return (*ranked, *rest, row["label"])

    return sorted(rows, key=key)


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
        front = [_candidate_doc(c, group, result, names) for c in pareto_front(group, best)]
        for row in front:
            row["recommended"] = best is not None and row["label"] == best.label
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
                "current": {key: value for key, value in group.current.items()},
                "explanation": [_knob_doc(knob) for knob in group.explanation],
                "ties": [c.label for c in group.ties],
                "baselines": [
                    {
                        "role": b.role,
                        **_candidate_doc(b.candidate, group, result, names),
                        "recommended": best is not None and b.candidate.label == best.label,
                    }
                    for b in group.baselines
                ],
                "pareto": front_order(front, tuning.objective.maximize),
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
        "preference": PREFERENCE,
        "pareto_metrics": [name for name, _ in PARETO],
        "groups": groups,
        "env": env,
    }


def _knob_doc(knob: KnobExplanation) -> dict[str, Any]:
    """One recommended value: what it buys against the current one, and the line that says so."""
    return {
        "key": knob.key,
        "current": knob.current,
        "recommended": knob.recommended,
        "changed": knob.unchanged is None,
        "unchanged": knob.unchanged,
        "with": {name: dict(f) for name, f in knob.with_value.items()},
        "without": (
            None if knob.without is None else {name: dict(f) for name, f in knob.without.items()}
        ),
        "deltas": knob.deltas,
        "significant": knob.significant,
        "effect": effect_line(knob),
    }


#: How the sensitivity lines name the metrics they speak of.
_SHORT = {"success_rate": "success", "p99_latency": "p99", "amplification": "load"}


def value_text(value: Any) -> str:
    """A setting's value as the report prints it: ``7``, ``1.9``, ``true``, ``not set``."""
    if value is None:
        return "not set"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def effect_line(knob: KnobExplanation) -> str:
    """``min_wait 1 -> 1.9: p99 +7.500s, load -0.05 (-5%)``: what moving the knob from its
    current value to the recommended one changes beyond the noise, or why it stays.

    Changes within the noise are named after them (``within the noise: success -2.00 pp``),
    so a large move the seeds cannot yet tell from luck is never hidden; a knob that moves
    nothing at all says ``no change``.
    """
    option = knob.key.removeprefix("policy.")
    current = "each scenario's own" if knob.current is None else value_text(knob.current)
    if knob.unchanged is not None:
        return f"{option} {current}: kept ({knob.unchanged})"
    moved = f"{option} {current} -> {value_text(knob.recommended)}"
    if knob.without is None:
        return f"{moved}: not compared (the current value makes no valid policy with the others)"
    beyond: list[str] = []
    within: list[str] = []
    for name, delta in knob.deltas.items():
        if delta is None:
            continue
        change = metric_table.show_change(name, delta)
        if change == "±0":
            continue
        text = f"{_SHORT.get(name, _LABELS.get(name, name))} {change}"
        held = None if knob.without is None else knob.without.get(name)
        before = None if held is None else held["mean"]
        if _FORMATS.get(name) == "ratio" and before:
            text += f" ({delta / before:+.0%})"
        (beyond if knob.significant.get(name, False) else within).append(text)
    if not beyond and not within:
        said = "no change"
    elif not beyond:
        said = "no change beyond the noise (within it: " + ", ".join(within) + ")"
    else:
        said = ", ".join(beyond) + ("; within the noise: " + ", ".join(within) if within else "")
    return f"{moved}: {said}"


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


def render(doc: dict[str, Any], saved: str | None = None) -> list[tuple[Any, str | None]]:
    """The recommendation, group by group, then the ``.env`` lines to paste.

    Returned as (renderable, rows label) pairs: the CLI prints each, turning a table whose
    columns are scenarios when that is what fits its terminal. ``saved``: where ``tune.json``
    was written, named when the Pareto table is cut short.
    """
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
        say(f"recommended: [bold green]{markup(_recommended_text(group))}[/]")
        out.append((_figures_table(best), "metric"))
        out.extend(_explanation(group, doc))
        if group.get("baselines"):
            table = _candidates_table(
                "The obvious candidates, always tried",
                _one_row_each(group["baselines"]),
                group,
                doc,
                role=True,
            )
            out.append((table, "candidate"))
        out.extend(_pareto(group, doc, saved))
    if doc["env"]:
        say("")
        say("[bold]Lines for .env[/] (or the service's environment):")
        for name, value in doc["env"].items():
            out.append((Text(f"{name}={value}"), None))
    return out


def _one_row_each(baselines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Baselines with the same settings as one row naming every role (the current settings
    are often the defaults, and a diagnosis may prescribe what is already set)."""
    rows: dict[str, dict[str, Any]] = {}
    for baseline in baselines:
        held = rows.get(baseline["label"])
        if held is None:
            rows[baseline["label"]] = dict(baseline)
        else:
            held["role"] = f"{held['role']}; {baseline['role']}"
    return list(rows.values())


def _recommended_text(group: dict[str, Any]) -> str:
    """Every searched setting's recommended value, a kept one marked as the current value."""
    knobs = group.get("explanation") or []
    if not knobs:
        return str(group["best"]["label"])
    return ", ".join(
        f"{k['key'].removeprefix('policy.')}={value_text(k['recommended'])}"
        + ("" if k["changed"] else " (current)")
        for k in knobs
    )


def _explanation(group: dict[str, Any], doc: dict[str, Any]) -> list[tuple[Any, str | None]]:
    """What each value buys (the recommendation against it with that one value back at the
    current one), one sensitivity line per setting, and the ties it was preferred among."""
    from rich.table import Table
    from rich.text import Text

    out: list[tuple[Any, str | None]] = []
    knobs = group.get("explanation") or []
    moved = [k for k in knobs if k["changed"] and k["without"] is not None]
    if moved:
        how = "worst scenario" if doc["aggregate"] == "worst" else "weighted mean"
        table = Table(
            title=f"What each value buys ({how}; mean ±95% interval): the recommendation, "
            "and with one value back at its current setting",
            title_justify="left",
        )
        table.add_column("metric")
        table.add_column("recommended", justify="right")
        for knob in moved:
            option = knob["key"].removeprefix("policy.")
            current = "own" if knob["current"] is None else value_text(knob["current"])
            table.add_column(f"{option}={current} (current)", justify="right")
        for name in moved[0]["with"]:
            cells = [_with_interval(name, moved[0]["with"][name])]
            cells += [_with_interval(name, k["without"][name]) for k in moved]
            table.add_row(_LABELS.get(name, name), *cells)
        out.append((table, "metric"))
    if knobs:
        out.append((Text.from_markup("[bold]Each setting[/] (changes beyond the noise):"), None))
        for knob in knobs:
            out.append((Text(f"  {knob['effect']}"), None))
    if group.get("ties"):
        count = len(group["ties"])
        out.append(
            (
                Text(
                    f"{count} other candidate{'s' if count != 1 else ''} tied with it within "
                    f"the noise; among ties the tuner prefers {doc['preference']}"
                ),
                None,
            )
        )
    return out


def _pareto(
    group: dict[str, Any], doc: dict[str, Any], saved: str | None
) -> list[tuple[Any, str | None]]:
    """The front, best objective first, the recommendation marked; cut at ``PARETO_ROWS`` with
    a note saying how many more there are and where they all are."""
    from rich.text import Text

    front = group["pareto"]
    if not front:
        return []
    shown = front[:PARETO_ROWS]
    best = group["best"]
    off_front = best is not None and not any(row.get("recommended") for row in front)
    listed = any(row.get("recommended") for row in shown)
    if best is not None and not listed:  # the recommendation always shows, marked
        shown = [*shown, {**best, "recommended": True, "off_front": off_front}]
    metric = _LABELS.get(doc["objective"]["metric"], doc["objective"]["metric"])
    title = (
        f"Pareto front: {len(front)} candidate{'s' if len(front) != 1 else ''} no other beats "
        f"on success, p99 latency and load at once (worst scenario); by {metric}, best first"
    )
    out: list[tuple[Any, str | None]] = [(_candidates_table(title, shown, group, doc), "candidate")]
    more = len(front) - sum(1 for row in shown if not row.get("off_front"))
    if more > 0:
        where = saved or "tune.json (--out DIR) and --json"
        out.append((Text(f"and {more} more; all in {where}"), None))
    if off_front:
        out.append(
            (
                Text(
                    "The recommendation is on no front: a member beats it by less than the "
                    "noise, and it is the simpler setting."
                ),
                None,
            )
        )
    return out


def _candidates_table(
    title: str,
    rows: list[dict[str, Any]],
    group: dict[str, Any],
    doc: dict[str, Any],
    *,
    role: bool = False,
) -> Any:
    """Candidates as rows: the objective (unless it is one of the front's three), success,
    p99 latency and load at their worst scenario, and whether the constraints hold."""
    from rich.table import Table

    objective = doc["objective"]["metric"]
    extra = objective not in {name for name, _ in PARETO}
    table = Table(title=title, title_justify="left")
    table.add_column("candidate")
    if role:
        table.add_column("what")
    if extra:
        table.add_column(_LABELS.get(objective, objective), justify="right")
    for name, _ in PARETO:
        table.add_column(_LABELS.get(name, name), justify="right")
    table.add_column("constraints")
    for row in rows:
        label = markup(row["label"]) or "(the current settings)"
        if row.get("recommended"):
            label = f"[bold green]{label} (recommended)[/]"
        cells = [label]
        if role:
            cells.append(markup(row["role"]))
        if extra:
            cells.append(_fmt(objective, row["objective"]))
        cells += [_fmt(name, _worst(row, name, higher)) for name, higher in PARETO]
        cells.append("[green]met[/]" if row["feasible"] else "[red]not met[/]")
        table.add_row(*cells)
    return table


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
