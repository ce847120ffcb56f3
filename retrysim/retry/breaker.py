"""The circuit breaker: stop calling a dependency that keeps failing, and probe it later.

Closed, it lets every attempt through and watches outcomes; it opens on ``failure_threshold``
consecutive failures, or when the share of failures over a sliding window (the last ``window``
outcomes, or the last ``window_seconds``) reaches ``failure_rate`` once at least
``minimum_calls`` outcomes are in it. Open, it refuses every attempt with
:class:`~retrysim.retry.exceptions.CircuitOpenError` (which is never retried) for
``recovery_timeout`` seconds. Then it is half-open: ``half_open_probes`` attempts go through;
a failing probe opens it again, and that many successful ones close it.

The semantics follow the trusted implementations (resilience4j, Polly): outcomes that arrive
while open (attempts sent before it opened) are ignored; an attempt refused by the breaker, or
by another guard after the breaker let it through, is not a failure of the dependency.

The edges, exactly (``tests/test_breaker.py`` checks each): the ``failure_threshold``-th
consecutive failure opens it, one fewer does not; the rate counts once the window holds
``minimum_calls`` outcomes (a count window of fewer outcomes needs only that many, as in
resilience4j: a window of 5 and the default 10 would otherwise never open on its rate) and
opens at ``failures / outcomes >= failure_rate``, compared as
exact decimals (7 failures in 100 reach a 0.07 rate); a time window forgets an outcome exactly
``window_seconds`` old; a probe may go at exactly ``recovery_timeout`` after opening, and a
failed probe starts a new open period at its failure. Half-open, only probes are heard: an
outcome that arrives while no probe is out belongs to an attempt sent before the breaker
opened, and is ignored like those that arrive while open.

``mode`` says what it gates. ``calls`` (the default, all of the above) gates every attempt.
``retries`` gates only retries, as a retry circuit breaker does (Marc Brooker's "only retry
while the dependency is healthy", and client libraries that break the retry loop, not the
call): a call's first attempt always goes through, whatever the state, and never takes a
probe slot. Everything else is the same machine, with first attempts as traffic it hears:

- closed, every outcome counts, first attempts' and retries' alike;
- open, retries are refused with ``CircuitOpenError`` for ``recovery_timeout`` seconds;
  outcomes are ignored (as in ``calls`` mode);
- at the first attempt of any kind ``recovery_timeout`` or more after opening it is
  half-open: ``half_open_probes`` retries go through as probes, first attempts go through
  anyway, and it hears exactly the attempts sent since it half-opened (first attempts and
  probes; each call's view, ``for_call``, knows which is which): one failure opens it again,
  ``half_open_probes`` successes close it. Outcomes of attempts sent before it half-opened are
  ignored.
"""

from __future__ import annotations

import threading
from collections import deque
from functools import partial
from typing import Annotated, Literal

from pydantic import Field, model_validator

from retrysim.retry.exceptions import CircuitOpenError, GuardRefusedError
from retrysim.retry.guards import GuardSpec, Notifier, SharedScope
from retrysim.retry.knobs import Knobs, PlacedGuard, as_written

BreakerState = Literal["closed", "open", "half_open"]
BreakerMode = Literal["calls", "retries"]


