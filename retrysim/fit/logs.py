"""Request logs, CSV or JSON lines, into the observation table: one row (line) a request.

Columns are found by :mod:`retrysim.fit.columns`; each cell is read by
:mod:`retrysim.fit.values`. The first unreadable cell stops the read with one line naming the
file, the row (the line number an editor shows) and the column: a fit on silently skipped rows
would describe other data than the user's.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from retrysim.fit import values
from retrysim.fit.columns import ZERO_BASED, ColumnMap, resolve
from retrysim.fit.observations import FitInputError, Observations, Source, json_lines, table
from retrysim.fit.options import ReadOptions

#: JSON lines looked at to find the columns (keys appearing later are still read).
HEADER_LINES = 1000

Row = Mapping[str, Any]


def read_csv(path: Path, text: str, options: ReadOptions) -> tuple[Observations, Source]:
    """A CSV (or TSV) log with a header row; the delimiter is sniffed among ``,;\\t|``."""
    sample = text[:8192]
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    if path.suffix.lower() != ".tsv":
        try:
            delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise FitInputError(f"{path}: empty file; a log needs a header row and rows") from None
    header = [name.strip() for name in header]

    def rows() -> Iterator[tuple[int, Row]]:
        for cells in reader:
            if not cells or all(not c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                raise FitInputError(
                    f"{path}: row {reader.line_num}: {len(cells)} cells, the header has "
                    f"{len(header)}"
                )
            yield reader.line_num, dict(zip(header, cells, strict=True))

    return _read_rows(path, header, rows(), options, "csv")


def read_jsonl(path: Path, text: str, options: ReadOptions) -> tuple[Observations, Source]:
    """JSON lines: one object a line, nested objects flattened with dots (``http.status``)."""
    objects = json_lines(path, text, "a JSON object")
    parsed: list[tuple[int, Row]] = [(number, _flat(item)) for number, item in objects]
    if not parsed:
        raise FitInputError(f"{path}: empty file; JSON lines need one object a line")
    header = list(dict.fromkeys(key for _, row in parsed[:HEADER_LINES] for key in row))
    return _read_rows(path, header, iter(parsed), options, "jsonl")


def _flat(item: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in item.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _read_rows(
    path: Path, header: list[str], rows: Iterable[tuple[int, Row]], options: ReadOptions, fmt: str
) -> tuple[Observations, Source]:
    found = resolve(header, options.columns, str(path))
    reader = _Cells(path, found, options)
    times: list[float] = []
    durations: list[float] = []
    errors: list[str] = []
    optional: dict[str, list[Any]] = {r: [] for r in ("client", "call", "attempt", "tier")}
    for number, row in rows:
        times.append(reader.time(number, row))
        durations.append(reader.duration(number, row, times[-1]))
        errors.append(reader.error(number, row))
        for role, column in optional.items():
            if found.get(role) is not None:
                column.append(reader.optional(role, number, row))
    if not times:
        raise FitInputError(f"{path}: no rows after the header")
    observations = table(
        times,
        durations,
        errors,
        **{role: (column if found.get(role) else None) for role, column in optional.items()},
    )
    source = Source(str(path), fmt, len(times), dict(found.found), tuple(reader.notes(durations)))
    return observations, source


class _Cells:
    """Reads one row's cells by role, each failure one line with file, row and column."""

    def __init__(self, path: Path, found: ColumnMap, options: ReadOptions) -> None:
        self.path, self.found, self.options = path, found, options
        ts = found.get("timestamp")
        assert ts is not None  # resolve() requires it
        self.ts_unit = options.timestamp_unit or values.unit_of(ts)
        duration = found.get("duration")
        self.duration_unit = options.duration_unit or (
            values.unit_of(duration) if duration else None
        )
        self.empty_durations = 0

    def _cell(self, role: str, number: int, row: Row) -> Any:
        column = self.found.get(role)
        return None if column is None else row.get(column)

    def _fail(self, role: str, number: int, problem: str) -> FitInputError:
        return FitInputError(
            f"{self.path}: row {number}, column {self.found.get(role)!r} ({role}): {problem}"
        )

    def time(self, number: int, row: Row) -> float:
        raw = self._cell("timestamp", number, row)
        if raw is None or raw == "":
            raise self._fail("timestamp", number, "empty")
        try:
            return values.timestamp(raw, self.ts_unit)
        except ValueError as error:
            raise self._fail("timestamp", number, str(error)) from None

    def duration(self, number: int, row: Row, start: float) -> float:
        role = "duration" if self.found.get("duration") else "end"
        raw = self._cell(role, number, row)
        if raw is None or raw == "":
            self.empty_durations += 1
            return math.nan
        try:
            if role == "duration":
                return values.duration(raw, self.duration_unit or "s")
            end = values.timestamp(raw, self.ts_unit)
        except ValueError as error:
            raise self._fail(role, number, str(error)) from None
        if end < start:
            raise self._fail(role, number, f"ends before it starts ({end:g} < {start:g})")
        return end - start

    def error(self, number: int, row: Row) -> str:
        named = self._cell("error", number, row)
        if named is not None:
            name = values.outcome(named)
            if name:
                return name
        status = self._cell("outcome", number, row)
        return values.outcome(status) if status is not None else ""

    def optional(self, role: str, number: int, row: Row) -> Any:
        raw = self._cell(role, number, row)
        if role != "attempt":
            return "" if raw is None else str(raw)
        try:
            attempt = int(float(str(raw)))
        except ValueError:
            raise self._fail(role, number, f"{raw!r} is not an attempt number") from None
        if _zero_based(self.found.get("attempt")):
            attempt += 1
        if attempt < 1:
            raise self._fail(role, number, f"{raw!r}: attempts count from 1 (retries from 0)")
        return attempt

    def notes(self, durations: list[float]) -> list[str]:
        out: list[str] = []
        guessed = sorted(self.found.guessed)
        if guessed:
            out.append(
                "columns guessed from their names: "
                + ", ".join(f"{role}={self.found.get(role)}" for role in guessed)
            )
        if self.found.get("duration") and self.options.duration_unit is None:
            name = self.found.get("duration") or ""
            if values.unit_of(name) is None:
                out.append(
                    f"column {name!r} names no unit: read as seconds (--duration-unit to change)"
                )
        if self.empty_durations:
            out.append(f"{self.empty_durations:,} rows have no duration: left out of the latency")
        if not self.found.get("error") and not self.found.get("outcome"):
            out.append("no outcome or error column: every row is taken as a success")
        return out


def _zero_based(column: str | None) -> bool:
    plain = (column or "").lower().replace("-", "_").replace(".", "_")
    return plain in ZERO_BASED
