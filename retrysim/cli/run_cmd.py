"""``retrysim run``: simulate one scenario and report what the retry settings did."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from retrysim.cli import common, value_completion
from retrysim.cli.exits import EXIT_THRESHOLD, UsageError, reports_errors
from retrysim.cli.options import (
    EngineOption,
    EnvFileOption,
    PolicyOption,
    QuietOption,
    ScenarioArg,
    SeedOption,
)
from retrysim.cli.paths import check_figure_path, check_out_dir
from retrysim.safe import markup
from retrysim.suggest import hint

if TYPE_CHECKING:
    from retrysim.results.document import ResultDocument

SET_HELP = (
    "Override a scenario value by dotted key, e.g. policy.max_attempts=5, "
    "clients.count=20000, faults.0.end=40. Repeatable."
)


@reports_errors
def run(
    scenario: ScenarioArg,
    seed: SeedOption = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help=SET_HELP, metavar="KEY=VALUE", autocompletion=value_completion.set_keys
        ),
    ] = None,
    env_file: EnvFileOption = None,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            help=f"Backoff profile: {', '.join(common.PROFILE_NAMES)}.",
            metavar="NAME",
            autocompletion=value_completion.profiles,
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the result document as JSON instead of the report."),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write result.json, attempts.csv and calls.csv into this folder.",
            metavar="DIR",
        ),
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            help="Save the timeline and jitter-spread figure (.png, .svg or .pdf).",
            metavar="FILE",
        ),
    ] = None,
    fail_under: Annotated[
        list[str] | None,
        typer.Option(
            "--fail-under",
            help="Exit 1 if METRIC is below VALUE, e.g. success_rate=0.99. Repeatable.",
            metavar="METRIC=VALUE",
            autocompletion=value_completion.thresholds,
        ),
    ] = None,
    fail_over: Annotated[
        list[str] | None,
        typer.Option(
            "--fail-over",
            help="Exit 1 if METRIC is above VALUE, e.g. p99_latency=30. Repeatable.",
            metavar="METRIC=VALUE",
            autocompletion=value_completion.thresholds,
        ),
    ] = None,
    policy: PolicyOption = None,
    engine: EngineOption = "auto",
    quiet: QuietOption = False,
) -> None:
    """Simulate SCENARIO with your RETRY__* settings and report outcomes, latency, load and jitter.

    The report shows success and retry rates, latency (and its overhead against the same run with
    no faults), load amplification against server capacity, a histogram of when retries start, and
    a timeline of attempts per second. Same scenario + seed = the same result, always.

    Exit codes: 0 ok, 1 a --fail-under/--fail-over threshold was missed (or a bug in retrysim,
    said so in one line), 2 bad input.
    """
    thresholds = _thresholds(fail_under, "--fail-under") + _thresholds(fail_over, "--fail-over")
    if plot is not None:
        check_figure_path(plot, "--plot")
    if out is not None:
        check_out_dir(out, "--out")
    sets = common.parse_sets(set_)
    common.check_policy_alone(policy, sets, profile)
    loaded = common.load(scenario, sets, profile)
    settings, setting_sources = common.settings(env_file)
    sources = common.policy_sources(loaded, sets, setting_sources, profile)
    retrying = common.user_policy(policy, loaded)

    from retrysim.cli.progress import WorkProgress
    from retrysim.runs.runner import run as run_step

    with WorkProgress("simulating", "calls", quiet=quiet) as bar:  # the baseline's calls too
        step = run_step(
            loaded,
            seed=seed,
            settings=settings,
            progress=bar.update,
            retrying=retrying,
            engine=engine,
        )
    result, doc = step.result, step.document
    doc["sources"] = sources

    from retrysim import output

    def draw(console: Any) -> None:
        from retrysim.render.report import render_run

        render_run(doc, console, sources)

    # The report first: whatever fails after it (a full disk, a figure), it is already shown.
    console = common.show(doc, as_json, draw)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        output.write_json(out / "result.json", doc)
        output.write_text(
            out / "attempts.csv", output.records_csv(result.attempts, result.error_names)
        )
        output.write_text(out / "calls.csv", output.records_csv(result.calls, result.error_names))
        if console is not None:
            console.print(f"[dim]wrote {markup(out)}/result.json, attempts.csv, calls.csv[/]")
    if plot is not None:
        from retrysim.plots import save_run_figure

        save_run_figure(doc, plot)
        if console is not None:
            console.print(f"[dim]wrote {markup(plot)}[/]")
    missed = _missed(doc, thresholds)
    if missed:
        for line in missed:
            print(f"retrysim: threshold missed: {line}", file=sys.stderr)
        raise typer.Exit(EXIT_THRESHOLD)


def _thresholds(items: list[str] | None, option: str) -> list[tuple[str, str, float]]:
    from retrysim.results.metric_table import METRIC_NAMES

    parsed = []
    for item in items or []:
        name, value = common.parse_assignment(item, option)
        if name not in METRIC_NAMES:
            close = hint(name, METRIC_NAMES, list_allowed=False)
            raise UsageError(
                f"{option} {name}: unknown metric{close}; allowed: {', '.join(METRIC_NAMES)}"
            )
        try:
            limit = float(value)
        except ValueError:
            raise UsageError(f"{option} {item!r}: {value!r} is not a number") from None
        if not math.isfinite(limit):
            raise UsageError(f"{option} {item!r}: the threshold must be a finite number")
        parsed.append((option, name, limit))
    return parsed


def _missed(doc: ResultDocument, thresholds: list[tuple[str, str, float]]) -> list[str]:
    from retrysim.results.metrics import metric

    missed = []
    for option, name, limit in thresholds:
        value = metric(doc, name)
        if value is None:
            continue  # not measurable in this run (e.g. no retries): nothing to hold against it
        if (option == "--fail-under" and value < limit) or (
            option == "--fail-over" and value > limit
        ):
            relation = "below" if option == "--fail-under" else "above"
            missed.append(f"{name} = {value:.6g} is {relation} {limit:g}")
    return missed
