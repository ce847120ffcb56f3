"""Tests written for mutants of ``retrysim/retry/counters.py`` that its own tests let survive
(a full mutation run, ``python scripts/mutate.py --module counters``): each pins a behaviour a
plausible wrong edit would change."""

from __future__ import annotations

import dataclasses
import math

import pytest
from prometheus_client import Histogram

from retrysim.retry.counters import CounterRegistry, OperationCounters
from retrysim.retry.guards import GuardEvent

#: How many idempotency keys an operation remembers (``SEEN_KEYS_LIMIT``), written out here so
#: a changed bound fails a test instead of moving the tests with it.
REMEMBERED = 100_000


# --- counters: the call-duration histogram ----------------------------------------------------


def test_the_duration_buckets_are_prometheus_defaults_then_whole_minutes() -> None:
    """``retry_duration_seconds``' upper bounds are prometheus_client's default buckets (so
    dashboards built for them line up), then 30 s, 1, 2 and 5 min, then +Inf."""
    registry = CounterRegistry()
    registry.call_started("op", "api")
    bounds = [bound for bound, _ in registry.snapshot()["op"].duration_buckets()]
    expected = [b for b in Histogram.DEFAULT_BUCKETS if not math.isinf(b)]
    assert bounds == [*expected, 30.0, 60.0, 120.0, 300.0, math.inf]


def test_a_call_on_a_bound_is_counted_in_that_bucket_and_not_the_one_below() -> None:
    """A bucket counts calls at most its bound long: a call of exactly 2.5 s (or 300 s) is in
    ``le="2.5"`` (``le="300"``) and not in the bucket below, whatever that bucket is."""
    for seconds in (2.5, 5.0, 7.5, 10.0, 30.0, 60.0, 120.0, 300.0):
        registry = CounterRegistry()
        registry.call_finished("op", seconds)
        cumulative = dict(registry.snapshot()["op"].duration_buckets())
        assert cumulative[seconds] == 1
        below = max(bound for bound in cumulative if bound < seconds)
        assert cumulative[below] == 0


def test_a_clock_that_went_back_counts_as_a_call_of_zero_seconds() -> None:
    """A hand-made clock that moved backwards gives a negative duration: it is counted as 0 s,
    so the histogram's sum never goes down (Prometheus reads a falling sum as a reset)."""
    registry = CounterRegistry()
    registry.call_finished("op", 1.0)
    registry.call_finished("op", -2.0)
    ops = registry.snapshot()["op"]
    assert ops.duration_sum == 1.0
    assert ops.duration_count == 2
    assert dict(ops.duration_buckets())[0.005] == 1


def test_duration_listeners_hear_each_call_with_its_operation_type() -> None:
    """Each ended call is told to every duration listener as (operation, kind, seconds): the
    OpenTelemetry histogram records through this."""
    registry = CounterRegistry()
    heard: list[tuple[str, str, float]] = []
    registry.duration_listeners.append(lambda *args: heard.append(args))
    registry.call_started("app.fetch", "storage")
    registry.call_finished("app.fetch", 1.5)
    registry.call_finished("app.fetch", 0.25)
    assert heard == [("app.fetch", "storage", 1.5), ("app.fetch", "storage", 0.25)]


def test_a_hand_built_histogram_of_the_wrong_length_is_refused() -> None:
    """``duration_buckets`` pairs each bound with a count; a snapshot built with fewer counts
    than bounds raises instead of silently dropping the longest buckets (and +Inf)."""
    short = OperationCounters("op", duration_counts=[1, 2, 3])
    with pytest.raises(ValueError):
        short.duration_buckets()


# --- counters: hedges -------------------------------------------------------------------------


def test_an_operation_that_never_hedged_has_no_hedges() -> None:
    """Counting calls and attempts alone leaves ``hedges`` at 0: only a hedge adds to it."""
    registry = CounterRegistry()
    registry.call_started("op", "api")
    registry.attempt("op")
    ops = registry.snapshot()["op"]
    assert ops.hedges == 0
    assert ops.as_dict()["hedges"] == 0


def test_each_hedge_adds_one() -> None:
    """``hedge_started`` counts one send per call of it: three hedges, three."""
    registry = CounterRegistry()
    for _ in range(3):
        registry.hedge_started("op")
    assert registry.snapshot()["op"].hedges == 3


# --- counters: guard counts ---------------------------------------------------------------------


def test_the_guard_snapshot_cannot_be_rebound() -> None:
    """A guard snapshot is a frozen value: assigning a field raises, so no reader can swap
    another's view of the counts."""
    snapshot = CounterRegistry().guard_snapshot()
    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot.budget_refusals = {"api": 1}  # type: ignore[misc]


def test_reset_forgets_every_guard_count() -> None:
    """After ``reset`` the breaker transitions, budget refusals, limiter delays and delay
    seconds all start again from nothing."""
    registry = CounterRegistry()
    for kind, value in (("breaker", "open"), ("budget_refused", 0.0), ("limiter_delay", 0.5)):
        registry.guard_event(GuardEvent(1.0, kind, f"x:{kind}", None, value))
    before = registry.guard_snapshot()
    assert before.breaker_transitions and before.budget_refusals and before.limiter_delays
    assert before.limiter_delay_seconds
    registry.reset()
    after = registry.guard_snapshot()
    assert after.breaker_transitions == {}
    assert after.budget_refusals == {}
    assert after.limiter_delays == {}
    assert after.limiter_delay_seconds == {}


# --- counters: the bounded memory of idempotency keys -------------------------------------------


def _execute(registry: CounterRegistry, keys: range) -> None:
    for key in keys:
        registry.attempt("op", key)


def test_exactly_the_limit_of_keys_is_remembered() -> None:
    """With as many distinct keys as the limit, none is forgotten yet: the first one executed
    again is a duplicate."""
    registry = CounterRegistry()
    _execute(registry, range(REMEMBERED))
    registry.attempt("op", 0)
    assert registry.snapshot()["op"].duplicate_executions == 1


def test_one_key_past_the_limit_forgets_the_oldest_and_keeps_the_newest() -> None:
    """The key past the limit pushes out the oldest: the newest and the second one are still
    duplicates when executed again, the first one no longer is."""
    registry = CounterRegistry()
    _execute(registry, range(REMEMBERED + 1))
    registry.attempt("op", REMEMBERED)  # the newest: remembered
    registry.attempt("op", 1)  # the second: remembered
    registry.attempt("op", 0)  # the first: forgotten, so a first execution again
    assert registry.snapshot()["op"].duplicate_executions == 2


def test_a_key_executed_again_is_forgotten_last() -> None:
    """Remembering is least-recently-used: a key executed again moves to the back, so the
    next key past the limit pushes out the one after it instead."""
    registry = CounterRegistry()
    _execute(registry, range(REMEMBERED))
    registry.attempt("op", 0)  # a duplicate, now the most recent
    registry.attempt("op", REMEMBERED)  # past the limit: pushes out key 1, not key 0
    registry.attempt("op", 0)  # still remembered
    registry.attempt("op", 1)  # forgotten
    assert registry.snapshot()["op"].duplicate_executions == 2
