"""The report's Rich tables as page tables: one definition of every table, two ways to draw it.

The terminal report (:mod:`retrysim.render`) builds ``rich.table.Table`` objects; a shared
page shows the same rows by reading them back as text, so a column added to a report appears
in the HTML without a second definition. Rich markup in a cell becomes its plain text.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from retrysim.share.page import Table

if TYPE_CHECKING:
    import rich.table


def page_table(table: rich.table.Table, caption: str = "") -> Table:
    """``table``'s header and cells as text; numeric columns are those Rich aligns right."""
    columns = table.columns
    headers = [_plain(column.header) for column in columns]
    cells = [list(column.cells) for column in columns]
    rows = [[_plain(cells[c][r]) for c in range(len(columns))] for r in range(table.row_count)]
    title = caption or _plain(table.title)
    numeric = [column.justify == "right" for column in columns]
    return Table(caption=title, headers=headers, rows=rows, numeric=numeric)


def _plain(cell: Any) -> str:
    """A cell's text: a string's Rich markup removed, a Text's plain text, anything else
    rendered on a wide console (a nested renderable keeps its words)."""
    from rich.console import Console
    from rich.text import Text

    if cell is None:
        return ""
    if isinstance(cell, str):
        return Text.from_markup(cell).plain
    if isinstance(cell, Text):
        return cell.plain
    console = Console(width=200, record=True, file=io.StringIO(), color_system=None)
    console.print(cell)
    return console.export_text().strip()
