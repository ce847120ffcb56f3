"""The four operation decorators and ``execute_with_retry``.

Each call reads the current settings and builds its policy with :func:`build_policy`, then runs
tenacity's own ``Retrying`` / ``AsyncRetrying`` loop; nothing here re-implements a retry rule.
The hooks only log (stdlib ``logging``, logger ``retrysim.retry``) and count.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, ParamSpec, TypeVar, overload

from tenacity import RetryCallState
from tenacity.retry import retry_base

from retrysim.retry.counters import COUNTERS
from retrysim.retry.policy import RetryPolicy, build_policy
from retrysim.retry.settings import Operation, Profile

logger = logging.getLogger("retrysim.retry")
# A library stays quiet until the application configures logging (no last-resort stderr output).
logger.addHandler(logging.NullHandler())

P = ParamSpec("P")
R = TypeVar("R")

SyncSleep = Callable[[float], None]
AsyncSleep = Callable[[float], Awaitable[None]]
KeyFunc = Callable[..., Hashable]


class _CallHooks:
    """Logging and counting for one call; tenacity calls these at its decision points."""

    def __init__(self, name: str, counter_key: str, policy: RetryPolicy) -> None:
        self.name = name
        self.counter_key = counter_key
        self.policy = policy
        self.attempts = 0
        self.exhausted = False

    @classmethod
    def start(cls, func: Callable[..., Any], policy: RetryPolicy) -> _CallHooks:
        """Hooks for a new call of ``func`` (counted as started)."""
        name, counter_key = _name_of(func)
        COUNTERS.call_started(counter_key)
        return cls(name, counter_key, policy)

    def tenacity_hooks(self, sleep: SyncSleep | AsyncSleep | None) -> dict[str, Any]:
        """Keyword arguments for tenacity's Retrying / AsyncRetrying."""
        hooks: dict[str, Any] = {
            "before_sleep": self.before_sleep,
            "retry_error_callback": self.on_exhausted,
        }
        if sleep is not None:
            hooks["sleep"] = sleep
        return hooks

    def attempt_started(self, key: Hashable) -> None:
        self.attempts += 1
        COUNTERS.attempt(self.counter_key, key)

    def attempt_failed(self, error: Exception) -> None:
        COUNTERS.attempt_failed(self.counter_key, type(error).__name__)

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
        assert state.outcome is not None  # tenacity only gives up after an outcome
        return state.outcome.result()  # raises the original exception

    def finished(self, error: BaseException | None) -> None:
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
    sleep: AsyncSleep | None,
    key: Hashable,
) -> Any:
    hooks = _CallHooks.start(func, policy)

    async def attempt() -> Any:
        hooks.attempt_started(key)
        try:
            result: Any = func(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            hooks.attempt_failed(exc)
            raise
        return result

    retrying = policy.async_retrying(**hooks.tenacity_hooks(sleep))
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
    sleep: SyncSleep | None,
    key: Hashable,
) -> Any:
    hooks = _CallHooks.start(func, policy)

    def attempt() -> Any:
        hooks.attempt_started(key)
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            hooks.attempt_failed(exc)
            raise

    retrying = policy.retrying(**hooks.tenacity_hooks(sleep))
    try:
        result = retrying(attempt)
    except BaseException as error:
        hooks.finished(error)
        raise
    hooks.finished(None)
    return result


