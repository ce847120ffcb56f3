"""What a fit found, as data: every value with its source, method, sample size and goodness,
or a default with the one-line reason; the whole fit JSON-serialisable (``to_dict``).

The CLI's report, the figures and the written scenario all read a :class:`FitResult`, so each
says the same thing about each value. A value that could not be fitted is never left out
silently: it is a :class:`Fitted` whose ``default`` says what was missing, and the same line
is in :attr:`FitResult.missing`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from retrysim.fit.observations import Source

if TYPE_CHECKING:
    from retrysim.fit.arrivals import ArrivalFit
    from retrysim.fit.error_rates import ErrorFit
    from retrysim.fit.graph import CallGraph
    from retrysim.fit.latency import LatencyFit
    from retrysim.fit.retries import RetriesSeen


@dataclass(frozen=True)
class Fitted:
    """One value of the written scenario.

    ``key`` is its dotted scenario key (``clients.arrival.rate``, ``service.latency``,
    ``faults.0``, ``tiers.db.service.latency``); ``value`` what is written there. A fitted
    value has its ``source`` (file, rows, columns), ``method`` (the estimator, the test) and
    ``n`` (the sample it rests on); ``goodness`` holds named numbers (``("KS D", 0.012)``,
    ``("p", 0.41)``); ``detail`` more comment lines (the other candidates). A default has
    ``default``: why it is one, in one line.
    """

    key: str
    value: Any
    source: str = ""
    method: str = ""
    n: int = 0
    goodness: tuple[tuple[str, float], ...] = ()
    default: str | None = None
    detail: tuple[str, ...] = ()

    @property
    def is_default(self) -> bool:
        return self.default is not None

    def comment_lines(self) -> list[str]:
        """The comment the scenario file carries above this value."""
        if self.default is not None:
            return [f"default: {self.default}"]
        lines = [f"{self.source}: {self.method}" if self.source else self.method]
        numbers = ", ".join(f"{name} {_number(value)}" for name, value in self.goodness)
        lines.append(f"n = {self.n:,}" + (f"; {numbers}" if numbers else ""))
        return [*lines, *self.detail]

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "value": self.value,
            "source": self.source,
            "method": self.method,
            "n": self.n,
            "goodness": {name: value for name, value in self.goodness},
            "default": self.default,
            "detail": list(self.detail),
        }


def _number(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if value == 0 or 1e-3 <= abs(value) < 1e5:
        return f"{value:.3g}" if abs(value) < 1 else f"{value:,.4g}"
    return f"{value:.2e}"


def default(key: str, value: Any, reason: str) -> Fitted:
    """A value the data could not give, and why (one line)."""
    return Fitted(key, value, default=reason)


@dataclass(frozen=True)
class FitResult:
    """A whole fit.

    ``values``: every value written, in file order; ``scenario``: the scenario data they make
    (what the TOML holds, valid for ``retrysim.model.scenario.parse_scenario``); ``missing``:
    one line per thing the data could not support; ``sources``: each input; ``origin``: the
    epoch second the scenario's 0 stands for (0: a run's own clock). The parts, for reports
    and figures: ``latency`` and ``errors`` by tier (``""`` without tiers), ``arrivals``,
    ``retries`` and ``graph`` (None when the data had none), and ``latency_over_time`` by tier
    (``bin_starts``, ``p50``, ``p99``, ``n``: the successful requests' durations per bin, NaN
    in an empty bin) for the "latency over time with the windows" figure.
    """

    values: tuple[Fitted, ...]
    scenario: Mapping[str, Any]
    missing: tuple[str, ...]
    sources: tuple[Source, ...]
    origin: float
    latency: Mapping[str, LatencyFit] = field(default_factory=dict)
    errors: Mapping[str, ErrorFit] = field(default_factory=dict)
    arrivals: ArrivalFit | None = None
    retries: Mapping[str, RetriesSeen] = field(default_factory=dict)
    graph: CallGraph | None = None
    notes: tuple[str, ...] = ()
    latency_over_time: Mapping[str, Mapping[str, list[float]]] = field(default_factory=dict)

    def value(self, key: str) -> Fitted:
        """The value written at ``key`` (KeyError when there is none)."""
        for item in self.values:
            if item.key == key:
                return item
        raise KeyError(key)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (strict: a NaN or infinity is None): every part, arrays as lists."""
        plain: dict[str, Any] = _plain(
            {
                "scenario": dict(self.scenario),
                "values": [item.to_dict() for item in self.values],
                "missing": list(self.missing),
                "sources": [source.to_dict() for source in self.sources],
                "origin": self.origin,
                "latency": {tier: fit.to_dict() for tier, fit in self.latency.items()},
                "errors": {tier: fit.to_dict() for tier, fit in self.errors.items()},
                "arrivals": None if self.arrivals is None else self.arrivals.to_dict(),
                "retries": {tier: seen.to_dict() for tier, seen in self.retries.items()},
                "graph": None if self.graph is None else self.graph.to_dict(),
                "notes": list(self.notes),
                "latency_over_time": {
                    tier: dict(found) for tier, found in self.latency_over_time.items()
                },
            }
        )
        return plain


def _plain(value: Any) -> Any:
    """``value`` with every non-finite float made None and tuples made lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
