"""The four operation decorators and ``execute_with_retry``.

Each call reads the current settings and builds its policy with :func:`build_policy`, then runs
tenacity's own ``Retrying`` / ``AsyncRetrying`` loop; nothing here re-implements a retry rule.
tenacity's hooks log (stdlib ``logging``, logger ``retrysim.retry``), count, time the whole
call and hand give-ups and breaker changes to the service's hooks (:mod:`retrysim.retry.hooks`).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, ParamSpec, TypeVar, overload

import tenacity
from tenacity import RetryCallState

from retrysim.retry.counters import COUNTERS, AttemptCounter
from retrysim.retry.guards import PROCESS_GUARDS, GuardChain, GuardStates
from retrysim.retry.hooks import (
    BreakerHook,
    ExhaustedCall,
    ExhaustedHook,
    call_exhausted_hooks,
    check_hook,
    deliver_pending,
    router_for,
)
from retrysim.retry.options import MECHANISM_NAMES, OPTION_NAMES, parse_options
from retrysim.retry.policy import RetryPolicy, build_policy
from retrysim.retry.settings import Operation

logger = logging.getLogger("retrysim.retry")
# A library stays quiet until the application configures logging (no last-resort stderr output).
logger.addHandler(logging.NullHandler())

P = ParamSpec("P")
R = TypeVar("R")

SyncSleep = Callable[[float], None]
AsyncSleep = Callable[[float], Awaitable[None]]
KeyFunc = Callable[..., Hashable]
Clock = Callable[[], float]


def tenacity_clock() -> float:
    """The clock tenacity itself reads (so a virtual clock installed for tenacity applies)."""
    return float(vars(tenacity)["time"].monotonic())


class CallContext:
    """How one decorated function runs its calls, beside the policy options.

    ``sleep`` replaces the sleep between attempts; ``idempotency_key(*args, **kwargs)`` names
    an operation so repeated executions count as duplicates; ``clock`` is what guards are
    given as "now" and what a call's duration is measured with; ``guard_states`` and
    ``guard_client`` say where declared guard state lives (the process, by default; the
    simulator gives each simulated client its own); ``on_exhausted(ExhaustedCall)`` and
    ``on_breaker_change(BreakerChange)`` are the function's hooks (:mod:`retrysim.retry.hooks`).
    """

    KEYS = frozenset(
        {
            "sleep",
            "idempotency_key",
            "clock",
            "guard_states",
            "guard_client",
            "on_exhausted",
            "on_breaker_change",
        }
    )

    def __init__(self, options: dict[str, Any]) -> None:
        self.sleep: SyncSleep | AsyncSleep | None = options.get("sleep")
        self.key_func: KeyFunc | None = options.get("idempotency_key")
        self.clock: Clock = options.get("clock") or tenacity_clock
        self.guard_states: GuardStates = options.get("guard_states") or PROCESS_GUARDS
        self.guard_client: Hashable = options.get("guard_client")
        self.on_exhausted: ExhaustedHook | None = options.get("on_exhausted")
        self.on_breaker_change: BreakerHook | None = options.get("on_breaker_change")
        for option in ("on_exhausted", "on_breaker_change"):
            if options.get(option) is not None:
                check_hook(option, options[option])  # a TypeError at decoration time

    def chain(self, policy: RetryPolicy, counter: AttemptCounter) -> GuardChain:
        """The call's guards: the policy's declared ones, then the counters."""
        chain = self.guard_states.chain(policy.guards, self.guard_client, (counter,))
        if self.on_breaker_change is not None:
            router_for(self.guard_states).subscribe(chain, self.on_breaker_change)
        return chain


class _CallHooks:
    """Logging, counting, timing and the service's hooks for one call; tenacity calls these at
    its decision points."""

    def __init__(
        self, name: str, counter_key: str, policy: RetryPolicy, context: CallContext, key: Hashable
    ) -> None:
        self.name = name
        self.counter_key = counter_key
        self.policy = policy
        self.attempts = 0
        self.exhausted = False
        self.clock = context.clock
        self.on_exhausted_hook = context.on_exhausted
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
        cls, func: Callable[..., Any], policy: RetryPolicy, context: CallContext, key: Hashable
    ) -> _CallHooks:
        """Hooks for a new call of ``func`` (counted as started)."""
        name, counter_key = _name_of(func)
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

    def attempt_ended(self, error: Exception | None) -> None:
        try:
            self.guards.after_outcome(self.now(), error)
        finally:
            deliver_pending()

    def before_sleep(self, state: RetryCallState) -> None:
        exc = _exception(state)
        wait = state.upcoming_sleep
        total = self.policy.max_attempts
        # Exception text is passed as a logging argument, never formatted into the template,
        # so braces or % signs in a message can't break the hook.
        logger.warning(
            "Retry attempt %d/%d for %s failed: %s: %s",
            state.attempt_number,
            total,
            self.name,
            type(exc).__name__,
            exc,
        )
        logger.info(
            "Waiting %.1fs before retry attempt %d/%d", wait, state.attempt_number + 1, total
        )
        COUNTERS.retry_scheduled(self.counter_key, wait)

    def on_exhausted(self, state: RetryCallState) -> Any:
        """tenacity's give-up callback: log, count, and re-raise the original exception."""
        self.exhausted = True
        exc = _exception(state)
        logger.error(
            "Retry attempts exhausted for %s after %d/%d attempts: %s: %s",
            self.name,
            state.attempt_number,
            self.policy.max_attempts,
            type(exc).__name__,
            exc,
        )
        COUNTERS.exhausted(self.counter_key)
        info = ExhaustedCall(
            operation=self.counter_key,
            function=self.name,
            kind=self.policy.operation,
            attempts=state.attempt_number,
            max_attempts=self.policy.max_attempts,
            error=exc,
            elapsed=self.elapsed,
        )
        call_exhausted_hooks(info, self.on_exhausted_hook)  # never raises
        assert state.outcome is not None  # tenacity only gives up after an outcome
        return state.outcome.result()  # raises the original exception

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


