"""A run's shared report: ``retrysim run --html`` and ``retrysim chaos --html``.

Built from the result document alone (as the terminal report is), so a saved ``result.json``
gives the same page. Each table is the terminal report's own Rich table read back
(:func:`~retrysim.share.tables.page_table`), each figure one of :mod:`retrysim.plots`, and the
diagnoses come from their data (each suggested setting's ``RETRY__*`` line and ``--set``
command, the same :func:`~retrysim.render.rerun.run_command` the terminal prints), never from
Rich text. Nothing on the page depends on the wall clock: the same run gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from retrysim.render.report import (
    connections_table,
    latency_table,
    load_table,
    outcome_table,
)
from retrysim.render.rerun import run_command
from retrysim.render.resilience import resilience_table
from retrysim.render.tier_report import replicas_table, tiers_table
from retrysim.render.verdict import diagnoses_of, verdict
from retrysim.safe import visible
from retrysim.share import run_alt
from retrysim.share.page import (
    Block,
    Code,
    Facts,
    Figure,
    Heading,
    Page,
    Paragraph,
    Reproduce,
    Section,
    Table,
    Tone,
)
from retrysim.share.reproduce import reproduce
from retrysim.share.settings_facts import value_text
from retrysim.share.tables import page_table

if TYPE_CHECKING:
    from matplotlib.figure import Figure as PlotFigure

    from retrysim.results.document import ResultDocument
    from retrysim.results.sections import Diagnosis


def run_page(
    doc: ResultDocument,
    command: Sequence[str] | None = None,
    defaults: Sequence[str] = (),
) -> Page:
    """The page of one run. ``command`` is the words that make it again (default: ``retrysim
    run`` on the document's ``source`` and ``arguments``); ``defaults`` the scenario's defaults
    in effect that add time or capacity, as the terminal header lists them."""
    real = doc.get("mode") == "real"
    words = list(command) if command is not None else _run_words(doc)
    sections = [
        Section("The run", _run_facts(doc, defaults)),
        Section("Diagnoses", diagnosis_blocks(doc)),
        Section("Figures", _figures(doc)),
        Section("Tables", _tables(doc)),
        Section("Settings in effect", _settings(doc)),
    ]
    scenario = visible(str(doc["scenario"]))
    return Page(
        title=f"retrysim {'chaos' if real else 'run'}: {scenario}",
        subtitle=visible(str(doc.get("description") or "").strip()),
        verdict=Paragraph(verdict(doc), _verdict_tone(doc)),
        sections=sections,
        reproduce=_reproduce(words, doc),
        notes=_notes(doc),
    )


def _run_words(doc: ResultDocument) -> list[str]:
    """``retrysim run SOURCE ARGUMENTS...``: the command as the report's suggestions spell it."""
    return ["retrysim", "run", str(doc["source"]), *doc.get("arguments", [])]


def _reproduce(words: Sequence[str], doc: ResultDocument) -> Reproduce:
    made = reproduce(words, [doc["seed"]])
    if doc.get("mode") != "real":
        return made
    note = (
        "A real run's timing differs from run to run: the same command repeats the "
        "experiment, not its exact figures."
    )
    return replace(made, note=note)


def _verdict_tone(doc: ResultDocument) -> Tone:
    """Bad with a high-severity diagnosis, a warning with any other or a stopped run."""
    found = diagnoses_of(doc)
    if any(item["severity"] == "high" for item in found):
        return "bad"
    if found or doc.get("stopped"):
        return "warn"
    return "good"


def _run_facts(doc: ResultDocument, defaults: Sequence[str]) -> list[Block]:
    """Scenario, profile, seed, duration and clients: what a reader checks first."""
    clients: Mapping[str, Any] = doc.get("clients") or {}
    real = doc.get("mode") == "real"
    rows = [
        ["scenario", visible(str(doc["scenario"]))],
        ["source", visible(str(doc.get("source", doc["scenario"])))],
        ["profile", visible(str(doc["profile"]))],
        ["operation", visible(str(doc["settings"].get("operation", "")))],
        ["seed", str(doc["seed"])],
        ["duration", f"{doc['virtual_time']:,.1f} s of {'real' if real else 'virtual'} time"],
        ["clients", _clients_text(clients)],
        ["calls", f"{doc['calls']['total']:,}"],
    ]
    if defaults:
        rows.append(["defaults in effect", visible("; ".join(defaults))])
    blocks: list[Block] = [Table("", [], rows)]  # the section's heading names it
    if doc.get("stopped"):
        blocks.append(Paragraph(f"The run stopped early: {visible(str(doc['stopped']))}", "warn"))
    return blocks


def _clients_text(clients: Mapping[str, Any]) -> str:
    count = clients.get("count")
    if count is None:
        return "–"
    each = clients.get("calls_per_client") or 1
    calls = f", {each} calls each" if each > 1 else ""
    arrival = clients.get("arrival")
    return f"{count:,}{calls}" + (f", {visible(str(arrival))} arrival" if arrival else "")


def diagnosis_blocks(doc: ResultDocument) -> list[Block]:
    """Each diagnosis: its title (a heading), evidence, the change to try, and that change as
    lines to copy: the ``RETRY__*`` lines for production and the commands that try it here."""
    found = diagnoses_of(doc)
    if not found:
        return [Paragraph("None: nothing in this run matches a known retry problem.", "good")]
    blocks: list[Block] = []
    for item in found:
        blocks.append(Heading(f"{item['title']} ({item['severity']} severity)"))
        blocks.append(Paragraph(item["evidence"]))
        blocks.append(Paragraph(f"Try: {item['suggestion']}"))
        blocks.append(Paragraph(f"Troubleshooting guide: {item['section']}."))
        blocks.extend(_changes(doc, item))
    return blocks


def _changes(doc: ResultDocument, item: Diagnosis) -> list[Block]:
    """A diagnosis's suggested settings as Code blocks: ``RETRY__*`` lines and commands."""
    custom = doc["settings"].get("custom")
    if custom:  # the user's own tenacity policy: the change is theirs to make in its code
        lines = [
            f"{setting['option']} = {setting['set'].partition('=')[2]}"
            for setting in item["settings"]
        ]
        label = f"In your policy {visible(custom['name'])}"
        return [Code(lines, label)] if lines else []
    blocks: list[Block] = []
    env = [setting["env"] for setting in item["settings"] if setting["env"] is not None]
    if env:
        label = "In production (.env or the environment)"
        if any(setting["pinned"] for setting in item["settings"]):
            label += "; this scenario sets the option itself, so only --set changes it here"
        blocks.append(Code(env, label))
    commands = [run_command(doc, *changes) for changes in _command_changes(item)]
    if commands:
        blocks.append(Code(commands, "Try it here"))
    return blocks


def _command_changes(item: Diagnosis) -> Iterator[list[str]]:
    """The ``--set`` changes of each command: one per setting, except that settings the
    diagnosis groups as one change (its ``together`` figure) share one command, where the
    group's first setting stands (as the terminal's diagnoses print them)."""
    group_of: dict[str, list[str]] = {}
    groups = item["figures"].get("together")
    if isinstance(groups, list):
        for group in groups:
            if isinstance(group, list) and len(group) > 1:
                sets = [str(change) for change in group]
                group_of.update(dict.fromkeys(sets, sets))
    for setting in item["settings"]:
        members = group_of.get(setting["set"])
        if members is None:
            yield [setting["set"]]
        elif members[0] == setting["set"]:
            yield members


def _figures(doc: ResultDocument) -> list[Block]:
    """The timeline, the jitter spread and the latency CDF; a call graph's tiers and a
    replicated service's replicas when the run has them."""
    from retrysim.plots.cdf import latency_cdf
    from retrysim.plots.replicas import replica_timeline
    from retrysim.plots.spread import jitter_spread
    from retrysim.plots.tiers import tier_amplification, tier_timeline
    from retrysim.plots.timeline import herd_timeline

    blocks: list[Block] = [
        _figure(herd_timeline(doc), "timeline", run_alt.timeline(doc), "Attempts over time"),
        _figure(
            jitter_spread(doc),
            "spread",
            run_alt.spread(doc),
            "Jitter spread: when retries start",
        ),
        _figure(latency_cdf(doc), "cdf", run_alt.cdf(doc), "Per-call latency CDF"),
    ]
    if doc.get("tiers"):
        blocks.append(
            _figure(tier_timeline(doc), "tiers", run_alt.tiers(doc), "Requests per tier over time")
        )
        blocks.append(
            _figure(
                tier_amplification(doc),
                "amplification",
                run_alt.amplification(doc),
                "Amplification down the call graph",
            )
        )
    rows = doc.get("replicas") or []
    if rows and all("attempts_per_s" in row for row in rows):
        blocks.append(
            _figure(replica_timeline(doc), "replicas", run_alt.replicas(doc), "Requests by replica")
        )
    return blocks


def _figure(figure: PlotFigure, key: str, alt: str, caption: str) -> Figure:
    from retrysim.share.figures import svg_markup

    return Figure(svg=svg_markup(figure, key, alt), alt=alt, caption=caption)


def _tables(doc: ResultDocument) -> list[Block]:
    """Every table the terminal report prints, in its order (the ones a run has)."""
    tables = [
        outcome_table(doc),
        load_table(doc),
        latency_table(doc),
        tiers_table(doc),
        replicas_table(doc),
        connections_table(doc),
        resilience_table(doc),
    ]
    versus = doc.get("versus")
    if versus is not None:
        from retrysim.share.versus import versus_table

        tables.append(versus_table(versus))
    calibration = doc.get("calibration")
    if calibration is not None:
        from retrysim.share.versus import calibration_table

        tables.append(calibration_table(calibration))
    return [page_table(table) for table in tables if table is not None]


def _settings(doc: ResultDocument) -> list[Block]:
    """The policy in effect, each value with its source (the document's ``sources``: the
    precedence rule of :mod:`retrysim.retry.effective`). A mechanism's knobs are listed when it
    is on or one was set; an error family's when it has a value of its own."""
    settings: Mapping[str, Any] = doc["settings"]
    sources: Mapping[str, str] = doc.get("sources") or {}
    custom = settings.get("custom")
    if custom:
        items = [
            (f"{name}", visible(str(text)), "your policy")
            for name, text in custom["strategies"].items()
        ]
        return [Facts(f"Your policy {visible(custom['name'])}", items)]
    items = []
    for key, value in settings.items():
        if key in ("operation", "overrides", "custom"):
            continue
        if isinstance(value, Mapping):
            items.extend(_table_items(key, value, sources))
        else:
            items.append((key, visible(value_text(value)), sources.get(key, "–")))
    operation = visible(str(settings.get("operation", "")))
    return [Facts(f"The policy of the {operation} operation", items)]


def _table_items(
    table: str, knobs: Mapping[str, Any], sources: Mapping[str, str]
) -> list[tuple[str, str, str]]:
    rows = [
        (f"{table}.{knob}", visible(value_text(value)), sources.get(f"{table}.{knob}", "–"))
        for knob, value in knobs.items()
    ]
    if "enabled" in knobs:
        set_here = any(source != "default" for _, _, source in rows)
        return rows if knobs["enabled"] or set_here else rows[:1]
    return [row for row, value in zip(rows, knobs.values(), strict=True) if value is not None]


def _notes(doc: ResultDocument) -> list[str]:
    """The footer: which decision path ran and how many events (never the wall time, which
    would make two identical runs differ)."""
    engine = doc.get("engine", "reference")
    note = doc.get("engine_note")
    said = f"engine: {engine}" + (f" ({visible(str(note))})" if note else "")
    return [f"{doc['events']:,} events; {said}"]
