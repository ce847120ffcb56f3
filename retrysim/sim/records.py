"""Attempt and call records: flat numpy structured arrays, one row per attempt or call.

An attempt row is 48 bytes. Error types are codes into the run's ``error_names``
(``failures.CODE_NAMES``, 0 = none, then the scenario's answers, ``result:503``: values an
attempt returned, :class:`~retrysim.sim.failures.Answers`), so the names travel with the result
as data. An ok attempt with an answer's code returned that value as its call's result; a failed
one returned a value the policy's result predicate rejected. Times are seconds on the run's
clock (virtual here; a recorder against a real service would use its own monotonic clock).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

# Attempt outcomes (client's view).
OK, FAILED, TIMED_OUT, OPEN = 0, 1, 2, 3
#: A hedged send whose attempt another send answered first: its client stopped waiting.
CANCELLED = 4
# Call outcomes.
SUCCEEDED, GAVE_UP, UNFINISHED = 0, 1, 2

ATTEMPT_DTYPE = np.dtype(
    [
        ("call", "<u4"),
        ("client", "<u4"),
        ("attempt", "<u2"),
        ("outcome", "u1"),
        ("error", "u1"),
        ("start", "<f8"),
        ("end", "<f8"),  # NaN while open at the end of the run
        ("wait", "<f8"),  # wait that followed this attempt; NaN when none did
        ("executed", "u1"),  # the server finished this request's work
        ("pool_wait", "<f8"),  # seconds it waited for a pooled connection (0: none, or no pool)
        ("replica", "<u2"),  # the service replica it went to (0 with one replica)
        ("hedge", "u1"),  # 0: an attempt's first send; 1, 2, ...: its hedges (policy.hedge)
    ]
)

CALL_DTYPE = np.dtype(
    [
        ("call", "<u4"),
        ("client", "<u4"),
        ("index", "<u4"),  # the call's number among its client's calls (0, 1, ...)
        ("start", "<f8"),
        ("end", "<f8"),  # NaN when unfinished
        ("attempts", "<u2"),
        ("outcome", "u1"),
        ("error", "u1"),  # the error the call failed with (0 when it succeeded)
        ("executions", "<u2"),  # how many of its requests the server executed
    ]
)


#: Call fields filled from a run's call objects (``call`` is the row number).
CALL_FIELDS = ("client", "index", "start", "end", "attempts", "outcome", "error", "executions")


def calls_from(count: int, column: Callable[[str], Sequence[Any]]) -> np.ndarray:
    """``count`` call records; ``column(name)`` gives each CALL_FIELDS column (row i = call i)."""
    calls = empty_calls(count)
    if count:
        calls["call"] = np.arange(count)
        for name in CALL_FIELDS:
            calls[name] = column(name)
    return calls


def empty_attempts(n: int = 0) -> np.ndarray:
    return np.zeros(n, dtype=ATTEMPT_DTYPE)


def empty_calls(n: int = 0) -> np.ndarray:
    return np.zeros(n, dtype=CALL_DTYPE)


#: The array.array type code of each field (same width and signedness as the dtype's).
_TYPECODES = {"u1": "B", "<u2": "H", "<u4": "I", "<f8": "d"}
FIRST_CAPACITY = 1 << 12
#: The most rows a column grows by at once: a million-client run's columns then carry at most
#: this much unused room (8 MiB of attempts), and a large block grows by remapping, not copying.
MOST_GROWTH = 1 << 18
#: Rows :meth:`_Columns.to_array` moves at once (11 MiB of attempt records).
MOVE_BLOCK = 1 << 18


class _Columns:
    """Records while a run is going: one typed column a field, grown by half when full.

    A running row costs its fields' bytes and no Python object: the engine writes
    ``columns.<field>[i]`` in place, and :meth:`to_array` moves the columns into the numpy
    records at the end, column by column (no per-row conversion), freeing each as it goes, so
    a run's records never need twice their size. Columns grow in place, so a reference to one
    stays valid for the whole run. Growing by half (not doubling), and by at most
    :data:`MOST_GROWTH` rows, bounds the unused room.

    A field in ``left_out`` has no column while running (the run never writes it, or it can
    be worked out from the others at the end): :meth:`to_array` leaves it zero, for the
    caller to fill. That is a field's bytes saved on every row, and a write on every attempt.
    """

    dtype: np.dtype
    fresh: ClassVar[dict[str, float]]  # what a field holds before the engine writes it (default 0)

    def __init__(self, capacity: int = FIRST_CAPACITY, left_out: Sequence[str] = ()) -> None:
        names = self.dtype.names or ()
        unknown = set(left_out) - set(names)
        if unknown:
            raise ValueError(f"no such fields: {sorted(unknown)}")
        self.fields = tuple(name for name in names if name not in left_out)
        self.size = 0  # rows written
        self.capacity = 0
        for name in self.fields:
            column = array(_TYPECODES[self.dtype[name].str.replace("|", "")])
            assert column.itemsize == self.dtype[name].itemsize, name
            setattr(self, name, column)
        self.grow(capacity)

    def grow(self, more: int | None = None) -> None:
        """Make room for ``more`` rows (default: half as many again as there is room for)."""
        if more is None:
            more = min(max(self.capacity // 2, FIRST_CAPACITY), MOST_GROWTH)
        for name in self.fields:
            column = getattr(self, name)
            column.extend(array(column.typecode, [self.fresh.get(name, 0)]) * more)
        self.capacity += more

    def to_array(self) -> np.ndarray:
        """The rows written, as records of ``dtype``; the columns are emptied (call once).

        Rows move a block at a time, the last block first, and each block's rows are cut off
        the end of every column before the next block is copied: the records' pages fill as
        the columns' are given back, so the run's rows are never held twice. (Copying a
        whole column at once would touch every page of the records on the first one.)
        Fields left out are zero.
        """
        size, fields = self.size, self.fields
        records = np.empty(size, dtype=self.dtype)  # every field is filled below
        left_out = [name for name in self.dtype.names or () if name not in fields]
        columns = [getattr(self, name) for name in fields]
        for column in columns:
            del column[size:]  # the unused room goes first
        high = size
        while high > 0:
            low = max(0, high - MOVE_BLOCK)
            block = records[low:high]
            for name in left_out:
                block[name] = 0
            for name, column in zip(fields, columns, strict=True):
                width = column.itemsize
                rows = np.frombuffer(column, self.dtype[name], high - low, low * width)
                block[name] = rows
                del rows  # a column with a view on it cannot be cut
                del column[low:]
            high = low
        for name, column in zip(fields, columns, strict=True):
            setattr(self, name, array(column.typecode))
        self.size = self.capacity = 0
        return records


class AttemptColumns(_Columns):
    """The attempt records while running: open, no end, no wait yet. The engine leaves out
    ``client`` (its call's, filled in at the end), with no pools ``pool_wait`` and with one
    replica ``replica``, with no hedging ``hedge``: 33 bytes an attempt while running, 48 in
    the records."""

    dtype = ATTEMPT_DTYPE
    fresh: ClassVar[dict[str, float]] = {"outcome": OPEN, "end": math.nan, "wait": math.nan}
    call: array[int]
    client: array[int]  # (when not left out)
    attempt: array[int]
    outcome: array[int]
    error: array[int]
    start: array[float]
    end: array[float]
    wait: array[float]
    executed: array[int]
    pool_wait: array[float]
    replica: array[int]  # (when not left out: a service with replicas)
    hedge: array[int]  # (when not left out: a hedging policy)


class CallColumns(_Columns):
    """The call records while running (38 bytes a call): unfinished, no end yet."""

    dtype = CALL_DTYPE
    fresh: ClassVar[dict[str, float]] = {"outcome": UNFINISHED, "end": math.nan}
    call: array[int]
    client: array[int]
    index: array[int]
    start: array[float]
    end: array[float]
    attempts: array[int]
    outcome: array[int]
    error: array[int]
    executions: array[int]


def records_of(attempts: AttemptColumns, calls: CallColumns) -> tuple[np.ndarray, np.ndarray]:
    """A run's attempt and call records, moved out of its columns (which are emptied).

    The columns the engine left out are filled in here: an attempt's client is its call's.
    A finished call's attempt count was written as it ended; a call still running at the end
    has made as many as its highest attempt number (the invariants check both against the
    rows themselves).
    """
    attempt_rows, call_rows = attempts.to_array(), calls.to_array()
    if "client" not in attempts.fields:
        attempt_rows["client"] = call_rows["client"][attempt_rows["call"]]
    made = len(call_rows)
    call_rows["call"] = np.arange(made)
    unfinished = call_rows["outcome"] == UNFINISHED
    if unfinished.any():
        rows = unfinished[attempt_rows["call"]]
        latest = np.zeros(made, dtype=np.int64)
        np.maximum.at(latest, attempt_rows["call"][rows], attempt_rows["attempt"][rows])
        call_rows["attempts"][unfinished] = latest[unfinished]
    return attempt_rows, call_rows
