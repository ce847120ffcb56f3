"""Answers: a fault or a server that returns a value (an HTTP status) instead of raising.

A gate fault's ``answer`` (and a rate limiter's ``reject_answer``) makes the attempt return that
value: tenacity is handed it as the call's result, which a result predicate
(``retry_if_result``) may retry. The records keep it under ``result:<value>``: a failed attempt
when the policy rejected it (retried, or the last of a call that gave up), an ok one when the
policy took it as the call's result. Proved on both decision paths, against tenacity's own
async loop (fidelity mode), and through ``retrysim run --policy``.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tenacity import (
    AsyncRetrying,
    Retrying,
    retry_if_exception_type,
    retry_if_not_result,
    retry_if_result,
    stop_after_attempt,
    wait_fixed,
)
from typer.testing import CliRunner

from retrysim.cli.app import app
from retrysim.model.lint import lint
from retrysim.model.scenario import Scenario, ScenarioError, parse_scenario
from retrysim.results import metrics
from retrysim.sim import records as rec
from retrysim.sim.engine import RunResult, simulate
from retrysim.sim.failures import ANSWER_BASE, CODE_NAMES, Answers
from retrysim.sim.fidelity import run_with_decorators
from retrysim.sim.foreign import probe
from retrysim.sim.invariants import violations
from tests.test_fast_path import assert_identical, both
from tests.test_fidelity import assert_same
from tests.test_fidelity_resilience import UNIFORM as RESILIENCE_BASE
from tests.test_fidelity_resilience import scenario_with
from tests.test_foreign_policy import module_of_the_users

#: 200 calls over 15 s; from 5 s to 6 s the dependency answers 503 instead of serving.
ANSWERS: dict[str, Any] = {
    "name": "answers",
    "seed": 1,
    "duration": 20,
    "clients": {"count": 200, "arrival": {"kind": "uniform", "end": 15}},
    "service": {"kind": "ideal", "latency": 0.01},
    "faults": [{"kind": "outage", "start": 5, "end": 6, "answer": 503}],
}


def retry_503(attempts: int = 3) -> Retrying:
    return Retrying(
        retry=retry_if_result(lambda r: r == 503),
        stop=stop_after_attempt(attempts),
        wait=wait_fixed(0.1),
    )


def names(result: RunResult, column: np.ndarray) -> list[str]:
    return [result.error_names[int(code)] for code in column]


def in_window(result: RunResult) -> np.ndarray:
    starts = result.attempts["start"]
    return np.asarray((starts >= 5) & (starts < 6))


# -- the scenario's keys ----------------------------------------------------------------------


def test_an_answer_is_a_status_or_a_word() -> None:
    scenario = parse_scenario(
        {
            "faults": [
                {"kind": "outage", "start": 1, "end": 2, "answer": 503},
                {"kind": "flaky", "probability": 0.1, "answer": "busy"},
                {"kind": "recovery_ramp", "start": 2, "end": 3, "answer": 503},
            ],
            "service": {"kind": "rate_limited", "rate": 5, "reject_answer": 429},
        }
    )
    assert scenario.answers == (503, "busy", 429)  # faults first, each once
    assert Answers(scenario.answers).names[ANSWER_BASE:] == (
        "result:503",
        "result:busy",
        "result:429",
        "result:None",
    )


@pytest.mark.parametrize("bad", [True, 503.0, "503", "None", 1000, -1, "two words", "x" * 33])
def test_anything_else_is_refused_in_one_line_naming_the_key(bad: Any) -> None:
    fault = {"kind": "outage", "start": 1, "end": 2, "answer": bad}
    with pytest.raises(ScenarioError, match=r"^<scenario>: faults\.0\.answer: .* is no answer"):
        parse_scenario({"faults": [fault]})


def test_an_answer_carries_no_retry_after_and_answers_are_bounded() -> None:
    fault = {"kind": "flaky", "probability": 1, "answer": 429, "retry_after": 2}
    with pytest.raises(ScenarioError, match="answer 429 is a returned value and carries none"):
        parse_scenario({"faults": [fault]})
    many = [{"kind": "flaky", "probability": 0.01, "answer": n} for n in range(65)]
    with pytest.raises(ScenarioError, match="65 distinct answers; at most 64"):
        parse_scenario({"faults": many})


def test_an_error_set_beside_an_answer_is_linted_as_doing_nothing() -> None:
    fault = {"kind": "flaky", "probability": 0.5, "error": "TimeoutError", "answer": 503}
    scenario = parse_scenario({"faults": [fault]})
    found = {(f.key, f.text) for f in lint(scenario, frozenset({"faults.0.error"}))}
    assert any(key == "faults.0.error" and "without an answer" in text for key, text in found)


# -- the engine: results handed to tenacity ---------------------------------------------------


@pytest.mark.parametrize("engine", ["auto", "reference"])
def test_a_result_predicate_retries_answers_and_calls_succeed_after_the_window(
    engine: str,
) -> None:
    result = simulate(parse_scenario(ANSWERS), retrying=retry_503(attempts=30), engine=engine)
    assert result.engine == "reference"  # a policy of your own
    assert violations(result) == []
    window = in_window(result)
    assert window.any()
    # every attempt in the window was answered 503, and the predicate retried it, 0.1 s later
    assert set(names(result, result.attempts["error"][window])) == {"result:503"}
    assert (result.attempts["outcome"][window] == rec.FAILED).all()
    assert (result.attempts["wait"][window] == 0.1).all()
    # and every call got through once the window closed
    assert (result.calls["outcome"] == rec.SUCCEEDED).all()
    assert int(result.calls["attempts"].max()) > 1
    assert metrics.failures_by_type(result.attempts, result.error_names) == {
        "result:503": int(window.sum())
    }


def test_attempts_running_out_on_an_answer_is_a_failed_call_named_by_it() -> None:
    """tenacity raises RetryError when the stop ends a call whose last attempt returned (even
    with reraise: there is no error to raise): a call that gave up, on result:503."""
    result = simulate(parse_scenario(ANSWERS), retrying=retry_503(attempts=3))
    gave_up = result.calls["outcome"] == rec.GAVE_UP
    assert gave_up.any()
    assert set(names(result, result.calls["error"][gave_up])) == {"result:503"}
    assert (result.calls["attempts"][gave_up] == 3).all()
    assert metrics.final_errors(result.calls, result.error_names) == {
        "result:503": int(gave_up.sum())
    }


def test_a_call_that_gave_up_on_an_answer_is_not_called_unretried() -> None:
    """A call ends on an answer only when its result predicate rejected it: with one attempt
    allowed, the diagnosis is that attempts ran out in the fault, not that 503 is unretried."""
    from retrysim.runs.runner import run

    once = Retrying(retry=retry_if_result(lambda r: r == 503), stop=stop_after_attempt(1))
    document = run(parse_scenario(ANSWERS), retrying=once, baseline=False).document
    assert document["final_errors"] and set(document["final_errors"]) == {"result:503"}
    assert document["give_ups"]["not_retried"] == {}
    assert document["give_ups"]["during_fault"] == document["final_errors"]["result:503"]


def test_an_exception_only_policy_takes_an_answer_as_the_calls_result() -> None:
    """With a policy that retries only exceptions a result is a success for tenacity: the
    attempt is ok, recorded under its answer, and no failure; both paths agree."""
    fast, reference = both(parse_scenario(ANSWERS))
    assert_identical(fast, reference)
    window = in_window(fast)
    assert set(names(fast, fast.attempts["error"][window])) == {"result:503"}
    assert (fast.attempts["outcome"][window] == rec.OK).all()
    assert (fast.calls["outcome"] == rec.SUCCEEDED).all()
    assert metrics.failures_by_type(fast.attempts, fast.error_names) == {}
    # the answer is recorded; without the fault every attempt would be a plain success
    plain = simulate(parse_scenario({**ANSWERS, "faults": []}))
    assert (plain.attempts["error"] == 0).all()


@pytest.mark.parametrize("mechanism", ["breaker", "tokens", "quota", "adaptive", "limiter"])
def test_answers_with_guards_decide_alike_on_both_paths(mechanism: str) -> None:
    """Guards put the fast path on strategies called as they are, which read tenacity's
    outcome: an answer's outcome must read as a returned value there too."""
    data = scenario_with(RESILIENCE_BASE, mechanism, "fleet").model_dump(mode="python")
    data["faults"].append({"kind": "flaky", "start": 1, "end": 30, "probability": 0.3,
                           "answer": "busy"})  # fmt: skip
    fast, reference = both(Scenario.model_validate(data))
    assert_identical(fast, reference)
    assert (fast.attempts["error"] == fast.error_names.index("result:busy")).any()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    profile=st.sampled_from(["documented", "bindu", "full_jitter", "decorrelated"]),
    probability=st.floats(0.05, 1.0),
    answer=st.one_of(st.integers(0, 999), st.sampled_from(["busy", "retry_later"])),
    seed=st.integers(0, 2**32),
)
def test_fast_path_equals_reference_with_answers_mixed_into_errors(
    profile: str, probability: float, answer: int | str, seed: int
) -> None:
    data = {
        **ANSWERS,
        "seed": seed,
        "policy": {"profile": profile, "max_attempts": 4, "min_wait": 0.05},
        "faults": [
            {"kind": "flaky", "start": 2, "end": 9, "probability": probability, "answer": answer},
            {"kind": "outage", "start": 4, "end": 5, "error": "ConnectionResetError"},
        ],
    }
    assert_identical(*both(parse_scenario(data)))


