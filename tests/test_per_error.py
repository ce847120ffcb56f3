"""Per-error policies: an error family's own attempts and waits, in every entry point.

The families (which errors are a 429, a 5xx, a refused connection, a timeout), the rule (the
latest error's family sets the limit; attempts count across the call; the wait after an error
is its family's), the real decorators on a recorded sleep, the settings and their sources, and
``retrysim settings`` showing a 429 schedule beside a refusal schedule. The engine against the
real decorators is in tests/test_fidelity.py, the fast path against the reference path in
tests/test_fast_path.py.
"""

from __future__ import annotations

import json
import random
import types
from collections.abc import Sequence
from typing import Any

import pytest
import tenacity
from hypothesis import given, settings
from hypothesis import strategies as st
from tenacity import RetryCallState, stop_after_attempt
from typer.testing import CliRunner

from retrysim.cli.app import app
from retrysim.model.scenario import ScenarioError, parse_scenario
from retrysim.names import PROFILES
from retrysim.retry import build_policy, retry_api_call
from retrysim.retry.exceptions import (
    CircuitOpenError,
    ConflictError,
    RateLimitedError,
    ServerError,
)
from retrysim.retry.options import ERROR_POLICY_NAMES, ErrorPolicy, parse_options
from retrysim.retry.per_error import (
    PER_ERROR_FAMILIES,
    most_attempts,
    per_error_family,
    stop_after_attempt_per_error,
    wait_per_error,
)
from retrysim.retry.settings import RetrySettings, SettingsError, load_settings
from retrysim.retry.waits import wait_retry_after
from retrysim.sim.catalogue import stand_in
from retrysim.sim.policy import policy_for

DEFAULTS = RetrySettings.defaults()


def _library_error(package: str, name: str, **attributes: Any) -> BaseException:
    """An instance of a class named like a client library's (``httpx.HTTPStatusError``), with
    the attributes the classifier reads: the library itself is never needed."""
    cls = type(name, (Exception,), {"__module__": f"{package}._exceptions"})
    error: BaseException = cls("boom")
    for key, value in attributes.items():
        setattr(error, key, value)
    return error


# --- which family an error is --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "family"),
    [
        (RateLimitedError("slow down", retry_after=2.0), "rate_limited"),
        (ServerError("500"), "server_error"),
        (ConnectionRefusedError(), "connection_error"),
        (ConnectionResetError(), "connection_error"),
        (OSError("socket"), "connection_error"),
        (TimeoutError(), "timeout_error"),
        (ConflictError("lost the race"), None),
        (CircuitOpenError(), None),  # a guard's refusal: never sent, never retried
        (ValueError("bug"), None),
        (stand_in("httpx.HTTPStatusError")("503"), "server_error"),
        (stand_in("aiohttp.ClientResponseError")("503"), "server_error"),
        (stand_in("redis.exceptions.BusyLoadingError")("loading"), "server_error"),
        (stand_in("redis.exceptions.ResponseError")("WRONGTYPE"), None),
        (stand_in("httpx.ConnectError")("refused"), "connection_error"),
        (stand_in("httpx.ReadTimeout")("slow"), "timeout_error"),
        (stand_in("botocore.exceptions.EndpointConnectionError")("down"), "connection_error"),
        (
            _library_error(
                "httpx", "HTTPStatusError", response=types.SimpleNamespace(status_code=429)
            ),
            "rate_limited",
        ),
        (_library_error("aiohttp", "ClientResponseError", status=502), "server_error"),
        (_library_error("aiohttp", "ClientResponseError", status=404), None),
        (
            _library_error("botocore", "ClientError", response={"Error": {"Code": "Throttling"}}),
            "rate_limited",
        ),
        (
            _library_error(
                "botocore", "ClientError", response={"Error": {"Code": "RequestTimeout"}}
            ),
            None,
        ),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else str(value),
)
def test_each_error_has_its_family(error: BaseException, family: str | None) -> None:
    assert per_error_family(error) == family


