"""A breaker in ``retries`` mode and the ``quota`` and allowance budgets, from a run to the
document, the report header, ``compare`` and ``retrysim settings``.

The numbers are checked against the run's own records and events (a second, simpler count);
the text against what the document holds; the CLI with the settings' ``RETRY__*`` variables.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from retrysim.cli.app import app
from retrysim.render import report
from retrysim.sim import records as rec
from tests.test_report_guards import Run, simulated


@pytest.fixture(scope="module")
def retries_and_quota() -> Run:
    """300 workers through a 20 s outage: a retries-mode breaker per worker and a quota each."""
    return simulated(
        "thundering-herd",
        {
            "clients.count": 300,
            "policy.breaker.enabled": True,
            "policy.breaker.mode": "retries",
            "policy.breaker.failure_threshold": 2,
            "policy.breaker.recovery_timeout": 5,
            "policy.budget.enabled": True,
            "policy.budget.kind": "quota",
            "policy.budget.quota_capacity": 10,
        },
    )


def text(renderable: Any) -> str:
    console = Console(width=220, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_a_retries_breaker_refuses_retries_only_and_the_document_counts_them(
    retries_and_quota: Run,
) -> None:
    result, doc = retries_and_quota
    breaker = doc["guards"]["breaker"]
    refused = result.attempts["error"] == result.error_names.index("CircuitOpen")
    firsts = result.attempts["attempt"] == 1
    assert breaker["refused"] == int(refused.sum()) > 0
    assert breaker["refused_retries"] == breaker["refused"]  # never a first attempt
    assert not np.any(refused & firsts)
    assert int(np.sum(firsts)) == len(result.calls)  # every call sent its first attempt
    assert doc["settings"]["breaker"]["mode"] == "retries"


def test_a_quotas_refusals_are_the_events(retries_and_quota: Run) -> None:
    result, doc = retries_and_quota
    section = doc["guards"]["budget"]
    times = [e.time for e in result.guard_events if e.kind == "budget_refused"]
    assert section["refused"] == len(times) > 0
    assert (section["kind"], section["scope"]) == ("quota", "client")
    # 10 tokens, 5 a retry, no success to refund any: the quota lets each worker retry twice
    # in all (a retry it allowed is charged even if the breaker then refuses it), then never
    assert np.all(result.calls["outcome"] == rec.GAVE_UP)  # the outage outlasts every call
    retried = result.attempts[result.attempts["attempt"] > 1]
    per_client = np.bincount(result.calls["client"][retried["call"]], minlength=300)
    assert np.all(per_client == 2)
    on_breaker = result.calls["error"] == result.error_names.index("CircuitOpen")
    assert section["refused"] == len(result.calls) - int(on_breaker.sum())  # every other call
    assert doc["settings"]["budget"]["quota_capacity"] == 10


def test_the_header_names_the_mode_and_the_quotas_knobs(retries_and_quota: Run) -> None:
    _, doc = retries_and_quota
    shown = text(report.header(doc, {"breaker.mode": "--set", "budget.kind": "scenario"}))
    assert "breaker on: mode=retries (--set), failure_threshold=2" in shown
    assert "kind=quota (scenario), quota_capacity=10, retry_cost=5, timeout_retry_cost=10" in shown
    assert "success_refund=1" in shown and "max_tokens" not in shown and "percent" not in shown


def test_a_calls_breaker_and_a_ratio_budget_without_allowance_read_as_before() -> None:
    _, doc = simulated(
        "retry-storm",
        {
            "clients.count": 50,
            "duration": 10,
            "policy.breaker.enabled": True,
            "policy.budget.enabled": True,
            "policy.budget.kind": "ratio",
        },
    )
    shown = text(report.header(doc))
    assert "breaker on: failure_threshold=5" in shown and "mode=" not in shown
    assert "kind=ratio, percent=0.2, min_retries_per_second=10.0, window=10.0, scope" in shown
    allowing = dict(doc["settings"]["budget"], initial_allowance=3)
    settings = {**doc["settings"], "budget": allowing}
    later = text(report.header(dict(doc, settings=settings)))  # type: ignore[arg-type]
    assert "window=10.0, initial_allowance=3, scope" in later


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "160", **(env or {})})


def test_compare_takes_the_kinds_and_the_modes_as_variants() -> None:
    result = invoke(
        "compare", "retry-storm", "--set", "clients.count=200", "--set", "duration=40",
        "--set", "policy.budget.enabled=true", "--set", "policy.budget.kind=ratio,quota",
        "--set", "policy.breaker.enabled=true", "--set", "policy.breaker.mode=calls,retries",
        "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["rows"]
    assert [(r["policy.budget.kind"], r["policy.breaker.mode"]) for r in rows] == [
        ("ratio", "calls"),
        ("ratio", "retries"),
        ("quota", "calls"),
        ("quota", "retries"),
    ]
    assert all(r["budget_refused"] is not None for r in rows)
    table = invoke(
        "compare", "retry-storm", "--set", "clients.count=200", "--set", "duration=40",
        "--set", "policy.budget.enabled=true", "--set", "policy.budget.kind=ratio,quota",
    ).stdout  # fmt: skip
    assert "budget.kind=quota" in table and "refused by budget" in table


def test_settings_show_the_new_knobs_and_their_variables() -> None:
    env = {
        "RETRY__API_BREAKER_ENABLED": "true",
        "RETRY__API_BREAKER_MODE": "retries",
        "RETRY__API_BUDGET_ENABLED": "true",
        "RETRY__API_BUDGET_KIND": "quota",
        "RETRY__API_BUDGET_TIMEOUT_RETRY_COST": "20",
        "NO_COLOR": "1",
    }
    doc = json.loads(invoke("settings", "--json", env=env).stdout)
    api = doc["mechanisms"]["api"]
    assert api["breaker"]["mode"] == {
        "value": "retries",
        "source": "env",
        "variable": "RETRY__API_BREAKER_MODE",
    }
    assert api["budget"]["kind"]["value"] == "quota"
    assert api["budget"]["timeout_retry_cost"]["value"] == 20
    for knob, value in (("quota_capacity", 500), ("retry_cost", 5), ("success_refund", 1)):
        assert api["budget"][knob] == {
            "value": value,
            "source": "default",
            "variable": f"RETRY__API_BUDGET_{knob.upper()}",
        }
    assert doc["mechanisms"]["worker"]["budget"]["initial_allowance"]["value"] == 0
    shown = invoke("settings", env=env).stdout
    assert "on (env): mode=retries" in shown and "on (env): kind=quota" in shown
    assert "RETRY__API_BUDGET_TIMEOUT_RETRY_COST" in shown


def test_a_bad_kind_in_the_environment_names_the_variable_and_the_kinds() -> None:
    result = invoke("settings", env={"RETRY__API_BUDGET_KIND": "bucket"})
    assert result.exit_code == 2
    assert "RETRY__API_BUDGET_KIND" in result.stderr and "quota" in result.stderr
