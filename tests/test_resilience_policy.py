"""The mechanisms in the policy: defaults off, settings from the environment and ``.env``, and
how a budget joins tenacity's stop.

Every knob has a ``RETRY__<OPERATION>_<MECHANISM>_<KNOB>`` setting; these tests show one
reaching a decorated function's breaker or budget, a bad one named in the error, and the
documented defaults leaving every mechanism off.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tenacity.stop import stop_after_attempt, stop_any, stop_before_delay

from retrysim.retry import (
    GuardSpec,
    GuardStates,
    ServerError,
    SettingsError,
    build_policy,
    load_settings,
    retry_api_call,
    retry_worker_operation,
    use_settings,
)
from retrysim.retry.breaker import CircuitBreaker
from retrysim.retry.budget import TokenBudget
from retrysim.retry.exceptions import CircuitOpenError
from retrysim.retry.guards import GuardEvent
from retrysim.retry.mechanisms import MECHANISMS, mechanism_setting
from retrysim.retry.settings import OPERATIONS, RetrySettings

# The documented defaults of every knob (the public facts they follow, where there is one).
DOCUMENTED: dict[str, dict[str, Any]] = {
    "breaker": {
        "enabled": False,
        "mode": "calls",  # every attempt gated, as resilience4j and Polly gate calls
        "failure_threshold": 5,
        "failure_rate": 0.0,
        "window": 100,
        "window_seconds": 0.0,
        "minimum_calls": 10,
        "recovery_timeout": 60.0,
        "half_open_probes": 1,
        "name": "",
        "scope": "client",
    },
    "budget": {
        "enabled": False,
        "kind": "tokens",
        "max_tokens": 10.0,  # gRPC's example throttling policy: 10 tokens, ratio 0.1
        "token_ratio": 0.1,
        "percent": 0.2,  # Finagle's RetryBudget: 20% of requests, 10 retries/s, 10 s
        "min_retries_per_second": 10.0,
        "window": 10.0,
        "initial_allowance": 0,
        "quota_capacity": 500,  # botocore's standard retry quota: 500, a retry 5, a timeout's
        "retry_cost": 5,  # retry 10, a first-attempt success puts 1 back
        "timeout_retry_cost": 10,
        "success_refund": 1,
        "max_total_time": None,
        "scope": "client",
    },
    "adaptive": {
        "enabled": False,
        "window": 30.0,
        "max_factor": 4.0,
        "limiter": False,
        "limiter_beta": 0.7,  # CUBIC's beta and C, and the AWS SDKs' 0.5/s floor
        "limiter_scale": 0.4,
        "limiter_min_rate": 0.5,
        "scope": "client",
    },
    "hedge": {
        "enabled": False,
        "max_attempts": 2,  # gRPC's maxAttempts counts the original: one hedge
        "delay": 2.0,  # Polly's default hedging delay
    },
}


@pytest.mark.parametrize("operation", OPERATIONS)
def test_the_defaults_leave_every_mechanism_off(operation: str) -> None:
    policy = build_policy(operation, RetrySettings.defaults())
    assert policy.guards == ()
    described = policy.describe()
    for mechanism, knobs in DOCUMENTED.items():
        assert described[mechanism] == knobs
    assert isinstance(policy.stop, stop_after_attempt)  # the attempt limit alone: no time budget
    timed = build_policy(operation, RetrySettings.defaults(), budget={"max_total_time": 9.0})
    assert isinstance(timed.stop, stop_any)
    assert [type(s) for s in timed.stop.stops] == [stop_after_attempt, stop_before_delay]
    before = timed.stop.stops[1]
    assert isinstance(before, stop_before_delay) and before.max_delay == 9.0
    assert timed.guards == ()  # a per-call time budget needs no shared state


def test_every_knob_has_a_setting_with_the_documented_default() -> None:
    defaults = RetrySettings.defaults()
    for operation in OPERATIONS:
        for mechanism, model in MECHANISMS.items():
            assert set(model.model_fields) == set(DOCUMENTED[mechanism])
            for knob, value in DOCUMENTED[mechanism].items():
                assert getattr(defaults, mechanism_setting(operation, mechanism, knob)) == value


def _always_failing(ran: list[int], error: Exception) -> Any:
    def op() -> None:
        ran.append(1)
        raise error

    return op


def test_environment_variables_reach_a_decorated_functions_breaker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RETRY__API_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("RETRY__API_BREAKER_ENABLED", "true")
    monkeypatch.setenv("RETRY__API_BREAKER_FAILURE_THRESHOLD", "2")
    monkeypatch.setenv("retry__api_breaker_recovery_timeout", "30")  # names are case-blind
    use_settings(load_settings(env_file=None))
    states = GuardStates()
    ran: list[int] = []
    op = retry_api_call(guard_states=states, clock=lambda: 0.0)(
        _always_failing(ran, TimeoutError("slow"))
    )
    for _ in range(2):
        with pytest.raises(TimeoutError):
            op()
    with pytest.raises(CircuitOpenError) as refusal:
        op()
    assert len(ran) == 2 and refusal.value.retry_in == 30.0
    ((name, _, breaker),) = states.instances()
    assert name == "breaker:api" and isinstance(breaker, CircuitBreaker)
    assert breaker.options.failure_threshold == 2


def test_an_explicit_knob_wins_over_its_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRY__API_BREAKER_FAILURE_THRESHOLD", "2")
    monkeypatch.setenv("RETRY__API_BREAKER_HALF_OPEN_PROBES", "3")
    use_settings(load_settings(env_file=None))
    policy = build_policy("api", breaker={"failure_threshold": 9})
    assert policy.options.breaker.failure_threshold == 9
    assert policy.options.breaker.half_open_probes == 3  # unset here: the setting
    assert policy.options.breaker.enabled is False  # neither given nor set: off
    assert build_policy("api", breaker=True).guards[0].name == "breaker:api"
    assert build_policy("api", breaker="llm").guards[0].name == "breaker:llm"


def test_a_dot_env_file_reaches_a_decorated_functions_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = tmp_path / "service.env"
    env.write_text(
        "RETRY__WORKER_BUDGET_ENABLED=true\n"
        "RETRY__WORKER_BUDGET_MAX_TOKENS=2\n"
        "RETRY__WORKER_BUDGET_SCOPE=fleet\n"
        "RETRY__WORKER_MAX_ATTEMPTS=6\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("RETRY__WORKER_BUDGET_MAX_TOKENS", "4")  # the environment wins
    use_settings(load_settings(env))
    events: list[GuardEvent] = []
    states = GuardStates([events.append])
    ran: list[int] = []
    sleeps: list[float] = []
    op = retry_worker_operation(guard_states=states, sleep=sleeps.append, clock=lambda: 1.0)(
        _always_failing(ran, ConnectionError("down"))
    )
    with pytest.raises(ConnectionError):
        op()
    # 4 tokens: the failures leave 3 (retry), then 2 (not more than half): two attempts
    assert len(ran) == 2 and len(sleeps) == 1
    ((name, owner, bucket),) = states.instances()
    assert (name, owner) == ("budget:worker", None) and isinstance(bucket, TokenBudget)
    assert bucket.max_milli == 4000
    assert [e.kind for e in events] == ["budget_refused"]


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("RETRY__API_BREAKER_FAILURE_THRESHOLD", "-1", "greater than or equal to 0"),
        ("RETRY__API_BREAKER_FAILURE_THRESHOLD", "many", "integer"),
        ("RETRY__STORAGE_BREAKER_FAILURE_RATE", "1.5", "less than or equal to 1"),
        ("RETRY__WORKER_BREAKER_SCOPE", "galaxy", "client"),
        ("RETRY__API_BUDGET_KIND", "tickets", "tokens"),
        ("RETRY__API_BUDGET_TOKEN_RATIO", "0.0001", "thousandths"),
        ("RETRY__SCHEDULER_BUDGET_MAX_TOTAL_TIME", "-5", "greater than 0"),
        ("RETRY__API_ADAPTIVE_LIMITER_BETA", "1", "less than 1"),
        ("RETRY__WORKER_ADAPTIVE_MAX_FACTOR", "nan", "finite"),
    ],
)
def test_a_bad_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, says: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as error:
        load_settings(env_file=None)
    message = str(error.value)
    assert variable in message and says in message and "\n" not in message
    # a decorated function reads the settings when it is called: the same error, then
    op = retry_api_call(max_attempts=1)(lambda: "ok")
    with pytest.raises(SettingsError, match=variable):
        op()


def test_a_bad_value_in_a_dot_env_file_names_the_variable_and_the_file(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("RETRY__API_BUDGET_MAX_TOKENS=0\n", encoding="utf-8")
    with pytest.raises(SettingsError) as error:
        load_settings(env)
    assert "RETRY__API_BUDGET_MAX_TOKENS" in str(error.value) and str(env) in str(error.value)


def test_a_breaker_that_could_never_open_is_refused_naming_its_knobs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RETRY__API_BREAKER_ENABLED", "1")
    monkeypatch.setenv("RETRY__API_BREAKER_FAILURE_THRESHOLD", "0")
    with pytest.raises(SettingsError) as error:
        load_settings(env_file=None)
    message = str(error.value)
    assert "RETRY__API_BREAKER_ENABLED=True" in message
    assert "RETRY__API_BREAKER_FAILURE_THRESHOLD=0" in message
    assert "failure_threshold >= 1 or failure_rate > 0" in message and "\n" not in message
    # the same knobs given in code are refused where they are given
    with pytest.raises(ValueError, match="failure_threshold >= 1 or failure_rate > 0"):
        build_policy("api", breaker={"enabled": True, "failure_threshold": 0})


# --- a budget joins tenacity's stop --------------------------------------------------------


class CountingGate:
    """A retry gate that allows everything and counts how often it was asked."""

    asked = 0

    def before_attempt(self, now: float, attempt: int) -> BaseException | None:
        return None

    def after_outcome(self, now: float, error: BaseException | None) -> None:
        pass

    def allow_retry(self, now: float) -> bool:
        CountingGate.asked += 1
        return True


@pytest.mark.parametrize(
    ("max_attempts", "error", "asked"),
    [
        (3, ConnectionError("down"), 2),  # asked before each of the two retries, not after
        (1, ConnectionError("down"), 0),  # no retry left: never asked, never charged
        (5, ServerError("500"), 0),  # not retryable: never asked
    ],
)
def test_a_budget_is_asked_only_when_the_policy_would_retry(
    max_attempts: int, error: Exception, asked: int
) -> None:
    CountingGate.asked = 0
    ran: list[int] = []
    op = retry_worker_operation(
        max_attempts=max_attempts,
        min_wait=0,
        max_wait=0,
        guards=[GuardSpec("gate", "call", CountingGate)],
        sleep=lambda s: None,
    )(_always_failing(ran, error))
    with pytest.raises(type(error)):
        op()
    assert CountingGate.asked == asked


def test_an_exhausted_call_does_not_spend_the_budget() -> None:
    events: list[GuardEvent] = []
    states = GuardStates([events.append])
    ran: list[int] = []
    op = retry_worker_operation(
        max_attempts=1,
        budget={"enabled": True, "max_tokens": 1},
        guard_states=states,
        clock=lambda: 0.0,
    )(_always_failing(ran, ConnectionError("down")))
    for _ in range(3):
        with pytest.raises(ConnectionError):
            op()
    assert events == []  # the attempt limit stopped each call before the budget was asked
