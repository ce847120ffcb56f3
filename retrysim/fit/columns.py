"""Which column of a log is which: the user's mapping, else a guess from common names.

A role is what the fitter needs a column for (``timestamp``, ``duration``, ``outcome``...).
``--column duration=latency_ms`` names it; otherwise the first header that matches one of the
role's usual names, compared without case, ``-`` or ``.`` (``@timestamp``, ``Duration-Ms``).
Durations may come from ``start`` and ``end`` columns instead of one duration column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from retrysim.fit.observations import FitInputError
from retrysim.suggest import hint

#: Each role and the names it is guessed from, most specific first.
GUESSES: dict[str, tuple[str, ...]] = {
    "timestamp": (
        "timestamp",
        "@timestamp",
        "ts",
        "time",
        "start",
        "start_time",
        "starttime",
        "datetime",
        "date",
        "time_ms",
        "timestamp_ms",
        "ts_ms",
    ),
    "end": ("end", "end_time", "endtime", "finish", "finished"),
    "duration": (
        "duration",
        "latency",
        "elapsed",
        "response_time",
        "request_time",
        "rt",
        "took",
        "duration_ms",
        "latency_ms",
        "elapsed_ms",
        "response_time_ms",
        "took_ms",
        "duration_us",
        "latency_us",
        "duration_ns",
        "duration_s",
        "duration_seconds",
        "latency_s",
        "latency_seconds",
    ),
    "error": ("error", "error_type", "error_name", "exception", "exception_type", "err"),
    "outcome": (
        "outcome",
        "status",
        "status_code",
        "http_status",
        "response_status",
        "code",
        "result",
        "success",
        "ok",
    ),
    "client": ("client", "client_id", "worker", "instance", "host", "pod", "caller"),
    "call": ("call", "call_id", "request_id", "correlation_id", "operation_id", "trace_id"),
    "attempt": ("attempt", "attempt_number", "try", "tries", "retry", "retries", "resend_count"),
    "tier": ("tier", "service", "service_name", "component", "upstream"),
}
ROLES = tuple(GUESSES)
#: Attempt columns counting retries (0 for the first try) rather than attempts.
ZERO_BASED = frozenset({"retry", "retries", "resend_count"})


def _plain(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(".", "_").lstrip("@")


@dataclass(frozen=True)
class ColumnMap:
    """The column each role is read from (None: no such column)."""

    found: Mapping[str, str] = field(default_factory=dict)
    guessed: frozenset[str] = frozenset()

    def get(self, role: str) -> str | None:
        return self.found.get(role)


def check_roles(columns: Mapping[str, str]) -> None:
    """The user's ``role=column`` mapping names known roles (one line with the closest)."""
    for role in columns:
        if role not in GUESSES:
            raise FitInputError(f"--column {role}=...: no such role{hint(role, list(GUESSES))}")


def resolve(header: Sequence[str], given: Mapping[str, str], path: str) -> ColumnMap:
    """Each role's column among ``header``: given ones must exist, the rest are guessed.

    The timestamp is required, and so is a duration (or an end time).
    """
    check_roles(given)
    found: dict[str, str] = {}
    for role, column in given.items():
        if column not in header:
            raise FitInputError(
                f"{path}: no column {column!r} (--column {role}={column})"
                f"{hint(column, list(header), list_allowed=False)}; columns: {', '.join(header)}"
            )
        found[role] = column
    plain = {_plain(name): name for name in reversed(header)}
    taken = set(found.values())
    guessed: set[str] = set()
    for role, names in GUESSES.items():
        if role in found:
            continue
        for name in names:
            match = plain.get(_plain(name))
            if match is not None and match not in taken:
                found[role] = match
                taken.add(match)
                guessed.add(role)
                break
    if "timestamp" not in found:
        raise FitInputError(
            f"{path}: no timestamp column among {', '.join(header) or 'none'}; "
            "name it with --column timestamp=NAME"
        )
    if "duration" not in found and "end" not in found:
        raise FitInputError(
            f"{path}: no duration column (nor an end time) among {', '.join(header)}; "
            "name it with --column duration=NAME (or --column end=NAME)"
        )
    ordered = {role: found[role] for role in ROLES if role in found}
    return ColumnMap(ordered, frozenset(guessed))
