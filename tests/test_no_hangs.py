"""Nothing runs away: each bound that stops work which would otherwise go on for minutes or
for ever (issue 34, "Hangs").

- ``retrysim tune`` asks for ``--yes`` over as many runs as ``sweep`` does, with the same line;
- a retry storm (zero waits, thousands of attempts a call) stops at the attempts budget
  (``retrysim/sim/limits.py``) with one line naming it, not at the event guard minutes later;
- a test under ``@pytest.mark.retrysim`` whose loop never ends fails fast, naming its cap, with
  bounded memory;
- the adaptive limiter's hold counts against ``max_delay`` and ``budget.max_total_time``, in the
  library and in the simulator alike.
"""

from __future__ import annotations

import json
import math
import tracemalloc
from typing import Any

import numpy as np
import pytest
import tenacity
from typer.testing import CliRunner

import retrysim
import retrysim.runs.tune
from retrysim.cli.app import app
from retrysim.cli.compare_cmd import MAX_RUNS_WITHOUT_YES
from retrysim.errors import BadInputError
from retrysim.model.scenario import parse_scenario
from retrysim.retry.adaptive import CubicRateLimiter, PacingDeadline, pacing_bound
from retrysim.retry.exceptions import RateLimitedError
from retrysim.retry.guards import GuardChain
from retrysim.retry.options import PolicyOptions
from retrysim.sim import limits
from retrysim.sim.engine import simulate
from retrysim.sim.invariants import violations
from retrysim.testing import VirtualLimitError, VirtualTime
from tests.test_pytest_plugin import run_plugin

pytest_plugins = ["pytester"]

# --- tune: sweep's guard -----------------------------------------------------------------------

#: Nine searched settings of five values each: a grid of 5^9 = 1,953,125 candidates.
NINE = [
    "policy.max_attempts=2..6",
    "policy.min_wait=0.1,0.2,0.3,0.4,0.5",
    "policy.max_wait=5,6,7,8,9",
    "policy.jitter=0,0.1,0.2,0.3,0.4",
    "policy.breaker.half_open_probes=1..5",
    "policy.breaker.failure_threshold=1..5",
    "policy.breaker.recovery_timeout=1,2,3,4,5",
    "policy.budget.max_tokens=1..5",
    "policy.attempt_timeout=1,2,3,4,5",
]
GRID = [arg for item in NINE for arg in ("--search", item)]


class ReachedError(BadInputError):
    """Raised by the stand-in for the runs: the command got past the size guard."""


@pytest.fixture
def no_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise ReachedError("the runs started")

    monkeypatch.setattr(retrysim.runs.tune, "compare", refuse)


def _one_line(args: list[str]) -> str:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "the runs started" not in result.output
    return lines[0]


@pytest.mark.usefixtures("no_runs")
@pytest.mark.parametrize(
    ("args", "runs"),
    [
        (["--strategy", "grid", "--budget", "500"], "1,506 runs"),  # (500 + 2) x 3 seeds
        (["--search", "policy.max_attempts=2..6", "--seeds", "1000000"], "7,000,000 runs"),
    ],
    ids=["grid-5^9-budget", "seeds-1000000"],
)
def test_tune_refuses_huge_work_as_sweep_does_naming_yes(args: list[str], runs: str) -> None:
    extra = GRID if "grid" in args else []
    line = _one_line(["tune", "redis-blip", *extra, *args])
    assert line.startswith(f"retrysim: error: {runs} (about "), line
    assert "days" in line or "hours" in line or "minutes" in line
    assert "--yes" in line


@pytest.mark.usefixtures("no_runs")
def test_a_whole_5_to_the_9_grid_is_refused_in_one_line_before_any_run() -> None:
    line = _one_line(["tune", "redis-blip", *GRID, "--strategy", "grid"])
    assert "1,953,125 candidates" in line and "--budget" in line


