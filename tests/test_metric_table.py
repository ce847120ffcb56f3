"""The one metric table: every name resolves in a real document, and every user derives from it.

Before the table, names, document paths, labels, formats and directions lived in five modules
and could drift apart; these tests pin that each user now reads the table, that each path
resolves in a document from a real (tiny) simulation, and that tables still print what they
printed before.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from retrysim.model.scenario import parse_scenario
from retrysim.render import report
from retrysim.results import metric_table, metrics
from retrysim.results.metric_table import METRIC_TABLE
from retrysim.sim.engine import simulate


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    """A tiny run with an outage, retries and a no-fault baseline, so every metric has a value."""
    scenario = parse_scenario(
        {
            "name": "table",
            "seed": 4,
            "policy": {"max_attempts": 3},
            "clients": {"count": 25, "timeout": 1.0},
            "service": {"kind": "ideal", "latency": {"dist": "exponential", "mean": 0.5}},
            "faults": [{"kind": "outage", "start": 0, "end": 1.5}],
        }
    )
    baseline = simulate(scenario.without_faults())
    doc = metrics.summarize(simulate(scenario), baseline)
    saved: dict[str, Any] = json.loads(json.dumps(doc))  # as a saved result.json reads back
    return saved


@pytest.fixture(scope="module")
def guarded() -> dict[str, Any]:
    """A tiny run with every resilience mechanism on, each of which acts: a fleet breaker
    through an outage, a fleet budget, a fleet limiter against a rate-limited API, and a steady
    load, so the optional metrics (``guards``, goodput recovery) have values too."""
    scenario = parse_scenario(
        {
            "name": "guarded",
            "seed": 3,
            "duration": 30,
            "policy": {
                "operation": "api",
                "breaker": {"enabled": True, "scope": "fleet", "recovery_timeout": 2},
                "budget": {"enabled": True, "scope": "fleet"},
                "adaptive": {"limiter": True, "scope": "fleet"},
            },
            "clients": {"count": 60, "timeout": 5.0, "arrival": {"kind": "poisson", "rate": 30}},
            "service": {"kind": "rate_limited", "rate": 20, "burst": 5, "latency": 0.05},
            "faults": [{"kind": "outage", "start": 10, "end": 14}],
        }
    )
    baseline = simulate(scenario.without_faults())
    saved: dict[str, Any] = json.loads(json.dumps(metrics.summarize(simulate(scenario), baseline)))
    return saved


def _resolved(document: dict[str, Any], m: metric_table.Metric) -> float:
    node: Any = document
    for part in m.path:
        assert isinstance(node, dict) and part in node, f"{m.name}: no {part!r} in {m.path}"
        node = node[part]
    assert isinstance(node, int | float) and not isinstance(node, bool), m.name
    return float(node)


def test_every_path_resolves_to_a_number_in_a_real_document(
    document: dict[str, Any], guarded: dict[str, Any]
) -> None:
    for m in METRIC_TABLE:
        if m.optional:  # its section is there only sometimes: here it is not
            assert metrics.metric(document, m.name) is None, m.name
            continue
        assert metrics.metric(document, m.name) == _resolved(document, m), m.name
    for m in METRIC_TABLE:
        assert metrics.metric(guarded, m.name) == _resolved(guarded, m), m.name


def test_only_optional_sections_may_be_missing(document: dict[str, Any]) -> None:
    """A document without ``guards`` is a run without mechanisms; one without ``load`` is
    damaged (a sweep checkpoint re-runs it), so that stays an error."""
    optional = {m.path[0] for m in METRIC_TABLE if m.optional}
    assert optional == {"guards", "recovery"}
    damaged = {key: value for key, value in document.items() if key != "load"}
    with pytest.raises(KeyError):
        metrics.metric(damaged, "amplification")


def test_names_and_paths_are_unique_and_named_consistently() -> None:
    assert len(metric_table.METRIC_NAMES) == len(set(metric_table.METRIC_NAMES))
    assert len({m.path for m in METRIC_TABLE}) == len(METRIC_TABLE)
    for m in METRIC_TABLE:
        assert m.name.isidentifier() and m.name.islower(), m.name
        assert m.label and m.title and m.unit, m.name
        assert metric_table.get(m.name) is m
    with pytest.raises(KeyError):
        metric_table.get("no_such_metric")


def test_every_user_takes_its_metrics_from_the_table() -> None:
    from retrysim import plots
    from retrysim.cli import compare_cmd
    from retrysim.runs import sweep

    table = list(metric_table.METRIC_NAMES)
    assert list(metrics.METRICS) == table
    assert {m.name: m.path for m in METRIC_TABLE} == metrics.METRICS
    assert {m.name for m in METRIC_TABLE if m.better == "higher"} == metrics.HIGHER_IS_BETTER
    assert list(report.METRIC_LABELS) == table
    # These modules import the names without re-exporting them: read their namespaces.
    assert vars(compare_cmd)["METRIC_NAMES"] is metric_table.METRIC_NAMES
    assert vars(sweep)["DEFAULT_TABLE_METRICS"] is metric_table.DEFAULT_TABLE_METRICS
    assert plots.DEFAULT_COMPARE_METRICS is metric_table.DEFAULT_COMPARE_METRICS
    for default in (metric_table.DEFAULT_TABLE_METRICS, metric_table.DEFAULT_COMPARE_METRICS):
        assert set(default) <= set(table)


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("success_rate", 0.99731, "99.73%"),
        ("p99_latency", 12.34567, "12.346s"),
        ("peak_attempts_per_s", 12345.0, "12,345"),
        ("duplicates", 3.0, "3"),
        ("amplification", 2.6789, "2.68x"),
        ("attempts_per_call", 1.5, "1.500"),
        ("success_rate", None, "–"),
        ("not_in_the_table", 1.23456, "1.235"),  # an unknown name prints as a plain number
    ],
)
def test_values_print_as_tables_always_printed_them(
    name: str, value: float | None, shown: str
) -> None:
    assert report.fmt_metric(name, value) == shown


def test_changes_have_the_decimals_of_their_values_and_no_exponent() -> None:
    assert report._delta("success_rate", 0.75, 0.5) == " (+25.00 pp)"
    assert report._delta("p99_latency", 1.0, 2.5) == " (-1.500s)"  # as the values: 1.000s
    assert report._delta("peak_attempts_per_s", 12_000.0, 1_000.0) == " (+11,000)"
    assert report._delta("peak_attempts_per_s", 3_760.0, 1_000.0) == " (+2,760)"
    assert report._delta("amplification", 2.92, 3.0) == " (-0.08)"
    assert report._delta("p99_latency", 1.0, 1.0) == ""


@pytest.mark.parametrize(
    ("name", "diff"),
    [("p99_latency", -0.0002), ("success_rate", 0.00001), ("amplification", -0.001)],
)
def test_a_change_that_rounds_to_zero_is_plus_minus_zero(name: str, diff: float) -> None:
    assert metric_table.show_change(name, diff) == "±0"


def test_the_best_value_follows_the_metric_direction(monkeypatch: pytest.MonkeyPatch) -> None:
    assert report._best("success_rate", [0.5, 0.9, None]) == 0.9
    assert report._best("p99_latency", [3.0, 1.0]) == 1.0
    assert report._best("p99_latency", [1.0, 1.0]) is None  # nothing to single out
    neutral = metric_table.Metric("neutral", ("x",), "x", "x", "x", "number", "neither")
    monkeypatch.setattr(metric_table, "BY_NAME", {"neutral": neutral})
    assert report._best("neutral", [1.0, 2.0]) is None


def test_labels_are_the_tables_own_words() -> None:
    assert metric_table.label("p99_overhead") == "p99 overhead vs no faults"
    assert metric_table.get("p99_overhead").title == "p99 latency overhead vs no faults"
    assert metric_table.label("not_in_the_table") == "not_in_the_table"


def test_the_table_module_imports_nothing_heavy() -> None:
    """The CLI checks metric names at argument time; that must not load numpy and friends."""
    code = (
        "import sys, retrysim.results.metric_table, retrysim.names\n"
        "heavy = ('numpy', 'pydantic', 'pydantic_settings', 'rich', 'matplotlib', 'typer')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
