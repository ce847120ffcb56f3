"""compare and sweep refuse huge work up front, with the count and a time estimate, unless --yes.

``sweep --grid`` with 100^3 points or ``compare --seeds 1000000`` used to start without a word.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from typer.testing import CliRunner

import retrysim.runs.sweep
from retrysim.cli.app import app
from retrysim.cli.compare_cmd import MAX_RUNS_WITHOUT_YES
from retrysim.errors import BadInputError

HUNDRED = ",".join(str(n) for n in range(1, 101))


class ReachedError(BadInputError):
    """Raised by the stand-in for the runs: the command got past the size check."""


@pytest.fixture
def no_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise ReachedError("the runs started")

    monkeypatch.setattr(retrysim.runs.sweep, "compare", refuse)


@pytest.mark.usefixtures("no_runs")
@pytest.mark.parametrize(
    ("args", "runs"),
    [
        (
            [
                "sweep",
                "redis-blip",
                "--grid",
                f"policy.max_attempts={HUNDRED}",
                "--grid",
                f"policy.max_wait={HUNDRED}",
                "--grid",
                f"policy.min_wait={HUNDRED}",
            ],
            "1,000,000 runs",
        ),
        (
            ["compare", "redis-blip", "--profile", "bindu,documented", "--seeds", "1000000"],
            "2,000,000 runs",
        ),
    ],
    ids=["sweep-grid", "compare-seeds"],
)
def test_huge_work_is_refused_in_one_line_before_any_run(args: list[str], runs: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"retrysim: error: {runs} (about ")
    assert "days" in lines[0] or "hours" in lines[0]  # an estimate of the time
    assert "--yes" in lines[0]
    assert "the runs started" not in result.output


@pytest.mark.usefixtures("no_runs")
def test_yes_starts_it_and_the_limit_itself_needs_no_yes() -> None:
    base = ["compare", "redis-blip", "--profile", "bindu"]
    over = CliRunner().invoke(app, [*base, "--seeds", str(MAX_RUNS_WITHOUT_YES + 1), "--yes"])
    at = CliRunner().invoke(app, [*base, "--seeds", str(MAX_RUNS_WITHOUT_YES)])
    for result in (over, at):
        assert "retrysim: error: the runs started" in result.stderr, result.output


def test_the_estimate_divides_by_workers(no_runs: None, monkeypatch: pytest.MonkeyPatch) -> None:
    args = ["compare", "redis-blip", "--profile", "bindu", "--seeds", "4000"]
    one = CliRunner().invoke(app, [*args, "--workers", "1"]).stderr
    four = CliRunner().invoke(app, [*args, "--workers", "4"]).stderr
    assert "with 1 worker(s)" in one and "with 4 worker(s)" in four
    assert one != four
    monkeypatch.setattr(os, "cpu_count", lambda: 3)  # the default: one worker per core
    assert "with 3 worker(s)" in CliRunner().invoke(app, args).stderr
