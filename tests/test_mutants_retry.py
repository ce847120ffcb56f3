"""Tests that kill mutants of the production retry library (``retrysim/retry/``) that survived
their modules' own tests in a sampled run of ``scripts/mutate.py`` (docs/mutation.md).

Each test pins one behaviour a caller of the library sees: what a decorated call does, what a
guard reports, what an error says, what a setting's message reads. The sections follow the
modules, most used first. Nothing sleeps: clocks are hand-made and only the injected sleeps
move them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError
from tenacity import retry_if_result
from tenacity.wait import wait_fixed

from retrysim.retry import (
    AdaptiveOptions,
    BreakerOptions,
    BudgetOptions,
    CircuitOpenError,
    GuardSpec,
    GuardStates,
    RateLimitedError,
    RetriedResult,
    RetrySettings,
    SettingsError,
    TransientError,
    build_policy,
    instrument_opentelemetry,
    retry_api_call,
    retry_with_circuit_breaker,
    use_settings,
)
from retrysim.retry import settings as settings_module
from retrysim.retry.adaptive import CubicRateLimiter, PacingDeadline, adaptive_guards
from retrysim.retry.breaker import CircuitBreaker, breaker_guards
from retrysim.retry.budget import budget_guards
from retrysim.retry.counters import CounterRegistry
from retrysim.retry.effective import effective_policy
from retrysim.retry.guards import GuardChain, GuardEvent
from retrysim.retry.knobs import PlacedGuard
from retrysim.retry.mechanisms import REGISTRY as MECHANISMS
from retrysim.retry.options import PolicyOptions, parse_options, per_operation
from retrysim.retry.profiles import REGISTRY as PROFILES
from retrysim.retry.profiles import Profile, get_profile, profile_colour
from retrysim.retry.resilience import wait_stretched
from retrysim.retry.settings import OPERATIONS, load_settings, unknown_variables
from retrysim.retry.variables import option_variable


class FakeTime:
    """A clock that only the injected sleeps move (sync and async sleeps alike)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)


class Spy:
    """An attempt guard that lets everything through and remembers each outcome it is told."""

    def __init__(self) -> None:
        self.outcomes: list[BaseException | None] = []

    def before_attempt(self, now: float, attempt: int) -> BaseException | None:
        return None

    def after_outcome(self, now: float, error: BaseException | None) -> None:
        self.outcomes.append(error)


def _throttled_limiter(min_rate: float = 0.5) -> CubicRateLimiter:
    """A send-rate limiter that has seen its first throttle at t=0 (so it now holds sends)."""
    limiter = CubicRateLimiter("limiter:api", beta=0.7, scale=0.4, min_rate=min_rate)
    limiter.after_outcome(0.0, RateLimitedError())
    return limiter


# --- calls -------------------------------------------------------------------------------------


def test_an_async_calls_limiter_hold_is_slept_with_the_calls_own_sleep() -> None:
    """A coroutine's send held back by the send-rate limiter waits through the ``sleep`` the
    call was given (virtual time here), never through asyncio's real sleep: the hold after a
    throttle is 1 / rate (the floor rate, 100 per second, here)."""
    time = FakeTime()
    attempts = 0

    @retry_api_call(
        max_attempts=2,
        min_wait=0,
        max_wait=0,
        profile="exponential",
        adaptive={"limiter": True, "limiter_min_rate": 100.0},
        sleep=time.async_sleep,
        clock=time,
    )
    async def fetch() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise RateLimitedError("slow down")
        return "answer"

    assert asyncio.run(fetch()) == "answer"
    assert time.waits[-1] == pytest.approx(1 / 100)
    assert time.now == pytest.approx(sum(time.waits))


# --- decorators --------------------------------------------------------------------------------


def test_a_decorators_policy_method_answers_the_policy_a_call_would_use() -> None:
    """``retry_api_call.policy(**overrides)`` is the policy of the moment: the api settings,
    with the overrides winning."""
    policy = retry_api_call.policy(max_attempts=7, profile="exponential")
    assert policy.operation == "api"
    assert policy.max_attempts == 7
    assert policy.profile == "exponential"


