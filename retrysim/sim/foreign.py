"""Your own tenacity policy as a retrysim policy: its strategies stepped as they are, and probed.

A team whose services retry with their own ``@tenacity.retry(stop=..., wait=..., retry=...)``
wants *that* policy simulated, not retrysim's four decorators. ``foreign_policy`` takes a
``tenacity.Retrying``, an ``AsyncRetrying`` or a function decorated with ``@tenacity.retry``
and returns a :class:`~retrysim.retry.policy.RetryPolicy` whose ``stop``, ``wait`` and
``retry`` are the user's own objects, so the engine steps exactly what the service runs.

What the rest of retrysim reads of a policy (at most how many attempts, which errors it
retries, how long its waits can be) is found by *probing* those objects with hand-made
``RetryCallState``s, which is exact for tenacity's own strategies and for any predicate on
exceptions. The numbers go into a :class:`ForeignProfile`, registered like any backoff
profile, so reports, diagnoses and figures need no special case. Callbacks (``before``,
``after``, ``before_sleep``, ``retry_error_callback``) and the policy's ``sleep`` are not
part of the decision and are not run: the simulator sleeps on its own clock.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import tenacity
from tenacity import BaseRetrying, RetryCallState, stop_after_attempt, stop_any
from tenacity.retry import retry_base
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from retrysim.names import MAX_ATTEMPTS_LIMIT
from retrysim.retry.policy import RetryPolicy, build_policy
from retrysim.retry.profiles import Profile, Shape, register_profile
from retrysim.sim.clock import current_stream, routed_jitter
from retrysim.sim.decide import strategy_tree
from retrysim.sim.failures import CIRCUIT_OPEN, CODE_NAMES, ERROR_CLASSES, make_error

#: The errors a simulated dependency can fail with, less the breaker's refusal (which no
#: policy sees as the dependency's): the candidates a user's ``retry`` is probed with.
PROBED_CODES = tuple(code for code in range(1, len(CODE_NAMES)) if code != CIRCUIT_OPEN)
#: Retries probed for the wait ranges the report and diagnoses show.
PROBED_RETRIES = 12
#: Callbacks a Retrying may carry that are not part of deciding; tenacity's defaults are these.
_CALLBACKS = ("before", "after", "before_sleep", "retry_error_callback")
_SECONDS_PROBED = 1e9  # a stop that never ends a call within this long has no time limit


class PolicyTypeError(TypeError):
    """The object is not a tenacity policy the simulator can step."""


@dataclass(frozen=True)
class Probed:
    """What probing found: the numbers other parts of retrysim read, and what to tell the user."""

    name: str
    max_attempts: int  # MAX_ATTEMPTS_LIMIT when the policy has no attempt limit
    attempts_limited: bool
    max_delay: float | None  # seconds after which its stop ends a call, if it has one
    wait_ranges: tuple[tuple[float, float], ...]  # before retries 1..PROBED_RETRIES
    retried: tuple[type[BaseException], ...]
    strategies: dict[str, str]  # stop / wait / retry -> what it is, recognised or your own
    notes: tuple[str, ...]


class ForeignProfile(Profile):
    """A user's wait as a profile: its tenacity object, and the ranges probing found."""

    min_wait_means = "nothing: the wait is your policy's own"
    colour = "#937860"
    floors_by_default = False

    def __init__(self, probed: Probed, wait: Any) -> None:
        self.name = f"custom:{probed.name}"
        self.formula = probed.strategies["wait"]
        self.retryable = probed.retried
        self.probed = probed
        self._wait = wait

    def wait(self, shape: Shape) -> wait_base:
        return self._wait  # type: ignore[no-any-return]

    def retries(self, error: BaseException) -> bool:
        return isinstance(error, self.retryable)  # what probing found the policy retries

    def raw_range(self, shape: Shape, n: int) -> tuple[float, float]:
        ranges = self.probed.wait_ranges
        return ranges[min(n, len(ranges)) - 1]


def tenacity_policy(obj: Any) -> BaseRetrying:
    """The ``Retrying``/``AsyncRetrying`` behind ``obj``, or a PolicyTypeError saying why not."""
    if isinstance(obj, BaseRetrying):
        return obj
    inner = getattr(obj, "retry", None)
    if callable(obj) and isinstance(inner, BaseRetrying):
        return inner  # a function decorated with @tenacity.retry keeps its Retrying here
    from retrysim.sim.foreign_libraries import TranslationError, library_policy

    try:
        translated = library_policy(obj)  # @stamina.retry / @backoff.on_exception, translated
    except TranslationError as error:
        raise PolicyTypeError(str(error)) from None
    if translated is not None:
        return translated
    raise PolicyTypeError(
        f"is of type {type(obj).__name__}; expected a tenacity Retrying or AsyncRetrying, or a "
        "function decorated with @tenacity.retry, @stamina.retry or @backoff.on_exception"
    )


