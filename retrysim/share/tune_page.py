"""``retrysim tune --html FILE``: the recommendation as one page people can share.

The verdict is the recommendation (or, when nothing met the constraints, which constraint
binds hardest). The report's own parts follow, read from
:func:`retrysim.render.tune_report.render` (its tables through
:func:`~retrysim.share.tables.page_table`, its lines as paragraphs), so a table has one
definition; then the ``.env`` lines (:func:`~retrysim.render.tune_report.env_lines`, as the
document holds them) and the command that tries them on each scenario, the figures (the
Pareto front as ``retrysim plot --kind pareto`` draws a saved tuning, and per scenario the
recommendation against the obvious candidates: bars of success, p99 and load, and latency
CDFs), the settings before tuning with their sources, and the command that makes it again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from retrysim.results import metric_table
from retrysim.safe import visible
from retrysim.share.figures import svg_markup
from retrysim.share.page import Block, Code, Figure, Heading, Page, Paragraph, Section, Tone
from retrysim.share.reproduce import reproduce
from retrysim.share.tables import page_table
from retrysim.share.variants import KEY_METRICS, figures_text, run_words

if TYPE_CHECKING:
    from retrysim.model.scenario import Scenario
    from retrysim.retry.settings import RetrySettings
    from retrysim.runs.sweep import VariantResult
    from retrysim.runs.tune import TuneResult
    from retrysim.runs.tune_judge import Candidate, Group

#: Scenarios of one group drawn one by one; past them the page says how many it left out.
FIGURE_SCENARIOS = 4
_SHORT = {"success_rate": "success", "p99_latency": "p99", "amplification": "load"}


@dataclass(frozen=True)
class Tuned:
    """What a tune page is made of: the document ``--json`` prints, the result behind it (for
    the runs' documents), each scenario as the user named it (``sources``, by scenario name),
    the ``retrysim run`` options (``arguments``), the command's words and the settings."""

    doc: dict[str, Any]
    result: TuneResult
    scenarios: list[Scenario]
    sources: dict[str, str]
    words: list[str]
    arguments: list[str]
    settings: RetrySettings | None
    setting_sources: dict[str, str]
    saved: str | None = None


def tune_page(tuned: Tuned) -> Page:
    """The page of one ``retrysim tune``."""
    doc = tuned.doc
    names = [visible(s.name) for s in tuned.scenarios]
    goal, *report = report_blocks(doc, tuned.saved)
    sections = [
        Section("Recommendation", report),
        Section("Lines to set", env_blocks(tuned)),
        Section("Figures", figure_blocks(tuned)),
        Section("Settings before tuning", facts_blocks(tuned)),
    ]
    return Page(
        title=f"retrysim tune: {', '.join(names)}",
        subtitle=goal.text if isinstance(goal, Paragraph) else "",
        verdict=verdict(doc),
        sections=sections,
        reproduce=reproduce(tuned.words, _seeds(tuned.result)),
    )


def worst(candidate: Mapping[str, Any], name: str) -> float | None:
    """A candidate's figure for ``name`` in its worst scenario (as the tuner ranks)."""
    values = [f.get(name, {}).get("mean") for f in candidate["figures"].values()]
    known = [float(v) for v in values if v is not None]
    if not known or len(known) < len(values):
        return None
    better = metric_table.better(name)
    if better == "neither":
        return sum(known) / len(known)
    return min(known) if better == "higher" else max(known)


def worst_text(candidate: Mapping[str, Any]) -> str:
    """``success 99.10%, p99 2.733s, load 2.99x`` at the worst scenario."""
    return ", ".join(
        f"{_SHORT[name]} {metric_table.show(name, worst(candidate, name))}" for name in KEY_METRICS
    )


def recommended_text(group: Mapping[str, Any]) -> str:
    """Every searched setting's recommended value, a kept one marked as the current value."""
    from retrysim.share.settings_facts import value_text

    knobs = group.get("explanation") or []
    if not knobs:
        return str(group["best"]["label"]) or "the current settings"
    return ", ".join(
        f"{k['key'].removeprefix('policy.')}={value_text(k['recommended'])}"
        + ("" if k["changed"] else " (current)")
        for k in knobs
    )


def verdict(doc: Mapping[str, Any]) -> Paragraph:
    """The recommendation per operation group with its worst-scenario figures, or what kept
    every candidate from meeting the constraints."""
    parts = []
    met = True
    for group in doc["groups"]:
        operations = ", ".join(group["operations"])
        if group["best"] is None:
            met = False
            binding = f"; {group['binding']} binds hardest" if group["binding"] else ""
            parts.append(f"No candidate for {operations} met every constraint{binding}.")
        else:
            parts.append(
                f"Recommended for {operations}: {recommended_text(group)}; in the worst "
                f"scenario {worst_text(group['best'])}."
            )
    return Paragraph(visible(" ".join(parts)), "good" if met else "bad")


def report_blocks(doc: dict[str, Any], saved: str | None) -> list[Block]:
    """The terminal report's parts in order: each table as a page table, each line as a
    paragraph (the first, the goal, without its ``retrysim tune:``; the ``.env`` lines at its
    end have a section of their own)."""
    from rich.table import Table
    from rich.text import Text

    from retrysim.render.tune_report import render

    env = {f"{name}={value}" for name, value in doc["env"].items()}
    headers = tuple(f"{', '.join(g['operations'])} settings, tuned on" for g in doc["groups"])
    blocks: list[Block] = []
    for part, _ in render(doc, saved):
        if isinstance(part, Table):
            blocks.append(page_table(part))
            continue
        text = part.plain.strip() if isinstance(part, Text) else str(part).strip()
        if not text or text in env or text.startswith("Lines for .env"):
            continue
        if not blocks:  # the goal: what was optimised, under which constraints
            blocks.append(Paragraph(visible(text.removeprefix("retrysim tune:").strip())))
            continue
        if text.startswith(headers):  # a group's first line: its heading in the outline
            blocks.append(Heading(visible(text)))
            continue
        tone: Tone = "bad" if text.startswith("no candidate met") else "plain"
        blocks.append(Paragraph(visible(text), tone))
    return blocks


def env_blocks(tuned: Tuned) -> list[Block]:
    """The recommended ``RETRY__*`` lines, and per scenario the command that runs it."""
    doc = tuned.doc
    if not doc["env"]:
        return [Paragraph("Nothing to set: no candidate met every constraint.")]
    blocks: list[Block] = [
        Code(
            [visible(f"{name}={value}") for name, value in doc["env"].items()],
            "For .env (or the service's environment); tune --write-env FILE merges them:",
        )
    ]
    commands = []
    for group in doc["groups"]:
        best = group["best"]
        if best is None:
            continue
        sets = [f"{key}={_set_value(value)}" for key, value in best["settings"].items()]
        for name in group["scenarios"]:
            source = tuned.sources.get(name, name)
            commands.append(run_words(source, tuned.arguments, sets))
    if commands:
        blocks.append(Code(commands, "To run the recommendation on each scenario:"))
    return blocks


def _set_value(value: Any) -> str:
    from retrysim.share.variants import set_value

    return set_value(value)


def facts_blocks(tuned: Tuned) -> list[Block]:
    """Per scenario, its clients' policy before tuning, each value with its source."""
    from retrysim.share.settings_facts import settings_facts

    return [
        settings_facts(
            scenario,
            tuned.settings,
            tuned.setting_sources,
            f"{visible(scenario.name)}: the policy in effect before tuning, and where each "
            "value came from",
        )
        for scenario in tuned.scenarios
    ]


def _seeds(result: TuneResult) -> list[int]:
    """Every seed a kept candidate ran on (the same for every candidate)."""
    seeds: set[int] = set()
    for group in result.groups:
        for candidate in group.candidates:
            for runs in candidate.results.values():
                seeds.update(doc["seed"] for doc in runs.documents)
    return sorted(seeds)


# --- figures ---------------------------------------------------------------------------------


def figure_blocks(tuned: Tuned) -> list[Block]:
    """Per group: its front, then per scenario the recommendation against the baselines."""
    blocks: list[Block] = []
    for n, (group, data) in enumerate(zip(tuned.result.groups, tuned.doc["groups"], strict=True)):
        blocks.append(pareto_figure(data, tuned.doc, f"g{n}"))
        shown = group.names[:FIGURE_SCENARIOS]
        for k, name in enumerate(shown):
            results = contenders(group, name)
            if results:
                blocks += scenario_figures(results, name, f"g{n}s{k}")
        if len(group.names) > len(shown):
            left = len(group.names) - len(shown)
            blocks.append(Paragraph(f"{left} more scenario(s) left out of the figures."))
    return blocks


def front_rows(group: Mapping[str, Any]) -> tuple[list[dict[str, Any]], int | None]:
    """The front (with the recommendation or the closest candidate when off it) as rows of
    worst-scenario figures for :func:`retrysim.plots.pareto_plot`, and the recommended row."""
    candidates = list(group.get("pareto") or [])
    labels = {c["label"] for c in candidates}
    for extra in (group.get("best"), group.get("closest")):
        if extra is not None and extra["label"] not in labels:
            candidates.append(extra)
    rows = []
    recommended = None
    best = group.get("best")
    for i, candidate in enumerate(candidates):
        row: dict[str, Any] = {"label": candidate["label"] or "the current settings"}
        for name in KEY_METRICS:
            row[name] = worst(candidate, name)
        rows.append(row)
        if best is not None and candidate["label"] == best["label"]:
            recommended = i
    return rows, recommended


def pareto_figure(group: Mapping[str, Any], doc: Mapping[str, Any], key: str) -> Block:
    """The group's best trade-offs, load as colour, the recommendation starred."""
    from retrysim.plots import pareto_plot

    rows, recommended = front_rows(group)
    operations = ", ".join(group["operations"])
    scenarios = ", ".join(group["scenarios"])
    try:
        figure = pareto_plot(
            rows,
            "p99_latency",
            "success_rate",
            colour="amplification",
            recommended=recommended,
            title=f"{operations} on {scenarios}: worst scenario",
        )
    except ValueError as error:  # no candidate has the figures to place it
        return Paragraph(visible(f"No Pareto plot for {operations}: {error}."), "warn")
    best = group.get("best")
    said = (
        f"recommended {recommended_text(group)}: {worst_text(best)}"
        if best is not None
        else "no candidate met every constraint"
    )
    alt = visible(
        f"Success rate against p99 latency of {len(rows)} candidates for {operations} at their "
        f"worst scenario, load as colour; the front is what no other candidate beats on all "
        f"three. The {said}."
    )
    return Figure(
        svg=svg_markup(figure, f"pareto-{key}", alt),
        alt=alt,
        caption=visible(f"Pareto front for {operations} ({doc['seeds']} seed(s) each)"),
    )


def contenders(group: Group, scenario: str) -> list[VariantResult]:
    """The recommendation and the obvious candidates (current settings, defaults, each
    diagnosis's prescription) in ``scenario``, each once, labelled by what it is."""
    from retrysim.runs.sweep import Variant, VariantResult

    roles: dict[str, list[str]] = {}
    held: dict[str, Candidate] = {}
    if group.best is not None:
        roles[group.best.label] = ["recommended"]
        held[group.best.label] = group.best
    for baseline in group.baselines:
        roles.setdefault(baseline.candidate.label, []).append(baseline.role)
        held.setdefault(baseline.candidate.label, baseline.candidate)
    out = []
    for label, candidate in held.items():
        runs = candidate.results.get(scenario)
        if runs is None or not runs.documents:
            continue
        name = f"{'; '.join(roles[label])}: {label or 'the current settings'}"
        out.append(VariantResult(Variant(visible(name), dict(candidate.sets)), runs.documents))
    return out


def scenario_figures(results: Sequence[VariantResult], scenario: str, key: str) -> list[Block]:
    """Bars of success, p99 and load, and the latency CDFs, of ``results`` in ``scenario``."""
    from retrysim.plots import compare_metrics, latency_cdf

    listed = "; ".join(f"{r.variant.label}: {figures_text(r)}" for r in results)
    where = visible(scenario)
    bars_alt = visible(f"Success, p99 latency and load in {scenario}, one bar each. {listed}.")
    medians = "; ".join(
        f"{r.variant.label}: median {metric_table.show('p50_latency', r.mean('p50_latency'))}, "
        f"p99 {metric_table.show('p99_latency', r.mean('p99_latency'))}"
        for r in results
    )
    cdf_alt = visible(f"Share of calls in {scenario} finished within each latency. {medians}.")
    return [
        Figure(
            svg=svg_markup(compare_metrics(results, KEY_METRICS), f"bars-{key}", bars_alt),
            alt=bars_alt,
            caption=f"{where}: the recommendation against the obvious candidates",
        ),
        Figure(
            svg=svg_markup(latency_cdf(list(results)), f"cdf-{key}", cdf_alt),
            alt=cdf_alt,
            caption=f"{where}: per-call latency CDF",
        ),
    ]
