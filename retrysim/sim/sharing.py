"""Processor sharing, exact and event-driven: the one rule a shared server and a shared client
CPU both follow.

``cores`` are shared by the jobs present: with n of them each gets min(1, cores/n) seconds of
work per second. ``attained`` is the work every job present has received since the busy
period began (all present progress at the same rate, so one clock serves them all). A job
that arrives at attained = V with work w is done when attained reaches V + w, its *tag*; tags
sit in a min-heap, ties in arrival order. One completion event is pending, for the smallest
tag; whenever n changes the rate does, so that event is cancelled in the kernel and a new one
set. A removed job stays in the tag heap until it surfaces (lazy deletion): membership in
``present`` says who is still there.

The mean time in an M/G/1-PS queue is E[S] / (1 - rho) whatever the work's distribution, and
a job of work s spends s / (1 - rho) on average (tests/test_sharing.py holds the engine to
both); n jobs of equal work that arrive together all finish together, n times the work
later, where a first-come-first-served server finishes them one by one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from heapq import heappop, heappush
from typing import Any, Protocol


class Scheduler(Protocol):
    """What sharing needs of the engine: its clock, and events it can set and cancel."""

    @property
    def now(self) -> float: ...

    def at(self, t: float, fn: Callable[[Any], None], arg: Any) -> int: ...

    def cancel(self, event: int) -> None: ...


class Sharing:
    """Jobs sharing ``cores``; ``done(payload)`` is called for each job as its work ends."""

    __slots__ = (
        "_pending",
        "_sequence",
        "_settling",
        "attained",
        "cores",
        "done",
        "last",
        "present",
        "scheduler",
        "tags",
    )

    def __init__(self, scheduler: Scheduler, cores: float, done: Callable[[Any], None]) -> None:
        self.scheduler = scheduler
        self.cores = cores
        self.done = done
        self.attained = 0.0  # work each job present got this busy period, as of `last`
        self.last = 0.0
        self.tags: list[tuple[float, int, int, Any]] = []  # (tag, sequence, key, payload)
        self.present: set[int] = set()  # the jobs still sharing; a tag not here was removed
        self._pending: int | None = None  # the kernel's handle of the one completion event
        self._sequence = 0
        self._settling = False  # batch the reschedules of one instant into one

    def __len__(self) -> int:
        return len(self.present)

    def rate(self) -> float:
        """Seconds of work each job present gets per second, now."""
        n = len(self.present)
        return min(1.0, self.cores / n) if n else 0.0

    def add(self, now: float, work: float, payload: Any, key: int | None = None) -> None:
        """A job of ``work`` seconds arrives at ``now``; ``key`` (default: its own sequence
        number) is what :meth:`remove` takes, so it must be unique among the jobs present."""
        self._advance(now)
        sequence = self._sequence
        self._sequence = sequence + 1
        key = sequence if key is None else key
        heappush(self.tags, (self.attained + work, sequence, key, payload))
        self.present.add(key)
        self._reschedule()

    def remove(self, now: float, key: int) -> bool:
        """Take job ``key`` out unfinished (its payload is never done); False: not present."""
        if key not in self.present:
            return False
        self._advance(now)
        self.present.remove(key)  # its tag stays in the heap until it reaches the top
        self._reschedule()
        return True

    @contextmanager
    def settled(self) -> Iterator[None]:
        """Changes made inside (jobs added, removed) reschedule once, on the way out."""
        outer, self._settling = self._settling, True
        try:
            yield
        finally:
            self._settling = outer
        self._reschedule()

    def _advance(self, now: float) -> None:
        self.attained += (now - self.last) * self.rate()
        self.last = now

    def _reschedule(self) -> None:
        """Point the one pending completion event at the smallest live tag, at today's rate."""
        if self._settling:
            return
        scheduler = self.scheduler
        if self._pending is not None:
            scheduler.cancel(self._pending)  # its time is wrong now: n, and so the rate, moved
            self._pending = None
        tags, present = self.tags, self.present
        while tags and tags[0][2] not in present:
            heappop(tags)  # removed: skipped now it is at the top
        if not present:
            # Idle: start the next busy period from 0 so tags keep their full precision.
            tags.clear()
            self.attained = 0.0
            return
        delay = max(0.0, (tags[0][0] - self.attained) / self.rate())
        self._pending = scheduler.at(self.last + delay, self._complete, None)

    def _complete(self, arg: None) -> None:
        self._pending = None  # this is it: nothing to cancel until the next is set
        self._advance(self.scheduler.now)
        tags, present, done = self.tags, self.present, self.done
        # Nothing changed since the event was set for the top tag, so that tag is due now;
        # (now - last) * rate may land a rounding error short of it, which must not strand it.
        self.attained = max(self.attained, tags[0][0])
        with self.settled():
            while tags and tags[0][0] <= self.attained:
                _, _, key, payload = heappop(tags)
                if key in present:
                    present.remove(key)
                    done(payload)