def _exception(state: RetryCallState) -> BaseException:
    assert state.outcome is not None and state.outcome.failed
    exc = state.outcome.exception()
    assert exc is not None
    return exc


def _name_of(func: Callable[..., Any]) -> tuple[str, str]:
    """(display name for log lines, unique counter key)."""
    target = inspect.unwrap(func) if not isinstance(func, functools.partial) else func.func
    name = getattr(target, "__name__", None) or type(target).__name__
    module = getattr(target, "__module__", None) or "?"
    qualname = getattr(target, "__qualname__", name)
    return name, f"{module}.{qualname}"


async def _run_async(
    func: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    policy: RetryPolicy,
    context: CallContext,
) -> Any:
    key = context.key_func(*args, **kwargs) if context.key_func else None
    hooks = _CallHooks.start(func, policy, context, key)

    async def attempt() -> Any:
        delay = hooks.send_delay()
        if delay > 0:
            await (context.sleep or asyncio.sleep)(delay)  # type: ignore[misc]
        hooks.attempt_started()
        try:
            result: Any = func(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            hooks.attempt_ended(exc)
            raise
        hooks.attempt_ended(None)
        return result

    retrying = policy.async_retrying(
        hooks.guards, context.clock, **hooks.tenacity_hooks(context.sleep)
    )
    try:
        result: Any = await retrying(attempt)
    except BaseException as error:
        hooks.finished(error)
        raise
    hooks.finished(None)
    return result


def _run_sync(
    func: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    policy: RetryPolicy,
    context: CallContext,
) -> Any:
    key = context.key_func(*args, **kwargs) if context.key_func else None
    hooks = _CallHooks.start(func, policy, context, key)

    def attempt() -> Any:
        delay = hooks.send_delay()
        if delay > 0:
            (context.sleep or tenacity.nap.sleep)(delay)
        hooks.attempt_started()
        try:
            result = func(*args, **kwargs)
        except Exception as exc:
            hooks.attempt_ended(exc)
            raise
        hooks.attempt_ended(None)
        return result

    retrying = policy.retrying(hooks.guards, context.clock, **hooks.tenacity_hooks(context.sleep))
    try:
        result = retrying(attempt)
    except BaseException as error:
        hooks.finished(error)
        raise
    hooks.finished(None)
    return result


def _refuse_generators(func: Callable[..., Any], by: str) -> None:
    """A TypeError for a (async) generator function: calling one only creates the generator,
    which never fails, so there would be nothing to retry and the retry would be a silent no-op.
    """
    target = inspect.unwrap(func) if callable(func) else func
    for candidate in (func, target):
        if inspect.isasyncgenfunction(candidate) or inspect.isgeneratorfunction(candidate):
            kind = "an async generator" if inspect.isasyncgenfunction(candidate) else "a generator"
            name = getattr(candidate, "__qualname__", None) or repr(candidate)
            raise TypeError(
                f"{by} cannot retry {name}: it is {kind} function, so calling it only creates "
                "the generator and its errors are raised later, while it is iterated, outside "
                "any retry; retry a function that does the work and returns its result instead"
            )


_POLICY_KEYS = frozenset({*OPTION_NAMES, *MECHANISM_NAMES, "retry", "guards"})


def _split(options: dict[str, Any]) -> tuple[dict[str, Any], CallContext]:
    """Keyword options -> (policy options for build_policy, the call context).

    Unknown names are a TypeError naming the closest valid one, raised at decoration time.
    """
    unknown = set(options) - _POLICY_KEYS - CallContext.KEYS
    if unknown:
        parse_options({k: options[k] for k in unknown})  # raises, with suggestions
    policy_options = {k: v for k, v in options.items() if k in _POLICY_KEYS}
    return policy_options, CallContext(options)


class OperationDecorator:
    """``@retry_<operation>()`` factory: reads ``RETRY__<OPERATION>_*`` at every call."""

    def __init__(self, operation: Operation) -> None:
        self.operation: Operation = operation
        self.__doc__ = (
            f"Retry the decorated sync or async function with the {operation!r} settings "
            f"(RETRY__{operation.upper()}_MAX_ATTEMPTS / _MIN_WAIT / _MAX_WAIT).\n\n"
            f"Keyword options ({', '.join(OPTION_NAMES)}; see retrysim.retry.PolicyOptions) win "
            "over the settings, falsy values included. ``retry`` takes any tenacity retry "
            "strategy; ``guards`` declared attempt guards (retrysim.retry.GuardSpec); ``sleep`` "
            "replaces the sleep (async for coroutines); ``idempotency_key(*args, **kwargs)`` "
            "names the operation so repeated executions are counted as duplicates; ``clock`` "
            "is the guards' time and times the call. Hooks (retrysim.retry.hooks): "
            "``on_exhausted(ExhaustedCall)`` when a call gives up on a retryable error, "
            "``on_breaker_change(BreakerChange)`` when a breaker its calls go through changes "
            "state; each called once per event, an exception it raises logged, never raised."
        )

    @property
    def name(self) -> str:
        """The decorator's public name: ``retry_worker_operation``, ..., ``retry_api_call``."""
        return "retry_api_call" if self.operation == "api" else f"retry_{self.operation}_operation"

    def __repr__(self) -> str:
        return f"<retry decorator for {self.operation!r} operations>"

    @overload
    def __call__(self, func: Callable[P, R], /) -> Callable[P, R]: ...

    @overload
    def __call__(self, /, **options: Any) -> Callable[[Callable[P, R]], Callable[P, R]]: ...

    def __call__(self, func: Callable[..., Any] | None = None, /, **options: Any) -> Any:
        if func is not None:  # also allow the bare form @retry_worker_operation
            return self._decorate(func, options)
        # Validate the explicit options now, so a typo in code fails at import time. The
        # settings (environment, .env) are not read here: like the bare form, they are read at
        # every call, so a bad RETRY__* variable is a SettingsError on the first call, not a
        # crash at import.
        policy_options, _ = _split(options)
        parse_options(
            {k: v for k, v in policy_options.items() if k in OPTION_NAMES or k in MECHANISM_NAMES}
        )
        return lambda f: self._decorate(f, options)

    def policy(self, **overrides: Any) -> RetryPolicy:
        """The policy a call would use right now (settings of the moment + overrides)."""
        return build_policy(self.operation, **overrides)

    def _decorate(self, func: Callable[..., Any], options: dict[str, Any]) -> Callable[..., Any]:
        _refuse_generators(func, "@" + self.name)
        policy_options, context = _split(options)
        operation = self.operation

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                policy = build_policy(operation, **policy_options)
                return await _run_async(func, args, kwargs, policy, context)

            wrapper: Callable[..., Any] = async_wrapper
        else:

            @functools.wraps(func)
            def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
                policy = build_policy(operation, **policy_options)
                return _run_sync(func, args, kwargs, policy, context)

            wrapper = sync_wrapper
        wrapper.retry_operation = operation  # type: ignore[attr-defined]
        wrapper.retry_options = dict(options)  # type: ignore[attr-defined]
        wrapper.retry_policy = lambda: build_policy(operation, **policy_options)  # type: ignore[attr-defined]
        return wrapper


retry_worker_operation = OperationDecorator("worker")
retry_storage_operation = OperationDecorator("storage")
retry_scheduler_operation = OperationDecorator("scheduler")
retry_api_call = OperationDecorator("api")


async def execute_with_retry(
    func: Callable[..., Any],
    *args: Any,
    operation: Operation = "worker",
    **kwargs: Any,
) -> Any:
    """Call ``func(*args, **kwargs)`` with retries and return its result; await this.

    ``func`` may be sync or async (or return an awaitable). Unset options come from the
    ``operation``'s settings (``worker`` by default: 3 attempts, 1-10 s). The policy options
    (``max_attempts``, ``min_wait``, ``max_wait``, ``multiplier``, ``profile``, ``jitter``,
    ``max_delay``, ``respect_retry_after``: every field of ``PolicyOptions``, and the
    ``breaker``, ``budget`` and ``adaptive`` tables), ``retry``, ``guards``, ``sleep``,
    ``clock``, ``idempotency_key``, the hooks ``on_exhausted`` and ``on_breaker_change`` (as
    for the decorators) and ``operation`` are taken by the retry itself; every other keyword
    is passed on to ``func``.
    """
    _refuse_generators(func, "execute_with_retry")
    ours = {k: kwargs.pop(k) for k in list(kwargs) if k in _POLICY_KEYS | CallContext.KEYS}
    policy_options, context = _split(ours)
    policy = build_policy(operation, **policy_options)
    return await _run_async(func, args, kwargs, policy, context)


def _with_mechanism(
    mechanism: str, knobs: dict[str, Any], operation: Operation
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A decorator adding one mechanism's knobs to a retry decorator's options.

    On a function already decorated by a retry decorator (in either order of stacking, as
    long as this one is outermost) it re-decorates the original function with the same
    operation and options plus these knobs; on a plain function it uses ``operation``.
    """
    parse_options({mechanism: knobs})  # a bad knob fails at import time, naming it

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        base_operation: Operation = getattr(func, "retry_operation", operation)
        options: dict[str, Any] = dict(getattr(func, "retry_options", {}))
        target = func.__wrapped__ if hasattr(func, "retry_options") else func  # type: ignore[attr-defined]
        earlier = options.get(mechanism) or {}
        if not isinstance(earlier, dict):
            earlier = parse_options({mechanism: earlier}).model_dump(exclude_unset=True)[mechanism]
        options[mechanism] = {**earlier, **knobs}
        decorator = _DECORATORS[base_operation]
        return decorator._decorate(target, options)

    return decorate


def retry_with_circuit_breaker(
    *, operation: Operation = "worker", **knobs: Any
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Give a retried function a circuit breaker (knobs: see ``BreakerOptions``).

    ``@retry_with_circuit_breaker(failure_threshold=5, recovery_timeout=60.0)`` above
    ``@retry_api_call()`` adds the breaker to that decorator; on a plain function it retries
    with ``operation``'s settings. Same as ``@retry_api_call(breaker={...})``.
    """
    return _with_mechanism("breaker", {"enabled": True, **knobs}, operation)


def retry_with_budget(
    *, operation: Operation = "worker", **knobs: Any
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Give a retried function a retry budget (knobs: see ``BudgetOptions``).

    ``max_total_time=30.0`` alone is a per-call budget; any other knob (``kind``,
    ``max_tokens``, ``percent``, ...) also turns on the shared budget, as ``enabled=True`` does.
    """
    shared = {k: v for k, v in knobs.items() if k != "max_total_time"}
    enabled = {"enabled": True} if shared and "enabled" not in shared else {}
    return _with_mechanism("budget", {**enabled, **knobs}, operation)


def retry_with_adaptive_backoff(
    *, operation: Operation = "worker", **knobs: Any
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Stretch a retried function's waits with the recent failure rate (``AdaptiveOptions``);
    ``limiter=True`` also limits its send rate after throttling."""
    return _with_mechanism("adaptive", {"enabled": True, **knobs}, operation)


_DECORATORS: dict[str, OperationDecorator] = {
    d.operation: d
    for d in (
        retry_worker_operation,
        retry_storage_operation,
        retry_scheduler_operation,
        retry_api_call,
    )
}
