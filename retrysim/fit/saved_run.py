"""retrysim's own saved runs (``run --out DIR``, ``chaos --out DIR``) read with no option.

``attempts.csv`` has one row per attempt in the records' columns (``retrysim.sim.records``:
``call, client, attempt, outcome, error, start, end, ...``; a call graph's has a ``tier`` column
first, and its ``calls.csv`` a ``parent`` column tying each call to the request above it).
Every attempt the service saw is a request; attempts still open when the run ended and the
client's own breaker refusals (``CircuitOpen``, never sent) are not, and are counted in a note.
A hedge cancelled by its sibling's answer was seen but its duration is unknown. ``result.json``,
when present, gives the window calls arrived in (``clients.arrivals_end``).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

from retrysim.fit.graph import CallGraph, Request, as_tiers
from retrysim.fit.observations import FitInputError, Observations, Source, table
from retrysim.sim.records import CANCELLED, FAILED, OK, OPEN, TIMED_OUT

#: The columns that make an attempts table retrysim's (``retrysim.output.records_csv``).
RUN_COLUMNS = ("call", "client", "attempt", "outcome", "error", "start", "end")
#: Refusals by the client's own circuit breaker: never sent, so no request the service saw.
NEVER_SENT = "CircuitOpen"


@dataclass(frozen=True)
class SavedRun:
    observations: Observations
    source: Source
    graph: CallGraph | None
    window: tuple[float, float] | None


def is_run_table(header: list[str]) -> bool:
    """Whether a CSV header is retrysim's attempts table."""
    return set(RUN_COLUMNS) <= {name.strip() for name in header}


def attempts_file(path: Path) -> Path:
    """The attempts table of a saved run given as its folder or as the file itself."""
    return path / "attempts.csv" if path.is_dir() else path


def read_run(path: Path, text: str) -> SavedRun:
    """A saved run's attempts (``text`` is ``attempts.csv``; ``path`` the folder or file)."""
    folder = path if path.is_dir() else path.parent
    rows, header = _rows(attempts_file(path), text)
    notes: list[str] = []
    tiered = "tier" in header
    calls_path = folder / "calls.csv"
    parents: dict[tuple[str, int], int] = {}
    if tiered:
        if not calls_path.is_file():
            raise FitInputError(
                f"{attempts_file(path)}: a call graph's attempts need calls.csv beside them "
                "(its parent column ties each call to the request above)"
            )
        call_rows, _ = _rows(calls_path, calls_path.read_text(encoding="utf-8"))
        for number, row in call_rows:
            parents[(row["tier"], _int(calls_path, number, row, "call"))] = _int(
                calls_path, number, row, "parent"
            )
    kept = [(number, row) for number, row in rows if _sent(path, number, row)]
    unfinished = sum(_int(path, n, row, "outcome") == OPEN for n, row in rows)
    refused = len(rows) - len(kept) - unfinished
    if unfinished:
        notes.append(f"{unfinished:,} attempts still open when the run ended: left out")
    if refused:
        notes.append(f"{refused:,} attempts refused by the client's breaker (never sent): left out")
    if tiered:
        observations, graph = _tiers(path, rows, parents)
    else:
        observations, graph = _one_tier(path, kept), None
    columns = {"timestamp": "start", "duration": "end - start", "outcome": "outcome, error"}
    columns.update({"call": "call", "attempt": "attempt", "client": "client"})
    if tiered:
        columns["tier"] = "tier"
    source = Source(str(path), "retrysim", len(rows), columns, tuple(notes))
    return SavedRun(observations, source, graph, _window(folder))


def _rows(path: Path, text: str) -> tuple[list[tuple[int, dict[str, str]]], list[str]]:
    reader = csv.reader(io.StringIO(text))
    header = [name.strip() for name in next(reader, [])]
    rows = []
    for cells in reader:
        if not cells:
            continue
        if len(cells) != len(header):
            raise FitInputError(
                f"{path}: row {reader.line_num}: {len(cells)} cells, the header has {len(header)}"
            )
        rows.append((reader.line_num, dict(zip(header, cells, strict=True))))
    return rows, header


