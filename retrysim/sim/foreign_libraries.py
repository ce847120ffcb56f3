"""Policies written with stamina or backoff, translated into the tenacity strategies they mean.

``--policy MODULE:ATTR`` (and ``retrying=`` in the Python API) takes a tenacity policy; a team
whose services retry with ``@stamina.retry(...)`` or ``@backoff.on_exception(...)`` wants that
policy simulated. Neither library keeps its parameters anywhere public: both decorators return
a wrapper function whose closure holds them. :func:`library_policy` recognises such a wrapper
by the module that defined it (its ``__globals__``), reads its closure by variable name, and
builds a ``tenacity.Retrying`` that decides as the library does:

- **stamina** runs on tenacity itself: its stop (``attempts``, ``timeout``) and its retry
  (``on=`` exception classes) already are tenacity objects and are used as they are; its wait
  ``min(wait_max, wait_initial * wait_exp_base ** (n - 1) + U(0, wait_jitter))`` is tenacity's
  ``wait_exponential_jitter`` with those numbers. An ``on=`` backoff hook becomes a retry that
  asks it, and a wait that takes the seconds it returns (it is asked twice a retry: once to
  decide, once for the wait).
- **backoff** (``on_exception`` only): ``exception`` is ``retry_if_exception_type``, ``giveup``
  a retry that stops when it says so, ``max_tries`` ``stop_after_attempt``, ``max_time``
  ``stop_after_delay`` and a wait cut to the time left; the wait generators ``expo``,
  ``fibo``, ``constant`` (a number or a finite sequence, after which backoff gives up) and
  ``runtime``, each with ``full_jitter``, ``random_jitter`` or no jitter. Callables given for
  ``max_tries``, ``max_time`` or a generator's keyword are called once, when the policy is
  loaded (backoff calls them at each call). backoff measures ``max_time`` up to the *start*
  of the failed attempt, tenacity up to its end: with slow attempts the translation may give
  up one attempt sooner.

Jitter is drawn through tenacity's ``random``, so the simulator seeds it as it seeds
tenacity's own. Anything else (backoff's ``on_predicate``, a wait generator or jitter function
of your own, an unknown keyword) is refused in one line naming it: writing that policy with
tenacity keeps it exact. Neither library is imported unless the object came from it.
"""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Callable
from typing import Any

import tenacity
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    stop_any,
    wait_chain,
    wait_exponential,
    wait_exponential_jitter,
    wait_fixed,
    wait_random,
    wait_random_exponential,
)
from tenacity.retry import retry_base
from tenacity.stop import stop_base
from tenacity.wait import wait_base

#: Tested with stamina 26.1 and backoff 2.2.1 (the dev extra's ranges: stamina 24.3 on).
STAMINA_MODULE = "stamina._core"
BACKOFF_MODULES = ("backoff._sync", "backoff._async")
#: Each backoff wait generator's keywords.
_GENERATOR_KEYWORDS = {
    "expo": ("base", "factor", "max_value"),
    "fibo": ("max_value",),
    "constant": ("interval",),
    "runtime": ("value",),
}


class TranslationError(ValueError):
    """A stamina or backoff policy with something that has no tenacity equivalent here."""


def library_policy(obj: Any) -> Retrying | None:
    """The tenacity policy a stamina- or backoff-decorated function means, or None if ``obj``
    is neither; raises :class:`TranslationError` naming what cannot be translated."""
    module = _defining_module(obj)
    if module == STAMINA_MODULE:
        return from_stamina(obj)
    if module in BACKOFF_MODULES:
        return from_backoff(obj)
    return None


def _defining_module(obj: Any) -> str | None:
    namespace = getattr(obj, "__globals__", None)
    return namespace.get("__name__") if isinstance(namespace, dict) else None


def _closure(function: Any) -> dict[str, Any]:
    """A function's closure variables by name (empty cells left out)."""
    names = function.__code__.co_freevars
    values: dict[str, Any] = {}
    for name, cell in zip(names, function.__closure__ or (), strict=True):
        try:
            values[name] = cell.cell_contents
        except ValueError:  # an empty cell
            continue
    return values


