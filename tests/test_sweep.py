"""Compare and sweep: variant grids, worker-independent results, checkpoint resume, intervals."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import pytest

from retrysim.model.scenario import parse_scenario
from retrysim.results import metrics
from retrysim.results.document import ResultDocument
from retrysim.results.metric_table import DEFAULT_TABLE_METRICS
from retrysim.runs.sweep import (
    Variant,
    VariantResult,
    compare,
    grid_variants,
    run_one,
    seeds_for,
    table_rows,
    task_key,
)

SMALL: dict[str, Any] = {
    "name": "small",
    "seed": 10,
    "duration": 20,
    "policy": {"operation": "worker", "max_attempts": 3},
    "clients": {"count": 30, "timeout": 1.0, "arrival": {"kind": "uniform", "start": 0, "end": 5}},
    "service": {"kind": "ideal", "latency": {"dist": "lognormal", "median": 0.2, "p99": 1.5}},
    "faults": [
        {"kind": "outage", "start": 1, "end": 3},
        {"kind": "flaky", "probability": 0.2},
    ],
}


def test_grid_variants_order_and_labels() -> None:
    variants = grid_variants(
        [("policy.max_attempts", [2, 3]), ("policy.profile", ["bindu", "documented"])]
    )
    assert [v.label for v in variants] == [
        "max_attempts=2, profile=bindu",
        "max_attempts=2, profile=documented",
        "max_attempts=3, profile=bindu",
        "max_attempts=3, profile=documented",
    ]
    assert variants[1].sets == {"policy.max_attempts": 2, "policy.profile": "documented"}


def test_grid_variant_labels_show_values_as_json_and_keep_other_prefixes() -> None:
    (v,) = grid_variants([("policy.respect_retry_after", [True])])
    assert v.label == "respect_retry_after=true"
    (v,) = grid_variants([("faults.0.end", [2.5])])
    assert v.label == "faults.0.end=2.5"


def test_empty_grid_is_the_scenario_as_is() -> None:
    assert grid_variants([]) == [Variant("as is", {})]


def test_seeds_for() -> None:
    s = parse_scenario(SMALL)
    assert seeds_for(s, 3) == [10, 11, 12]
    assert seeds_for(s, 2, first=100) == [100, 101]


def test_run_one_is_the_summary_of_a_plain_run_with_its_baseline() -> None:
    from retrysim.sim.engine import simulate

    s = parse_scenario(SMALL)
    doc = run_one(s, {"policy.max_attempts": 2}, 5, None)
    variant = s.with_overrides({"policy.max_attempts": 2})
    expected = metrics.summarize(
        simulate(variant, seed=5), simulate(variant.without_faults(), seed=5)
    )
    assert doc["calls"] == expected["calls"]
    assert doc["latency_overhead"] == expected["latency_overhead"]
    assert doc["settings"]["max_attempts"] == 2
    assert "timeline" not in doc and doc["wall_time"] == 0.0


def _documents(results: list[VariantResult]) -> list[list[ResultDocument]]:
    return [r.documents for r in results]


def test_compare_is_the_same_with_one_or_two_workers() -> None:
    s = parse_scenario(SMALL)
    variants = grid_variants([("policy.profile", ["bindu", "full_jitter"])])
    one = compare(s, variants, seeds=[1, 2], workers=1)
    two = compare(s, variants, seeds=[1, 2], workers=2)
    assert _documents(one) == _documents(two)
    assert [r.variant for r in one] == variants
    # results come back in variant then seed order
    assert [[d["seed"] for d in r.documents] for r in one] == [[1, 2], [1, 2]]
    assert [r.documents[0]["profile"] for r in one] == ["bindu", "full_jitter"]
    # common random numbers: different seeds differ, the same seed reproduces
    assert one[0].documents[0] != one[0].documents[1]


def test_compare_checkpoint_resumes_without_running_again(tmp_path: Path) -> None:
    s = parse_scenario(SMALL)
    variants = grid_variants([("policy.max_attempts", [1, 3])])
    folder = tmp_path / "checkpoint"
    progress: list[tuple[int, int]] = []
    first = compare(
        s,
        variants,
        seeds=[1, 2, 3],
        checkpoint=folder,
        on_done=lambda d, t: progress.append((d, t)),
    )
    assert progress[0] == (0, 6) and progress[-1] == (6, 6)
    assert len(list(folder.glob("*.json"))) == 6
    stored = json.loads(next(folder.glob("*.json")).read_text())
    assert set(stored) == {"variant", "seed", "document"}

    progress.clear()
    second = compare(
        s,
        variants,
        seeds=[1, 2, 3],
        checkpoint=folder,
        on_done=lambda d, t: progress.append((d, t)),
    )
    assert progress == [(6, 6)]  # everything came from the checkpoint
    assert _documents(second) == _documents(first)

    # one more seed: only the two new runs are done
    progress.clear()
    compare(
        s,
        variants,
        seeds=[1, 2, 3, 4],
        checkpoint=folder,
        on_done=lambda d, t: progress.append((d, t)),
    )
    assert progress == [(6, 8), (7, 8), (8, 8)]


def test_task_keys_name_each_run() -> None:
    s = parse_scenario(SMALL)
    key = task_key(s, {"policy.max_attempts": 2}, 1, None)
    assert key == task_key(s, {"policy.max_attempts": 2}, 1, None)
    assert (
        len(
            {
                key,
                task_key(s, {"policy.max_attempts": 3}, 1, None),
                task_key(s, {"policy.max_attempts": 2}, 2, None),
                task_key(s.with_overrides({"seed": 11}), {"policy.max_attempts": 2}, 1, None),
            }
        )
        == 4
    )


def test_compare_validates_every_variant_before_running(tmp_path: Path) -> None:
    s = parse_scenario(SMALL)
    ran: list[tuple[int, int]] = []
    with pytest.raises(ValueError, match="max_attempts"):
        compare(
            s,
            [Variant("ok", {"policy.max_attempts": 2}), Variant("bad", {"policy.max_attempts": 0})],
            seeds=[1],
            on_done=lambda d, t: ran.append((d, t)),
        )
    assert ran == []


def result_with(values: Sequence[float | None]) -> VariantResult:
    docs = [cast(ResultDocument, {"calls": {"success_rate": v}}) for v in values]
    return VariantResult(Variant("v", {"policy.max_attempts": 2}), docs)


def test_interval_by_hand() -> None:
    # values 1, 2, 3, 4: mean 2.5, sample sd = sqrt(5/3), t(0.975, df=3) = 3.182,
    # half-width = 3.182 * sqrt(5/3) / sqrt(4) = 2.0540...
    r = result_with([1, 2, 3, 4])
    half = 3.182 * math.sqrt(5 / 3) / 2
    interval = r.interval("success_rate")
    assert interval is not None
    low, high = interval
    assert low == pytest.approx(2.5 - half) and high == pytest.approx(2.5 + half)
    assert r.mean("success_rate") == 2.5


def test_interval_of_two_values() -> None:
    # values 0.4, 0.6: mean 0.5, sd = 0.1414, t(df=1) = 12.706 -> half = 12.706 * 0.1414 / 1.414
    interval = result_with([0.4, 0.6]).interval("success_rate")
    assert interval is not None
    low, high = interval
    assert high - 0.5 == pytest.approx(12.706 * 0.1)
    assert 0.5 - low == pytest.approx(12.706 * 0.1)


def test_interval_uses_the_normal_value_for_many_seeds() -> None:
    values = [float(i % 2) for i in range(40)]  # 20 zeros, 20 ones
    sd = math.sqrt(sum((v - 0.5) ** 2 for v in values) / 39)
    interval = result_with(values).interval("success_rate")
    assert interval is not None
    low, high = interval
    assert high - low == pytest.approx(2 * 1.96 * sd / math.sqrt(40))


def test_interval_edge_cases() -> None:
    assert result_with([0.7]).interval("success_rate") is None
    assert result_with([]).mean("success_rate") is None
    assert result_with([0.3, 0.3, 0.3]).interval("success_rate") == (0.3, 0.3)
    # missing values (None) are left out
    r = result_with([None, 0.2, None, 0.4])
    assert r.values("success_rate") == [0.2, 0.4]
    assert r.mean("success_rate") == pytest.approx(0.3)


def test_table_rows() -> None:
    rows = table_rows([result_with([1, 2, 3, 4]), result_with([0.5])], ["success_rate"])
    assert rows[0]["variant"] == "v" and rows[0]["policy.max_attempts"] == 2
    assert rows[0]["seeds"] == 4 and rows[0]["success_rate"] == 2.5
    assert rows[0]["success_rate_ci_low"] == pytest.approx(2.5 - 3.182 * math.sqrt(5 / 3) / 2)
    assert "success_rate_ci_low" not in rows[1]
    assert set(DEFAULT_TABLE_METRICS) <= set(metrics.METRICS)
