"""Behaviour of ``retrysim/sim/kernel.py`` that its mutation run found untested.

Each test pins what a caller of the scheduling kernel sees (which events run, when, the run's
count and stop reason, the garbage collector's state during and after a run), so a plausible
wrong edit of the kernel fails one of them. None reads the kernel's source.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Iterator

import pytest

from retrysim.sim.kernel import Kernel, give_back_memory, quiet_collector


@pytest.fixture
def restored_collector() -> Iterator[None]:
    """The test may change the collector's thresholds and switch; the caller's come back."""
    thresholds, enabled = gc.get_threshold(), gc.isenabled()
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        if enabled:
            gc.enable()
        else:
            gc.disable()


def test_a_fresh_kernels_clock_reads_zero() -> None:
    """The virtual clock starts at time 0: a halt asked before the run starts is due at 0, so
    it stops the run before an event due at 0.5 runs."""
    kernel = Kernel()
    assert kernel.now == 0.0
    ran: list[str] = []
    kernel.at(0.5, ran.append, "late")
    kernel.halt("stopped before anything ran")
    assert kernel.run(math.inf, 100) == (0, "stopped before anything ran")
    assert ran == []


def test_a_halt_stops_the_run_with_its_reason_after_the_current_event() -> None:
    """An event that calls ``halt(why)`` finishes; no later event runs, not even one due at the
    same instant, and the run reports ``why`` with the events run so far."""
    kernel, ran = Kernel(), list[str]()

    def halting(name: str) -> None:
        ran.append(name)
        kernel.halt("the attempts budget")

    kernel.at(1.0, ran.append, "first")
    kernel.at(2.0, halting, "halting")
    kernel.at(2.0, ran.append, "same instant")
    kernel.at(3.0, ran.append, "later")
    events, stopped = kernel.run(math.inf, 100)
    assert ran == ["first", "halting"]
    assert (events, stopped) == (2, "the attempts budget")
    assert kernel.now == 2.0


def test_a_cancelled_event_is_skipped_and_every_other_runs() -> None:
    """Cancelling one event by the handle ``at`` gave drops that event alone: the events around
    it, before and after and at the same instant, run in order and are counted."""
    kernel, ran = Kernel(), list[str]()
    kernel.at(1.0, ran.append, "a")
    doomed = kernel.at(2.0, ran.append, "cancelled")
    kernel.at(2.0, ran.append, "b")
    kernel.at(3.0, ran.append, "c")
    kernel.cancel(doomed)
    events, stopped = kernel.run(math.inf, 100)
    assert ran == ["a", "b", "c"]
    assert (events, stopped) == (3, None)
    assert kernel.now == 3.0


def test_each_handle_cancels_its_own_event() -> None:
    """Handles from ``at`` tell events apart: cancelling the second of three drops exactly it,
    however the events are spread in time."""
    kernel, ran = Kernel(), list[int]()
    handles = [kernel.at(t, ran.append, i) for i, t in enumerate((5.0, 1.0, 3.0))]
    assert len(set(handles)) == 3
    kernel.cancel(handles[1])
    kernel.run(math.inf, 100)
    assert ran == [2, 0]


def test_a_cancelled_event_is_forgotten_once_it_surfaces() -> None:
    """A long run cancels many events (every processor-sharing reschedule does): each is
    dropped from the kernel's cancelled set when its time comes, so the set does not grow with
    the run."""
    kernel = Kernel()
    ran: list[int] = []
    for i in range(100):
        kernel.at(float(i), ran.append, i)
        kernel.cancel(kernel.at(float(i) + 0.5, ran.append, -i))
    kernel.run(math.inf, 10_000)
    assert ran == list(range(100))
    assert kernel.cancelled == set()


def test_an_event_due_exactly_at_the_time_limit_runs() -> None:
    """``max_time`` is the last instant a run may reach: an event due at it runs, one due
    after it does not, and the run says it stopped at the time limit."""
    kernel, ran = Kernel(), list[float]()
    for t in (5.0, 10.0, math.nextafter(10.0, math.inf)):
        kernel.at(t, ran.append, t)
    events, stopped = kernel.run(10.0, 100)
    assert ran == [5.0, 10.0]
    assert events == 2
    assert stopped is not None and "time limit" in stopped and "10s" in stopped


def test_a_run_that_makes_cycles_raises_the_young_threshold_to_20_000(
    restored_collector: None,
) -> None:
    """With cycles the collector stays on but its young-generation threshold is raised to
    20,000 (from the default 700), the older generations' thresholds untouched; a caller's
    threshold already higher is kept. Afterwards the caller's thresholds are back."""
    gc.enable()
    gc.set_threshold(700, 30_000, 11)
    with quiet_collector(cycles=True):
        assert gc.isenabled()
        assert gc.get_threshold() == (20_000, 30_000, 11)
    assert gc.get_threshold() == (700, 30_000, 11)
    gc.set_threshold(50_000, 10, 10)
    with quiet_collector(cycles=True):
        assert gc.get_threshold() == (50_000, 10, 10)
    assert gc.get_threshold() == (50_000, 10, 10)


def test_a_run_without_cycles_switches_the_collector_off_while_it_runs(
    restored_collector: None,
) -> None:
    """The fast path makes no reference cycles: the collector is off inside the block (its
    thresholds untouched) and on again after it."""
    gc.enable()
    gc.set_threshold(700, 10, 10)
    with quiet_collector(cycles=False):
        assert not gc.isenabled()
        assert gc.get_threshold() == (700, 10, 10)
    assert gc.isenabled()


def test_only_a_run_of_more_than_2_to_the_20_events_collects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The full collection that gives freed arenas back runs after runs of more than 1,048,576
    (2**20) events only: a run of exactly that many does not pay for it, one more does."""
    collections: list[tuple[int, ...]] = []

    def counted(*args: int) -> int:
        collections.append(args)
        return 0

    monkeypatch.setattr(gc, "collect", counted)
    give_back_memory(0)
    give_back_memory(2**20)
    assert collections == []
    give_back_memory(2**20 + 1)
    assert len(collections) == 1
