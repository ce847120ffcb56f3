"""``retrysim fit`` end to end: a log simulated from ``redis-blip`` (500 clients, Poisson 200/s,
lognormal latency median 2 ms and p99 20 ms, an outage from 20 to 23 s) fitted through the CLI.

Where each output goes (the scenario on stdout and the report on stderr without ``--out``;
the report on stdout with it; the JSON document alone with ``--json``), that the written
scenario validates and recovers the truth, and that bad input is one line and exit 2
before any work.
"""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from retrysim.cli.app import app
from retrysim.fit.writer import validate
from retrysim.model.library import load_scenario
from tests.fit_data import saved_run

TRUE_RATE = 200.0
TRUE_MEDIAN, TRUE_P99 = 0.002, 0.02
OUTAGE = (20.0, 23.0)


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``retrysim run redis-blip --out DIR``'s attempts.csv."""
    folder = saved_run(load_scenario("redis-blip"), tmp_path_factory.mktemp("blip"))
    return folder / "attempts.csv"


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def recovered(scenario: dict[str, Any]) -> None:
    """The truth of redis-blip, within the tolerances the known-truth tests state."""
    rate = scenario["clients"]["arrival"]["rate"]
    assert rate == pytest.approx(TRUE_RATE, rel=0.05)
    latency = scenario["service"]["latency"]
    assert latency["dist"] == "lognormal"
    assert latency["median"] == pytest.approx(TRUE_MEDIAN, rel=0.05)
    assert latency["p99"] == pytest.approx(TRUE_P99, rel=0.1)
    (fault,) = scenario["faults"]
    assert fault["kind"] == "outage" and fault["error"] == "ConnectionResetError"
    assert fault["start"] == pytest.approx(OUTAGE[0], abs=0.1)
    assert fault["end"] == pytest.approx(OUTAGE[1], abs=0.1)


def test_without_out_the_scenario_is_stdout_and_the_report_stderr(log: Path) -> None:
    result = invoke("fit", str(log), "--seeds", "2")
    assert result.exit_code == 0, result.output
    scenario = tomllib.loads(result.stdout)  # nothing but the scenario on stdout
    validate(result.stdout)
    recovered(scenario)
    report = result.stderr
    for part in (
        "fitted values",
        "defaults (not in the data)",
        "clients.timeout",
        "Poisson (not rejected at 0.01)",
        "lognormal chosen on",
        "held-out KS D",
        "fault windows found",
        "ConnectionResetError",
        "held-out check: fitted on",
        "the scenario is on stdout",
    ):
        assert part in report, part
    for family in ("lognormal", "gamma", "weibull", "empirical"):
        assert family in report


def test_out_writes_a_scenario_that_validates_and_the_report_goes_to_stdout(
    log: Path, tmp_path: Path
) -> None:
    out = tmp_path / "fitted.toml"
    result = invoke("fit", str(log), "--out", str(out), "--no-check", "--name", "blip-fitted")
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    loaded = validate(text, str(out))
    assert loaded.name == "blip-fitted"
    recovered(tomllib.loads(text))
    assert "fitted values" in result.stdout and f"wrote {out}" in " ".join(result.stdout.split())
    assert "held-out check" not in result.stdout  # --no-check
    header = " ".join(line.lstrip("# ") for line in text.splitlines() if line.startswith("#"))
    assert "Written by: retrysim fit" in header and "--no-check --name blip-fitted" in header
    # the CLI loads it as any scenario
    assert invoke("validate", str(out)).exit_code == 0


def test_json_is_the_document_alone(log: Path) -> None:
    result = invoke("fit", str(log), "--json", "--seeds", "3")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["schema_version"] == 1
    for key in ("scenario", "values", "missing", "sources", "latency", "errors", "arrivals"):
        assert key in doc
    recovered(doc["scenario"])
    held = doc["held_out"]
    assert held["seeds"] == [0, 1, 2]
    assert len(held["metrics"]) == 6
    assert held["inside"] == sum(m["inside"] for m in held["metrics"])
    for metric in held["metrics"]:
        assert metric["inside"] == (metric["low"] <= metric["real"] <= metric["high"])
    assert tomllib.loads(doc["toml"]) == doc["scenario"]
    keys = {value["key"] for value in doc["values"]}
    assert {"clients.arrival", "service.latency", "faults.0"} <= keys


def test_no_check_puts_null_in_the_document(log: Path) -> None:
    result = invoke("fit", str(log), "--json", "--no-check")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["held_out"] is None


def test_scrapes_say_why_the_check_did_not_run(tmp_path: Path) -> None:
    """Scrapes cannot be split into calls: the check is one line, not a failure."""
    from tests.fit_data import prometheus_scrapes

    scraped = prometheus_scrapes(tmp_path / "scrapes")
    files = [str(path) for path in scraped.files]
    result = invoke("fit", *files, "--scrape-interval", "1", "--json")
    assert result.exit_code == 0, result.output
    held = json.loads(result.stdout)["held_out"]
    assert isinstance(held, str) and "request rows" in held


