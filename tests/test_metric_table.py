"""The one metric table: every name resolves in a real document, and every user derives from it.

Before the table, names, document paths, labels, formats and directions lived in five modules
and could drift apart; these tests pin that each user now reads the table, that each metric's
accessor reads the value its (derived) path leads to in a document from a real (tiny)
simulation, and that tables still print what they printed before.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any, cast

import pytest

from retrysim.model.scenario import parse_scenario
from retrysim.render import report
from retrysim.results import metric_table, metrics
from retrysim.results.document import ResultDocument, json_schema
from retrysim.results.metric_table import METRIC_TABLE
from retrysim.sim.engine import simulate


@pytest.fixture(scope="module")
def document() -> ResultDocument:
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
    saved: ResultDocument = json.loads(json.dumps(doc))  # as a saved result.json reads back
    return saved


#: Every resilience mechanism on, each of which acts: a fleet breaker through an outage, a fleet
#: budget, a fleet limiter against a rate-limited API, and a steady load, so the optional
#: metrics (``guards``, goodput recovery) have values too.
GUARDED: dict[str, Any] = {
    "name": "guarded",
    "seed": 3,
    "duration": 30,
    "policy": {
        "operation": "api",
        "breaker": {"enabled": True, "scope": "fleet", "recovery_timeout": 2},
        "budget": {"enabled": True, "scope": "fleet"},
        "adaptive": {"enabled": True, "limiter": True, "scope": "fleet"},
    },
    "clients": {"count": 60, "timeout": 5.0, "arrival": {"kind": "poisson", "rate": 30}},
    "service": {"kind": "rate_limited", "rate": 20, "burst": 5, "latency": 0.05},
    "faults": [{"kind": "outage", "start": 10, "end": 14}],
}


@pytest.fixture(scope="module")
def guarded() -> ResultDocument:
    """A tiny run of :data:`GUARDED`, saved and read back as JSON."""
    scenario = parse_scenario(GUARDED)
    baseline = simulate(scenario.without_faults())
    saved: ResultDocument = json.loads(json.dumps(metrics.summarize(simulate(scenario), baseline)))
    return saved


#: A call graph with a hedging clients' policy: the ``graph`` and ``hedging`` metrics' document.
GRAPH: dict[str, Any] = {
    "name": "graph",
    "seed": 2,
    "duration": 10,
    "policy": {"max_attempts": 2, "hedge": {"enabled": True, "delay": 0.05}},
    "clients": {"count": 40, "timeout": 1.0, "arrival": {"kind": "uniform", "end": 5}},
    "tiers": {
        "api": {
            "policy": {"max_attempts": 2, "min_wait": 0.01, "max_wait": 0.02},
            "timeout": 0.5,
            "service": {"kind": "ideal", "latency": {"dist": "exponential", "mean": 0.05}},
        },
        "db": {
            "service": {"kind": "queue", "concurrency": 2, "latency": 0.01},
            "faults": [{"kind": "flaky", "probability": 0.3}],
        },
    },
}


@pytest.fixture(scope="module")
def graph() -> ResultDocument:
    """A tiny run of :data:`GRAPH`, saved and read back as JSON."""
    saved: ResultDocument = json.loads(
        json.dumps(metrics.summarize(simulate(parse_scenario(GRAPH))))
    )
    return saved


def _resolved(document: ResultDocument, m: metric_table.Metric) -> float:
    node: Any = document
    for part in m.path:
        assert isinstance(node, dict) and part in node, f"{m.name}: no {part!r} in {m.path}"
        node = node[part]
    assert isinstance(node, int | float) and not isinstance(node, bool), m.name
    return float(node)


def test_every_path_resolves_to_a_number_in_a_real_document(
    document: ResultDocument, guarded: ResultDocument, graph: ResultDocument
) -> None:
    for m in METRIC_TABLE:
        if m.optional:  # its section is there only sometimes: here it is not
            assert metrics.metric(document, m.name) is None, m.name
            continue
        assert metrics.metric(document, m.name) == _resolved(document, m), m.name
    for m in METRIC_TABLE:
        # the resilience mechanisms' run, or the call graph's for the graph and hedging rows
        shown = graph if m.path[0] in ("graph", "hedging") else guarded
        assert metrics.metric(shown, m.name) == _resolved(shown, m), m.name


def test_only_optional_sections_may_be_missing(document: ResultDocument) -> None:
    """A document without ``guards`` is a run without mechanisms; one without ``load`` is
    damaged (a sweep checkpoint re-runs it), so that stays an error."""
    optional = {m.path[0] for m in METRIC_TABLE if m.optional}
    assert optional == {"guards", "recovery", "graph", "hedging"}
    damaged = cast(ResultDocument, {k: v for k, v in document.items() if k != "load"})
    with pytest.raises(KeyError):
        metrics.metric(damaged, "amplification")


def test_a_section_that_may_be_null_reads_as_no_value(document: ResultDocument) -> None:
    """``latency_overhead`` without a baseline and ``recovery`` that cannot be judged are
    null: their metrics read None, not a TypeError from indexing None."""
    plain = cast(ResultDocument, {**document, "latency_overhead": None, "recovery": None})
    assert metrics.metric(plain, "p99_overhead") is None
    assert metrics.metric(plain, "goodput_recovery") is None
    overhead = document["latency_overhead"]
    assert overhead is not None  # the fixture's run has a baseline
    assert metrics.metric(document, "p99_overhead") == overhead["p99"]


def test_derived_paths_are_what_the_accessors_read() -> None:
    """The dotted path is derived from the accessor (never written twice): a few spelled out,
    and every one a chain of properties the published JSON Schema declares."""
    assert metric_table.get("success_rate").path == ("calls", "success_rate")
    assert metric_table.get("p99_overhead").path == ("latency_overhead", "p99")
    assert metric_table.get("breaker_opens").path == ("guards", "breaker", "opened")
    schema = json_schema()
    for m in METRIC_TABLE:
        node = schema
        for part in m.path:
            node = _object_of(schema, node)
            assert part in node["properties"], f"{m.name}: no {part!r} in the schema"
            node = node["properties"][part]
        assert _leaf_types(schema, node) <= {"number", "integer", "null"}, m.name


def _object_of(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """The object schema ``node`` is (through a ``$ref``, or the non-null branch of anyOf)."""
    if "$ref" in node:
        return _object_of(schema, schema["$defs"][node["$ref"].rsplit("/", 1)[1]])
    if "anyOf" in node:
        (branch,) = [b for b in node["anyOf"] if b.get("type") != "null"]
        return _object_of(schema, branch)
    return node


def _leaf_types(schema: dict[str, Any], node: dict[str, Any]) -> set[str]:
    if "anyOf" in node:
        return {t for b in node["anyOf"] for t in _leaf_types(schema, b)}
    return {str(node["type"])}


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
    assert {m.name: m.read for m in METRIC_TABLE} == metrics.METRICS
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
    neutral = metric_table.Metric("neutral", lambda d: None, "x", "x", "x", "number", "neither")
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
