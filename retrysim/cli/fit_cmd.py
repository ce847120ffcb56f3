"""``retrysim fit``: a scenario from a system's own data, every value saying where it came from.

The reading and fitting are :mod:`retrysim.fit`'s; this module turns flags into its options,
checks every output target before the work (a typo in ``--out`` costs no fit), then prints:

- without ``--out``: the scenario TOML on stdout and the report on stderr, so
  ``retrysim fit log.csv > fitted.toml`` keeps the file clean;
- with ``--out``: the report on stdout and the file written atomically;
- with ``--json``: stdout is one JSON document alone (``schema_version``, the fit's
  ``to_dict()``, ``held_out`` and ``toml``: the scenario text).

Bad input (a missing file, a bad ``--column``, an unreadable row) is one line, exit 2.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from retrysim.cli.exits import UsageError, reports_errors
from retrysim.cli.options import HtmlOption, QuietOption
from retrysim.cli.paths import check_figure_path, check_html_path
from retrysim.safe import markup

if TYPE_CHECKING:
    from rich.console import Console

    from retrysim.fit.holdout import HeldOutCheck
    from retrysim.fit.options import FitOptions, ReadOptions
    from retrysim.fit.read import Data
    from retrysim.fit.result import FitResult

#: The version of ``--json``'s document; raised when a field changes meaning or goes.
SCHEMA_VERSION = 1


@reports_errors
def fit(
    context: typer.Context,
    data: Annotated[
        list[Path],
        typer.Argument(
            help="Request logs (.csv, .jsonl), Prometheus scrapes, OTLP JSON traces, or a saved "
            "run's folder (run --out, chaos --out).",
            metavar="DATA...",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write the scenario here (default: print it on stdout, the report on stderr).",
            metavar="FILE",
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the whole fit as one JSON document instead."),
    ] = False,
    html: HtmlOption = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            help="Save the fit's figures: latency against the fit, latency, errors and "
            "arrivals over time (.png, .svg or .pdf).",
            metavar="FILE",
        ),
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check/--no-check",
            help="Fit half the calls, simulate the scenario and compare each metric with the "
            "other half.",
        ),
    ] = True,
    seeds: Annotated[
        int,
        typer.Option("--seeds", help="Simulated seeds for the held-out check.", min=2, metavar="K"),
    ] = 5,
    column: Annotated[
        list[str] | None,
        typer.Option(
            "--column",
            help="Which column holds a role, for logs: timestamp, end, duration, outcome, "
            "error, client, call, attempt, tier (default: guessed from the headers). "
            "Repeatable.",
            metavar="ROLE=NAME",
        ),
    ] = None,
    format_: Annotated[
        str,
        typer.Option(
            "--format",
            help="The inputs' format: auto, csv, jsonl, prometheus, otlp, retrysim.",
            metavar="FORMAT",
        ),
    ] = "auto",
    duration_unit: Annotated[
        str | None,
        typer.Option(
            "--duration-unit",
            help="Unit of the duration column: s, ms, us, ns (default: from its name, else s).",
            metavar="UNIT",
        ),
    ] = None,
    timestamp_unit: Annotated[
        str | None,
        typer.Option(
            "--timestamp-unit",
            help="Unit of numeric timestamps: s, ms, us, ns (default: from their size).",
            metavar="UNIT",
        ),
    ] = None,
    scrape_interval: Annotated[
        float | None,
        typer.Option(
            "--scrape-interval",
            help="Seconds between Prometheus scrapes whose samples carry no timestamp.",
            metavar="SECONDS",
        ),
    ] = None,
    metric: Annotated[
        str | None,
        typer.Option(
            "--metric",
            help="The latency histogram to fit, when the scrapes hold several.",
            metavar="NAME",
        ),
    ] = None,
    bin_width: Annotated[
        float | None,
        typer.Option(
            "--bin-width",
            help="Seconds per bin for rates over time (default: chosen from the data).",
            metavar="SECONDS",
        ),
    ] = None,
    quantiles: Annotated[
        int,
        typer.Option(
            "--quantiles",
            help="Quantiles of an empirical latency, when no family fits.",
            min=2,
            max=1000,
            metavar="N",
        ),
    ] = 50,
    name: Annotated[
        str, typer.Option("--name", help="The scenario's name.", metavar="NAME")
    ] = "fitted",
    quiet: QuietOption = False,
) -> None:
    """Fit a scenario to your system's own data: arrivals, latency, errors and fault windows.

    Reads request logs (CSV or JSON lines: timestamp, duration, outcome or error, optionally
    client and attempt), Prometheus scrapes, OpenTelemetry traces (OTLP JSON) or a saved run,
    and writes a scenario whose every value carries a comment: where it came from, how it was
    fitted and how good the fit is (a default says why it is one). The report shows the same,
    the latency family chosen on held-out data with each candidate's KS distance, the fault
    windows found by change points, and (--check) the scenario simulated against the half
    of the calls it was not fitted on.

    Example: `retrysim fit requests.csv --column duration=latency_ms --out fitted.toml`,
    then `retrysim tune fitted.toml`.

    Exit codes: 0 fitted, 1 a bug in retrysim (said so in one line), 2 bad input.
    """
    from retrysim.cli.html_out import command_words
    from retrysim.output import check_target

    if out is not None:
        check_target(out, "--out")
    if plot is not None:
        check_figure_path(plot, "--plot")
    check_html_path(html)
    if bin_width is not None and not bin_width > 0:
        raise UsageError(f"--bin-width {bin_width}: a positive number of seconds")
    read_options = _read_options(
        column, format_, duration_unit, timestamp_unit, scrape_interval, metric
    )
    from retrysim.fit.options import FitOptions
    from retrysim.fit.pipeline import fit_data
    from retrysim.fit.read import read_inputs
    from retrysim.fit.writer import scenario_text, validate

    options = FitOptions(bin_width=bin_width, quantiles=quantiles, name=name)
    found_data = read_inputs(data, read_options)
    result = fit_data(found_data, options)
    words = command_words(context, "fit")
    text = scenario_text(result, shlex.join(words))
    validate(text, str(out) if out is not None else "<fitted scenario>")
    held_out = _held_out(found_data, options, seeds, quiet) if check else None
    console = _report(result, held_out, text, as_json, to_stdout=out is not None)
    if out is not None:
        from retrysim.output import write_text

        write_text(out, text, "--out")
        _wrote(console, out)
    if plot is not None:
        from retrysim.plots.fit import fit_figure
        from retrysim.plots.save import save_figure

        save_figure(fit_figure(result), plot)
        _wrote(console, plot)
    if html is not None:
        from retrysim.share.fit_page import fit_page
        from retrysim.share.write import write_page

        write_page(fit_page(result, held_out, text, words), html)
        _wrote(console, html)


def _read_options(
    columns: list[str] | None,
    format_: str,
    duration_unit: str | None,
    timestamp_unit: str | None,
    scrape_interval: float | None,
    metric: str | None,
) -> ReadOptions:
    """The reader's options from the flags; ``--column`` items split at their ``=``."""
    from retrysim.fit.columns import check_roles
    from retrysim.fit.options import ReadOptions

    mapped: dict[str, str] = {}
    for item in columns or []:
        role, sep, column = item.partition("=")
        if not sep or not role.strip() or not column.strip():
            raise UsageError(f"--column {item!r}: expected ROLE=NAME, e.g. duration=latency_ms")
        mapped[role.strip()] = column.strip()
    check_roles(mapped)  # here too: a saved run's reader takes no columns, and says nothing
    return ReadOptions(
        format=format_,
        columns=mapped,
        duration_unit=duration_unit,
        timestamp_unit=timestamp_unit,
        scrape_interval=scrape_interval,
        metric=metric,
    )


