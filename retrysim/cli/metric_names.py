"""Metric names the CLI accepts, kept import-light (no numpy) for fast argument checking.

A test checks this list equals ``retrysim.metrics.METRICS``.
"""

METRIC_NAMES: tuple[str, ...] = (
    "success_rate",
    "failed",
    "unfinished",
    "retry_rate",
    "retry_success_rate",
    "attempts_per_call",
    "amplification",
    "peak_attempts_per_s",
    "mean_latency",
    "p50_latency",
    "p95_latency",
    "p99_latency",
    "max_latency",
    "p99_overhead",
    "wait_per_call",
    "duplicates",
    "wasted_work",
    "jitter_peak_share",
    "first_retry_peak_share",
)