def policy_label(obj: Any) -> str:
    """A name for a policy given as an object: ``module:function`` or the class's name."""
    function = obj if not isinstance(obj, BaseRetrying) else None
    module, qualname = (
        getattr(function, "__module__", None),
        getattr(function, "__qualname__", None),
    )
    if module and qualname:
        return f"{module}:{qualname}"
    return type(obj).__name__


def foreign_policy(obj: Any, name: str, operation: str = "worker") -> RetryPolicy:
    """A RetryPolicy that steps ``obj``'s own stop, wait and retry (see the module docstring).

    ``name`` says where it came from (``my_service.retries:api_retry``); ``operation`` only
    labels the report.
    """
    from retrysim.retry.options import PolicyOptions
    from retrysim.retry.settings import RetrySettings

    retrying = tenacity_policy(obj)
    probed = probe(retrying, name)
    profile = register_profile(ForeignProfile(probed, retrying.wait))
    lows = [lo for lo, _ in probed.wait_ranges]
    highs = [hi for _, hi in probed.wait_ranges]
    options = PolicyOptions(
        profile=profile.name,
        max_attempts=probed.max_attempts,
        min_wait=min(lows, default=0.0),
        max_wait=max(highs, default=0.0),
        jitter=0.0,
        max_delay=probed.max_delay,
    )
    policy = build_policy(operation, RetrySettings.defaults(), options=options)
    stop: Any = retrying.stop
    if not probed.attempts_limited:  # records count attempts in 16 bits; say so, cap there
        stop = stop_any(stop, stop_after_attempt(MAX_ATTEMPTS_LIMIT))
    return ForeignRetryPolicy(
        operation=policy.operation,
        options=policy.options,
        stop=cast(stop_base, stop),
        wait=cast(wait_base, retrying.wait),
        retry=cast(retry_base, retrying.retry),
        probed=probed,
    )


@dataclass(frozen=True)
class ForeignRetryPolicy(RetryPolicy):
    """A user's own tenacity policy: their strategies, and what probing found of them.

    tenacity takes plain callables as strategies too; the fields are typed for its classes.
    """

    probed: Probed | None = None

    def describe(self) -> dict[str, Any]:
        """The resolved numbers, plus the policy's name, strategies and notes (``custom``)."""
        described = super().describe()
        probed = self.probed
        assert probed is not None
        described["custom"] = {
            "name": probed.name,
            "strategies": dict(probed.strategies),
            "attempts_limited": probed.attempts_limited,
            "notes": list(probed.notes),
        }
        return described


# --- probing ---------------------------------------------------------------------------------


class _Fixed:
    """A jitter source that always draws the same share ``u`` of its range."""

    def __init__(self, u: float) -> None:
        self.u = u

    def random(self) -> float:
        return self.u

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.u


@contextmanager
def _jitter(u: float) -> Iterator[None]:
    with routed_jitter():
        token = current_stream.set(_Fixed(u))
        try:
            yield
        finally:
            current_stream.reset(token)


def _state(
    retrying: BaseRetrying,
    attempt: int,
    error: BaseException | None,
    seconds: float = 0.0,
) -> RetryCallState:
    """A call after its ``attempt``-th attempt failed with ``error`` (None: returned None)."""
    state = RetryCallState(retrying, None, (), {})
    state.attempt_number = attempt
    if error is None:
        state.set_result(None)
    else:
        state.set_exception((type(error), error, None))
    state.start_time = 0.0
    state.outcome_timestamp = seconds
    state.upcoming_sleep = 0.0
    return state


