"""Tiers against theory: the laws a call graph of retrying layers obeys.

A user's call goes down a chain of tiers; each layer above the last makes up to
``max_attempts`` attempts on the next. When the bottom fails every request, each layer
exhausts its attempts, so the bottom sees the product of the attempts of every layer above it
(the SRE book's 3 x 3 x 3 = 27); when the bottom never fails, no layer retries and each tier
sees one request per user call. Runs are deterministic, tier by tier, in this process and in a
fresh one; a deadline passed down stops the work below once the caller has given up; and the
fast path and the reference path write the same records at every tier.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrysim.model.library import load_scenario
from retrysim.model.scenario import Scenario, parse_scenario
from retrysim.sim import records as rec
from retrysim.sim.engine import RunResult, simulate
from retrysim.sim.invariants import violations
from retrysim.sim.result import TierRun
from retrysim.sim.tiers import tier_view

#: Waits of a millisecond and no jitter: retries that follow at once, in a fixed order.
TINY = {"min_wait": 0.001, "max_wait": 0.001, "jitter": 0.0}
TIER_NAMES = ("gateway", "service", "cache", "database")


def policy(attempts: int, **extra: Any) -> dict[str, Any]:
    return {"operation": "api", "max_attempts": attempts, **TINY, **extra}


def chain(
    attempts: list[int], *, bottom: dict[str, Any] | None, calls: int = 5, **top: Any
) -> dict[str, Any]:
    """A scenario of ``len(attempts)`` tiers: ``attempts[0]`` is the clients' max_attempts on
    the first tier, ``attempts[k]`` tier k-1's on tier k; the last tier has ``bottom`` as its
    one fault (None: it never fails). ``calls`` user calls arrive in the first second."""
    names = TIER_NAMES[: len(attempts)]
    tiers: dict[str, Any] = {
        name: {"service": {"kind": "ideal", "latency": 0.001}} for name in names
    }
    for name, made in zip(names[:-1], attempts[1:], strict=True):
        tiers[name]["policy"] = policy(made)
    if bottom is not None:
        tiers[names[-1]]["faults"] = [bottom]
    return {
        "name": "chain",
        "seed": 3,
        "duration": 10,
        "policy": policy(attempts[0]),
        "clients": {"count": calls, "arrival": {"kind": "uniform", "start": 0, "end": 1}, **top},
        "tiers": tiers,
    }


#: The bottom refuses every request, with an error every layer retries.
DOWN = {"kind": "outage", "start": 0, "end": 1000, "error": "ConnectionError"}


def tier_violations(scenario: Scenario, result: RunResult) -> list[tuple[str, list[str]]]:
    """The laws every run obeys, checked on each tier's records as a run of its own (the
    tier's view of the scenario: its callers, their policy, its service)."""
    found = []
    for level, tier in enumerate(result.tiers):
        alone = dataclasses.replace(
            result,
            scenario=tier_view(scenario, level),
            policy=tier.policy,
            attempts=tier.attempts,
            calls=tier.calls,
            capacity=tier.capacity,
            tiers=[],
        )
        found.append((tier.name, violations(alone)))
    return found


def run(data: dict[str, Any], *, check_tiers: bool = True, **kw: Any) -> RunResult:
    scenario = parse_scenario(data)
    result = simulate(scenario, **kw)
    assert result.stopped is None
    assert violations(result) == []
    if check_tiers:
        assert tier_violations(scenario, result) == [(t.name, []) for t in result.tiers]
    return result


def user_calls_of(tiers: list[TierRun], level: int) -> np.ndarray:
    """For each request tier ``level`` received, the user call (top-level call) it serves,
    followed up the graph through each tier's ``parents``."""
    rows = np.arange(len(tiers[level].attempts))
    for k in range(level, 0, -1):
        rows = tiers[k].parents[tiers[k].attempts["call"][rows]]
    return np.asarray(tiers[0].attempts["call"][rows], dtype=np.int64)