def test_the_families_are_the_policy_tables() -> None:
    assert tuple(PER_ERROR_FAMILIES) == ERROR_POLICY_NAMES
    assert all(PER_ERROR_FAMILIES[name] for name in PER_ERROR_FAMILIES)


# --- the rule, on tenacity's own call state ------------------------------------------------------

ERRORS: list[BaseException] = [
    RateLimitedError("429"),
    ServerError("503"),
    ConnectionRefusedError(),
    TimeoutError(),
    ConflictError("x"),
]


def _state(attempt: int, outcome: BaseException | object) -> RetryCallState:
    state = RetryCallState(tenacity.Retrying(), None, (), {})
    state.attempt_number = attempt
    if isinstance(outcome, BaseException):
        state.set_exception((type(outcome), outcome, None))
    else:
        state.set_result(outcome)
    return state


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 20),
    st.dictionaries(st.sampled_from(ERROR_POLICY_NAMES), st.integers(1, 12)),
    st.integers(1, 15),
    st.sampled_from([*ERRORS, "a result"]),
)
def test_the_latest_errors_family_sets_the_limit(
    default: int, limits: dict[str, int], attempt: int, outcome: BaseException | str
) -> None:
    """The stop is stop_after_attempt with the limit of the latest error's family (the
    policy's for a result or an error of no family with a limit)."""
    stop = stop_after_attempt_per_error(default, limits)
    family = per_error_family(outcome) if isinstance(outcome, BaseException) else None
    limit = limits.get(family, default) if family is not None else default
    assert stop(_state(attempt, outcome)) == stop_after_attempt(limit)(_state(attempt, outcome))


def test_the_wait_after_an_error_is_its_familys() -> None:
    slow, fast = tenacity.wait_fixed(7), tenacity.wait_fixed(0.5)
    wait = wait_per_error(tenacity.wait_fixed(1), {"rate_limited": slow, "connection_error": fast})
    assert wait(_state(2, RateLimitedError())) == 7
    assert wait(_state(2, ConnectionRefusedError())) == 0.5
    assert wait(_state(2, TimeoutError())) == 1  # a family without a wait of its own
    assert wait(_state(2, "a result")) == 1
    assert wait.waits == (wait.default, slow, fast)  # what walks a composed strategy sees


def test_a_policy_without_tables_builds_tenacitys_plain_strategies() -> None:
    """Nothing changes for a policy that names no family: the same strategy classes as
    before (so every existing run, and the fast path's counted stop, are untouched)."""
    for profile in PROFILES:
        policy = build_policy("api", DEFAULTS, profile=profile)
        assert type(policy.stop) is stop_after_attempt
        assert not isinstance(policy.wait, wait_per_error)


