"""Every named metric, defined once: how it is read from a result document and how it reads.

A metric name is used by ``--fail-under/--fail-over``, ``--metrics``, compare and sweep tables,
the shell's diff, plots' panels and heat maps, and :func:`retrysim.results.metrics.metric`. Each of
those used to keep its own table of names, paths, labels or directions, and they drifted; now
each derives what it needs from :data:`METRIC_TABLE`, so adding a metric is one entry here.

A metric's place in the document is an accessor, ``lambda d: d["calls"]["success_rate"]``, typed
against :class:`~retrysim.results.document.ResultDocument`: mypy checks each key exists and
that a section that may be null is checked first. Its dotted path (:attr:`Metric.path`) is derived
from the accessor, never written twice.

This module imports nothing heavy (no numpy, pydantic, rich or matplotlib): ``retrysim --help``
and argument checking import it, and a test checks that they stay light.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal, TypeAlias, cast

if TYPE_CHECKING:
    from retrysim.results.document import ResultDocument

#: How a value is shown in tables: percent (0.5 -> 50.00%), seconds (1.234s), count (1,350),
#: ratio (2.68x, e.g. load amplification) or number (2.680, a plain mean).
Format = Literal["percent", "seconds", "count", "ratio", "number"]
#: Which way is better, for highlighting the best variant and colouring heat maps; "neither"
#: means no variant is singled out.
Better = Literal["higher", "lower", "neither"]
#: Reads a metric's value from a document (None: the document has no value for it). It may raise
#: KeyError only for a key the document lacks; :func:`retrysim.results.metrics.metric` decides
#: what a missing key means.
Read: TypeAlias = "Callable[[ResultDocument], float | None]"


@dataclass(frozen=True)
class Metric:
    """One metric: its name, how to read it from the result document, and its wording.

    ``label`` is the short wording of table rows and columns (tables are narrow); ``title`` is
    the fuller wording of a figure panel, and ``unit`` says what its value axis counts.
    ``optional``: its section is in a document only sometimes (``guards``, when a resilience
    mechanism is on), so a document without it reads as "no value", not as a damaged one.
    """

    name: str
    read: Read
    label: str
    title: str
    unit: str
    format: Format
    better: Better = "lower"
    optional: bool = False

    @property
    def path(self) -> tuple[str, ...]:
        """The keys :attr:`read` follows, in order (``("calls", "success_rate")``): found by
        handing it a stand-in document that notes each key asked for."""
        keys: list[str] = []
        self.read(cast("ResultDocument", _KeyRecorder(keys)))
        return tuple(keys)

    def show(self, value: float | None) -> str:
        """The value as tables print it ("–" when it is missing)."""
        if value is None:
            return "–"
        return _FORMATTERS[self.format](value)

    def show_change(self, diff: float) -> str:
        """A difference between two values, with the decimals the values have (so a column
        of values and changes lines up): percentage points for shares, thousands separators
        and never an exponent for counts (``+2,760``, not ``+2.76e+03``). A change that
        rounds to zero is ``±0``, never ``-0.000s``."""
        text = _CHANGES[self.format](diff)
        return "±0" if not any(c in "123456789" for c in text) else text


class _KeyRecorder:
    """A stand-in document for :attr:`Metric.path`: every key read is noted, every value is
    itself (never None, so an accessor follows its whole path)."""

    def __init__(self, keys: list[str]) -> None:
        self._keys = keys

    def __getitem__(self, key: str) -> _KeyRecorder:
        self._keys.append(key)
        return self


_FORMATTERS = {
    "percent": lambda v: f"{100 * v:.2f}%",
    "seconds": lambda v: f"{v:.3f}s",
    "count": lambda v: f"{v:,.0f}",
    "ratio": lambda v: f"{v:.2f}x",
    "number": lambda v: f"{v:.3f}",
}

_CHANGES = {
    "percent": lambda d: f"{100 * d:+.2f} pp",
    "seconds": lambda d: f"{d:+,.3f}s",
    "count": lambda d: f"{d:+,.0f}",
    "ratio": lambda d: f"{d:+.2f}",
    "number": lambda d: f"{d:+,.3f}",
}

#: The table, in the order names are listed in help and error messages.
METRIC_TABLE: tuple[Metric, ...] = (
    Metric("success_rate", lambda d: d["calls"]["success_rate"], "success rate", "success rate",
           "share of calls", "percent", "higher"),
    Metric("failed", lambda d: d["calls"]["failed"], "failed calls", "calls that gave up",
           "calls", "count"),
    Metric("unfinished", lambda d: d["calls"]["unfinished"], "unfinished calls",
           "unfinished calls", "calls", "count"),
    Metric("retry_rate", lambda d: d["attempts"]["retry_rate"], "retry rate", "retry rate",
           "share of calls that retried", "percent"),
    Metric("retry_success_rate", lambda d: d["retry_success_rate"], "retry success rate",
           "retry success rate", "share of retried calls", "percent", "higher"),
    Metric("attempts_per_call", lambda d: d["attempts"]["mean_per_call"], "attempts per call",
           "attempts per call", "attempts", "number"),
    Metric("amplification", lambda d: d["load"]["amplification"], "load amplification",
           "load amplification", "attempts per call", "ratio"),
    Metric("peak_attempts_per_s", lambda d: d["load"]["peak_attempts_per_s"], "peak attempts/s",
           "peak load", "attempts/s in the busiest second", "count"),
    Metric("mean_latency", lambda d: d["latency"]["mean"], "mean latency", "mean latency",
           "seconds", "seconds"),
    Metric("p50_latency", lambda d: d["latency"]["p50"], "p50 latency", "p50 latency", "seconds",
           "seconds"),
    Metric("p95_latency", lambda d: d["latency"]["p95"], "p95 latency", "p95 latency", "seconds",
           "seconds"),
    Metric("p99_latency", lambda d: d["latency"]["p99"], "p99 latency", "p99 latency", "seconds",
           "seconds"),
    Metric("max_latency", lambda d: d["latency"]["max"], "max latency", "max latency", "seconds",
           "seconds"),
    Metric("p99_overhead",
           lambda d: None if (o := d["latency_overhead"]) is None else o["p99"],
           "p99 overhead vs no faults", "p99 latency overhead vs no faults", "seconds",
           "seconds"),
    Metric("wait_per_call", lambda d: d["retry_wait"]["mean_per_call"], "wait per call",
           "retry wait per call", "seconds", "seconds"),
    Metric("duplicates", lambda d: d["duplicates"], "duplicate executions",
           "duplicate executions", "executions", "count"),
    Metric("wasted_work", lambda d: d["wasted_work"], "wasted work", "wasted work",
           "requests nobody waited for", "count"),
    Metric("jitter_peak_share", lambda d: d["jitter_spread"]["peak_share_100ms"],
           "retries in busiest 100 ms", "retries in the busiest 100 ms", "share of retries",
           "percent"),
    Metric("first_retry_peak_share",
           lambda d: d["jitter_spread"]["first_retry_peak_share_100ms"],
           "first retries in busiest 100 ms", "first retries in the busiest 100 ms",
           "share of first retries", "percent"),
    Metric("goodput_recovery",
           lambda d: None if (r := d["recovery"]) is None else r["ratio"], "goodput recovered",
           "goodput after the last disturbance, vs before it", "share of goodput before",
           "percent", "higher", optional=True),
    Metric("attempts_sent", lambda d: d["attempts"]["sent"], "attempts sent",
           "attempts sent to the dependency", "attempts (a breaker's refusals never left)",
           "count"),
    # A call graph's bottom tier (the document's ``graph``, with tiers) and hedging's load.
    Metric("bottom_requests_per_call", lambda d: d["graph"]["bottom_requests_per_call"],
           "bottom tier requests per user call", "requests per user call at the bottom tier",
           "requests", "number", optional=True),
    Metric("bottom_peak_over_capacity", lambda d: d["graph"]["bottom_peak_over_capacity"],
           "bottom tier peak / capacity", "the bottom tier's busiest second over its capacity",
           "share of capacity", "ratio", optional=True),
    Metric("wasted_below", lambda d: d["graph"]["wasted_requests"], "requests wasted below",
           "requests below the top started after their caller gave up", "requests", "count",
           optional=True),
    Metric("hedges", lambda d: d["hedging"]["hedges"], "hedged sends", "hedged sends",
           "sends beyond one per attempt", "count", "neither", optional=True),
    # What the resilience mechanisms did (the document's ``guards`` section, when one is on).
    Metric("breaker_opens", lambda d: d["guards"]["breaker"]["opened"], "breaker opens",
           "times a circuit breaker opened", "opens", "count", "neither", optional=True),
    Metric("breaker_open_seconds", lambda d: d["guards"]["breaker"]["open_seconds"],
           "breaker open time", "time circuit breakers were open (summed over breakers)",
           "seconds", "seconds", "neither", optional=True),
    Metric("breaker_refused", lambda d: d["guards"]["breaker"]["refused"], "refused by breaker",
           "attempts a circuit breaker refused", "attempts", "count", "neither", optional=True),
    Metric("budget_refused", lambda d: d["guards"]["budget"]["refused"], "refused by budget",
           "retries a retry budget refused", "retries", "count", "neither", optional=True),
    Metric("budget_refused_share", lambda d: d["guards"]["budget"]["refused_share"],
           "share refused by budget", "share of retries a retry budget refused",
           "share of retries asked", "percent", "neither", optional=True),
    Metric("limiter_delays", lambda d: d["guards"]["limiter"]["delays"],
           "sends delayed by limiter", "sends a rate limiter held back", "sends", "count",
           "neither", optional=True),
    Metric("limiter_mean_delay", lambda d: d["guards"]["limiter"]["mean_delay"],
           "mean limiter delay", "mean time a rate limiter held a send back", "seconds",
           "seconds", "neither", optional=True),
)  # fmt: skip

#: Name -> metric, read-only so no caller can change the one table by accident.
BY_NAME: MappingProxyType[str, Metric] = MappingProxyType({m.name: m for m in METRIC_TABLE})

#: Metric names for --fail-under/--fail-over, --metrics and tables, in table order.
METRIC_NAMES: tuple[str, ...] = tuple(BY_NAME)

#: What compare, sweep and the shell's diff show unless told otherwise.
DEFAULT_TABLE_METRICS: tuple[str, ...] = (
    "success_rate", "retry_success_rate", "attempts_per_call", "amplification",
    "peak_attempts_per_s", "p50_latency", "p99_latency", "p99_overhead", "duplicates",
    "jitter_peak_share", "first_retry_peak_share",
)  # fmt: skip

#: Rows compare and sweep add to their default ones when a variant has tiers, or hedges.
GRAPH_TABLE_METRICS: tuple[str, ...] = (
    "bottom_requests_per_call", "bottom_peak_over_capacity", "wasted_below",
)  # fmt: skip
HEDGE_TABLE_METRICS: tuple[str, ...] = ("hedges",)

#: Rows compare and sweep add to their default ones when a variant has a resilience mechanism on
#: (each only if some variant has a value for it).
GUARD_TABLE_METRICS: tuple[str, ...] = (
    "attempts_sent", "breaker_opens", "breaker_open_seconds", "breaker_refused",
    "budget_refused", "budget_refused_share", "limiter_delays", "limiter_mean_delay",
)  # fmt: skip

#: What a compare figure shows when no metrics are named: outcome, latency, load.
DEFAULT_COMPARE_METRICS: tuple[str, ...] = (
    "success_rate", "p99_latency", "amplification", "peak_attempts_per_s",
)  # fmt: skip


def get(name: str) -> Metric:
    """The metric called ``name``; a KeyError for an unknown name (callers check names first)."""
    return BY_NAME[name]


def label(name: str) -> str:
    """A table's wording for ``name``; an unknown name is shown as itself."""
    metric = BY_NAME.get(name)
    return name if metric is None else metric.label


def show(name: str, value: float | None) -> str:
    """``value`` as tables print metric ``name``; an unknown name prints as a plain number."""
    return BY_NAME.get(name, _PLAIN).show(value)


def show_change(name: str, diff: float) -> str:
    """A change in metric ``name`` as tables print it (see :meth:`Metric.show_change`)."""
    return BY_NAME.get(name, _PLAIN).show_change(diff)


def better(name: str) -> Better:
    """Which way is better for metric ``name``; lower for an unknown name, as for most metrics."""
    return BY_NAME.get(name, _PLAIN).better


# How an unknown name is treated by the lenient helpers above: a plain number, lower is better.
_PLAIN = Metric("", lambda d: None, "", "", "", "number", "lower")
