"""tenacity's common strategies compiled into plain functions of a call state, for the fast path.

Each mirror evaluates the same expression, in the same order, on the same numbers as the
tenacity method it stands for (read off tenacity 9.2.1; ``tests/test_fast_path.py`` holds a
hash of every mirrored method's source and fails when tenacity changes one), and draws its
jitter from the call's own stream exactly as the method would through ``random``. What it
saves is the calls around the arithmetic: a method call per strategy and per part of a
composite, the generator ``stop_any`` builds, and the jitter router's context lookup.

A strategy without a mirror (retrysim's own waits, the guards' stop and wait, a future
tenacity class) is returned as itself: called directly on the slim state, as
:class:`~retrysim.sim.decide.FastDecider` calls everything it cannot compile. Mirrors take
the :class:`~retrysim.sim.decide.FastCallState`; retry mirrors read the failed attempt's error
from ``state.failure`` (None after an attempt that returned a value, which none of them retries,
as tenacity's exception predicates do not). The per-error stop and wait
(:mod:`retrysim.retry.per_error`) dispatch on the family of the attempt's error, a function of
its record code (``state.error_code``), so their mirrors look it up in a table indexed by code.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

from tenacity import (
    retry_all,
    retry_any,
    retry_if_exception_type,
    retry_if_not_exception_type,
    retry_unless_exception_type,
    stop_after_attempt,
    stop_after_delay,
    stop_all,
    stop_any,
    stop_before_delay,
    wait_combine,
    wait_exponential,
    wait_exponential_jitter,
    wait_fixed,
    wait_none,
    wait_random,
    wait_random_exponential,
)

from retrysim.retry.classify import is_transient, retry_if_transient
from retrysim.retry.per_error import (
    PerErrorFamily,
    per_error_family,
    stop_after_attempt_per_error,
    wait_per_error,
)
from retrysim.sim.failures import CODE_NAMES, make_error
from retrysim.sim.streams import GOLDEN, INV53, M64

Strategy = Callable[[Any], Any]


class Memo:
    """Strategies compiled once per run, by identity, to be reused when a call's guards
    compose them anew (``policy_stop | stop_unless_allowed(chain)``). Once :meth:`freeze` is
    called it only answers: a call's own strategies are never kept, so none outlives its call.
    """

    __slots__ = ("frozen", "known")

    def __init__(self) -> None:
        self.known: dict[int, tuple[object, Strategy]] = {}
        self.frozen = False

    def freeze(self) -> None:
        self.frozen = True


def compiled(strategy: Any, memo: Memo | None = None) -> Strategy:
    """``strategy`` as a plain function of the call state (itself when it has no mirror)."""
    if memo is not None:
        known = memo.known.get(id(strategy))
        if known is not None and known[0] is strategy:
            return known[1]
    mirror = MIRRORS.get(type(strategy))
    function: Strategy = strategy if mirror is None else mirror(strategy, memo)
    if memo is not None and not memo.frozen:
        memo.known[id(strategy)] = (strategy, function)
    return function


# -- stop ---------------------------------------------------------------------------------------


def _stop_after_attempt(stop: stop_after_attempt, memo: Memo | None) -> Strategy:
    limit = stop.max_attempt_number
    return lambda state: state.attempt_number >= limit


def _stop_after_delay(stop: stop_after_delay, memo: Memo | None) -> Strategy:
    limit = stop.max_delay
    # seconds_since_start is outcome_timestamp - start_time; the fast path always has both
    return lambda state: state.outcome_timestamp - state.start_time >= limit


def _stop_before_delay(stop: stop_before_delay, memo: Memo | None) -> Strategy:
    limit = stop.max_delay
    return lambda state: state.outcome_timestamp - state.start_time + state.upcoming_sleep >= limit


def _any_of(parts: tuple[Strategy, ...]) -> Strategy:
    """``any(part(state) ...)``, as tenacity's ``stop_any`` and ``retry_any`` ask it (in order,
    stopping at the first yes)."""
    if len(parts) == 2:  # the common case (attempts | a delay or a budget), without a generator
        first, second = parts
        return lambda state: bool(first(state) or second(state))
    return lambda state: any(part(state) for part in parts)


def _all_of(parts: tuple[Strategy, ...]) -> Strategy:
    """``all(part(state) ...)``, as tenacity's ``stop_all`` and ``retry_all`` ask it."""
    return lambda state: all(part(state) for part in parts)