def test_tables_build_one_stop_and_one_wait_that_dispatch() -> None:
    policy = build_policy(
        "api",
        DEFAULTS,
        max_attempts=3,
        min_wait=0.1,
        rate_limited={"max_attempts": 8, "respect_retry_after": True},
        connection_error={"max_attempts": 2, "max_wait": 0.5},
        timeout_error={"max_attempts": 4},
    )
    assert isinstance(policy.stop, stop_after_attempt_per_error)
    assert policy.stop.limits == {"rate_limited": 8, "connection_error": 2, "timeout_error": 4}
    assert isinstance(policy.wait, wait_per_error)
    assert set(policy.wait.by_family) == {"rate_limited", "connection_error"}  # waits differ
    honoured = policy.wait.by_family["rate_limited"]
    assert isinstance(honoured, wait_retry_after)
    assert honoured.fallback is policy.wait.default  # only the hint differs: one formula
    assert (policy.most_attempts, policy.attempts_for(RateLimitedError())) == (8, 8)
    assert policy.attempts_for(ConnectionRefusedError()) == 2
    assert policy.attempts_for(ServerError()) == policy.attempts_for(None) == 3
    assert most_attempts(policy.describe()) == 8


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(PROFILES),
    st.sampled_from(ERROR_POLICY_NAMES),
    st.floats(0, 3),
    st.floats(0, 10),
    st.integers(2, 9),
    st.integers(0, 2**32),
)
def test_a_familys_schedule_bounds_the_waits_it_draws(
    profile: str, family: str, low: float, extra: float, attempts: int, seed: int
) -> None:
    """``for_family`` is the policy a call whose every error is of ``family`` meets: its
    schedule bounds every wait the real wait strategy draws after such an error."""
    table: dict[str, Any] = {family: {"max_attempts": attempts, "min_wait": low}}
    table[family]["max_wait"] = low + extra
    policy = build_policy("worker", DEFAULTS, profile=profile, **table)
    view = policy.for_family(family)
    assert view.max_attempts == attempts and len(view.schedule()) == attempts - 1
    error = {
        "rate_limited": RateLimitedError(),
        "server_error": ServerError(),
        "connection_error": ConnectionRefusedError(),
        "timeout_error": TimeoutError(),
    }[family]
    random.seed(seed)  # tenacity's and retrysim's waits draw through random
    for n, lo, hi, _ in view.schedule():
        drawn = policy.wait(_state(n, error))
        assert lo - 1e-9 <= drawn <= hi + 1e-9, (n, lo, drawn, hi)


# --- the real decorators -----------------------------------------------------------------------


def _run(outcomes: Sequence[BaseException], **options: Any) -> tuple[int, list[float], Any]:
    """Call a function that raises ``outcomes`` in turn (then returns "ok") through
    ``@retry_api_call(**options)`` with a recorded sleep: (attempts, sleeps, result or error)."""
    sleeps: list[float] = []
    calls: list[int] = []

    @retry_api_call(sleep=sleeps.append, **options)
    def call() -> str:
        calls.append(1)
        if len(calls) <= len(outcomes):
            raise outcomes[len(calls) - 1]
        return "ok"

    try:
        answer: Any = call()
    except Exception as error:
        answer = error
    return len(calls), sleeps, answer


POLICY: dict[str, Any] = {
    "max_attempts": 3,
    "min_wait": 0.1,
    "max_wait": 1.0,
    "profile": "exponential",
    "rate_limited": {"max_attempts": 8, "respect_retry_after": True, "max_wait": 4.0},
    "connection_error": {"max_attempts": 2, "max_wait": 0.2},
}


def test_a_429_schedule_and_a_refusal_schedule_in_one_decorated_function() -> None:
    limited = [RateLimitedError("429", retry_after=2.5) for _ in range(20)]
    attempts, sleeps, error = _run(limited, **POLICY)
    assert attempts == 8 and isinstance(error, RateLimitedError)
    # the hint where it is longer than the family's exponential (0.1 s doubling, 4 s at most)
    assert sleeps == [max(2.5, min(4.0, 0.1 * 2**n)) for n in range(7)]
    assert sleeps[-2:] == [3.2, 4.0]

    refused = [ConnectionRefusedError() for _ in range(20)]
    attempts, sleeps, error = _run(refused, **POLICY)
    assert attempts == 2 and isinstance(error, ConnectionRefusedError)
    assert sleeps == [0.1]

    timed_out = [TimeoutError() for _ in range(20)]  # no table: the policy's own numbers
    attempts, sleeps, _ = _run(timed_out, **POLICY)
    assert (attempts, sleeps) == (3, [0.1, 0.2])