def test_over_connections_an_answer_keeps_its_connection_as_a_live_servers_answer_does() -> None:
    """An answer comes back after the round trip and leaves the connection open (a 503 is a
    live server's answer); a refusal in the same window closes connections and costs
    connects."""
    networked = {
        **ANSWERS,
        "clients": {**ANSWERS["clients"], "processes": 10, "pool_size": 2},
        "network": {"rtt": {"dist": "lognormal", "median": 0.002, "p99": 0.02}},
    }
    answered, reference = both(parse_scenario(networked))
    assert_identical(answered, reference)
    assert (answered.attempts["error"] == answered.error_names.index("result:503")).any()
    plain = simulate(parse_scenario({**networked, "faults": []}))
    refused = simulate(parse_scenario({**networked, "faults": [{**ANSWERS["faults"][0],
                                                                "answer": None}]}))  # fmt: skip
    assert answered.connections is not None and plain.connections is not None
    assert refused.connections is not None
    assert answered.connections["connects"] == plain.connections["connects"]
    assert refused.connections["connects"] > plain.connections["connects"]


def test_a_fast_path_retry_that_retries_a_returned_none_is_asked_too() -> None:
    """``retry_unless_exception_type`` (a mirror) retries any returned value, None included:
    the fast path must then judge a served request's None, not take it as a success."""
    from tenacity import retry_unless_exception_type

    from retrysim.retry.policy import build_policy

    policy = build_policy("worker", retry=retry_unless_exception_type(KeyError), max_attempts=3)
    scenario = parse_scenario({**ANSWERS, "clients": {"count": 20}})
    fast = simulate(scenario, retrying=policy, engine="fast")
    reference = simulate(scenario, retrying=policy, engine="reference")
    assert_identical(fast, reference)
    assert (fast.calls["outcome"] == rec.GAVE_UP).all()
    assert set(names(fast, fast.calls["error"])) == {"result:None"}


