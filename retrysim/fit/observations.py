"""The observation table every reader fills and every fitter reads: one row a request.

Columns are numpy arrays, categorical ones (error, client, call, tier) as integer codes into
sorted name tuples, so a million-row log costs a few arrays, not a million objects, and the
same input always gives the same codes. Times are seconds; a reader hands them over as they
were in the file (epoch seconds, or a run's own clock) and :func:`rebased` moves the origin
once, for every file read together.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from retrysim.errors import BadInputError

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

#: Timestamps below this many seconds are a run's own clock (a retrysim run starts at 0);
#: above it, epoch seconds (1e6 s is 11.6 days after 1970).
RELATIVE_BELOW = 1e6


class FitInputError(BadInputError):
    """Data ``retrysim fit`` cannot read: one line naming the file, the row and the column."""


@dataclass(frozen=True)
class Source:
    """One input: what was read, how, and what was assumed reading it (one line each)."""

    path: str
    format: str
    rows: int
    columns: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    sha256: str = ""

    def describe(self, roles: tuple[str, ...] | None = None) -> str:
        """``logs.csv (12,000 rows; timestamp=ts, duration=latency_ms)``: for comments, with
        the columns of ``roles`` only (None: every column read)."""
        shown = [r for r in self.columns if roles is None or r in roles]
        cols = ", ".join(f"{role}={self.columns[role]}" for role in shown)
        unit = "samples" if self.format == "prometheus" else "rows"
        if self.format == "prometheus":
            unit = "scrapes"
        elif self.format == "otlp":
            unit = "spans"
        return f"{Path(self.path).name} ({self.rows:,} {unit}{'; ' + cols if cols else ''})"

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "format": self.format,
            "rows": self.rows,
            "columns": dict(self.columns),
            "notes": list(self.notes),
            "sha256": self.sha256,
        }


def file_digest(path: Path) -> str:
    """The sha256 of a file's bytes (a folder: of its files' names and bytes, sorted), so a
    written scenario names exactly what it was fitted from."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for item in files:
        if path.is_dir():
            digest.update(item.relative_to(path).as_posix().encode() + b"\0")
        with item.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def categorical(values: Sequence[str]) -> tuple[Ints, tuple[str, ...]]:
    """Codes into the sorted distinct values (the same input, the same codes)."""
    if not values:
        return np.zeros(0, dtype=np.int64), ()
    names, codes = np.unique(np.asarray(values, dtype=object).astype(str), return_inverse=True)
    return codes.astype(np.int64), tuple(str(n) for n in names)


@dataclass(frozen=True)
class Observations:
    """Requests as columns, sorted by time.

    ``error`` codes index ``error_names``, whose first entry is always ``""`` (ok). ``client``,
    ``call`` and ``tier`` are codes (None: the data had no such column); ``attempt`` is the
    attempt number, 1 for a call's first (None: unknown). ``root``, in a call graph, is the id
    of the clients' call each request was sent for (every request below it shares it), so
    the held-out check can deal whole call trees to its halves (None: no call graph). ``time``
    is seconds after ``origin`` (epoch seconds, or 0 for a run's own clock).
    """

    time: Floats
    duration: Floats
    error: Ints
    error_names: tuple[str, ...]
    client: Ints | None = None
    call: Ints | None = None
    attempt: Ints | None = None
    tier: Ints | None = None
    tier_names: tuple[str, ...] = ()
    origin: float = 0.0
    root: Ints | None = None

    def __len__(self) -> int:
        return len(self.time)

    @property
    def failed(self) -> npt.NDArray[np.bool_]:
        return np.asarray(self.error != 0, dtype=np.bool_)

    def take(self, rows: npt.NDArray[np.bool_] | Ints) -> Observations:
        """The rows selected (a mask or indices), every column alike."""

        def pick(column: Ints | None) -> Ints | None:
            return None if column is None else column[rows]

        return replace(
            self,
            time=self.time[rows],
            duration=self.duration[rows],
            error=self.error[rows],
            client=pick(self.client),
            call=pick(self.call),
            attempt=pick(self.attempt),
            tier=pick(self.tier),
            root=pick(self.root),
        )

    def of_tier(self, name: str) -> Observations:
        """The rows of one tier (all rows when there is no tier column)."""
        if self.tier is None or name not in self.tier_names:
            return self
        return self.take(self.tier == self.tier_names.index(name))

    def error_name(self, code: int) -> str:
        return self.error_names[code]


