"""Run metrics (``retrysim/results/metrics.py``): behaviour its mutation run found untested.

Each test pins what a user reads off a result document or a metric (the calls that succeeded,
the attempts a breaker kept from the dependency, the sections a tiered, replicated or hedged
run adds, the recovery and the diagnoses, the order of the document's keys, which rows a table
adds) and fails under a mutant of the module that survived the rest of its row. The expected
values come from the run's records or from the section builders the document is made of.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from retrysim.model.scenario import Scenario, parse_scenario
from retrysim.results import metric_table, metrics
from retrysim.results.diagnose import diagnose
from retrysim.results.document import ResultDocument
from retrysim.results.facts import recovery
from retrysim.results.hedging import hedging_section
from retrysim.results.replicas import replicas_section
from retrysim.results.tiers import tiers_section
from retrysim.sim import records as rec
from retrysim.sim.engine import RunResult, simulate
from retrysim.sim.failures import CODE_NAMES, CODES
from tests.test_hedging_engine import hedged


def summary(data: dict[str, Any]) -> tuple[RunResult, ResultDocument]:
    """A run of the scenario ``data`` and its result document."""
    result = simulate(parse_scenario(data))
    return result, metrics.summarize(result)


def breaker_outage() -> dict[str, Any]:
    """Poisson clients through a 10 s outage, a breaker on: it refuses attempts, goodput stays
    low after the outage (a diagnosis fires) and the recovery can be judged."""
    return {
        "name": "breaker-outage",
        "seed": 1,
        "duration": 30,
        "policy": {"operation": "scheduler", "breaker": {"enabled": True}},
        "clients": {"count": 100, "timeout": 2.0, "arrival": {"kind": "poisson", "rate": 20}},
        "service": {"kind": "queue", "concurrency": 50, "queue_limit": 5000, "latency": 0.002},
        "faults": [{"kind": "outage", "start": 5, "end": 15, "error": "ConnectionResetError"}],
    }


def three_tiers() -> Scenario:
    """Users call a gateway that calls a service that calls a slow database (1 s): the
    service gives up on each attempt after 0.5 s and no tier passes its deadline down, so the
    database executes requests nobody waits for any more (wasted work)."""
    tier_policy = {"operation": "api", "max_attempts": 2, "min_wait": 0.125, "max_wait": 0.125}
    return parse_scenario(
        {
            "name": "three-tiers",
            "seed": 4,
            "duration": 10,
            "policy": {"operation": "api", "max_attempts": 1},
            "clients": {"count": 8, "timeout": 0.5, "arrival": {"kind": "burst", "at": 0}},
            "tiers": {
                "gateway": {
                    "policy": tier_policy,
                    "propagate_deadline": False,
                    "service": {"kind": "ideal", "latency": 0.25},
                },
                "service": {
                    "policy": tier_policy,
                    "timeout": 0.5,
                    "propagate_deadline": False,
                    "service": {"kind": "ideal", "latency": 0.125},
                },
                "database": {"service": {"kind": "ideal", "latency": 1.0}},
            },
        }
    )


def timeline_shape(doc: ResultDocument) -> tuple[float, int]:
    """The document's timeline bins: their width and how many there are."""
    return doc["timeline"]["bin_width"], len(doc["timeline"]["goodput_per_s"])


def test_succeeded_counts_the_calls_that_succeeded() -> None:
    """Three of four calls succeeded and one gave up: ``succeeded`` is 3, ``unfinished`` 0 and
    the success rate 3/4 (not the count of calls that did not succeed)."""
    calls = rec.empty_calls(4)
    calls["outcome"] = [rec.SUCCEEDED, rec.SUCCEEDED, rec.GAVE_UP, rec.SUCCEEDED]
    assert metrics.call_counts(calls) == {
        "total": 4,
        "succeeded": 3,
        "failed": 1,
        "unfinished": 0,
        "success_rate": 0.75,
    }


def test_attempts_a_breaker_refused_are_not_sent() -> None:
    """Of three attempts, one refused by a breaker (error CircuitOpen): two were sent."""
    attempts = rec.empty_attempts(3)
    attempts["attempt"] = [1, 2, 3]
    attempts["outcome"] = rec.FAILED
    attempts["error"] = [CODES["ConnectionError"], CODES["CircuitOpen"], CODES["ConnectionError"]]
    calls = rec.empty_calls(1)
    calls["attempts"] = 3
    counts = metrics.attempt_counts(attempts, calls, CODE_NAMES)
    assert (counts["total"], counts["sent"], counts["refused"]) == (3, 2, 1)


def test_a_breaker_run_counts_sent_attempts_from_its_records() -> None:
    """A real run whose breaker refused attempts: the document's ``sent`` is the attempts
    recorded with an error other than CircuitOpen, and ``sent + refused`` is every attempt."""
    result, doc = summary(breaker_outage())
    refused = int(np.count_nonzero(result.attempts["error"] == CODES["CircuitOpen"]))
    assert refused > 0  # the premise: the breaker acted
    assert doc["attempts"]["refused"] == refused
    assert doc["attempts"]["sent"] == len(result.attempts) - refused


def test_a_judged_recovery_and_the_diagnoses_enter_the_document() -> None:
    """A bounded outage under steady Poisson load: the document's ``recovery`` is the judged
    figures (not null) and its ``diagnoses`` are what the rules find in it (some fire)."""
    _, doc = summary(breaker_outage())
    judged = recovery(doc)
    assert judged is not None
    assert doc["recovery"] == judged
    assert judged["ratio"] < 0.5  # goodput stayed low after the outage
    found = diagnose(doc)
    assert found  # the premise: something to diagnose
    assert doc["diagnoses"] == found