@pytest.mark.parametrize(
    ("retry", "gave_up_on", "taken"),
    [
        # every served request returns None, which this retries to the stop; a 503 is taken,
        # and an error never retried
        (
            retry_if_result(lambda r: r is None),
            {"result:None", "ConnectionError"},
            {"result:503"},
        ),
        # everything returned but 200 is retried (nothing answers 200); an error never is
        (
            retry_if_not_result(lambda r: r == 200),
            {"result:None", "result:503", "ConnectionError"},
            set(),
        ),
        # a result predicate or an exception predicate: the answer and the outage both retried
        (
            retry_if_result(lambda r: r == 503) | retry_if_exception_type(ConnectionError),
            set(),
            set(),
        ),
    ],
)
def test_tenacitys_result_predicates_and_their_combinations(
    retry: Any, gave_up_on: set[str], taken: set[str]
) -> None:
    data = {**ANSWERS, "faults": [*ANSWERS["faults"], {"kind": "outage", "start": 8, "end": 9}]}
    policy = Retrying(retry=retry, stop=stop_after_attempt(40), wait=wait_fixed(0.1))
    result = simulate(parse_scenario(data), retrying=policy)
    assert violations(result) == []
    calls, attempts = result.calls, result.attempts
    assert set(names(result, calls["error"][calls["outcome"] == rec.GAVE_UP])) == gave_up_on
    accepted = (attempts["outcome"] == rec.OK) & (attempts["error"] > 0)
    assert set(names(result, attempts["error"][accepted])) == taken


