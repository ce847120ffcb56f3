"""Prometheus export: the text parses with prometheus_client's own parser, the collector gives
the same samples, and the numbers equal the counters, exactly, under threads and tasks.

Expected values come from the calls' scripts or from what the fake dependency saw, never from
the counters themselves; time is a hand-made clock or the virtual-time loop, so nothing sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import retrysim.retry
from retrysim.retry import (
    PROCESS_GUARDS,
    BreakerChange,
    BreakerOptions,
    CircuitOpenError,
    ExhaustedCall,
    GuardSpec,
    GuardStates,
    RateLimitedError,
    register_collector,
    render_prometheus,
    retry_api_call,
    retry_metrics,
    retry_storage_operation,
    retry_worker_operation,
)
from retrysim.retry.breaker import CircuitBreaker
from retrysim.retry.budget import TokenBudget
from retrysim.retry.counters import DURATION_BUCKETS, CounterRegistry
from retrysim.retry.export import CONTENT_TYPE
from retrysim.sim.aio import run_virtual

Key = tuple[str, tuple[tuple[str, str], ...]]

FAMILIES = {
    "retry_calls": "counter",
    "retry_attempts": "counter",
    "retry_retries": "counter",
    "retry_successes": "counter",
    "retry_exhausted": "counter",
    "retry_non_retryable": "counter",
    "retry_attempt_failures": "counter",
    "retry_wait_seconds": "counter",
    "retry_duplicate_executions": "counter",
    "retry_hedges": "counter",
    "retry_success_rate": "gauge",
    "retry_duration_seconds": "histogram",
    "retry_breaker_state": "gauge",
    "retry_breaker_transitions": "counter",
    "retry_budget_refusals": "counter",
    "retry_limiter_delays": "counter",
    "retry_limiter_delay_seconds": "counter",
}


@pytest.fixture(autouse=True)
def fresh_guards() -> Iterator[None]:
    PROCESS_GUARDS.clear()
    yield
    PROCESS_GUARDS.clear()


def parse(text: str) -> dict[Key, float]:
    """Every sample of a text exposition, keyed by (name, sorted labels), via prometheus_client."""
    samples: dict[Key, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in samples, f"duplicate series {key}"
            samples[key] = sample.value
    return samples


def value(samples: dict[Key, float], name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


class FakeTime:
    """A clock that only the injected sleep moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


# --- the text, against a known sequence of calls --------------------------------------------


def test_every_family_is_exported_even_before_any_call() -> None:
    text = render_prometheus()
    families = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert families == FAMILIES
    assert parse(text) == {}
    assert CONTENT_TYPE.startswith("text/plain; version=0.0.4")


def run_the_known_script(time: FakeTime) -> Callable[[str], str]:
    """Four calls of one worker function (3 attempts, exponential waits from 0.5 s on
    ``time``): ``fine`` succeeds, ``one_blip`` fails once then succeeds, ``dead`` fails three
    times (exhausted), ``bad`` raises ValueError (not retryable). Returns the function, whose
    module and qualified name are its counters' operation (the OpenTelemetry test runs it too)."""
    plan: dict[str, list[type[Exception]]] = {
        "fine": [],
        "one_blip": [ConnectionError],
        "dead": [ConnectionError, TimeoutError, ConnectionError],
        "bad": [ValueError],
    }
    remaining = {key: list(errors) for key, errors in plan.items()}

    @retry_worker_operation(
        max_attempts=3, min_wait=0.5, profile="exponential", sleep=time.sleep, clock=time
    )
    def run_task(key: str) -> str:
        if remaining[key]:
            raise remaining[key].pop(0)(key)
        return key

    for key in plan:
        with contextlib.suppress(ConnectionError, ValueError):
            run_task(key)
    return run_task


