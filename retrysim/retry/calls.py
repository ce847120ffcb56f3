"""One retried call: tenacity's loop, and what happens around each of its decisions.

The decorators and ``execute_with_retry`` (:mod:`retrysim.retry.decorators`) build a call's
policy and run the call here, in tenacity's own ``Retrying`` / ``AsyncRetrying``, which decides
everything (stop, wait, retry); nothing here re-implements a retry rule. This module listens at
tenacity's decision points: it asks and tells the attempt guards, counts, logs (stdlib
``logging``, logger ``retrysim.retry``), times the call, runs the hooks
(:mod:`retrysim.retry.hooks`), bounds each attempt of a coroutine by ``attempt_timeout``, hedges
each attempt of a coroutine when the policy says so (:mod:`retrysim.retry.hedge`: the attempt is
a group of sends, the first acceptable answer wins), and answers with the fallback when the call
gives up.

An attempt's outcome is an exception or a result, and a result that the retry strategy retries
(tenacity's ``retry_if_result``) is a failed attempt like an exception: the guards are told a
:class:`~retrysim.retry.exceptions.RetriedResult` (a breaker counts it as a failure of the
dependency; a result the strategy accepts is a success), the counters count it as a failed
attempt of type ``RetriedResult``, its retry is logged, hooked and counted like any other, and
a call that gives up on one raises tenacity's ``RetryError`` (its ``last_attempt`` holds the
result), as tenacity itself does with ``reraise=True``, unless a fallback answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import reprlib
import threading
from collections.abc import Awaitable, Callable, Hashable, Iterator
from typing import Any, TypeVar

import tenacity
from tenacity import RetryCallState

from retrysim.retry.counters import COUNTERS, AttemptCounter
from retrysim.retry.exceptions import RetriedResult
from retrysim.retry.guards import PROCESS_GUARDS, GuardChain, GuardStates
from retrysim.retry.hedge import Hedging, hedging_of, judge_by, race
from retrysim.retry.hooks import (
    BreakerHook,
    ExhaustedCall,
    ExhaustedHook,
    Fallback,
    RetryEvent,
    RetryHook,
    call_exhausted_hooks,
    call_retry_hooks,
    check_hook,
    deliver_pending,
    fallback_answer,
    is_async_callable,
    process_fallback,
    router_for,
)
from retrysim.retry.policy import RetryPolicy
from retrysim.retry.variables import option_variable

logger = logging.getLogger("retrysim.retry")
# A library stays quiet until the application configures logging (no last-resort stderr output).
logger.addHandler(logging.NullHandler())

SyncSleep = Callable[[float], None]
AsyncSleep = Callable[[float], Awaitable[None]]
KeyFunc = Callable[..., Hashable]
Clock = Callable[[], float]
_Loop = TypeVar("_Loop", bound=tenacity.BaseRetrying)


def tenacity_clock() -> float:
    """The clock tenacity itself reads (so a virtual clock installed for tenacity applies)."""
    return float(vars(tenacity)["time"].monotonic())


class CallContext:
    """How one decorated function runs its calls, beside the policy options.

    ``sleep`` replaces the sleep between attempts; ``idempotency_key(*args, **kwargs)`` names
    an operation so repeated executions count as duplicates; ``clock`` is what guards are
    given as "now" and what a call's duration is measured with; ``guard_states`` and
    ``guard_client`` say where declared guard state lives (the process, by default; the
    simulator gives each simulated client its own); ``on_retry(RetryEvent)``,
    ``on_exhausted(ExhaustedCall)`` and ``on_breaker_change(BreakerChange)`` are the
    function's hooks and ``fallback`` its answer when a call gives up
    (:mod:`retrysim.retry.hooks`). Given as ``fallback=None``, None is the answer: the option's
    presence, not its value, says a fallback was given.
    """

    KEYS = frozenset(
        {
            "sleep",
            "idempotency_key",
            "clock",
            "guard_states",
            "guard_client",
            "on_retry",
            "on_exhausted",
            "on_breaker_change",
            "fallback",
        }
    )

    def __init__(self, options: dict[str, Any]) -> None:
        self.sleep: SyncSleep | AsyncSleep | None = options.get("sleep")
        self.key_func: KeyFunc | None = options.get("idempotency_key")
        self.clock: Clock = options.get("clock") or tenacity_clock
        self.guard_states: GuardStates = options.get("guard_states") or PROCESS_GUARDS
        self.guard_client: Hashable = options.get("guard_client")
        self.on_retry: RetryHook | None = options.get("on_retry")
        self.on_exhausted: ExhaustedHook | None = options.get("on_exhausted")
        self.on_breaker_change: BreakerHook | None = options.get("on_breaker_change")
        for option in ("on_retry", "on_exhausted", "on_breaker_change"):
            if options.get(option) is not None:
                check_hook(option, options[option])  # a TypeError at decoration time
        self.has_fallback = "fallback" in options
        self.fallback: Fallback = options.get("fallback")

    def chain(self, policy: RetryPolicy, counter: AttemptCounter) -> GuardChain:
        """The call's guards: the policy's declared ones, then the counters."""
        chain = self.guard_states.chain(policy.guards, self.guard_client, (counter,))
        if self.on_breaker_change is not None:
            router_for(self.guard_states).subscribe(chain, self.on_breaker_change)
        return chain

    def fallback_for(self, kind: str) -> tuple[bool, Fallback]:
        """(whether a fallback answers a call of operation type ``kind`` that gave up, which):
        the function's own, else the process's for ``kind``, else the process's for all."""
        if self.has_fallback:
            return True, self.fallback
        return process_fallback(kind)


