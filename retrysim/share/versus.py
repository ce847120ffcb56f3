"""A real run's ``real against simulated`` and ``calibration`` tables (``retrysim chaos
--vs-sim``, ``--calibrate``), defined once.

The terminal report prints it and the shared page reads it back
(:func:`retrysim.share.tables.page_table`). It lives here, not in the CLI, because the page
builder sits below the CLI; and not in :mod:`retrysim.chaos`, which imports no UI library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import rich.table

    from retrysim.results.sections import CalibrationSection, Versus


def versus_table(versus: Versus) -> rich.table.Table:
    """Each metric: the real value, the simulated mean and its 95% prediction interval, and
    ``outside`` where the real value falls out of it."""
    from rich.table import Table

    from retrysim.chaos.versus import show

    table = Table(
        title=f"real against simulated ({len(versus['seeds'])} seeds, 95% prediction interval)",
        title_justify="left",
    )
    for column in ("metric", "real", "simulated mean", "95% interval", ""):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for row in versus["rows"]:
        name = row["metric"]
        low, high = show(name, row["low"]), show(name, row["high"])
        span = "–" if row["low"] is None else f"{low} .. {high}"
        flag = "[bold red]outside[/]" if row["outside"] else ""
        table.add_row(row["label"], show(name, row["real"]), show(name, row["mean"]), span, flag)
    return table


def _figure(value: object) -> str:
    """A calibration figure as the table shows it: seconds in ms, a count as itself, a
    distribution as its table's values, unset as a dash."""
    if value is None:
        return "–"
    if isinstance(value, bool | int):
        return str(value)
    if isinstance(value, float):
        return f"{value * 1000:.3f} ms"
    if isinstance(value, dict):
        return " ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def calibration_title(calibration: CalibrationSection) -> str:
    """When the calibration ran, how long it took, what it measured and whether the simulation
    used it, in a line (then one line per figure kept, and why)."""
    slowdown = calibration["slowdown"]
    slow = "slowdown not measured" if slowdown is None else f"slowdown {slowdown:.2f}"
    used = (
        "the simulation ran with the calibrated figures (--no-calibrate: the scenario's)"
        if calibration["used"]
        else "not used: no --vs-sim"
    )
    lines = [
        f"calibration at {calibration['at']}, {calibration['seconds']:.1f} s "
        f"({calibration['attempts']:,} attempts, {calibration['connects']:,} connects, "
        f"one attempt a call, no faults; {slow}): {used}",
        *calibration["notes"],
    ]
    return "\n".join(lines)


def calibration_table(calibration: CalibrationSection) -> rich.table.Table:
    """Each figure a calibration sets: the scenario's value, the calibrated one and where it
    came from; the title says when it ran and whether the simulation used it."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(calibration_title(calibration)), title_justify="left")
    for column in ("figure", "shipped", "calibrated", "from"):
        table.add_column(column, justify="right" if column in ("shipped", "calibrated") else "left")
    for figure in calibration["figures"]:
        shipped, calibrated = _figure(figure["shipped"]), _figure(figure["calibrated"])
        table.add_row(
            *(escape(cell) for cell in (figure["key"], shipped, calibrated, figure["source"]))
        )
    return table
