"""Diagnoses: each fires on a small run built to show its problem, with the right evidence and
the right setting to try; none fires on a healthy run; thresholds hold on hand-made documents."""

from __future__ import annotations

import copy
from typing import Any, cast

import pytest

import retrysim
from retrysim.names import MAX_ATTEMPTS_LIMIT
from retrysim.results import diagnose as dg
from retrysim.results.document import ResultDocument


def run_doc(data: dict[str, Any]) -> ResultDocument:
    return retrysim.run(retrysim.parse_scenario(data)).document


def found(doc: ResultDocument) -> dict[str, dict[str, Any]]:
    """Each diagnosis by id, as plain data (its figures are free-form JSON)."""
    return {d["id"]: cast(dict[str, Any], d) for d in doc["diagnoses"]}


def diagnosed(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The diagnoses of a hand-made document (one holding only what the rules read)."""
    return [cast(dict[str, Any], d) for d in dg.diagnose(cast(ResultDocument, doc))]


def queue(concurrency: int = 50) -> dict[str, Any]:
    return {"kind": "queue", "concurrency": concurrency, "queue_limit": 5000, "latency": 0.002}


def blip(start: float, end: float) -> dict[str, Any]:
    return {"kind": "outage", "start": start, "end": end, "error": "ConnectionResetError"}


def test_a_healthy_realistic_run_has_no_diagnoses() -> None:
    doc = run_doc(
        {
            "name": "healthy",
            "duration": 30,
            "policy": {"operation": "scheduler"},
            "clients": {"count": 400, "timeout": 2.0, "arrival": {"kind": "poisson", "rate": 40}},
            "service": queue(),
            "faults": [blip(10, 13)],
        }
    )
    assert doc["calls"]["failed"] == 0 and doc["attempts"]["retries"] > 0  # faults were hidden
    assert doc["diagnoses"] == []


def test_synchronised_retries_suggest_the_documented_profile() -> None:
    doc = run_doc(
        {
            "name": "herd",
            "duration": 5,
            "policy": {"operation": "scheduler", "profile": "bindu"},
            "clients": {"count": 300, "arrival": {"kind": "burst"}},
            "service": queue(),
            "faults": [blip(0, 0.5)],
        }
    )
    d = found(doc)["synchronised_retries"]
    assert d["section"] == "Thundering Herd" and d["severity"] == "high"
    assert d["figures"]["first_retry_peak_share_100ms"] == 1.0  # every first wait is exactly 1 s
    assert "exactly 1 s" in d["evidence"] and "100.0% of first retries" in d["evidence"]
    (setting,) = d["settings"]
    assert setting["option"] == "profile" and setting["value"] == "documented"
    assert setting["env"] == "RETRY__PROFILE=documented"
    assert setting["pinned"]  # the scenario sets the profile: the variable alone would not win
    assert "Staggering instance startup" in d["suggestion"]


def test_load_above_capacity_from_retries_suggests_a_longer_max_wait() -> None:
    doc = run_doc(
        {
            "name": "overload",
            "duration": 10,
            "policy": {"operation": "worker", "max_attempts": 5, "profile": "bindu"},
            "clients": {"count": 300, "arrival": {"kind": "uniform", "start": 0, "end": 5}},
            "service": {"kind": "queue", "concurrency": 1, "latency": 0.02},
            "faults": [blip(0, 5)],
        }
    )
    d = found(doc)["load_above_capacity"]
    ratio = doc["load"]["peak_over_capacity"]
    assert ratio is not None and d["figures"]["peak_over_capacity"] == ratio > 1
    assert d["figures"]["retry_share_at_peak"] >= 0.5
    assert f"capacity of {doc['load']['capacity']:,.0f}/s" in d["evidence"]
    assert [s["set"] for s in d["settings"]] == ["policy.max_wait=20"]
    assert d["settings"][0]["env"] == "RETRY__WORKER_MAX_WAIT=20"
    # One call per client: a per-client retry budget would never act, so none is suggested.
    assert "budget" not in d["suggestion"]


def test_metastable_non_recovery_after_a_spike_suggests_fewer_attempts() -> None:
    data = retrysim.load_scenario("retry-storm").model_dump(mode="python")
    data["duration"] = 60
    doc = run_doc(data)
    d = found(doc)["metastable"]
    assert d["section"] == "Too Many Retries"
    assert d["figures"]["goodput_after"] < 0.5 * d["figures"]["goodput_reference"]
    assert "before the disturbance" in d["evidence"]
    assert [s["env"] for s in d["settings"]] == [
        "RETRY__API_MAX_ATTEMPTS=2",
        "RETRY__API_BUDGET_ENABLED=true",
    ]
    recovery = doc["recovery"]
    assert recovery is not None
    assert recovery["ratio"] == d["figures"]["goodput_after"] / (d["figures"]["goodput_reference"])
    # The prescription works: with it, goodput recovers and the diagnosis is gone.
    data["policy"]["max_attempts"] = 2
    assert "metastable" not in found(run_doc(data))


def test_metastable_retry_budget_prescription_brings_goodput_back() -> None:
    """The suggested budget, as its --set line says, ends the metastable failure: clients that
    keep calling (100 clients, a call every 2.5 s each) soon stop retrying into the overload."""
    data = retrysim.load_scenario("retry-storm").model_dump(mode="python")
    data["duration"], data["clients"]["count"] = 60, 100
    doc = run_doc(data)
    (budget,) = [s for s in found(doc)["metastable"]["settings"] if s["option"] == "budget.enabled"]
    assert budget["set"] == "policy.budget.enabled=true" and budget["value"] is True
    key, _, value = budget["set"].partition("=")
    fixed = retrysim.run(retrysim.parse_scenario(data).with_overrides({key: True})).document
    assert value == "true" and fixed["guards"]["budget"]["refused"] > 0
    assert "metastable" not in found(fixed)
    after, before = fixed["recovery"], doc["recovery"]
    assert after is not None and before is not None
    assert after["ratio"] >= dg.METASTABLE_RATIO > before["ratio"]


def test_overload_of_clients_that_keep_calling_suggests_a_budget_that_cuts_it() -> None:
    data = {
        "name": "steady-overload",
        "duration": 20,
        "policy": {"operation": "worker", "max_attempts": 5, "profile": "bindu"},
        "clients": {"count": 20, "arrival": {"kind": "poisson", "rate": 40}},
        "service": {"kind": "queue", "concurrency": 1, "latency": 0.02},
        "faults": [blip(5, 10)],
    }
    doc = run_doc(data)
    d = found(doc)["load_above_capacity"]
    assert [s["set"] for s in d["settings"]] == ["policy.max_wait=20", "policy.budget.enabled=true"]
    assert d["settings"][1]["env"] == "RETRY__WORKER_BUDGET_ENABLED=true"
    assert "retry budget" in d["suggestion"]
    capped = retrysim.run(
        retrysim.parse_scenario(data).with_overrides({"policy.budget.enabled": True})
    ).document
    assert capped["attempts"]["sent"] < doc["attempts"]["sent"]
    assert capped["load"]["peak_attempts_per_s"] < doc["load"]["peak_attempts_per_s"]
    # Already on: not suggested again.
    again = found(capped).get("load_above_capacity")
    assert again is None or all(s["option"] != "budget.enabled" for s in again["settings"])


def test_errors_the_policy_never_retries() -> None:
    doc = run_doc(
        {
            "name": "5xx",
            "duration": 5,
            "policy": {"operation": "api"},
            "clients": {"count": 200, "arrival": {"kind": "uniform", "start": 0, "end": 4}},
            "service": queue(),
            "faults": [{"kind": "outage", "start": 1, "end": 2, "error": "ServerError"}],
        }
    )
    d = found(doc)["not_retried"]
    assert d["section"] == "Retries Not Working"
    assert d["figures"]["calls"] == doc["final_errors"]["ServerError"] > 0
    assert "ServerError" not in d["figures"]["retried_errors"]
    (setting,) = d["settings"]
    assert setting["option"] == "retry_on" and "ServerError" in setting["value"]
    assert setting["env"] is None  # no variable sets it: the fix is in code or --set


def test_duplicate_executions_point_at_idempotency() -> None:
    doc = retrysim.run(
        retrysim.load_scenario("duplicate-writes").with_overrides({"duration": 10})
    ).document
    d = found(doc)["duplicates"]
    assert d["section"] == "Non-Idempotent Operations"
    assert d["figures"]["duplicates"] == doc["duplicates"] > 0
    assert "idempotent" in d["suggestion"] and "longer client timeout" in d["suggestion"]


def test_waits_longer_than_a_short_outage_suggest_a_smaller_min_wait() -> None:
    doc = run_doc(
        {
            "name": "short blip",
            "duration": 10,
            "policy": {"operation": "scheduler", "min_wait": 3.0},
            "clients": {"count": 300, "arrival": {"kind": "poisson", "rate": 40}},
            "service": queue(),
            "faults": [blip(4, 5)],
        }
    )
    d = found(doc)["waits_past_outage"]
    assert d["figures"]["outage_seconds"] == 1.0 and d["figures"]["first_wait_min"] == 3.0
    assert d["figures"]["mean_wait_past_end"] > 1.0
    assert d["settings"][0]["set"] == "policy.min_wait=0.5"
    assert d["settings"][0]["env"] == "RETRY__SCHEDULER_MIN_WAIT=0.5"


def test_attempts_exhausted_before_the_outage_ended_prescribe_enough_attempts() -> None:
    data: dict[str, Any] = {
        "name": "long outage",
        "duration": 5,
        "policy": {"operation": "scheduler"},
        "clients": {"count": 300, "arrival": {"kind": "burst"}},
        "service": queue(),
        "faults": [blip(0, 20)],
    }
    doc = run_doc(data)
    d = found(doc)["exhausted_during_fault"]
    assert d["figures"]["calls"] == doc["calls"]["failed"] == 300
    assert d["figures"]["worst_case_total_wait"] == 5.0 < d["figures"]["downtime_seconds"] == 20
    assert d["settings"][0]["env"] == "RETRY__SCHEDULER_MAX_ATTEMPTS=6"
    # Three attempts per client never reach a breaker's 5 failures: no breaker is suggested.
    assert [s["option"] for s in d["settings"]] == ["max_attempts"]
    assert "circuit breaker" not in d["suggestion"]
    data["policy"]["max_attempts"] = 6  # the prescription: every call now outlasts the outage
    fixed = run_doc(data)
    assert fixed["calls"]["failed"] == 0 and "exhausted_during_fault" not in found(fixed)


def test_exhausted_clients_that_keep_failing_are_offered_a_breaker_that_fails_fast() -> None:
    """Clients making three calls each through a long outage: a breaker opens after five
    failures and refuses the rest at once, so fewer attempts reach the dead dependency and
    calls that cannot succeed end sooner."""
    data: dict[str, Any] = {
        "name": "long outage, repeat callers",
        "duration": 60,
        "policy": {"operation": "scheduler"},
        "clients": {"count": 200, "arrival": {"kind": "burst"}, "calls_per_client": 3},
        "service": queue(),
        "faults": [blip(0, 40)],
    }
    doc = run_doc(data)
    d = found(doc)["exhausted_during_fault"]
    (breaker,) = [s for s in d["settings"] if s["option"] == "breaker.enabled"]
    assert breaker["env"] == "RETRY__SCHEDULER_BREAKER_ENABLED=true"
    assert breaker["set"] == "policy.breaker.enabled=true"
    assert "circuit breaker" in d["suggestion"]
    fast = retrysim.run(
        retrysim.parse_scenario(data).with_overrides({"policy.breaker.enabled": True})
    ).document
    assert fast["guards"]["breaker"]["opened"] >= 1 and fast["attempts"]["refused"] > 0
    assert fast["attempts"]["sent"] < doc["attempts"]["sent"]
    faster, slower = fast["latency"]["mean"], doc["latency"]["mean"]
    assert faster is not None and slower is not None and faster < slower


# --- thresholds, on tiny hand-made documents ----------------------------------------------------


def tiny() -> dict[str, Any]:
    """A document with nothing wrong in it; each test breaks one thing."""
    return {
        "scenario": "tiny",
        "settings": {
            "operation": "worker",
            "profile": "documented",
            "max_attempts": 3,
            "max_wait": 10.0,
            "jitter": 1.0,
            "overrides": [],
        },
        "calls": {"total": 1000, "succeeded": 1000, "failed": 0, "unfinished": 0},
        "jitter_spread": {
            "retries": 100,
            "peak_share_100ms": 0.1,
            "first_retry_peak_share_100ms": 0.1,
        },
        "load": {"peak_attempts_per_s": 90.0, "capacity": 100.0, "peak_over_capacity": 0.9},
        "timeline": {
            "bin_width": 1.0,
            "attempts_per_s": [[90.0] * 30, [0.0] * 30],
            "goodput_per_s": [10.0] * 30,
        },
        "faults": [{"index": 0, "kind": "outage", "start": 10.0, "end": 12.0}],
        "clients": {
            "count": 1000,
            "calls_per_client": None,
            "arrival": "poisson",
            "offered_rate": 10.0,
            "spikes": [],
            "arrivals_end": 30.0,
        },
        "policy_facts": {
            "retried_errors": ["ConnectionError", "TimeoutError"],
            "wait_ranges": [[1.0, 2.0], [2.0, 3.0], [4.0, 5.0]] + [[8.0, 9.0]] * 9,
            "min_total_wait": 3.0,
            "worst_case_total_wait": 5.0,
        },
        "give_ups": {"not_retried": {}, "during_fault": 0},
        "outages": [
            {"start": 10.0, "end": 12.0, "retried_after_end": 5, "mean_wait_past_end": 0.5}
        ],
        "failures_by_type": {},
        "duplicates": 0,
        "wasted_work": 0,
    }


def ids(doc: dict[str, Any]) -> list[str]:
    return [d["id"] for d in diagnosed(doc)]


def test_the_tiny_document_is_healthy() -> None:
    assert ids(tiny()) == []


@pytest.mark.parametrize(("share", "fires"), [(0.19, False), (0.2, True)])
def test_synchronised_from_a_fifth_of_retries_in_100_ms(share: float, fires: bool) -> None:
    doc = tiny()
    doc["jitter_spread"]["first_retry_peak_share_100ms"] = share
    assert ("synchronised_retries" in ids(doc)) is fires


def test_too_few_retries_say_nothing_about_synchronisation() -> None:
    doc = tiny()
    doc["jitter_spread"].update(retries=19, peak_share_100ms=1.0)
    assert ids(doc) == []


@pytest.mark.parametrize(
    ("ratio", "severity"), [(1.0, None), (1.01, "warning"), (1.49, "warning"), (1.5, "high")]
)
def test_load_above_capacity_severity(ratio: float, severity: str | None) -> None:
    doc = tiny()
    doc["load"]["peak_over_capacity"] = ratio
    got = {d["id"]: d["severity"] for d in diagnosed(doc)}
    assert got.get("load_above_capacity") == severity


@pytest.mark.parametrize(("after", "fires"), [(5.1, False), (4.9, True)])
def test_metastable_below_half_the_goodput_before(after: float, fires: bool) -> None:
    doc = tiny()
    # Outage ends at 12; recovery is judged from 12 + max(5, worst-case wait 5) = 17 s on.
    doc["timeline"]["goodput_per_s"] = [10.0] * 17 + [after] * 13
    assert ("metastable" in ids(doc)) is fires


def test_metastable_says_what_ended_when_and_over_which_window() -> None:
    """The evidence carries every figure a reader needs: what ended last and when, goodput
    after it over which window, and the goodput it is measured against."""
    doc = tiny()
    doc["timeline"]["goodput_per_s"] = [10.0] * 17 + [1.0] * 13
    (d,) = [d for d in diagnosed(doc) if d["id"] == "metastable"]
    assert d["evidence"].startswith(
        "Goodput did not recover after the outage ended at t=12 s: 1.0/s for the last 13 s of "
        "arrivals (t=17–30 s), against 10.0/s before the disturbance began at t=10 s: 10.0% of it."
    )
    assert d["figures"]["recovery_from"] == 17.0 and d["figures"]["recovery_until"] == 30.0
    # a traffic spike ending last is named as one; too early to measure before: the offered rate
    doc["faults"], doc["outages"] = [], []
    doc["clients"]["spikes"] = [{"start": 1.0, "end": 12.0, "rate": 30.0, "base_rate": 10.0}]
    (d,) = [d for d in diagnosed(doc) if d["id"] == "metastable"]
    assert "after the traffic spike ended at t=12 s" in d["evidence"]
    assert "against the 10.0/s offered: 10.0% of it" in d["evidence"]


def test_metastable_names_everything_that_ended_last() -> None:
    doc = tiny()
    doc["timeline"]["goodput_per_s"] = [10.0] * 17 + [0.0] * 13
    doc["faults"].append({"index": 1, "kind": "recovery_ramp", "start": 11.0, "end": 12.0})
    doc["clients"]["spikes"] = [{"start": 11.0, "end": 12.0, "rate": 30.0, "base_rate": 10.0}]
    (d,) = [d for d in diagnosed(doc) if d["id"] == "metastable"]
    ended = "after the outage, the recovery ramp and the traffic spike ended at t=12 s"
    assert ended in d["evidence"]


def test_metastable_needs_a_steady_load_to_recover_to() -> None:
    doc = tiny()
    doc["timeline"]["goodput_per_s"] = [10.0] * 17 + [0.0] * 13
    doc["clients"]["arrival"] = "burst"  # goodput falls because the calls ran out
    assert ids(doc) == []


def test_waits_past_outage_only_when_the_first_wait_outlasts_it() -> None:
    doc = tiny()
    doc["policy_facts"]["wait_ranges"][0] = [2.0, 3.0]  # == the outage: a call can just make it
    assert ids(doc) == []
    doc["policy_facts"]["wait_ranges"][0] = [2.5, 3.0]
    (d,) = diagnosed(doc)
    assert d["id"] == "waits_past_outage" and d["settings"][0]["value"] == 1.0


@pytest.mark.parametrize(("calls", "severity"), [(9, "warning"), (10, "high")])
def test_high_severity_from_one_percent_of_calls(calls: int, severity: str) -> None:
    doc = tiny()
    doc["give_ups"]["during_fault"] = calls
    (d,) = diagnosed(doc)
    assert d["id"] == "exhausted_during_fault" and d["severity"] == severity


@pytest.mark.parametrize(("unfinished", "severity"), [(9, "warning"), (10, "high")])
def test_unfinished_calls_are_a_problem_high_from_one_percent(
    unfinished: int, severity: str
) -> None:
    doc = tiny()
    doc["calls"].update(succeeded=1000 - unfinished, unfinished=unfinished)
    (d,) = diagnosed(doc)
    assert d["id"] == "unfinished_calls" and d["severity"] == severity
    assert d["section"] == dg.TOO_MANY and d["settings"] == []
    assert d["figures"] == {"unfinished": unfinished, "calls": 1000, "share": unfinished / 1000}
    assert d["evidence"].startswith(f"{unfinished} of 1,000 calls ({unfinished / 10:.1f}%)")
    assert "limits.max_time" in d["suggestion"]


def test_unfinished_calls_of_a_real_run_point_at_the_fleet_size() -> None:
    """The issue's run: 10,000 real clients in one process, 8,057 calls cut off, 0% success."""
    doc = tiny()
    doc["mode"] = "real"
    doc["clients"]["count"] = 10_000
    doc["calls"].update(total=30_000, succeeded=0, failed=21_943, unfinished=8_057)
    d = next(d for d in diagnosed(doc) if d["id"] == "unfinished_calls")
    assert d["severity"] == "high"
    assert d["evidence"].startswith("8,057 of 30,000 calls (26.9%) neither succeeded")
    assert "10,000 clients on one process" in d["evidence"]
    assert "--set clients.count=N" in d["suggestion"]
    from retrysim.render.verdict import verdict

    doc["diagnoses"] = dg.diagnose(cast(ResultDocument, doc))
    doc["jitter_spread"]["first_retry_peak_share_100ms"] = None
    line = verdict(cast(ResultDocument, doc))
    assert "8,057 unfinished" in line and "no problems found" not in line
    assert "problem found (below)" in line or "problems found (below)" in line


def test_a_simulation_cut_off_by_its_time_limit_says_why_calls_are_unfinished() -> None:
    doc = run_doc(
        {
            "name": "cut-off",
            "duration": 5,
            "policy": {"operation": "worker", "max_attempts": 5, "min_wait": 1.0},
            "clients": {"count": 100, "arrival": {"kind": "uniform", "end": 5}},
            "faults": [blip(0, 100)],
            "limits": {"max_time": 6},
        }
    )
    assert doc["stopped"] and doc["calls"]["unfinished"] > 0
    d = found(doc)["unfinished_calls"]
    assert f"{doc['calls']['unfinished']:,} of 100 calls" in d["evidence"]
    assert f"The run stopped early: {doc['stopped']}." in d["evidence"]
    assert "limits.max_time" in d["suggestion"]


def test_attempts_to_outlast_count_the_shortest_waits() -> None:
    ranges = [[1.0, 2.0], [2.0, 3.0], [4.0, 5.0], [8.0, 9.0]]
    assert dg._attempts_to_outlast(ranges, 3.0) == 3  # waits of at least 1 + 2
    assert dg._attempts_to_outlast(ranges, 3.5) == 4
    assert dg._attempts_to_outlast(ranges, 31.0) == 7  # 15 s in 5 attempts, then 8 s more each
    assert dg._attempts_to_outlast([[0.0, 0.0]], 5.0) == MAX_ATTEMPTS_LIMIT


def test_a_pinned_option_is_flagged_and_globals_have_no_operation() -> None:
    doc = tiny()
    doc["settings"]["overrides"] = ["max_attempts"]
    assert dg.suggest(cast(ResultDocument, doc), "max_attempts", 6) == dg.Suggestion(
        "max_attempts", 6, "RETRY__WORKER_MAX_ATTEMPTS=6", "policy.max_attempts=6", True
    )
    assert dg.suggest(cast(ResultDocument, doc), "jitter", 2.0).env == "RETRY__JITTER=2"
    assert dg.suggest(cast(ResultDocument, doc), "max_delay", 30.0).env is None


def test_an_old_document_without_the_facts_is_not_diagnosed_by_guesswork() -> None:
    doc = copy.deepcopy(tiny())
    del doc["policy_facts"], doc["give_ups"]
    doc["load"]["peak_over_capacity"] = 2.0  # needs no facts: still found
    assert ids(doc) == ["load_above_capacity"]


def test_every_rule_is_registered_once_with_a_guide_section() -> None:
    assert len({r.id for r in dg.RULES}) == len(dg.RULES) == 11
    assert {r.section for r in dg.RULES} == {
        dg.TOO_MANY,
        dg.NOT_WORKING,
        dg.HERD,
        dg.NON_IDEMPOTENT,
    }
