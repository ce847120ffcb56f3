"""The one policy builder: settings + overrides + profile -> tenacity stop / wait / retry.

The production decorators and the simulator both call :func:`build_policy`, so what is simulated
is what ships. Overrides are explicit: ``None`` means "not given", so ``min_wait=0.0`` or
``max_attempts=1`` win over the settings.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tenacity import (
    AsyncRetrying,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
    wait_exponential_jitter,
    wait_none,
    wait_random,
    wait_random_exponential,
)
from tenacity.retry import retry_base
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from retrysim.names import MAX_ATTEMPTS_LIMIT
from retrysim.retry.errors import BINDU_RETRYABLE, DEFAULT_RETRYABLE
from retrysim.retry.settings import (
    OPERATIONS,
    PROFILES,
    Operation,
    Profile,
    RetrySettings,
    get_settings,
)
from retrysim.retry.waits import (
    capped_exponential,
    wait_decorrelated_jitter,
    wait_equal_jitter,
    wait_retry_after,
)

#: The profile descriptions shown by ``retrysim settings`` and the docs.
PROFILE_FORMULAS: dict[str, str] = {
    "documented": "min(max_wait, min_wait*2^(n-1) + U(0, jitter))",
    "bindu": (
        "U(min_wait, clamp(2^(n-1), min_wait, max_wait)); "
        "storage: clamp(2^(n-1), min_wait, max_wait)"
    ),
    "full_jitter": "U(0, min(max_wait, min_wait*2^(n-1)))",
    "equal_jitter": "v/2 + U(0, v/2), v = min(max_wait, min_wait*2^(n-1))",
    "decorrelated": "min(max_wait, U(min_wait, 3*previous)), previous starts at min_wait",
    "exponential": "min(max_wait, min_wait*2^(n-1)) (no jitter)",
}


@dataclass(frozen=True)
class RetryPolicy:
    """An effective retry policy: its numbers and the real tenacity strategies built from them."""

    operation: Operation
    profile: Profile
    max_attempts: int
    min_wait: float
    max_wait: float
    jitter: float
    stop: stop_base
    wait: wait_base
    retry: retry_base
    max_delay: float | None = None
    respect_retry_after: bool = False
    overrides: frozenset[str] = field(default_factory=frozenset)

    def retrying(self, **kwargs: Any) -> Retrying:
        """A tenacity ``Retrying`` with this policy's strategies (extra kwargs: hooks, sleep)."""
        return Retrying(stop=self.stop, wait=self.wait, retry=self.retry, reraise=True, **kwargs)

    def async_retrying(self, **kwargs: Any) -> AsyncRetrying:
        """A tenacity ``AsyncRetrying`` with this policy's strategies."""
        return AsyncRetrying(
            stop=self.stop, wait=self.wait, retry=self.retry, reraise=True, **kwargs
        )

    def wait_range(self, retry_number: int) -> tuple[float, float]:
        """Smallest and largest possible wait before retry ``retry_number`` (1 = first retry).

        Derived from the profile's formula; tests check sampled waits always fall inside.
        A ``retry_after`` hint from the server can lengthen a wait beyond this range.
        """
        n, lo_w, hi_w = retry_number, self.min_wait, self.max_wait
        scaled = capped_exponential(lo_w, hi_w, n)
        match self.profile:
            case "documented":
                return scaled, min(hi_w, lo_w * _pow2(n - 1) + self.jitter)
            case "bindu":
                top = min(hi_w, max(lo_w, capped_exponential(1.0, math.inf, n)))
                return (top if self.operation == "storage" else lo_w), top
            case "full_jitter":
                return 0.0, scaled
            case "equal_jitter":
                return scaled / 2, scaled
            case "decorrelated":
                if lo_w <= 0:
                    return 0.0, 0.0
                top = hi_w if n >= 647 else min(hi_w, lo_w * 3.0**n)  # 3**647 overflows a float
                return min(hi_w, lo_w), top
            case _:
                return scaled, scaled

    def schedule(self, limit: int = 100) -> list[tuple[int, float, float, float]]:
        """Per retry n: (n, min wait, max wait, worst-case total time waited through retry n).

        At most ``limit`` rows: a policy of a billion attempts has a billion retries.
        """
        rows, total = [], 0.0
        for n in range(1, min(self.max_attempts, limit + 1)):
            lo, hi = self.wait_range(n)
            total += hi
            rows.append((n, lo, hi, total))
        return rows

    def worst_case_total(self) -> float:
        """Longest possible total wait across all retries (exact, without listing them all).

        Every profile's longest wait grows with n until it reaches max_wait and stays there, so
        once two consecutive retries both sit at max_wait the rest add max_wait each.
        """
        total, previous = 0.0, None
        for n in range(1, self.max_attempts):
            hi = self.wait_range(n)[1]
            if hi == previous == self.max_wait:
                return total + hi * (self.max_attempts - n)
            total += hi
            previous = hi
        return total

    def describe(self) -> dict[str, Any]:
        """The effective numbers as plain data (what a run report and ``--json`` show)."""
        return {
            "operation": self.operation,
            "profile": self.profile,
            "max_attempts": self.max_attempts,
            "min_wait": self.min_wait,
            "max_wait": self.max_wait,
            "jitter": self.jitter,
            "max_delay": self.max_delay,
            "respect_retry_after": self.respect_retry_after,
            "overrides": sorted(self.overrides),
        }


