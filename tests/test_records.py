"""The running record columns: typed, grown by half, moved into numpy records exactly once."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from retrysim.sim import records as rec


def test_a_fresh_attempt_is_open_with_no_end_and_no_wait() -> None:
    columns = rec.AttemptColumns(capacity=3)
    columns.size = 2
    columns.call[1] = 7
    columns.start[1] = 1.5
    rows = columns.to_array()
    assert rows.dtype == rec.ATTEMPT_DTYPE and len(rows) == 2
    assert rows["outcome"].tolist() == [rec.OPEN, rec.OPEN]
    assert all(math.isnan(x) for x in rows["end"]) and all(math.isnan(x) for x in rows["wait"])
    assert rows["call"].tolist() == [0, 7] and rows["start"].tolist() == [0.0, 1.5]
    assert rows["executed"].tolist() == [0, 0] and rows["pool_wait"].tolist() == [0.0, 0.0]


def test_a_fresh_call_is_unfinished_with_no_end() -> None:
    columns = rec.CallColumns(capacity=2)
    columns.size = 1
    rows = columns.to_array()
    assert rows.dtype == rec.CALL_DTYPE
    assert rows["outcome"].tolist() == [rec.UNFINISHED] and math.isnan(rows["end"][0])


def test_columns_grow_by_half_and_keep_what_was_written() -> None:
    columns = rec.AttemptColumns(capacity=rec.FIRST_CAPACITY)
    start = columns.start  # the engine holds column references for the whole run
    for i in range(rec.FIRST_CAPACITY):
        start[i] = float(i)
    columns.grow()
    assert columns.capacity == 2 * rec.FIRST_CAPACITY  # at least FIRST_CAPACITY more
    columns.grow()
    assert columns.capacity == 3 * rec.FIRST_CAPACITY  # then half as much again
    assert columns.start is start and len(start) == columns.capacity
    assert all(math.isnan(x) for x in columns.end[rec.FIRST_CAPACITY :])  # fresh rows fresh
    columns.size = rec.FIRST_CAPACITY + 1
    rows = columns.to_array()
    assert rows["start"][: rec.FIRST_CAPACITY].tolist() == [
        float(i) for i in range(rec.FIRST_CAPACITY)
    ]


def test_to_array_empties_the_columns() -> None:
    columns = rec.AttemptColumns(capacity=10)
    columns.size = 4
    columns.to_array()
    assert columns.size == columns.capacity == 0 and len(columns.start) == 0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 2**32 - 1),
            st.integers(1, 2**16 - 1),
            st.sampled_from([rec.OK, rec.FAILED, rec.TIMED_OUT, rec.OPEN]),
            st.floats(allow_nan=True, allow_infinity=True),
        ),
        max_size=300,
    )
)
def test_what_is_written_is_what_the_records_hold(rows: list[tuple[int, int, int, float]]) -> None:
    columns = rec.AttemptColumns(capacity=1)
    for i, (call, attempt, outcome, end) in enumerate(rows):
        if i == columns.capacity:
            columns.grow()
        columns.call[i], columns.attempt[i], columns.outcome[i], columns.end[i] = (
            call,
            attempt,
            outcome,
            end,
        )
        columns.size = i + 1
    records = columns.to_array()
    assert records["call"].tolist() == [r[0] for r in rows]
    assert records["attempt"].tolist() == [r[1] for r in rows]
    assert records["outcome"].tolist() == [r[2] for r in rows]
    expected = np.array([r[3] for r in rows], dtype="<f8")
    assert records["end"].tobytes() == expected.tobytes()