def test_a_breaker_stacked_on_a_retry_decorator_joins_its_options() -> None:
    """``@retry_with_circuit_breaker`` above ``@retry_api_call(max_attempts=3)`` adds the breaker
    to that decorator's own options (one retry loop): the first failure opens the breaker and
    the retry is refused, so the function runs once. Without the inner options it would wrap
    the retried function in a second loop, and run it three times before the breaker heard."""
    use_settings(RetrySettings(api_min_wait=0.0, api_max_wait=0.0, jitter=0.0))
    time = FakeTime()
    runs = 0

    @retry_with_circuit_breaker(failure_threshold=1, recovery_timeout=60.0)
    @retry_api_call(max_attempts=3, min_wait=0, max_wait=0, sleep=time.sleep, clock=time)
    def fetch() -> None:
        nonlocal runs
        runs += 1
        raise TransientError("down")

    with pytest.raises(CircuitOpenError):
        fetch()
    assert runs == 1


# --- breaker -----------------------------------------------------------------------------------


def test_a_policy_whose_breaker_is_off_declares_no_guard_and_is_never_refused() -> None:
    """A breaker that is not enabled declares nothing: the default policy has no guards, and
    its calls fail with their own error however often they fail."""
    assert breaker_guards("api", BreakerOptions(failure_threshold=1)) == ()
    assert build_policy("api").guards == ()
    time = FakeTime()

    @retry_api_call(max_attempts=3, min_wait=0, max_wait=0, sleep=time.sleep, clock=time)
    def fetch() -> None:
        raise TransientError("down")

    for _ in range(3):
        with pytest.raises(TransientError):
            fetch()


# --- budget ------------------------------------------------------------------------------------


def test_a_ratio_budget_remembers_ten_seconds_by_default() -> None:
    """The ratio budget's documented default window is 10 s: with a floor of 0.1 retries per
    second it allows one retry per window, and a retry is forgotten exactly 10 s later."""
    options = BudgetOptions(enabled=True, kind="ratio", percent=0.0, min_retries_per_second=0.1)
    (placed,) = budget_guards("api", options)
    budget: Any = placed.spec.make()
    assert budget.allow_retry(0.0)
    assert not budget.allow_retry(9.999)  # the first retry still counts
    assert budget.allow_retry(10.0)  # forgotten: a new retry is allowed


# --- exceptions --------------------------------------------------------------------------------


def test_a_rate_limited_error_says_what_the_server_said() -> None:
    """The message given is the error's text (what logs and tracebacks show), the default one
    too, beside the server's hint."""
    error = RateLimitedError("slow down", retry_after=2.5)
    assert str(error) == "slow down"
    assert error.args == ("slow down",)
    assert error.retry_after == 2.5
    assert str(RateLimitedError()) == "rate limited"


def test_an_open_breakers_refusal_names_it_and_the_time_to_its_next_probe() -> None:
    """The refusal of an open breaker says which dependency's breaker it is and how long until
    it lets a probe through, in its text and as attributes."""
    options = BreakerOptions(enabled=True, failure_threshold=1, recovery_timeout=60.0)
    breaker = CircuitBreaker("payments", options)
    breaker.after_outcome(0.0, TransientError("down"))  # the first failure opens it
    refusal = breaker.before_attempt(15.0, 1)
    assert isinstance(refusal, CircuitOpenError)
    assert refusal.breaker == "payments"
    assert refusal.retry_in == pytest.approx(45.0)
    assert str(refusal) == "circuit breaker 'payments' is open; next probe in 45.0s"


def test_a_retried_result_reaches_the_guards_with_the_result_it_stands_for() -> None:
    """A returned value the retry strategy retries is told to the call's guards as a
    RetriedResult holding that value (and saying what it is); the accepted one as a success."""
    spy = Spy()
    time = FakeTime()
    answers = iter(["busy", "done"])

    @retry_api_call(
        max_attempts=2,
        retry=retry_if_result(lambda value: value == "busy"),
        guards=[GuardSpec("spy", "call", lambda: spy)],
        sleep=time.sleep,
        clock=time,
    )
    def fetch() -> str:
        return next(answers)

    assert fetch() == "done"
    retried, accepted = spy.outcomes
    assert isinstance(retried, RetriedResult)
    assert retried.result == "busy"
    assert str(retried) == "the retry strategy retried the attempt's result"
    assert accepted is None


