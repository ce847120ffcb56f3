"""The written scenario: valid, every value commented with where it came from or why it is a
default, a header naming the command and the inputs, the same bytes for the same inputs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from retrysim.fit.pipeline import fit_files
from retrysim.fit.result import FitResult
from retrysim.fit.writer import scenario_text, validate, write_scenario
from tests.fit_data import otlp_traces


def _log(path: Path, rows: int, *, seed: int = 0, outcome: bool = True) -> Path:
    rng = np.random.default_rng(seed)
    times = np.cumsum(rng.exponential(0.05, rows))
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ts", "latency_ms", *(["status"] if outcome else [])])
        for t in times:
            failed = 10 <= t < 12 or rng.random() < 0.01
            status = ["503" if failed else "200"] if outcome else []
            writer.writerow(
                [f"{1714564800 + t:.6f}", f"{rng.lognormal(np.log(8), 0.5):.3f}", *status]
            )
    return path


def _values_are_commented(text: str) -> list[str]:
    """The ``key = value`` lines with no comment above them or above their table."""
    lines = text.splitlines()
    bare = []
    commented_table = False
    for index, line in enumerate(lines):
        if line.startswith("["):
            commented_table = index > 0 and lines[index - 1].startswith("#")
            continue
        if " = " not in line or line.startswith(("#", " ")):
            continue
        key = line.split(" = ")[0]
        if key in {"name", "description"} or lines[index - 1].startswith("#"):
            continue
        if not commented_table:
            bare.append(line)
    return bare


def test_every_value_of_a_log_fit_is_commented(tmp_path: Path) -> None:
    fit = fit_files([_log(tmp_path / "access.csv", 2000)])
    text = scenario_text(fit, "retrysim fit access.csv --out fitted.toml")
    validate(text)
    bare = [line for line in _values_are_commented(text) if not line.startswith("seed")]
    assert bare == []
    assert "# Written by: retrysim fit access.csv --out fitted.toml" in text
    assert "access.csv (2,000 rows" in text and "sha256" in text
    assert "Time 0 is 2024-05-01T12:00:00Z" in text
    windows = [f for f in fit.scenario["faults"] if "start" in f]
    assert windows and windows[0]["start"] == pytest.approx(10, abs=0.3)


def test_every_value_of_a_tiered_fit_is_commented(tmp_path: Path) -> None:
    path = tmp_path / "traces.json"
    path.write_text(otlp_traces(requests=300).text)
    text = scenario_text(fit_files([path]))
    validate(text)
    assert [line for line in _values_are_commented(text) if not line.startswith("seed")] == []


def test_data_too_thin_to_fit_gives_defaults_each_with_one_line(tmp_path: Path) -> None:
    fit = fit_files([_log(tmp_path / "few.csv", 30, outcome=False)])
    missing = dict(line.split(": ", 1) for line in fit.missing)
    assert "a fit needs at least 100" in missing["service.latency"]
    assert "rate over time" not in missing.get("clients.arrival", "")  # 30 calls are enough
    text = scenario_text(fit)
    validate(text)
    assert "# default: 30 successful requests with a positive duration" in text
    assert "# Default: service.latency:" in text
    assert "no outcome or error column" in text
    assert "each row is taken as one request and one call" in text
    assert fit.value("service.latency").is_default


def test_the_same_inputs_give_the_same_bytes_and_no_clock(tmp_path: Path) -> None:
    log = _log(tmp_path / "a.csv", 1500)
    first = scenario_text(fit_files([log]), "retrysim fit a.csv")
    second = scenario_text(fit_files([log]), "retrysim fit a.csv")
    assert first == second
    write_scenario(fit_files([log]), tmp_path / "out.toml", "retrysim fit a.csv")
    assert (tmp_path / "out.toml").read_text() == first


def test_names_from_the_data_are_shown_safely_in_comments(tmp_path: Path) -> None:
    odd = tmp_path / "odd\x1bname.csv"
    _log(odd, 500)
    text = scenario_text(fit_files([odd]))
    assert "\x1b" not in text and "odd\\x1bname.csv" in text
    validate(text)


def test_the_fit_as_json_is_strict_json(tmp_path: Path) -> None:
    fit: FitResult = fit_files([_log(tmp_path / "a.csv", 800)])
    document = fit.to_dict()
    assert json.loads(json.dumps(document, allow_nan=False)) == document
    assert {"scenario", "values", "missing", "sources", "latency", "errors", "arrivals"} <= set(
        document
    )
    for value in document["values"]:
        assert value["default"] or (value["source"] and value["method"] and value["n"] > 0)