def probe(retrying: BaseRetrying, name: str) -> Probed:
    """Ask the policy's own strategies what they do, with made-up call states."""
    notes = [
        f"{callback} is not run in simulation"
        for callback in _CALLBACKS
        if _is_set(getattr(retrying, callback, None), callback)
    ]
    failure = ConnectionError("probe")
    stop = retrying.stop
    attempts = next(
        (n for n in range(1, MAX_ATTEMPTS_LIMIT + 1) if stop(_state(retrying, n, failure))),
        None,
    )
    if attempts is None:
        notes.append(f"no attempt limit: retrysim ends a call at {MAX_ATTEMPTS_LIMIT:,} attempts")
    max_delay = _time_limit(retrying, failure)
    retried = tuple(
        ERROR_CLASSES[CODE_NAMES[code]]
        for code in PROBED_CODES
        if retrying.retry(_state(retrying, 1, make_error(code)))
    )
    if retrying.retry(_state(retrying, 1, None)):
        notes.append(
            "its retry also retries a call that returned None, and every served request "
            "returns None: each call runs until its stop and gives up (recorded as result:None)"
        )
    elif judges_results(retrying.retry):
        notes.append(
            "its retry judges results: a scenario's answers ([[faults]] answer, service "
            "reject_answer) are returned to it as the call's result"
        )
    ranges = []
    for n in range(1, PROBED_RETRIES + 1):
        lo, hi = (_wait_at(retrying, n, u) for u in (0.0, 1.0))
        ranges.append((min(lo, hi), max(lo, hi)))
    if _wait_at(retrying, 1, 0.5) != _wait_at(retrying, 1, 0.5):
        notes.append(
            "its wait draws randomness retrysim cannot seed (not through tenacity's random): "
            "runs will not repeat exactly"
        )
    return Probed(
        name=name,
        max_attempts=MAX_ATTEMPTS_LIMIT if attempts is None else attempts,
        attempts_limited=attempts is not None,
        max_delay=max_delay,
        wait_ranges=tuple(ranges),
        retried=retried,
        strategies={
            "stop": describe(retrying.stop),
            "wait": describe(retrying.wait),
            "retry": describe(retrying.retry),
        },
        notes=tuple(notes),
    )


#: tenacity's retry strategies that read an attempt's returned value.
_RESULT_PREDICATES = (tenacity.retry_if_result, tenacity.retry_if_not_result)


def judges_results(retry: Any) -> bool:
    """Whether ``retry`` (or a part of it) is one of tenacity's result predicates."""
    return any(isinstance(part, _RESULT_PREDICATES) for part in strategy_tree(retry))


def _wait_at(retrying: BaseRetrying, n: int, u: float) -> float:
    with _jitter(u):
        return float(retrying.wait(_state(retrying, n, ConnectionError("probe"))))


def _time_limit(retrying: BaseRetrying, failure: BaseException) -> float | None:
    """Seconds after which the stop ends a call on its first failure (bisected), or None."""

    def stops(seconds: float) -> bool:
        return bool(retrying.stop(_state(retrying, 1, failure, seconds)))

    if stops(0.0) or not stops(_SECONDS_PROBED):
        return None
    lo, hi = 0.0, _SECONDS_PROBED
    for _ in range(200):
        mid = (lo + hi) / 2
        if mid in (lo, hi):
            break
        lo, hi = (lo, mid) if stops(mid) else (mid, hi)
    return hi


def _is_set(callback: Any, name: str) -> bool:
    """Whether a Retrying's callback is the user's, not tenacity's do-nothing default."""
    default = inspect_default(name)
    return callback is not None and callback is not default


def inspect_default(name: str) -> Any:
    """tenacity's default for a Retrying keyword (``before=before_nothing`` ...)."""
    import inspect

    parameter = inspect.signature(tenacity.BaseRetrying.__init__).parameters.get(name)
    return None if parameter is None else parameter.default


def describe(strategy: Any) -> str:
    """A strategy as text: tenacity's and retrysim's by class and numbers, yours by name.

    Compositions (``|``, ``&``, ``+``) are described part by part.
    """
    for attribute, joiner in (
        ("stops", " | "),
        ("wait_funcs", " + "),
        ("retries", " | "),
        ("strategies", ", "),
    ):
        parts = getattr(strategy, attribute, None)
        if isinstance(parts, tuple) and parts:
            both = type(strategy).__name__ in ("stop_all", "retry_all")
            inner = (" & " if both else joiner).join(describe(part) for part in parts)
            return f"wait_chain({inner})" if attribute == "strategies" else inner
    kind = type(strategy)
    module = getattr(kind, "__module__", "") or ""
    if module.startswith(("tenacity", "retrysim")):
        numbers = ", ".join(
            f"{key}={_value(value)}"
            for key, value in vars(strategy).items()
            if not key.startswith("_") and _value(value) is not None
        )
        return f"{kind.__name__}({numbers})"
    label = getattr(strategy, "__qualname__", None) or kind.__qualname__
    return f"{label} (your own; probed)"


def _value(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None if value is None else str(value)
    if isinstance(value, int | float):
        return "inf" if math.isinf(value) or value > 1e18 else f"{value:g}"
    if isinstance(value, type) and issubclass(value, BaseException):
        return value.__name__
    if isinstance(value, tuple) and all(isinstance(v, type) for v in value):
        return "(" + ", ".join(v.__name__ for v in value) + ")"
    if isinstance(value, Callable):  # type: ignore[arg-type]
        return None  # a predicate's function: its class name already says what it is
    return None
