"""``retrysim check --html``: the check as a page to attach to a pull request.

The verdict line first, then the settings that differ (the ``RETRY__*`` lines of each side),
one section per scenario (the terminal report's table, read back by
:func:`retrysim.share.tables.page_table`, so both show the same rows; then each gate's outcome
with its figures, each metric worse beyond its interval, and before against after drawn as
``compare`` draws two variants), and how to run the same check again.
"""

from __future__ import annotations

from collections.abc import Sequence

from retrysim.render.check_report import scenario_table
from retrysim.results import metric_table
from retrysim.runs import check_metrics
from retrysim.runs.check import CheckResult, ScenarioVerdict
from retrysim.runs.check_env import Side
from retrysim.share.page import Block, Code, Page, Paragraph, Section, Table, Tone
from retrysim.share.reproduce import reproduce
from retrysim.share.tables import page_table


def check_page(result: CheckResult, words: Sequence[str], where: str) -> Page:
    """The page of ``result``; ``words`` the command that ran it (``retrysim check ...``),
    ``where`` the configuration it read."""
    seeds = sorted({seed for s in result.scenarios for seed in s.planned.seeds})
    notes = [side.note for side in (result.before, result.after) if side.note]
    if result.ignored_environment:
        notes.append(
            f"{', '.join(result.ignored_environment)} set in the environment: ignored, before "
            "and after are read from their files alone"
        )
    return Page(
        title="retrysim check",
        subtitle=f"{result.before.origin} → {result.after.origin}, scenarios from {where}",
        # the tone word says pass or fail, so the line's own "check passed: " is not repeated
        verdict=Paragraph(
            result.verdict().removeprefix("check passed: ").removeprefix("check failed: "),
            "good" if result.passed else "bad",
        ),
        sections=[
            _settings(result),
            *(_scenario(s, i) for i, s in enumerate(result.scenarios, 1)),
        ],
        reproduce=reproduce(words, seeds),
        notes=notes,
    )


def _settings(result: CheckResult) -> Section:
    diff = result.diff
    blocks: list[Block] = []
    if diff:
        blocks.append(
            Table(
                caption="RETRY__* lines that differ",
                headers=["variable", "before", "after"],
                rows=[
                    [name, "(not set)" if old is None else old, "(not set)" if new is None else new]
                    for name, old, new in diff
                ],
            )
        )
    else:
        blocks.append(Paragraph("No RETRY__* line differs between before and after.", "warn"))
    blocks.extend(_lines(side) for side in (result.before, result.after))
    return Section("Settings before and after", blocks)


def _lines(side: Side) -> Code:
    lines = [f"{name}={value}" for name, value in sorted(side.lines.items())]
    return Code(
        lines or ["# no RETRY__* line: the documented defaults"], f"{side.label}: {side.origin}"
    )


def _scenario(verdict: ScenarioVerdict, index: int) -> Section:
    state = "passed" if verdict.passed else "failed"
    blocks: list[Block] = [page_table(scenario_table(verdict), f"{verdict.name}: {state}")]
    for gate in verdict.gates:
        tone: Tone = "good" if gate.holds else "plain" if gate.holds is None else "bad"
        blocks.append(
            Paragraph(f"Gate {gate.gate.metric} {gate.gate.text}: {gate.message()}", tone)
        )
    for row in verdict.metrics:
        if row.worse and row.interval is not None and row.change is not None:
            low, high = (check_metrics.show_change(row.name, v) for v in row.interval)
            watched = "fails the check" if row.watched else "not watched, so it fails nothing"
            blocks.append(
                Paragraph(
                    f"{check_metrics.label(row.name)} is worse beyond its interval: "
                    f"{check_metrics.show_change(row.name, row.change)} (95% interval {low} .. "
                    f"{high}); {watched}.",
                    "bad" if row.watched else "warn",
                )
            )
    blocks.extend(_figures(verdict, index))
    sets = [f"{key} = {value!r}" for key, value in verdict.planned.check.sets.items()]
    if sets:
        blocks.append(Code(sets, "set in the configuration"))
    return Section(f"Scenario {verdict.name}: {state}", blocks)


def _figures(verdict: ScenarioVerdict, index: int) -> list[Block]:
    """Before against after as ``compare`` draws two variants: the gated and watched metrics'
    bars (95% intervals over the same seeds) and the latency CDFs."""
    if not verdict.runs:
        return []
    from retrysim.runs.sweep import Variant, VariantResult
    from retrysim.share.compare_page import bars_figure, cdf_figure

    sides = [
        VariantResult(Variant(label, {}), [pair[side] for pair in verdict.runs])
        for side, label in ((0, "before"), (1, "after"))
    ]
    shown = [row.name for row in verdict.metrics if row.watched or _gated(verdict, row.name)]
    names = [name for name in dict.fromkeys(shown) if name in metric_table.METRIC_NAMES]
    found: list[Block] = []
    if names:
        found.append(bars_figure(sides, names, f"bars{index}"))
    found.append(cdf_figure(sides, f"cdf{index}"))
    return found


def _gated(verdict: ScenarioVerdict, name: str) -> bool:
    return any(gate.gate.metric == name for gate in verdict.gates)
