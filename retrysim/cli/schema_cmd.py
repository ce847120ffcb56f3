"""``retrysim schema result``: the JSON Schema of the result document ``retrysim run --json``
prints, for tools that read saved results (and ``docs/result.schema.json``, the same text)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from retrysim.cli.exits import reports_errors
from retrysim.cli.help import CONTEXT_SETTINGS, Command, Group
from retrysim.safe import visible

schema_app = typer.Typer(
    help="Print the JSON Schema of a document retrysim writes.",
    no_args_is_help=True,
    cls=Group,
    context_settings=CONTEXT_SETTINGS,
)


@schema_app.command("result", cls=Command)
@reports_errors
def result(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write it to FILE (atomically: a reader never sees half of it) instead of "
            "printing it.",
            metavar="FILE",
        ),
    ] = None,
) -> None:
    """The JSON Schema (draft 2020-12) of the result document: what `retrysim run --json`
    prints and `run --out DIR` saves as result.json, with its schema version."""
    from retrysim.results.document import schema_json

    text = schema_json()
    if out is None:
        sys.stdout.write(text)
        return
    from retrysim import output

    output.write_text(out, text, "--out")
    typer.echo(f"wrote {visible(out)}")