def test_attempts_count_across_errors_and_the_latest_family_decides() -> None:
    # two 429s, then a refusal: attempt 3 reached the refusal's limit (2), so it stops there
    mixed = [RateLimitedError("429"), RateLimitedError("429"), ConnectionRefusedError()]
    attempts, sleeps, error = _run([*mixed, *mixed], **POLICY)
    assert attempts == 3 and isinstance(error, ConnectionRefusedError)
    # the wait after each error is its family's: the 429s' exponential runs to 4 s, and the
    # formula's n is the call's retry number overall
    attempts, sleeps, answer = _run(
        [ConnectionRefusedError(), *[RateLimitedError("429")] * 5], **POLICY
    )
    assert answer == "ok" and attempts == 7
    assert sleeps == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2]
    assert _run([ConnectionRefusedError()] * 5, **{**POLICY, "max_attempts": 9})[0] == 2


def test_events_and_logs_name_the_limit_of_the_latest_errors_family(
    caplog: pytest.LogCaptureFixture,
) -> None:
    retries: list[Any] = []
    exhausted: list[Any] = []
    hooks = {"on_retry": retries.append, "on_exhausted": exhausted.append}
    _run([RateLimitedError("429"), *[ConnectionRefusedError()] * 3], **POLICY, **hooks)
    assert [(event.attempt, event.max_attempts) for event in retries] == [(1, 8)]
    assert [(call.attempts, call.max_attempts) for call in exhausted] == [(2, 2)]
    assert "Retry attempts exhausted for" in caplog.text and "after 2/2 attempts" in caplog.text


# --- options, scenarios and settings -----------------------------------------------------------


def test_a_bad_table_names_the_family_and_the_knob() -> None:
    with pytest.raises(ValueError, match=r"rate_limited\.max_attempts: .*greater than or equal"):
        parse_options({"rate_limited": {"max_attempts": 0}})
    with pytest.raises(ValueError, match=r"connection_error\.attempts: Extra inputs"):
        parse_options({"connection_error": {"attempts": 3}})
    with pytest.raises(ValueError, match=r"whole number"):
        parse_options({"timeout_error": {"max_attempts": True}})
    with pytest.raises(TypeError, match="did you mean 'rate_limited'"):
        retry_api_call(rate_limit={"max_attempts": 8})
    with pytest.raises(ValueError, match=r"rate_limited\.min_wait \(20.0\) must be <= max_wait"):
        build_policy("api", DEFAULTS, rate_limited={"min_wait": 20.0})  # api's max_wait is 15
    with pytest.raises(ScenarioError, match=r"policy\.server_error\.max_wait"):
        parse_scenario({"policy": {"server_error": {"max_wait": -1}}})


def test_a_scenario_table_and_set_reach_the_policy() -> None:
    scenario = parse_scenario(
        {"policy": {"operation": "api", "rate_limited": {"max_attempts": 8}}}
    ).with_overrides({"policy.rate_limited.respect_retry_after": True})
    policy = policy_for(scenario)
    assert policy.error_policies["rate_limited"] == ErrorPolicy(
        max_attempts=8, min_wait=None, max_wait=None, respect_retry_after=True
    )
    assert "rate_limited" in policy.overrides