def _int(path: Path, number: int, row: dict[str, str], column: str) -> int:
    try:
        return int(row[column])
    except (KeyError, ValueError):
        raise FitInputError(
            f"{path}: row {number}, column {column!r}: {row.get(column)!r} is not a whole number"
        ) from None


def _float(path: Path, number: int, row: dict[str, str], column: str) -> float:
    raw = row[column]
    if raw == "":
        return math.nan
    try:
        return float(raw)
    except ValueError:
        raise FitInputError(
            f"{path}: row {number}, column {column!r}: {raw!r} is not a number"
        ) from None


def _error(path: Path, number: int, row: dict[str, str]) -> str:
    outcome = _int(path, number, row, "outcome")
    if outcome in (OK, CANCELLED):
        return ""
    if outcome == TIMED_OUT:
        return row["error"] or "TimeoutError"
    if outcome == FAILED:
        return row["error"] or "error"
    raise FitInputError(
        f"{path}: row {number}, column 'outcome': {outcome} is no attempt outcome (0 to 4)"
    )


def _duration(path: Path, number: int, row: dict[str, str]) -> float:
    if _int(path, number, row, "outcome") == CANCELLED:
        return math.nan  # its client stopped waiting: how long it would have taken is unknown
    return _float(path, number, row, "end") - _float(path, number, row, "start")


def _one_tier(path: Path, rows: list[tuple[int, dict[str, str]]]) -> Observations:
    return table(
        [_float(path, n, row, "start") for n, row in rows],
        [_duration(path, n, row) for n, row in rows],
        [_error(path, n, row) for n, row in rows],
        client=[row["client"] for _, row in rows],
        call=[row["call"] for _, row in rows],
        attempt=[_int(path, n, row, "attempt") for n, row in rows],
    )


def _tiers(
    path: Path, rows: list[tuple[int, dict[str, str]]], parents: dict[tuple[str, int], int]
) -> tuple[Observations, CallGraph]:
    """A call graph's rows as :class:`~retrysim.fit.graph.Request` s: a tier's attempt serves
    the call it belongs to, whose parent is a row among the tier above's attempts."""
    order: list[str] = []
    local: dict[str, int] = {}  # each tier's attempts are numbered from 0, in file order
    index_of: dict[tuple[str, int], int] = {}  # (tier, its row) -> index among the requests
    kept = [(n, row) for n, row in rows if _sent(path, n, row)]
    for number, row in rows:
        tier = row["tier"]
        if tier not in local:
            order.append(tier)
            local[tier] = 0
        if _sent(path, number, row):
            index_of[(tier, local[tier])] = len(index_of)
        local[tier] += 1
    requests = []
    for number, row in kept:
        tier = row["tier"]
        above = order.index(tier) - 1
        parent_row = parents.get((tier, _int(path, number, row, "call")), -1)
        parent = None
        if above >= 0 and parent_row >= 0:
            parent = index_of.get((order[above], parent_row))
        start = _float(path, number, row, "start")
        requests.append(
            Request(
                tier,
                start,
                start + _duration(path, number, row),
                _error(path, number, row),
                parent=parent,
                attempt=_int(path, number, row, "attempt"),
                client=row["client"] if above < 0 else None,
                call=row["call"],
            )
        )
    return as_tiers(requests)


def _sent(path: Path, number: int, row: dict[str, str]) -> bool:
    """Whether an attempt is a request the service saw and answered or dropped."""
    return _int(path, number, row, "outcome") != OPEN and row["error"] != NEVER_SENT


def _window(folder: Path) -> tuple[float, float] | None:
    """The window calls arrived in, from the run's ``result.json`` (None without one)."""
    try:
        document = json.loads((folder / "result.json").read_text(encoding="utf-8"))
        end = float(document["clients"]["arrivals_end"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (0.0, end) if end > 0 else None