def requests_per_user_call(result: RunResult, level: int) -> np.ndarray:
    return np.bincount(user_calls_of(result.tiers, level), minlength=len(result.calls))


# -- amplification ------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=2, max_size=4))
def test_a_dead_bottom_sees_the_product_of_the_attempts_above_it(attempts: list[int]) -> None:
    """Under total failure every layer exhausts its attempts: tier k receives, per user call,
    the product of the attempts of the k + 1 layers above it (27 = 3 x 3 x 3 at the bottom of
    three retrying layers), and every user call fails."""
    result = run(chain(attempts, bottom=DOWN))
    assert len(result.tiers) == len(attempts)
    assert np.all(result.calls["outcome"] == rec.GAVE_UP)
    for level in range(len(attempts)):
        expected = math.prod(attempts[: level + 1])
        assert requests_per_user_call(result, level).tolist() == [expected] * len(result.calls)
    # only the bottom failed anything by itself: every upper tier did its own work each time
    for tier in result.tiers[:-1]:
        assert np.all(tier.attempts["executed"] == 1)
    assert not np.any(result.tiers[-1].attempts["executed"])


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=2, max_size=4), st.integers(0, 2**32))
def test_a_healthy_bottom_sees_one_request_per_user_call(attempts: list[int], seed: int) -> None:
    data = chain(attempts, bottom=None, calls=20)
    data["seed"] = seed
    data["tiers"]["gateway"]["service"]["latency"] = {"dist": "exponential", "mean": 0.01}
    result = run(data)
    assert np.all(result.calls["outcome"] == rec.SUCCEEDED)
    for level, tier in enumerate(result.tiers):
        assert requests_per_user_call(result, level).tolist() == [1] * len(result.calls)
        assert np.all(tier.calls["attempts"] == 1)


def test_amplification_counts_only_the_layers_that_retry() -> None:
    """Retrying at one layer only (the top) keeps the bottom's load at that layer's attempts."""
    result = run(chain([3, 1, 1], bottom=DOWN))
    assert requests_per_user_call(result, 2).tolist() == [3] * len(result.calls)


# -- determinism --------------------------------------------------------------------------------


STORM: dict[str, Any] = {
    "name": "storm",
    "seed": 11,
    "duration": 8,
    "policy": {"operation": "api", "max_attempts": 3, "min_wait": 0.05, "max_wait": 0.2},
    "clients": {"count": 50, "timeout": 1.0, "arrival": {"kind": "poisson", "rate": 60}},
    "tiers": {
        "gateway": {
            "callers": 3,
            "policy": {"operation": "api", "max_attempts": 3, "min_wait": 0.02, "max_wait": 0.1},
            "timeout": 0.4,
            "service": {"kind": "ideal", "latency": {"dist": "exponential", "mean": 0.002}},
        },
        "service": {
            "callers": 5,
            "policy": {"operation": "storage", "max_attempts": 3, "min_wait": 0.01},
            "timeout": 0.15,
            "service": {"kind": "ideal", "latency": {"dist": "exponential", "mean": 0.003}},
            "faults": [{"kind": "flaky", "start": 1, "end": 6, "probability": 0.2}],
        },
        "database": {
            "service": {
                "kind": "queue",
                "concurrency": 2,
                "queue_limit": 30,
                "latency": {"dist": "lognormal", "median": 0.01, "p99": 0.08},
                "replicas": 3,
                "balance": "power_of_two",
            },
            "faults": [{"kind": "outage", "start": 2, "end": 4, "replicas": [1]}],
        },
    },
}


