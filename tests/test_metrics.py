"""Every metric on tiny hand-made records (expected values worked out by hand), plus laws."""

from __future__ import annotations

import math
from typing import Any, cast

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from retrysim.model.scenario import parse_scenario
from retrysim.results import metric_table, metrics
from retrysim.results.document import ResultDocument
from retrysim.results.sections import Latency
from retrysim.sim import records as rec
from retrysim.sim.engine import RunResult, simulate
from retrysim.sim.failures import CODE_NAMES, CODES

NAN = math.nan


def make_attempts(rows: list[dict[str, Any]]) -> np.ndarray:
    a = rec.empty_attempts(len(rows))
    a["end"] = NAN
    a["wait"] = NAN
    for i, row in enumerate(rows):
        for key, value in row.items():
            a[key][i] = value
    return a


def make_calls(rows: list[dict[str, Any]]) -> np.ndarray:
    c = rec.empty_calls(len(rows))
    c["call"] = np.arange(len(rows))
    c["end"] = NAN
    for i, row in enumerate(rows):
        for key, value in row.items():
            c[key][i] = value
    return c


# Three calls:
#   call 0: succeeded first time, 0 -> 1
#   call 1: failed (ConnectionError) at 0, waited 1, timed out 1 -> 3 (executed later), waited 2,
#           succeeded 5 -> 5.5
#   call 2: refused (OSError) at 2, waited 0.5, refused again at 2.5 and gave up
#   call 3: still open (unfinished) since 4
ATTEMPTS = make_attempts(
    [
        {"call": 0, "attempt": 1, "start": 0.0, "end": 1.0, "outcome": rec.OK, "executed": 1},
        {
            "call": 1,
            "attempt": 1,
            "start": 0.0,
            "end": 0.0,
            "wait": 1.0,
            "outcome": rec.FAILED,
            "error": CODES["ConnectionError"],
        },
        {
            "call": 1,
            "attempt": 2,
            "start": 1.0,
            "end": 3.0,
            "wait": 2.0,
            "outcome": rec.TIMED_OUT,
            "error": CODES["TimeoutError"],
            "executed": 1,
        },
        {"call": 1, "attempt": 3, "start": 5.0, "end": 5.5, "outcome": rec.OK, "executed": 1},
        {
            "call": 2,
            "attempt": 1,
            "start": 2.0,
            "end": 2.0,
            "wait": 0.5,
            "outcome": rec.FAILED,
            "error": CODES["OSError"],
        },
        {
            "call": 2,
            "attempt": 2,
            "start": 2.5,
            "end": 2.5,
            "outcome": rec.FAILED,
            "error": CODES["OSError"],
        },
        {"call": 3, "attempt": 1, "start": 4.0, "outcome": rec.OPEN},
    ]
)
CALLS = make_calls(
    [
        {"start": 0.0, "end": 1.0, "attempts": 1, "outcome": rec.SUCCEEDED, "executions": 1},
        {"start": 0.0, "end": 5.5, "attempts": 3, "outcome": rec.SUCCEEDED, "executions": 2},
        {
            "start": 2.0,
            "end": 2.5,
            "attempts": 2,
            "outcome": rec.GAVE_UP,
            "error": CODES["OSError"],
        },
        {"client": 3, "start": 4.0, "attempts": 1, "outcome": rec.UNFINISHED},
    ]
)


def test_call_counts() -> None:
    assert metrics.call_counts(CALLS) == {
        "total": 4,
        "succeeded": 2,
        "failed": 1,
        "unfinished": 1,
        "success_rate": 0.5,
    }
    assert metrics.call_counts(rec.empty_calls())["success_rate"] is None


def test_attempt_counts() -> None:
    assert metrics.attempt_counts(ATTEMPTS, CALLS) == {
        "total": 7,
        "retries": 3,  # attempts numbered 2 or more
        "retry_rate": 0.5,  # calls 1 and 2 of 4 needed a retry
        "mean_per_call": 7 / 4,
        "max_per_call": 3,
        "sent": 7,  # no breaker refused any
        "refused": 0,
    }
    empty = metrics.attempt_counts(rec.empty_attempts(), rec.empty_calls())
    assert empty["mean_per_call"] is None and empty["max_per_call"] == 0


