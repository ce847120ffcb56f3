"""Adaptive backoff and a client-side send-rate limiter: retrying that listens to the dependency.

Adaptive backoff (the seed's ``retry_with_adaptive_backoff``) stretches the profile's wait by
``1 + (max_factor - 1) * r``, where ``r`` is the share of failed attempts over the last
``window`` seconds: a healthy dependency keeps the configured waits, a failing one gets up to
``max_factor`` times longer ones.

The limiter follows the AWS SDKs' adaptive retry mode. It stays out of the way until the first
throttle (a :class:`~retrysim.retry.exceptions.RateLimitedError`); from then on every send, first
attempts included, takes a token from a bucket refilled at the allowed rate. A throttle cuts
the rate to ``limiter_beta`` times the measured send rate; after it, the rate grows back along
CUBIC's curve ``C (t - K)^3 + W_max`` with ``C = limiter_scale`` and
``K = cbrt(W_max (1 - beta) / C)``, and never above twice the measured send rate nor below
``limiter_min_rate``. The send rate is measured as the SDKs measure it: one count per answer
(an attempt that was sent and came back, failed or not), in half-second buckets, smoothed 0.8
new, 0.2 old. So it is the rate that actually went out, not the rate callers asked for while
held back, and an attempt a guard refused (an open breaker's) is not counted at all.

Deliberate differences: the SDKs' bucket may hold up to a second of tokens when it is first
enabled; here it starts empty, so the first send after the first throttle already waits
``1 / rate``. A throttle before the first bucket has closed reads the answers so far over the
time they took (at least half a second), where the SDKs read a rate of 0 and send everyone to
the floor rate. A held-back send keeps the place in line it was given when it asked.

The limiter's hold counts against the call's time limits, ``max_delay`` and
``budget.max_total_time``: a send is never held past the earlier of them (a
:class:`PacingDeadline`, one per call, cuts the hold to the time left, measured from the call's
first send; the limiter is asked ``pace(now, most)`` and reports the hold it gave). The send
then goes at the limit, ahead of its place in line (which stays taken: the senders behind it
wait as long as before), and the stop ends the call after that attempt, as it ends a call whose
wait reached the limit: however long the limiter's line, a call's sends are never held past its
limit, and it lasts at most its limit plus its last attempt (plus its last wait under
``max_delay``, whose stop lets a wait run past it, as tenacity's ``stop_after_delay`` does).
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Mapping
from functools import partial
from typing import Annotated

from pydantic import Field

from retrysim.retry.exceptions import GuardRefusedError, RateLimitedError
from retrysim.retry.guards import GuardSpec, Notifier, SharedScope
from retrysim.retry.knobs import Knobs, PlacedGuard

RATE_BUCKET = 0.5  # seconds per send-rate measurement bucket
SMOOTHING = 0.8  # weight of the newest bucket in the measured send rate


class AdaptiveOptions(Knobs):
    """``[policy.adaptive]`` / ``RETRY__<OPERATION>_ADAPTIVE_*``: both parts off unless set."""

    enabled: Annotated[bool, Field(description="lengthen waits with the recent failure rate")] = (
        False
    )
    window: Annotated[
        float,
        Field(
            gt=0,
            le=1e6,
            allow_inf_nan=False,
            json_schema_extra={"unit": "s"},
            description="seconds of outcomes remembered",
        ),
    ] = 30.0
    max_factor: Annotated[
        float,
        Field(ge=1, le=1000, allow_inf_nan=False, description="the longest stretch of a wait"),
    ] = 4.0
    limiter: Annotated[
        bool, Field(description="limit the send rate after throttling (AWS adaptive mode)")
    ] = False
    limiter_beta: Annotated[
        float,
        Field(gt=0, lt=1, description="limiter: the rate kept after a throttle"),
    ] = 0.7
    limiter_scale: Annotated[
        float,
        Field(gt=0, le=1000, allow_inf_nan=False, description="limiter: CUBIC's C"),
    ] = 0.4
    limiter_min_rate: Annotated[
        float,
        Field(
            gt=0,
            le=1e6,
            allow_inf_nan=False,
            json_schema_extra={"unit": "1/s"},
            description="limiter: sends per second, floor",
        ),
    ] = 0.5
    scope: Annotated[
        SharedScope, Field(description="state per client process, or one for the whole fleet")
    ] = "client"


def adaptive_guards(operation: str, options: AdaptiveOptions) -> tuple[PlacedGuard, ...]:
    """The two parts, each when on: the send-rate limiter paces every send, first attempts
    included; the failure-rate tracker only observes outcomes (its factor stretches waits)."""
    placed: list[PlacedGuard] = []
    if options.limiter:
        name = f"limiter:{operation}"
        make_limiter = partial(
            CubicRateLimiter,
            name,
            options.limiter_beta,
            options.limiter_scale,
            options.limiter_min_rate,
        )
        placed.append(PlacedGuard("pace", GuardSpec(name, options.scope, make_limiter)))
    if options.enabled:
        label = f"adaptive:{operation}"
        make_rate = partial(FailureRate, label, options.window, options.max_factor)
        placed.append(PlacedGuard("observe", GuardSpec(label, options.scope, make_rate)))
    return tuple(placed)


def pacing_bound(max_delay: float | None, tables: Mapping[str, Knobs]) -> tuple[GuardSpec, ...]:
    """The :class:`PacingDeadline` of a policy whose limiter is on and whose calls have a time
    limit (the earlier of ``max_delay`` and ``budget.max_total_time``); none otherwise."""
    adaptive, budget = tables.get("adaptive"), tables.get("budget")
    if not (isinstance(adaptive, AdaptiveOptions) and adaptive.limiter):
        return ()
    total = getattr(budget, "max_total_time", None)
    limits = [limit for limit in (max_delay, total) if limit is not None]
    if not limits:
        return ()
    return (GuardSpec("pacing-deadline", "call", partial(PacingDeadline, min(limits))),)


class PacingDeadline:
    """One call's time limit, as a bound on how long a send-rate limiter may hold it back.

    Its ``pace_limit(now)`` is the time left before the limit, counted from the first time it
    is asked (the call's first send: pacing is asked before every send, first attempts
    included); :class:`~retrysim.retry.guards.GuardChain` cuts every pacer's hold to it.
    """

    __slots__ = ("limit", "start")

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.start: float | None = None

    def pace_limit(self, now: float) -> float:
        if self.start is None:
            self.start = now
        return max(0.0, self.start + self.limit - now)

    def before_attempt(self, now: float, attempt: int) -> BaseException | None:
        return None

    def after_outcome(self, now: float, error: BaseException | None) -> None:
        return None


class FailureRate:
    """Adaptive backoff: the recent failure share, as a factor on the profile's wait."""

    def __init__(self, name: str, window: float, max_factor: float) -> None:
        self.name = name
        self.window = window
        self.max_factor = max_factor
        self._outcomes: deque[tuple[float, bool]] = deque()
        self._failures = 0
        self._lock = threading.Lock()

    def before_attempt(self, now: float, attempt: int) -> BaseException | None:
        return None

    def after_outcome(self, now: float, error: BaseException | None) -> None:
        if isinstance(error, GuardRefusedError):
            return
        with self._lock:
            self._outcomes.append((now, error is not None))
            self._failures += error is not None

    def failure_rate(self, now: float) -> float:
        """Share of failed attempts among those that ended in the last ``window`` seconds."""
        with self._lock:
            outcomes, horizon = self._outcomes, now - self.window
            while outcomes and outcomes[0][0] <= horizon:
                self._failures -= outcomes.popleft()[1]
            return self._failures / len(outcomes) if outcomes else 0.0

    def wait_factor(self, now: float) -> float:
        return 1.0 + (self.max_factor - 1.0) * self.failure_rate(now)