def _unreadable(library: str) -> TranslationError:
    return TranslationError(
        f"a {library}-decorated function this version of {library} does not let retrysim read "
        "(tested with stamina 24.3 to 26.x and backoff 2.2); write the policy with tenacity"
    )


def _seconds(value: Any) -> Any:
    return value.total_seconds() if isinstance(value, dt.timedelta) else value


# --- stamina -----------------------------------------------------------------------------------


def from_stamina(function: Any) -> Retrying:
    """``@stamina.retry(...)``'s parameters as tenacity strategies (module docstring)."""
    context = _closure(function).get("retry_ctx")
    kwargs = getattr(context, "_t_kw", None)
    numbers: list[Any] = [
        getattr(context, name, None)
        for name in ("_wait_initial", "_wait_max", "_wait_jitter", "_wait_exp_base")
    ]
    if not isinstance(kwargs, dict) or any(not _is_number(n) for n in numbers):
        raise _unreadable("stamina")
    stop, retry = kwargs.get("stop"), kwargs.get("retry")
    initial, maximum, jitter, base = (float(n) for n in numbers)
    backoff: wait_base = wait_exponential_jitter(
        multiplier=initial, max=maximum, exp_base=base, jitter=jitter
    )
    hook = getattr(retry, "_backoff_hook", None)
    if hook is not None:  # on= a backoff hook: it decides, and may name the wait
        retry, backoff = retry_if_stamina_hook(hook), wait_stamina_hook(hook, backoff)
    if not isinstance(stop, stop_base) or not isinstance(retry, retry_base):
        raise _unreadable("stamina")
    return Retrying(stop=stop, wait=backoff, retry=retry, reraise=True)


def _is_number(value: Any) -> bool:
    """A plain number of seconds. A timedelta is not one: backoff fails on it at run time
    (TypeError), and stamina turns its own into floats before its context holds them."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _hook_wait(verdict: Any) -> float | None:
    """The seconds a stamina backoff hook's answer names, or None (a bool, None)."""
    if isinstance(verdict, bool) or verdict is None:
        return None
    seconds = _seconds(verdict)
    return float(seconds) if isinstance(seconds, int | float) else None


def _failure(retry_state: tenacity.RetryCallState) -> BaseException | None:
    outcome = retry_state.outcome
    return outcome.exception() if outcome is not None and outcome.failed else None


class retry_if_stamina_hook(retry_base):  # noqa: N801  (tenacity's naming)
    """stamina's ``on=`` hook: retry when it answers True or a wait."""

    def __init__(self, hook: Callable[[BaseException], Any]) -> None:
        self.hook = hook

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        error = _failure(retry_state)
        if error is None:  # stamina asks its hook of any failure, a BaseException too
            return False
        verdict = self.hook(error)
        return verdict is True or _hook_wait(verdict) is not None


class wait_stamina_hook(wait_base):  # noqa: N801
    """The wait an ``on=`` hook names for this error, else stamina's exponential backoff."""

    def __init__(self, hook: Callable[[BaseException], Any], backoff: wait_base) -> None:
        self.hook = hook
        self.backoff = backoff

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        error = _failure(retry_state)
        if error is not None:
            seconds = _hook_wait(self.hook(error))
            if seconds is not None:
                return seconds
        return float(self.backoff(retry_state))


# --- backoff -------------------------------------------------------------------------------------


