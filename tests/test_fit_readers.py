"""Reading request logs, saved runs and formats into the fit's observation table.

Request logs are what users have (written here with the csv and json modules, as any logger
writes them); what the readers must do with them is guess columns and units, read outcomes,
and refuse a bad cell in one line naming the file, the row and the column.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from retrysim.errors import BadInputError
from retrysim.fit import values
from retrysim.fit.observations import FitInputError
from retrysim.fit.options import ReadOptions
from retrysim.fit.read import detect, read_inputs
from retrysim.model.library import load_scenario
from retrysim.names import ERROR_NAMES
from tests.fit_data import saved_run


def _csv(path: Path, rows: list[dict[str, object]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_csv_columns_units_and_outcomes_are_guessed(tmp_path: Path) -> None:
    rows = [
        {"ts": "2024-05-01T12:00:00.500Z", "latency_ms": 12.5, "status": 200, "client_id": "a"},
        {"ts": "2024-05-01T12:00:01.250Z", "latency_ms": 3, "status": 503, "client_id": "b"},
        {"ts": "2024-05-01T12:00:02Z", "latency_ms": 7, "status": 429, "client_id": "a"},
    ]
    data = read_inputs([_csv(tmp_path / "access.csv", rows)])
    table = data.requests
    assert data.origin == 1714564800.0  # 2024-05-01T12:00:00Z, the first whole second
    assert table.time.tolist() == [0.5, 1.25, 2.0]
    assert table.duration.tolist() == pytest.approx([0.0125, 0.003, 0.007])
    assert [table.error_names[c] for c in table.error] == ["", "ServerError", "RateLimited"]
    assert table.client is not None and len(set(table.client.tolist())) == 2
    (source,) = data.sources
    assert source.columns == {
        "timestamp": "ts",
        "duration": "latency_ms",
        "outcome": "status",
        "client": "client_id",
    }
    assert any("guessed" in note for note in source.notes)


def test_columns_named_by_the_user_win_and_units_can_be_given(tmp_path: Path) -> None:
    rows = [
        {"when": 1714564800123, "took": 2500, "err": "", "retry": 0},
        {"when": 1714564800456, "took": 100, "err": "TimeoutError", "retry": 1},
    ]
    options = ReadOptions(
        columns={"timestamp": "when", "duration": "took", "error": "err", "attempt": "retry"},
        duration_unit="us",
    )
    table = read_inputs([_csv(tmp_path / "x.csv", rows)], options).requests
    # epoch milliseconds, told by their size; a double holds an epoch second to 0.2 us
    assert table.time.tolist() == pytest.approx([0.123, 0.456], abs=1e-6)
    assert table.duration.tolist() == pytest.approx([0.0025, 0.0001])
    assert table.attempt is not None and table.attempt.tolist() == [1, 2]  # "retry" counts retries
    assert [table.error_names[c] for c in table.error] == ["", "TimeoutError"]


def test_start_and_end_columns_give_the_duration(tmp_path: Path) -> None:
    rows = [
        {"start": 10.0, "end": 10.25, "outcome": "ok"},
        {"start": 11, "end": 11.5, "outcome": "fail"},
    ]
    table = read_inputs([_csv(tmp_path / "a.csv", rows)]).requests
    assert table.duration.tolist() == [0.25, 0.5]
    assert [table.error_names[c] for c in table.error] == ["", values.UNNAMED]


def test_json_lines_with_nested_fields(tmp_path: Path) -> None:
    lines = [
        {"@timestamp": "2024-05-01T12:00:00Z", "duration": 0.01, "http": {"status": 200}},
        {"@timestamp": "2024-05-01T12:00:01Z", "duration": 0.02, "http": {"status": 500}},
    ]
    path = tmp_path / "app.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    data = read_inputs([path])
    assert data.sources[0].columns["outcome"] == "http.status"
    assert [data.requests.error_names[c] for c in data.requests.error] == ["", "ServerError"]


@pytest.mark.parametrize(
    ("rows", "options", "wanted"),
    [
        ([{"ts": 1, "duration": "fast"}], ReadOptions(), "row 2, column 'duration' (duration)"),
        ([{"ts": "yesterday", "duration": 1}], ReadOptions(), "row 2, column 'ts' (timestamp)"),
        ([{"ts": 1, "duration": -2}], ReadOptions(), "negative duration"),
        ([{"ts": "", "duration": 1}], ReadOptions(), "row 2, column 'ts' (timestamp): empty"),
        ([{"ts": 1, "duration": 1, "attempt": "x"}], ReadOptions(), "column 'attempt'"),
        ([{"ts": 1, "duration": 1}], ReadOptions(columns={"durration": "x"}), "did you mean"),
        ([{"ts": 1, "duration": 1}], ReadOptions(columns={"duration": "lat"}), "no column 'lat'"),
        ([{"when": 1, "duration": 1}], ReadOptions(), "no timestamp column"),
        ([{"ts": 1, "size": 1}], ReadOptions(), "no duration column"),
    ],
)
def test_bad_input_is_one_line_naming_file_row_and_column(
    tmp_path: Path, rows: list[dict[str, object]], options: ReadOptions, wanted: str
) -> None:
    path = _csv(tmp_path / "bad.csv", rows)
    with pytest.raises(FitInputError) as caught:
        read_inputs([path], options)
    message = str(caught.value)
    assert isinstance(caught.value, BadInputError)
    assert "\n" not in message and wanted in message
    assert "--column" in message or str(path) in message


def test_a_ragged_row_and_a_line_that_is_not_json_are_refused(tmp_path: Path) -> None:
    ragged = tmp_path / "r.csv"
    ragged.write_text("ts,duration\n1,2\n3\n")
    with pytest.raises(FitInputError, match=r"r\.csv: row 3: 1 cells, the header has 2"):
        read_inputs([ragged])
    broken = tmp_path / "b.jsonl"
    broken.write_text('{"ts": 1, "duration": 1}\n{"ts": 2,\n')
    with pytest.raises(FitInputError, match=r"b\.jsonl: line 2: not JSON"):
        read_inputs([broken])


def test_formats_are_told_by_extension_and_content(tmp_path: Path) -> None:
    assert detect(tmp_path / "x.csv", "ts,duration\n1,2\n") == "csv"
    assert detect(tmp_path / "x.log", "ts,duration\n1,2\n") == "csv"
    assert detect(tmp_path / "x.txt", "# TYPE a counter\na_total 3\n") == "prometheus"
    assert detect(tmp_path / "metrics", 'a_total{code="200"} 3\n') == "prometheus"
    assert detect(tmp_path / "x.json", '{"resourceSpans": []}') == "otlp"
    assert detect(tmp_path / "x.json", '{"ts": 1}\n{"ts": 2}\n') == "jsonl"
    assert detect(tmp_path / "a.csv", "call,client,attempt,outcome,error,start,end\n") == "retrysim"
    with pytest.raises(FitInputError, match="--format"):
        detect(tmp_path / "x.bin", "hello world")
    with pytest.raises(FitInputError, match="--format 'xml'"):
        read_inputs([tmp_path / "a.csv"], ReadOptions(format="xml"))
    with pytest.raises(FitInputError, match="no such file"):
        read_inputs([tmp_path / "missing.csv"])


def test_a_saved_run_reads_the_same_as_its_folder_or_its_attempts_file(tmp_path: Path) -> None:
    truth = load_scenario("redis-blip").with_overrides({"duration": 10, "clients.count": 50})
    folder = saved_run(truth, tmp_path / "run")
    by_folder = read_inputs([folder])
    by_file = read_inputs([folder / "attempts.csv"])
    assert by_folder.sources[0].format == by_file.sources[0].format == "retrysim"
    np.testing.assert_array_equal(by_folder.requests.time, by_file.requests.time)
    assert by_folder.window == (0.0, 10.0)  # result.json's arrivals_end
    assert by_folder.requests.attempt is not None and by_folder.requests.call is not None
    names = set(by_folder.requests.error_names)
    assert names <= {"", *ERROR_NAMES}


@given(st.integers(100, 599))
def test_an_http_status_is_ok_below_400_and_named_above(status: int) -> None:
    name = values.outcome(status)
    if status < 400:
        assert name == ""
    elif status == 429:
        assert name == "RateLimited"
    elif status >= 500:
        assert name == "ServerError"
    else:
        assert name in ("TimeoutError", f"HTTP {status}")
    assert values.outcome(str(status)) == name


@given(st.floats(1e9, 4e9))
def test_epoch_timestamps_read_alike_in_any_unit(seconds: float) -> None:
    for scale in (1, 1e3, 1e6, 1e9):
        assert values.timestamp(seconds * scale, None) == pytest.approx(seconds, rel=1e-12)


def test_an_error_the_simulator_cannot_raise_is_written_as_its_closest() -> None:
    assert values.scenario_error("ConnectionResetError") == ("ConnectionResetError", None)
    assert values.scenario_error("builtins.TimeoutError")[0] == "TimeoutError"
    assert values.scenario_error("ReadTimeout")[0] == "TimeoutError"
    assert values.scenario_error("ECONNREFUSED: connection refused")[0] == "ConnectionRefusedError"
    assert values.scenario_error("Throttled")[0] == "RateLimited"
    name, why = values.scenario_error("KeyError")
    assert name == "ServerError" and why is not None and "KeyError" in why
