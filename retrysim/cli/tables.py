"""Print compare and sweep tables without ever cutting a label.

Rich shrinks a table that is too wide by cutting cells to ``max_attempts…``. Here a table is
first tried as built; if even its narrowest layout (every cell wrapped at its spaces) is wider
than the terminal, a compare table is turned so variants become rows, and the columns are then
split over as many tables as needed, each repeating the label column. Cells wrap at spaces
and, as a last resort for a single word wider than the terminal, fold: characters move to the
next line, none is dropped.

When output is not a terminal (piped, redirected) and ``COLUMNS`` is not set, there is no
width to respect: the console is widened to the table's natural width, so a file or a pipe
gets each row on one line.
"""

from __future__ import annotations

import os
from typing import Any

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

UNBOUNDED = 100_000  # a width no table reaches


def print_table(console: Console, table: Table, *, rows_label: str | None = None) -> None:
    """Print ``table`` whole. ``rows_label`` (e.g. "variant") lets a table whose columns are
    variants be turned so they become rows, when that is what fits."""
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = max(console.width, _measure(console, table).maximum)
    for part in fit(console, table, rows_label=rows_label):
        console.print(part)


def fit(console: Console, table: Table, *, rows_label: str | None = None) -> list[Table]:
    """``table``, or tables holding all of it, each no wider than ``console.width``."""
    for column in table.columns:
        column.overflow = "fold"
    if not _fits(console, table) and rows_label is not None:
        table = transpose(table, rows_label)
    parts = [table] if _fits(console, table) else split_columns(console, table)
    for part in parts:
        _set_widths(console, part)
    return parts


def _fits(console: Console, table: Table) -> bool:
    """Whether every cell of ``table`` can be shown with words whole within the width.

    Measured against an unbounded width: Rich clamps a table's measurement to the width it is
    given, which would make any table seem to fit.
    """
    return _measure(console, table).minimum <= console.width


def _measure(console: Console, table: Table) -> Measurement:
    return Measurement.get(console, console.options.update_width(UNBOUNDED), table)


def _set_widths(console: Console, table: Table) -> None:
    """Give each column at least its longest word, and share what is left of the width.

    Rich, left to itself, narrows the widest columns first and breaks words to fit, even
    when every word would fit; fixed widths stop that. Columns that need least to fit on one
    line get it first, so as few cells as possible wrap.
    """
    if not _fits(console, table):
        return  # one word wider than the terminal: Rich folds it, losing nothing
    wide = console.options.update_width(UNBOUNDED)
    ranges = []
    for column in table.columns:
        cells = [column.header, *column.cells]
        measured = [Measurement.get(console, wide, cell) for cell in cells]
        ranges.append((max(m.minimum for m in measured), max(m.maximum for m in measured)))
    overhead = _measure(console, table).minimum - sum(low for low, _ in ranges)
    spare = console.width - overhead - sum(low for low, _ in ranges)
    widths = [low for low, _ in ranges]
    for k in sorted(range(len(ranges)), key=lambda k: ranges[k][1] - ranges[k][0]):
        extra = min(spare, ranges[k][1] - ranges[k][0])
        widths[k] += extra
        spare -= extra
    for column, width in zip(table.columns, widths, strict=True):
        column.width = width


def _header(column: Any) -> str:
    return str(column.header)


def transpose(table: Table, rows_label: str) -> Table:
    """Columns become rows: the first column's cells become the headers, and each other
    column becomes a row labelled with its header."""
    label, *data = table.columns
    turned = _like(table, title=table.title)
    turned.add_column(rows_label, style="bold", overflow="fold")
    for name in label.cells:
        turned.add_column(str(name), justify="right", overflow="fold")
    for column in data:
        turned.add_row(_header(column), *column.cells)
    return turned


def split_columns(console: Console, table: Table) -> list[Table]:
    """The first (label) column plus as many of the others as fit, per table."""
    label, *data = table.columns
    groups: list[list[Any]] = []
    for column in data:
        if groups and _fits(console, _with(table, label, [*groups[-1], column], first=False)):
            groups[-1].append(column)
        else:
            groups.append([column])
    return [_with(table, label, group, first=(k == 0)) for k, group in enumerate(groups)]


def _with(table: Table, label: Any, columns: list[Any], *, first: bool) -> Table:
    part = _like(table, title=table.title if first else None)
    for column in [label, *columns]:
        part.add_column(
            _header(column), justify=column.justify, style=column.style, overflow="fold"
        )
    for row in zip(label.cells, *(c.cells for c in columns), strict=True):
        part.add_row(*row)
    return part


def _like(table: Table, title: Any) -> Table:
    return Table(title=title, title_justify=table.title_justify, box=table.box)