# --- guards ------------------------------------------------------------------------------------


def test_a_call_with_a_time_limit_is_held_back_only_as_long_as_its_limiter_asks() -> None:
    """The time a call has left bounds a limiter's hold; it is not a hold of its own: with 10 s
    left, a limiter that holds nothing holds nothing, and one that holds a send 1 / rate
    seconds holds it exactly that long."""
    idle = CubicRateLimiter("limiter:api", beta=0.7, scale=0.4, min_rate=0.5)
    assert GuardChain([PacingDeadline(10.0), idle]).pace(0.0) == 0.0
    expected = _throttled_limiter().pace(0.0)  # a twin's hold: the first after a throttle
    assert 0.0 < expected < 10.0
    held = GuardChain([PacingDeadline(10.0), _throttled_limiter()]).pace(0.0)
    assert held == pytest.approx(expected)


def test_a_call_with_two_time_limits_is_held_back_no_longer_than_the_earlier() -> None:
    """With two pacing limits (5 s and 1 s left), a limiter whose line is longer than both
    holds the send for the earlier limit's rest, never the later's."""
    limiter = _throttled_limiter()
    for _ in range(3):
        limiter.pace(0.0)  # three senders queue ahead: the next would wait > 2 s
    chain = GuardChain([PacingDeadline(5.0), PacingDeadline(1.0), limiter])
    assert chain.pace(0.0) == pytest.approx(1.0)


def test_a_guards_events_name_the_client_whose_state_it_is() -> None:
    """A guard made for one client reports its events with that client (the simulator's
    records and the metrics tell the clients' breakers and limiters apart by it)."""
    events: list[GuardEvent] = []
    states = GuardStates([events.append])
    (placed,) = adaptive_guards("api", AdaptiveOptions(limiter=True))
    limiter: Any = states.instance(placed.spec, "client-7")
    limiter.after_outcome(0.0, RateLimitedError())
    assert [(event.kind, event.client) for event in events] == [("limiter_rate", "client-7")]


# --- adaptive ----------------------------------------------------------------------------------


def test_a_held_back_send_is_reported_with_its_hold() -> None:
    """Every send the limiter holds back is an event (``limiter_delay``, the seconds held):
    the metrics count delays and delayed seconds from these."""
    events: list[GuardEvent] = []
    states = GuardStates([events.append])
    (placed,) = adaptive_guards("api", AdaptiveOptions(limiter=True))
    limiter: Any = states.instance(placed.spec, None)
    limiter.after_outcome(0.0, RateLimitedError())
    hold = limiter.pace(0.0)
    assert hold > 0
    assert [(e.kind, e.value) for e in events if e.kind == "limiter_delay"] == [
        ("limiter_delay", hold)
    ]
    assert limiter.stats()["delays"] == 1


# --- resilience --------------------------------------------------------------------------------


def _waits(**options: Any) -> list[float]:
    """The waits of one call that fails three times, with ``options``."""
    time = FakeTime()

    @retry_api_call(
        max_attempts=3,
        min_wait=1,
        max_wait=100,
        profile="exponential",
        sleep=time.sleep,
        clock=time,
        **options,
    )
    def fetch() -> None:
        raise TransientError("down")

    with pytest.raises(TransientError):
        fetch()
    return time.waits


def test_adaptive_backoff_multiplies_each_wait_by_its_factor() -> None:
    """With every recent attempt failed, adaptive backoff waits ``max_factor`` times the
    profile's wait, each time (a wait divided by the factor would shrink under failure)."""
    plain = _waits()
    stretched = _waits(adaptive={"enabled": True, "max_factor": 4.0, "window": 1000.0})
    assert len(plain) == len(stretched) == 2
    assert stretched == pytest.approx([4.0 * wait for wait in plain])


