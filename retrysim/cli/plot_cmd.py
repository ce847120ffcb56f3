"""``retrysim plot``: draw a saved result (``run --out DIR`` or ``run --json > result.json``),
or a saved sweep or comparison (``sweep --out DIR``, ``compare --out DIR``) as a heat map or a
Pareto plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from retrysim.cli import complete
from retrysim.cli.errors import UsageError, reports_errors
from retrysim.cli.paths import FORMATS as FORMATS
from retrysim.cli.paths import check_figure_path as check_figure_path
from retrysim.metric_table import METRIC_NAMES
from retrysim.safe import visible

RUN_KINDS = ("timeline", "spread", "cdf")
ROWS_KINDS = ("heatmap", "pareto")
KINDS = RUN_KINDS + ROWS_KINDS
#: What a folder's rows come from, first found first: all of a sweep's (or a tuning's) points,
#: a comparison's, then a tuning's own result.
ROWS_FILES = ("sweep.json", "compare.json", "tune.json")


def _read_json(file: Path, expected: str) -> Any:
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


def read_result(path: Path) -> dict[str, Any]:
    """A result document from a file or from a folder written by ``run --out``."""
    file = path / "result.json" if path.is_dir() else path
    if path.is_dir() and not file.exists():
        found = [name for name in ROWS_FILES if (path / name).is_file()]
        if found:
            raise UsageError(
                f"{path}: no result.json; it holds {found[0]}: draw it with --kind heatmap or "
                "--kind pareto"
            )
    doc = _read_json(file, "a result.json")
    needed = ("timeline", "jitter_spread", "latency_quantiles", "faults", "scenario")
    if not isinstance(doc, dict) or any(key not in doc for key in needed):
        raise UsageError(
            f"{file}: not a retrysim result document (needs keys: {', '.join(needed)})"
        )
    return doc


def read_rows(path: Path) -> tuple[Path, dict[str, Any], list[dict[str, Any]]]:
    """A saved sweep's, comparison's or tuning's rows, each with a ``label``: from a file, or
    from a folder written by ``sweep --out`` or ``compare --out``."""
    file = path
    if path.is_dir():
        found = [path / name for name in ROWS_FILES if (path / name).is_file()]
        if not found:
            raise UsageError(
                f"{path}: no {', '.join(ROWS_FILES[:-1])} or {ROWS_FILES[-1]} here (sweep --out "
                "DIR or compare --out DIR writes one)"
            )
        file = found[0]
    doc = _read_json(file, "a sweep.json")
    rows = doc.get("rows") if isinstance(doc, dict) else None
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise UsageError(
            f"{file}: not a saved sweep or comparison (needs a non-empty list of objects "
            "under 'rows')"
        )
    labelled = []
    for i, row in enumerate(rows):
        label = row.get("label", row.get("variant"))
        labelled.append({**row, "label": str(label) if label is not None else f"#{i + 1}"})
    return file, doc, labelled


def _check_metric(name: str, option: str) -> str:
    if name not in METRIC_NAMES:
        raise UsageError(f"{option} {name!r}: unknown metric; allowed: {', '.join(METRIC_NAMES)}")
    return name


def _need_column(file: Path, rows: list[dict[str, Any]], name: str) -> None:
    if any(row.get(name) is not None for row in rows):
        return
    raise UsageError(
        f"{file}: its rows have no {name}; run the sweep again with --metrics including it "
        "(with the same --out, its checkpoints make that quick)"
    )


def _rows_figure(
    kind: str,
    file: Path,
    doc: dict[str, Any],
    rows: list[dict[str, Any]],
    metric: str | None,
    x: str | None,
    y: str | None,
) -> Any:
    from retrysim import plots

    seeds = doc.get("seeds")
    count = len(seeds) if isinstance(seeds, list) else None
    scenario = doc.get("scenario")
    scenario = scenario if isinstance(scenario, str) else None
    if kind == "heatmap":
        name = _check_metric(metric or "success_rate", "--metric")
        _need_column(file, rows, name)
        return plots.heatmap_rows(rows, x, y, name, seeds=count, title=scenario)
    if metric is not None:
        raise UsageError("--metric is for --kind heatmap; a pareto plot takes --x and --y")
    cost = _check_metric(x or "p99_latency", "--x")
    gain = _check_metric(y or "success_rate", "--y")
    for name in (cost, gain):
        _need_column(file, rows, name)
    title = f"{scenario}: best trade-offs" if scenario else None
    return plots.pareto_plot(rows, cost, gain, title=title)


@reports_errors
def plot(
    result: Annotated[
        Path,
        typer.Argument(
            help="A result.json (from run --json or run --out DIR), or that DIR; for heatmap "
            "and pareto, a sweep.json or compare.json (sweep/compare --out DIR), or that DIR.",
            show_default=False,
            metavar="RESULT",
        ),
    ],
    kind: Annotated[
        str,
        typer.Option(
            "--kind",
            help="For a result: timeline (attempts over time), spread (jitter), cdf. For a "
            "saved sweep or comparison: heatmap (one metric over two grid keys), pareto "
            "(success against cost, the best trade-offs marked).",
            metavar="KIND",
        ),
    ] = "timeline",
    metric: Annotated[
        str | None,
        typer.Option(
            "--metric",
            help="heatmap: the metric in the cells (default success_rate).",
            metavar="METRIC",
            autocompletion=complete.metrics,
        ),
    ] = None,
    x: Annotated[
        str | None,
        typer.Option(
            "--x",
            help="heatmap: the grid key across (default: the first); pareto: the cost metric "
            "across (default p99_latency; or amplification, ...).",
            metavar="KEY",
        ),
    ] = None,
    y: Annotated[
        str | None,
        typer.Option(
            "--y",
            help="heatmap: the grid key up (default: the second); pareto: the metric up "
            "(default success_rate).",
            metavar="KEY",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Figure file (.png, .svg, .pdf); default KIND.png beside it.",
            metavar="FILE",
        ),
    ] = None,
) -> None:
    """Draw a saved result (attempts over time, the jitter spread, the latency CDF) or a saved
    sweep (a heat map of one metric over two grid keys, or the Pareto front of success against
    cost)."""
    if kind not in KINDS:
        raise UsageError(f"--kind {kind!r}: allowed: {', '.join(KINDS)}")
    if kind in RUN_KINDS:
        given = [name for name, value in (("--metric", metric), ("--x", x), ("--y", y)) if value]
        if given:
            raise UsageError(f"{given[0]} is for --kind heatmap or pareto, not {kind}")
        doc = read_result(result)
    else:
        file, rows_doc, rows = read_rows(result)
    target = out or (result if result.is_dir() else result.parent) / f"{kind}.png"
    check_figure_path(target, "--out")
    from retrysim import plots

    try:
        if kind in ROWS_KINDS:
            figure = _rows_figure(kind, file, rows_doc, rows, metric, x, y)
        elif kind == "timeline":
            figure = plots.herd_timeline(doc)
        elif kind == "spread":
            figure = plots.jitter_spread(doc)
        else:
            figure = plots.latency_cdf({doc["scenario"]: doc})
    except ValueError as error:  # the plots refuse a document they cannot draw: the user's file
        if isinstance(error, UsageError):
            raise
        raise UsageError(f"{result}: {error}") from None
    plots.save_figure(figure, target)
    typer.echo(f"wrote {visible(target)}")
