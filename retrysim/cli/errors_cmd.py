"""``retrysim errors``: which common client-library errors each operation's policy retries."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from retrysim.cli import common, complete
from retrysim.cli.errors import reports_errors
from retrysim.cli.options import EnvFileOption
from retrysim.names import PROFILES as PROFILE_NAMES
from retrysim.safe import markup


@reports_errors
def errors(
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            help=f"The backoff profile to ask ({', '.join(PROFILE_NAMES)}); default: the "
            "configured one (RETRY__PROFILE).",
            metavar="NAME",
            autocompletion=complete.profiles,
        ),
    ] = None,
    env_file: EnvFileOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the stable JSON document.")
    ] = False,
) -> None:
    """Show which errors (builtin, retrysim's, client libraries') each operation retries.

    Each answer is the real policy's tenacity retry asked about a failed first attempt. A
    library's error is its real class when the library is installed, else a stand-in with the
    same module, name and ancestry (what scenario files raise: error = "redis.exceptions...").
    """
    chosen = common.check_profile(profile) if profile is not None else None
    settings, _ = common.settings(env_file)
    from retrysim.error_matrix import error_matrix

    doc = error_matrix(settings, chosen)
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
    else:
        _render(doc)


def _render(doc: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from retrysim.cli.tables import print_table

    console = Console()
    console.print(f"[bold]Profile[/] {markup(doc['profile'])}: retries {doc['retries']}")
    table = Table(title="Retried errors (yes: the policy retries a failed attempt)")
    table.add_column("error")
    for op in doc["operations"]:
        table.add_column(op, justify="center")
    table.add_column("what", style="dim")
    for row in doc["errors"]:
        cells = [
            "[green]yes[/]" if row["retried"][op] else "[red]no[/]" for op in doc["operations"]
        ]
        table.add_row(markup(row["name"]), *cells, _what(row))
    print_table(console, table, rows_label="error")
    missed = [
        row["name"]
        for row in doc["errors"]
        if row["transient"] and not all(row["retried"].values())
    ]
    if missed:
        console.print(
            f"[yellow]Transient but not retried everywhere under {markup(doc['profile'])}:[/] "
            f"{markup(', '.join(missed))}"
        )


def _yes(retried: bool) -> str:
    return "[green]yes[/]" if retried else "[red]no[/]"


def _what(row: dict[str, Any]) -> str:
    if row["library"] is None:
        return row["instance"] if row["instance"] == "builtin" else markup(row["class"])
    state = "installed, real class" if row["instance"] == "real" else "stand-in"
    if row["instance"] != "real":
        state += " (installed)" if row["installed"] else f" ({row['library']} not installed)"
    note = f", {row['note']}" if row["note"] else ""
    return markup(f"{state}{note}")
