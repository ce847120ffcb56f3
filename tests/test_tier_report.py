"""The run report of a call graph and of replicated services: the Tiers and Replicas tables, and
a diagnosis's grouped settings printed as one command that sets them all."""

from __future__ import annotations

import copy
from typing import Any

from rich.console import Console

import retrysim
from retrysim.model.scenario import parse_scenario
from retrysim.render.report import render_run
from retrysim.render.tier_report import replicas_table, tiers_table
from retrysim.render.verdict import diagnoses_section
from retrysim.results.document import ResultDocument

FAIL_ALWAYS = {"kind": "outage", "start": 0, "end": 1000, "error": "ConnectionError"}
QUICK = {"operation": "api", "min_wait": 0.001, "max_wait": 0.002, "max_attempts": 3}


def storm() -> dict[str, Any]:
    """Three layers of three attempts over a database that always fails, on three replicas."""
    ideal = {"kind": "ideal", "latency": 0.001}
    return {
        "name": "storm",
        "duration": 2,
        "policy": QUICK,
        "clients": {"count": 4},
        "tiers": {
            "gateway": {"policy": QUICK, "service": ideal},
            "service": {"policy": QUICK, "service": ideal},
            "database": {
                "service": {"kind": "queue", "concurrency": 2, "latency": 0.002, "replicas": 3},
                "faults": [FAIL_ALWAYS],
            },
        },
    }


def report(doc: ResultDocument, width: int = 160) -> str:
    console = Console(record=True, width=width, color_system=None)
    render_run(doc, console)
    return console.export_text()


def run_doc(data: dict[str, Any]) -> ResultDocument:
    return retrysim.run(parse_scenario(data)).document


def test_the_report_shows_each_tier_with_its_amplification() -> None:
    doc = run_doc(storm())
    text = report(doc)
    assert "Tiers (top first)" in text and "Replicas" in text
    rows = {line.split("│")[1].strip(): line for line in text.splitlines() if line.count("│") > 6}
    assert set(rows) >= {"gateway", "service", "database"}
    assert "3.00 (max 3)" in rows["gateway"] and "27.00 (max 27)" in rows["database"]
    assert f"{doc['tiers'][-1]['attempts']:,}" in rows["database"]
    assert "unbounded" in rows["gateway"]  # an ideal service has no capacity
    assert "0.0%" in rows["database"]  # no call to the database ever succeeded


def test_the_grouped_prescription_is_one_command_that_sets_every_tier() -> None:
    doc = run_doc(storm())
    text = report(doc, width=100)
    one_line = (
        "retrysim run storm --set tiers.gateway.policy.max_attempts=1 "
        "--set tiers.service.policy.max_attempts=1"
    )
    assert any(one_line in line for line in text.splitlines())  # never broken, at width 100
    assert (
        "--set tiers.gateway.policy.budget.enabled=true --set tiers.service.policy.budget" in text
    )
    # the shell's own command for each setting of a group, on one line
    console = Console(record=True, width=200, color_system=None)
    console.print(diagnoses_section(doc, lambda change: f"set {change}"), crop=False)
    shell = console.export_text()
    assert (
        "set tiers.gateway.policy.max_attempts=1; set tiers.service.policy.max_attempts=1" in shell
    )


def test_ungrouped_settings_still_get_one_line_each() -> None:
    doc = run_doc(storm())
    plain = copy.deepcopy(doc)
    for diagnosis in plain["diagnoses"]:
        diagnosis["figures"].pop("together", None)
    console = Console(record=True, width=200, color_system=None)
    console.print(diagnoses_section(plain), crop=False)
    text = console.export_text()
    assert "retrysim run storm --set tiers.gateway.policy.max_attempts=1\n" in text
    assert "retrysim run storm --set tiers.service.policy.max_attempts=1\n" in text


def test_the_replicas_table_names_each_tiers_replicas_and_their_failures() -> None:
    doc = run_doc(storm())
    table = replicas_table(doc)
    assert table is not None
    console = Console(record=True, width=120, color_system=None)
    console.print(table)
    text = console.export_text()
    assert text.count("database") == 3  # one row per replica, named by its tier
    assert "100.0%" in text  # every request failed on every replica
    assert "retry_other_host off" in text


def test_a_one_tier_report_has_no_tier_or_replica_table() -> None:
    doc = run_doc({"name": "plain", "duration": 1, "clients": {"count": 3}})
    assert tiers_table(doc) is None and replicas_table(doc) is None
    text = report(doc)
    assert "Tiers" not in text and "Replicas" not in text