def from_backoff(function: Any) -> Retrying:
    """``@backoff.on_exception(...)``'s parameters as tenacity strategies (module docstring)."""
    import backoff

    given = _closure(function)
    if "predicate" in given:
        raise TranslationError(
            "backoff.on_predicate retries on return values; only backoff.on_exception is "
            "translated (give a tenacity policy with retry_if_result instead)"
        )
    needed = ("exception", "giveup", "jitter", "max_time", "max_tries", "wait_gen")
    if any(name not in given for name in needed) or not isinstance(
        given.get("wait_gen_kwargs"), dict
    ):
        raise _unreadable("backoff")
    exception = given["exception"]
    if not _exception_classes(exception):
        raise TranslationError(
            f"backoff.on_exception(exception={exception!r}): expected an exception class or "
            "a tuple of them"
        )
    retry: retry_base = retry_if_exception_type(exception)
    giveup = _plain_giveup(given["giveup"])
    if giveup is not inspect.signature(backoff.on_exception).parameters["giveup"].default:
        retry = retry & retry_unless_giveup(giveup)
    stops: list[stop_base] = []
    max_tries = _number_or_none("max_tries", _called(given["max_tries"]))
    if max_tries is not None and max_tries >= 1:  # backoff never stops on 0 or fewer tries
        if max_tries != int(max_tries):
            raise TranslationError(f"backoff.on_exception(max_tries={max_tries!r}): not whole")
        stops.append(stop_after_attempt(int(max_tries)))
    wait, generator_stop = _backoff_wait(backoff, given["wait_gen"], given["wait_gen_kwargs"])
    wait = _jittered(backoff, wait, given["jitter"])
    if generator_stop is not None:
        stops.append(generator_stop)
    max_time = _number_or_none("max_time", _called(given["max_time"]))
    if max_time is not None:
        stops.append(stop_after_delay(max_time))
        wait = wait_within(wait, max_time)
    stop: stop_base = stop_any(*stops) if stops else tenacity.stop_never
    return Retrying(stop=stop, wait=wait, retry=retry, reraise=True)


def _exception_classes(value: Any) -> bool:
    def one(item: Any) -> bool:
        return isinstance(item, type) and issubclass(item, BaseException)

    return one(value) or (isinstance(value, tuple) and bool(value) and all(map(one, value)))


def _plain_giveup(giveup: Any) -> Any:
    """``giveup`` as given: an async function's decorator wraps a plain one in a coroutine
    function of its own (``functools.wraps``, so ``__wrapped__`` is the given one)."""
    if _defining_module(giveup) == "backoff._async" and hasattr(giveup, "__wrapped__"):
        giveup = giveup.__wrapped__
    if inspect.iscoroutinefunction(giveup):
        raise TranslationError(
            "backoff.on_exception(giveup=...): a coroutine function cannot be asked in "
            "simulation; give a plain function"
        )
    return giveup


def _called(value: Any) -> Any:
    """A value backoff evaluates at call time: a callable is called with no arguments (one
    that needs some is the value itself, as backoff has it)."""
    if not callable(value):
        return value
    try:
        return value()
    except TypeError:
        return value


