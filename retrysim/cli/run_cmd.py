"""``retrysim run``: simulate one scenario and report what the retry settings did."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from retrysim.cli import common, gates, value_completion
from retrysim.cli.exits import reports_errors
from retrysim.cli.gates import FailOverOption, FailUnderOption
from retrysim.cli.options import (
    EngineOption,
    EnvFileOption,
    HtmlOption,
    PolicyOption,
    QuietOption,
    ScenarioArg,
    SeedOption,
)
from retrysim.cli.paths import check_figure_path, check_html_path, check_out_dir
from retrysim.cli.run_files import RUN_FILES, write_run_files
from retrysim.safe import markup

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
    html: HtmlOption = None,
    fail_under: FailUnderOption = None,
    fail_over: FailOverOption = None,
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
    thresholds = gates.parse(fail_under, fail_over)
    if plot is not None:
        check_figure_path(plot, "--plot")
    if out is not None:
        check_out_dir(out, "--out", RUN_FILES)
    check_html_path(html)
    sets = common.parse_sets(set_)
    for spec in policy or []:
        common.check_policy_alone(spec, sets, profile)
    loaded, given = common.load_given(scenario, sets, profile)
    settings, setting_sources = common.settings(env_file)
    sources = common.policy_sources(loaded, sets, setting_sources, profile)
    retrying, retryings = common.user_policies(policy, loaded)

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
            retryings=retryings,
        )
    result, doc = step.result, step.document
    doc["sources"] = sources
    doc["source"] = scenario  # as given: the report's suggested commands name it
    doc["arguments"] = common.rerun_arguments(
        seed=seed, sets=set_, profile=profile, env_file=env_file, policy=policy
    )

    from retrysim.model.defaults import in_effect

    defaults = [default.text() for default in in_effect(loaded, given)]

    def draw(console: Any) -> None:
        from retrysim.render.report import render_run

        render_run(doc, console, sources, defaults)

    # The report first: whatever fails after it (a full disk, a figure), it is already shown.
    console = common.show(doc, as_json, draw)
    if out is not None:
        write_run_files(out, doc, result)
        if console is not None:
            console.print(f"[dim]wrote {markup(out)}/result.json, attempts.csv, calls.csv[/]")
    if plot is not None:
        from retrysim.plots import save_run_figure

        save_run_figure(doc, plot)
        if console is not None:
            console.print(f"[dim]wrote {markup(plot)}[/]")
    if html is not None:
        from retrysim.share.run_page import run_page
        from retrysim.share.write import write_page

        write_page(run_page(doc, defaults=defaults), html)
        if console is not None:
            console.print(f"[dim]wrote {markup(html)}[/]")
    gates.enforce(doc, thresholds)
