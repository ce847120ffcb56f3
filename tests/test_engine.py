"""The discrete-event engine: real tenacity stepping, virtual clock, determinism, independent
streams, arrivals, client timeouts, guards and records."""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import subprocess
import sys
import time as stdlib_time
from typing import Any

import numpy as np
import pytest
import tenacity
import tenacity.wait

import retrysim
import retrysim.retry.waits
from retrysim.model.scenario import ScenarioError, parse_scenario
from retrysim.results import metrics
from retrysim.retry.settings import RetrySettings
from retrysim.sim import engine as engine_module
from retrysim.sim import records as rec
from retrysim.sim.decide import ReferenceDecider
from retrysim.sim.engine import Engine, RunResult, ScenarioTooLargeError, simulate
from retrysim.sim.invariants import violations
from retrysim.sim.service import Server

FOREVER = {"kind": "outage", "start": 0, "end": 10**7}


def run(data: dict[str, Any], **kw: Any) -> RunResult:
    result = simulate(parse_scenario(data), **kw)
    assert violations(result) == []
    return result


def attempts_of(result: RunResult, call: int) -> np.ndarray:
    a = result.attempts
    mine = a[a["call"] == call]
    in_order: np.ndarray = mine[np.argsort(mine["attempt"])]
    return in_order


def by_call(result: RunResult) -> dict[tuple[int, int], tuple[Any, ...]]:
    """(client, index) -> the call row and its attempt rows, without run-specific call ids.

    Rows become their exact ``repr`` (floats round-trip exactly, NaN compares equal to NaN).
    """
    out: dict[tuple[int, int], tuple[Any, ...]] = {}
    call_fields = ["start", "end", "attempts", "outcome", "error", "executions"]
    fields = ["attempt", "outcome", "error", "start", "end", "wait", "executed"]
    for c in result.calls:
        rows = attempts_of(result, int(c["call"]))
        out[(int(c["client"]), int(c["index"]))] = (
            repr([c[f].item() for f in call_fields]),
            repr([[row[f].item() for f in fields] for row in rows]),
        )
    return out


# --- real tenacity, stepped on a virtual clock ---------------------------------------------------


def _tenacity_time() -> Any:
    """tenacity's ``time`` global (read from the namespace: tenacity does not re-export it)."""
    return vars(tenacity)["time"]


def _originals() -> tuple[Any, Any, Any]:
    return _tenacity_time(), vars(tenacity.wait)["random"], retrysim.retry.waits.random


def test_tenacity_globals_are_untouched_outside_a_run() -> None:
    assert _originals() == (stdlib_time, random, random)
    run({"clients": {"count": 3}, "faults": [{"kind": "flaky", "probability": 0.5}]})
    assert _originals() == (stdlib_time, random, random)


def test_the_engine_steps_tenacity_iter_with_globals_rebound_during_the_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[Any, ...]] = []
    real_iter = tenacity.BaseRetrying.iter

    def spy(self: tenacity.BaseRetrying, retry_state: tenacity.RetryCallState) -> Any:
        seen.append(
            (
                _tenacity_time() is stdlib_time,
                vars(tenacity.wait)["random"] is random,
                retrysim.retry.waits.random is random,
                _tenacity_time().monotonic(),
                retry_state.start_time,
            )
        )
        return real_iter(self, retry_state)

    monkeypatch.setattr(tenacity.BaseRetrying, "iter", spy)
    result = run(
        {
            "policy": {"max_attempts": 3, "profile": "full_jitter"},
            "clients": {"count": 4, "arrival": {"kind": "burst", "at": 7.5}},
            "faults": [{"kind": "flaky", "probability": 0.6}],
        },
        engine="reference",
    )
    # Per call of k attempts tenacity decides 2k times: DoAttempt before each attempt, and after
    # each attempt either DoSleep or the final answer.
    assert len(seen) == 2 * len(result.attempts)
    assert not any(time_is_real or r1 or r2 for time_is_real, r1, r2, _, _ in seen)
    # tenacity reads the virtual clock: the first decision of every call happens at t=7.5
    assert seen[0][3] == 7.5 and seen[0][4] == 7.5
    assert all(now >= 7.5 for *_, now, _ in seen)
    assert _originals() == (stdlib_time, random, random)


