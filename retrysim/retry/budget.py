"""Retry budgets: limits on how much retrying a call, a client or a fleet may do.

Per call, ``max_total_time`` stops retrying once the next wait would carry the call past that
many seconds (tenacity's own ``stop_before_delay``: it never sleeps past the budget). Shared, a
bucket caps retries as a share of the traffic, so a failing dependency sees at most a bounded
extra load however many calls fail at once; its ``kind`` is one of three:

- ``tokens`` (gRPC retry throttling): the bucket starts full at ``max_tokens``; each failed
  attempt takes one token, each success puts back ``token_ratio``; a retry is allowed only while
  more than half the tokens remain. Tokens are kept in thousandths, as gRPC does, so the
  arithmetic is exact; both knobs are therefore whole thousandths (``0.1``, not ``0.0001``).
- ``ratio`` (Finagle / Envoy): over the last ``window`` seconds, retries may number
  ``min_retries_per_second * window`` plus ``percent`` of the first attempts. The balance is
  computed exactly, with the knobs as the decimals they were written as (Finagle counts in
  integer thousandths for the same reason): with ``percent = 0.29`` a hundred first attempts
  allow 29 retries, not 28 and a bit. ``initial_allowance`` covers the cold start, when the
  window holds no first attempts yet: that many retries' worth is deposited at the budget's
  first attempt (or first question, whichever comes first) and, like every deposit, forgotten
  ``window`` seconds later; the retries it paid for count against the balance for ``window``
  seconds each, as every retry does.
- ``quota`` (the AWS SDKs' standard retry mode, as botocore's ``RetryQuotaChecker`` keeps it):
  the bucket starts full at ``quota_capacity`` (500). A retry takes ``retry_cost`` (5), or
  ``timeout_retry_cost`` (10) when the attempt it follows failed with a timeout (the ``timeout``
  family of :func:`retrysim.retry.classify.error_family`: ``TimeoutError``, redis-py's, httpx's,
  botocore's read and connect timeouts, ...); a retry that costs more than is left is refused.
  A call that succeeds puts back what its last retry took, or ``success_refund`` (1) if it
  succeeded on its first attempt; never more than the bucket is short of full. A failure costs
  nothing by itself, and a call that ends in failure puts nothing back. Whole tokens, so the
  arithmetic is exact. What each call's last retry took is the call's own (the guard's per-call
  view, ``for_call``), so concurrent calls refund exactly what each took.

An attempt a guard refused (an open breaker's) never reached the dependency: it costs the
token bucket nothing, and earns a quota no refund.

An empty budget refuses the retry before its wait is slept: the call ends at once with the error
of its last attempt, as if it had run out of attempts.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator
from tenacity import stop_before_delay
from tenacity.stop import stop_base

from retrysim.retry.classify import error_family
from retrysim.retry.exceptions import GuardRefusedError
from retrysim.retry.guards import AttemptGuard, GuardSpec, Notifier, SharedScope
from retrysim.retry.knobs import Knobs, PlacedGuard, as_written

BudgetKind = Literal["tokens", "ratio", "quota"]
MILLI = 1000  # tokens are counted in thousandths (gRPC's tokenRatio has three decimals)


def _thousandths(value: float) -> float:
    """A token count the bucket can hold exactly: a whole number of thousandths."""
    if as_written(value) * MILLI % 1:
        raise ValueError(
            f"must be a whole number of thousandths of a token (0.001 steps), not {value}"
        )
    return value


class BudgetOptions(Knobs):
    """``[policy.budget]`` / ``RETRY__<OPERATION>_BUDGET_*``: off unless set."""

    enabled: Annotated[bool, Field(description="use a shared retry budget (kind)")] = False
    kind: Annotated[
        BudgetKind,
        Field(
            description="tokens (gRPC throttling), ratio (Finagle, Envoy) or quota (AWS SDKs' "
            "standard mode)"
        ),
    ] = "tokens"
    max_tokens: Annotated[
        float,
        Field(gt=0, le=1000, allow_inf_nan=False, description="tokens: the bucket's size"),
        AfterValidator(_thousandths),
    ] = 10.0
    token_ratio: Annotated[
        float,
        Field(gt=0, le=1000, allow_inf_nan=False, description="tokens: put back per success"),
        AfterValidator(_thousandths),
    ] = 0.1
    percent: Annotated[
        float,
        Field(ge=0, le=100, allow_inf_nan=False, description="ratio: retries per first attempt"),
    ] = 0.2
    min_retries_per_second: Annotated[
        float,
        Field(
            ge=0,
            le=1e6,
            allow_inf_nan=False,
            json_schema_extra={"unit": "1/s"},
            description="ratio: retries allowed anyway",
        ),
    ] = 10.0
    window: Annotated[
        float,
        Field(
            gt=0,
            le=1e6,
            allow_inf_nan=False,
            json_schema_extra={"unit": "s"},
            description="ratio: seconds remembered",
        ),
    ] = 10.0
    initial_allowance: Annotated[
        int,
        Field(
            ge=0,
            le=1_000_000,
            description="ratio: retries allowed on top for the first window seconds (from the "
            "budget's first attempt), before the ratio has history",
        ),
    ] = 0
    quota_capacity: Annotated[
        int,
        Field(gt=0, le=1_000_000, description="quota: the bucket's size, full at the start"),
    ] = 500
    retry_cost: Annotated[
        int,
        Field(
            ge=1,
            le=1_000_000,
            description="quota: taken by a retry; one costing more than is left is refused",
        ),
    ] = 5
    timeout_retry_cost: Annotated[
        int,
        Field(
            ge=1,
            le=1_000_000,
            description="quota: taken instead by a retry after a timeout (TimeoutError, a "
            "client library's read or connect timeout)",
        ),
    ] = 10
    success_refund: Annotated[
        int,
        Field(
            ge=0,
            le=1_000_000,
            description="quota: put back by a first-attempt success (a success after retries "
            "puts back what its last retry took)",
        ),
    ] = 1
    max_total_time: Annotated[
        float | None,
        Field(
            gt=0,
            le=1e9,
            allow_inf_nan=False,
            json_schema_extra={"unit": "s"},
            description="per call: never wait past this many seconds since the first attempt",
        ),
    ] = None
    scope: Annotated[
        SharedScope, Field(description="state per client process, or one for the whole fleet")
    ] = "client"

    @model_validator(mode="after")
    def _a_retry_fits_the_quota(self) -> BudgetOptions:
        if self.enabled and self.kind == "quota":
            for knob in ("retry_cost", "timeout_retry_cost"):
                cost = getattr(self, knob)
                if cost > self.quota_capacity:
                    raise ValueError(
                        f"a quota budget's {knob} ({cost}) is more than its quota_capacity "
                        f"({self.quota_capacity}): such a retry would never be allowed"
                    )
        return self


def budget_guards(operation: str, options: BudgetOptions) -> tuple[PlacedGuard, ...]:
    """The shared budget's guard when enabled (its ``kind``'s bucket); it rations retries."""
    if not options.enabled:
        return ()
    label = f"budget:{operation}"
    make: Callable[[], AttemptGuard]
    if options.kind == "tokens":
        make = partial(TokenBudget, label, options.max_tokens, options.token_ratio)
    elif options.kind == "quota":
        make = partial(
            RetryQuota,
            label,
            options.quota_capacity,
            options.retry_cost,
            options.timeout_retry_cost,
            options.success_refund,
        )
    else:
        make = partial(
            RatioBudget,
            label,
            options.percent,
            options.min_retries_per_second,
            options.window,
            options.initial_allowance,
        )
    return (PlacedGuard("ration", GuardSpec(label, options.scope, make)),)


def budget_stop(options: BudgetOptions) -> stop_base | None:
    """The per-call budget, ``max_total_time``, as tenacity's own ``stop_before_delay`` (it
    never sleeps past the budget); composed with the policy's stop."""
    if options.max_total_time is None:
        return None
    return stop_before_delay(options.max_total_time)