#: Record codes are one byte: a table indexed by code has this many rows.
CODE_ROWS = 256


@functools.cache
def code_families() -> tuple[PerErrorFamily | None, ...]:
    """Each record code's per-error family, as the error ``make_error`` raises for it has
    (code 0 and the codes past the errors, a run's answers, are of none): a function of the
    error's class and attributes alone, the same on either path."""
    families = [None, *(per_error_family(make_error(code)) for code in range(1, len(CODE_NAMES)))]
    return tuple(families + [None] * (CODE_ROWS - len(families)))


def _stop_after_attempt_per_error(
    stop: stop_after_attempt_per_error, memo: Memo | None
) -> Strategy:
    limits = tuple(stop.limit(family) for family in code_families())
    return lambda state: state.attempt_number >= limits[state.error_code]


def _stop_any(stop: stop_any, memo: Memo | None) -> Strategy:
    return _any_of(tuple(compiled(part, memo) for part in stop.stops))


def _stop_all(stop: stop_all, memo: Memo | None) -> Strategy:
    return _all_of(tuple(compiled(part, memo) for part in stop.stops))


# -- wait ---------------------------------------------------------------------------------------


def _wait_fixed(wait: wait_fixed, memo: Memo | None) -> Strategy:
    seconds = wait.wait_fixed
    return lambda state: seconds


def _wait_random(wait: wait_random, memo: Memo | None) -> Strategy:
    low, high = wait.wait_random_min, wait.wait_random_max
    return lambda state: low + (state.random() * (high - low))


def _exponential(wait: wait_exponential) -> Strategy:
    """wait_exponential's value for the state's attempt (also the top of its random variant)."""
    multiplier, top, base, bottom = wait.multiplier, wait.max, wait.exp_base, wait.min
    floor = max(0, bottom)
    # tenacity checks, every call, whether the exponent is past the point where the value
    # reaches ``max``; the point is the same every call, so it is worked out once here.
    past = None
    if multiplier > 0 and top > 0 and base > 1 and math.isfinite(top):
        past = math.log(top, base) - math.log(multiplier, base)

    def exponential(state: Any) -> Any:
        exponent = state.attempt_number - 1
        if past is not None and exponent > past:
            return max(floor, top)
        try:
            result = multiplier * base**exponent
        except OverflowError:
            return top
        return max(floor, min(result, top))

    return exponential


def _wait_exponential(wait: wait_exponential, memo: Memo | None) -> Strategy:
    return _exponential(wait)


def _wait_random_exponential(wait: wait_random_exponential, memo: Memo | None) -> Strategy:
    high_of, bottom = _exponential(wait), wait.min
    return lambda state: state.uniform(bottom, high_of(state))


#: Attempts whose ``multiplier * base ** (attempt - 1)`` a wait works out before the run.
KNOWN_POWERS = 64


def _powers(multiplier: Any, base: Any) -> list[Any]:
    """``multiplier * base ** exponent`` for exponents 0 .. KNOWN_POWERS - 1, each the very
    number tenacity's expression gives (None where it overflows), so a wait reads it instead
    of raising ``base`` to a power on every attempt."""
    powers: list[Any] = []
    for exponent in range(KNOWN_POWERS):
        try:
            powers.append(multiplier * base**exponent)
        except OverflowError:
            powers.append(None)
    return powers