def test_diagnoses_are_the_documents_last_key_after_optional_sections() -> None:
    """``retrysim run --json`` prints the document's keys in order: the diagnoses come last,
    after an optional section (here ``guards``, present because a breaker is on)."""
    _, doc = summary(breaker_outage())
    keys = list(doc)
    assert "guards" in keys
    assert keys[-1] == "diagnoses"
    assert keys.index("guards") < keys.index("diagnoses")


def test_a_tiered_run_has_tiers_and_a_graph_summary_of_its_bottom_tier() -> None:
    """Three tiers: the document's ``tiers`` is one section per tier, top first, and ``graph``
    names the bottom tier (the database, not the gateway) with that tier's figures, and the
    requests wasted in all tiers together."""
    result = simulate(three_tiers())
    doc = metrics.summarize(result)
    width, bins = timeline_shape(doc)
    tiers = tiers_section(result, width, bins)
    assert [t["name"] for t in tiers] == ["gateway", "service", "database"]
    assert doc["tiers"] == tiers
    for section, tier in zip(tiers, result.tiers, strict=True):
        assert section["attempts"] == len(tier.attempts)
    bottom = tiers[-1]
    assert doc["graph"] == {
        "bottom": "database",
        "bottom_requests_per_call": bottom["attempts_per_call"],
        "bottom_max_per_call": bottom["max_attempts_per_call"],
        "bottom_peak_over_capacity": bottom["peak_over_capacity"],
        "wasted_requests": sum(t["wasted_attempts"] for t in tiers),
    }
    assert doc["graph"]["wasted_requests"] > 0  # the premise: the timeouts wasted work


def test_a_tiered_run_adds_the_graph_rows_to_a_table() -> None:
    """A table of a tiered run shows the graph rows after the asked ones; one of a single-tier
    run does not."""
    _, flat = summary(breaker_outage() | {"policy": {"operation": "scheduler"}})
    tiered = metrics.summarize(simulate(three_tiers()))
    assert "graph" in tiered and "graph" not in flat
    asked = ["success_rate"]
    assert metrics.table_metrics(asked, [tiered]) == [
        *asked,
        *metric_table.GRAPH_TABLE_METRICS,
    ]
    assert not set(metric_table.GRAPH_TABLE_METRICS) & set(metrics.table_metrics(asked, [flat]))


def test_a_replicated_service_has_a_replicas_section() -> None:
    """Three round-robin replicas: the document's ``replicas`` has one entry per replica with
    the attempts each received, as the records say."""
    result, doc = summary(
        {
            "name": "replicas",
            "seed": 1,
            "duration": 1,
            "policy": {"operation": "api", "max_attempts": 4, "min_wait": 0.01, "max_wait": 0.05},
            "clients": {"count": 100, "timeout": 0.5, "arrival": {"kind": "poisson", "rate": 50}},
            "service": {
                "kind": "queue",
                "concurrency": 2,
                "latency": {"dist": "exponential", "mean": 0.01},
                "replicas": 3,
                "balance": "round_robin",
            },
        }
    )
    per_replica = np.bincount(result.attempts["replica"], minlength=3).tolist()
    assert [r["attempts"] for r in doc["replicas"]] == per_replica
    assert [r["replica"] for r in doc["replicas"]] == [0, 1, 2]
    width, bins = timeline_shape(doc)
    assert doc["replicas"] == replicas_section(result, width, bins)


def test_a_hedged_run_has_a_hedging_section_and_a_hedges_row() -> None:
    """Hedging on: the document's ``hedging`` counts the hedges the records hold, and a table
    of the run adds the ``hedges`` row."""
    result = simulate(hedged(clients=30))
    doc = metrics.summarize(result)
    hedges = int(np.count_nonzero(result.attempts["hedge"] > 0))
    assert hedges > 0  # the premise: some sends were hedges
    hedging = doc["hedging"]
    assert hedging["enabled"] and hedging["hedges"] == hedges
    assert hedging == hedging_section(result)
    assert metrics.table_metrics(["success_rate"], [doc]) == ["success_rate", "hedges"]


def test_higher_is_better_holds_the_metrics_where_more_is_better() -> None:
    """Compare highlights the largest success rates and the smallest latencies: the success
    rates are in HIGHER_IS_BETTER, the latencies and the retry load are not."""
    assert {"success_rate", "retry_success_rate"} <= metrics.HIGHER_IS_BETTER
    assert not {"p99_latency", "p50_latency", "attempts_per_call"} & metrics.HIGHER_IS_BETTER


def test_retries_exactly_100_ms_apart_keep_the_last_one_as_the_last_edge() -> None:
    """Two retries at 0.008 s and 0.108 s (exactly 100 ms apart in floating point): the
    histogram spans them as they are, from the first retry to the last, rather than being
    widened to first + 100 ms (which rounds to a different number here)."""
    attempts = rec.empty_attempts(2)
    attempts["attempt"] = 2
    attempts["start"] = [0.008, 0.108]
    assert 0.108 - 0.008 == 0.1  # the premise: exactly one window apart
    spread = metrics.jitter_spread(attempts, bins=4)
    assert spread["edges"][0] == 0.008
    assert spread["edges"][-1] == 0.108
    assert spread["counts"] == [1, 0, 0, 1]