def tier_digest(result: RunResult) -> str:
    """One hash of every tier's attempts, calls and parents."""
    digest = hashlib.sha256()
    for tier in result.tiers:
        digest.update(tier.name.encode())
        for array in (tier.attempts, tier.calls, tier.parents):
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def test_the_same_scenario_and_seed_give_the_same_records_at_every_tier() -> None:
    first, second = run(STORM), run(STORM)
    assert [t.name for t in first.tiers] == ["gateway", "service", "database"]
    for ours, theirs in zip(first.tiers, second.tiers, strict=True):
        assert ours.attempts.tobytes() == theirs.attempts.tobytes(), ours.name
        assert ours.calls.tobytes() == theirs.calls.tobytes(), ours.name
        assert ours.parents.tobytes() == theirs.parents.tobytes(), ours.name
    # the storm did retry at every layer (else this proves little)
    assert all(len(t.attempts) > len(t.calls) for t in first.tiers)
    other = run({**STORM, "seed": 12})
    assert tier_digest(other) != tier_digest(first)


def test_a_fresh_interpreter_gives_the_same_records_at_every_tier() -> None:
    """Another process, another hash seed: the records must not depend on either."""
    program = (
        "import json, sys\n"
        "from retrysim.model.scenario import parse_scenario\n"
        "from retrysim.sim.engine import simulate\n"
        "from tests.test_tiers import tier_digest\n"
        "print(tier_digest(simulate(parse_scenario(json.loads(sys.stdin.read())))))\n"
    )
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", program],
        input=json.dumps(STORM),
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
        timeout=120,
    )
    assert done.stdout.strip() == tier_digest(run(STORM))