def _held_out(data: Data, options: FitOptions, seeds: int, quiet: bool) -> HeldOutCheck | str:
    from retrysim.cli.progress import WorkProgress
    from retrysim.fit.holdout import held_out_check

    with WorkProgress("held-out check", "seeds", quiet=quiet) as bar:
        return held_out_check(data, options, seeds=seeds, progress=bar.update)


def document(result: FitResult, held_out: HeldOutCheck | str | None, text: str) -> dict[str, Any]:
    """``--json``'s document: the fit, the held-out check (its data, the line saying why it
    could not run, or None with ``--no-check``) and the scenario's text."""
    if held_out is None or isinstance(held_out, str):
        checked: Any = held_out
    else:
        checked = held_out.to_dict()
    return {"schema_version": SCHEMA_VERSION, **result.to_dict(), "held_out": checked, "toml": text}


def _report(
    result: FitResult,
    held_out: HeldOutCheck | str | None,
    text: str,
    as_json: bool,
    *,
    to_stdout: bool,
) -> Console | None:
    """Print the JSON document, or the scenario (stdout, without --out) and the report."""
    if as_json:
        from retrysim import output

        sys.stdout.write(output.dumps(document(result, held_out, text)))
        sys.stdout.flush()
        return None
    from rich.console import Console

    from retrysim.cli.tables import print_table
    from retrysim.render.fit_report import held_out_table, report_lines

    if not to_stdout:
        sys.stdout.write(text)
        sys.stdout.flush()
    console = Console(stderr=not to_stdout)
    for part in report_lines(result):
        if isinstance(part, str):
            console.print(part, soft_wrap=True)
        else:
            print_table(console, part)
    if isinstance(held_out, str):
        console.print(f"[yellow]held-out check not run:[/] {markup(held_out)}", soft_wrap=True)
    elif held_out is not None:
        print_table(console, held_out_table(held_out))
    if not to_stdout:
        console.print("[dim]the scenario is on stdout; --out FILE writes it to a file[/]")
    return console


def _wrote(console: Console | None, path: Path) -> None:
    if console is not None:
        console.print(f"[dim]wrote {markup(path)}[/]")
