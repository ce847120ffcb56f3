"""The hedging estimate, the tail diagnosis, the call graph's one-line section and fault
windows per tier: each checked against what a run actually does."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import retrysim
from retrysim.model.scenario import fault_windows, parse_scenario
from retrysim.results import metrics
from retrysim.results.hedging import hedged_quantile, hedging_section
from retrysim.sim import records as rec
from retrysim.sim.engine import simulate
from tests.test_balance import replicated, run


@settings(max_examples=200, deadline=None)
@given(
    sample=st.lists(st.floats(0.0, 10.0), min_size=5, max_size=60),
    delay=st.floats(0.0, 5.0),
    q=st.sampled_from([0.5, 0.9, 0.99]),
)
def test_the_hedged_quantile_is_the_first_point_where_both_tails_multiply_below_it(
    sample: list[float], delay: float, q: float
) -> None:
    latency = np.sort(np.asarray(sample))
    x = hedged_quantile(latency, delay, q)

    def tail(at: float) -> float:
        above = float(np.mean(latency > at))
        return above * float(np.mean(latency > at - delay))

    assert tail(x) <= 1 - q + 1e-12
    # no earlier candidate qualifies, and a hedge never makes the quantile later
    earlier = [c for c in np.union1d(latency, latency + delay) if c < x]
    assert all(tail(c) > 1 - q for c in earlier)
    assert x <= float(np.quantile(latency, q, method="inverted_cdf")) + 1e-12


def test_the_estimate_agrees_with_simulated_hedging() -> None:
    """The estimate of one hedge at the suggested delay against a run with that hedge on: the
    attempts' (first send to winning answer) p99, within a quarter."""
    scenario = retrysim.load_scenario("hedge-tail")
    section = hedging_section(simulate(scenario))
    assert section is not None and not section["enabled"]
    delay, estimate = section["suggested_delay"], section["estimated_p99"]
    assert delay is not None and estimate is not None
    hedged = simulate(
        scenario.with_overrides({"policy.hedge.enabled": True, "policy.hedge.delay": delay})
    )
    attempts = hedged.attempts
    firsts = attempts[attempts["hedge"] == 0]
    winners = attempts[(attempts["outcome"] == rec.OK)]
    start = {(int(a["call"]), int(a["attempt"])): float(a["start"]) for a in firsts}
    took = [float(w["end"]) - start[(int(w["call"]), int(w["attempt"]))] for w in winners]
    simulated = float(np.quantile(took, 0.99))
    assert abs(simulated - estimate) <= 0.25 * simulated
    assert section["estimated_extra_load"] is not None
    assert abs(hedged_share(hedged) - section["estimated_extra_load"]) < 0.05


def hedged_share(result: Any) -> float:
    hedge = result.attempts["hedge"]
    return float(np.sum(hedge > 0) / np.sum(hedge == 0))


def diagnosis_ids(document: Any) -> list[str]:
    return [d["id"] for d in document["diagnoses"]]


def test_a_tail_one_hedge_would_cut_is_diagnosed_with_the_settings_that_try_it() -> None:
    document = metrics.summarize(simulate(retrysim.load_scenario("hedge-tail")))
    found = [d for d in document["diagnoses"] if d["id"] == "hedge_the_tail"]
    assert len(found) == 1
    sets = [s["set"] for s in found[0]["settings"]]
    assert sets[0] == "policy.hedge.enabled=true"
    assert sets[1].startswith("policy.hedge.delay=")
    assert found[0]["settings"][0]["env"] == "RETRY__API_HEDGE_ENABLED=true"


def test_no_tail_no_hedging_section_and_no_diagnosis() -> None:
    for name in ("thundering-herd", "redis-blip", "api-rate-limit"):
        document = metrics.summarize(simulate(retrysim.load_scenario(name)))
        assert "hedging" not in document, name
        assert "hedge_the_tail" not in diagnosis_ids(document)