def test_the_text_equals_what_a_known_sequence_of_calls_did() -> None:
    time = FakeTime()

    @retry_api_call(sleep=time.sleep, clock=time)
    def ping() -> str:
        return "pong"

    run_task = run_the_known_script(time)
    ping()

    samples = parse(render_prometheus())
    task = {"operation": f"{__name__}.{run_task.__qualname__}", "kind": "worker"}
    assert value(samples, "retry_calls_total", **task) == 4
    assert value(samples, "retry_attempts_total", **task) == 1 + 2 + 3 + 1
    assert value(samples, "retry_retries_total", **task) == 0 + 1 + 2 + 0
    assert value(samples, "retry_successes_total", **task) == 2
    assert value(samples, "retry_exhausted_total", **task) == 1
    assert value(samples, "retry_non_retryable_total", **task) == 1
    by_error = {"ConnectionError": 1 + 2, "TimeoutError": 1, "ValueError": 1}
    for error, count in by_error.items():
        assert value(samples, "retry_attempt_failures_total", **task, error=error) == count
    assert value(samples, "retry_wait_seconds_total", **task) == 0.5 + (0.5 + 1.0)
    assert value(samples, "retry_success_rate", **task) == 0.5  # one_blip of {one_blip, dead}
    # Durations by the clock the waits move: fine 0, one_blip 0.5, dead 1.5, bad 0.
    durations = [0.0, 0.5, 1.5, 0.0]
    assert value(samples, "retry_duration_seconds_count", **task) == 4
    assert value(samples, "retry_duration_seconds_sum", **task) == sum(durations)
    for bound in (*DURATION_BUCKETS, float("inf")):
        le = "+Inf" if bound == float("inf") else repr(bound)
        expected = sum(d <= bound for d in durations)
        assert value(samples, "retry_duration_seconds_bucket", **task, le=le) == expected
    # The other function, under its own labels; no retries, so no success rate.
    pinged = {"operation": f"{__name__}.{ping.__qualname__}", "kind": "api"}
    assert value(samples, "retry_calls_total", **pinged) == 1
    assert ("retry_success_rate", tuple(sorted(pinged.items()))) not in samples


def test_the_text_agrees_with_retry_metrics() -> None:
    flaky = iter([ConnectionError("a"), TimeoutError("b")])

    @retry_storage_operation(min_wait=0.0, sleep=lambda s: None)
    def save() -> None:
        error = next(flaky, None)
        if error is not None:
            raise error

    save()
    save()
    samples = parse(render_prometheus())
    for name, ops in retry_metrics().items():
        labels = {"operation": name, "kind": ops.kind}
        for field in ("calls", "attempts", "retries", "successes", "exhausted", "non_retryable"):
            assert value(samples, f"retry_{field}_total", **labels) == getattr(ops, field)
        assert value(samples, "retry_duration_seconds_count", **labels) == ops.duration_count


def failing_behind_breaker_and_budget(time: FakeTime) -> Callable[[], str]:
    """An api call that always fails with ConnectionError: 5 attempts, no wait, breaker "llm"
    (open after 3 failures in a row, for 30 s) and a token budget (4 tokens, ratio 0.5)."""

    @retry_api_call(
        max_attempts=5,
        min_wait=0.0,
        profile="exponential",
        sleep=time.sleep,
        clock=time,
        breaker={"enabled": True, "failure_threshold": 3, "recovery_timeout": 30.0, "name": "llm"},
        budget={"enabled": True, "max_tokens": 4.0, "token_ratio": 0.5},
    )
    def ask() -> str:
        raise ConnectionError("down")

    return ask


