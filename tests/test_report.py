"""The plain-language report: a verdict line, labelled figures, limits beside maxima, diagnoses,
and numbers that line up (no 1s beside 4.015s, no -0.000s)."""

from __future__ import annotations

import io
from typing import Any, cast

import pytest
from rich.console import Console

import retrysim
from retrysim.render import report
from retrysim.results.document import ResultDocument


def text(renderable: Any, width: int = 200) -> str:
    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None).print(renderable)
    out = buffer.getvalue()
    assert isinstance(out, str)
    return out


@pytest.fixture(scope="module")
def herd() -> ResultDocument:
    scenario = retrysim.load_scenario("thundering-herd").with_overrides(
        {"clients.count": 300, "policy.max_attempts": 5}
    )
    return retrysim.run(scenario).document


def test_the_verdict_says_success_spread_load_and_problems(herd: ResultDocument) -> None:
    line = report.verdict(herd)
    calls = herd["calls"]
    assert line.startswith(f"{100 * calls['succeeded'] / calls['total']:.0f}% of calls succeeded")
    assert "the herd's first retries are" in line
    assert f"load peaked at {herd['load']['peak_over_capacity']:.2f}x capacity" in line
    n = len(herd["diagnoses"])
    assert (f"{n} problem" in line) if n else ("no problems found" in line)


def test_calls_are_explained_when_clients_make_several(herd: ResultDocument) -> None:
    assert report.calls_text(herd) == "900 (300 clients x 3)"
    single: ResultDocument = {**herd, "clients": {**herd["clients"], "calls_per_client": None}}
    assert report.calls_text(single) == "900"


def test_the_limit_stands_beside_the_most_used(herd: ResultDocument) -> None:
    out = text(report.outcome_table(herd))
    assert f"max used {herd['attempts']['max_per_call']} of 5 allowed" in out
    assert "still retrying when the run stopped" in out  # unfinished is always explained
    assert "of calls gave up" in out


def test_failed_attempts_by_error_have_a_heading(herd: ResultDocument) -> None:
    out = text(report.load_table(herd)).splitlines()
    heading = next(i for i, line in enumerate(out) if "failed attempts by error" in line)
    assert "ConnectionError" in out[heading + 1]


def test_latency_overhead_shows_max_and_columns_keep_their_decimals(
    herd: ResultDocument,
) -> None:
    out = text(report.latency_table(herd))
    row = next(line for line in out.splitlines() if "vs no faults" in line)
    cells = [cell.strip() for cell in row.split("│")]
    assert sum(c[:1] in "+-" and c.endswith("s") for c in cells) == 4  # p50 p95 p99 max
    overhead = herd["latency_overhead"]
    assert overhead is not None and f"{overhead['max']:+.3f}s" in row
    doc: ResultDocument = {**herd, "latency": {**herd["latency"], "p50": 1.0}}
    assert "1.000s" in text(report.latency_table(doc))


def test_numbers_never_show_minus_zero() -> None:
    assert report.fmt_num(-0.0001, "s") == "0.000s"
    assert report.fmt_num(1.0, "s") == "1.000s"  # not "1s" beside "4.015s"
    assert report._signed(-0.0002) == "±0"
    assert report._signed(2.5) == "+2.500s"


def test_diagnoses_render_evidence_and_the_setting_to_try(herd: ResultDocument) -> None:
    out = text(report.diagnoses_section(herd))
    for item in herd["diagnoses"]:
        assert item["title"] in out and f"[{item['section']}]" in out
        for setting in item["settings"]:
            assert setting["set"] in out
    healthy = retrysim.run(retrysim.load_scenario("redis-blip")).document
    assert "none: nothing in this run" in text(report.diagnoses_section(healthy))


def test_a_saved_document_without_diagnoses_is_diagnosed_when_shown(
    herd: ResultDocument,
) -> None:
    old = cast(ResultDocument, {k: v for k, v in herd.items() if k != "diagnoses"})
    assert report.verdict(old) == report.verdict(herd)


def test_run_report_leads_with_the_verdict(herd: ResultDocument) -> None:
    buffer = io.StringIO()
    report.render_run(herd, Console(file=buffer, width=200, color_system=None))
    lines = buffer.getvalue().splitlines()
    panel_end = next(i for i, line in enumerate(lines) if line.startswith("╰"))
    assert lines[panel_end + 1] == report.verdict(herd)
    assert any(line.startswith("Diagnoses") for line in lines)
