"""The running record columns: typed, grown by half, moved into numpy records exactly once."""

from __future__ import annotations

import math

import numpy as np
import pytest
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
    columns.grow()
    assert columns.capacity == 3 * rec.FIRST_CAPACITY * 3 // 2  # and half again
    assert columns.start is start and len(start) == columns.capacity
    big = rec.CallColumns(capacity=4 * rec.MOST_GROWTH)
    big.grow()
    assert big.capacity == 5 * rec.MOST_GROWTH  # never more than MOST_GROWTH at once
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


def test_a_field_left_out_has_no_column_and_is_zero_in_the_records() -> None:
    columns = rec.AttemptColumns(capacity=4, left_out=("client", "pool_wait"))
    assert not hasattr(columns, "client") and "client" not in columns.fields
    columns.size = 2
    columns.call[0], columns.call[1] = 5, 6
    rows = columns.to_array()
    assert rows["call"].tolist() == [5, 6]
    assert rows["client"].tolist() == [0, 0] and rows["pool_wait"].tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="no such fields"):
        rec.AttemptColumns(left_out=("clients",))


def test_rows_moved_a_block_at_a_time_are_the_rows_written(monkeypatch: pytest.MonkeyPatch) -> None:
    def filled(rows: int) -> rec.CallColumns:
        columns = rec.CallColumns(capacity=rows)
        for i in range(rows):
            columns.client[i], columns.start[i], columns.attempts[i] = i * 7, i / 3, i % 9
        columns.size = rows
        return columns

    whole = filled(10).to_array()
    monkeypatch.setattr(rec, "MOVE_BLOCK", 3)  # 10 rows: blocks 7-9, 4-6, 1-3, then row 0
    columns = filled(10)
    blocks = columns.to_array()
    assert blocks.tobytes() == whole.tobytes()
    assert len(columns.start) == 0  # the columns were cut as the blocks moved


def test_records_of_fills_in_each_attempts_client_from_its_call() -> None:
    calls = rec.CallColumns(capacity=2, left_out=("call",))
    calls.size = 2
    calls.client[0], calls.client[1] = 11, 22
    calls.outcome[0] = calls.outcome[1] = rec.SUCCEEDED
    calls.attempts[0], calls.attempts[1] = 1, 2
    attempts = rec.AttemptColumns(capacity=3, left_out=("client",))
    attempts.size = 3
    for i, (call, number) in enumerate([(1, 1), (0, 1), (1, 2)]):
        attempts.call[i], attempts.attempt[i] = call, number
    attempt_rows, call_rows = rec.records_of(attempts, calls)
    assert attempt_rows["client"].tolist() == [22, 11, 22]
    assert call_rows["call"].tolist() == [0, 1]


def test_empty_records_have_no_rows_unless_asked() -> None:
    assert len(rec.empty_attempts()) == 0 and len(rec.empty_calls()) == 0
    assert rec.empty_attempts().dtype == rec.ATTEMPT_DTYPE
    assert rec.empty_calls(3).dtype == rec.CALL_DTYPE and len(rec.empty_calls(3)) == 3


def test_calls_from_numbers_the_rows_and_fills_every_field_from_its_column() -> None:
    columns: dict[str, list[float]] = {
        "client": [4, 5],
        "index": [0, 1],
        "start": [0.5, 1.5],
        "end": [1.0, math.nan],
        "attempts": [2, 1],
        "outcome": [rec.SUCCEEDED, rec.UNFINISHED],
        "error": [0, 3],
        "executions": [1, 0],
    }
    calls = rec.calls_from(2, lambda name: columns[name])
    assert calls.dtype == rec.CALL_DTYPE and calls["call"].tolist() == [0, 1]
    for name, values in columns.items():
        got = calls[name].tolist()
        assert got[0] == values[0] and (got[1] == values[1] or math.isnan(values[1])), name
    assert len(rec.calls_from(0, lambda name: [])) == 0
