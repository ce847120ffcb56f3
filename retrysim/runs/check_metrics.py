"""What ``retrysim check`` can judge: every metric of the metric table, and each tier's figures.

A call graph's tiers (``[tiers.NAME]``) have figures of their own in the result document's
``tiers`` section; a check may gate them as ``tiers.NAME.FIELD`` (``tiers.database.
attempts_per_call = "<= before * 1.1"``: the requests the database gets per user call). Each is
a :class:`~retrysim.results.metric_table.Metric` made on demand, with its wording, format and
better side, so the tables, the JUnit messages and the page treat both kinds alike.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, cast

from retrysim.results import metric_table
from retrysim.results.metric_table import Better, Format, Metric
from retrysim.results.metrics import metric

if TYPE_CHECKING:
    from retrysim.results.document import ResultDocument

TIER_PREFIX = "tiers."

#: A tier's figures a check can judge: (label, format, better side).
TIER_FIELDS: dict[str, tuple[str, Format, Better]] = {
    "attempts_per_call": ("requests per user call", "number", "lower"),
    "peak_per_call": ("most requests one user call sent", "count", "lower"),
    "success_rate": ("success rate of calls to it", "percent", "higher"),
    "peak_attempts_per_s": ("peak requests/s", "count", "lower"),
    "peak_over_capacity": ("peak / capacity", "ratio", "lower"),
    "wasted_attempts": ("wasted requests", "count", "lower"),
    "wasted_share": ("share of requests wasted", "percent", "lower"),
}


def split_tier(name: str) -> tuple[str, str] | None:
    """``("database", "attempts_per_call")`` for ``tiers.database.attempts_per_call``; None for
    any other name."""
    if not name.startswith(TIER_PREFIX):
        return None
    tier, _, field = name.removeprefix(TIER_PREFIX).rpartition(".")
    return (tier, field) if tier and field else None


@cache
def about(name: str) -> Metric:
    """The metric called ``name``: the table's, or a tier's figure (KeyError for neither)."""
    split = split_tier(name)
    if split is None:
        return metric_table.get(name)
    tier, field = split
    label, format_, better = TIER_FIELDS[field]

    def read(document: ResultDocument) -> float | None:
        for row in document.get("tiers", []):
            if row["name"] == tier:
                return cast("float | None", row[field])  # type: ignore[literal-required]
        return None

    return Metric(name, read, f"{tier}: {label}", f"tier {tier}: {label}", label, format_, better)


def value(document: ResultDocument, name: str) -> float | None:
    """``name``'s value in ``document`` (None: not measured in it)."""
    if split_tier(name) is None:
        return metric(document, name)
    found = about(name).read(document)
    return None if found is None else float(found)


def label(name: str) -> str:
    return about(name).label


def show(name: str, number: float | None) -> str:
    return about(name).show(number)


def show_change(name: str, diff: float) -> str:
    return about(name).show_change(diff)


def better(name: str) -> Better:
    return about(name).better
