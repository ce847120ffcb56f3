"""Tests written for mutants of ``retrysim/retry/guards.py`` that its own tests let survive
(a full mutation run, ``python scripts/mutate.py --module guards``): each pins a behaviour a
plausible wrong edit would change."""

from __future__ import annotations

import dataclasses

import pytest

from retrysim.retry.guards import GuardChain, GuardEvent, GuardSpec, GuardStates, Notifier

# --- guards: hand-made guards with one capability each ---------------------------------------


class Plain:
    """An attempt guard that lets everything through and has no other capability."""

    def before_attempt(self, now: float, attempt: int) -> BaseException | None:
        return None

    def after_outcome(self, now: float, error: BaseException | None) -> None:
        return None


class Pacer(Plain):
    """A send-rate limiter asking to hold each send ``hold`` seconds (at most ``most``)."""

    def __init__(self, hold: float) -> None:
        self.hold = hold

    def pace(self, now: float, most: float = float("inf")) -> float:
        return min(self.hold, most)


class Deadline(Plain):
    """A call time limit: ``left`` seconds remain for any hold."""

    def __init__(self, left: float) -> None:
        self.left = left

    def pace_limit(self, now: float) -> float:
        return self.left


# --- guards: GuardEvent and Notifier --------------------------------------------------------


def test_a_guard_event_is_immutable_and_hashable() -> None:
    """A GuardEvent handed to several listeners cannot be changed by one of them, and equal
    events are one set member (a listener can deduplicate them)."""
    event = GuardEvent(1.0, "breaker", "db", None, "open")
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.value = "closed"  # type: ignore[misc]
    assert len({event, GuardEvent(1.0, "breaker", "db", None, "open")}) == 1


def test_a_notifier_connected_by_hand_reports_events_of_no_client() -> None:
    """A Notifier whose listeners were set directly (not through GuardStates) reports each
    event with its own name and no client."""
    seen: list[GuardEvent] = []
    notify = Notifier("db")
    notify(0.0, "breaker", "open")  # no listener yet: nothing happens
    notify.listeners = (seen.append,)
    notify(2.0, "breaker", "open")
    assert seen == [GuardEvent(2.0, "breaker", "db", None, "open")]


# --- guards: GuardChain ---------------------------------------------------------------------


def test_a_chain_is_true_exactly_when_it_holds_a_guard() -> None:
    """``if chain:`` is how callers skip guard work: an empty chain is false, one guard true."""
    assert bool(GuardChain([])) is False
    assert bool(GuardChain([Plain()])) is True


def test_pace_is_the_longest_hold_and_zero_without_limiters() -> None:
    """With no time limit, the hold is the longest any limiter asks for; with no limiter, 0."""
    assert GuardChain([]).pace(0.0) == 0.0
    assert GuardChain([Plain()]).pace(0.0) == 0.0
    assert GuardChain([Pacer(1.0), Pacer(3.0), Pacer(2.0)]).pace(0.0) == 3.0


def test_pace_under_a_time_limit_is_the_longest_hold_cut_to_the_time_left() -> None:
    """With a time limit, the hold is the longest limiter's, cut to the time left; with a time
    limit but no limiter, there is no hold at all."""
    assert GuardChain([Deadline(10.0), Pacer(1.0), Pacer(3.0)]).pace(0.0) == 3.0
    assert GuardChain([Deadline(2.5), Pacer(1.0), Pacer(3.0)]).pace(0.0) == 2.5
    assert GuardChain([Deadline(10.0), Deadline(4.0), Pacer(6.0)]).pace(0.0) == 4.0
    assert GuardChain([Deadline(10.0)]).pace(0.0) == 0.0


# --- guards: GuardStates ---------------------------------------------------------------------


def test_shared_guards_are_listed_and_forgotten_on_clear() -> None:
    """``instances()`` lists every shared guard made (name, owner, guard); ``clear()`` forgets
    them, so the next call gets a fresh guard."""
    states = GuardStates()
    spec = GuardSpec("db", "fleet", Plain)
    first = states.instance(spec, client="a")
    assert states.instance(spec, client="b") is first  # fleet-wide: one for everyone
    assert states.instances() == [("db", None, first)]
    states.clear()
    assert states.instances() == []
    again = states.instance(spec, client="a")
    assert again is not first
    assert states.instances() == [("db", None, again)]
