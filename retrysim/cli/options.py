"""Arguments and options several commands share, declared once so their help stays the same."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from retrysim.cli import complete

ScenarioArg = Annotated[
    str,
    typer.Argument(
        help="A bundled scenario name (see 'retrysim scenarios') or a path to a TOML file.",
        show_default=False,
        metavar="SCENARIO",
        autocompletion=complete.scenarios,
    ),
]
SEED_LIMIT = 2**63  # numpy's seeds are 64-bit; what a seed can be is said in words


def _check_seed(value: int | None) -> int | None:
    if value is not None and not 0 <= value < SEED_LIMIT:
        raise typer.BadParameter(f"{value}: a seed is a whole number >= 0 (and < 2**63)")
    return value


SeedOption = Annotated[
    int | None,
    typer.Option(
        "--seed",
        help="Random seed, a whole number >= 0; with --seeds, the first of them "
        "(default: the scenario's).",
        metavar="N",
        callback=_check_seed,
    ),
]
EnvFileOption = Annotated[
    Path | None,
    typer.Option(
        "--env-file",
        help="Read RETRY__* settings from this file (default: ./.env if present).",
        metavar="FILE",
    ),
]
MetricsOption = Annotated[
    str | None,
    typer.Option(
        "--metrics",
        help="Comma-separated metrics to show (see README: CI gates).",
        metavar="M1,M2",
        autocompletion=complete.metrics,
    ),
]
WorkersOption = Annotated[
    int,
    typer.Option(
        "--workers", help="Worker processes; results do not depend on it.", min=1, metavar="N"
    ),
]
SeedsOption = Annotated[
    int,
    typer.Option(
        "--seeds",
        help="Seeds per variant, the same for all; >1 adds 95% intervals.",
        min=1,
        metavar="K",
    ),
]
QuietOption = Annotated[
    bool,
    typer.Option(
        "--quiet", "-q", help="No progress bar (it is off anyway when stderr is not a terminal)."
    ),
]
PolicyOption = Annotated[
    str | None,
    typer.Option(
        "--policy",
        help="Simulate your own tenacity policy instead of the scenario's: MODULE:ATTRIBUTE "
        "naming a Retrying, an AsyncRetrying or a function decorated with @tenacity.retry "
        "(imported from the current folder first).",
        metavar="MODULE:ATTR",
    ),
]
