"""``retrysim scenarios`` (list, show, reference, export) and ``retrysim validate``."""

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
    help="List the bundled scenarios, show one, print every key a scenario can hold, or "
    "export one's faults for Toxiproxy or Chaos Mesh.",
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


@scenarios_app.command("export", cls=Command)
@reports_errors
def export(
    scenario: Annotated[
        str,
        typer.Argument(
            help="A bundled scenario name or a scenario file.",
            show_default=False,
            metavar="SCENARIO",
            autocompletion=value_completion.scenarios,
        ),
    ],
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="toxiproxy (JSON for POST /populate, each proxy with its toxics) or chaos-mesh "
            "(a Kubernetes List of NetworkChaos, HTTPChaos and Schedule objects, as JSON).",
            metavar="FORMAT",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write the document to FILE instead of stdout.", metavar="FILE"),
    ] = None,
    upstream: Annotated[
        str | None,
        typer.Option(
            "--upstream",
            help="The service's HOST:PORT (Toxiproxy's upstream; Chaos Mesh's HTTP port). "
            "Default 127.0.0.1:8080 when the scenario's faults answer HTTP statuses, else "
            "127.0.0.1:6379.",
            metavar="HOST:PORT",
            show_default=False,
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="The proxy's name, or the Chaos Mesh objects' prefix (default: the scenario's "
            "name, lowercase, '-' for anything else).",
            metavar="NAME",
            show_default=False,
        ),
    ] = None,
    listen: Annotated[
        str | None,
        typer.Option(
            "--listen",
            help="toxiproxy: the proxy's listen address (default 127.0.0.1:0, a free port "
            "Toxiproxy picks).",
            metavar="HOST:PORT",
            show_default=False,
        ),
    ] = None,
    selector: Annotated[
        str | None,
        typer.Option(
            "--selector",
            help="chaos-mesh: the service's pod labels, KEY=VALUE[,KEY=VALUE] (default app=NAME).",
            metavar="LABELS",
            show_default=False,
        ),
    ] = None,
    tier: Annotated[
        str | None,
        typer.Option(
            "--tier",
            help="With tiers: whose faults to export.",
            metavar="TIER",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help='Print {"format", "document", "not_expressed", "out"} (the document is null '
            "with --out).",
        ),
    ] = False,
) -> None:
    """Write a scenario's faults for Toxiproxy or Chaos Mesh, and list what they cannot hold.

    Each part of a fault the output leaves out or only approximates (a window Toxiproxy cannot
    schedule, a probability Chaos Mesh cannot draw, an HTTP answer a TCP proxy cannot give) is
    one `retrysim: not expressed:` line on stderr naming the fault (faults.2) and why, and an
    entry of --json's not_expressed. Exit code 0 even so; 2 for bad input.
    """
    from retrysim.chaos import export as chaos_export
    from retrysim.chaos import export_base
    from retrysim.model.library import load_scenario

    if to not in chaos_export.FORMATS:
        raise UsageError(f"--to {to!r}: allowed: {', '.join(chaos_export.FORMATS)}")
    for value, option, owner in (
        (listen, "--listen", "toxiproxy"),
        (selector, "--selector", "chaos-mesh"),
    ):
        if value is not None and to != owner:
            raise UsageError(f"{option} applies to --to {owner} only")
    if out is not None:
        from retrysim.output import check_target

        check_target(out, "--out")
    loaded = load_scenario(scenario)
    _, faults = export_base.faults_of(loaded, tier)
    target = upstream or export_base.DEFAULT_UPSTREAM[export_base.speaks_http(loaded, faults)]
    named = export_base.check_name(name) if name is not None else export_base.default_name(loaded)
    document: Any
    if to == "toxiproxy":
        document, items = chaos_export.to_toxiproxy(
            loaded, target, named, listen=listen or export_base.DEFAULT_LISTEN, tier=tier
        )
    else:
        labels = export_base.parse_selector(selector) if selector is not None else None
        document, items = chaos_export.to_chaos_mesh(
            loaded, target, named, selector=labels, tier=tier
        )
    for item in items:
        print(f"retrysim: not expressed: {visible(item.line())}", file=sys.stderr)
    text = json.dumps(document, indent=2) + "\n"
    if out is not None:
        from retrysim.output import write_text

        write_text(out, text, "--out")
    if as_json:
        report = {
            "format": to,
            "document": None if out is not None else document,
            "not_expressed": [item.as_dict() for item in items],
            "out": None if out is None else str(out),
        }
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    elif out is None:
        sys.stdout.write(text)
    else:
        print(visible(f"wrote {out} ({to}; {len(items)} not expressed)"))


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
