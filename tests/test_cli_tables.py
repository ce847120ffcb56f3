"""Compare and sweep tables never cut a label: at 80 columns they wrap, turn or split."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from rich.console import Console

import retrysim
from retrysim.cli.tables import fit, print_table
from retrysim.render.report import compare_table, sweep_table
from retrysim.results import metric_table
from retrysim.results.document import ResultDocument
from retrysim.results.metric_table import DEFAULT_TABLE_METRICS
from retrysim.runs.runner import run
from retrysim.runs.sweep import VariantResult, grid_variants

Grid = list[tuple[str, list[Any]]]
BOX = "│┃┏┓┗┛┡┩└┘┳┻╇━─┴┬┼╋├┤"


@pytest.fixture(scope="module")
def document() -> ResultDocument:
    return run(retrysim.load_scenario("startup-race")).document


def results(document: ResultDocument, grid: Grid) -> list[VariantResult]:
    return [VariantResult(variant, [document]) for variant in grid_variants(grid)]


def rendered(tables: list[Any], width: int) -> str:
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None)
    for table in tables:
        console.print(table)
    return out.getvalue()


def words(text: str) -> set[str]:
    return set(re.split(f"[\\s{BOX}]+", text))


def assert_nothing_cut(text: str, labels: list[str], width: int) -> None:
    assert "…" not in text
    assert all(len(line) <= width for line in text.splitlines())
    seen = words(text)
    for label in labels:
        for word in label.split():
            assert word in seen, f"{word!r} of {label!r} was cut:\n{text}"


def at(width: int) -> Console:
    return Console(file=io.StringIO(), width=width, color_system=None)


GRID_2x2: Grid = [("policy.max_attempts", [3, 5]), ("policy.profile", ["bindu", "documented"])]
GRID_12: Grid = [
    ("policy.max_attempts", [3, 5, 8]),
    ("policy.min_wait", [0.5, 1]),
    ("policy.max_wait", [5, 10]),
]
METRIC_LABELS = [metric_table.label(name) for name in DEFAULT_TABLE_METRICS]


@pytest.mark.parametrize("grid", [GRID_2x2, GRID_12], ids=["4 variants", "12 variants"])
def test_compare_table_at_80_columns_keeps_every_label_whole(
    document: ResultDocument, grid: Grid
) -> None:
    rows = results(document, grid)
    table = compare_table("postgres-restart", [1], rows, list(DEFAULT_TABLE_METRICS))
    text = rendered(fit(at(80), table, rows_label="variant"), 80)
    assert_nothing_cut(text, [r.variant.label for r in rows] + METRIC_LABELS, 80)


@pytest.mark.parametrize("grid", [GRID_2x2, GRID_12], ids=["4 points", "12 points"])
def test_sweep_table_at_80_columns_keeps_every_label_whole(
    document: ResultDocument, grid: Grid
) -> None:
    rows = results(document, grid)
    table = sweep_table("postgres-restart", [1], rows, list(DEFAULT_TABLE_METRICS))
    text = rendered(fit(at(80), table), 80)
    assert_nothing_cut(text, [r.variant.label for r in rows] + METRIC_LABELS, 80)


def test_a_compare_that_fits_keeps_metrics_down(document: ResultDocument) -> None:
    rows = results(document, [("policy.max_attempts", [3, 5])])
    table = compare_table("x", [1], rows, ["success_rate", "p99_latency"])
    [shown] = fit(at(80), table, rows_label="variant")
    assert shown is table  # nothing needed changing


def test_many_variants_become_rows(document: ResultDocument) -> None:
    rows = results(document, GRID_12)
    table = compare_table("x", [1], rows, ["success_rate", "p99_latency"])
    [shown] = fit(at(80), table, rows_label="variant")
    assert str(shown.columns[0].header) == "variant"
    assert [str(c.header) for c in shown.columns[1:]] == ["success rate", "p99 latency"]


def test_piped_output_is_as_wide_as_the_table_needs(
    document: ResultDocument, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    rows = results(document, GRID_12)
    out = io.StringIO()
    console = Console(file=out, color_system=None)  # not a terminal: width 80
    assert not console.is_terminal
    print_table(console, sweep_table("x", [1], rows, list(DEFAULT_TABLE_METRICS)))
    text = out.getvalue()
    for row in rows:
        assert row.variant.label in text  # each label whole, on one line
    assert "…" not in text
