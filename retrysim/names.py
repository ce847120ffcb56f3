"""The names retrysim accepts, defined once: operations, profiles, error names, metrics.

This module imports nothing heavy, so the CLI can check arguments and print help from it
without loading numpy or pydantic-settings; the settings, scenario and metrics modules take
their names from here, and a test checks ``METRIC_NAMES`` against ``retrysim.metrics.METRICS``.
"""

from __future__ import annotations

from typing import Literal, get_args

Operation = Literal["worker", "storage", "scheduler", "api"]
Profile = Literal[
    "documented", "bindu", "full_jitter", "equal_jitter", "decorrelated", "exponential"
]
ErrorName = Literal[
    "ConnectionError",
    "ConnectionRefusedError",
    "ConnectionResetError",
    "ConnectionAbortedError",
    "TimeoutError",
    "OSError",
    "RateLimited",
    "Conflict",
    "ServerError",
]

#: Upper bound for max_attempts anywhere (settings, overrides, scenarios); records store attempt
#: numbers in 16 bits, and no real policy comes near it.
MAX_ATTEMPTS_LIMIT = 10_000

OPERATIONS: tuple[Operation, ...] = get_args(Operation)
PROFILES: tuple[Profile, ...] = get_args(Profile)
ERROR_NAMES: tuple[ErrorName, ...] = get_args(ErrorName)

#: Metric names for --fail-under/--fail-over, --metrics and tables (see retrysim.metrics.METRICS).
METRIC_NAMES: tuple[str, ...] = (
    "success_rate", "failed", "unfinished", "retry_rate", "retry_success_rate",
    "attempts_per_call", "amplification", "peak_attempts_per_s", "mean_latency", "p50_latency",
    "p95_latency", "p99_latency", "max_latency", "p99_overhead", "wait_per_call", "duplicates",
    "wasted_work", "jitter_peak_share", "first_retry_peak_share",
)  # fmt: skip

#: What compare, sweep and the shell's diff show unless told otherwise.
DEFAULT_TABLE_METRICS: tuple[str, ...] = (
    "success_rate", "retry_success_rate", "attempts_per_call", "amplification",
    "peak_attempts_per_s", "p50_latency", "p99_latency", "p99_overhead", "duplicates",
    "jitter_peak_share", "first_retry_peak_share",
)  # fmt: skip
