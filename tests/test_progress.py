"""Progress follows work done (calls ended, runs finished), not virtual time; quiet when piped."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

import retrysim
from retrysim.cli import progress as progress_module
from retrysim.cli.app import app
from retrysim.cli.progress import WorkProgress, _rate_text
from retrysim.sim import engine


def reports(scenario: Any) -> tuple[list[tuple[int, int]], Any]:
    seen: list[tuple[int, int]] = []
    result = engine.simulate(scenario, progress=lambda d, t: seen.append((d, t)))
    return seen, result


def test_engine_reports_calls_ended_against_the_calls_a_burst_makes() -> None:
    scenario = retrysim.load_scenario("thundering-herd").with_overrides({"clients.count": 4000})
    seen, result = reports(scenario)
    assert len(seen) > 1  # reports during the run, not only at its end
    expected = 4000 * 3  # clients x calls_per_client: known before the run starts
    assert all(total == expected for _, total in seen[:-1])
    dones = [done for done, _ in seen]
    assert dones == sorted(dones)
    assert 0 < dones[0] < expected  # a report mid-run shows part of the work, not 0 or all
    assert seen[-1] == (len(result.calls), len(result.calls))


def test_engine_knows_a_poisson_runs_exact_call_count_up_front() -> None:
    scenario = retrysim.load_scenario("redis-blip")
    seen, result = reports(scenario)
    assert len(seen) > 1
    assert {total for _, total in seen} == {len(result.calls)}


def test_closed_loop_estimate_grows_with_the_work_and_ends_exact() -> None:
    scenario = retrysim.load_scenario("redis-blip").with_overrides(
        {
            "clients.arrival": {"kind": "closed", "ramp": 1.0},
            "clients.count": 200,
            "clients.think_time": 1.0,
        }
    )
    seen, result = reports(scenario)
    assert len(seen) > 1
    assert all(done <= total for done, total in seen)
    assert seen[-1] == (len(result.calls), len(result.calls))


def drawn(bar: WorkProgress, *updates: tuple[int, int]) -> str:
    with bar:
        for done, total in updates:
            bar.update(done, total)
    console = bar.console
    assert console is not None
    return str(console.file.getvalue())


def terminal() -> Console:
    return Console(file=io.StringIO(), force_terminal=True, width=140)


def test_bar_shows_work_done_against_work_expected_with_rate_and_eta() -> None:
    text = drawn(WorkProgress("simulating", "calls", delay=0, console=terminal()), (7000, 10000))
    assert "7,000/10,000 calls" in text
    assert "calls/s" in text and "eta" in text


def test_bar_stays_off_when_not_a_terminal_or_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    piped = Console(file=io.StringIO())
    assert drawn(WorkProgress("x", "runs", delay=0, console=piped), (1, 2)) == ""
    assert drawn(WorkProgress("x", "runs", delay=0, quiet=True, console=terminal()), (1, 2)) == ""
    monkeypatch.setitem(progress_module.quiet_mode, "on", True)  # retrysim --quiet COMMAND
    assert drawn(WorkProgress("x", "runs", delay=0, console=terminal()), (1, 2)) == ""


def test_rate_text() -> None:
    assert _rate_text(None, "calls") == "- calls/s"
    assert _rate_text(12345.6, "calls") == "12,346 calls/s"
    assert _rate_text(0.5, "runs") == "0.5 runs/s"


@pytest.mark.parametrize(
    "args",
    [
        ["run", "redis-blip", "--quiet"],
        ["-q", "run", "redis-blip"],
        ["compare", "redis-blip", "--profile", "bindu,documented", "-q"],
        ["sweep", "redis-blip", "--grid", "policy.max_attempts=1,2", "--quiet"],
    ],
)
def test_quiet_is_accepted_globally_and_per_command(args: list[str]) -> None:
    result = CliRunner().invoke(app, args, env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