class BreakerOptions(Knobs):
    """``[policy.breaker]`` / ``RETRY__<OPERATION>_BREAKER_*``: off unless ``enabled``."""

    enabled: Annotated[bool, Field(description="use a circuit breaker")] = False
    mode: Annotated[
        BreakerMode,
        Field(
            description="what it gates: calls (every attempt) or retries (first attempts always "
            "go through)"
        ),
    ] = "calls"
    failure_threshold: Annotated[
        int, Field(ge=0, le=1_000_000, description="consecutive failures that open it (0: off)")
    ] = 5
    failure_rate: Annotated[
        float,
        Field(ge=0, le=1, description="share of failures in the window that opens it (0: off)"),
    ] = 0.0
    window: Annotated[
        int, Field(ge=1, le=1_000_000, description="outcomes in the count-based window")
    ] = 100
    window_seconds: Annotated[
        float,
        Field(
            ge=0,
            le=1e9,
            allow_inf_nan=False,
            json_schema_extra={"unit": "s"},
            description="a time-based window instead (0: off)",
        ),
    ] = 0.0
    minimum_calls: Annotated[
        int, Field(ge=1, le=1_000_000, description="outcomes in the window before a rate counts")
    ] = 10
    recovery_timeout: Annotated[
        float,
        Field(
            ge=0,
            le=1e9,
            allow_inf_nan=False,
            json_schema_extra={"unit": "s"},
            description="seconds open before probing",
        ),
    ] = 60.0
    half_open_probes: Annotated[
        int, Field(ge=1, le=1_000_000, description="probe attempts let through half-open")
    ] = 1
    name: Annotated[
        str,
        Field(
            max_length=200,
            description="the dependency; calls naming the same one share a breaker (default: "
            "the operation)",
        ),
    ] = ""
    scope: Annotated[
        SharedScope, Field(description="state per client process, or one for the whole fleet")
    ] = "client"

    @model_validator(mode="after")
    def _opens_somehow(self) -> BreakerOptions:
        if self.enabled and self.failure_threshold == 0 and self.failure_rate == 0:
            raise ValueError(
                "an enabled breaker needs failure_threshold >= 1 or failure_rate > 0 to ever open"
            )
        return self


def breaker_guards(operation: str, options: BreakerOptions) -> tuple[PlacedGuard, ...]:
    """The breaker's guard when enabled: one per dependency (``name``, else the operation),
    shared by every call that names it; it admits a send or refuses it."""
    if not options.enabled:
        return ()
    name = options.name or operation
    kind = RetryBreaker if options.mode == "retries" else CircuitBreaker
    spec = GuardSpec(f"breaker:{name}", options.scope, partial(kind, name, options))
    return (PlacedGuard("admit", spec),)


class CircuitBreaker:
    """One breaker's state; shared by every call that names its dependency. Thread-safe."""

    def __init__(self, name: str, options: BreakerOptions) -> None:
        self.name = name
        self.options = options
        self.notify = Notifier(name)
        self.state: BreakerState = "closed"
        self.opened_at = 0.0
        self.consecutive = 0
        self.opened = 0  # times it opened
        self.refused = 0  # attempts it refused
        self._probes_out = 0
        self._probes_ok = 0
        self._window: deque[tuple[float, bool]] = deque()
        self._window_failures = 0
        rate = as_written(options.failure_rate)
        self._rate = (rate.numerator, rate.denominator)
        self._minimum = options.minimum_calls  # outcomes in the window before a rate counts
        if options.window_seconds <= 0:  # a count window can hold no more than its size
            self._minimum = min(self._minimum, options.window)
        self._lock = threading.Lock()

    def before_attempt(self, now: float, attempt: int) -> BaseException | None:
        with self._lock:
            if self.state == "open":
                remaining = self.opened_at + self.options.recovery_timeout - now
                if remaining > 0:
                    self.refused += 1
                    return CircuitOpenError(self.name, remaining)
                self._move(now, "half_open")
            if self.state == "half_open":
                if self._probes_out >= self.options.half_open_probes:
                    self.refused += 1
                    return CircuitOpenError(self.name, 0.0)
                self._probes_out += 1
            return None

    def after_outcome(self, now: float, error: BaseException | None) -> None:
        with self._lock:
            if isinstance(error, GuardRefusedError):  # the attempt never ran: give its slot back
                if self.state == "half_open" and self._probes_out > 0:
                    self._probes_out -= 1
                return
            if self.state == "half_open" and self._probes_ok >= self._probes_out:
                return  # no probe is out: an attempt from before it opened
            if self.state != "open":
                self._count(now, error is not None)

    def _count(self, now: float, failed: bool) -> None:
        """An outcome that counts, closed or half-open (the caller has decided it does): into
        the window when closed, maybe opening it; a probe's when half-open, where a failure
        opens it again and the last of ``half_open_probes`` successes closes it."""
        if self.state == "closed":
            self._record(now, failed)
            if self._should_open():
                self._open(now)
        elif failed:
            self._open(now)
        else:
            self._probes_ok += 1
            if self._probes_ok >= self.options.half_open_probes:
                self._move(now, "closed")

    def _record(self, now: float, failed: bool) -> None:
        self.consecutive = self.consecutive + 1 if failed else 0
        if self.options.failure_rate <= 0:
            return
        window = self._window
        window.append((now, failed))
        self._window_failures += failed
        if self.options.window_seconds > 0:
            horizon = now - self.options.window_seconds
            while window and window[0][0] <= horizon:
                self._window_failures -= window.popleft()[1]
        elif len(window) > self.options.window:
            self._window_failures -= window.popleft()[1]

    def _should_open(self) -> bool:
        threshold = self.options.failure_threshold
        if threshold and self.consecutive >= threshold:
            return True
        (numerator, denominator), seen = self._rate, len(self._window)
        return (
            numerator > 0
            and seen >= self._minimum
            and self._window_failures * denominator >= numerator * seen
        )

    def _open(self, now: float) -> None:
        self.opened_at = now
        self.opened += 1
        self._move(now, "open")

    def _move(self, now: float, state: BreakerState) -> None:
        self.state = state
        self.consecutive = 0
        self._probes_out = self._probes_ok = 0
        self._window.clear()
        self._window_failures = 0
        self.notify(now, "breaker", state)

    def stats(self) -> dict[str, float]:
        """Counts for reports: times opened, attempts refused."""
        with self._lock:
            return {"opened": self.opened, "refused": self.refused}


