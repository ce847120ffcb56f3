"""What ``retrysim tune`` is asked: the settings to search, the objective, the constraints.

Plain data shared by the tuner (:mod:`retrysim.runs.tune`) and its proposers
(:mod:`retrysim.runs.tune_search`), checked before any run.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from retrysim.errors import BadInputError
from retrysim.results.metric_table import METRIC_TABLE

_BETTER = {m.name: m.better for m in METRIC_TABLE}
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}


#: The seeds a search takes: Optuna's sampler takes none larger, and every strategy takes the
#: same ones, so a command that runs with one strategy runs with another.
MAX_SEARCH_SEED = 2**32 - 1
#: The most candidates a grid search proposes: far more than a tuning run can try (each one is
#: several simulations), and few enough to hold. A larger grid is refused before any run.
MAX_GRID = 100_000
#: Whole-number range ends past this are not whole numbers once held as floats (as they are).
MAX_WHOLE = 2**53


class TuneError(BadInputError):
    """The search, objective or constraints cannot be tuned as given."""


@dataclass(frozen=True)
class Dimension:
    """One setting to search: a range ``low..high`` (whole numbers when both are) or values.

    A whole-number range is a grid of ``high - low + 1`` points, counted and indexed without
    being built (a range of 10^15 whole numbers is one dimension, not a list of them).
    """

    key: str  # dotted scenario key under policy: policy.max_attempts, policy.breaker.enabled
    low: float | None = None
    high: float | None = None
    integer: bool = False
    values: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        ends = (self.low, self.high)
        if self.integer and any(end is not None and abs(end) > MAX_WHOLE for end in ends):
            raise TuneError(
                f"--search {self.key}: whole-number range ends must lie within "
                f"-{MAX_WHOLE:,}..{MAX_WHOLE:,}"
            )

    @property
    def option(self) -> str:
        return self.key.removeprefix("policy.")

    @property
    def finite(self) -> bool:
        return bool(self.values) or self.integer

    @property
    def size(self) -> int:
        """How many points the dimension's grid has (a finite dimension only)."""
        if self.values:
            return len(self.values)
        assert self.integer and self.low is not None and self.high is not None
        return int(self.high) - int(self.low) + 1

    def at(self, index: int) -> Any:
        """The grid's point ``index`` (0 <= index < size), in order."""
        if self.values:
            return self.values[index]
        assert self.integer and self.low is not None
        return int(self.low) + index


def grid_size(dimensions: Sequence[Dimension]) -> int:
    """How many candidates the whole grid of finite ``dimensions`` holds (a Python int: any
    size, counted without building it)."""
    return math.prod(dim.size for dim in dimensions)


@dataclass(frozen=True)
class Constraint:
    """``metric op limit``, e.g. ``p99_latency <= 30``, held in every scenario of a group."""

    metric: str
    op: str
    limit: float

    def holds(self, value: float | None) -> bool:
        return value is not None and _OPS[self.op](value, self.limit)

    def violation(self, value: float | None) -> float:
        """How far ``value`` is past the limit, relative to the limit (0 when it holds)."""
        if self.holds(value):
            return 0.0
        if value is None:
            return math.inf
        return abs(value - self.limit) / max(abs(self.limit), 1e-12)

    def worst(self, values: Sequence[float | None]) -> float | None:
        """The value across scenarios that comes closest to breaking the constraint."""
        known = [v for v in values if v is not None]
        if len(known) < len(values) or not known:
            return None
        return max(known) if self.op in ("<=", "<") else min(known)

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.limit:g}"


@dataclass(frozen=True)
class Objective:
    metric: str
    maximize: bool

    @classmethod
    def of(cls, metric: str, maximize: bool | None = None) -> Objective:
        if maximize is None:
            better = _BETTER.get(metric)
            if better not in ("higher", "lower"):
                raise TuneError(
                    f"--objective {metric}: say --maximize or --minimize (the metric has no "
                    "better direction of its own)"
                )
            maximize = better == "higher"
        return cls(metric, maximize)


@dataclass(frozen=True)
class Tuning:
    """Everything a tuning run is asked: the search space, the goal, and how to spend runs."""

    dimensions: Sequence[Dimension]
    objective: Objective
    constraints: Sequence[Constraint] = ()
    seeds: int = 3  # seeds per candidate and scenario, the same for every candidate
    first_seed: int | None = None  # default: each scenario's own seed, then the next ones
    budget: int | None = None
    how: str = "worst"  # worst | mean
    weights: dict[str, float] = field(default_factory=dict)  # scenario name -> weight (mean)
    search: str = "auto"  # auto | grid | optuna | random
    search_seed: int = 0

    def __post_init__(self) -> None:
        """Refuse, as it is made, a search no strategy can run: a seed out of range, or a
        grid too big to propose (before it is built, so a huge one is no MemoryError)."""
        if not 0 <= self.search_seed <= MAX_SEARCH_SEED:
            raise TuneError(
                f"--search-seed {self.search_seed}: allowed 0 to {MAX_SEARCH_SEED:,} (2^32 - 1)"
            )
        if self.search != "grid" or not all(dim.finite for dim in self.dimensions):
            return
        size = grid_size(self.dimensions)
        proposed = size if self.budget is None else min(self.budget, size)
        if proposed > MAX_GRID:
            raise TuneError(
                f"--strategy grid: the grid holds {size:,} candidates, and a grid search "
                f"proposes at most {MAX_GRID:,}; narrow the --search ranges, give --budget N, "
                "or use --strategy random"
            )
