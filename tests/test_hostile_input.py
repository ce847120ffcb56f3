"""Hostile scenario files end as one clear line (exit 2), a valid result, or a documented limit.

Each case here once ended in a traceback, a hang, unbounded memory or accepted nonsense.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import retrysim
from retrysim.cli.app import app
from retrysim.model.files import MAX_FILE_BYTES
from retrysim.model.scenario import MAX_ERRORS_SHOWN, Poisson, parse_scenario
from retrysim.sim import limits
from retrysim.sim.arrivals import rate_segments
from retrysim.sim.invariants import violations

ROOT = Path(__file__).resolve().parent.parent


def one_line_error(path: Path, *needles: str, command: str = "validate") -> str:
    result = CliRunner().invoke(app, [command, str(path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in (str(path.name), *needles):
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('[service]\nkind = "rate_limited"\nrate = 5e-324\n', "service.rate"),
        (
            '[service]\nkind = "queue"\nconcurrency = 2\n'
            'latency = {dist = "lognormal", median = 0.001, p99 = 1e100}\n',
            "service.latency.p99",
        ),
        (
            '[service]\nkind = "queue"\nconcurrency = 2\n'
            'latency = {dist = "lognormal", median = 0.001, p99 = 1e4}\n',
            "service.latency.p99",  # p99/median of 1e7: not a latency distribution
        ),
        (
            '[service]\nkind = "ideal"\nlatency = {dist = "lognormal", median = 1e-300, p99 = 1}\n',
            "service.latency.median",
        ),
        ("duration = 1e308\n[clients]\ncount = 2\n", "duration"),
        ('[clients]\ncount = 2\narrival = {kind = "burst", at = 1e300}\n', "clients.arrival.at"),
        ("[policy]\nmin_wait = 1e308\n", "policy.min_wait"),
        ("[policy]\nmax_delay = 1e300\n", "policy.max_delay"),
        ('[service]\nkind = "rate_limited"\nrate = 5\nburst = nan\n', "service.burst"),
    ],
)
def test_absurd_numbers_are_refused_naming_file_and_field(
    tmp_path: Path, text: str, field: str
) -> None:
    path = tmp_path / "absurd.toml"
    path.write_text(text, encoding="utf-8")
    one_line_error(path, f": {field}")
    one_line_error(path, f": {field}", command="run")


@pytest.mark.parametrize("depth", [500, 700, 5000])
def test_deeply_nested_toml_is_one_line(tmp_path: Path, depth: int) -> None:
    path = tmp_path / "deep.toml"
    path.write_text("a = " + "[" * depth + "]" * depth + "\n", encoding="utf-8")
    one_line_error(path, "nest")
    one_line_error(path, "nest", command="run")


def test_nesting_just_past_the_limit_is_refused_before_validation(tmp_path: Path) -> None:
    path = tmp_path / "nested.toml"
    # the root table, [policy], then 15 arrays: 16 levels, validated (x is no policy key)
    path.write_text("[policy]\nx = " + "[" * 15 + "]" * 15 + "\n", encoding="utf-8")
    one_line_error(path, "policy.x: unknown key")
    path.write_text("[policy]\nx = " + "[" * 16 + "]" * 16 + "\n", encoding="utf-8")
    one_line_error(path, "nested more than 16 levels deep")


def test_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)
    # In a child process with a timeout, so a regression hangs that child, not the suite.
    child = subprocess.run(
        [sys.executable, "-m", "retrysim", "validate", str(fifo)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    assert child.returncode == 2
    assert "not a regular file" in child.stderr and "Traceback" not in child.stderr


def test_an_oversized_file_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    path = tmp_path / "huge.toml"
    path.write_text("# padding\n" * (MAX_FILE_BYTES // 10 + 1), encoding="utf-8")
    one_line_error(path, "larger than")


def test_thousands_of_unknown_keys_print_a_bounded_list(tmp_path: Path) -> None:
    path = tmp_path / "keys.toml"
    path.write_text("".join(f"k{i} = 1\n" for i in range(5000)), encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == MAX_ERRORS_SHOWN + 1
    assert lines[-1].endswith(f"and {5000 - MAX_ERRORS_SHOWN:,} more problems")


@pytest.mark.parametrize(
    "latency",
    [
        "1e-6",  # a closed loop calling again every microsecond
        '{dist = "exponential", mean = 1e-7}',
    ],
)
def test_a_closed_loop_too_fast_to_hold_is_refused_up_front(tmp_path: Path, latency: str) -> None:
    path = tmp_path / "loop.toml"
    path.write_text(
        'duration = 60\n[clients]\ncount = 5\narrival = {kind = "closed"}\n'
        f'[service]\nkind = "ideal"\nlatency = {latency}\n',
        encoding="utf-8",
    )
    line = one_line_error(path, "clients.think_time", "of memory", command="run")
    assert "calls again as soon as its call ends" in line


def test_a_loop_that_never_advances_time_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "still.toml"
    path.write_text(
        '[clients]\ncount = 5\narrival = {kind = "closed"}\n'
        '[service]\nkind = "ideal"\nlatency = {dist = "uniform", low = 0, high = 0}\n',
        encoding="utf-8",
    )
    one_line_error(path, "never lets virtual time advance")


def test_a_run_that_outgrows_memory_stops_with_a_valid_partial_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """10,000 attempts a call with no wait: no estimate of calls foresees the events."""
    scenario = parse_scenario(
        {
            "policy": {"max_attempts": 10_000, "min_wait": 0, "max_wait": 0, "jitter": 0},
            "clients": {"count": 50},
            "faults": [{"kind": "outage", "start": 0, "end": 1000}],
        }
    )
    monkeypatch.setattr(limits, "available_memory", lambda: 5_000 * limits.BYTES_PER_EVENT / 0.6)
    result = retrysim.simulate(scenario)
    assert result.stopped is not None and "the memory limit" in result.stopped
    # one event can start many attempts (50 arrive in one burst event), so allow one burst over
    assert 4_000 <= len(result.attempts) <= 5_000 + 50
    assert violations(result) == []
    assert (result.calls["outcome"] == 2).all()  # every call unfinished, none lost


def _painted_reference(arrival: Poisson, duration: float) -> list[tuple[float, float, float]]:
    """The schedule's meaning, written the obvious quadratic way: later steps win overlaps."""
    end = duration if arrival.end is None else min(arrival.end, duration)
    if end <= arrival.start:
        return []
    cuts = {arrival.start, end}
    for step in arrival.schedule:
        cuts.update(t for t in (step.start, step.end) if arrival.start < t < end)
    pieces = []
    for lo, hi in itertools.pairwise(sorted(cuts)):
        rate = arrival.rate
        for step in arrival.schedule:
            if step.start <= lo and hi <= step.end:
                rate = step.rate
        pieces.append((lo, hi, rate))
    return pieces


