"""``--fail-under/--fail-over METRIC=VALUE``: thresholds on one run's metrics, the CI gate.

One definition for every command that gates a run (``retrysim run`` on a simulation,
``retrysim chaos`` on a real run): the options and their help, how a threshold is parsed (a
metric of :mod:`retrysim.results.metric_table`, a finite number; bad ones are one line and exit
2, parsed before the run so a typo costs no run), and what a missed one prints (a
``retrysim: threshold missed: ...`` line each on stderr, then exit 1). A metric the run has no
value for (no retries, no mechanism on) holds nothing against it.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from retrysim.cli import common, value_completion
from retrysim.cli.exits import EXIT_THRESHOLD, UsageError

if TYPE_CHECKING:
    from retrysim.results.document import ResultDocument

FailUnderOption = Annotated[
    list[str] | None,
    typer.Option(
        "--fail-under",
        help="Exit 1 if METRIC is below VALUE, e.g. success_rate=0.99. Repeatable.",
        metavar="METRIC=VALUE",
        autocompletion=value_completion.thresholds,
    ),
]
FailOverOption = Annotated[
    list[str] | None,
    typer.Option(
        "--fail-over",
        help="Exit 1 if METRIC is above VALUE, e.g. p99_latency=30. Repeatable.",
        metavar="METRIC=VALUE",
        autocompletion=value_completion.thresholds,
    ),
]


@dataclass(frozen=True)
class Threshold:
    """One gate: the option that set it, the metric and the limit."""

    option: Literal["--fail-under", "--fail-over"]
    metric: str
    limit: float


def parse(fail_under: list[str] | None, fail_over: list[str] | None) -> list[Threshold]:
    """Both options' thresholds, in the order given; a UsageError names a bad one."""
    return _parse(fail_under, "--fail-under") + _parse(fail_over, "--fail-over")


def _parse(
    items: list[str] | None, option: Literal["--fail-under", "--fail-over"]
) -> list[Threshold]:
    parsed = []
    for item in items or []:
        name, value = common.parse_assignment(item, option)
        common.metric_name(name, f"{option} {name}")
        limit = common.parse_number(value, f"{option} {item!r}")
        if not math.isfinite(limit):
            raise UsageError(f"{option} {item!r}: the threshold must be a finite number")
        parsed.append(Threshold(option, name, limit))
    return parsed


def missed(doc: ResultDocument, thresholds: list[Threshold]) -> list[str]:
    """What each missed threshold says (``success_rate = 0.5 is below 0.99``), in order."""
    from retrysim.results.metrics import metric

    found = []
    for gate in thresholds:
        value = metric(doc, gate.metric)
        if value is None:
            continue  # not measurable in this run (e.g. no retries): nothing to hold against it
        below = gate.option == "--fail-under"
        if (below and value < gate.limit) or (not below and value > gate.limit):
            relation = "below" if below else "above"
            found.append(f"{gate.metric} = {value:.6g} is {relation} {gate.limit:g}")
    return found


def enforce(doc: ResultDocument, thresholds: list[Threshold]) -> None:
    """Print each missed threshold on stderr and exit 1; nothing when every one holds."""
    lines = missed(doc, thresholds)
    if lines:
        for line in lines:
            print(f"retrysim: threshold missed: {line}", file=sys.stderr)
        raise typer.Exit(EXIT_THRESHOLD)