@pytest.mark.usefixtures("no_runs")
def test_tune_with_yes_starts_and_at_the_limit_needs_no_yes() -> None:
    over = ["tune", "redis-blip", "--search", "policy.max_attempts=2..6", "--seeds", "1000"]
    at_limit = (MAX_RUNS_WITHOUT_YES // (retrysim.runs.tune.BASELINES + 5)) - 1
    small = ["tune", "redis-blip", "--search", "policy.max_attempts=2..6"]
    for args in ([*over, "--yes"], [*small, "--seeds", str(at_limit)]):
        result = CliRunner().invoke(app, args)
        assert "retrysim: error: the runs started" in result.stderr, result.output


def test_planned_runs_counts_candidates_baselines_seeds_and_scenarios() -> None:
    from retrysim.runs.tune import Dimension, Objective, Tuning, planned_runs

    scenario = parse_scenario({})
    grid = Tuning(
        [Dimension("policy.max_attempts", 2, 6, integer=True)], Objective.of("p99_latency")
    )
    assert planned_runs(grid, [scenario]) == (5 + 2) * 3
    wide = Tuning(
        [Dimension("policy.min_wait", 0.1, 2.0)], Objective.of("p99_latency"), seeds=4, budget=9
    )
    assert planned_runs(wide, [scenario, scenario]) == (9 + 2) * 4 * 2


# --- a retry storm: the attempts budget ---------------------------------------------------------

STORM: dict[str, Any] = {
    "duration": 10,
    "policy": {"max_attempts": 10_000, "min_wait": 0, "max_wait": 0, "jitter": 0},
    "clients": {"count": 20},
    "faults": [{"kind": "outage", "start": 0, "end": 1000}],
}


@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_a_storm_with_zero_waits_stops_at_the_attempts_budget(
    monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    monkeypatch.setattr(limits, "ATTEMPTS_FLOOR", 3_000)
    result = simulate(parse_scenario(STORM), engine=engine)
    assert result.stopped == limits.attempts_stopped(3_000)
    assert "attempts budget" in result.stopped and "\n" not in result.stopped
    assert len(result.attempts) == 3_000
    assert result.end_time == 0.0  # virtual time never moved: only this bound could stop it
    assert violations(result) == []
    assert (result.calls["outcome"] == 2).all()  # every call unfinished, none lost


def test_both_engines_stop_a_storm_at_the_same_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "ATTEMPTS_FLOOR", 2_500)
    fast = simulate(parse_scenario(STORM), engine="fast")
    reference = simulate(parse_scenario(STORM), engine="reference")
    for column in ("call", "attempt", "start", "end", "error"):
        assert np.array_equal(fast.attempts[column], reference.attempts[column])


def test_the_budget_scales_with_the_calls_and_has_a_floor() -> None:
    few = parse_scenario({**STORM, "clients": {"count": 20}})
    many = parse_scenario({**STORM, "clients": {"count": 100_000}})
    assert limits.attempt_limit(few) == limits.ATTEMPTS_FLOOR
    assert limits.attempt_limit(many) == limits.ATTEMPTS_PER_CALL * 100_000


def test_the_run_prints_one_line_naming_the_bound(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setattr(limits, "ATTEMPTS_FLOOR", 2_000)
    path = tmp_path / "storm.toml"
    path.write_text(
        "duration = 10\n[policy]\nmax_attempts = 10000\nmin_wait = 0\nmax_wait = 0\n"
        '[clients]\ncount = 20\n[[faults]]\nkind = "outage"\nstart = 0\nend = 1000\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["run", str(path), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["stopped"].startswith("stopped after 2,000 attempts (the attempts budget")
    (unfinished,) = (d for d in doc["diagnoses"] if d["id"] == "unfinished_calls")
    assert "policy.min_wait" in unfinished["suggestion"]  # no limit to raise: give it a wait
    shown = CliRunner().invoke(app, ["run", str(path)], env={"COLUMNS": "400"})
    lines = [line for line in shown.stdout.splitlines() if "warning: stopped after" in line]
    assert len(lines) == 1 and lines[0].endswith("calls still running are reported unfinished")


def test_events_and_virtual_time_still_name_themselves() -> None:
    events = simulate(parse_scenario({**STORM, "limits": {"max_events": 100}}))
    assert events.stopped is not None and "limits.max_events" in events.stopped
    timed = parse_scenario(
        {
            **STORM,
            "policy": {**STORM["policy"], "min_wait": 1, "max_wait": 1},
            "limits": {"max_time": 5},
        }
    )
    stopped = simulate(timed).stopped
    assert stopped is not None and "limits.max_time" in stopped


# --- the pytest plugin: a test that never ends fails fast -----------------------------------

NEVER_ENDING = """
import asyncio
import pytest
import tenacity

@pytest.mark.retrysim(seed=1)
def test_zero_waits_for_ever():
    @tenacity.retry(wait=tenacity.wait_none())
    def down():
        raise ConnectionError("down")
    down()

@pytest.mark.retrysim(seed=1, max_time=60)
def test_waits_for_ever():
    @tenacity.retry(wait=tenacity.wait_fixed(1))
    def down():
        raise ConnectionError("down")
    down()

@pytest.mark.retrysim(seed=1, max_steps=500)
def test_swallowing_loop():
    @tenacity.retry(stop=tenacity.stop_after_attempt(1))
    def down():
        raise ConnectionError("down")
    while True:
        try:
            down()
        except Exception:
            pass

@pytest.mark.retrysim(seed=1)
def test_async_for_ever():
    async def main():
        async for attempt in tenacity.AsyncRetrying(wait=tenacity.wait_fixed(5)):
            with attempt:
                raise ConnectionError("down")
    asyncio.run(main())

@pytest.mark.retrysim(seed=1, max_time=3600)
def test_within_its_caps(virtual_time):
    @tenacity.retry(wait=tenacity.wait_fixed(60), stop=tenacity.stop_after_attempt(50))
    def down():
        raise ConnectionError("down")
    with pytest.raises(tenacity.RetryError):
        down()
    assert virtual_time.now == 49 * 60
"""


def test_never_ending_tests_fail_fast_naming_their_cap(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(NEVER_ENDING)
    result = run_plugin(pytester, "-rf")
    result.assert_outcomes(failed=4, passed=1)
    out = result.stdout.str()
    for line in (
        "100,000 tenacity attempts and sleeps (the retrysim max_steps cap)",
        "virtual time would pass 60 s (the retrysim max_time cap)",
        "500 tenacity attempts and sleeps (the retrysim max_steps cap)",
        "virtual time would pass 86400 s (the retrysim max_time cap)",
    ):
        result.stdout.fnmatch_lines([f"E *VirtualLimitError: {line}*"])
    assert out.count("caps: max_time=") == 4  # the replay section says which caps applied


def test_ini_options_set_the_caps_and_a_bad_one_is_named(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nretrysim_max_time = 30\nretrysim_max_steps = 40\n")
    pytester.makepyfile(
        """
        import pytest
        import tenacity

        @pytest.mark.retrysim
        def test_time():
            tenacity.retry(wait=tenacity.wait_fixed(7))(lambda: 1 / 0)()

        @pytest.mark.retrysim
        def test_steps():
            tenacity.retry(wait=tenacity.wait_none())(lambda: 1 / 0)()

        @pytest.mark.retrysim(max_steps=0)
        def test_bad():
            pass
        """
    )
    result = run_plugin(pytester)
    result.assert_outcomes(failed=2, errors=1)
    for line in (
        "*virtual time would pass 30 s (the retrysim max_time cap)*",
        "*40 tenacity attempts and sleeps (the retrysim max_steps cap)*",
        "*test_bad: @pytest.mark.retrysim(max_steps=...) is a whole number of at least 1, not 0",
    ):
        result.stdout.fnmatch_lines([line])


def test_a_never_ending_loop_of_calls_keeps_memory_bounded() -> None:
    """Each call fails with a 100 kB error; the clock keeps counts, never the outcomes."""

    @tenacity.retry(stop=tenacity.stop_after_attempt(2), wait=tenacity.wait_none())
    def down() -> None:
        raise ConnectionError("x" * 100_000)

    tracemalloc.start()
    try:
        with VirtualTime(max_steps=30_000) as clock, pytest.raises(VirtualLimitError):
            while True:
                try:
                    down()
                except Exception:
                    continue
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert clock.steps == 30_000 and clock.attempts >= 15_000
    assert peak < 20 * 2**20, f"{peak / 2**20:.0f} MiB"  # 10,000 calls' errors would be 1 GB


def test_the_caps_stay_once_hit_and_are_checked_before_the_clock_moves() -> None:
    with VirtualTime(max_time=10) as clock:
        clock.advance(10)  # up to the cap is fine
        with pytest.raises(VirtualLimitError, match="would pass 10 s"):
            clock.advance(1)
        assert clock.now == 10
        with pytest.raises(VirtualLimitError, match="would pass 10 s"):
            clock.sleep(0)  # any later step raises again: a loop that swallowed it stops


def test_bad_caps_are_refused() -> None:
    for bad in ({"max_time": 0}, {"max_time": math.nan}, {"max_steps": 0}, {"max_steps": 1.5}):
        with pytest.raises(ValueError, match="max_"):
            VirtualTime(**bad)


# --- the limiter's hold counts against the call's time limits ------------------------------


def test_the_deadline_cuts_a_limiters_hold_to_the_time_left() -> None:
    limiter = CubicRateLimiter("limiter", 0.7, 0.4, 0.5)
    limiter.after_outcome(0.0, RateLimitedError("slow down"))  # on, at the floor rate soon
    for _ in range(40):
        limiter.pace(0.0)  # a line of sends ahead of ours
    chain = GuardChain([PacingDeadline(2.0), limiter])
    held: list[float] = []
    limiter.notify.listeners = (lambda event: held.append(float(event.value)),)
    assert chain.pace(0.5) == pytest.approx(2.0)  # its first send: 2 s left, not the line
    assert chain.pace(1.5) == pytest.approx(1.0)  # the time left shrinks as the call goes on
    assert held == pytest.approx([2.0, 1.0])  # and the limiter reports the holds it gave
    assert GuardChain([limiter]).pace(1.5) > 10  # without a time limit: the whole line


def test_the_bound_is_the_earlier_limit_and_only_with_a_limiter() -> None:
    def specs(**options: Any) -> Any:
        parsed = PolicyOptions(**options)
        return pacing_bound(parsed.max_delay, parsed.mechanisms())

    assert specs(max_delay=2.0) == ()
    assert specs(adaptive={"limiter": True}) == ()
    (spec,) = specs(max_delay=5.0, adaptive={"limiter": True}, budget={"max_total_time": 3.0})
    assert spec.scope == "call" and spec.make().limit == 3.0


# The same bound in the simulator and the decorators, call by call:
# tests/test_fidelity_resilience.py (test_the_limiters_hold_counts_against_the_calls_time_limit).
