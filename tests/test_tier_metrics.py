"""A call graph's figures (``tiers``) and replicas' (``replicas``): on hand-made records whose
values are worked out by hand, against theory (amplification under total failure is the product
of every layer's attempts), and on small simulated runs (wasted work with and without deadline
propagation; the diagnoses on both sides of their thresholds; the document's round trip)."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import retrysim
from retrysim.model.scenario import parse_scenario
from retrysim.results import document as rd
from retrysim.results.document import ResultDocument, from_json, to_json
from retrysim.results.replicas import per_replica, same_replica_retry
from retrysim.results.tiers import tiers_section, user_calls_of, wasted_masks
from retrysim.sim import records as rec
from retrysim.sim.failures import CODE_NAMES, CODES
from retrysim.sim.result import RunResult, TierRun

NAN = math.nan
FAILED, OK, TIMED_OUT = rec.FAILED, rec.OK, rec.TIMED_OUT


def attempts_of(rows: list[tuple[int, int, float, float, int]]) -> np.ndarray:
    """Attempt records from (call, attempt, start, end, outcome) rows."""
    a = rec.empty_attempts(len(rows))
    a["wait"] = NAN
    for i, (call, number, start, end, outcome) in enumerate(rows):
        a["call"][i], a["attempt"][i], a["start"][i], a["end"][i] = call, number, start, end
        a["outcome"][i] = outcome
        a["error"][i] = 0 if outcome == OK else CODES["ConnectionError"]
    return a


def calls_of(outcomes: list[int]) -> np.ndarray:
    c = rec.empty_calls(len(outcomes))
    c["call"] = np.arange(len(outcomes))
    c["outcome"] = outcomes
    return c


def tier(
    name: str, attempts: np.ndarray, calls: np.ndarray, parents: list[int], **kw: Any
) -> TierRun:
    return TierRun(
        name=name,
        attempts=attempts,
        calls=calls,
        parents=np.asarray(parents, dtype=np.int64),
        capacity=kw.get("capacity"),
        replicas=1,
        timeout=None,
        policy=kw.get("policy", {"max_attempts": 3}),
        engine="fast",
    )


# Three tiers, two user calls.
# Top (clients -> gateway): call 0 tries at 0 (times out at 1.0) and 1.5 (ok at 2.0); call 1
# tries once, 0.2 -> 0.5 ok.
TOP = attempts_of([(0, 1, 0.0, 1.0, TIMED_OUT), (0, 2, 1.5, 2.0, OK), (1, 1, 0.2, 0.5, OK)])
# Middle: call i serves top row i. Row 2 starts at 1.0, the very instant its request timed
# out above: wasted. Row 3 serves the retry; rows 4-5 the second user call.
MIDDLE = attempts_of(
    [
        (0, 1, 0.1, 0.6, FAILED),
        (0, 2, 0.8, 1.2, FAILED),
        (0, 3, 1.0, 1.3, OK),
        (1, 1, 1.6, 1.9, OK),
        (2, 1, 0.3, 0.4, FAILED),
        (2, 2, 0.45, 0.5, OK),
    ]
)
# Bottom: call 0 serves middle row 1 (still open until 1.2), whose own request above was given
# up at 1.0 (a timeout): the attempt at 1.1 is wasted, the one at 0.9 is not. Call 1 serves
# middle row 5, which ended normally at 0.5: an attempt starting at 0.5 itself is not wasted
# (nothing is given up at an answer's instant), one at 0.55 is.
BOTTOM = attempts_of(
    [
        (0, 1, 0.9, 1.0, FAILED),
        (0, 2, 1.1, 1.15, OK),
        (1, 1, 0.5, 0.52, FAILED),
        (1, 2, 0.55, 0.6, OK),
    ]
)


def graph() -> list[TierRun]:
    return [
        tier("gateway", TOP, calls_of([OK, OK]), [-1, -1], policy={"max_attempts": 2}),
        tier("service", MIDDLE, calls_of([OK, OK, OK]), [0, 1, 2], capacity=2.0),
        tier(
            "database",
            BOTTOM,
            calls_of([OK, OK]),
            [1, 5],
            policy={"max_attempts": 3, "rate_limited": {"max_attempts": 5}},
        ),
    ]


def result_of(tiers: list[TierRun]) -> RunResult:
    scenario = parse_scenario({"name": "hand", "duration": 3})
    return RunResult(
        scenario=scenario,
        seed=0,
        policy={},
        attempts=tiers[0].attempts,
        calls=tiers[0].calls,
        end_time=3.0,
        events=0,
        wall_time=0.0,
        capacity=None,
        tiers=tiers,
    )


def test_wasted_requests_are_those_started_after_someone_above_gave_up() -> None:
    top, middle, bottom = wasted_masks(graph(), CODE_NAMES)
    assert not top.any()  # the clients' own requests serve nobody above
    assert middle.tolist() == [False, False, True, False, False, False]
    assert bottom.tolist() == [False, True, False, True]


def test_each_request_knows_the_user_call_it_was_made_for() -> None:
    top, middle, bottom = user_calls_of(graph())
    assert top.tolist() == [0, 0, 1]
    assert middle.tolist() == [0, 0, 0, 0, 1, 1]
    assert bottom.tolist() == [0, 0, 1, 1]


def test_the_tiers_section_by_hand() -> None:
    gateway, service, database = tiers_section(result_of(graph()), width=1.0, bins=3)
    assert [t["name"] for t in (gateway, service, database)] == ["gateway", "service", "database"]
    assert [t["attempts"] for t in (gateway, service, database)] == [3, 6, 4]
    assert [t["attempts_per_call"] for t in (gateway, service, database)] == [1.5, 3.0, 2.0]
    # each layer's limit, multiplied down: 2, 2 x 3, 2 x 3 x 5 (a family's own limit counts)
    assert [t["max_attempts_per_call"] for t in (gateway, service, database)] == [2, 6, 30]
    assert [t["caller_max_attempts"] for t in (gateway, service, database)] == [2, 3, 5]
    assert [t["peak_per_call"] for t in (gateway, service, database)] == [2, 4, 2]
    assert [t["wasted_attempts"] for t in (gateway, service, database)] == [0, 1, 2]
    assert service["wasted_share"] == 1 / 6 and database["wasted_share"] == 0.5
    assert [t["policy_key"] for t in (gateway, service, database)] == [
        "policy",
        "tiers.gateway.policy",
        "tiers.service.policy",
    ]
    # the middle's busiest second holds the four starts before 1.0, against 2/s
    assert service["peak_attempts_per_s"] == 4.0 and service["peak_over_capacity"] == 2.0
    assert gateway["peak_over_capacity"] is None
    timeline = service["timeline"]
    assert timeline["attempts_per_s"][0] == [2.0, 1.0, 0.0]  # first tries per bin
    assert timeline["attempts_per_s"][1] == [2.0, 0.0, 0.0]  # retry 1
    assert timeline["attempts_per_s"][2] == [0.0, 1.0, 0.0]  # retry 2
    assert len(timeline["goodput_per_s"]) == 3


def test_a_policy_without_a_fixed_attempt_count_has_no_bound_below_it() -> None:
    tiers = graph()
    tiers[1].policy = {"max_attempts": 3, "custom": {"attempts_limited": False}}
    gateway, service, database = tiers_section(result_of(tiers), width=1.0, bins=3)
    assert gateway["max_attempts_per_call"] == 2
    assert service["max_attempts_per_call"] is None and database["max_attempts_per_call"] is None


def test_per_replica_counts_failures_and_retries_back_to_the_same_host() -> None:
    rows = attempts_of(
        [
            (0, 2, 0.5, 0.6, OK),  # rows out of call order on purpose
            (0, 1, 0.0, 0.1, FAILED),
            (1, 1, 0.2, 1.2, TIMED_OUT),
            (1, 2, 1.5, 1.6, FAILED),
            (1, 3, 2.0, 2.1, OK),
            (2, 1, 0.3, 0.4, OK),
            (2, 2, 2.5, 2.6, OK),  # after an ok attempt: not a retry after failing
        ]
    )
    rows["replica"] = [0, 0, 1, 1, 0, 2, 2]
    assert same_replica_retry(rows).tolist() == [True, False, False, True, False, False, False]
    received, failed, again, series = per_replica(rows, 3, width=1.0, bins=2)
    assert received.tolist() == [3, 2, 2] and failed.tolist() == [1, 2, 0]
    assert again.tolist() == [1, 1, 0]
    # starts: replica 0 at 0.5, 0.0, 2.0 (the last bin takes what comes later)
    assert series.tolist() == [[2, 1], [1, 1], [1, 1]]


# --- simulated runs ----------------------------------------------------------------------------

FAIL_ALWAYS = {"kind": "outage", "start": 0, "end": 1000, "error": "ConnectionError"}
QUICK = {"operation": "api", "min_wait": 0.001, "max_wait": 0.002}


def chain(attempts: list[int], **top: Any) -> dict[str, Any]:
    """Clients retrying ``attempts[0]`` times down a chain of ``len(attempts)`` tiers, each but
    the last retrying the next one ``attempts[i]`` times; the last tier always fails."""
    names = ["gateway", "service", "database"][-len(attempts) :]
    tiers: dict[str, Any] = {
        name: {"service": {"kind": "ideal", "latency": 0.001}} for name in names
    }
    for name, limit in zip(names, attempts[1:], strict=False):
        tiers[name]["policy"] = {**QUICK, "max_attempts": limit}
    tiers[names[-1]]["faults"] = [FAIL_ALWAYS]
    return {
        "name": "chain",
        "duration": 2,
        "policy": {**QUICK, "max_attempts": attempts[0]},
        "clients": {"count": 4, **top},
        "tiers": tiers,
    }


def run_doc(data: dict[str, Any], **sets: Any) -> ResultDocument:
    scenario = parse_scenario(data)
    if sets:
        scenario = scenario.with_overrides(sets)
    return retrysim.run(scenario).document


def ids(doc: ResultDocument) -> set[str]:
    return {d["id"] for d in doc["diagnoses"]}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(1, 4), min_size=2, max_size=3))
def test_under_total_failure_the_bottom_sees_the_product_of_every_layers_attempts(
    attempts: list[int],
) -> None:
    doc = run_doc(chain(attempts))
    product = math.prod(attempts)
    bottom = doc["tiers"][-1]
    assert bottom["attempts_per_call"] == product  # every user call went all the way down
    assert bottom["max_attempts_per_call"] == product == bottom["peak_per_call"]
    assert bottom["attempts"] == product * doc["calls"]["total"]
    partial = [math.prod(attempts[: k + 1]) for k in range(len(attempts))]
    assert [t["attempts_per_call"] for t in doc["tiers"]] == partial
    retrying = sum(1 for n in attempts if n > 1)
    assert ("retry_amplification" in ids(doc)) == (retrying >= 2)


def test_the_amplification_diagnosis_says_the_product_and_prescribes_one_tier() -> None:
    doc = run_doc(chain([3, 3, 3]))
    (found,) = [d for d in doc["diagnoses"] if d["id"] == "retry_amplification"]
    assert "Retries at 3 tiers" in found["evidence"]
    assert "up to 27 database requests per user call; 27.0 in this run" in found["evidence"]
    sets = [s["set"] for s in found["settings"]]
    assert sets == [
        "tiers.gateway.policy.max_attempts=1",
        "tiers.service.policy.max_attempts=1",
        "tiers.gateway.policy.budget.enabled=true",
        "tiers.service.policy.budget.enabled=true",
    ]  # nothing was wasted (no timeouts): no deadline to propagate
    assert found["figures"]["together"] == [sets[:2], sets[2:]]
    assert all(s["env"] is None for s in found["settings"])
    # the prescription works: one layer retrying, the database sees 3 per user call
    fixed = run_doc(chain([3, 3, 3]), **{s["option"]: s["value"] for s in found["settings"][:2]})
    assert fixed["tiers"][-1]["attempts_per_call"] == 3.0
    assert "retry_amplification" not in ids(fixed)


def test_amplification_is_not_diagnosed_when_nothing_failed() -> None:
    data = chain([3, 3, 3])
    del data["tiers"]["database"]["faults"]
    doc = run_doc(data)
    assert doc["tiers"][-1]["attempts_per_call"] == 1.0
    assert "retry_amplification" not in ids(doc)


def test_a_lower_tier_with_a_budget_already_is_not_told_to_add_one() -> None:
    data = chain([3, 3, 3])
    data["tiers"]["gateway"]["policy"]["budget"] = {"enabled": True}
    doc = run_doc(data)
    (found,) = [d for d in doc["diagnoses"] if d["id"] == "retry_amplification"]
    assert "tiers.gateway.policy.budget.enabled=true" not in [s["set"] for s in found["settings"]]
    assert "tiers.service.policy.budget.enabled=true" in [s["set"] for s in found["settings"]]


def abandoned(propagate: bool) -> dict[str, Any]:
    """Users wait 50 ms for each of two attempts; the gateway retries the failing database
    every 40 ms up to 6 times (200 ms): after the user's timeout, its retries serve no one."""
    return {
        "name": "abandoned",
        "duration": 2,
        "policy": {**QUICK, "max_attempts": 2},
        "clients": {"count": 5, "timeout": 0.05},
        "tiers": {
            "gateway": {
                "policy": {
                    "operation": "api",
                    "max_attempts": 6,
                    "min_wait": 0.04,
                    "max_wait": 0.04,
                    "jitter": 0,
                },
                "propagate_deadline": propagate,
                "service": {"kind": "ideal", "latency": 0.001},
            },
            "database": {"service": {"kind": "ideal", "latency": 0.001}, "faults": [FAIL_ALWAYS]},
        },
    }


