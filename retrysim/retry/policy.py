"""The one policy builder: settings + options + profile -> tenacity stop / wait / retry.

The production decorators and the simulator both call :func:`build_policy`, so what is simulated
is what ships. The options are :class:`~retrysim.retry.options.PolicyOptions` (each defined once
there); the wait formula belongs to the profile object (:mod:`retrysim.retry.profiles`). Overrides
are explicit: ``None`` means "not given", so ``min_wait=0.0`` or ``max_attempts=1`` win over the
settings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import ValidationError
from tenacity import (
    AsyncRetrying,
    Retrying,
    retry_all,
    retry_if_not_exception_type,
    stop_after_attempt,
    stop_after_delay,
)
from tenacity.retry import retry_base
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from retrysim.retry.effective import resolve
from retrysim.retry.exceptions import GuardRefusedError
from retrysim.retry.guards import GuardChain, GuardSpec
from retrysim.retry.options import OPTION_NAMES, PolicyOptions, explain, parse_options
from retrysim.retry.profiles import REGISTRY, Profile, Shape, get_profile
from retrysim.retry.resilience import (
    Clock,
    mechanism_guards,
    mechanism_stops,
    stop_unless_allowed,
    wait_stretched,
)
from retrysim.retry.settings import OPERATIONS, RetrySettings, get_settings
from retrysim.retry.waits import retry_after_cap, wait_retry_after

#: The profile descriptions shown by ``retrysim settings`` and the docs (from the registry).
PROFILE_FORMULAS: dict[str, str] = {name: p.formula for name, p in REGISTRY.items()}


@dataclass(frozen=True)
class RetryPolicy:
    """An effective retry policy: its resolved options and the real tenacity strategies."""

    operation: str
    options: PolicyOptions  # every option resolved (None only where None is the value)
    stop: stop_base
    wait: wait_base
    retry: retry_base
    guards: tuple[GuardSpec, ...] = ()
    overrides: frozenset[str] = field(default_factory=frozenset)

    # The numbers every profile needs, typed; any other option is ``policy.options.<name>``.
    @property
    def max_attempts(self) -> int:
        return _given(self.options.max_attempts)

    @property
    def min_wait(self) -> float:
        return _given(self.options.min_wait)

    @property
    def max_wait(self) -> float:
        return _given(self.options.max_wait)

    @property
    def jitter(self) -> float:
        return _given(self.options.jitter)

    @property
    def profile(self) -> str:
        return _given(self.options.profile)

    @property
    def max_delay(self) -> float | None:
        return self.options.max_delay

    @property
    def respect_retry_after(self) -> bool:
        return self.options.respect_retry_after

    @property
    def profile_object(self) -> Profile:
        return get_profile(self.profile)

    @property
    def shape(self) -> Shape:
        """The numbers the profile's formula is evaluated with."""
        return self.profile_object.shape(
            self.operation, self.min_wait, self.max_wait, self.jitter, self.options.multiplier
        )

    def retrying(
        self, chain: GuardChain | None = None, clock: Clock | None = None, **kwargs: Any
    ) -> Retrying:
        """A tenacity ``Retrying`` with this policy's strategies (extra kwargs: hooks, sleep).

        ``chain`` is the call's guards and ``clock`` their time: a retry budget then joins
        the stop and adaptive backoff stretches the wait (a call with such guards needs a
        ``Retrying`` of its own).
        """
        return Retrying(**self._strategies(chain, clock), reraise=True, **kwargs)

    def async_retrying(
        self, chain: GuardChain | None = None, clock: Clock | None = None, **kwargs: Any
    ) -> AsyncRetrying:
        """A tenacity ``AsyncRetrying`` with this policy's strategies (see :meth:`retrying`)."""
        return AsyncRetrying(**self._strategies(chain, clock), reraise=True, **kwargs)

    def _strategies(self, chain: GuardChain | None, clock: Clock | None) -> dict[str, Any]:
        stop, wait = self.stop, self.wait
        if chain is not None and chain.shapes_retries():
            assert clock is not None, "guards that shape retries need the guards' clock"
            if chain.gates:
                stop = stop | stop_unless_allowed(chain, clock)
            if chain.scalers:
                wait = wait_stretched(wait, chain, clock)
        return {"stop": stop, "wait": wait, "retry": self.retry}

    def strategies(
        self, chain: GuardChain | None = None, clock: Clock | None = None
    ) -> tuple[stop_base, wait_base, retry_base]:
        """(stop, wait, retry) as :meth:`retrying` composes them for a call with ``chain``."""
        parts = self._strategies(chain, clock)
        return parts["stop"], parts["wait"], parts["retry"]

    def wait_range(self, retry_number: int) -> tuple[float, float]:
        """Smallest and largest possible wait before retry ``retry_number`` (1 = first retry).

        Derived from the profile's formula; tests check sampled waits always fall inside.
        A ``retry_after`` hint from the server can lengthen a wait beyond this range.
        """
        return self.profile_object.wait_range(self.shape, retry_number)

    def schedule(self, limit: int = 100) -> list[tuple[int, float, float, float]]:
        """Per retry n: (n, min wait, max wait, worst-case total time waited through retry n).

        At most ``limit`` rows: a policy of a billion attempts has a billion retries.
        """
        rows, total = [], 0.0
        for n in range(1, min(self.max_attempts, limit + 1)):
            lo, hi = self.wait_range(n)
            total += hi
            rows.append((n, lo, hi, total))
        return rows

    def worst_case_total(self) -> float:
        """Longest possible total wait across all retries (exact, without listing them all).

        Every profile's longest wait grows with n until it reaches max_wait and stays there, so
        once two consecutive retries both sit at max_wait the rest add max_wait each.
        """
        total, previous = 0.0, None
        for n in range(1, self.max_attempts):
            hi = self.wait_range(n)[1]
            if hi == previous == self.max_wait:
                return total + hi * (self.max_attempts - n)
            total += hi
            previous = hi
        return total

    def describe(self) -> dict[str, Any]:
        """The effective numbers as plain data (what a run report and ``--json`` show)."""
        return {
            "operation": self.operation,
            **{name: getattr(self.options, name) for name in OPTION_NAMES},
            **{name: table.model_dump() for name, table in self.options.mechanisms().items()},
            "overrides": sorted(self.overrides),
        }


