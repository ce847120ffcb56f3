"""``retrysim plot --kind heatmap|pareto``: saved rows (a sweep's, a comparison's, a tuning's)
read back and drawn.

``sweep --out`` and ``compare --out`` save ``{"scenario", "seeds", "rows": [{variant, grid
keys..., metric means...}]}``; ``tune --out`` saves each operation group's Pareto front, with
each candidate's figures per scenario. Both become rows of ``{label, keys..., metrics...}``
(a tuning's worst case over its scenarios, as tune ranks them) for :mod:`retrysim.plots`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrysim.cli import common
from retrysim.cli.exits import UsageError
from retrysim.results import metric_table
from retrysim.results.metric_table import METRIC_NAMES

ROWS_KINDS = ("heatmap", "pareto")
#: What a tuning's front weighs, when its tune.json does not say (``pareto_metrics``).
TUNE_FRONT = ("success_rate", "p99_latency", "amplification")
#: What a folder's rows come from, first found first: all of a sweep's points, a comparison's,
#: then a tuning's front.
ROWS_FILES = ("sweep.json", "compare.json", "tune.json")

Rows = list[dict[str, Any]]


@dataclass
class SavedRows:
    """Rows read back: the file, a title, seeds per mean, and one set of rows per panel."""

    file: Path
    title: str | None
    seeds: int | None
    panels: list[tuple[str | None, Rows]]
    tuning: bool = False
    front_metrics: tuple[str, ...] = ()  # a tuning's: what its front is judged on


def read_json(file: Path, expected: str) -> Any:
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{file}: no such file") from None
    except UnicodeDecodeError:
        raise UsageError(f"{file}: not a text file; expected {expected}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(
            f"{file}: invalid JSON at line {error.lineno} column {error.colno}"
        ) from None


def read_rows(path: Path) -> SavedRows:
    """The rows in a file, or in a folder written by ``sweep``, ``compare`` or ``tune --out``."""
    file = path
    if path.is_dir():
        found = [path / name for name in ROWS_FILES if (path / name).is_file()]
        if not found:
            raise UsageError(
                f"{path}: no {', '.join(ROWS_FILES[:-1])} or {ROWS_FILES[-1]} here (sweep, "
                "compare or tune --out DIR writes one)"
            )
        file = found[0]
    doc = read_json(file, "a sweep.json")
    if isinstance(doc, dict) and isinstance(doc.get("groups"), list):
        return _tuning(file, doc)
    rows = doc.get("rows") if isinstance(doc, dict) else None
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise UsageError(
            f"{file}: not a saved sweep, comparison or tuning (needs a non-empty list of "
            "objects under 'rows', or tune's 'groups')"
        )
    labelled = []
    for i, row in enumerate(rows):
        label = row.get("label", row.get("variant"))
        labelled.append({**row, "label": str(label) if label is not None else f"#{i + 1}"})
    seeds = doc.get("seeds")
    scenario = doc.get("scenario")
    return SavedRows(
        file,
        scenario if isinstance(scenario, str) else None,
        len(seeds) if isinstance(seeds, list) else None,
        [(None, labelled)],
    )


def _tuning(file: Path, doc: dict[str, Any]) -> SavedRows:
    """One panel per operation group: its front, each candidate at its worst scenario."""
    panels: list[tuple[str | None, Rows]] = []
    for group in doc["groups"]:
        if not isinstance(group, dict):
            continue
        candidates = [c for c in group.get("pareto") or [] if isinstance(c, dict)]
        for extra in (group.get("best"), group.get("closest")):
            if isinstance(extra, dict) and extra.get("label") not in {
                c.get("label") for c in candidates
            }:
                candidates.append(extra)
        rows = [_candidate_row(c) for c in candidates]
        best = group.get("best")
        for row, candidate in zip(rows, candidates, strict=True):
            row["recommended"] = isinstance(best, dict) and candidate.get("label") == best.get(
                "label"
            )
        if rows:
            operations = ", ".join(map(str, group.get("operations") or [])) or "settings"
            scenarios = ", ".join(map(str, group.get("scenarios") or []))
            panels.append((f"{operations} on {scenarios}", rows))
    if not panels:
        raise UsageError(f"{file}: a tuning result with no candidates to draw")
    seeds = doc.get("seeds")
    weighed = doc.get("pareto_metrics")
    if not (isinstance(weighed, list) and all(name in METRIC_NAMES for name in weighed)):
        weighed = list(TUNE_FRONT)  # a tune.json from before it said
    return SavedRows(
        file, None, seeds if isinstance(seeds, int) else None, panels, True, tuple(weighed)
    )


def _candidate_row(candidate: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"label": str(candidate.get("label", "?"))}
    settings = candidate.get("settings")
    if isinstance(settings, dict):
        row.update(settings)
    figures = candidate.get("figures")
    per_scenario = [f for f in (figures or {}).values() if isinstance(f, dict)]
    for name in METRIC_NAMES:
        values = [
            float(f[name]["mean"])
            for f in per_scenario
            if isinstance(f.get(name), dict) and isinstance(f[name].get("mean"), int | float)
        ]
        if values:
            better = metric_table.get(name).better
            if better == "higher":
                row[name] = min(values)
            elif better == "lower":
                row[name] = max(values)
            else:
                row[name] = sum(values) / len(values)
    return row


def check_metric(name: str, option: str) -> str:
    return common.metric_name(name, f"{option} {name!r}")


def _need_column(saved: SavedRows, name: str) -> None:
    if any(row.get(name) is not None for _, rows in saved.panels for row in rows):
        return
    again = "the tuning" if saved.tuning else "the sweep"
    raise UsageError(
        f"{saved.file}: its rows have no {name}; run {again} again with --metrics including it "
        "(with the same --out, its checkpoints make that quick)"
    )


def rows_figure(
    kind: str, saved: SavedRows, metric: str | None, x: str | None, y: str | None
) -> Any:
    """The figure ``--kind heatmap`` or ``--kind pareto`` draws of ``saved``."""
    from retrysim import plots

    if kind == "heatmap":
        if saved.tuning:
            raise UsageError(
                f"{saved.file}: a tuning result keeps only its best trade-offs, too few cells "
                "for a heat map; draw it with --kind pareto"
            )
        name = check_metric(metric or "success_rate", "--metric")
        _need_column(saved, name)
        rows = saved.panels[0][1]
        return plots.heatmap_rows(rows, x, y, name, seeds=saved.seeds, title=saved.title)
    if metric is not None:
        raise UsageError("--metric is for --kind heatmap; a pareto plot takes --x and --y")
    cost = check_metric(x or "p99_latency", "--x")
    gain = check_metric(y or "success_rate", "--y")
    for name in (cost, gain):
        _need_column(saved, name)
    if len(saved.panels) == 1 and not saved.tuning:
        title = f"{saved.title}: best trade-offs" if saved.title else None
        return plots.pareto_plot(saved.panels[0][1], cost, gain, title=title)
    # A tuning's front weighs a third metric too: it colours the points, so no front member
    # is drawn as beaten; its recommendation gets a star.
    third = [m for m in saved.front_metrics if m not in (cost, gain)]
    colour = third[0] if len(third) == 1 and saved.tuning else None
    if colour is not None:
        _need_column(saved, colour)
    figure = plots.new_figure((9.5 if colour else 8.5) * len(saved.panels), 5.8)
    axes = figure.subplots(1, len(saved.panels), squeeze=False)[0]
    for ax, (heading, rows) in zip(axes, saved.panels, strict=True):
        worst = f"{heading}: worst scenario" if saved.tuning else heading
        marked = [i for i, row in enumerate(rows) if row.get("recommended") is True]
        plots.pareto_plot(
            rows,
            cost,
            gain,
            colour=colour,
            recommended=marked[0] if marked else None,
            title=worst,
            ax=ax,
        )
    return figure