def test_retry_success_rate() -> None:
    assert metrics.retry_success_rate(CALLS) == 0.5  # of the 2 retried calls, 1 succeeded
    assert metrics.retry_success_rate(CALLS[:1]) is None  # nobody retried


def test_latency_of_finished_calls() -> None:
    # finished calls took 1.0, 5.5 and 0.5 s; the unfinished one is left out
    values = sorted(metrics.call_latencies(CALLS).tolist())
    assert values == [0.5, 1.0, 5.5]
    lat = metrics.latency(CALLS)
    assert lat["mean"] == pytest.approx(7 / 3)
    assert lat["max"] == 5.5
    # linear interpolation between order statistics: rank p/100 * (n - 1)
    assert lat["p50"] == 1.0
    assert lat["p95"] == pytest.approx(1.0 + 0.9 * 4.5)
    assert lat["p99"] == pytest.approx(1.0 + 0.98 * 4.5)
    none = metrics.latency(rec.empty_calls())
    assert set(none.values()) == {None}


def test_latency_quantiles_is_a_cdf() -> None:
    q = metrics.latency_quantiles(CALLS)
    assert len(q) == 101 and q[0] == 0.5 and q[-1] == 5.5 and q[50] == 1.0
    assert q == sorted(q)
    assert metrics.latency_quantiles(rec.empty_calls()) == []


def test_latency_overhead_subtracts_percentiles() -> None:
    a: Latency = {"mean": 3.0, "p50": 2.0, "p95": 5.0, "p99": 9.0, "max": 12.0}
    b: Latency = {"mean": 2.0, "p50": 1.5, "p95": 5.0, "p99": None, "max": 10.0}
    assert metrics.latency_overhead(a, b) == {"p50": 0.5, "p95": 0.0, "p99": None, "max": 2.0}
    # A summary without max (cached before max was added) gives None for it, not an error.
    old = cast(Latency, {"p50": 1.5, "p95": 5.0, "p99": 9.0})
    assert metrics.latency_overhead(a, old)["max"] is None


def test_retry_wait() -> None:
    assert metrics.retry_wait(ATTEMPTS, CALLS) == {"total": 3.5, "mean_per_call": 3.5 / 4}
    assert metrics.retry_wait(rec.empty_attempts(), rec.empty_calls()) == {
        "total": 0.0,
        "mean_per_call": None,
    }


def test_failures_by_type_and_final_errors() -> None:
    assert metrics.failures_by_type(ATTEMPTS, CODE_NAMES) == {
        "ConnectionError": 1,
        "TimeoutError": 1,
        "OSError": 2,
    }
    assert metrics.final_errors(CALLS, CODE_NAMES) == {"OSError": 1}


def test_load_peak_per_second_and_amplification() -> None:
    # starts 0, 0, 1, 5, 2, 2.5, 4 -> seconds [0,1): 2, [1,2): 1, [2,3): 2, [4,5): 1, [5,6): 1
    assert metrics.load(ATTEMPTS, CALLS, capacity=4.0) == {
        "peak_attempts_per_s": 2.0,
        "amplification": 7 / 4,
        "capacity": 4.0,
        "peak_over_capacity": 0.5,
    }
    assert metrics.load(ATTEMPTS, CALLS, None)["peak_over_capacity"] is None
    empty = metrics.load(rec.empty_attempts(), rec.empty_calls(), None)
    assert empty["peak_attempts_per_s"] == 0.0 and empty["amplification"] is None


@given(st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=80))
def test_load_peak_matches_a_brute_force_count(starts: list[float]) -> None:
    a = make_attempts([{"start": s, "attempt": 1} for s in starts])
    per_second: dict[int, int] = {}
    for s in starts:
        per_second[math.floor(s)] = per_second.get(math.floor(s), 0) + 1
    peak = metrics.load(a, make_calls([{}]), None)["peak_attempts_per_s"]
    assert peak == max(per_second.values())


def test_duplicates_and_wasted_work() -> None:
    assert metrics.duplicates(CALLS) == 1  # call 1 executed twice
    # executed but not answered OK to the client: call 1's timed-out attempt 2
    assert metrics.wasted_work(ATTEMPTS) == 1