def _pow2(exponent: int) -> float:
    return math.inf if exponent >= 1024 else 2.0**exponent


def build_wait(
    profile: Profile, operation: Operation, min_wait: float, max_wait: float, jitter: float
) -> wait_base:
    """The tenacity wait strategy of one profile (tenacity's own wherever it has one).

    A zero ``min_wait`` zeroes the exponential part; tenacity's exponentials overflow to their
    cap past retry 1024 in that case, so the equivalent constant strategies are used instead.
    """
    if min_wait == 0 and profile in ("exponential", "full_jitter"):
        return wait_none()
    if min_wait == 0 and profile == "documented":
        return wait_random(0, min(jitter, max_wait))
    match profile:
        case "documented":
            return wait_exponential_jitter(multiplier=min_wait, max=max_wait, jitter=jitter)
        case "bindu" if operation == "storage":
            return wait_exponential(multiplier=1, min=min_wait, max=max_wait)
        case "bindu":
            return wait_random_exponential(multiplier=1, min=min_wait, max=max_wait)
        case "full_jitter":
            return wait_random_exponential(multiplier=min_wait, max=max_wait)
        case "equal_jitter":
            return wait_equal_jitter(multiplier=min_wait, max=max_wait)
        case "decorrelated":
            return wait_decorrelated_jitter(base=min_wait, max=max_wait)
        case "exponential":
            return wait_exponential(multiplier=min_wait, max=max_wait)
    raise ValueError(f"unknown profile {profile!r}; allowed: {', '.join(PROFILES)}")


def build_policy(
    operation: Operation,
    settings: RetrySettings | None = None,
    *,
    max_attempts: int | None = None,
    min_wait: float | None = None,
    max_wait: float | None = None,
    profile: Profile | None = None,
    jitter: float | None = None,
    retry: retry_base | Callable[..., bool] | None = None,
    max_delay: float | None = None,
    respect_retry_after: bool = False,
) -> RetryPolicy:
    """Build the effective policy for ``operation``.

    ``settings`` defaults to the current process settings (``RETRY__*`` / ``.env``). Every
    keyword left as ``None`` falls back to the settings; anything else is used as given and
    validated, so an impossible combination fails here with the override's name.
    """
    if operation not in OPERATIONS:
        raise ValueError(f"unknown operation {operation!r}; allowed: {', '.join(OPERATIONS)}")
    settings = settings if settings is not None else get_settings()
    base_attempts, base_min, base_max = settings.for_operation(operation)
    given = {
        name
        for name, value in (
            ("max_attempts", max_attempts),
            ("min_wait", min_wait),
            ("max_wait", max_wait),
            ("profile", profile),
            ("jitter", jitter),
            ("retry", retry),
            ("max_delay", max_delay),
        )
        if value is not None
    }
    attempts = base_attempts if max_attempts is None else max_attempts
    lo = base_min if min_wait is None else float(min_wait)
    hi = base_max if max_wait is None else float(max_wait)
    prof: Profile = settings.profile if profile is None else profile
    jit = settings.jitter if jitter is None else float(jitter)
    _check(attempts, lo, hi, prof, jit, max_delay)

    stop: stop_base = stop_after_attempt(attempts)
    if max_delay is not None:
        stop = stop | stop_after_delay(max_delay)
    wait = build_wait(prof, operation, lo, hi, jit)
    if respect_retry_after:
        wait = wait_retry_after(wait)
    if retry is None:
        retry = retry_if_exception_type(BINDU_RETRYABLE if prof == "bindu" else DEFAULT_RETRYABLE)
    return RetryPolicy(
        operation=operation,
        profile=prof,
        max_attempts=attempts,
        min_wait=lo,
        max_wait=hi,
        jitter=jit,
        stop=stop,
        wait=wait,
        retry=retry,  # type: ignore[arg-type]  # tenacity accepts plain predicates too
        max_delay=max_delay,
        respect_retry_after=respect_retry_after,
        overrides=frozenset(given),
    )


def _check(
    attempts: int, lo: float, hi: float, profile: str, jitter: float, max_delay: float | None
) -> None:
    if (
        isinstance(attempts, bool)
        or not isinstance(attempts, int)
        or not 1 <= attempts <= MAX_ATTEMPTS_LIMIT
    ):
        raise ValueError(
            f"max_attempts must be a whole number from 1 to {MAX_ATTEMPTS_LIMIT}, got {attempts!r}"
        )
    for name, value in (("min_wait", lo), ("max_wait", hi), ("jitter", jitter)):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    if lo > hi:
        raise ValueError(f"min_wait ({lo}) must be <= max_wait ({hi})")
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; allowed: {', '.join(PROFILES)}")
    if max_delay is not None and not max_delay > 0:
        raise ValueError(f"max_delay must be > 0 seconds, got {max_delay!r}")