class CubicRateLimiter:
    """AWS-style adaptive send-rate limiter (see the module docstring). Thread-safe."""

    def __init__(self, name: str, beta: float, scale: float, min_rate: float) -> None:
        self.name = name
        self.notify = Notifier(name)
        self.beta = beta
        self.scale = scale
        self.min_rate = min_rate
        self.enabled = False  # until the first throttle
        self.rate = math.inf  # allowed sends per second once enabled
        self.tokens = 0.0
        self.last_refill = 0.0
        self.measured = 0.0  # smoothed send rate
        self.w_max = 0.0  # the rate at the last throttle
        self.k = 0.0
        self.last_throttle = 0.0
        self.delays = 0
        self.delayed_seconds = 0.0
        self._bucket = -1.0  # start of the current measurement bucket (none yet)
        self._bucket_sends = 0
        self._lock = threading.Lock()

    def pace(self, now: float, most: float = math.inf) -> float:
        """Take a token for a send at ``now``; return how long the send must wait for it, at
        most ``most`` (the call's time left: its send then goes at its limit, ahead of its
        place in line, which stays taken, so the senders behind it wait as long as before)."""
        with self._lock:
            if not self.enabled:
                return 0.0
            self._refill(now)
            self.tokens -= 1.0  # a reservation: the next sender queues behind this one
            delay = 0.0 if self.tokens >= 0 else min(-self.tokens / self.rate, most)
            if delay > 0:
                self.delays += 1
                self.delayed_seconds += delay
        if delay > 0:
            self.notify(now, "limiter_delay", delay)
        return delay

    def before_attempt(self, now: float, attempt: int) -> BaseException | None:
        return None

    def after_outcome(self, now: float, error: BaseException | None) -> None:
        if isinstance(error, GuardRefusedError):
            return  # never sent: not part of the send rate, and nothing was learned
        throttled = isinstance(error, RateLimitedError)
        with self._lock:
            self._measure(now)
            if throttled:
                measured = self.send_rate(now)
                current = measured if not self.enabled else min(measured, self.rate)
                self.w_max = current
                self.k = (current * (1 - self.beta) / self.scale) ** (1 / 3)
                self.last_throttle = now
                calculated = current * self.beta
                if not self.enabled:
                    self.enabled = True
                    self.last_refill = now
                    self.tokens = 0.0
            elif self.enabled:
                calculated = self.scale * (now - self.last_throttle - self.k) ** 3 + self.w_max
            else:
                return
            self._refill(now)
            self.rate = max(self.min_rate, min(calculated, 2.0 * self.send_rate(now)))
            rate = self.rate
        if throttled:
            self.notify(now, "limiter_rate", rate)

    def _refill(self, now: float) -> None:
        if now > self.last_refill:
            capacity = max(self.rate, 1.0)
            self.tokens = min(capacity, self.tokens + (now - self.last_refill) * self.rate)
            self.last_refill = now

    def send_rate(self, now: float) -> float:
        """The measured send rate; before the first whole bucket, the sends seen so far over
        the time they took (so a throttle in the first half second does not read a rate of 0
        and throttle everyone to the floor)."""
        if self.measured > 0 or self._bucket < 0:
            return self.measured
        return self._bucket_sends / max(now - self._bucket, RATE_BUCKET)

    def _measure(self, now: float) -> None:
        bucket = math.floor(now / RATE_BUCKET) * RATE_BUCKET
        self._bucket_sends += 1
        if self._bucket < 0:
            self._bucket = bucket
        elif bucket > self._bucket:
            rate = self._bucket_sends / (bucket - self._bucket)
            self.measured = rate * SMOOTHING + self.measured * (1 - SMOOTHING)
            self._bucket_sends = 0
            self._bucket = bucket

    def stats(self) -> dict[str, float]:
        with self._lock:
            return {
                "delays": self.delays,
                "delayed_seconds": self.delayed_seconds,
                "rate": self.rate if self.enabled else math.inf,
            }