def _number_or_none(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if not _is_number(value):
        raise TranslationError(f"backoff.on_exception({name}={value!r}): expected a number")
    return float(value)


def _backoff_wait(
    backoff: Any, generator: Any, keywords: dict[str, Any]
) -> tuple[wait_base, stop_base | None]:
    """The wait a backoff generator yields, and the stop its running out means (if finite)."""
    name = next((n for n in _GENERATOR_KEYWORDS if getattr(backoff, n, None) is generator), None)
    if name is None:
        label = getattr(generator, "__qualname__", repr(generator))
        raise TranslationError(
            f"backoff.on_exception(wait_gen={label}): only backoff.expo, backoff.fibo, "
            "backoff.constant and backoff.runtime are translated; write the policy with "
            "tenacity to keep your own"
        )
    unknown = sorted(set(keywords) - set(_GENERATOR_KEYWORDS[name]))
    if unknown:
        raise TranslationError(
            f"backoff.on_exception(wait_gen=backoff.{name}): unknown keyword(s) "
            f"{', '.join(unknown)}; backoff.{name} takes {', '.join(_GENERATOR_KEYWORDS[name])}"
        )
    if name == "runtime":
        value = keywords.get("value")
        if not callable(value):
            raise TranslationError("backoff.runtime needs value=, a function of the error")
        return wait_from_error(value), None
    given = {key: _called(value) for key, value in keywords.items()}
    for key, value in given.items():
        if key != "interval" and value is not None and not _is_number(value):
            raise TranslationError(f"backoff.{name}({key}={value!r}): expected a number")
    if name == "expo":
        cap = given.get("max_value")
        return wait_exponential(
            multiplier=given.get("factor", 1),
            exp_base=given.get("base", 2),
            **({} if cap is None else {"max": cap}),
        ), None
    if name == "fibo":
        return wait_fibonacci(given.get("max_value")), None
    return _constant(given.get("interval", 1))


def _constant(interval: Any) -> tuple[wait_base, stop_base | None]:
    if _is_number(interval):
        return wait_fixed(interval), None
    if not isinstance(interval, list | tuple | range) or not all(map(_is_number, interval)):
        raise TranslationError(
            f"backoff.constant(interval={interval!r}): expected a number, or a list, tuple or "
            "range of numbers (an iterator could be endless)"
        )
    # backoff gives up when the intervals run out: after len(interval) retries.
    stop = stop_after_attempt(len(interval) + 1)
    if not interval:
        return wait_fixed(0), stop
    return wait_chain(*(wait_fixed(seconds) for seconds in interval)), stop


def _jittered(backoff: Any, wait: wait_base, jitter: Any) -> wait_base:
    if jitter is None:
        return wait
    if jitter is backoff.full_jitter:
        if isinstance(wait, wait_exponential):  # U(0, the exponential): tenacity has it
            return wait_random_exponential(
                multiplier=wait.multiplier, max=wait.max, exp_base=wait.exp_base
            )
        return wait_full_jitter(wait)
    if jitter is backoff.random_jitter:
        return wait + wait_random(0, 1)  # the value plus U(0, 1) s
    label = getattr(jitter, "__qualname__", repr(jitter))
    raise TranslationError(
        f"backoff.on_exception(jitter={label}): only backoff.full_jitter, "
        "backoff.random_jitter or None are translated; write the policy with tenacity to keep "
        "your own"
    )


class retry_unless_giveup(retry_base):  # noqa: N801
    """backoff's ``giveup``: retry unless it says to give up on this error."""

    def __init__(self, giveup: Callable[[BaseException], Any]) -> None:
        self.giveup = giveup

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        error = _failure(retry_state)
        return error is not None and not self.giveup(error)


class wait_fibonacci(wait_base):  # noqa: N801
    """backoff's ``fibo``: 1, 1, 2, 3, 5, ... seconds, ``max_value`` from where it is reached."""

    def __init__(self, max_value: float | None = None) -> None:
        self.max_value = max_value

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        a, b = 1, 1
        for _ in range(retry_state.attempt_number - 1):
            if self.max_value is not None and a >= self.max_value:
                break
            a, b = b, a + b
        return self.max_value if self.max_value is not None and a >= self.max_value else a


class wait_from_error(wait_base):  # noqa: N801
    """backoff's ``runtime``: the wait a function of the failed attempt's error gives."""

    def __init__(self, value: Callable[[BaseException], Any]) -> None:
        self.value = value

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        return float(self.value(_failure(retry_state)))  # type: ignore[arg-type]


class wait_full_jitter(wait_base):  # noqa: N801
    """``U(0, wait)``: backoff's ``full_jitter``, drawn through tenacity's ``random``."""

    def __init__(self, wait: wait_base) -> None:
        self.wait = wait

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        ceiling = self.wait(retry_state)
        return float(vars(tenacity.wait)["random"].uniform(0, ceiling))


class wait_within(wait_base):  # noqa: N801
    """A wait cut to the time ``max_time`` leaves (backoff's ``max_time``)."""

    def __init__(self, wait: wait_base, max_time: float) -> None:
        self.wait = wait
        self.max_time = max_time

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        elapsed = retry_state.seconds_since_start or 0.0
        return min(float(self.wait(retry_state)), self.max_time - elapsed)