#: What a retries-mode breaker gave an attempt it let through: the half-open period it was sent
#: in (None: sent closed or open) and whether it holds a probe slot.
Ticket = tuple[int | None, bool]


class RetryBreaker(CircuitBreaker):
    """A breaker in ``retries`` mode (see the module docstring): first attempts always pass.

    Each call asks through its own view (:meth:`for_call`), which remembers what the breaker
    gave its attempt in flight; used directly, without a
    :class:`~retrysim.retry.guards.GuardChain`, the breaker treats everything it hears as one
    call's.
    """

    def __init__(self, name: str, options: BreakerOptions) -> None:
        super().__init__(name, options)
        self._period = 0  # half-open periods so far: tells this period's attempts from older ones
        self._own = RetryBreakerCall(self)

    def for_call(self) -> RetryBreakerCall:
        """A call's view: what the breaker gave its attempt in flight."""
        return RetryBreakerCall(self)

    def before_attempt(self, now: float, attempt: int) -> BaseException | None:
        return self._own.before_attempt(now, attempt)

    def after_outcome(self, now: float, error: BaseException | None) -> None:
        self._own.after_outcome(now, error)

    def admit(self, now: float, attempt: int) -> tuple[BaseException | None, Ticket]:
        """Let attempt number ``attempt`` through, with its ticket, or refuse it (a retry)."""
        first = attempt == 1
        with self._lock:
            if self.state == "open":
                remaining = self.opened_at + self.options.recovery_timeout - now
                if remaining > 0:
                    if first:
                        return None, (None, False)
                    self.refused += 1
                    return CircuitOpenError(self.name, remaining), (None, False)
                self._move(now, "half_open")
            if self.state == "half_open":
                if first:
                    return None, (self._period, False)
                if self._probes_out >= self.options.half_open_probes:
                    self.refused += 1
                    return CircuitOpenError(self.name, 0.0), (None, False)
                self._probes_out += 1
                return None, (self._period, True)
            return None, (None, False)

    def hear(self, now: float, error: BaseException | None, ticket: Ticket) -> None:
        """The outcome of an attempt let through with ``ticket``."""
        period, probe = ticket
        with self._lock:
            current = self.state == "half_open" and period == self._period
            if isinstance(error, GuardRefusedError):  # never ran: give its probe slot back
                if current and probe:
                    self._probes_out -= 1
                return
            if self.state == "closed" or current:
                self._count(now, error is not None)

    def _move(self, now: float, state: BreakerState) -> None:
        if state == "half_open":
            self._period += 1
        super()._move(now, state)


class RetryBreakerCall:
    """One call's view of a :class:`RetryBreaker`: the ticket of its attempt in flight."""

    __slots__ = ("breaker", "ticket")

    def __init__(self, breaker: RetryBreaker) -> None:
        self.breaker = breaker
        self.ticket: Ticket = (None, False)

    def before_attempt(self, now: float, attempt: int) -> BaseException | None:
        refusal, self.ticket = self.breaker.admit(now, attempt)
        return refusal

    def after_outcome(self, now: float, error: BaseException | None) -> None:
        self.breaker.hear(now, error, self.ticket)
