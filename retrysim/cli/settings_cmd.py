"""``retrysim settings``: the effective RETRY__* settings, where each came from, what they imply."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from retrysim.cli import common, value_completion
from retrysim.cli.exits import UsageError, reports_errors
from retrysim.cli.options import EnvFileOption
from retrysim.names import PROFILES as PROFILE_NAMES
from retrysim.safe import markup, visible


@reports_errors
def settings(
    env_file: EnvFileOption = None,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            help=f"Preview another backoff profile ({', '.join(PROFILE_NAMES)}), or several "
            "(bindu,documented): one report each, overlaid in --plot.",
            metavar="NAMES",
            autocompletion=value_completion.profiles,
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the stable JSON document.")
    ] = False,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            help="Save the backoff schedule of the four operations, one panel each, every "
            "--profile overlaid (.png, .svg, .pdf).",
            metavar="FILE",
        ),
    ] = None,
) -> None:
    """Show the effective retry settings per operation, their source, and the backoff schedule.

    For each retry n: the shortest and longest possible wait, and the worst-case total time spent
    waiting up to that retry. Sources: default, env (process environment) or .env. With
    --profile P1,P2 each profile gets its report and --plot overlays them in every panel.
    """
    chosen = [common.check_profile(name) for name in _names(profile)]
    if as_json and len(chosen) > 1:
        raise UsageError(
            f"--json prints one profile's document; --profile names {len(chosen)}: "
            f"{', '.join(chosen)}"
        )
    if plot is not None:
        from retrysim.cli.paths import check_figure_path

        check_figure_path(plot, "--plot")
    settings, sources = common.settings(env_file)  # checks --env-file, names a bad variable
    from retrysim.render.settings import settings_document

    env = env_file if env_file is not None else ".env"
    previews: list[str | None] = [*chosen] or [None]  # None: the configured profile
    docs = [settings_document(env, name, settings, sources) for name in previews]  # type: ignore[arg-type]
    if as_json:
        typer.echo(json.dumps(docs[0], indent=2))
    else:
        for i, doc in enumerate(docs):
            if i:
                typer.echo("")
            _render(doc)
    if plot is not None:  # after the report: a failing figure never loses it
        from retrysim.plots import save_settings_figure

        save_settings_figure(plot, settings, chosen or None)
        if not as_json:
            typer.echo(f"wrote {visible(plot)}")


def _names(profiles: str | None) -> list[str]:
    """``bindu,documented`` as a list of names; repeated names once, in the order typed."""
    if profiles is None:
        return []
    names = [name.strip() for name in profiles.split(",")]
    if not all(names):
        raise UsageError(f"--profile {profiles!r}: empty name; e.g. --profile bindu,documented")
    return list(dict.fromkeys(names))


def _render(doc: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    prof, jitter = doc["profile"], doc["jitter"]
    env_note = doc["env_file"] if doc["env_file_found"] else "none found"
    console.print(
        f"[bold]Profile[/] {prof['value']} [dim]({prof['source']})[/]   "
        f"[bold]jitter[/] {jitter['value']}s [dim]({jitter['source']})[/]   "
        f"[bold].env[/] {markup(env_note)}"
    )
    console.print(f"[dim]wait before retry n = {prof['formula']}[/]")
    console.print(f"[dim]min_wait here: {prof['min_wait_means']}[/]")
    table = Table(title="Effective settings", title_justify="left")
    table.add_column("operation")
    # The per-operation settings, in the order the document lists them (the policy options').
    first = next(iter(doc["operations"].values()))
    knobs = [key for key, value in first.items() if isinstance(value, dict) and "variable" in value]
    for knob in knobs:
        table.add_column(knob, justify="right")
    table.add_column("worst-case total wait", justify="right")
    for op, spec in doc["operations"].items():
        cells = [_cell(spec[k]) for k in knobs]
        table.add_row(op, *cells, f"{spec['worst_case_total_wait']:.2f}s")
    console.print(table)
    sched = Table(title="Backoff schedule (wait before retry n: min .. max)", title_justify="left")
    sched.add_column("operation")
    longest = min(12, max(len(spec["schedule"]) for spec in doc["operations"].values()))
    for n in range(1, longest + 1):
        sched.add_column(f"retry {n}", justify="center")
    for op, spec in doc["operations"].items():
        cells = [
            f"{row['min_wait']:.2f} .. {row['max_wait']:.2f}" for row in spec["schedule"][:longest]
        ]
        sched.add_row(op, *cells, *([""] * (longest - len(cells))))
    console.print(sched)
    _render_per_error(console, doc)
    _render_mechanisms(console, doc)
    same = [
        op
        for op, s in doc["operations"].items()
        if s["schedule"] and s["schedule"][0]["min_wait"] == s["schedule"][0]["max_wait"]
    ]
    if same:
        console.print(
            f"[yellow]No spread on the first retry for {', '.join(same)}:[/] clients that fail "
            "together retry together."
        )


def _render_per_error(console: Any, doc: dict[str, Any]) -> None:
    """Each error family with a policy of its own, per operation: its attempts, whether it
    honours Retry-After and the waits before each retry of a call whose every error is of it
    (every family is in --json); one line when no family has one."""
    from rich.table import Table

    operations = doc["operations"]
    rows = [
        (op, family, spec)
        for op, per_op in operations.items()
        for family, spec in per_op.get("per_error", {}).items()
        if spec["own"]
    ]
    if not rows:
        names = list(next(iter(operations.values())).get("per_error", {}))
        if names:
            console.print(
                f"[bold]Per-error policies[/] {', '.join(names)}: none set; every error follows "
                "its operation's numbers [dim](set RETRY__<OPERATION>_RATE_LIMITED_MAX_ATTEMPTS"
                "=8, ...; --json lists each family)[/]"
            )
        return
    from retrysim.cli.tables import print_table

    table = Table(title="Per-error policies", title_justify="left")
    for name in ("operation", "errors", "attempts", "Retry-After"):
        table.add_column(name, justify="right" if name == "attempts" else "left")
    table.add_column("waits before retry 1, 2, ... (s)")
    table.add_column("worst-case total wait", justify="right")
    for op, family, spec in rows:
        in_effect = spec["in_effect"]
        waits = ", ".join(_span(row["min_wait"], row["max_wait"]) for row in spec["schedule"])
        table.add_row(
            op,
            family,
            _own_or_inherited(spec["max_attempts"], in_effect["max_attempts"]),
            _own_or_inherited(
                spec["respect_retry_after"], "yes" if in_effect["respect_retry_after"] else "no"
            ),
            (waits or "none") + (", ..." if spec["schedule_truncated"] else ""),
            f"{spec['worst_case_total_wait']:.2f}s",
        )
    print_table(console, table)
    console.print(
        "[dim]attempts count across a call's errors; the limit of its latest error's family "
        "applies. Other errors follow the operation's row above; a Retry-After hint can "
        "lengthen a wait where it is honoured.[/]"
    )
    listed = Table(title="Per-error knobs set in the environment or .env", title_justify="left")
    for name in ("variable", "value", "source"):
        listed.add_column(name, justify="right" if name == "value" else "left")
    for _, _, spec in rows:
        for knob in spec.values():
            if isinstance(knob, dict) and "variable" in knob and knob["source"] != "default":
                value = knob["value"]
                shown = str(value).lower() if isinstance(value, bool) else value
                listed.add_row(markup(knob["variable"]), markup(shown), knob["source"])
    console.print(listed)


def _span(low: float, high: float) -> str:
    """A wait range as the per-error table shows it: ``1-2``, or ``15`` when it is one value."""
    return f"{low:g}" if low == high else f"{low:g}-{high:g}"


def _own_or_inherited(field: dict[str, Any], in_effect: Any) -> str:
    """A family's knob: its own value and source, or the operation's value it inherits."""
    if field["value"] is None:
        return f"{markup(in_effect)} [dim](inherited)[/]"
    shown = "yes" if field["value"] is True else "no" if field["value"] is False else field["value"]
    return _cell({**field, "value": shown})


#: The switches of each mechanism, as the table names them (adaptive holds two).
_SWITCHES = {
    "breaker": (("on", "enabled"),),
    "budget": (("on", "enabled"),),
    "adaptive": (("backoff", "enabled"), ("limiter", "limiter")),
}
#: The knob that says which kind of a mechanism is on, shown beside its switch.
_KINDS = {"breaker": "mode", "budget": "kind"}


def _render_mechanisms(console: Any, doc: dict[str, Any]) -> None:
    """Which mechanisms are on per operation, then only the knobs not at their default source
    (every one is in --json): the resilience settings are many, and off unless set."""
    from rich.table import Table

    mechanisms = doc.get("mechanisms") or {}
    if not mechanisms:
        return
    from retrysim.retry.settings import MECHANISM_VARIABLES

    names = list(next(iter(mechanisms.values())))
    every = [k for per in mechanisms.values() for knobs in per.values() for k in knobs.values()]
    if all(k["source"] == "default" for k in every):
        example = f"RETRY__<OPERATION>_{names[0].upper()}_ENABLED"
        console.print(
            f"[bold]Resilience mechanisms[/] {', '.join(names)}: off for every operation "
            f"[dim](default; set {example}=true, ...; --json lists every knob)[/]"
        )
        return
    table = Table(title="Resilience mechanisms", title_justify="left")
    table.add_column("operation")
    for name in names:
        table.add_column(name)
    changed: list[dict[str, Any]] = []
    for op, per_mechanism in mechanisms.items():
        cells = []
        for name in names:
            knobs = per_mechanism[name]
            on = [
                f"{word} {_source_note(knobs[switch])}"
                for word, switch in _SWITCHES.get(name, (("on", "enabled"),))
                if knobs[switch]["value"]
            ]
            kind = knobs.get(_KINDS.get(name, ""))
            if on and kind is not None:
                on[-1] += f": {_KINDS[name]}={markup(kind['value'])}"
            cells.append(", ".join(on) if on else _off(knobs))
            changed += [k for k in knobs.values() if k["source"] != "default"]
        table.add_row(op, *cells)
    console.print(table)
    listed = Table(title="Resilience knobs set in the environment or .env", title_justify="left")
    listed.add_column("variable")
    listed.add_column("value", justify="right")
    listed.add_column("source")
    for knob in changed:
        value = knob["value"]
        shown = str(value).lower() if isinstance(value, bool) else value
        listed.add_row(markup(knob["variable"]), markup(shown), knob["source"])
    console.print(listed)
    console.print(
        "[dim]every other resilience knob is at its default (--json lists them all; "
        f"variables: {MECHANISM_VARIABLES})[/]"
    )


def _source_note(field: dict[str, Any]) -> str:
    source = field["source"]
    style = {"default": "dim", "env": "cyan", ".env": "green"}[source]
    return f"[{style}]({source})[/]"


def _off(knobs: dict[str, Any]) -> str:
    """ "off", with its source when the environment turned it off explicitly."""
    switch = knobs["enabled"]
    return "[dim]off[/]" if switch["source"] == "default" else f"off {_source_note(switch)}"


def _cell(field: dict[str, Any]) -> str:
    source = field["source"]
    style = {"default": "dim", "env": "cyan", ".env": "green"}[source]
    return f"{markup(field['value'])} [{style}]({source})[/]"
