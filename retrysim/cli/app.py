"""The ``retrysim`` Typer application and its entry point.

Imports here stay light (no numpy, pydantic-settings or matplotlib) so ``retrysim --help``
answers instantly; each command imports what it needs when it runs.
"""

from __future__ import annotations

from typing import Annotated

import typer

from retrysim.cli import compare_cmd, plot_cmd, run_cmd, scenarios_cmd, settings_cmd
from retrysim.cli.errors import debug_mode

app = typer.Typer(
    name="retrysim",
    help=(
        "See what your retry settings do before production does.\n\n"
        "Runs your RETRY__* settings (the policies of retrysim.retry, on real tenacity objects) "
        "against injected faults in virtual time: an hour of a 10,000-client fleet in seconds.\n\n"
        "Start with: retrysim run thundering-herd"
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)


def _print_version(value: bool) -> None:
    if value:
        from retrysim import __version__

        typer.echo(f"retrysim {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show full tracebacks instead of one-line errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", is_eager=True, callback=_print_version
        ),
    ] = False,
) -> None:
    debug_mode["on"] = debug


app.command("run")(run_cmd.run)
app.command("compare")(compare_cmd.compare)
app.command("sweep")(compare_cmd.sweep)
app.add_typer(scenarios_cmd.scenarios_app, name="scenarios")
app.command("validate")(scenarios_cmd.validate)
app.command("settings")(settings_cmd.settings)
app.command("plot")(plot_cmd.plot)


@app.command("shell")
def shell() -> None:
    """Explore interactively: load, set, fault add/rm, run, compare, diff, hist, timeline, save.

    Tab completes commands and keys; history is kept in ~/.retrysim_history. Commands can also be
    piped in, one per line: printf 'load redis-blip\nrun\n' | retrysim shell
    """
    from retrysim.cli.shell import run_shell

    raise typer.Exit(run_shell())


def main() -> None:
    """Console entry point (``retrysim`` and ``python -m retrysim``)."""
    app()