class OperationDecorator:
    """``@retry_<operation>()`` factory: reads ``RETRY__<OPERATION>_*`` at every call."""

    def __init__(self, operation: Operation) -> None:
        self.operation: Operation = operation
        self.__doc__ = (
            f"Retry the decorated sync or async function with the {operation!r} settings "
            f"(RETRY__{operation.upper()}_MAX_ATTEMPTS / _MIN_WAIT / _MAX_WAIT).\n\n"
            "Keyword overrides win over the settings, falsy values included. ``retry`` takes "
            "any tenacity retry strategy; ``sleep`` replaces the sleep (async for coroutines); "
            "``idempotency_key(*args, **kwargs)`` names the operation so repeated executions "
            "are counted as duplicates."
        )

    def __repr__(self) -> str:
        return f"<retry decorator for {self.operation!r} operations>"

    @overload
    def __call__(
        self,
        *,
        max_attempts: int | None = None,
        min_wait: float | None = None,
        max_wait: float | None = None,
        retry: retry_base | None = None,
        profile: Profile | None = None,
        jitter: float | None = None,
        max_delay: float | None = None,
        respect_retry_after: bool = False,
        sleep: SyncSleep | AsyncSleep | None = None,
        idempotency_key: KeyFunc | None = None,
    ) -> Callable[[Callable[P, R]], Callable[P, R]]: ...

    @overload
    def __call__(self, func: Callable[P, R], /) -> Callable[P, R]: ...

    def __call__(  # type: ignore[misc]  # the overloads above are the public signatures
        self, func: Callable[..., Any] | None = None, /, **options: Any
    ) -> Any:
        if func is not None:  # also allow the bare form @retry_worker_operation
            return self._decorate(func, options)
        # Validate overrides now, against the settings of the moment, so a typo fails at import.
        self.policy(**_policy_options(options))
        return lambda f: self._decorate(f, options)

    def policy(self, **overrides: Any) -> RetryPolicy:
        """The policy a call would use right now (settings of the moment + overrides)."""
        return build_policy(self.operation, **overrides)

    def _decorate(self, func: Callable[..., Any], options: dict[str, Any]) -> Callable[..., Any]:
        policy_options = _policy_options(options)
        sleep = options.get("sleep")
        key_func: KeyFunc | None = options.get("idempotency_key")
        operation = self.operation

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                policy = build_policy(operation, **policy_options)
                key = key_func(*args, **kwargs) if key_func else None
                return await _run_async(func, args, kwargs, policy, sleep, key)

            wrapper: Callable[..., Any] = async_wrapper
        else:

            @functools.wraps(func)
            def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
                policy = build_policy(operation, **policy_options)
                key = key_func(*args, **kwargs) if key_func else None
                return _run_sync(func, args, kwargs, policy, sleep, key)

            wrapper = sync_wrapper
        wrapper.retry_operation = operation  # type: ignore[attr-defined]
        wrapper.retry_policy = lambda: build_policy(operation, **policy_options)  # type: ignore[attr-defined]
        return wrapper


_POLICY_KEYS = frozenset(
    {
        "max_attempts",
        "min_wait",
        "max_wait",
        "retry",
        "profile",
        "jitter",
        "max_delay",
        "respect_retry_after",
    }
)
_OTHER_KEYS = frozenset({"sleep", "idempotency_key"})


def _policy_options(options: dict[str, Any]) -> dict[str, Any]:
    unknown = set(options) - _POLICY_KEYS - _OTHER_KEYS
    if unknown:
        allowed = ", ".join(sorted(_POLICY_KEYS | _OTHER_KEYS))
        raise TypeError(f"unknown retry option(s) {', '.join(sorted(unknown))}; allowed: {allowed}")
    return {k: v for k, v in options.items() if k in _POLICY_KEYS}


retry_worker_operation = OperationDecorator("worker")
retry_storage_operation = OperationDecorator("storage")
retry_scheduler_operation = OperationDecorator("scheduler")
retry_api_call = OperationDecorator("api")


async def execute_with_retry(
    func: Callable[..., Any],
    *args: Any,
    max_attempts: int | None = None,
    min_wait: float | None = None,
    max_wait: float | None = None,
    operation: Operation = "worker",
    profile: Profile | None = None,
    retry: retry_base | None = None,
    sleep: AsyncSleep | None = None,
    **kwargs: Any,
) -> Any:
    """Call ``func(*args, **kwargs)`` with retries and return its result; await this.

    ``func`` may be sync or async (or return an awaitable). Unset limits come from the
    ``operation``'s settings (``worker`` by default: 3 attempts, 1-10 s). The keywords
    ``max_attempts``, ``min_wait``, ``max_wait``, ``operation``, ``profile``, ``retry`` and
    ``sleep`` are taken by the retry itself, not passed on to ``func``.
    """
    policy = build_policy(
        operation,
        max_attempts=max_attempts,
        min_wait=min_wait,
        max_wait=max_wait,
        profile=profile,
        retry=retry,
    )
    return await _run_async(func, args, kwargs, policy, sleep, None)
