"""Wait strategies tenacity lacks, as tenacity ``wait_base`` subclasses.

They compose with tenacity's own (``+``, ``wait_combine``, ``wait_chain``) and draw their
randomness from this module's ``random`` global, which the simulator rebinds to a seeded
per-call stream exactly as it rebinds tenacity's.
"""

from __future__ import annotations

import math
import random
import weakref

from tenacity import RetryCallState
from tenacity.wait import wait_base

from retrysim.retry.classify import header_retry_after

__all__ = [
    "RETRY_AFTER_CAP",
    "random",
    "retry_after_cap",
    "wait_capped",
    "wait_decorrelated_jitter",
    "wait_equal_jitter",
    "wait_retry_after",
]

#: Longest ``retry_after`` hint honoured (seconds) when the policy's ``max_wait`` is shorter: a
#: hint is obeyed up to ``max(max_wait, RETRY_AFTER_CAP)``, so a server can ask for more than
#: ``max_wait`` (it knows its own overload) but never for a year.
RETRY_AFTER_CAP = 300.0


def retry_after_cap(max_wait: float) -> float:
    """The longest ``retry_after`` hint a policy honours: ``max(max_wait, RETRY_AFTER_CAP)``."""
    return max(max_wait, RETRY_AFTER_CAP)


def capped_exponential(base: float, cap: float, retry_number: int) -> float:
    """min(cap, base * 2^(n-1)) without overflowing for large n (0 when base is 0)."""
    if base <= 0:
        return 0.0
    exponent = retry_number - 1
    if exponent >= 1024:
        return cap
    return min(cap, base * 2.0**exponent)


def _floored(wait: float, floor: float) -> float:
    """``max(floor, wait)``, leaving the wait untouched (type included) without a floor."""
    return floor if floor > 0 and wait < floor else wait


class wait_capped(wait_base):  # noqa: N801 - tenacity's naming convention
    """``min(cap, inner wait)``: a ceiling on any wait strategy (tenacity has none to compose)."""

    def __init__(self, inner: wait_base, cap: float) -> None:
        self.inner = inner
        self.cap = cap

    def __call__(self, retry_state: RetryCallState) -> float:
        return min(self.cap, self.inner(retry_state))


class wait_equal_jitter(wait_base):  # noqa: N801 - tenacity's naming convention
    """AWS "equal jitter": v/2 + U(0, v/2) with v = min(max, multiplier * 2^(n-1)).

    Keeps at least half the exponential wait (no near-zero retries) while still spreading clients.
    """

    def __init__(self, multiplier: float = 1.0, max: float = 60.0, min: float = 0.0) -> None:
        self.multiplier = multiplier
        self.max = max
        self.min = min

    def __call__(self, retry_state: RetryCallState) -> float:
        v = capped_exponential(self.multiplier, self.max, retry_state.attempt_number)
        return _floored(v / 2 + random.uniform(0, v / 2), self.min)


class wait_decorrelated_jitter(wait_base):  # noqa: N801
    """AWS "decorrelated jitter": s_n = min(max, U(base, 3*s_{n-1})), with s_0 = base.

    Each wait depends on the previous one of the same call, so the strategy remembers the last
    wait per call state (weakly, so finished calls leave nothing behind).
    """

    def __init__(self, base: float = 1.0, max: float = 60.0, min: float = 0.0) -> None:
        self.base = base
        self.max = max
        self.min = min
        self._previous: weakref.WeakKeyDictionary[RetryCallState, float] = (
            weakref.WeakKeyDictionary()
        )

    def __call__(self, retry_state: RetryCallState) -> float:
        previous = self._previous.get(retry_state, self.base)
        if retry_state.attempt_number <= 1:
            previous = self.base
        wait = min(self.max, random.uniform(self.base, 3 * previous))
        self._previous[retry_state] = wait
        return _floored(wait, self.min)


class wait_retry_after(wait_base):  # noqa: N801
    """Honour a server's ``retry_after`` hint: wait max(fallback wait, min(hint, cap)).

    The hint is read from the failed attempt's exception (``RateLimitedError.retry_after`` or any
    exception with a numeric ``retry_after``, else an httpx/aiohttp error's ``Retry-After``
    header in seconds). A hint that is not a finite, non-negative number
    (``inf``, ``nan``, ``-1``, ``"soon"``, ``True``) is ignored and the fallback strategy decides;
    an honoured hint is capped at ``cap`` (:data:`RETRY_AFTER_CAP` by default;
    :func:`~retrysim.retry.policy.build_policy` passes ``max(max_wait, RETRY_AFTER_CAP)``).
    """

    def __init__(self, fallback: wait_base, cap: float = RETRY_AFTER_CAP) -> None:
        self.fallback = fallback
        self.cap = cap

    def __call__(self, retry_state: RetryCallState) -> float:
        wait = self.fallback(retry_state)
        outcome = retry_state.outcome
        if outcome is not None and outcome.failed:
            error = outcome.exception()
            hint = _valid_hint(getattr(error, "retry_after", None))
            if hint is None and error is not None:
                hint = header_retry_after(error)  # an HTTP library's Retry-After header
            if hint is not None and hint > wait:
                wait = max(wait, min(hint, self.cap))
        return wait


def _valid_hint(hint: object) -> float | None:
    """``hint`` as seconds if it is a finite, non-negative real number, else None."""
    if isinstance(hint, bool) or not isinstance(hint, int | float):
        return None
    try:
        seconds = float(hint)
    except OverflowError:  # an int too large for a float
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None