def test_wasted_work_is_zero_with_deadline_propagation_and_not_without() -> None:
    kept = run_doc(abandoned(propagate=False))
    cut = run_doc(abandoned(propagate=True))
    database = kept["tiers"][-1]
    assert database["wasted_attempts"] > 0 and not database["propagates_deadline"]
    assert database["wasted_share"] == database["wasted_attempts"] / database["attempts"]
    assert cut["tiers"][-1]["wasted_attempts"] == 0 and cut["tiers"][-1]["propagates_deadline"]
    assert cut["tiers"][-1]["attempts"] < database["attempts"]
    # only the run that wasted work is told to propagate the deadline
    found = {d["id"]: d for d in kept["diagnoses"]}["retry_amplification"]
    assert "tiers.gateway.propagate_deadline=true" in [s["set"] for s in found["settings"]]
    assert "nobody waited for" in found["evidence"]


def replicated(other_host: bool, sick: bool = True) -> dict[str, Any]:
    fault = {"kind": "outage", "start": 0, "end": 1000, "error": "ConnectionError", "replicas": [2]}
    return {
        "name": "replicas",
        "duration": 3,
        "policy": {**QUICK, "max_attempts": 3, "retry_other_host": other_host},
        "clients": {"count": 200, "arrival": {"kind": "poisson", "rate": 100}},
        "service": {"kind": "ideal", "latency": 0.005, "replicas": 5, "balance": "random"},
        "faults": [fault] if sick else [],
    }


