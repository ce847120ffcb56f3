"""The scheduling kernel: a heap of (time, sequence, callback, argument), and nothing else.

Like SimPy's core, the whole scheduler is ``at`` (schedule a callback), ``now`` (the virtual
clock) and ``run`` (pop and call until the heap is empty or a limit is hit), plus ``cancel``
for an event that must never happen (a processor-sharing completion whose time moved): a
cancelled event neither runs nor moves the clock nor counts, so it can neither make a run read
later than its last real event nor stop it at a time limit. Ties in time run in
the order they were scheduled, so a run is deterministic. It knows nothing of clients, servers or
retries: the engine builds its model on top of it.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterator
from heapq import heappop, heappush
from typing import Any

#: How often ``run`` reports progress: every 8,192 events (about 10 ms of work).
REPORT_EVERY = 1 << 13
#: The collector's young-generation threshold while a run that makes cycles is going.
GC_YOUNG_THRESHOLD = 20_000
#: Events after which a run gives its freed memory back before its records are built.
LARGE_RUN_EVENTS = 1 << 20


class _Halted(Exception):  # noqa: N818 (a signal between halt and run, never seen outside)
    """Raised by the event :meth:`Kernel.halt` schedules: ``run`` stops with its reason."""


def _halt(why: str) -> None:
    raise _Halted(why)


class Kernel:
    """A virtual clock and an event heap."""

    __slots__ = ("cancelled", "heap", "now", "seq")

    def __init__(self) -> None:
        self.now = 0.0
        self.heap: list[tuple[float, int, Callable[[Any], None], Any]] = []
        self.seq = 0
        self.cancelled: set[int] = set()  # sequence numbers of events that must not run

    def at(self, t: float, fn: Callable[[Any], None], arg: Any) -> int:
        """Schedule ``fn(arg)`` at virtual time ``t`` (ties run in scheduling order); the
        event's sequence number is what :meth:`cancel` takes."""
        seq = self.seq
        heappush(self.heap, (t, seq, fn, arg))
        self.seq = seq + 1
        return seq

    def cancel(self, seq: int) -> None:
        """Make the event ``seq`` (from :meth:`at`) never happen; it is dropped when it surfaces."""
        self.cancelled.add(seq)

    def halt(self, why: str) -> None:
        """Stop the run once the event now running returns: ``run`` gives ``why`` as its
        reason (the engine's attempts budget). An event of its own, first in the heap, does it,
        so the run's loop asks nothing more per event."""
        heappush(self.heap, (self.now, -1, _halt, why))

    def run(
        self,
        max_time: float,
        max_events: int,
        progress: Callable[[], None] | None = None,
        events_limit: str = "limits.max_events",
    ) -> tuple[int, str | None]:
        """Run events in time order; return (events run, why it stopped early or None).

        An event due after ``max_time`` is not run; the run stops after ``max_events`` events
        (``events_limit`` says what set that number). ``progress()`` is called every
        :data:`REPORT_EVERY` events; what it reports (work done) is the caller's to know, so
        the kernel stays ignorant of calls. A :meth:`halt` stops it with the reason given.
        """
        heap, cancelled = self.heap, self.cancelled
        events, stopped = 0, None
        try:
            while heap:
                t, seq, fn, arg = heappop(heap)
                if cancelled and seq in cancelled:
                    cancelled.discard(seq)
                    continue
                if t > max_time:
                    stopped = (
                        f"stopped at the time limit: virtual time would pass {max_time:g}s "
                        "(limits.max_time); calls still running are reported unfinished"
                    )
                    break
                self.now = t
                fn(arg)
                events += 1
                if events >= max_events:
                    stopped = (
                        f"stopped after {events:,} events ({events_limit}); "
                        "calls still running are reported unfinished"
                    )
                    break
                if progress is not None and events & (REPORT_EVERY - 1) == 0:
                    progress()
        except _Halted as halted:
            stopped = str(halted)
        return events, stopped


@contextlib.contextmanager
def quiet_collector(cycles: bool) -> Iterator[None]:
    """Keep the garbage collector out of the run, record building included.

    Thousands of live calls stay alive at once, and the collector's default young-generation
    threshold (700) makes it re-scan them constantly. When the run makes no reference cycles
    (``cycles`` False: the fast path) it is switched off for the run; otherwise (tenacity's
    ``iter()`` raises and re-raises through frames) its threshold is raised. Neither changes a
    result; the caller's settings come back.
    """
    thresholds, enabled = gc.get_threshold(), gc.isenabled()
    if cycles:
        gc.set_threshold(max(thresholds[0], GC_YOUNG_THRESHOLD), *thresholds[1:])
    else:
        gc.disable()
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        if enabled:
            gc.enable()


def give_back_memory(events: int) -> None:
    """After a large run, let the allocator return the memory its live calls held.

    A million calls alive at once fill hundreds of the allocator's arenas; when they end, the
    arenas stay mapped, each held by a handful of objects parked on the interpreter's free
    lists. Only a full collection empties those lists, and it costs a few tens of ms, so it
    runs only after runs of more than :data:`LARGE_RUN_EVENTS` events: at 300,000 clients it
    gave back 132 MB (a third of the process) before the records, report and plots need it.
    """
    if events > LARGE_RUN_EVENTS:
        gc.collect()