def test_a_stretched_wait_reads_its_chain_at_the_clocks_time() -> None:
    """``wait_stretched`` is the policy's wait times the chain's factor at the clock's now."""
    asked: list[float] = []

    class Factor(Spy):
        def wait_factor(self, now: float) -> float:
            asked.append(now)
            return 3.0

    wait = wait_stretched(wait_fixed(2.0), GuardChain([Factor()]), lambda: 7.5)
    assert wait(None) == pytest.approx(6.0)  # type: ignore[arg-type]  # wait_fixed reads nothing
    assert asked == [7.5]


# --- classify: killed by tests/test_connection_families.py (see the report) --------------------
# --- hooks: killed by tests/test_fallback.py (see the report) ----------------------------------


# --- options -----------------------------------------------------------------------------------


def test_per_operation_needs_exactly_one_default_per_operation() -> None:
    """A per-operation setting mark refuses a missing operation and an unknown one alike, with
    the same TypeError (a mistake in code)."""
    full = dict.fromkeys(OPERATIONS, 1)
    assert per_operation(**full).default("api") == 1
    missing = {op: 1 for op in OPERATIONS if op != "api"}
    with pytest.raises(TypeError, match="one default per operation"):
        per_operation(**missing)
    with pytest.raises(TypeError, match="one default per operation"):
        per_operation(**full, backup=1)


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_a_timeout_that_is_not_a_finite_number_is_refused_as_such(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """``RETRY__API_ATTEMPT_TIMEOUT=nan`` (or inf) is refused for not being a finite number, not
    with a misleading "must be at most 1,000,000,000"; the option itself likewise."""
    monkeypatch.setenv("RETRY__API_ATTEMPT_TIMEOUT", value)
    with pytest.raises(SettingsError, match="finite number") as caught:
        load_settings(None)
    assert "less than" not in str(caught.value)
    with pytest.raises(ValueError, match="finite number"):
        parse_options({"max_delay": float(value)})


def test_a_family_wait_above_the_policys_range_names_both_keys() -> None:
    """A family's wait knob that leaves the range it inherits is refused naming both keys: the
    family's own and the policy's it is compared with."""
    with pytest.raises(ValueError, match=r"min_wait \(5\.0\) must be <= rate_limited\.max_wait"):
        parse_options({"min_wait": 5.0, "rate_limited": {"max_wait": 1.0}})
    with pytest.raises(ValueError, match=r"server_error\.min_wait \(20\.0\) must be <= max_wait"):
        parse_options({"max_wait": 10.0, "server_error": {"min_wait": 20.0}})


# --- knobs, mechanisms, effective --------------------------------------------------------------


def test_a_mechanisms_knobs_refuse_a_typo_and_cannot_be_changed() -> None:
    """A knob's table refuses a name it does not have (a typo is never silently ignored) and,
    once made, cannot be changed in place (a policy's tables are shared by its calls)."""
    with pytest.raises(ValidationError, match="failure_treshold"):
        BreakerOptions(enabled=True, failure_treshold=3)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="failure_treshold"):
        parse_options({"breaker": {"enabled": True, "failure_treshold": 3}})
    options = BreakerOptions(enabled=True)
    with pytest.raises(ValidationError, match="frozen"):
        options.enabled = False  # type: ignore[misc]
    assert options.enabled


def test_a_placed_guard_and_a_mechanism_entry_are_values() -> None:
    """A guard's declaration and a registered mechanism cannot be changed in place, and a
    declaration is hashable (it can be a key, or be in a set)."""
    (placed,) = breaker_guards("api", BreakerOptions(enabled=True))
    with pytest.raises(dataclasses.FrozenInstanceError):
        placed.stage = "pace"  # type: ignore[misc]
    assert placed in {placed}
    assert PlacedGuard(placed.stage, placed.spec) == placed
    with pytest.raises(dataclasses.FrozenInstanceError):
        MECHANISMS["breaker"].description = "changed"  # type: ignore[misc]


def test_an_effective_value_cannot_be_changed_in_place() -> None:
    """The sources column's entries are values: a reader cannot change one for the others."""
    effective = effective_policy(PolicyOptions(max_attempts=2), "api")
    entry = effective["max_attempts"]
    assert (entry.value, entry.source) == (2, "scenario")
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.source = "--set"  # type: ignore[misc]
    assert entry in {entry}