def test_retries_back_to_a_sick_replica_prescribe_another_host() -> None:
    doc = run_doc(replicated(other_host=False))
    replicas = doc["replicas"]
    assert [r["replica"] for r in replicas] == [0, 1, 2, 3, 4]
    assert all(r["tier"] is None and r["policy_key"] == "policy" for r in replicas)
    assert replicas[2]["failure_rate"] == 1.0 and replicas[2]["same_replica_retries"] > 0
    assert all(r["failed"] == 0 for k, r in enumerate(replicas) if k != 2)
    assert sum(r["attempts"] for r in replicas) == doc["attempts"]["sent"]
    assert all(len(r["attempts_per_s"]) == len(doc["timeline"]["goodput_per_s"]) for r in replicas)
    (found,) = [d for d in doc["diagnoses"] if d["id"] == "retries_to_a_sick_replica"]
    assert "Replica 2 of the service failed 100.0%" in found["evidence"]
    assert [s["set"] for s in found["settings"]] == ["policy.retry_other_host=true"]


def test_no_sick_replica_diagnosis_when_retries_avoid_it_or_all_are_healthy() -> None:
    avoided = run_doc(replicated(other_host=True))
    assert avoided["replicas"][2]["same_replica_retries"] == 0
    assert "retries_to_a_sick_replica" not in ids(avoided)
    healthy = run_doc(replicated(other_host=False, sick=False))
    assert "retries_to_a_sick_replica" not in ids(healthy)


