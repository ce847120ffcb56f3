"""A real run's ``real against simulated`` table (``retrysim chaos --vs-sim``), defined once.

The terminal report prints it and the shared page reads it back
(:func:`retrysim.share.tables.page_table`). It lives here, not in the CLI, because the page
builder sits below the CLI; and not in :mod:`retrysim.chaos`, which imports no UI library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import rich.table

    from retrysim.results.sections import Versus


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
