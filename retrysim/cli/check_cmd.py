"""``retrysim check``: review a retry change before it merges, in CI or by hand.

Reads the configuration (:mod:`retrysim.model.check_config`), the two sides' settings
(:mod:`retrysim.runs.check_env`: files alone, the environment's ``RETRY__*`` ignored with a
warning), runs each scenario with the same seeds on both sides and judges them
(:mod:`retrysim.runs.check`), then prints the report or ``--json`` and writes ``--junit``.
Exit 0 when everything holds, 1 when a gate breaks or a watched metric is worse beyond its
interval, 2 for bad input.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from retrysim.cli import common
from retrysim.cli.exits import EXIT_THRESHOLD, UsageError, reports_errors, warn
from retrysim.cli.options import HtmlOption, QuietOption, WorkersOption
from retrysim.cli.paths import check_html_path
from retrysim.safe import markup

if TYPE_CHECKING:
    from retrysim.model.check_config import CheckConfig
    from retrysim.runs.check import CheckResult, Planned
    from retrysim.runs.check_env import Side

DEFAULT_BEFORE = "git:HEAD"


@reports_errors
def check(
    context: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="The check's configuration (default: ./retrysim.toml, else [tool.retrysim] in "
            "./pyproject.toml).",
            metavar="FILE",
        ),
    ] = None,
    before: Annotated[
        str,
        typer.Option(
            "--before",
            help="The settings before the change: a .env file, or git:REV for the after .env "
            "as it was at revision REV of this repository (a file absent there: the defaults).",
            metavar="ENV|git:REV",
        ),
    ] = DEFAULT_BEFORE,
    after: Annotated[
        Path | None,
        typer.Option(
            "--after",
            help="The settings after the change (default: the configuration's env, .env).",
            metavar="ENV",
        ),
    ] = None,
    scenario: Annotated[
        list[str] | None,
        typer.Option(
            "--scenario",
            help="Check only this scenario of the configuration (as it names it). Repeatable.",
            metavar="NAME",
        ),
    ] = None,
    seeds: Annotated[
        int | None,
        typer.Option(
            "--seeds",
            help="Seeds per scenario, the same both sides (default: the configuration's, 5).",
            min=1,
            max=1000,
            metavar="N",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the check as JSON instead of the tables.")
    ] = False,
    junit: Annotated[
        Path | None,
        typer.Option(
            "--junit",
            help="Write JUnit XML: a test case per scenario and gate, and per scenario for "
            "'no metric worse beyond its interval'.",
            metavar="FILE",
        ),
    ] = None,
    html: HtmlOption = None,
    workers: WorkersOption = None,
    quiet: QuietOption = False,
) -> None:
    """Compare retry settings before and after a change on the configured scenarios.

    Every scenario runs with the same seeds under both (common random numbers). Exits 1 when
    a gate breaks or a watched metric gets worse beyond its 95% interval, 0 when all hold.
    The RETRY__* variables of the environment are ignored: each side is its file alone.
    """
    from retrysim.output import check_target

    if junit is not None:
        check_target(junit, "--junit")
    check_html_path(html)
    setup = _config(config)
    planned = _planned(setup, scenario, seeds)
    before_side, after_side = _sides(setup, before, after)
    result = _run(setup, planned, before_side, after_side, workers, quiet)
    _report(result, as_json)
    if junit is not None:
        from retrysim.render.junit import write_junit

        write_junit(junit, result)
        _wrote(junit, as_json)
    if html is not None:
        from retrysim.cli.html_out import command_words
        from retrysim.share.check_page import check_page
        from retrysim.share.write import write_page

        write_page(check_page(result, command_words(context, "check"), setup.where), html)
        _wrote(html, as_json)
    if not result.passed:
        raise typer.Exit(EXIT_THRESHOLD)


def _wrote(path: Path, as_json: bool) -> None:
    """``wrote PATH`` after the report (not with --json: stdout is the document alone)."""
    if not as_json:
        from rich.console import Console

        Console().print(f"[dim]wrote {markup(path)}[/]", soft_wrap=True)


def _config(given: Path | None) -> CheckConfig:
    from retrysim.model.check_config import Vocabulary, find_config, parse_config
    from retrysim.model.library import bundled_scenarios
    from retrysim.results.metric_table import METRIC_NAMES, METRIC_TABLE
    from retrysim.runs.check_metrics import TIER_FIELDS

    vocabulary = Vocabulary(
        METRIC_NAMES,
        frozenset(m.name for m in METRIC_TABLE if m.format == "seconds"),
        tuple(TIER_FIELDS),
    )
    path, where, data = find_config(Path.cwd(), given)
    return parse_config(path, where, data, vocabulary, tuple(bundled_scenarios()))


def _planned(setup: CheckConfig, only: list[str] | None, seeds: int | None) -> list[Planned]:
    """The scenarios to check (``--scenario`` picks), loaded with their ``set``: every bad
    key or value fails here, naming the configuration, before any run."""
    from retrysim.runs.check import plan
    from retrysim.suggest import hint

    names = [c.name for c in setup.scenarios]
    for name in only or []:
        if name not in names:
            raise UsageError(
                f"--scenario {name}: not a scenario of {setup.where}{hint(name, names)}"
            )
    chosen = [c for c in setup.scenarios if not only or c.name in only]
    planned = []
    for item in chosen:
        loaded = common.load(item.source, {})
        scenario = common.apply(loaded, dict(item.sets), f"{setup.where}: scenario.{item.name}.set")
        planned.append(plan(item, scenario, seeds, setup.where))
    return planned


def _sides(setup: CheckConfig, before: str, after: Path | None) -> tuple[Side, Side]:
    """Both sides' settings; the after file defaults to the configuration's ``env``."""
    from retrysim.runs.check_env import GIT_PREFIX, read_git_side, read_side

    env = after if after is not None else _near(setup.env)
    after_option = "--after" if after is not None else f"{setup.where}: env"
    after_side = read_side("after", str(env), after_option, must_exist=after is not None)
    if before.startswith(GIT_PREFIX):
        before_side = read_git_side("before", before.removeprefix(GIT_PREFIX), env, "--before")
    else:
        before_side = read_side("before", before, "--before", must_exist=True)
    for side in (before_side, after_side):
        for message in side.warnings:
            warn(message)
    return before_side, after_side


def _near(path: Path) -> Path:
    """``path`` relative to the current folder when it is inside it (as messages show it)."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def _run(
    setup: CheckConfig,
    planned: list[Planned],
    before: Side,
    after: Side,
    workers: int | None,
    quiet: bool,
) -> CheckResult:
    from retrysim.cli.progress import WorkProgress
    from retrysim.runs.check import DEFAULT_WATCH, run_check
    from retrysim.runs.check_env import environment_variables
    from retrysim.runs.executors import LocalExecutor

    ignored = environment_variables()
    if ignored:
        warn(
            f"{', '.join(ignored)} set in the environment: ignored by check, which reads before "
            "and after from their files alone"
        )
    watch = setup.watch if setup.watch is not None else DEFAULT_WATCH
    with WorkProgress("checking", "runs", quiet=quiet) as bar:
        return run_check(
            planned,
            before,
            after,
            LocalExecutor(workers),
            watch,
            on_done=bar.update,
            ignored_environment=ignored,
        )


def _report(result: CheckResult, as_json: bool) -> None:
    from retrysim.runs.check import document

    def draw(console: Any) -> None:
        from retrysim.cli.tables import print_table
        from retrysim.render.check_report import header_lines, scenario_table, verdict_line

        for line in header_lines(result):
            console.print(line, soft_wrap=True)
        for verdict in result.scenarios:
            print_table(console, scenario_table(verdict))
        console.print(verdict_line(result), soft_wrap=True)  # one line, for logs and grep

    common.show(document(result), as_json, draw)