steps = st.lists(
    st.tuples(st.integers(0, 30), st.integers(1, 15), st.sampled_from([0.0, 1.0, 5.0, 9.0])),
    max_size=10,
)


@settings(max_examples=300, deadline=None)
@given(
    schedule=steps,
    start=st.integers(0, 6),
    end=st.one_of(st.none(), st.integers(7, 40)),
    duration=st.integers(1, 45),
)
def test_rate_segments_paint_later_steps_over_earlier_ones(
    schedule: list[tuple[int, int, float]], start: int, end: int | None, duration: int
) -> None:
    arrival = Poisson(
        kind="poisson",
        rate=3.0,
        start=start,
        end=end,
        schedule=[{"start": a, "end": a + width, "rate": r} for a, width, r in schedule],
    )
    assert rate_segments(arrival, duration) == _painted_reference(arrival, duration)


def test_a_ten_thousand_step_schedule_is_linear_enough_to_finish() -> None:
    arrival = Poisson(
        kind="poisson",
        rate=1.0,
        schedule=[{"start": i, "end": i + 2, "rate": i % 7} for i in range(10_000)],
    )
    pieces = rate_segments(arrival, 10_001)
    assert len(pieces) == 10_001
    assert pieces[5] == (5.0, 6.0, 5.0)  # step 5 (rate 5) painted over step 4 on [5, 6)
