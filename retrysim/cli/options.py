"""Arguments and options several commands share, declared once so their help stays the same."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from retrysim.cli import value_completion

ScenarioArg = Annotated[
    str,
    typer.Argument(
        help="A bundled scenario name (see 'retrysim scenarios') or a path to a TOML file.",
        show_default=False,
        metavar="SCENARIO",
        autocompletion=value_completion.scenarios,
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
        autocompletion=value_completion.metrics,
    ),
]
WorkersOption = Annotated[
    int | None,
    typer.Option(
        "--workers",
        help=f"Worker processes (default: one per core, {os.cpu_count() or 1} here; 1 runs them "
        "in this process); with --executor dask, the local cluster's workers. Results do not "
        "depend on it.",
        min=1,
        metavar="N",
        show_default=False,
    ),
]
ExecutorOption = Annotated[
    str,
    typer.Option(
        "--executor",
        help="Where the runs happen: local (worker processes here) or dask (a dask.distributed "
        "cluster: a local one, or --address; needs pip install 'retrysim[dask]').",
        metavar="KIND",
        autocompletion=value_completion.executors,
    ),
]
AddressOption = Annotated[
    str | None,
    typer.Option(
        "--address",
        help="With --executor dask: an existing scheduler, e.g. tcp://host:8786 (default: start "
        "a cluster on this machine, listening on 127.0.0.1 only).",
        metavar="URL",
    ),
]
ResumeOption = Annotated[
    bool,
    typer.Option(
        "--resume",
        help="Go on from the checkpoints in --out DIR (refused when it has none of these runs); "
        "the same command again without it resumes too.",
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
EngineOption = Annotated[
    str,
    typer.Option(
        "--engine",
        help="Which engine runs: auto (the compiled native core when it models the whole run, "
        "else the fast path whenever the policy's strategies are ones it mirrors, else the "
        "reference path), native or fast (each refused for a run it cannot take) or reference "
        "(tenacity's own Retrying.iter()). The results are identical; the report's last line "
        "says which ran, and why not a faster one.",
        metavar="KIND",
        autocompletion=value_completion.engines,
    ),
]
QuietOption = Annotated[
    bool,
    typer.Option(
        "--quiet", "-q", help="No progress bar (it is off anyway when stderr is not a terminal)."
    ),
]
PolicyOption = Annotated[
    list[str] | None,
    typer.Option(
        "--policy",
        help="Simulate your own tenacity policy instead of the scenario's: MODULE:ATTRIBUTE "
        "naming a Retrying, an AsyncRetrying or a function decorated with @tenacity.retry "
        "(imported from the current folder first). With tiers, NAME=MODULE:ATTR is tier NAME's "
        "policy for its calls to the next tier. Repeatable: one for the clients, one per tier.",
        metavar="[TIER=]MODULE:ATTR",
    ),
]

HtmlOption = Annotated[
    Path | None,
    typer.Option(
        "--html",
        help="Also write the report as one self-contained HTML file (figures inline, no "
        "network needed to open it), to share or to keep as a CI artifact.",
        metavar="FILE",
    ),
]
