"""``retrysim plot``: draw a saved result (``run --out DIR`` or ``run --json > result.json``),
or a saved sweep or comparison (``sweep --out DIR``, ``compare --out DIR``) as a heat map or a
Pareto plot."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from retrysim.cli import value_completion
from retrysim.cli.exits import UsageError, reports_errors
from retrysim.cli.paths import FORMATS as FORMATS
from retrysim.cli.paths import check_figure_path as check_figure_path
from retrysim.cli.plot_rows import ROWS_FILES, ROWS_KINDS, read_json, read_rows, rows_figure
from retrysim.safe import visible

if TYPE_CHECKING:
    from retrysim.results.document import ResultDocument

#: Figures of a run of a call graph or of replicas: each refuses a run without them.
GRAPH_KINDS = ("tiers", "amplification", "replicas")
RUN_KINDS = ("timeline", "spread", "cdf", *GRAPH_KINDS)
KINDS = RUN_KINDS + ROWS_KINDS


def read_result(path: Path) -> ResultDocument:
    """A result document from a file or from a folder written by ``run --out``.

    Its schema version is checked (one saved before documents had a version is read as the
    current one; a version this retrysim does not know is refused, naming both), then the keys
    the figures need: a document trimmed to those still draws, so its shape is not validated
    further (``retrysim.results.document.from_json`` would).
    """
    file = path / "result.json" if path.is_dir() else path
    if path.is_dir() and not file.exists():
        found = [name for name in ROWS_FILES if (path / name).is_file()]
        if found:
            raise UsageError(
                f"{path}: no result.json; it holds {found[0]}: draw it with --kind heatmap or "
                "--kind pareto"
            )
    doc = read_json(file, "a result.json")
    if isinstance(doc, dict):
        from retrysim.results.document import upgrade

        doc = upgrade(doc, str(file))
    needed = ("timeline", "jitter_spread", "latency_quantiles", "faults", "scenario")
    if not isinstance(doc, dict) or any(key not in doc for key in needed):
        raise UsageError(
            f"{file}: not a retrysim result document (needs keys: {', '.join(needed)})"
        )
    return cast("ResultDocument", doc)


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
            help="For a result: timeline (attempts over time), spread (jitter), cdf; with "
            "tiers: tiers (requests/s at each tier), amplification (requests per call by "
            "tier); with replicas: replicas (requests/s by replica). For a saved sweep or "
            "comparison: heatmap (one metric over two grid keys), pareto (success against "
            "cost, the best trade-offs marked).",
            metavar="KIND",
        ),
    ] = "timeline",
    metric: Annotated[
        str | None,
        typer.Option(
            "--metric",
            help="heatmap: the metric in the cells (default success_rate).",
            metavar="METRIC",
            autocompletion=value_completion.metrics,
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
    """Draw a saved result (attempts over time, the jitter spread, the latency CDF; a call
    graph's load and amplification per tier, requests by replica) or a saved sweep (a heat map
    of one metric over two grid keys, or the Pareto front of success against cost)."""
    if kind not in KINDS:
        raise UsageError(f"--kind {kind!r}: allowed: {', '.join(KINDS)}")
    if kind in RUN_KINDS:
        given = [name for name, value in (("--metric", metric), ("--x", x), ("--y", y)) if value]
        if given:
            raise UsageError(f"{given[0]} is for --kind heatmap or pareto, not {kind}")
        doc = read_result(result)
    else:
        saved = read_rows(result)
    target = out or (result if result.is_dir() else result.parent) / f"{kind}.png"
    check_figure_path(target, "--out")
    from retrysim import plots

    try:
        if kind in ROWS_KINDS:
            figure = rows_figure(kind, saved, metric, x, y)
        elif kind == "timeline":
            figure = plots.herd_timeline(doc)
        elif kind == "spread":
            figure = plots.jitter_spread(doc)
        elif kind == "tiers":
            figure = plots.tier_timeline(doc)
        elif kind == "amplification":
            figure = plots.tier_amplification(doc)
        elif kind == "replicas":
            figure = plots.replica_timeline(doc)
        else:
            labelled: dict[str, ResultDocument] = {doc["scenario"]: doc}
            figure = plots.latency_cdf(labelled)
    except ValueError as error:  # the plots refuse a document they cannot draw: the user's file
        if isinstance(error, UsageError):
            raise
        raise UsageError(f"{result}: {error}") from None
    plots.save_figure(figure, target)
    typer.echo(f"wrote {visible(target)}")