def test_the_engine_and_tenacitys_own_async_loop_agree_record_for_record() -> None:
    policy = AsyncRetrying(
        retry=retry_if_result(lambda r: r in (503, "busy"))
        | retry_if_exception_type(ConnectionError),
        stop=stop_after_attempt(4),
        wait=wait_fixed(0.3),
    )
    data = {
        **ANSWERS,
        "clients": {**ANSWERS["clients"], "timeout": 0.5},
        "faults": [
            *ANSWERS["faults"],
            {"kind": "flaky", "start": 7, "end": 12, "probability": 0.5, "answer": "busy"},
            {"kind": "outage", "start": 9, "end": 10},
            {"kind": "flaky", "start": 11, "end": 13, "probability": 0.5, "answer": 404},
        ],
    }
    scenario = parse_scenario(data)
    engine = simulate(scenario, retrying=policy)
    virtual = run_with_decorators(scenario, retrying=policy)
    assert_same(engine, virtual)
    assert virtual.error_names == engine.error_names
    ended = set(names(engine, engine.calls["error"]))
    assert {"result:503", "result:busy"} <= ended  # some ran out on answers, and were told so
    accepted = (engine.attempts["outcome"] == rec.OK) & (engine.attempts["error"] > 0)
    assert set(names(engine, engine.attempts["error"][accepted])) == {"result:404"}


def test_the_scenarios_own_decorator_takes_answers_as_results_in_fidelity_mode() -> None:
    scenario = parse_scenario({**ANSWERS, "clients": {**ANSWERS["clients"], "count": 60}})
    assert_same(simulate(scenario), run_with_decorators(scenario))


def test_a_rate_limiter_may_return_its_rejection_as_a_value() -> None:
    data = {
        **ANSWERS,
        "clients": {"count": 100, "arrival": {"kind": "burst", "at": 1}},
        "service": {"kind": "rate_limited", "rate": 50, "burst": 10, "reject_answer": 429},
        "faults": [],
    }
    scenario = parse_scenario(data)
    taken = simulate(scenario)  # the scenario's policy retries exceptions only
    assert (taken.calls["outcome"] == rec.SUCCEEDED).all()
    assert names(taken, taken.attempts["error"]).count("result:429") == 90
    retried = simulate(
        scenario,
        retrying=Retrying(
            retry=retry_if_result(lambda r: r == 429),
            stop=stop_after_attempt(50),
            wait=wait_fixed(0.5),
        ),
    )
    assert (retried.calls["outcome"] == rec.SUCCEEDED).all()
    assert int(retried.calls["attempts"].max()) > 1
    assert set(names(retried, retried.attempts["error"][retried.attempts["outcome"] == rec.FAILED]))
    assert retried.error_names[:ANSWER_BASE] == CODE_NAMES


def test_probing_says_a_policy_judges_results() -> None:
    found = probe(retry_503(), "answers")
    assert any("judges results" in note for note in found.notes)
    assert not any("judges results" in note for note in probe(Retrying(), "plain").notes)


# -- the command line -------------------------------------------------------------------------


@pytest.fixture
def result_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A module of the user's own whose policy retries a 503 answered as a value."""
    (tmp_path / "answers.toml").write_text(
        textwrap.dedent(
            """
            name = "answers"
            seed = 1
            duration = 20

            [clients]
            count = 1000
            arrival = {kind = "uniform", end = 10}

            [service]
            kind = "ideal"
            latency = 0.01

            # 503 answered for 0.15 s: a retry 0.1 s later may meet it again, a third never
            [[faults]]
            kind = "outage"
            start = 5
            end = 5.15
            answer = 503
            """
        )
    )
    yield from module_of_the_users(
        tmp_path,
        monkeypatch,
        "result_retries",
        """
        from tenacity import Retrying, retry_if_result, stop_after_attempt, wait_fixed

        on_503 = Retrying(
            retry=retry_if_result(lambda r: r == 503),
            stop=stop_after_attempt(3),
            wait=wait_fixed(0.1),
        )
        """,
    )


def test_retrysim_run_with_a_result_policy_retries_and_succeeds(result_policy: str) -> None:
    runner = CliRunner()
    done = runner.invoke(app, ["run", "answers.toml", "--policy", f"{result_policy}:on_503"])
    assert done.exit_code == 0, done.output
    assert "result:503" in done.output  # the failed attempts, by what they answered
    assert "judges results" in done.output
    as_json = runner.invoke(
        app, ["run", "answers.toml", "--policy", f"{result_policy}:on_503", "--json", "-q"]
    )
    assert as_json.exit_code == 0, as_json.output
    document = json.loads(as_json.output)
    assert document["calls"]["succeeded"] == document["calls"]["total"] == 1000
    assert document["attempts"]["retries"] > 0
    assert set(document["failures_by_type"]) == {"result:503"}
