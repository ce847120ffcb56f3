"""``retrysim scenarios`` (list, show, reference) and ``retrysim validate``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from retrysim.cli import value_completion
from retrysim.cli.exits import EXIT_BAD_INPUT, UsageError, reports_errors
from retrysim.cli.help import CONTEXT_SETTINGS, Command, Group
from retrysim.safe import visible

if TYPE_CHECKING:
    from retrysim.model.scenario import Scenario
    from retrysim.model.service import Service

scenarios_app = typer.Typer(
    help="List the bundled scenarios, show one, or print every key a scenario can hold.",
    invoke_without_command=True,
    no_args_is_help=False,
    cls=Group,
    context_settings=CONTEXT_SETTINGS,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@scenarios_app.callback()
@reports_errors
def list_scenarios(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the bundled scenarios with what each one models."""
    if ctx.invoked_subcommand is not None:
        return
    from retrysim.model.library import describe_bundled

    described = [(name, " ".join(text.split())) for name, text in describe_bundled()]
    if as_json:
        rows = [{"name": name, "description": text} for name, text in described]
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Bundled scenarios (run one: retrysim run NAME)", title_justify="left")
    table.add_column("name", style="bold cyan", no_wrap=True)
    table.add_column("what it models")
    for name, description in described:
        table.add_row(name, description)
    Console().print(table)


@scenarios_app.command("show", cls=Command)
@reports_errors
def show(
    name: Annotated[
        str,
        typer.Argument(
            help="A bundled scenario name.",
            show_default=False,
            metavar="NAME",
            autocompletion=value_completion.bundled,
        ),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the validated scenario as JSON, not its TOML.")
    ] = False,
) -> None:
    """Print a bundled scenario's TOML, to read or to copy and edit."""
    from retrysim.model.library import resolve
    from retrysim.model.scenario import ScenarioError

    try:
        path = resolve(name)
    except ScenarioError as error:
        raise UsageError(str(error)) from None
    if not path.is_file():
        raise UsageError(f"{name}: no such scenario file or bundled scenario")
    if as_json:
        from retrysim.model.library import load_scenario

        sys.stdout.write(json.dumps(load_scenario(path).model_dump(mode="json"), indent=2) + "\n")
        return
    sys.stdout.write(path.read_text(encoding="utf-8"))


@scenarios_app.command("reference", cls=Command)
@reports_errors
def reference(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the tables as JSON data, not Markdown.")
    ] = False,
) -> None:
    """Print every key a scenario file can hold: type, unit, default and what it models.

    Read from the scenario models (README's "Scenario reference" is the same text).
    """
    from retrysim.model import reference

    if as_json:
        sys.stdout.write(json.dumps(reference.as_data(), indent=2) + "\n")
        return
    sys.stdout.write(reference.markdown())


@reports_errors
def validate(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Scenario files (or bundled names) to check.",
            show_default=False,
            metavar="FILE",
            autocompletion=value_completion.scenarios,
        ),
    ],
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help='Print a JSON list of {"file", "ok", "errors", "warnings", "defaults", '
            '"summary"}, one per file.',
        ),
    ] = False,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict", help="Treat warnings (keys that do nothing, degenerate runs) as errors."
        ),
    ] = False,
) -> None:
    """Check scenario files and report every error with file, field and what is allowed.

    Also warns, one line each, of keys that are accepted but change nothing and of scenarios
    that degenerate (every attempt timing out), and lists the defaults in effect that add time
    or capacity, with the key that changes each. Exit code 0 when all are valid, 2 when any is
    not (with --strict, also when any has a warning).
    """
    from retrysim.model.defaults import given_keys, in_effect
    from retrysim.model.library import load_scenario
    from retrysim.model.lint import lint
    from retrysim.model.scenario import ScenarioError

    bad = 0
    report: list[dict[str, Any]] = []
    for file in files:
        try:
            scenario = load_scenario(file)
        except ScenarioError as error:
            bad += 1
            errors = str(error).splitlines()
            report.append(
                {
                    "file": str(file),
                    "ok": False,
                    "errors": errors,
                    "warnings": [],
                    "defaults": [],
                    "summary": None,
                }
            )
            if not as_json:
                for line in errors:
                    print(f"retrysim: error: {visible(line)}", file=sys.stderr)
            continue
        given = given_keys(scenario)
        warnings = [finding.line(str(file)) for finding in lint(scenario, given)]
        defaults = [default.text() for default in in_effect(scenario, given)]
        summary = summary_line(scenario)
        errors, ok = (warnings, False) if strict and warnings else ([], True)
        bad += not ok
        entry = {
            "file": str(file),
            "ok": ok,
            "errors": errors,
            "warnings": [] if errors else warnings,
            "defaults": defaults,
            "summary": summary,
        }
        report.append(entry)
        if as_json:
            continue
        for line in warnings:
            print(f"retrysim: {'error' if errors else 'warning'}: {visible(line)}", file=sys.stderr)
        if ok:
            print(visible(f"ok: {file}: {summary}"))
            if defaults:
                print(visible(f"  defaults in effect: {'; '.join(defaults)}"))
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    if bad:
        raise typer.Exit(EXIT_BAD_INPUT)


def summary_line(scenario: Scenario) -> str:
    """What ``validate`` says a valid scenario is: its name, its clients, the service they call
    or, with tiers, the call graph top to bottom, and its faults (every tier's)::

        't3', 10 clients -> gateway (ideal) -> database (queue x3 replicas), 1 fault
    """
    faults = len(scenario.faults) + sum(len(tier.faults) for tier in scenario.tiers.values())
    counted = f"{faults} fault" + ("" if faults == 1 else "s")
    count = scenario.clients.count
    head = f"{scenario.name!r}, {count:,} client" + ("" if count == 1 else "s")
    if not scenario.tiers:
        return f"{head}, {_server(scenario.service, ' service')}, {counted}"
    graph = " -> ".join(
        f"{name} ({_server(tier.service)})" for name, tier in scenario.tiers.items()
    )
    return f"{head} -> {graph}, {counted}"


def _server(service: Service, noun: str = "") -> str:
    """``queue``, or ``queue x3 replicas`` behind a balancer (``noun`` after the kind)."""
    replicas = f" x{service.replicas:,} replicas" if service.replicas > 1 else ""
    return f"{service.kind}{noun}{replicas}"
