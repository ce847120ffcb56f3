"""``retrysim plot``: draw a saved result (``run --out DIR`` or ``run --json > result.json``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from retrysim.cli.errors import UsageError, reports_errors
from retrysim.cli.paths import FORMATS as FORMATS
from retrysim.cli.paths import check_figure_path as check_figure_path
from retrysim.safe import visible

KINDS = ("timeline", "spread", "cdf")


def read_result(path: Path) -> dict[str, Any]:
    """A result document from a file or from a folder written by ``run --out``."""
    file = path / "result.json" if path.is_dir() else path
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{file}: no such file") from None
    except UnicodeDecodeError:
        raise UsageError(f"{file}: not a text file; expected a result.json") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(
            f"{file}: invalid JSON at line {error.lineno} column {error.colno}"
        ) from None
    needed = ("timeline", "jitter_spread", "latency_quantiles", "faults", "scenario")
    if not isinstance(doc, dict) or any(key not in doc for key in needed):
        raise UsageError(
            f"{file}: not a retrysim result document (needs keys: {', '.join(needed)})"
        )
    return doc


@reports_errors
def plot(
    result: Annotated[
        Path,
        typer.Argument(
            help="A result.json (from run --json or run --out DIR), or that DIR.",
            show_default=False,
            metavar="RESULT",
        ),
    ],
    kind: Annotated[
        str,
        typer.Option(
            "--kind", help="timeline (attempts over time), spread (jitter), cdf.", metavar="KIND"
        ),
    ] = "timeline",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Figure file (.png, .svg, .pdf); default KIND.png beside it.",
            metavar="FILE",
        ),
    ] = None,
) -> None:
    """Draw a saved result: attempts over time, the jitter spread, or the latency CDF."""
    if kind not in KINDS:
        raise UsageError(f"--kind {kind!r}: allowed: {', '.join(KINDS)}")
    doc = read_result(result)
    target = out or (result if result.is_dir() else result.parent) / f"{kind}.png"
    check_figure_path(target, "--out")
    from retrysim import plots

    try:
        if kind == "timeline":
            figure = plots.herd_timeline(doc)
        elif kind == "spread":
            figure = plots.jitter_spread(doc)
        else:
            figure = plots.latency_cdf({doc["scenario"]: doc})
    except ValueError as error:  # the plots refuse a document they cannot draw: the user's file
        raise UsageError(f"{result}: {error}") from None
    plots.save_figure(figure, target)
    typer.echo(f"wrote {visible(target)}")