# --- otel --------------------------------------------------------------------------------------


def test_a_duration_recorded_after_removal_reaches_no_histogram() -> None:
    """A call that ends while its instrumentation is being removed (the counters had already
    taken their list of listeners) records nothing: a removed instrumentation reports nothing,
    its histogram included."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    registry = CounterRegistry()
    handles: list[Any] = []
    registry.duration_listeners.append(lambda *_: handles[0].remove())  # runs first
    handles.append(instrument_opentelemetry(provider, registry=registry, guards=GuardStates()))
    registry.call_started("app.fetch", "api")
    registry.call_finished("app.fetch", 0.25)
    data = reader.get_metrics_data()
    names = [
        metric.name
        for resource in (data.resource_metrics if data is not None else ())
        for scope in resource.scope_metrics
        for metric in scope.metrics
    ]
    assert "retrysim.retry.call.duration" not in names
    assert not handles[0].active


# --- profiles ----------------------------------------------------------------------------------


def test_a_profile_that_names_no_retryable_set_has_the_default_one() -> None:
    """A profile subclass that does not set ``retryable`` inherits the default set (connection
    errors, timeouts, TransientError), so one that retries by its set retries those."""

    class ByType(Profile):
        name = "by-type-test"
        formula = "0"
        min_wait_means = "nothing"
        colour = "#000000"

        def retries(self, error: BaseException) -> bool:
            return isinstance(error, self.retryable)

    profile = ByType()
    assert profile.retries(ConnectionResetError()) and profile.retries(TransientError())
    assert profile.retries(TimeoutError())
    assert not profile.retries(ValueError())


def test_a_profiles_colour_is_its_own_and_anything_else_gets_the_default() -> None:
    """Figures colour a profile's line with the profile's colour; any other label (a variant,
    a policy file) with the colour the caller passed."""
    for name in PROFILES:
        assert profile_colour(name, "#123456") == get_profile(name).colour
    assert profile_colour("my-variant", "#123456") == "#123456"


# --- settings ----------------------------------------------------------------------------------


@pytest.fixture
def typo(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A mistyped variable in the environment, and no memory of variables warned about."""
    monkeypatch.setenv("RETRY__API_MAX_ATEMPTS", "5")
    monkeypatch.setattr(settings_module, "_warned", set())  # each is warned once per process
    yield


def test_an_unknown_variable_says_where_it_is_and_what_was_meant(
    typo: None, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A mistyped variable is named with where it was found (the environment, or the .env
    file's path) and the setting it is closest to; loading the settings warns with that."""
    env_file = tmp_path / "prod.env"
    env_file.write_text("RETRY__WORKER_MIN_WAYT=2\n")
    messages = sorted(variable.message() for variable in unknown_variables(env_file))
    assert messages == [
        "RETRY__API_MAX_ATEMPTS in the environment is not a retry setting and is ignored; "
        "did you mean RETRY__API_MAX_ATTEMPTS?",
        f"RETRY__WORKER_MIN_WAYT in {env_file} is not a retry setting and is ignored; "
        "did you mean RETRY__WORKER_MIN_WAIT?",
    ]
    with caplog.at_level(logging.WARNING, logger="retrysim.retry"):
        load_settings(None)
    assert "RETRY__API_MAX_ATEMPTS in the environment is not a retry setting" in caplog.text


# --- variables ---------------------------------------------------------------------------------


def test_an_options_variable_is_named_for_any_operation_and_a_knobs_only_for_a_real_one() -> None:
    """The scenario reference names an option's variable as a pattern
    (``RETRY__<OPERATION>_MAX_ATTEMPTS``); a mechanism's knob has a variable only for an
    operation the settings hold."""
    assert option_variable("max_attempts", "<operation>") == "RETRY__<OPERATION>_MAX_ATTEMPTS"
    assert option_variable("max_attempts", "api") == "RETRY__API_MAX_ATTEMPTS"
    assert option_variable("breaker.enabled", "api") == "RETRY__API_BREAKER_ENABLED"
    assert option_variable("breaker.enabled", "<operation>") is None