def with_tier_below(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with a tier below its last that never fails and answers at once; the old last
    tier calls it without retries (it needs a policy to call at all)."""
    tiers = json.loads(json.dumps(data["tiers"]))
    last = list(tiers)[-1]
    tiers[last]["policy"] = {"operation": "api", "max_attempts": 1}
    tiers["below"] = {"service": {"kind": "ideal", "latency": 0}}
    return {**data, "tiers": tiers}


def test_a_tier_below_that_never_fails_and_takes_no_time_changes_nothing_above() -> None:
    """Each tier draws from streams of its own, so a new tier below draws nothing from the
    tiers above; a request it serves in zero time with success answers its caller at the very
    instant the old last tier would have. Every record of every tier that was there before is
    the same, bit for bit (the storm's timeouts, retries and flaky faults included)."""
    before = run(STORM)
    after = run(with_tier_below(STORM))
    assert len(after.tiers) == len(before.tiers) + 1
    for old, new in zip(before.tiers, after.tiers, strict=False):
        assert old.attempts.tobytes() == new.attempts.tobytes(), old.name
        assert old.calls.tobytes() == new.calls.tobytes(), old.name
    executed = int(np.sum(before.tiers[-1].attempts["executed"]))
    assert len(after.tiers[-1].attempts) == executed  # one request per work done above


# -- deadlines ----------------------------------------------------------------------------------


def deadline_chain(propagate: bool) -> dict[str, Any]:
    """Users give up after 0.3 s; the gateway and the service below it retry slow attempts
    for about a second: work below outlives the user unless the deadline goes down."""
    slow = {"operation": "api", "max_attempts": 4, "min_wait": 0.1, "max_wait": 0.1}
    return {
        "name": "deadlines",
        "seed": 5,
        "duration": 20,
        "policy": {"operation": "api", "max_attempts": 2, **TINY},
        "clients": {
            "count": 30,
            "timeout": 0.3,
            "arrival": {"kind": "uniform", "start": 0, "end": 3},
        },
        "tiers": {
            "gateway": {
                "policy": {**slow, "jitter": 0.0},
                "propagate_deadline": propagate,
                "service": {"kind": "ideal", "latency": 0.001},
            },
            "service": {
                "policy": {**slow, "jitter": 0.05},
                "timeout": 0.15,
                "propagate_deadline": propagate,
                "service": {"kind": "ideal", "latency": 0.002},
            },
            "database": {"service": {"kind": "ideal", "latency": 0.2}},
        },
    }


def late_requests(result: RunResult) -> tuple[int, int]:
    """(requests started, attempts still open) after the request they serve was given up by
    its caller, summed over the tiers below the top: the upper attempt's end is when its
    caller stopped waiting (its answer, or its timeout)."""
    started = still_open = 0
    for upper, tier in zip(result.tiers, result.tiers[1:], strict=False):
        parent = tier.parents[tier.attempts["call"]]
        gave_up = upper.attempts["end"][parent]
        assert not np.any(np.isnan(gave_up))
        started += int(np.sum(tier.attempts["start"] > gave_up))
        still_open += int(np.sum(tier.attempts["end"] > gave_up))
    return started, still_open


def test_a_propagated_deadline_starts_no_work_below_after_the_caller_gave_up() -> None:
    without = run(deadline_chain(False))
    started, still_open = late_requests(without)
    assert started > 0 and still_open > 0  # abandoned work goes on below without it
    # the users did give up (the premise): their attempts timed out
    assert np.any(without.attempts["outcome"] == rec.TIMED_OUT)

    # (each tier's records keep the invariants: a call a deadline stops counts only the
    # attempts it sent)
    with_deadline = run(deadline_chain(True))
    assert late_requests(with_deadline) == (0, 0)
    assert np.any(with_deadline.attempts["outcome"] == rec.TIMED_OUT)
    # and the work below shrinks: fewer requests reach the database
    assert len(with_deadline.tiers[-1].attempts) < len(without.tiers[-1].attempts)


# -- the fast path and the reference path --------------------------------------------------------


@pytest.mark.parametrize("balance", ["round_robin", "random", "least_outstanding", "power_of_two"])
@pytest.mark.parametrize("retry_other_host", [False, True])
def test_the_fast_and_reference_paths_write_the_same_records_at_every_tier(
    balance: str, retry_other_host: bool
) -> None:
    data = json.loads(json.dumps(STORM))
    data["tiers"]["database"]["service"]["balance"] = balance
    data["tiers"]["service"]["policy"]["retry_other_host"] = retry_other_host
    data["tiers"]["gateway"]["propagate_deadline"] = True
    scenario: Scenario = parse_scenario(data)
    fast = simulate(scenario, engine="fast")
    reference = simulate(scenario, engine="reference")
    assert (fast.engine, reference.engine) == ("fast", "reference")
    assert [t.engine for t in fast.tiers] == ["fast"] * 3
    assert [t.engine for t in reference.tiers] == ["reference"] * 3
    for ours, theirs in zip(fast.tiers, reference.tiers, strict=True):
        for name in ours.attempts.dtype.names or ():
            assert ours.attempts[name].tobytes() == theirs.attempts[name].tobytes(), (
                ours.name,
                name,
            )
        for name in ours.calls.dtype.names or ():
            assert ours.calls[name].tobytes() == theirs.calls[name].tobytes(), (ours.name, name)
        assert ours.parents.tobytes() == theirs.parents.tobytes(), ours.name
    assert (fast.end_time, fast.events) == (reference.end_time, reference.events)
    assert len(set(fast.tiers[-1].attempts["replica"].tolist())) == 3  # every replica served


# -- the bundled storm -----------------------------------------------------------------------------


def test_the_bundled_storm_reaches_27_queries_and_retrying_at_one_tier_ends_it() -> None:
    """``three-tier-storm``: three retrying layers over a database outage reach the product,
    3 x 3 x 3, for some user call; with the gateway and the service not retrying, the
    database sees at most the clients' 3 per user call, and far fewer calls fail."""
    storm = load_scenario("three-tier-storm")
    every = run(storm.model_dump(mode="python"))
    one = run(
        storm.with_overrides(
            {"tiers.gateway.policy.max_attempts": 1, "tiers.service.policy.max_attempts": 1}
        ).model_dump(mode="python")
    )
    assert requests_per_user_call(every, 2).max() == 27
    assert requests_per_user_call(one, 2).max() == 3
    assert len(one.tiers[2].attempts) * 5 < len(every.tiers[2].attempts)

    def success(result: RunResult) -> float:
        return float(np.mean(result.calls["outcome"] == rec.SUCCEEDED))

    assert success(one) > 1.5 * success(every)
