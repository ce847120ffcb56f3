"""One cell of a log as a number of seconds or an error name: timestamps, durations, outcomes.

Each parser raises ``ValueError`` with what was wrong with the value alone; the reader adds
the file, the row and the column (:class:`~retrysim.fit.observations.FitInputError`).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

from retrysim.names import ERROR_NAMES

#: Seconds per unit, for durations and numeric timestamps.
UNITS: dict[str, float] = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
#: Name endings that say a column's unit (``duration_ms``, ``latency_seconds``).
_UNIT_SUFFIXES = (
    ("_seconds", "s"),
    ("_secs", "s"),
    ("_sec", "s"),
    ("_s", "s"),
    ("_millis", "ms"),
    ("_ms", "ms"),
    ("_micros", "us"),
    ("_us", "us"),
    ("_nanos", "ns"),
    ("_ns", "ns"),
)

#: Outcome words that mean the request succeeded (compared lower-cased).
OK_WORDS = frozenset(
    {"", "ok", "success", "succeeded", "successful", "true", "pass", "passed", "none", "null", "-"}
)
#: Outcome words that mean it failed without saying how.
FAIL_WORDS = frozenset({"error", "fail", "failed", "failure", "false", "ko", "err"})
#: The name an unnamed failure gets.
UNNAMED = "error"


def unit_of(column: str) -> str | None:
    """The unit a column's name gives (``duration_ms`` -> ``ms``), None when it gives none."""
    lowered = column.lower()
    for suffix, unit in _UNIT_SUFFIXES:
        if lowered.endswith(suffix):
            return unit
    return None


def number(text: str) -> float:
    """A finite float (``ValueError`` otherwise)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


def duration(raw: object, unit: str) -> float:
    """A non-negative duration in seconds, from a number in ``unit``."""
    value = _as_number(raw) * UNITS[unit]
    if value < 0:
        raise ValueError(f"{raw!r} is a negative duration")
    return value


def epoch_unit(value: float) -> str:
    """The unit of a numeric epoch timestamp by its size: seconds until the year 5138, then
    milliseconds, microseconds, nanoseconds (what logs and tracers write)."""
    size = abs(value)
    if size < 1e11:
        return "s"
    if size < 1e14:
        return "ms"
    if size < 1e17:
        return "us"
    return "ns"


def timestamp(raw: object, unit: str | None) -> float:
    """Seconds (epoch, or a run's own clock) from a number or an ISO 8601 text.

    A number's unit is ``unit``, else guessed by its size (:func:`epoch_unit`). ISO text
    without a zone is read as UTC.
    """
    if isinstance(raw, bool):
        raise ValueError(f"{raw!r} is not a time")
    if isinstance(raw, int | float) or (isinstance(raw, str) and _NUMERIC.fullmatch(raw.strip())):
        value = _as_number(raw)
        per_second = round(1 / UNITS[unit or epoch_unit(value)])
        whole = str(raw).strip()
        if per_second > 1 and whole.lstrip("-+").isdigit():
            return int(whole) / per_second  # exact integer division: nanoseconds keep their digits
        return value / per_second
    if not isinstance(raw, str):
        raise ValueError(f"{raw!r} is not a time")
    text = raw.strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{raw!r} is not a time; allowed: epoch seconds, ms, us or ns, or ISO 8601 "
            "(2024-05-01T12:00:00.123Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


_NUMERIC = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _as_number(raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ValueError(f"{raw!r} is not a number")
    try:
        return number(str(raw).strip())
    except ValueError:
        raise ValueError(f"{raw!r} is not a number") from None


def status_error(code: int) -> str:
    """The error an HTTP status is, "" when it is a success: 429 is ``RateLimited``, 408
    ``TimeoutError``, 5xx ``ServerError``; another 4xx keeps its number (``HTTP 404``)."""
    if code < 400:
        return ""
    if code == 429:
        return "RateLimited"
    if code == 408:
        return "TimeoutError"
    if code >= 500:
        return "ServerError"
    return f"HTTP {code}"


def outcome(raw: object) -> str:
    """The error a status/outcome cell says ("" for ok): a status number (:func:`status_error`;
    a gRPC code 0 to 16 is not told apart from it, so 0 is ok, others failures), an ok or
    failure word, or an error's name (kept as written)."""
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return "" if raw else UNNAMED
    if isinstance(raw, int | float):
        return _status_number(float(raw))
    text = str(raw).strip()
    if _NUMERIC.fullmatch(text):
        return _status_number(float(text))
    lowered = text.lower()
    if lowered in OK_WORDS:
        return ""
    if lowered in FAIL_WORDS:
        return UNNAMED
    return text


def _status_number(value: float) -> str:
    if value == 0:
        return ""
    if 100 <= value <= 999 and value == int(value):
        return status_error(int(value))
    return UNNAMED  # a non-zero exit or gRPC code: a failure without a name


def scenario_error(name: str) -> tuple[str, str | None]:
    """The error name a scenario can hold for an error seen in data, and why it differs (None
    when it is the same name): exact names first, then the last dotted part
    (``builtins.ConnectionResetError``), then by family from words in the name."""
    if name in ERROR_NAMES:
        return name, None
    tail = name.rpartition(".")[2]
    if tail in ERROR_NAMES:
        return tail, f"{name!r} is written as {tail}"
    lowered = name.lower()
    for word, error in _FAMILIES:
        if word in lowered:
            return error, f"{name!r} is written as {error}, the closest error the simulator raises"
    return (
        "ServerError",
        f"{name!r} is written as ServerError: no closer error the simulator raises",
    )


#: Words in an error's name and the scenario error of that family, checked in order.
_FAMILIES = (
    ("timeout", "TimeoutError"),
    ("timed out", "TimeoutError"),
    ("deadline", "TimeoutError"),
    ("refused", "ConnectionRefusedError"),
    ("reset", "ConnectionResetError"),
    ("abort", "ConnectionAbortedError"),
    ("connect", "ConnectionError"),
    ("unavailable", "ConnectionError"),
    ("ratelimit", "RateLimited"),
    ("rate limit", "RateLimited"),
    ("rate_limit", "RateLimited"),
    ("throttl", "RateLimited"),
    ("too many", "RateLimited"),
    ("conflict", "Conflict"),
)
