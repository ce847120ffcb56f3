"""Exceptions the mechanism knows by name, and the default set of retryable ones.

``TransientError`` lets a service mark its own failures as retryable without pretending they are
socket errors; the simulator's rate-limit and conflict errors derive from it.
"""

from __future__ import annotations

import asyncio


class TransientError(Exception):
    """A failure that is expected to go away: retried by the default predicate."""


class RateLimitedError(TransientError):
    """The server refused for now (HTTP 429); ``retry_after`` is its hint in seconds, if any."""

    def __init__(self, message: str = "rate limited", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ConflictError(TransientError):
    """An optimistic-concurrency write lost the race: the record changed since it was read."""


class ServerError(Exception):
    """The server failed (HTTP 5xx). Not retried by default: it may not be transient."""


#: Retried by default: connection failures (and subclasses), timeouts, and TransientError.
#: ``asyncio.TimeoutError`` is ``TimeoutError`` on Python 3.11+, listed for readers of the spec.
DEFAULT_RETRYABLE: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    asyncio.TimeoutError,
    TransientError,
)

#: What the shipped (``bindu``) profile retries: every OSError too, FileNotFoundError included.
BINDU_RETRYABLE: tuple[type[BaseException], ...] = (
    ConnectionError,
    ConnectionRefusedError,
    ConnectionResetError,
    ConnectionAbortedError,
    TimeoutError,
    asyncio.TimeoutError,
    OSError,
)


class GuardRefusedError(Exception):
    """An attempt a guard refused to send (it never reached the dependency). Never retried:
    the policy of any call with guards refuses to retry these, whatever its ``retry`` says."""


class CircuitOpenError(GuardRefusedError):
    """The circuit breaker for ``breaker`` is open: the call fails fast, without a request.

    ``retry_in`` is how many seconds remain until the breaker lets a probe through (0 when it
    is half-open and every probe slot is taken).
    """

    def __init__(self, breaker: str = "breaker", retry_in: float = 0.0) -> None:
        super().__init__(f"circuit breaker {breaker!r} is open; next probe in {retry_in:.1f}s")
        self.breaker = breaker
        self.retry_in = retry_in


class RetriedResult(Exception):  # noqa: N818 - never raised: an outcome, named for it
    """An attempt that returned ``result``, which the call's retry strategy retries
    (``tenacity.retry_if_result``): never raised, only what the attempt guards and the counters
    are told as its outcome, so a retried result counts as a failure of the dependency (a
    breaker's failure, a budget's cost) exactly as an exception would."""

    def __init__(self, result: object) -> None:
        super().__init__("the retry strategy retried the attempt's result")
        self.result = result