def _wait_exponential_jitter(wait: wait_exponential_jitter, memo: Memo | None) -> Strategy:
    multiplier, top, base, spread = wait.multiplier, wait.max, wait.exp_base, wait.jitter
    floor = max(0, wait.min)
    powers = _powers(multiplier, base)

    def exponential_jitter(state: Any) -> Any:
        # state.uniform(0, spread), written out: this is the draw of every documented wait
        state.state = z = (state.state + GOLDEN) & M64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        jitter = 0 + (spread - 0) * (((z ^ (z >> 31)) >> 11) * INV53)
        exponent = state.attempt_number - 1
        power = powers[exponent] if exponent < KNOWN_POWERS else None
        if power is not None:
            result = power + jitter  # (multiplier * base ** exponent) + jitter, as tenacity's
        else:
            try:
                result = multiplier * base**exponent + jitter
            except OverflowError:
                result = top
        # max(floor, min(result, top)), without the two calls: the same object either way
        result = top if top < result else result
        return result if result > floor else floor

    return exponential_jitter


def _wait_combine(wait: wait_combine, memo: Memo | None) -> Strategy:
    parts = tuple(compiled(part, memo) for part in wait.wait_funcs)
    return lambda state: float(sum(part(state) for part in parts))


def _wait_per_error(wait: wait_per_error, memo: Memo | None) -> Strategy:
    chosen = {f: compiled(wait.strategy(f), memo) for f in dict.fromkeys(code_families())}
    waits = tuple(chosen[family] for family in code_families())
    return lambda state: waits[state.error_code](state)


# -- retry --------------------------------------------------------------------------------------


def _retry_if_exception_type(retry: retry_if_exception_type, memo: Memo | None) -> Strategy:
    kinds = retry.exception_types
    return lambda state: isinstance(state.failure, kinds)


def _retry_if_not_exception_type(retry: retry_if_not_exception_type, memo: Memo | None) -> Strategy:
    kinds = retry.exception_types
    # tenacity's says no to an attempt that returned (an answer): no failure, no retry
    return lambda state: state.failure is not None and not isinstance(state.failure, kinds)


def _retry_unless_exception_type(retry: retry_unless_exception_type, memo: Memo | None) -> Strategy:
    kinds = retry.exception_types
    # tenacity's says yes to an attempt that returned (an answer): retry_all's other parts decide
    return lambda state: state.failure is None or not isinstance(state.failure, kinds)


def _retry_all(retry: retry_all, memo: Memo | None) -> Strategy:
    return _all_of(tuple(compiled(part, memo) for part in retry.retries))


def _retry_any(retry: retry_any, memo: Memo | None) -> Strategy:
    return _any_of(tuple(compiled(part, memo) for part in retry.retries))


def _retry_if_transient(retry: retry_if_transient, memo: Memo | None) -> Strategy:
    serialization = retry.serialization
    return lambda state: (
        state.failure is not None and is_transient(state.failure, serialization=serialization)
    )


#: Every mirrored tenacity class (and retrysim's retry_if_transient and per-error stop and
#: wait), with what compiles it.
MIRRORS: dict[type, Callable[[Any, Memo | None], Strategy]] = {
    stop_after_attempt: _stop_after_attempt,
    stop_after_delay: _stop_after_delay,
    stop_before_delay: _stop_before_delay,
    stop_any: _stop_any,
    stop_all: _stop_all,
    stop_after_attempt_per_error: _stop_after_attempt_per_error,
    wait_fixed: _wait_fixed,
    wait_none: _wait_fixed,
    wait_random: _wait_random,
    wait_exponential: _wait_exponential,
    wait_random_exponential: _wait_random_exponential,
    wait_exponential_jitter: _wait_exponential_jitter,
    wait_combine: _wait_combine,
    wait_per_error: _wait_per_error,
    retry_if_exception_type: _retry_if_exception_type,
    retry_if_not_exception_type: _retry_if_not_exception_type,
    retry_unless_exception_type: _retry_unless_exception_type,
    retry_all: _retry_all,
    retry_any: _retry_any,
    retry_if_transient: _retry_if_transient,
}