T = TypeVar("T")


def _given(value: T | None) -> T:
    assert value is not None, "resolved options always carry the settings' numbers"
    return value


def build_policy(
    operation: str,
    settings: RetrySettings | None = None,
    *,
    retry: retry_base | Callable[..., bool] | None = None,
    guards: Sequence[GuardSpec] = (),
    options: PolicyOptions | None = None,
    **overrides: Any,
) -> RetryPolicy:
    """Build the effective policy for ``operation``.

    ``settings`` defaults to the current process settings (``RETRY__*`` / ``.env``). The
    policy options come as keywords (``max_attempts=5``; see :class:`PolicyOptions`) or as an
    ``options`` object; every one left as ``None`` falls back to the settings. Anything given is
    validated, so an impossible combination fails here with the option's name.
    """
    if operation not in OPERATIONS:
        raise ValueError(f"unknown operation {operation!r}; allowed: {', '.join(OPERATIONS)}")
    settings = settings if settings is not None else get_settings()
    if options is None:
        options = parse_options(overrides)
    elif overrides:
        options = parse_options({**_explicit(options), **overrides})
    try:
        resolved = resolve(options, operation, settings)
    except ValidationError as error:
        raise ValueError(explain(error)) from None
    given = set(options.given())
    if retry is not None:
        given.add("retry")

    profile = get_profile(_given(resolved.profile))
    stop: stop_base = stop_after_attempt(_given(resolved.max_attempts))
    if resolved.max_delay is not None:
        stop = stop | stop_after_delay(resolved.max_delay)
    tables = resolved.mechanisms()
    for extra in mechanism_stops(tables):  # a per-call time budget
        stop = stop | extra
    shape = profile.shape(
        operation,
        _given(resolved.min_wait),
        _given(resolved.max_wait),
        _given(resolved.jitter),
        resolved.multiplier,
    )
    wait = profile.wait(shape)
    if resolved.respect_retry_after:
        wait = wait_retry_after(wait, cap=retry_after_cap(_given(resolved.max_wait)))
    if retry is None:
        retry = profile.retry()
    guards = (*mechanism_guards(operation, tables), *guards)
    if guards:  # a guard's refusal (an open breaker) is never retried, whatever retry says
        retry = retry_all(retry_if_not_exception_type(GuardRefusedError), retry)
    return RetryPolicy(
        operation=operation,
        options=resolved,
        stop=stop,
        wait=wait,
        retry=retry,  # type: ignore[arg-type]  # tenacity accepts plain predicates too
        guards=guards,
        overrides=frozenset(given),
    )


def _explicit(options: PolicyOptions) -> dict[str, Any]:
    return {name: getattr(options, name) for name in options.given()}
