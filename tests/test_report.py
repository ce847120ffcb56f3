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


# --- the defaults in effect, and why a metric is null ------------------------------------------


def test_the_header_lists_the_defaults_in_effect(herd: ResultDocument) -> None:
    defaults = ["service.latency = 10 ms (OCC read and write each)", "network.connect = x"]
    out = text(report.header(herd, None, defaults))
    assert "defaults in effect: service.latency = 10 ms (OCC read and write each); " in out
    assert "defaults in effect" not in text(report.header(herd))


def _poisson(duration: float, end: float) -> ResultDocument:
    scenario = retrysim.Scenario.model_validate(
        {
            "duration": duration,
            "clients": {"count": 20, "timeout": 1.0, "arrival": {"kind": "poisson", "rate": 10}},
            "faults": [{"kind": "outage", "start": 5, "end": end}],
        }
    )
    return retrysim.run(scenario).document


def test_a_null_recovery_says_why_when_its_window_starts_after_the_arrivals_end() -> None:
    late = _poisson(duration=30, end=25)
    assert late["recovery"] is None
    out = text(report.load_table(late))
    assert "goodput recovered" in out and "not judged: its window starts at t=30 s" in out
    assert "arrivals end at t=30 s" in out
    judged = _poisson(duration=60, end=25)
    assert judged["recovery"] is not None
    assert "not judged" not in text(report.load_table(judged))


def test_a_null_recovery_of_a_burst_says_there_is_no_steady_load(herd: ResultDocument) -> None:
    assert herd["recovery"] is None
    assert "not judged: a burst arrival has no steady load to recover to" in text(
        report.load_table(herd)
    )
    calm: ResultDocument = {**herd, "faults": []}
    assert "goodput recovered" not in text(report.load_table(calm))  # nothing to recover from


def test_a_null_retry_success_rate_says_no_call_was_retried(herd: ResultDocument) -> None:
    none: ResultDocument = {**herd, "retry_success_rate": None}
    assert "no call was retried" in text(report.outcome_table(none))
    assert "of retried calls succeeded" in text(report.outcome_table(herd))


def test_every_reason_recovery_is_not_judged_is_said() -> None:
    from retrysim.results.facts import recovery, recovery_unjudged

    doc = _poisson(duration=60, end=25)
    assert recovery(doc) is not None and recovery_unjudged(doc) is None

    def changed(clients: dict[str, Any] | None = None, **top: Any) -> ResultDocument:
        return cast(
            ResultDocument, {**doc, "clients": {**doc["clients"], **(clients or {})}, **top}
        )

    fault = doc["faults"][0]
    cases = [
        (changed({"arrival": "uniform"}), "a uniform arrival has no steady load"),
        (changed({"arrival": "closed", "calls_per_client": 3}), "fixed number of calls"),
        (changed(faults=[]), "no fault or traffic spike"),
        (changed(faults=[{**fault, "end": None}]), "lasts until the run ends"),
        (changed(timeline=None), "no timeline"),
        (changed({"offered_rate": None}, faults=[{**fault, "start": 0.5}]), "no offered rate"),
    ]
    for case, words in cases:
        assert recovery(case) is None
        why = recovery_unjudged(case)
        assert why is not None and words in why, (words, why)
