"""``retrysim scenarios`` (list, show) and ``retrysim validate``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from retrysim.cli.errors import EXIT_BAD_INPUT, UsageError, reports_errors

scenarios_app = typer.Typer(
    help="List the bundled scenarios, or show one.",
    invoke_without_command=True,
    no_args_is_help=False,
)


@scenarios_app.callback()
@reports_errors
def list_scenarios(ctx: typer.Context) -> None:
    """List the bundled scenarios with what each one models."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.console import Console
    from rich.table import Table

    from retrysim.library import describe_bundled

    table = Table(title="Bundled scenarios (run one: retrysim run NAME)", title_justify="left")
    table.add_column("name", style="bold cyan", no_wrap=True)
    table.add_column("what it models")
    for name, description in describe_bundled():
        table.add_row(name, " ".join(description.split()))
    Console().print(table)


@scenarios_app.command("show")
@reports_errors
def show(
    name: Annotated[str, typer.Argument(help="A bundled scenario name.", show_default=False)],
) -> None:
    """Print a bundled scenario's TOML, to read or to copy and edit."""
    from retrysim.library import resolve
    from retrysim.scenario import ScenarioError

    try:
        path = resolve(name)
    except ScenarioError as error:
        raise UsageError(str(error)) from None
    if not path.is_file():
        raise UsageError(f"{name}: no such scenario file or bundled scenario")
    sys.stdout.write(path.read_text(encoding="utf-8"))


@reports_errors
def validate(
    files: Annotated[
        list[Path],
        typer.Argument(help="Scenario files (or bundled names) to check.", show_default=False),
    ],
) -> None:
    """Check scenario files and report every error with file, field and what is allowed.

    Exit code 0 when all are valid, 2 when any is not.
    """
    from retrysim.library import load_scenario
    from retrysim.scenario import ScenarioError

    bad = 0
    for file in files:
        try:
            scenario = load_scenario(file)
        except ScenarioError as error:
            bad += 1
            for line in str(error).splitlines():
                print(f"retrysim: error: {line}", file=sys.stderr)
            continue
        print(
            f"ok: {file}: {scenario.name!r}, {scenario.clients.count:,} clients, "
            f"{scenario.service.kind} service, {len(scenario.faults)} fault(s)"
        )
    if bad:
        raise typer.Exit(EXIT_BAD_INPUT)