def test_guard_metrics_follow_the_breakers_and_budgets() -> None:
    time = FakeTime()
    ask = failing_behind_breaker_and_budget(time)
    outcomes = []
    for _ in range(4):
        try:
            ask()
        except Exception as error:
            outcomes.append(type(error).__name__)
    # Call 1: fails (4 tokens -> 3, budget allows), fails (-> 2, 2*2 > 4 is false: refused).
    # Call 2: fails (breaker's 3rd failure in a row: open) and the budget refuses its retry.
    # Calls 3 and 4: refused by the open breaker.
    assert outcomes == ["ConnectionError"] * 2 + ["CircuitOpenError"] * 2
    samples = parse(render_prometheus())
    assert value(samples, "retry_breaker_state", breaker="llm") == 1  # open
    assert value(samples, "retry_breaker_transitions_total", breaker="llm", state="open") == 1
    assert value(samples, "retry_budget_refusals_total", budget="api") == 2
    (live_budget,) = [g for _, _, g in PROCESS_GUARDS.instances() if isinstance(g, TokenBudget)]
    assert live_budget.stats()["refused"] == 2

    time.now += 30.0  # recovery: the next call is a probe, and it fails again
    with pytest.raises(ConnectionError):
        ask()
    samples = parse(render_prometheus())
    assert value(samples, "retry_breaker_state", breaker="llm") == 1
    assert value(samples, "retry_breaker_transitions_total", breaker="llm", state="half_open") == 1
    assert value(samples, "retry_breaker_transitions_total", breaker="llm", state="open") == 2


def test_limiter_delays_are_exported() -> None:
    time = FakeTime()

    async def throttled_sleep(seconds: float) -> None:
        time.now += seconds
        await asyncio.sleep(0)

    answers = itertools.chain([RateLimitedError("slow down")] * 3, itertools.repeat(None))

    @retry_api_call(
        max_attempts=4,
        min_wait=0.0,
        profile="exponential",
        sleep=throttled_sleep,
        clock=time,
        adaptive={"limiter": True, "limiter_min_rate": 2.0},
    )
    async def call() -> str:
        time.now += 0.1  # each send takes 100 ms of the clock
        answer = next(answers)
        if answer is not None:
            raise answer
        return "ok"

    async def main() -> None:
        for _ in range(10):
            await call()

    run_virtual(main())
    (limiter,) = [g for _, _, g in PROCESS_GUARDS.instances() if hasattr(g, "pace")]
    stats = limiter.stats()  # type: ignore[attr-defined]
    assert stats["delays"] > 0
    samples = parse(render_prometheus())
    assert value(samples, "retry_limiter_delays_total", limiter="api") == stats["delays"]
    assert value(samples, "retry_limiter_delay_seconds_total", limiter="api") == pytest.approx(
        stats["delayed_seconds"]
    )


@settings(max_examples=60, deadline=None)
@given(name=st.text(min_size=1, max_size=40))
def test_label_values_survive_escaping(name: str) -> None:
    """Any breaker name (quotes, backslashes, newlines) parses back to itself."""
    states = GuardStates()
    options = BreakerOptions(enabled=True, name=name)
    states.instance(GuardSpec("breaker", "client", partial(CircuitBreaker, name, options)), None)
    samples = parse(render_prometheus(CounterRegistry(), states))
    assert samples == {("retry_breaker_state", (("breaker", name),)): 0.0}


@settings(max_examples=100, deadline=None)
@given(durations=st.lists(st.floats(min_value=0, max_value=1e4), max_size=30))
def test_duration_buckets_count_calls_at_most_that_long(durations: list[float]) -> None:
    registry = CounterRegistry()
    registry.call_started("op", "worker")
    for seconds in durations:
        registry.call_finished("op", seconds)
    ops = registry.snapshot()["op"]
    assert ops.duration_count == len(durations)
    assert ops.duration_sum == pytest.approx(sum(durations))
    for bound, count in ops.duration_buckets():
        assert count == sum(d <= bound for d in durations)


# --- prometheus_client ----------------------------------------------------------------------


def test_the_collector_gives_what_the_text_gives() -> None:
    time = FakeTime()

    @retry_api_call(
        max_attempts=2,
        sleep=time.sleep,
        clock=time,
        breaker={"enabled": True, "failure_threshold": 1, "name": "search"},
    )
    def search() -> None:
        raise ConnectionError("down")

    for _ in range(3):
        with pytest.raises((ConnectionError, CircuitOpenError)):
            search()
    registry = CollectorRegistry()
    collector = register_collector(registry)
    scraped = generate_latest(registry).decode()
    assert parse(scraped) == parse(render_prometheus())
    assert value(parse(scraped), "retry_breaker_state", breaker="search") == 1
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        register_collector(registry)
    registry.unregister(collector)
    assert generate_latest(registry) == b""