def test_retry_starts_are_sorted_retries_only() -> None:
    assert metrics.retry_starts(ATTEMPTS).tolist() == [1.0, 2.5, 5.0]


def test_peak_window_share_by_hand() -> None:
    assert metrics.peak_window_share(np.array([])) is None
    assert metrics.peak_window_share(np.array([3.0])) == 1.0
    # 0, 0.05, 0.099 lie within 100 ms of 0; 0.25 and 0.9 are alone
    times = np.array([0.9, 0.0, 0.099, 0.25, 0.05])
    assert metrics.peak_window_share(times) == 3 / 5
    # a sliding window: 0.15, 0.2, 0.24 share a window even though they straddle 0.2
    assert metrics.peak_window_share(np.array([0.15, 0.2, 0.24, 0.5, 0.8])) == 3 / 5
    assert metrics.peak_window_share(np.array([0.0, 0.101, 0.202, 0.303])) == 1 / 4
    assert metrics.peak_window_share(np.array([1.0, 1.5]), window=1.0) == 1.0


@given(st.lists(st.floats(0, 10, allow_nan=False), min_size=1, max_size=60))
def test_peak_window_share_matches_a_brute_force_count(times: list[float]) -> None:
    best = max(sum(1 for u in times if t <= u < t + 0.1) for t in times)
    assert metrics.peak_window_share(np.array(times)) == best / len(times)


def test_jitter_spread() -> None:
    spread = metrics.jitter_spread(ATTEMPTS, bins=4)
    assert spread["retries"] == 3
    assert spread["peak_share_100ms"] == 1 / 3
    assert spread["first_retry_peak_share_100ms"] == 1 / 2  # attempt 2 starts: 1.0 and 2.5
    assert spread["edges"] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert spread["counts"] == [1, 1, 0, 1]
    synced = make_attempts([{"attempt": 2, "start": 7.0}] * 5)
    assert metrics.jitter_spread(synced)["peak_share_100ms"] == 1.0
    assert metrics.jitter_spread(synced, bins=2)["edges"] == pytest.approx([7.0, 7.05, 7.1])
    none = metrics.jitter_spread(make_attempts([{"attempt": 1, "start": 0.0}]))
    assert none["retries"] == 0 and none["peak_share_100ms"] is None and none["counts"] == []


def test_bin_width() -> None:
    assert metrics.bin_width(10) == 1.0
    assert metrics.bin_width(600) == 1.0
    assert metrics.bin_width(601) == 2.0
    assert metrics.bin_width(1200) == 2.0
    assert metrics.bin_width(1201) == 3.0


def test_timeline_stacks_attempts_by_number_and_counts_goodput() -> None:
    # bins of 1 s up to the last end (5.5 -> 6 bins)
    t = metrics.timeline(ATTEMPTS, CALLS, width=1.0, max_attempt_series=3)
    assert t["labels"] == ["first try", "retry 1", "retry 2+"]
    assert t["bin_width"] == 1.0
    assert t["attempts_per_s"] == [
        [2, 0, 1, 0, 1, 0],  # first tries at 0, 0, 2, 4
        [0, 1, 1, 0, 0, 0],  # second attempts at 1, 2.5
        [0, 0, 0, 0, 0, 1],  # third attempt at 5
    ]
    assert t["goodput_per_s"] == [0, 1, 0, 0, 0, 1]  # successes end at 1.0 and 5.5


def test_timeline_rates_are_per_second_for_wide_bins() -> None:
    t = metrics.timeline(ATTEMPTS, CALLS, width=2.0, max_attempt_series=4)
    assert t["labels"] == ["first try", "retry 1", "retry 2", "retry 3+"]
    assert t["attempts_per_s"][0] == [1.0, 0.5, 0.5]  # 2, 1, 1 first tries per 2 s bin
    assert t["goodput_per_s"] == [0.5, 0.0, 0.5]  # successes end at 1.0 and 5.5
    total = sum(sum(row) for row in t["attempts_per_s"]) * 2.0
    assert total == len(ATTEMPTS)


