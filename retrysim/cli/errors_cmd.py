"""``retrysim errors``: which common client-library errors each operation's policy retries."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from retrysim.cli import common, value_completion
from retrysim.cli.exits import reports_errors
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
            autocompletion=value_completion.profiles,
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
    from retrysim.results.error_matrix import error_matrix

    doc = error_matrix(settings, chosen)
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
    else:
        _render(doc)


def _render(doc: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]Profile[/] {markup(doc['profile'])}: retries {doc['retries']}")
    # Not cli.tables.print_table: a transposed table of 29 errors is unreadable, and only the
    # last column (what the row's exception is) needs to wrap on a narrow terminal.
    table = Table(title="Retried errors (yes: the policy retries a failed attempt)")
    table.add_column("error", overflow="fold")
    for op in doc["operations"]:
        table.add_column(op, justify="center", no_wrap=True, min_width=len(op))
    table.add_column("what", style="dim", no_wrap=True)
    # What is left for the error column once the others have theirs (their widths, padding and
    # borders: about 56 columns); a longer name breaks after its module, never mid-word.
    room = max(16, console.width - 56)
    for row in doc["errors"]:
        cells = [_yes(row["retried"][op]) for op in doc["operations"]]
        name = _name(row["name"], room)
        if row["note"]:
            name += f"\n[dim]  {markup(row['note'])}[/]"
        table.add_row(name, *cells, _what(row))
    console.print(table)
    console.print(
        "[dim]real: the library's own class. stand-in: retrysim's class with the real one's "
        "module, name and ancestry, used when the library is not installed (*) or the row "
        "carries a status or code; scenario files always raise stand-ins.[/]"
    )
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


def _name(name: str, room: int) -> str:
    """``name`` as markup, its module on a line of its own when the whole is wider than ``room``."""
    module, dot, cls = name.rpartition(".")
    if len(name) <= room or not dot:
        return markup(name)
    return f"[dim]{markup(module)}.[/]\n{markup(cls)}"


def _yes(retried: bool) -> str:
    return "[green]yes[/]" if retried else "[red]no[/]"


def _what(row: dict[str, Any]) -> str:
    """``builtin``, ``retrysim``, ``real`` or ``stand-in`` (``*``: the library is not installed)."""
    if row["library"] is None:
        return str(row["instance"])
    if row["instance"] == "real":
        return "real"
    return "stand-in" + ("" if row["installed"] else "*")
