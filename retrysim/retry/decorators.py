"""The four operation decorators and ``execute_with_retry``.

Each call reads the current settings and runs the policy :func:`build_policy` built from them
(once per settings object, so a reload is followed at the next call) in tenacity's own
``Retrying`` / ``AsyncRetrying`` loop (:mod:`retrysim.retry.calls`: the guards, counters, logs,
hooks, ``attempt_timeout`` and fallback around it); nothing here
re-implements a retry rule. This module turns keyword options into a policy and a
:class:`~retrysim.retry.calls.CallContext`, checking them at decoration time.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, overload

from retrysim.retry.calls import CallContext, run_async, run_sync
from retrysim.retry.hooks import check_fallback
from retrysim.retry.options import OPTION_NAMES, TABLE_NAMES, parse_options
from retrysim.retry.policy import RetryPolicy, build_policy
from retrysim.retry.settings import Operation, RetrySettings, get_settings

P = ParamSpec("P")
R = TypeVar("R")


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


def _refuse_sync_timeout(func: Callable[..., Any], by: str) -> None:
    """A TypeError for ``attempt_timeout`` on a sync function: a running sync call cannot be
    stopped from outside without leaving its thread running (and its work going on)."""
    name = getattr(func, "__qualname__", None) or repr(func)
    raise TypeError(
        f"{by}: attempt_timeout bounds coroutines only, and {name} is a sync function: a sync "
        "call cannot be stopped without leaving its thread running; give its client library "
        "a timeout of its own (requests' timeout=, httpx.Client(timeout=...), redis' "
        "socket_timeout=), or make it async"
    )


def _refuse_sync_hedge(func: Callable[..., Any], by: str) -> None:
    """A TypeError for an explicit ``hedge`` on a sync function: a hedge that loses must be
    abandoned, and a running sync call cannot be without leaving its thread running."""
    name = getattr(func, "__qualname__", None) or repr(func)
    raise TypeError(
        f"{by}: hedge hedges coroutines only, and {name} is a sync function: a losing send "
        "must be cancelled, and a sync call cannot be without leaving its thread running; "
        "make it async, or leave hedge off"
    )


_POLICY_KEYS = frozenset({*OPTION_NAMES, *TABLE_NAMES, "retry", "guards"})


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
            "is the guards' time and times the call. ``attempt_timeout`` bounds each attempt "
            "of a coroutine (a sync function is refused: give its client a timeout). "
            "``hedge`` (True or a table, see retrysim.retry.HedgeOptions) hedges each attempt "
            "of a coroutine: the first acceptable answer wins, the other sends are cancelled "
            "(a sync function is refused). "
            "``fallback``: what a call that gives up returns instead of raising (a value, or a "
            "function of the ExhaustedCall; one that raises raises to the caller). Hooks "
            "(retrysim.retry.hooks): ``on_retry(RetryEvent)`` before each retry's wait, "
            "``on_exhausted(ExhaustedCall)`` when a call gives up on an outcome it retries, "
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
            {k: v for k, v in policy_options.items() if k in OPTION_NAMES or k in TABLE_NAMES}
        )
        return lambda f: self._decorate(f, options)

    def policy(self, **overrides: Any) -> RetryPolicy:
        """The policy a call would use right now (settings of the moment + overrides)."""
        return build_policy(self.operation, **overrides)

    def _decorate(self, func: Callable[..., Any], options: dict[str, Any]) -> Callable[..., Any]:
        _refuse_generators(func, "@" + self.name)
        policy_options, context = _split(options)
        operation = self.operation
        is_async = inspect.iscoroutinefunction(func)
        if not is_async and policy_options.get("attempt_timeout") is not None:
            _refuse_sync_timeout(func, "@" + self.name)
        if context.has_fallback:
            check_fallback("fallback", context.fallback, allow_async=is_async)
        # The explicit options are validated once, here, and the policy built once per settings
        # object (settings are frozen; reload_settings / use_settings install a new one, which
        # the next call follows). A built policy serves concurrent calls: its strategies keep
        # no state but per call state (a decorrelated wait's previous wait).
        strategies = {k: v for k, v in policy_options.items() if k in ("retry", "guards")}
        parsed = parse_options({k: v for k, v in policy_options.items() if k not in strategies})
        if not is_async and parsed.hedge.enabled and "enabled" in parsed.hedge.model_fields_set:
            _refuse_sync_hedge(func, "@" + self.name)
        memo: tuple[RetrySettings, RetryPolicy] | None = None

        def current_policy() -> RetryPolicy:
            nonlocal memo
            settings, known = get_settings(), memo
            if known is not None and known[0] is settings:
                return known[1]
            policy = build_policy(operation, settings, options=parsed, **strategies)
            memo = (settings, policy)
            return policy

        if is_async:

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                return await run_async(func, args, kwargs, current_policy(), context)

            wrapper: Callable[..., Any] = async_wrapper
        else:

            @functools.wraps(func)
            def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
                return run_sync(func, args, kwargs, current_policy(), context)

            wrapper = sync_wrapper
        wrapper.retry_operation = operation  # type: ignore[attr-defined]
        wrapper.retry_options = dict(options)  # type: ignore[attr-defined]
        wrapper.retry_policy = current_policy  # type: ignore[attr-defined]
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
    ``max_delay``, ``respect_retry_after``, ``attempt_timeout``: every field of
    ``PolicyOptions``, the per-error tables ``rate_limited``, ``server_error``,
    ``connection_error`` and ``timeout_error``, and the ``breaker``, ``budget``, ``adaptive`` and
    ``hedge`` tables), ``retry``,
    ``guards``, ``sleep``, ``clock``, ``idempotency_key``, ``fallback``, the hooks
    ``on_retry``, ``on_exhausted`` and ``on_breaker_change`` (as for the decorators) and
    ``operation`` are taken by the retry itself; every other keyword is passed on to ``func``.
    ``attempt_timeout`` bounds the awaiting of what ``func`` returns, and ``hedge`` hedges it;
    the work of a sync ``func`` runs to its end, unhedged (each said once, in a warning).
    """
    _refuse_generators(func, "execute_with_retry")
    ours = {k: kwargs.pop(k) for k in list(kwargs) if k in _POLICY_KEYS | CallContext.KEYS}
    policy_options, context = _split(ours)
    policy = build_policy(operation, **policy_options)
    return await run_async(func, args, kwargs, policy, context)


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