def test_timeline_of_nothing() -> None:
    t = metrics.timeline(rec.empty_attempts(), rec.empty_calls(), width=1.0)
    assert t["attempts_per_s"] == [[0.0]] * 4 and t["goodput_per_s"] == [0.0]


# --- the document ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def documents() -> tuple[ResultDocument, RunResult]:
    scenario = parse_scenario(
        {
            "name": "doc",
            "description": "for metrics",
            "seed": 2,
            "policy": {"max_attempts": 3},
            "clients": {"count": 30, "timeout": 1.0},
            "service": {"kind": "ideal", "latency": {"dist": "exponential", "mean": 0.5}},
            "faults": [{"kind": "outage", "start": 0, "end": 1.5}],
        }
    )
    result = simulate(scenario)
    baseline = simulate(scenario.without_faults())
    return metrics.summarize(result, baseline), result


def test_summarize_has_the_documented_keys(documents: tuple[ResultDocument, RunResult]) -> None:
    doc, result = documents
    assert {
        "scenario",
        "seed",
        "profile",
        "settings",
        "calls",
        "attempts",
        "retry_success_rate",
        "latency",
        "latency_overhead",
        "retry_wait",
        "failures_by_type",
        "load",
        "jitter_spread",
        "duplicates",
        "wasted_work",
        "virtual_time",
        "wall_time",
        "events",
    } <= set(doc)
    assert (doc["scenario"], doc["description"], doc["seed"]) == ("doc", "for metrics", 2)
    assert doc["profile"] == "documented" and doc["settings"]["max_attempts"] == 3
    assert doc["calls"] == metrics.call_counts(result.calls)
    assert doc["virtual_time"] == result.end_time and doc["events"] == result.events
    overhead = doc["latency_overhead"]
    assert overhead is not None and overhead["p50"] is not None and overhead["p50"] > 0
    # every attempt that starts inside the outage fails with its error, and only those
    in_outage = int(np.sum(result.attempts["start"] < 1.5))
    assert in_outage >= 30  # everyone starts in the outage
    assert doc["failures_by_type"]["ConnectionError"] == in_outage
    assert doc["faults"] == [{"index": 0, "kind": "outage", "start": 0.0, "end": 1.5}]
    assert metrics.summarize(result)["latency_overhead"] is None


def test_metric_lookup_for_every_name(documents: tuple[ResultDocument, RunResult]) -> None:
    doc, _ = documents
    for name in metrics.METRICS:
        node: Any = doc
        for part in metric_table.get(name).path:
            node = node.get(part) if metric_table.get(name).optional else node[part]
            if node is None:
                break
        value = metrics.metric(doc, name)
        assert value == (None if node is None else float(node)), name
    assert metrics.metric(doc, "success_rate") == doc["calls"]["success_rate"]
    assert (
        metrics.metric(doc, "first_retry_peak_share")
        == (doc["jitter_spread"]["first_retry_peak_share_100ms"])
    )
    with pytest.raises(KeyError):
        metrics.metric(doc, "no_such_metric")


def test_metric_lookup_through_a_missing_section() -> None:
    doc = cast(ResultDocument, {"latency_overhead": None})
    assert metrics.metric(doc, "p99_overhead") is None
    assert set(metrics.METRICS) >= metrics.HIGHER_IS_BETTER


def test_arrival_windows_carry_the_poisson_schedule_steps() -> None:
    """The document names each traffic step, so plots can mark the spike; no schedule, none."""
    stepped = parse_scenario(
        {
            "duration": 10,
            "clients": {
                "count": 50,
                "arrival": {
                    "kind": "poisson",
                    "rate": 4,
                    "schedule": [
                        {"start": 2, "end": 3, "rate": 12},
                        {"start": 6, "end": 8, "rate": 0},
                    ],
                },
            },
        }
    )
    doc = metrics.summarize(simulate(stepped, seed=1))
    assert doc["arrival_windows"] == [
        {"start": 2.0, "end": 3.0, "rate": 12.0, "base_rate": 4.0},
        {"start": 6.0, "end": 8.0, "rate": 0.0, "base_rate": 4.0},
    ]
    burst = parse_scenario({"clients": {"count": 5, "arrival": {"kind": "burst"}}})
    assert metrics.summarize(simulate(burst, seed=1))["arrival_windows"] == []