def test_hedges_that_rarely_win_are_called_costly() -> None:
    """Every attempt hedged at once against a service with no tail: the hedges double the
    load and almost never answer first."""
    scenario = parse_scenario(
        {
            "name": "costly",
            "duration": 10,
            "policy": {
                "operation": "api",
                "hedge": {"enabled": True, "max_attempts": 3, "delay": 0.0},
            },
            "clients": {"count": 300, "arrival": {"kind": "uniform", "end": 5}},
            "service": {"kind": "ideal", "latency": 0.02},
        }
    )
    document = metrics.summarize(simulate(scenario))
    section = document["hedging"]
    assert section["enabled"] and section["extra_load"] == 2.0
    assert section["won"] == 0  # a constant latency: the first send always answers first
    assert "hedge_the_tail" in diagnosis_ids(document)


STORM_WITH_FAULTS: dict[str, Any] = {
    "name": "graph",
    "duration": 10,
    "policy": {"max_attempts": 3, "min_wait": 0.01, "max_wait": 0.02},
    "clients": {"count": 50, "timeout": 2.0, "arrival": {"kind": "uniform", "end": 5}},
    "tiers": {
        "api": {
            "policy": {"max_attempts": 3, "min_wait": 0.01, "max_wait": 0.02},
            "faults": [{"kind": "flaky", "probability": 0.1, "start": 1}],
        },
        "db": {
            "service": {"kind": "queue", "concurrency": 4, "latency": 0.01, "replicas": 3},
            "faults": [{"kind": "outage", "start": 2, "end": 4, "replicas": [1]}],
        },
    },
}


def test_fault_windows_name_their_tier_and_replicas() -> None:
    scenario = parse_scenario(STORM_WITH_FAULTS)
    assert fault_windows(scenario) == [
        {"index": 0, "kind": "flaky", "start": 1.0, "end": None, "tier": "api"},
        {"index": 0, "kind": "outage", "start": 2.0, "end": 4.0, "tier": "db", "replicas": [1]},
    ]
    one_tier = retrysim.load_scenario("redis-blip")
    assert all("tier" not in w and "replicas" not in w for w in fault_windows(one_tier))


def test_a_tiered_run_has_its_faults_its_baseline_and_its_graph_line() -> None:
    scenario = parse_scenario(STORM_WITH_FAULTS)
    assert scenario.has_faults and not scenario.without_faults().has_faults
    result = simulate(scenario)
    assert result.scenario.tiers  # the run carries the whole call graph
    document = metrics.summarize(result, simulate(scenario.without_faults()))
    assert [w.get("tier") for w in document["faults"]] == ["api", "db"]
    assert document["latency_overhead"] is not None
    graph, bottom = document["graph"], document["tiers"][-1]
    assert graph["bottom"] == bottom["name"] == "db"
    assert graph["bottom_requests_per_call"] == bottom["attempts_per_call"]
    assert graph["bottom_max_per_call"] == 9
    assert graph["wasted_requests"] == sum(t["wasted_attempts"] for t in document["tiers"])


def test_light_load_spreads_evenly_under_every_rule() -> None:
    """At light load most picks are ties: they must not all go to the lowest index."""
    for rule in ("least_outstanding", "power_of_two", "random", "round_robin"):
        result = run(replicated(3, rule, rate=20, duration=50))
        counts = np.bincount(result.attempts["replica"], minlength=3)
        assert counts.min() > 0.8 * counts.mean(), (rule, counts.tolist())


def test_a_graph_saves_every_tier_s_records_with_its_tier_and_parent(tmp_path: Any) -> None:
    import csv

    from retrysim.cli.run_files import write_run_files

    result = simulate(parse_scenario(STORM_WITH_FAULTS))
    write_run_files(tmp_path, metrics.summarize(result), result)
    with (tmp_path / "attempts.csv").open(encoding="utf-8") as f:
        attempts = list(csv.DictReader(f))
    with (tmp_path / "calls.csv").open(encoding="utf-8") as f:
        calls = list(csv.DictReader(f))
    for tier in result.tiers:
        assert sum(row["tier"] == tier.name for row in attempts) == len(tier.attempts)
        parents = [int(row["parent"]) for row in calls if row["tier"] == tier.name]
        assert parents == tier.parents.tolist()
    assert {row["replica"] for row in attempts if row["tier"] == "db"} == {"0", "1", "2"}