class TokenBudget:
    """gRPC-style retry throttling: a bucket of tokens refilled by successes."""

    def __init__(self, name: str, max_tokens: float, token_ratio: float) -> None:
        self.name = name
        self.notify = Notifier(name)
        self.max_milli = round(max_tokens * MILLI)
        self.ratio_milli = round(token_ratio * MILLI)
        self.milli = self.max_milli
        self.refused = 0
        self._lock = threading.Lock()

    @property
    def tokens(self) -> float:
        return self.milli / MILLI

    def before_attempt(self, now: float, attempt: int) -> BaseException | None:
        return None

    def after_outcome(self, now: float, error: BaseException | None) -> None:
        if isinstance(error, GuardRefusedError):
            return  # nothing was sent, so nothing was learned about the dependency
        with self._lock:
            if error is None:
                self.milli = min(self.max_milli, self.milli + self.ratio_milli)
            else:
                self.milli = max(0, self.milli - MILLI)

    def allow_retry(self, now: float) -> bool:
        with self._lock:
            if self.milli * 2 > self.max_milli:
                return True
            self.refused += 1
        self.notify(now, "budget_refused", self.tokens)
        return False

    def stats(self) -> dict[str, float]:
        with self._lock:
            return {"refused": self.refused, "tokens": self.milli / MILLI}


