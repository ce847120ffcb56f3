"""``retrysim check``'s report: the sides, one table per scenario, the one-line verdict.

Each table has a row per metric: before, after, the change (mean paired difference), its 95%
interval over the seeds, and the gates on it with their outcome. Whether a metric is worse
beyond its interval, or a gate broke, is said in words (``worse``, ``broken``) as well as in
colour, so a log read without colour says the same.
"""

from __future__ import annotations

from rich.table import Table

from retrysim.runs import check_metrics
from retrysim.runs.check import CheckResult, GateVerdict, MetricVerdict, ScenarioVerdict
from retrysim.safe import markup


def header_lines(result: CheckResult) -> list[str]:
    """Rich-markup lines above the tables: where each side came from, and what differs."""
    lines = []
    for side in (result.before, result.after):
        lines.append(f"[bold]{side.label}[/]: {markup(side.origin)}")
        if side.note:
            lines.append(f"  [yellow]{markup(side.note)}[/]")
    diff = result.diff
    if not diff:
        lines.append("[yellow]no RETRY__* line differs between before and after[/]")
    for name, old, new in diff:
        was = "(not set)" if old is None else old
        now = "(not set)" if new is None else new
        lines.append(f"  {markup(name)}: {markup(was)} -> {markup(now)}")
    return lines


def scenario_table(verdict: ScenarioVerdict) -> Table:
    """Metrics down; before, after, change, interval and gates across."""
    seeds = verdict.planned.seeds
    shown = f"seed {seeds[0]}" if len(seeds) == 1 else f"{len(seeds)} seeds ({seeds[0]}..)"
    state = "[green]passed[/]" if verdict.passed else "[bold red]failed[/]"
    table = Table(
        title=f"{markup(verdict.name)}: {shown}, same seeds both sides: {state}",
        title_justify="left",
    )
    table.add_column("metric", style="bold")
    for column in ("before", "after", "change", "95% interval"):
        table.add_column(column, justify="right")
    table.add_column("gates")
    gates: dict[str, list[GateVerdict]] = {}
    for gate in verdict.gates:
        gates.setdefault(gate.gate.metric, []).append(gate)
    for row in verdict.metrics:
        table.add_row(
            check_metrics.label(row.name),
            check_metrics.show(row.name, row.before),
            check_metrics.show(row.name, row.after),
            _change(row),
            _interval(row),
            "\n".join(_gate_cell(g) for g in gates.get(row.name, [])),
        )
    return table


def _change(row: MetricVerdict) -> str:
    if row.change is None:
        return "–"
    text = check_metrics.show_change(row.name, row.change)
    if row.worse:
        style = "bold red" if row.watched else "yellow"
        return f"[{style}]{text} worse[/]"
    return text


def _interval(row: MetricVerdict) -> str:
    if row.interval is None:
        return "–"
    low, high = row.interval
    return (
        f"{check_metrics.show_change(row.name, low)} .. {check_metrics.show_change(row.name, high)}"
    )


def _gate_cell(gate: GateVerdict) -> str:
    text = markup(gate.gate.text)
    if gate.holds is None:
        return f"{text}: [dim]no value[/]"
    limit = check_metrics.show(gate.gate.metric, gate.limit)
    return f"{text} ({limit}): " + ("[green]holds[/]" if gate.holds else "[bold red]broken[/]")


def verdict_line(result: CheckResult) -> str:
    """The last line, in Rich markup."""
    style = "bold green" if result.passed else "bold red"
    return f"[{style}]{markup(result.verdict())}[/]"