def test_a_tiers_replicas_are_named_by_tier_with_that_tiers_policy_key() -> None:
    data = chain([1, 3])
    data["tiers"]["database"]["service"]["replicas"] = 2
    data["tiers"]["database"]["faults"] = [{**FAIL_ALWAYS, "replicas": [1]}]
    doc = run_doc(data)
    assert [(r["tier"], r["replica"]) for r in doc["replicas"]] == [
        ("database", 0),
        ("database", 1),
    ]
    assert {r["policy_key"] for r in doc["replicas"]} == {"tiers.service.policy"}


def test_a_one_tier_document_has_neither_section() -> None:
    doc = run_doc({"name": "plain", "duration": 1, "clients": {"count": 3}})
    assert "tiers" not in doc and "replicas" not in doc


def test_a_graph_document_round_trips_through_its_json_schema() -> None:
    data = chain([2, 2, 3])
    data["tiers"]["database"]["service"]["replicas"] = 3
    doc = run_doc(data)
    assert doc["schema_version"] == rd.SCHEMA_VERSION == 6
    text = to_json(doc)
    loaded = from_json(text, "graph.json")
    assert loaded == json.loads(text) and "tiers" in loaded and "replicas" in loaded
    broken = json.loads(text)
    broken["tiers"][0]["surprise"] = 1
    try:
        from_json(json.dumps(broken), "graph.json")
    except rd.DocumentError as error:
        assert "tiers.0.surprise" in str(error)
    else:
        raise AssertionError("an undeclared tier key was accepted")
    schema = rd.json_schema()
    assert {"tiers", "replicas"} <= set(schema["properties"]) - set(schema["required"])


def test_a_version_4_document_reads_as_version_5_unchanged() -> None:
    doc = run_doc({"name": "plain", "duration": 1, "clients": {"count": 3}})
    old = json.loads(to_json(doc))
    old["schema_version"] = 4
    loaded = from_json(json.dumps(old), "old.json")
    assert to_json(loaded) == to_json(doc)