def test_plot_and_html_are_written(log: Path, tmp_path: Path) -> None:
    plot, page = tmp_path / "fit.png", tmp_path / "fit.html"
    result = invoke(
        "fit",
        str(log),
        "--out",
        str(tmp_path / "s.toml"),
        "--seeds",
        "2",
        "--plot",
        str(plot),
        "--html",
        str(page),
    )
    assert result.exit_code == 0, result.output
    assert plot.read_bytes().startswith(b"\x89PNG")
    html = page.read_text(encoding="utf-8")
    assert "retrysim fit" in html and html.count("<svg") == 4
    assert "Held-out check" in html and "retrysim fit " in html


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/no/such/log.csv"], "/no/such/log.csv: no such file or folder"),
        (["{log}", "--column", "duration"], "--column 'duration': expected ROLE=NAME"),
        (["{log}", "--column", "durration=x"], "no such role (did you mean 'duration'?)"),
        (["{log}", "--format", "xml"], "--format 'xml': allowed: auto, csv"),
        (["{log}", "--bin-width", "0"], "--bin-width 0.0: a positive number of seconds"),
        (["{log}", "--out", "/no/such/folder/s.toml"], "--out /no/such/folder/s.toml"),
        (["{log}", "--plot", "fit.gif"], "--plot fit.gif: the file must end in .png"),
        (["{log}", "--html", "fit.txt"], "--html fit.txt: the file must end in .html"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(log: Path, args: list[str], message: str) -> None:
    result = invoke("fit", *(a.format(log=log) for a in args))
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""  # refused before any fit


def test_an_unreadable_row_names_the_file_row_and_column(tmp_path: Path) -> None:
    log = tmp_path / "requests.csv"
    log.write_text("timestamp,duration_ms,status\n1.0,5,ok\n2.0,abc,ok\n", encoding="utf-8")
    result = invoke("fit", str(log))
    assert result.exit_code == 2
    assert f"{log}: row 3, column 'duration_ms' (duration): 'abc' is not a number" in result.stderr


def test_an_out_target_that_cannot_be_written_costs_no_fit(log: Path, tmp_path: Path) -> None:
    target = tmp_path / "read-only.toml"
    target.write_text("old\n", encoding="utf-8")
    target.chmod(0o444)
    result = invoke("fit", str(log), "--out", str(target))
    assert result.exit_code == 2
    assert "--out" in result.stderr and result.stdout == ""
    assert target.read_text(encoding="utf-8") == "old\n"


def test_help_explains_with_an_example() -> None:
    result = invoke("fit", "--help")
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "retrysim fit requests.csv --column duration=latency_ms --out fitted.toml" in text
    for flag in (
        "--column",
        "--format",
        "--duration-unit",
        "--timestamp-unit",
        "--scrape-interval",
        "--metric",
        "--bin-width",
        "--quantiles",
        "--check",
        "--no-check",
        "--seeds",
        "--plot",
        "--html",
        "--json",
    ):
        assert flag in text, flag


def test_an_otlp_export_gives_a_tiered_scenario_that_validates_and_a_panel_per_tier(
    tmp_path: Path,
) -> None:
    """Traces written by the OpenTelemetry SDK (gateway -> api -> db): the scenario's tiers,
    each tier's latency figure and window, and the held-out check tier by tier."""
    from tests.fit_data import otlp_traces

    trace = tmp_path / "traces.json"
    trace.write_text(otlp_traces().text, encoding="utf-8")
    out, plot, html = tmp_path / "fitted.toml", tmp_path / "fit.svg", tmp_path / "fit.html"
    result = invoke("fit", str(trace), "--out", str(out), "--plot", str(plot), "--html", str(html))
    assert result.exit_code == 0, result.output
    scenario = validate(out.read_text(encoding="utf-8"), str(out))
    tiers = list(scenario.tiers)
    assert len(tiers) == 3
    words = " ".join(result.stdout.split())
    assert "held-out check: fitted on 300 calls, simulated with 5 seeds" in words
    for tier in tiers:
        assert f"{tier}: latency p50 (successful attempts)" in result.stdout
    for tier in tiers:
        assert f"latency ({tier})" in result.stdout
    page_text = html.read_text(encoding="utf-8")
    assert page_text.count("<figure") == 1 + 3 * 3  # arrivals; Q-Q, latency, errors per tier
    assert plot.read_text(encoding="utf-8").startswith("<?xml")


def test_without_scipy_a_fit_says_which_extra_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """scipy is the fit extra's: missing, it is the install to complete (exit 2), not a bug."""
    log = tmp_path / "log.csv"
    log.write_text("timestamp,duration,outcome\n" + "".join(f"{i},0.01,ok\n" for i in range(50)))
    for name in [m for m in sys.modules if m == "scipy" or m.startswith("scipy.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "scipy", None)
    result = CliRunner().invoke(app, ["fit", str(log), "--no-check"])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        "retrysim: error: retrysim fit needs scipy, which is not installed: "
        "pip install 'retrysim[fit]'"
    ]