def test_settings_give_a_family_its_numbers_and_options_win(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RETRY__API_RATE_LIMITED_MAX_ATTEMPTS", "8")
    monkeypatch.setenv("RETRY__API_CONNECTION_ERROR_MIN_WAIT", "0.1")
    monkeypatch.setenv("RETRY__API_CONNECTION_ERROR_MAX_WAIT", "0.5")
    loaded = load_settings(None)
    policy = build_policy("api", loaded)
    assert policy.attempts_for(RateLimitedError()) == 8
    assert policy.for_family("connection_error").max_wait == 0.5
    assert build_policy("worker", loaded).most_attempts == 3  # per operation
    mine = build_policy("api", loaded, rate_limited={"max_attempts": 5})
    assert mine.attempts_for(RateLimitedError()) == 5
    assert mine.for_family("connection_error").max_wait == 0.5  # the other knob: the setting


def test_a_familys_wait_range_is_checked_against_what_it_inherits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RETRY__API_RATE_LIMITED_MIN_WAIT", "20")
    with pytest.raises(SettingsError) as caught:
        load_settings(None)
    assert str(caught.value) == (
        "RETRY__API_RATE_LIMITED_MIN_WAIT=20.0 is greater than RETRY__API_MAX_WAIT=15.0; "
        "min_wait must be <= max_wait"
    )
    monkeypatch.setenv("RETRY__API_RATE_LIMITED_MAX_WAIT", "60")
    assert load_settings(None).model_dump()["api_rate_limited_max_wait"] == 60.0


# --- retrysim settings, and the run report ------------------------------------------------------


def test_settings_shows_a_429_schedule_and_a_refusal_schedule(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """The issue's bar: both coexist in one policy and both show in ``retrysim settings``."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "220")
    monkeypatch.setenv("RETRY__API_RATE_LIMITED_MAX_ATTEMPTS", "8")
    monkeypatch.setenv("RETRY__API_RATE_LIMITED_RESPECT_RETRY_AFTER", "true")
    monkeypatch.setenv("RETRY__API_CONNECTION_ERROR_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("RETRY__API_CONNECTION_ERROR_MIN_WAIT", "0.5")
    monkeypatch.setenv("RETRY__API_CONNECTION_ERROR_MAX_WAIT", "0.5")
    runner = CliRunner()
    shown = runner.invoke(app, ["settings"])
    assert shown.exit_code == 0, shown.output
    rows = {
        cells[2]: cells
        for line in shown.output.splitlines()
        if "│ api" in line and len(cells := [cell.strip() for cell in line.split("│")]) > 6
    }
    assert rows["rate_limited"][3:7] == [
        "8 (env)",
        "yes (env)",
        "1-2, 2-3, 4-5, 8-9, 15, 15, 15",
        "64.00s",
    ]
    assert rows["connection_error"][3:7] == ["2 (env)", "no (inherited)", "0.5", "0.50s"]
    assert "RETRY__API_CONNECTION_ERROR_MAX_WAIT" in shown.output
    printed = runner.invoke(app, ["settings", "--json"])
    per_error = json.loads(printed.output)["operations"]["api"]["per_error"]
    limited, refused = per_error["rate_limited"], per_error["connection_error"]
    assert limited["max_attempts"] == {
        "value": 8,
        "source": "env",
        "variable": "RETRY__API_RATE_LIMITED_MAX_ATTEMPTS",
    }
    assert limited["in_effect"] == {
        "max_attempts": 8,
        "min_wait": 1.0,
        "max_wait": 15.0,
        "respect_retry_after": True,
    }
    assert len(limited["schedule"]) == 7 and len(refused["schedule"]) == 1
    assert refused["schedule"][0]["max_wait"] == 0.5
    assert (limited["own"], refused["own"], per_error["timeout_error"]["own"]) == (
        True,
        True,
        False,
    )


def test_settings_says_in_one_line_when_no_family_has_a_policy(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    shown = CliRunner().invoke(app, ["settings"])
    assert shown.exit_code == 0, shown.output
    assert "Per-error policies rate_limited, server_error, connection_error, timeout_error: " in (
        " ".join(shown.output.split())
    )


def test_the_run_header_shows_each_familys_own_knobs() -> None:
    shown = CliRunner().invoke(
        app,
        [
            "run",
            "api-rate-limit",
            "--set",
            "policy.rate_limited.max_attempts=8",
            "--set",
            "policy.rate_limited.respect_retry_after=true",
        ],
        env={"COLUMNS": "200"},
    )
    assert shown.exit_code == 0, shown.output
    assert "per-error: rate_limited max_attempts=8 (--set), honours Retry-After (--set)" in (
        shown.output
    )
    plain = CliRunner().invoke(app, ["run", "api-rate-limit"], env={"COLUMNS": "200"})
    assert "per-error" not in plain.output
