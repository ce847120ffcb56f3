"""The ``retrysim`` Typer application and its entry point.

Imports here stay light (no numpy, pydantic-settings or matplotlib) so ``retrysim --help``
answers instantly; each command imports what it needs when it runs.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from retrysim.cli import (
    chaos_cmd,
    check_cmd,
    compare_cmd,
    errors_cmd,
    fit_cmd,
    lab_cmd,
    plot_cmd,
    proxy_cmd,
    run_cmd,
    scenarios_cmd,
    schema_cmd,
    settings_cmd,
    tune_cmd,
)
from retrysim.cli.exits import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    debug_mode,
    interrupt_code,
    interrupt_reported,
    interruption,
    stop_on_signals,
)
from retrysim.cli.help import CONTEXT_SETTINGS, Command, Group
from retrysim.cli.progress import quiet_mode
from retrysim.safe import visible

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
    cls=Group,
    context_settings=CONTEXT_SETTINGS,
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
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", help="No progress bars (they are off anyway when stderr is piped)."
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", is_eager=True, callback=_print_version
        ),
    ] = False,
) -> None:
    debug_mode["on"] = debug
    quiet_mode["on"] = quiet


app.command("run", cls=Command)(run_cmd.run)
app.command("compare", cls=Command)(compare_cmd.compare)
app.command("sweep", cls=Command)(compare_cmd.sweep)
app.command("tune", cls=Command)(tune_cmd.tune)
app.add_typer(scenarios_cmd.scenarios_app, name="scenarios")
app.command("validate", cls=Command)(scenarios_cmd.validate)
app.command("settings", cls=Command)(settings_cmd.settings)
app.command("errors", cls=Command)(errors_cmd.errors)
app.command("plot", cls=Command)(plot_cmd.plot)
app.command("chaos", cls=Command)(chaos_cmd.chaos)
app.add_typer(proxy_cmd.proxy_app, name="proxy")
app.command("check", cls=Command)(check_cmd.check)
app.command("fit", cls=Command)(fit_cmd.fit)
app.command("lab", cls=Command)(lab_cmd.lab)
app.add_typer(schema_cmd.schema_app, name="schema")


@app.command("shell", cls=Command)
def shell() -> None:
    """Explore interactively: load, set, fault add/rm, run, compare, diff, hist, timeline, save.

    Tab completes commands and keys; history is kept in ~/.retrysim_history. Commands can also be
    piped in, one per line: `printf 'load redis-blip\\nrun\\n' | retrysim shell`
    (a piped session exits 2 if any command failed).
    """
    from retrysim.cli.shell import run_shell

    raise typer.Exit(run_shell())


def main() -> None:
    """Console entry point (``retrysim`` and ``python -m retrysim``).

    Click's own argument errors (an unknown option, a value out of range, a missing argument)
    become the same one line as every other bad input: ``retrysim: error: ...``, exit 2.
    SIGTERM and SIGHUP stop a command as a Ctrl-C does, and exit 143 and 129
    (:func:`~retrysim.cli.exits.stop_on_signals`).
    """
    usage_error = _usage_error_class()
    interrupt_reported["on"] = False  # this command's own: an earlier one in-process is done
    with stop_on_signals():
        try:
            code = app(standalone_mode=False)
        except usage_error as error:
            ctx: Any = getattr(error, "ctx", None)
            if type(error).__name__ == "NoArgsIsHelpError" and ctx is not None:
                print(ctx.get_help())  # a bare 'retrysim' (or group) shows its help
                sys.exit(0)
            where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            message = " ".join(error.format_message().split())  # type: ignore[attr-defined]
            print(f"retrysim: error: {visible(message + where)}", file=sys.stderr)
            sys.exit(EXIT_BAD_INPUT)
        except (typer.Abort, KeyboardInterrupt):
            code = EXIT_INTERRUPTED
        if code in (EXIT_INTERRUPTED, interrupt_code()):
            # Typer turns a Ctrl-C (or a SignalStop) inside a command into a silent Exit(130)
            # before it reaches us; no command exits 130 of its own accord, so that code means
            # the user interrupted. (compare, sweep and tune print their own line, saying what
            # was kept and how to go on.)
            code = interrupt_code()
            if not interrupt_reported["on"]:
                print(f"retrysim: {interruption()}", file=sys.stderr)
    sys.exit(code if isinstance(code, int) else 0)


def _usage_error_class() -> type[Exception]:
    """Click's UsageError, found through Typer's public BadParameter (a subclass of it).

    Typer vendors Click in recent releases and depends on it in older ones; this works for both.
    """
    for cls in typer.BadParameter.__mro__:
        if cls.__name__ == "UsageError":
            return cls
    raise RuntimeError("this Typer has no UsageError")  # pragma: no cover