class RatioBudget:
    """Finagle-style budget: retries in a sliding window, a share of first attempts plus a floor."""

    def __init__(
        self,
        name: str,
        percent: float,
        min_retries_per_second: float,
        window: float,
        initial_allowance: int = 0,
    ) -> None:
        self.name = name
        self.notify = Notifier(name)
        self.percent = percent
        self.window = window
        self.reserve = min_retries_per_second * window
        self.initial_allowance = initial_allowance
        # The balance in units of 1/scale of a retry, all integers: exact, and cheap to compare.
        share = as_written(percent)
        reserve = as_written(min_retries_per_second) * as_written(window)
        self._scale = scale = share.denominator * reserve.denominator
        self._share = int(share * scale)
        self._reserve = int(reserve * scale)
        self._allowance = initial_allowance * scale
        self._born: float | None = None  # when the allowance was deposited (its first use)
        self.refused = 0
        self._firsts: deque[float] = deque()
        self._retries: deque[float] = deque()
        self._lock = threading.Lock()

    def before_attempt(self, now: float, attempt: int) -> BaseException | None:
        if attempt == 1:
            with self._lock:
                if self._born is None:
                    self._born = now
                self._firsts.append(now)
        return None

    def after_outcome(self, now: float, error: BaseException | None) -> None:
        return None

    def balance(self, now: float) -> float:
        """Retries the window still allows at ``now`` (may be fractional or negative)."""
        with self._lock:
            return self._balance(now)

    def _balance(self, now: float) -> float:
        return self._scaled_balance(now) / self._scale

    def _scaled_balance(self, now: float) -> int:
        """The balance times ``_scale``, after forgetting what is ``window`` seconds old."""
        horizon = now - self.window
        for times in (self._firsts, self._retries):
            while times and times[0] <= horizon:
                times.popleft()
        balance = self._reserve + self._share * len(self._firsts) - self._scale * len(self._retries)
        if self._allowance:
            if self._born is None:
                self._born = now
            if self._born > horizon:  # the allowance is a deposit at _born, forgotten like one
                balance += self._allowance
        return balance

    def allow_retry(self, now: float) -> bool:
        with self._lock:
            scaled = self._scaled_balance(now)
            if scaled >= self._scale:
                self._retries.append(now)
                return True
            self.refused += 1
        self.notify(now, "budget_refused", scaled / self._scale)
        return False

    def stats(self) -> dict[str, float]:
        with self._lock:
            return {"refused": self.refused}


class RetryQuota:
    """The AWS SDKs' standard-mode retry quota (see the module docstring): one shared bucket.

    A call asks through its own view (:meth:`for_call`), which remembers what the call's last
    retry took; used directly, without a :class:`~retrysim.retry.guards.GuardChain`, the quota
    treats everything it hears as one call's.
    """

    def __init__(
        self,
        name: str,
        capacity: int = 500,
        retry_cost: int = 5,
        timeout_retry_cost: int = 10,
        success_refund: int = 1,
    ) -> None:
        self.name = name
        self.notify = Notifier(name)
        self.capacity = capacity
        self.retry_cost = retry_cost
        self.timeout_retry_cost = timeout_retry_cost
        self.success_refund = success_refund
        self.available = capacity
        self.refused = 0
        self._lock = threading.Lock()
        self._own = QuotaCall(self)

    def for_call(self) -> QuotaCall:
        """A call's view: what its last retry took, so its success refunds exactly that."""
        return QuotaCall(self)

    def before_attempt(self, now: float, attempt: int) -> BaseException | None:
        return self._own.before_attempt(now, attempt)

    def after_outcome(self, now: float, error: BaseException | None) -> None:
        self._own.after_outcome(now, error)

    def allow_retry(self, now: float) -> bool:
        return self._own.allow_retry(now)

    def take(self, now: float, cost: int) -> bool:
        """Take ``cost`` tokens for a retry, or refuse it (and say so) if fewer are left."""
        with self._lock:
            if cost <= self.available:
                self.available -= cost
                return True
            self.refused += 1
            left = self.available
        self.notify(now, "budget_refused", float(left))
        return False

    def refund(self, amount: int) -> None:
        """Put ``amount`` back, never above the capacity."""
        with self._lock:
            self.available = min(self.capacity, self.available + amount)

    def stats(self) -> dict[str, float]:
        with self._lock:
            return {"refused": self.refused, "tokens": self.available}


class QuotaCall:
    """One call's view of a :class:`RetryQuota`: the error its last attempt failed with and
    what its last retry took (botocore keeps both in the request's context)."""

    __slots__ = ("error", "quota", "took")

    def __init__(self, quota: RetryQuota) -> None:
        self.quota = quota
        self.took: int | None = None  # what this call's last retry took; None: no retry yet
        self.error: BaseException | None = None

    def before_attempt(self, now: float, attempt: int) -> BaseException | None:
        if attempt == 1:  # a new call (a view used directly hears one call after another)
            self.took = None
        return None

    def after_outcome(self, now: float, error: BaseException | None) -> None:
        if isinstance(error, GuardRefusedError):
            return  # never sent: nothing to refund, and not a timeout of the dependency
        if error is None:
            quota = self.quota
            quota.refund(quota.success_refund if self.took is None else self.took)
        self.error = error

    def allow_retry(self, now: float) -> bool:
        quota = self.quota
        timed_out = self.error is not None and error_family(self.error) == "timeout"
        cost = quota.timeout_retry_cost if timed_out else quota.retry_cost
        if quota.take(now, cost):
            self.took = cost
            return True
        return False
