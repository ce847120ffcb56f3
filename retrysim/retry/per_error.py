"""Per-error policies: which family an error is, and the stop and wait that dispatch on it.

A 429 with a Retry-After hint and a refused connection want different schedules: the first is
the server asking for patience (many attempts, long waits, the hint honoured), the second a
dependency that is down (few attempts, short waits). A policy gives an error family its own
attempts and waits (``rate_limited = {max_attempts = 8, respect_retry_after = true}``); the
families, the tenacity strategies that act on them, and the function from an error to its
family are defined here once, and :func:`~retrysim.retry.policy.build_policy` composes the
strategies, so the decorators, the engine and fidelity mode all get them.

The families a policy can name (:data:`PER_ERROR_FAMILIES`) are finer than
:func:`~retrysim.retry.classify.error_family`'s, which says what an error does to a
connection: an "answer" is a 429 (``rate_limited``) or a 5xx (``server_error``) here, read by
the same walk along the class's MRO plus the answer's status. An error of no family (a
conflict, an application's own error, a guard's refusal) follows the policy's own numbers.

The rule, for one call:

- **attempts** count per call, across every error: a call that has made ``n`` attempts stops
  when ``n`` reaches the limit of the family of its *latest* error. With
  ``max_attempts = 3`` and ``rate_limited.max_attempts = 8``, a call that keeps getting 429s
  makes 8 attempts, one that keeps being refused 3, and one whose third attempt is refused
  after two 429s stops there (3 reached).
- **the wait** after an error is its family's: its ``min_wait``/``max_wait`` in the profile's
  formula (``n`` the call's retry number overall) and its ``respect_retry_after``.
- a family's knob left unset inherits the policy's value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from tenacity import RetryCallState
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from retrysim.retry.classify import (
    THROTTLING_CODES,
    aws_code_of,
    error_family,
    status_of,
)
from retrysim.retry.exceptions import RateLimitedError, ServerError

__all__ = [
    "PER_ERROR_FAMILIES",
    "PerErrorFamily",
    "latest_family",
    "most_attempts",
    "per_error_family",
    "stop_after_attempt_per_error",
    "wait_per_error",
]

PerErrorFamily = Literal["rate_limited", "server_error", "connection_error", "timeout_error"]

#: Each family a policy can give its own attempts and waits, and which errors it holds (the
#: scenario reference, ``retrysim settings`` and the README say the same).
PER_ERROR_FAMILIES: dict[PerErrorFamily, str] = {
    "rate_limited": "after HTTP 429 or throttling (RateLimitedError, an httpx or aiohttp "
    "status error with status 429, an AWS throttling code)",
    "server_error": "after HTTP 5xx or a busy server (ServerError, a status error with a 5xx "
    "status, redis-py's BusyLoadingError)",
    "connection_error": "after a connection that could not be opened or broke (refused, "
    "reset, aborted, cannot connect now)",
    "timeout_error": "after no answer in time (a connect, read or pool timeout)",
}

#: AWS error codes that are a rate limit, not a timeout or a busy resource.
RATE_LIMIT_CODES: frozenset[str] = THROTTLING_CODES - {
    "RequestTimeout",
    "RequestTimeoutException",
    "PriorRequestNotComplete",
    "TransactionInProgressException",
}


def per_error_family(error: BaseException) -> PerErrorFamily | None:
    """The per-error family of ``error`` (see :data:`PER_ERROR_FAMILIES`), or None when it is
    of none of them. Never raises, imports nothing (the families follow
    :func:`~retrysim.retry.classify.error_family`)."""
    family = error_family(error)
    if family == "connection":
        return "connection_error"
    if family == "timeout":
        return "timeout_error"
    if family == "busy":
        return "server_error"
    if family != "answer":
        return None
    if isinstance(error, RateLimitedError):
        return "rate_limited"
    if isinstance(error, ServerError):
        return "server_error"
    status = status_of(error)
    if status == 429 or aws_code_of(error) in RATE_LIMIT_CODES:
        return "rate_limited"
    if status is not None and 500 <= status <= 599:
        return "server_error"
    return None


def most_attempts(described: Mapping[str, Any]) -> int:
    """The most attempts a call can make under a described policy (``RetryPolicy.describe()``,
    a result document's ``settings``): its ``max_attempts``, or a family's own when larger (a
    document from before per-error policies has none)."""
    limits = [int(described["max_attempts"])]
    for family in PER_ERROR_FAMILIES:
        table = described.get(family)
        if isinstance(table, Mapping) and table.get("max_attempts") is not None:
            limits.append(int(table["max_attempts"]))
    return max(limits)


def latest_family(retry_state: RetryCallState) -> PerErrorFamily | None:
    """The family of the call's latest error (None after a result, or an error of none)."""
    outcome = retry_state.outcome
    if outcome is None or not outcome.failed:
        return None
    error = outcome.exception()
    return None if error is None else per_error_family(error)


class stop_after_attempt_per_error(stop_base):  # noqa: N801 - tenacity's naming convention
    """``stop_after_attempt`` whose limit is that of the latest error's family.

    ``limits`` maps a family to its attempts; any other error (or a result) stops after
    ``max_attempt_number``, as ``stop_after_attempt(max_attempt_number)`` would.
    """

    def __init__(self, max_attempt_number: int, limits: Mapping[str, int]) -> None:
        self.max_attempt_number = max_attempt_number
        self.limits = dict(limits)

    def limit(self, family: str | None) -> int:
        """The attempts a call whose latest error is of ``family`` may make."""
        own = self.limits.get(family) if family is not None else None
        return self.max_attempt_number if own is None else own

    def __call__(self, retry_state: RetryCallState) -> bool:
        return retry_state.attempt_number >= self.limit(latest_family(retry_state))

    def __repr__(self) -> str:
        return f"stop_after_attempt_per_error({self.max_attempt_number}, {self.limits})"


class wait_per_error(wait_base):  # noqa: N801 - tenacity's naming convention
    """The wait of the latest error's family: ``by_family[family]``, else ``default``.

    ``waits`` holds every strategy it may call (the default first), for whatever walks a
    composed strategy's parts (the simulator's fast path does).
    """

    def __init__(self, default: wait_base, by_family: Mapping[str, wait_base]) -> None:
        self.default = default
        self.by_family = dict(by_family)
        self.waits: tuple[wait_base, ...] = (default, *self.by_family.values())

    def strategy(self, family: str | None) -> wait_base:
        """The wait after an error of ``family``."""
        return self.by_family.get(family, self.default) if family else self.default

    def __call__(self, retry_state: RetryCallState) -> float:
        return self.strategy(latest_family(retry_state))(retry_state)

    def __repr__(self) -> str:
        return f"wait_per_error({self.default!r}, {self.by_family!r})"