def test_without_prometheus_client_the_collector_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # import fails as if absent
    with pytest.raises(ImportError, match=r"pip install 'retrysim\[prometheus\]'"):
        register_collector()


def test_the_plain_text_needs_no_prometheus_client() -> None:
    code = (
        "import sys\n"
        "from retrysim.retry import render_prometheus, retry_worker_operation\n"
        "retry_worker_operation()(lambda: 1)()\n"
        "text = render_prometheus()\n"
        "print('retry_calls_total{' in text, 'prometheus_client' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "False"]


def test_the_export_names_are_public() -> None:
    for name in ("render_prometheus", "register_collector"):
        assert name in retrysim.retry.__all__
        assert callable(getattr(retrysim.retry, name))


# --- stress: exact counters under threads and tasks -----------------------------------------


class Dependency:
    """A fake dependency whose n-th execution fails in fixed outage phases (thread-safe)."""

    def __init__(self, fails: Callable[[int], bool]) -> None:
        self.fails = fails
        self.lock = threading.Lock()
        self.executions = 0
        self.failures = 0

    def __call__(self) -> str:
        with self.lock:
            n = self.executions
            self.executions += 1
            failed = self.fails(n)
            self.failures += failed
        if failed:
            raise ConnectionError(f"execution {n}")
        return "ok"


class HookLog:
    """Thread-safe records of the hooks' calls."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.exhausted: list[ExhaustedCall] = []
        self.changes: list[BreakerChange] = []

    def on_exhausted(self, info: ExhaustedCall) -> None:
        with self.lock:
            self.exhausted.append(info)

    def on_breaker_change(self, change: BreakerChange) -> None:
        with self.lock:
            self.changes.append(change)


def check_exact(
    name: str,
    kind: str,
    outcomes: list[Any],
    dependency: Dependency,
    hooks: HookLog,
) -> dict[str, int]:
    """Every counter against what the fake saw and what the callers got; returns the tallies."""
    samples = parse(render_prometheus())
    labels = {"operation": name, "kind": kind}
    got = {
        f: int(value(samples, f"retry_{f}_total", **labels))
        for f in ("calls", "attempts", "retries", "successes", "exhausted", "non_retryable")
    }
    results = Counter("ok" if o == "ok" else type(o).__name__ for o in outcomes)
    assert got["calls"] == len(outcomes)
    assert got["attempts"] == dependency.executions  # every send counted, no refused one
    failed = value(samples, "retry_attempt_failures_total", **labels, error="ConnectionError")
    assert failed == dependency.failures
    assert got["successes"] == results["ok"] == dependency.executions - dependency.failures
    assert got["exhausted"] == results["ConnectionError"] == len(hooks.exhausted)
    assert got["non_retryable"] == results["CircuitOpenError"]
    assert got["calls"] == got["successes"] + got["exhausted"] + got["non_retryable"]
    assert value(samples, "retry_duration_seconds_count", **labels) == len(outcomes)
    # Each caller that gave up saw the very error its hook was given (once each).
    gave_up = [o for o in outcomes if isinstance(o, ConnectionError)]
    assert sorted(map(id, gave_up)) == sorted(id(info.error) for info in hooks.exhausted)

    (breaker,) = [g for _, _, g in PROCESS_GUARDS.instances() if isinstance(g, CircuitBreaker)]
    (budget,) = [g for _, _, g in PROCESS_GUARDS.instances() if isinstance(g, TokenBudget)]
    refused = breaker.stats()["refused"]
    assert got["attempts"] + refused == got["calls"] + got["retries"]  # sends + refusals = asked
    assert value(samples, "retry_budget_refusals_total", budget=kind) == budget.stats()["refused"]

    # Transitions: the hook heard each once, the counter counted each once, and they make a
    # valid path of the breaker's states from closed to its state now.
    heard = Counter(change.state for change in hooks.changes)
    for state in ("open", "half_open", "closed"):
        labels_state = {"breaker": breaker.name, "state": state}
        counted = samples.get(
            ("retry_breaker_transitions_total", tuple(sorted(labels_state.items()))), 0
        )
        assert counted == heard[state]
    assert heard["open"] == breaker.stats()["opened"]
    opens, half, closes = heard["open"], heard["half_open"], heard["closed"]
    final = breaker.state
    assert closes + 1 - (final == "closed") == opens - (half - closes - (final == "half_open"))
    assert half == opens - (final == "open")
    assert (
        value(samples, "retry_breaker_state", breaker=breaker.name)
        == {
            "closed": 0,
            "open": 1,
            "half_open": 2,
        }[final]
    )
    return {**got, "refused": int(refused), "budget_refused": int(budget.stats()["refused"]),
            "opens": opens}  # fmt: skip


THREADS = 16
CALLS_PER_THREAD = 150


def test_sixteen_threads_through_a_breaker_and_a_budget_keep_exact_counts() -> None:
    lock = threading.Lock()
    readings = [0]

    def clock() -> float:
        with lock:
            readings[0] += 1
            return readings[0] / 1000  # every reading moves the clock 1 ms on

    def down(_: int) -> bool:
        with lock:
            return (readings[0] // 1000) % 3 == 0  # down for 1 s of every 3

    dependency = Dependency(down)
    hooks = HookLog()

    @retry_api_call(
        max_attempts=3,
        min_wait=0.0,
        profile="exponential",
        sleep=lambda s: None,
        clock=clock,
        breaker={
            "enabled": True,
            "failure_threshold": 5,
            "recovery_timeout": 0.05,
            "name": "stress-threads",
        },
        budget={"enabled": True, "max_tokens": 10.0, "token_ratio": 0.5},
        on_exhausted=hooks.on_exhausted,
        on_breaker_change=hooks.on_breaker_change,
    )
    def call() -> str:
        return dependency()

    def one(_: int) -> Any:
        try:
            return call()
        except Exception as error:
            return error

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        outcomes = list(pool.map(one, range(THREADS * CALLS_PER_THREAD)))
    tallies = check_exact(f"{__name__}.{call.__qualname__}", "api", outcomes, dependency, hooks)
    # The run exercised what it claims to: the breaker opened, refused, and the budget refused.
    assert tallies["opens"] > 0 and tallies["refused"] > 0 and tallies["budget_refused"] > 0


TASKS = 1000


def test_a_thousand_tasks_through_a_breaker_and_a_budget_keep_exact_counts() -> None:
    loop_time: list[float] = []

    def down_at(_: int) -> bool:
        return 2.0 <= loop_time[-1] < 5.0  # an outage from t=2 s to t=5 s of virtual time

    dependency = Dependency(down_at)
    hooks = HookLog()

    @retry_api_call(
        max_attempts=4,
        min_wait=0.1,
        max_wait=1.0,
        profile="exponential",
        breaker={
            "enabled": True,
            "failure_threshold": 5,
            "recovery_timeout": 0.5,
            "name": "stress-tasks",
        },
        budget={"enabled": True, "max_tokens": 20.0, "token_ratio": 0.2},
        on_exhausted=hooks.on_exhausted,
        on_breaker_change=hooks.on_breaker_change,
    )
    async def call() -> str:
        await asyncio.sleep(0.01)  # the request's latency
        loop_time.append(asyncio.get_running_loop().time())
        return dependency()

    async def one(index: int) -> Any:
        await asyncio.sleep(index * 0.008)  # arrivals spread over 8 s
        try:
            return await call()
        except Exception as error:
            return error

    async def main() -> list[Any]:
        return await asyncio.gather(*(one(i) for i in range(TASKS)))

    outcomes = run_virtual(main())
    tallies = check_exact(f"{__name__}.{call.__qualname__}", "api", outcomes, dependency, hooks)
    assert tallies["opens"] > 0 and tallies["refused"] > 0 and tallies["budget_refused"] > 0