def table(
    time: Sequence[float] | Floats,
    duration: Sequence[float] | Floats,
    errors: Sequence[str],
    *,
    client: Sequence[str] | None = None,
    call: Sequence[str] | None = None,
    attempt: Sequence[int] | None = None,
    tier: Sequence[str] | None = None,
    root: Sequence[int] | None = None,
) -> Observations:
    """An :class:`Observations` from plain columns (as a reader collects them), sorted by time
    (stable: rows at the same instant keep their order in the file)."""
    times = np.asarray(time, dtype=np.float64)
    order = np.argsort(times, kind="stable")
    error, names = categorical(["", *errors])  # "" sorts first: ok is always code 0
    error = error[1:]

    def codes(values: Sequence[str] | None) -> tuple[Ints | None, tuple[str, ...]]:
        if values is None:
            return None, ()
        found, labels = categorical(values)
        return found[order], labels

    tiers, tier_names = codes(tier)
    return Observations(
        time=times[order],
        duration=np.asarray(duration, dtype=np.float64)[order],
        error=error[order],
        error_names=names,
        client=codes(client)[0],
        call=codes(call)[0],
        attempt=None if attempt is None else np.asarray(attempt, dtype=np.int64)[order],
        tier=tiers,
        tier_names=tier_names,
        root=None if root is None else np.asarray(root, dtype=np.int64)[order],
    )


def empty() -> Observations:
    return table([], [], [])


def concatenated(parts: Sequence[Observations]) -> Observations:
    """Several tables as one (sorted by time again); a column missing from one part is
    missing from the whole, and codes are re-made over the union of names. Times are moved to
    the earliest part's origin."""
    parts = [part for part in parts if len(part)]
    if not parts:
        return empty()
    if len(parts) == 1:
        return parts[0]
    origin = min(part.origin for part in parts)
    parts = [replace(p, time=p.time + (p.origin - origin), origin=origin) for p in parts]

    def names(column: str, labels: str | None) -> list[str] | None:
        if any(getattr(p, column) is None for p in parts):
            return None
        out: list[str] = []
        for index, part in enumerate(parts):
            codes = getattr(part, column)
            if labels is None:  # a per-file id: distinct across files
                out += [f"{index}:{c}" for c in codes.tolist()]
            else:
                table_names = getattr(part, labels)
                out += [table_names[c] for c in codes.tolist()]
        return out

    attempts = None
    if all(p.attempt is not None for p in parts):
        attempts = np.concatenate([p.attempt for p in parts if p.attempt is not None]).tolist()
    roots = names("root", None)
    joined = table(
        np.concatenate([p.time for p in parts]),
        np.concatenate([p.duration for p in parts]),
        [p.error_names[c] for p in parts for c in p.error.tolist()],
        client=names("client", None),
        call=names("call", None),
        attempt=attempts,
        tier=names("tier", "tier_names"),
        root=None if roots is None else categorical(roots)[0].tolist(),
    )
    return replace(joined, origin=origin)


def json_lines(path: Path, text: str, expected: str) -> list[tuple[int, dict[str, Any]]]:
    """The JSON objects of a JSON-lines file, each with its line number (blank lines skipped);
    a line that is not JSON, or not an object, is refused naming the file, the line and
    ``expected`` (what an object there should be)."""
    found: list[tuple[int, dict[str, Any]]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            raise FitInputError(f"{path}: line {number}: not JSON ({error.msg})") from None
        if not isinstance(item, dict):
            raise FitInputError(f"{path}: line {number}: {expected} expected, not {item!r:.40}")
        found.append((number, item))
    return found