class _Shown:
    """A result as a log argument: its repr, bounded in length, made only if a line is written."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def __str__(self) -> str:
        return reprlib.repr(self.value)


def _outcome(state: RetryCallState) -> tuple[BaseException | None, Any]:
    """(the attempt's exception, or None; its result, when it returned one)."""
    outcome = state.outcome
    assert outcome is not None, "tenacity decides only after an outcome"
    if outcome.failed:
        return outcome.exception(), None
    return None, outcome.result()


class CallHooks:
    """Logging, counting, timing, the guards and the service's hooks for one call; tenacity
    calls these at its decision points."""

    def __init__(
        self, name: str, counter_key: str, policy: RetryPolicy, context: CallContext, key: Hashable
    ) -> None:
        self.name = name
        self.counter_key = counter_key
        self.policy = policy
        self.attempts = 0
        self.exhausted = False
        self.gave_up: BaseException | None = None  # what the call raised when it gave up
        self.exhausted_call: ExhaustedCall | None = None
        self.clock = context.clock
        self.on_retry_hook = context.on_retry
        self.on_exhausted_hook = context.on_exhausted
        self.context = context
        self.guards = context.chain(policy, AttemptCounter(counter_key, key))
        self.started: float | None = None  # the call's first clock reading
        self.latest = 0.0  # and its latest: the duration is between them

    def now(self) -> float:
        """The clock, read for the guards; the readings also time the call (no extra ones)."""
        now = self.clock()
        if self.started is None:
            self.started = now
        self.latest = now
        return now

    @property
    def elapsed(self) -> float:
        """Seconds from the first attempt (its pacing included) to the latest outcome."""
        return 0.0 if self.started is None else self.latest - self.started

    @classmethod
    def start(
        cls,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        policy: RetryPolicy,
        context: CallContext,
    ) -> CallHooks:
        """Hooks for a new call ``func(*args, **kwargs)`` (counted as started), keyed by the
        context's idempotency key of its arguments."""
        key = context.key_func(*args, **kwargs) if context.key_func else None
        name, counter_key = name_of(func)
        COUNTERS.call_started(counter_key, policy.operation)
        return cls(name, counter_key, policy, context, key)

    def tenacity_hooks(self, sleep: SyncSleep | AsyncSleep | None) -> dict[str, Any]:
        """Keyword arguments for tenacity's Retrying / AsyncRetrying."""
        hooks: dict[str, Any] = {
            "before_sleep": self.before_sleep,
            "retry_error_callback": self.on_exhausted,
        }
        if sleep is not None:
            hooks["sleep"] = sleep
        return hooks

    def loop(self, make: Callable[..., _Loop], sleep: SyncSleep | AsyncSleep | None) -> _Loop:
        """tenacity's loop for this call, made by ``make`` (the policy's ``retrying`` or
        ``async_retrying``): the call's guards and clock, these hooks at its decision points,
        and its retry strategy telling the guards how it judged a returned result."""
        retrying = make(self.guards, self.clock, **self.tenacity_hooks(sleep))
        retrying.retry = self.judged(retrying.retry)
        return retrying

    def judged(self, retry: Any) -> Any:
        """The call's retry strategy, telling the guards how it judged a returned result.

        A raised exception was told when it was caught; a result is told here, once the
        strategy said whether it retries it (async for tenacity's async strategies).
        """
        if is_async_callable(retry):

            async def judge_async(state: RetryCallState) -> bool:
                verdict = False
                try:
                    verdict = bool(await retry(state))
                finally:
                    self._result_judged(state, verdict)
                return verdict

            return judge_async

        def judge(state: RetryCallState) -> bool:
            verdict = False
            try:
                verdict = bool(retry(state))
            finally:
                self._result_judged(state, verdict)
            return verdict

        return judge

    def _result_judged(self, state: RetryCallState, retried: bool) -> None:
        outcome = state.outcome
        if outcome is not None and not outcome.failed:
            self.attempt_ended(RetriedResult(outcome.result()) if retried else None)

    def send_delay(self) -> float:
        """Seconds a send-rate limiter holds this attempt back (0 without one)."""
        return self.guards.pace(self.now()) if self.guards.pacers else 0.0

    def attempt_started(self) -> None:
        """Ask the guards; raise the refusal of one that refuses (the attempt does not run)."""
        self.attempts += 1
        try:
            refusal = self.guards.before_attempt(self.now(), self.attempts)
        finally:
            deliver_pending()  # breaker changes, now that the breaker's lock is released
        if refusal is not None:
            raise refusal

    def attempt_ended(self, error: BaseException | None) -> None:
        try:
            self.guards.after_outcome(self.now(), error)
        finally:
            deliver_pending()

    @contextlib.contextmanager
    def attempting(self) -> Iterator[None]:
        """One attempt, for both loops: the guards are asked first (a refusal is raised and the
        attempt does not run), and an exception the attempt raises is told to them. A returned
        result is told once the retry strategy judged it (:meth:`judged`)."""
        self.attempt_started()
        try:
            yield
        except Exception as exc:
            self.attempt_ended(exc)
            raise

    def hedge_started(self, send: int, hedging: Hedging) -> None:
        """Send ``send`` (2, 3, ...) of the current attempt's hedged group started."""
        COUNTERS.hedge_started(self.counter_key)
        logger.debug(
            "Hedging attempt %d of %s: send %d/%d started, no acceptable answer yet",
            self.attempts,
            self.name,
            send,
            hedging.max_attempts,
        )

    def before_sleep(self, state: RetryCallState) -> None:
        error, result = _outcome(state)
        wait = state.upcoming_sleep
        total = self.policy.attempts_for(error)  # the error's family may have its own limit
        event = RetryEvent(
            operation=self.counter_key,
            function=self.name,
            kind=self.policy.operation,
            attempt=state.attempt_number,
            max_attempts=total,
            wait=wait,
            elapsed=self.elapsed,
            error=error,
            result=result,
        )
        extra = {
            "retry_operation": event.operation,
            "retry_function": event.function,
            "retry_kind": event.kind,
            "retry_attempt": event.attempt,
            "retry_max_attempts": event.max_attempts,
            "retry_wait": event.wait,
            "retry_elapsed": event.elapsed,
            "retry_error": None if error is None else type(error).__name__,
            "retry_event": event,
        }
        # Exception text and results are logging arguments, never formatted into the template,
        # so braces or % signs in them can't break the hook.
        if error is not None:
            logger.warning(
                "Retry attempt %d/%d for %s failed: %s: %s",
                state.attempt_number,
                total,
                self.name,
                type(error).__name__,
                error,
                extra=extra,
            )
        else:
            logger.warning(
                "Retry attempt %d/%d for %s returned a result the retry strategy retries: %s",
                state.attempt_number,
                total,
                self.name,
                _Shown(result),
                extra=extra,
            )
        logger.info(
            "Waiting %.1fs before retry attempt %d/%d", wait, state.attempt_number + 1, total
        )
        COUNTERS.retry_scheduled(self.counter_key, wait)
        call_retry_hooks(event, self.on_retry_hook)  # never raises

    def on_exhausted(self, state: RetryCallState) -> Any:
        """tenacity's give-up callback: log, count, run the hooks, and raise the original
        exception (tenacity's ``RetryError`` for a retried result)."""
        self.exhausted = True
        error, result = _outcome(state)
        attempts, total = state.attempt_number, self.policy.attempts_for(error)
        if error is not None:
            logger.error(
                "Retry attempts exhausted for %s after %d/%d attempts: %s: %s",
                self.name,
                attempts,
                total,
                type(error).__name__,
                error,
            )
        else:
            logger.error(
                "Retry attempts exhausted for %s after %d/%d attempts: the last returned a "
                "result the retry strategy retries: %s",
                self.name,
                attempts,
                total,
                _Shown(result),
            )
        COUNTERS.exhausted(self.counter_key)
        info = self.exhausted_call = ExhaustedCall(
            operation=self.counter_key,
            function=self.name,
            kind=self.policy.operation,
            attempts=attempts,
            max_attempts=total,
            error=error,
            elapsed=self.elapsed,
            result=result,
        )
        call_exhausted_hooks(info, self.on_exhausted_hook)  # never raises
        assert state.outcome is not None
        if error is None:
            self.gave_up = state.retry_object.retry_error_cls(state.outcome)
            raise self.gave_up
        self.gave_up = error
        return state.outcome.result()  # raises the original exception

    def ended(self, error: BaseException) -> tuple[bool, Any]:
        """The call raised ``error``: it is finished (counted, logged); then (whether a fallback
        answers it, its answer). Only a call that gave up is answered; an answer that raises
        raises here, to the caller."""
        self.finished(error)
        if error is not self.gave_up or self.exhausted_call is None:
            return False, None
        found, fallback = self.context.fallback_for(self.policy.operation)
        if not found:
            return False, None
        logger.info("Returning the fallback for %s after it gave up", self.name)
        return True, fallback_answer(fallback, self.exhausted_call)

    def finished(self, error: BaseException | None) -> None:
        COUNTERS.call_finished(self.counter_key, self.elapsed)
        deliver_pending()
        total = self.policy.max_attempts
        if error is None:
            COUNTERS.succeeded(self.counter_key, self.attempts)
            if self.attempts > 1:
                logger.info(
                    "Retry succeeded on attempt %d/%d for %s", self.attempts, total, self.name
                )
        elif not self.exhausted and isinstance(error, Exception):
            COUNTERS.non_retryable(self.counter_key)
            logger.info(
                "Not retrying %s: %s: %s is not retryable",
                self.name,
                type(error).__name__,
                error,
            )


def name_of(func: Callable[..., Any]) -> tuple[str, str]:
    """(display name for log lines, unique counter key)."""
    target = inspect.unwrap(func) if not isinstance(func, functools.partial) else func.func
    name = getattr(target, "__name__", None) or type(target).__name__
    module = getattr(target, "__module__", None) or "?"
    qualname = getattr(target, "__qualname__", name)
    return name, f"{module}.{qualname}"


# --- attempt_timeout and hedging on work that cannot be stopped -----------------------------

_unbounded_lock = threading.Lock()
_unbounded_warned: set[tuple[str, str]] = set()


def _first_time(what: str, hooks: CallHooks) -> bool:
    """Whether ``what`` is said about this function for the first time (then it is noted)."""
    with _unbounded_lock:
        if (what, hooks.counter_key) in _unbounded_warned:
            return False
        _unbounded_warned.add((what, hooks.counter_key))
        return True


def _warn_unbounded(hooks: CallHooks) -> None:
    """Say once per function that its attempt_timeout does not bound its sync work."""
    if not _first_time("attempt_timeout", hooks):
        return
    policy = hooks.policy
    logger.warning(
        "attempt_timeout %gs (%s) does not bound %s: it does its work synchronously, and a "
        "sync call cannot be stopped without leaving its thread running; give its client "
        "library a timeout of its own",
        policy.options.attempt_timeout,
        option_variable("attempt_timeout", policy.operation),
        hooks.name,
    )


def _warn_unhedged(hooks: CallHooks) -> None:
    """Say once per function that its hedging does not apply to its sync work."""
    if not _first_time("hedge", hooks):
        return
    logger.warning(
        "hedge (%s) does not apply to %s: it does its work synchronously, and a sync call "
        "cannot be abandoned once started without leaving its thread running; its attempts "
        "are not hedged",
        option_variable("hedge.enabled", hooks.policy.operation),
        hooks.name,
    )


async def _bounded(result: Any, timeout: float | None, attempt: int) -> Any:
    """Await ``result`` (if awaitable) within ``timeout`` seconds: past it, the awaiting is
    cancelled and builtin ``TimeoutError`` raised, which the transient strategies retry."""
    if not inspect.isawaitable(result):
        return result
    if timeout is None:
        return await result
    limit = asyncio.timeout(timeout)
    try:
        async with limit:
            return await result
    except TimeoutError as error:
        if not limit.expired():
            raise  # the function's own TimeoutError
        raise TimeoutError(f"attempt {attempt} timed out after {timeout:g}s") from error


# --- the two loops ---------------------------------------------------------------------------


async def run_async(
    func: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    policy: RetryPolicy,
    context: CallContext,
) -> Any:
    """One call of ``func`` (async, or sync returning an awaitable) under ``policy``."""
    hooks = CallHooks.start(func, args, kwargs, policy, context)
    timeout = policy.options.attempt_timeout
    hedging = hedging_of(policy)

    async def send() -> Any:  # a hedge: the function called again, bounded alike
        return await _bounded(func(*args, **kwargs), timeout, hooks.attempts)

    async def attempt() -> Any:
        delay = hooks.send_delay()
        if delay > 0:
            await (context.sleep or asyncio.sleep)(delay)  # type: ignore[misc]
        with hooks.attempting():
            result: Any = func(*args, **kwargs)
            if not inspect.isawaitable(result):
                if timeout is not None:
                    _warn_unbounded(hooks)
                if hedging is not None:
                    _warn_unhedged(hooks)
            elif hedging is not None:
                return await race(
                    _bounded(result, timeout, hooks.attempts),
                    send,
                    hedging,
                    judge_by(policy.retry, retrying, hooks.attempts),
                    lambda n: hooks.hedge_started(n, hedging),
                )
            return await _bounded(result, timeout, hooks.attempts)

    retrying = hooks.loop(policy.async_retrying, context.sleep)
    try:
        result: Any = await retrying(attempt)
    except BaseException as error:
        answered, answer = hooks.ended(error)
        if not answered:
            raise
        return await answer if inspect.isawaitable(answer) else answer  # an async fallback's
    hooks.finished(None)
    return result


def run_sync(
    func: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    policy: RetryPolicy,
    context: CallContext,
) -> Any:
    """One call of sync ``func`` under ``policy``; ``attempt_timeout`` cannot bound it, nor
    can hedging apply to it."""
    hooks = CallHooks.start(func, args, kwargs, policy, context)
    if policy.options.attempt_timeout is not None:
        _warn_unbounded(hooks)  # from a setting: an explicit one was refused at decoration
    if hedging_of(policy) is not None:
        _warn_unhedged(hooks)  # likewise

    def attempt() -> Any:
        delay = hooks.send_delay()
        if delay > 0:
            (context.sleep or tenacity.nap.sleep)(delay)
        with hooks.attempting():
            return func(*args, **kwargs)

    retrying = hooks.loop(policy.retrying, context.sleep)
    try:
        result = retrying(attempt)
    except BaseException as error:
        answered, answer = hooks.ended(error)
        if not answered:
            raise
        return answer
    hooks.finished(None)
    return result
