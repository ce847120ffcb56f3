"""Arguments and options several commands share, declared once so their help stays the same."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ScenarioArg = Annotated[
    str,
    typer.Argument(
        help="A bundled scenario name (see 'retrysim scenarios') or a path to a TOML file.",
        show_default=False,
    ),
]
SeedOption = Annotated[
    int | None,
    typer.Option(
        "--seed",
        help="Random seed, or the first of --seeds (default: the scenario's).",
        min=0,
        max=2**63 - 1,
    ),
]
EnvFileOption = Annotated[
    Path | None,
    typer.Option(
        "--env-file", help="Read RETRY__* settings from this file (default: ./.env if present)."
    ),
]
MetricsOption = Annotated[
    str | None,
    typer.Option("--metrics", help="Comma-separated metrics to show (see README: CI gates)."),
]
WorkersOption = Annotated[
    int,
    typer.Option("--workers", help="Worker processes; results do not depend on it.", min=1),
]
SeedsOption = Annotated[
    int,
    typer.Option(
        "--seeds", help="Seeds per variant, the same for all; >1 adds 95% intervals.", min=1
    ),
]
QuietOption = Annotated[
    bool,
    typer.Option(
        "--quiet", "-q", help="No progress bar (it is off anyway when stderr is not a terminal)."
    ),
]