def test_the_fast_path_never_steps_iter_and_draws_each_wait_from_the_calls_own_stream(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from retrysim.sim.decide import FastCallState

    def no_iter(self: tenacity.BaseRetrying, retry_state: tenacity.RetryCallState) -> Any:
        raise AssertionError("the fast path stepped iter()")

    seen: list[tuple[bool, bool, float, int]] = []
    real_uniform = FastCallState.uniform

    def spy(self: FastCallState, a: float, b: float) -> float:
        seen.append(
            (
                _tenacity_time() is stdlib_time,
                vars(tenacity.wait)["random"] is random,
                _tenacity_time().monotonic(),
                self.attempt_number,
            )
        )
        return real_uniform(self, a, b)

    monkeypatch.setattr(tenacity.BaseRetrying, "iter", no_iter)
    monkeypatch.setattr(FastCallState, "uniform", spy)
    result = run(
        {
            "policy": {"max_attempts": 3, "profile": "full_jitter"},
            "clients": {"count": 4, "arrival": {"kind": "burst", "at": 7.5}},
            "faults": [{"kind": "flaky", "probability": 0.6}],
        },
        engine="fast",
    )
    a = result.attempts
    failed = a[a["outcome"] != 0]
    # tenacity draws a wait after every failed attempt it retries (before it checks the stop)
    assert len(seen) == len(failed) > 0
    assert not any(real or unrouted for real, unrouted, _, _ in seen)
    assert sorted(now for *_, now, _ in seen) == sorted(failed["end"].tolist())
    assert sorted(n for *_, n in seen) == sorted(failed["attempt"].tolist())
    assert _originals() == (stdlib_time, random, random)


def test_globals_are_restored_after_an_exception_inside_a_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_submit = Server.submit
    calls = {"n": 0}

    def boom(self: Server, *args: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 5:
            assert _tenacity_time() is not stdlib_time  # still inside the run
            raise RuntimeError("boom inside the run")
        real_submit(self, *args)

    monkeypatch.setattr(Server, "submit", boom)
    with pytest.raises(RuntimeError, match="boom inside the run"):  # the Python engine's globals
        simulate(parse_scenario({"clients": {"count": 10}}), engine="fast")
    assert _originals() == (stdlib_time, random, random)


def test_an_error_inside_tenacity_itself_is_not_recorded_as_a_give_up() -> None:
    """A crash in a retry strategy must surface, as it does through the production decorator.

    The engine treats *any* exception out of ``iter()`` as tenacity re-raising the attempt's
    error, so a strategy bug is silently recorded as "gave up with the previous error".
    """

    def broken_predicate(error: BaseException) -> bool:
        raise ZeroDivisionError("bug in a retry predicate")

    engine = Engine(
        parse_scenario({"clients": {"count": 3}, "faults": [FOREVER]}), engine="reference"
    )
    assert isinstance(engine.decider, ReferenceDecider)
    engine.decider.retrying = retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(3),
        retry=tenacity.retry_if_exception(broken_predicate),
        reraise=True,
    )
    # What tenacity itself does with this predicate: the ZeroDivisionError escapes.
    with pytest.raises(ZeroDivisionError):
        retrying(_refuse)
    with pytest.raises(ZeroDivisionError, match="bug in a retry predicate"):
        engine.run()
    assert _originals() == (stdlib_time, random, random)


def _refuse() -> None:
    raise ConnectionError("refused")


def test_exponential_waits_are_exactly_the_formula() -> None:
    # exponential: min(max_wait, min_wait * 2^(n-1)) = 1, 2, 4, 8 -> attempts at 0, 1, 3, 7, 15
    result = run(
        {
            "policy": {"profile": "exponential", "max_attempts": 5, "min_wait": 1, "max_wait": 10},
            "clients": {"count": 2},
            "faults": [FOREVER],
        }
    )
    for call in (0, 1):
        rows = attempts_of(result, call)
        assert rows["start"].tolist() == [0, 1, 3, 7, 15]
        assert rows["wait"][:-1].tolist() == [1, 2, 4, 8]
        assert np.isnan(rows["wait"][-1])
    assert np.all(result.calls["end"] == 15) and np.all(result.calls["attempts"] == 5)


def test_shipped_storage_waits_are_1_2_4_5() -> None:
    # bindu storage: wait_exponential(multiplier=1, min=0.5, max=5): clamp(2^(n-1), 0.5, 5)
    result = run(
        {
            "policy": {"operation": "storage", "profile": "bindu"},
            "clients": {"count": 3},
            "faults": [FOREVER],
        }
    )
    assert result.policy["max_attempts"] == 5
    for call in range(3):
        assert attempts_of(result, call)["wait"][:-1].tolist() == [1, 2, 4, 5]


def test_shipped_jitter_first_wait_is_exactly_min_wait() -> None:
    # bindu: U(min_wait, clamp(2^(n-1), min_wait, max_wait)); n=1 -> U(1, 1) = 1 for everyone
    result = run(
        {
            "policy": {"operation": "scheduler", "profile": "bindu"},
            "clients": {"count": 200},
            "faults": [FOREVER],
        }
    )
    a = result.attempts
    assert np.all(a["wait"][a["attempt"] == 1] == 1.0)
    second = a["wait"][a["attempt"] == 2]
    assert np.all((second >= 1.0) & (second <= 2.0)) and len(set(second.tolist())) > 100


def test_documented_waits_fall_in_the_documented_formula() -> None:
    # documented: min(max_wait, min_wait * 2^(n-1) + U(0, jitter)), jitter = 1
    result = run(
        {
            "policy": {"profile": "documented", "max_attempts": 6, "min_wait": 0.5, "max_wait": 6},
            "clients": {"count": 100},
            "faults": [FOREVER],
        }
    )
    a = result.attempts
    for n in range(1, 6):
        waits = a["wait"][a["attempt"] == n]
        lo, hi = min(6, 0.5 * 2 ** (n - 1)), min(6, 0.5 * 2 ** (n - 1) + 1)
        assert np.all((waits >= lo) & (waits <= hi)), n


@pytest.mark.parametrize(
    "profile", ["documented", "bindu", "full_jitter", "equal_jitter", "decorrelated", "exponential"]
)
def test_every_profile_waits_inside_its_policy_range(profile: str) -> None:
    result = run(
        {
            "policy": {"profile": profile, "max_attempts": 5, "min_wait": 0.5, "max_wait": 4},
            "clients": {"count": 50},
            "faults": [FOREVER],
        }
    )
    policy = engine_module.policy_for(result.scenario)
    a = result.attempts
    for n in range(1, 5):
        lo, hi = policy.wait_range(n)
        waits = a["wait"][a["attempt"] == n]
        assert np.all((waits >= lo - 1e-12) & (waits <= hi + 1e-12)), (profile, n)


def test_max_delay_runs_on_the_virtual_clock() -> None:
    # constant 1 s waits, stop after 3.5 virtual seconds: attempts at 0, 1, 2, 3, 4; the outcome
    # at t=4 is 4 s after the start (>= 3.5), so tenacity stops there. On the wall clock the
    # whole run takes milliseconds and all 100 attempts would be made.
    result = run(
        {
            "policy": {
                "profile": "exponential",
                "min_wait": 1,
                "max_wait": 1,
                "max_attempts": 100,
                "max_delay": 3.5,
            },
            "clients": {"count": 3},
            "faults": [FOREVER],
        }
    )
    assert np.all(result.calls["attempts"] == 5)
    assert np.all(result.calls["end"] == 4.0)


def test_settings_feed_the_one_policy_builder() -> None:
    s = parse_scenario({"policy": {"operation": "scheduler"}, "faults": [FOREVER]})
    default = simulate(s)
    assert default.policy["max_attempts"] == 3
    assert (default.policy["min_wait"], default.policy["max_wait"]) == (1.0, 8.0)
    tuned = simulate(s, settings=RetrySettings(scheduler_max_attempts=5))
    assert tuned.policy["max_attempts"] == 5
    assert int(tuned.calls["attempts"][0]) == 5
    explicit = simulate(
        s.with_overrides({"policy.max_attempts": 2}),
        settings=RetrySettings(scheduler_max_attempts=5),
    )
    assert int(explicit.calls["attempts"][0]) == 2
    assert explicit.policy["overrides"] == ["max_attempts"]


def test_a_run_does_not_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs are pure functions of (scenario, settings, seed)."""
    monkeypatch.setenv("RETRY__WORKER_MAX_ATTEMPTS", "7")
    result = run({"faults": [FOREVER]})
    assert result.policy["max_attempts"] == 3


# --- determinism ---------------------------------------------------------------------------------

BUSY: dict[str, Any] = {
    "seed": 4,
    "duration": 30,
    "policy": {"profile": "decorrelated", "max_attempts": 4, "min_wait": 0.2, "max_wait": 3},
    "clients": {
        "count": 150,
        "calls_per_client": 2,
        "think_time": 0.5,
        "timeout": 0.8,
        "arrival": {"kind": "uniform", "start": 0, "end": 5},
    },
    "service": {
        "kind": "queue",
        "concurrency": 8,
        "queue_limit": 20,
        "latency": {"dist": "lognormal", "median": 0.1, "p99": 1.0},
    },
    "faults": [
        {"kind": "flaky", "probability": 0.2},
        {"kind": "reset", "probability": 0.1},
        {
            "kind": "latency_spike",
            "start": 2,
            "end": 4,
            "extra": {"dist": "exponential", "mean": 0.5},
        },
        {"kind": "outage", "start": 6, "end": 7, "mode": "blackhole"},
    ],
}


def digest(result: RunResult) -> str:
    return hashlib.sha256(result.attempts.tobytes() + result.calls.tobytes()).hexdigest()


def test_same_scenario_and_seed_give_bit_identical_records_in_one_process() -> None:
    s = parse_scenario(BUSY)
    first = simulate(s)
    simulate(s.with_overrides({"policy.profile": "bindu"}), seed=99)  # something else between
    second = simulate(s)
    assert first.attempts.tobytes() == second.attempts.tobytes()
    assert first.calls.tobytes() == second.calls.tobytes()
    for name in ("start", "end", "wait"):
        assert np.array_equal(first.attempts[name], second.attempts[name], equal_nan=True)
    assert (first.events, first.end_time) == (second.events, second.end_time)


def test_a_different_seed_gives_different_records() -> None:
    s = parse_scenario(BUSY)
    assert digest(simulate(s, seed=1)) != digest(simulate(s, seed=2))
    assert digest(simulate(s)) == digest(simulate(s, seed=BUSY["seed"]))


_SCRIPT = """
import hashlib, json, sys
from retrysim.model.scenario import ScenarioError, parse_scenario
from retrysim.sim.engine import simulate
r = simulate(parse_scenario(json.loads(sys.argv[1])))
print(hashlib.sha256(r.attempts.tobytes() + r.calls.tobytes()).hexdigest())
"""


def test_same_scenario_and_seed_give_bit_identical_records_in_another_process() -> None:
    here = digest(simulate(parse_scenario(BUSY)))
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("RETRY__")}
    env["PYTHONHASHSEED"] = "12345"  # a different str hash: draws must not depend on hash()
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT, json.dumps(BUSY)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    )
    assert out.stdout.strip() == here


# --- independent streams -------------------------------------------------------------------------

INDEPENDENT: dict[str, Any] = {
    "seed": 21,
    "duration": 30,
    "policy": {"profile": "full_jitter", "max_attempts": 4, "min_wait": 0.5, "max_wait": 4},
    "clients": {"count": 60, "calls_per_client": 2, "think_time": 1.0, "timeout": 1.0},
    "service": {"kind": "ideal", "latency": {"dist": "lognormal", "median": 0.2, "p99": 2.0}},
    "faults": [
        {"kind": "flaky", "probability": 0.3},
        {"kind": "reset", "probability": 0.1},
    ],
}


def test_a_late_outage_changes_nothing_before_it() -> None:
    base = run(INDEPENDENT)
    late = base.end_time + 1
    data = {
        **INDEPENDENT,
        "faults": [*INDEPENDENT["faults"], {"kind": "outage", "start": late, "end": late + 5}],
    }
    other = run(data)
    assert other.attempts.tobytes() == base.attempts.tobytes()
    assert other.calls.tobytes() == base.calls.tobytes()


def test_a_fault_that_never_fires_changes_nothing() -> None:
    base = run(INDEPENDENT)
    data = {
        **INDEPENDENT,
        "faults": [
            *INDEPENDENT["faults"],
            {"kind": "flaky", "probability": 0.0},
            {"kind": "reset", "probability": 0.0, "error": "OSError"},
        ],
    }
    other = run(data)
    assert other.attempts.tobytes() == base.attempts.tobytes()
    assert other.calls.tobytes() == base.calls.tobytes()


def test_adding_clients_does_not_change_existing_clients_burst() -> None:
    base = run(INDEPENDENT)
    more = run({**INDEPENDENT, "clients": {**INDEPENDENT["clients"], "count": 75}})
    old, new = by_call(base), by_call(more)
    assert set(old) < set(new)
    assert all(new[key] == rows for key, rows in old.items())


def test_adding_clients_does_not_change_existing_clients_uniform_arrivals() -> None:
    """Client c's first-call time is a draw for c alone, so it must survive adding clients.

    (Each client's arrival time is drawn per client, but the engine then hands the sorted times
    out by rank, so the new client's draw shifts the identity of every later-arriving client.)
    """
    data = {
        **INDEPENDENT,
        "clients": {
            **INDEPENDENT["clients"],
            "arrival": {"kind": "uniform", "start": 0, "end": 10},
        },
    }
    base = run(data)
    more = run({**data, "clients": {**data["clients"], "count": 75}})
    old, new = by_call(base), by_call(more)
    changed = sorted(key for key, rows in old.items() if new[key] != rows)
    assert changed == []


# --- arrivals ------------------------------------------------------------------------------------


def test_burst_starts_every_first_call_at_its_instant() -> None:
    result = run({"clients": {"count": 50, "arrival": {"kind": "burst", "at": 2.5}}})
    assert np.all(result.calls["start"] == 2.5)
    assert sorted(result.calls["client"].tolist()) == list(range(50))


def test_uniform_arrivals_fill_their_half_open_window() -> None:
    result = run(
        {
            "duration": 20,
            "clients": {"count": 400, "arrival": {"kind": "uniform", "start": 3, "end": 8}},
        }
    )
    starts = result.calls["start"]
    assert np.all((starts >= 3) & (starts < 8))
    # 400 uniform draws: each fifth of the window holds 80 +- 5 sd (sd = sqrt(400 * .2 * .8) = 8)
    counts, _ = np.histogram(starts, bins=5, range=(3, 8))
    assert np.all(np.abs(counts - 80) < 5 * 8)


def test_poisson_count_is_within_five_sigma() -> None:
    rate, duration = 40.0, 50.0
    result = run({"duration": duration, "clients": {"arrival": {"kind": "poisson", "rate": rate}}})
    n = len(result.calls)
    mean = rate * duration  # Poisson: variance = mean
    assert abs(n - mean) < 5 * math.sqrt(mean)
    starts = result.calls["start"]
    assert np.all((starts >= 0) & (starts < duration))
    assert np.all(np.diff(np.sort(starts)) > 0)


def test_poisson_rate_schedule_raises_the_rate_inside_its_window() -> None:
    result = run(
        {
            "duration": 60,
            "clients": {
                "count": 7,
                "arrival": {
                    "kind": "poisson",
                    "rate": 10,
                    "schedule": [{"start": 20, "end": 30, "rate": 100}],
                },
            },
        }
    )
    starts = result.calls["start"]
    inside = int(np.sum((starts >= 20) & (starts < 30)))
    outside = len(starts) - inside
    assert abs(inside - 1000) < 5 * math.sqrt(1000)  # 100/s for 10 s
    assert abs(outside - 500) < 5 * math.sqrt(500)  # 10/s for 50 s
    assert inside / 10 > 3 * outside / 50
    # open loop: calls are spread over the clients, each call is a client's next call
    assert set(result.calls["client"].tolist()) == set(range(7))


def test_poisson_window_limits_arrivals() -> None:
    result = run(
        {
            "duration": 60,
            "clients": {"arrival": {"kind": "poisson", "rate": 20, "start": 10, "end": 20}},
        }
    )
    starts = result.calls["start"]
    assert np.all((starts >= 10) & (starts < 20))
    assert abs(len(starts) - 200) < 5 * math.sqrt(200)


def test_poisson_with_zero_rate_makes_no_calls() -> None:
    result = run({"clients": {"arrival": {"kind": "poisson", "rate": 0}}})
    assert len(result.calls) == 0 and len(result.attempts) == 0


def test_no_poisson_call_starts_at_or_after_the_duration() -> None:
    """``duration`` is when calls start: a window past it is refused, one crossing it is cut."""
    with pytest.raises(ScenarioError, match=r"clients\.arrival starts at 70s"):
        run({"duration": 60, "clients": {"arrival": {"kind": "poisson", "rate": 10, "start": 70}}})
    result = run(
        {
            "duration": 60,
            "clients": {"arrival": {"kind": "poisson", "rate": 10, "start": 50, "end": 90}},
        }
    )
    assert len(result.calls) > 0
    assert np.all(result.calls["start"] >= 50)
    assert np.all(result.calls["start"] < 60)


def test_closed_loop_next_call_starts_think_time_after_the_previous_ended() -> None:
    # latency 0.2 + think 0.5: a client calls at 0, 0.7, ..., 4.9; 5.6 would be past duration 5.
    result = run(
        {
            "duration": 5,
            "clients": {"count": 4, "think_time": 0.5, "arrival": {"kind": "closed"}},
            "service": {"kind": "ideal", "latency": 0.2},
        }
    )
    calls = result.calls
    for client in range(4):
        mine = calls[calls["client"] == client]
        mine = mine[np.argsort(mine["index"])]
        assert mine["index"].tolist() == list(range(8))
        assert np.all(mine["start"][1:] == mine["end"][:-1] + 0.5)
        assert mine["start"].max() < 5


def test_closed_loop_ramp_and_variable_latency_never_start_past_duration() -> None:
    result = run(
        {
            "duration": 10,
            "clients": {
                "count": 30,
                "think_time": 0.3,
                "timeout": 1.0,
                "arrival": {"kind": "closed", "ramp": 2},
            },
            "service": {"kind": "ideal", "latency": {"dist": "exponential", "mean": 0.4}},
            "faults": [{"kind": "flaky", "probability": 0.3}],
        }
    )
    calls = result.calls
    firsts = calls["start"][calls["index"] == 0]
    assert len(firsts) == 30 and np.all((firsts >= 0) & (firsts < 2))
    assert np.all(calls["start"] < 10)
    for client in range(30):
        mine = calls[calls["client"] == client]
        mine = mine[np.argsort(mine["index"])]
        assert np.all(mine["start"][1:] == mine["end"][:-1] + 0.3)
        # the loop only stops because the next start would be at or after the duration
        assert mine["end"][-1] + 0.3 >= 10


def test_calls_per_client_stop_at_the_duration() -> None:
    # calls of 1 s with 1 s think time: starts at 0, 2, 4; the 4th would start at 6 >= 5
    result = run(
        {
            "duration": 5,
            "clients": {"count": 3, "calls_per_client": 10, "think_time": 1.0},
            "service": {"kind": "ideal", "latency": 1.0},
        }
    )
    assert np.all(np.bincount(result.calls["client"]) == 3)
    assert sorted(set(result.calls["start"].tolist())) == [0.0, 2.0, 4.0]


# --- client timeouts ---------------------------------------------------------------------------


def test_slow_attempt_times_out_at_start_plus_timeout_and_the_server_keeps_working() -> None:
    result = run(
        {
            "policy": {"max_attempts": 1},
            "clients": {"count": 1, "timeout": 0.75, "arrival": {"kind": "burst", "at": 3}},
            "service": {"kind": "ideal", "latency": 2.0},
        }
    )
    (a,) = result.attempts
    assert a["outcome"] == rec.TIMED_OUT
    assert result.error_names[a["error"]] == "TimeoutError"
    assert a["end"] == 3 + 0.75
    assert a["executed"] == 1  # the server finished at t=5 although nobody waited
    assert result.end_time == 5.0
    assert result.calls["executions"][0] == 1
    assert metrics.wasted_work(result.attempts) == 1


def test_fast_attempt_is_not_timed_out() -> None:
    result = run(
        {"clients": {"count": 5, "timeout": 1.0}, "service": {"kind": "ideal", "latency": 0.999}}
    )
    assert np.all(result.attempts["outcome"] == rec.OK)


def test_retry_after_an_executed_timeout_is_a_duplicate() -> None:
    # attempt 1 at t=0 takes 0.5 + 2 (spike) = 2.5 s > timeout 1: times out at 1, the server
    # still commits it at 2.5. Wait 1 s, attempt 2 at t=2 takes 0.5 s and succeeds at 2.5.
    result = run(
        {
            "policy": {"profile": "exponential", "min_wait": 1, "max_wait": 1, "max_attempts": 3},
            "clients": {"count": 4, "timeout": 1.0},
            "service": {"kind": "ideal", "latency": 0.5},
            "faults": [{"kind": "latency_spike", "start": 0, "end": 0.5, "extra": 2.0}],
        }
    )
    for call in range(4):
        rows = attempts_of(result, call)
        assert rows["outcome"].tolist() == [rec.TIMED_OUT, rec.OK]
        assert rows["end"].tolist() == [1.0, 2.5]
        assert rows["executed"].tolist() == [1, 1]
    assert np.all(result.calls["executions"] == 2)
    assert metrics.duplicates(result.calls) == 4
    assert metrics.wasted_work(result.attempts) == 4


# --- guards --------------------------------------------------------------------------------------


def test_max_time_stops_the_run_and_reports_calls_unfinished() -> None:
    # waits of 100 s: attempts at 0 and 100; the next decision at 200 is past max_time 150
    result = run(
        {
            "policy": {
                "profile": "exponential",
                "min_wait": 100,
                "max_wait": 100,
                "max_attempts": 5,
            },
            "clients": {"count": 3},
            "faults": [FOREVER],
            "limits": {"max_time": 150},
        }
    )
    assert result.stopped is not None and "limits.max_time" in result.stopped
    assert np.all(result.calls["outcome"] == rec.UNFINISHED)
    assert np.all(np.isnan(result.calls["end"]))
    assert np.all(result.calls["attempts"] == 2)
    assert metrics.call_counts(result.calls)["unfinished"] == 3
    assert retrysim.summarize(result)["stopped"] == result.stopped


def test_default_max_time_is_ten_durations_plus_an_hour() -> None:
    # duration 1 -> limit 3610 s; a 5000 s wait crosses it
    result = run(
        {
            "duration": 1,
            "policy": {"profile": "exponential", "min_wait": 5000, "max_wait": 5000},
            "faults": [FOREVER],
        }
    )
    assert result.stopped is not None and "3610" in result.stopped


@pytest.mark.parametrize("engine", ["fast", "native"])  # the kernel's loop, and the core's
def test_max_events_stops_the_run_and_reports_calls_unfinished(engine: str) -> None:
    from retrysim.sim import native

    if engine == "native" and native.core() is None:
        pytest.skip(f"{native.absent()}: pip install -e '.[dev]' builds it")
    # 2,000 calls of one attempt each need about 2,000 events; allow 100.
    result = run({"clients": {"count": 2000}, "limits": {"max_events": 100}}, engine=engine)
    assert result.stopped is not None and "limits.max_events" in result.stopped
    assert result.events == 100
    counts = metrics.call_counts(result.calls)
    assert counts["unfinished"] >= 2000 - 100
    assert counts["total"] == counts["succeeded"] + counts["failed"] + counts["unfinished"]


def test_absurd_scenarios_are_refused_before_any_work(monkeypatch: pytest.MonkeyPatch) -> None:
    def must_not_run(*_: Any) -> Any:
        raise AssertionError("the engine started working on an impossible scenario")

    monkeypatch.setattr(engine_module, "first_calls", must_not_run)
    s = parse_scenario({"clients": {"count": 10**12}})
    with pytest.raises(ScenarioTooLargeError) as info:
        simulate(s)
    message = str(info.value)
    assert "clients.count" in message and "GiB" in message
    assert "1,000,000,000,000" in message  # the estimate names the number of calls
    assert isinstance(info.value, ValueError)


def test_a_normal_scenario_passes_the_size_check() -> None:
    result = run({"clients": {"count": 1000, "calls_per_client": 2}})
    assert len(result.calls) == 2000


# --- records -------------------------------------------------------------------------------------


def test_records_are_compact_numpy_structured_arrays() -> None:
    result = run(BUSY)
    assert isinstance(result.attempts, np.ndarray) and isinstance(result.calls, np.ndarray)
    assert result.attempts.dtype == rec.ATTEMPT_DTYPE and result.calls.dtype == rec.CALL_DTYPE
    assert rec.ATTEMPT_DTYPE.itemsize <= 64
    assert set(rec.ATTEMPT_DTYPE.names or ()) >= {
        "call",
        "client",
        "attempt",
        "outcome",
        "error",
        "start",
        "end",
        "wait",
        "executed",
    }
    assert rec.empty_attempts(3).shape == (3,) and rec.empty_calls().shape == (0,)
    assert result.calls["call"].tolist() == list(range(len(result.calls)))
    assert set(result.attempts["call"].tolist()) <= set(range(len(result.calls)))
    assert result.error_names[0] == ""
    assert all(result.error_names[c] for c in result.attempts["error"] if c)


def test_call_record_summarises_its_attempts() -> None:
    result = run(BUSY)
    for c in result.calls[:50]:
        rows = attempts_of(result, int(c["call"]))
        assert len(rows) == c["attempts"]
        assert rows["start"][0] == c["start"]
        assert int(rows["executed"].sum()) == c["executions"]
        if c["outcome"] == rec.SUCCEEDED:
            assert rows["outcome"][-1] == rec.OK and c["end"] == rows["end"][-1]
            assert c["error"] == 0
        elif c["outcome"] == rec.GAVE_UP:
            assert c["error"] == rows["error"][-1] != 0 and c["end"] == rows["end"][-1]


@pytest.mark.parametrize("path", ["fast", "reference"])
def test_a_run_that_raises_leaves_the_callers_jitter_context_as_it_was(path: str) -> None:
    from retrysim.sim.clock import current_stream
    from retrysim.sim.engine import Engine
    from retrysim.sim.streams import Stream

    scenario = parse_scenario(
        {"clients": {"count": 3}, "faults": [{"kind": "outage", "start": 0, "end": 5}]}
    )
    engine = Engine(scenario, engine=path)

    def broken(_: Any) -> bool:
        raise RuntimeError("a bug in a retry predicate")

    decider = engine.decider
    if isinstance(decider, ReferenceDecider):
        decider.retrying.retry = broken
    else:
        decider.strategies = (*decider.strategies[:2], broken)
    mine = Stream(1, 2)
    token = current_stream.set(mine)
    try:
        with pytest.raises(RuntimeError, match="retry predicate"):
            engine.run()
        assert current_stream.get() is mine
    finally:
        current_stream.reset(token)
