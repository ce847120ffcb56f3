"""The one policy builder: settings + options + profile -> tenacity stop / wait / retry.

The production decorators and the simulator both call :func:`build_policy`, so what is simulated
is what ships. The options are :class:`~retrysim.retry.options.PolicyOptions` (each defined once
there); the wait formula belongs to the profile object (:mod:`retrysim.retry.profiles`). Overrides
are explicit: ``None`` means "not given", so ``min_wait=0.0`` or ``max_attempts=1`` win over the
settings. An error family with its own attempts or waits (``rate_limited``, ...) gets them through
a stop and a wait that dispatch on the latest error's family (:mod:`retrysim.retry.per_error`);
a policy without any keeps tenacity's plain ``stop_after_attempt`` and its profile's wait.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from pydantic import ValidationError
from tenacity import (
    AsyncRetrying,
    Retrying,
    retry_all,
    retry_unless_exception_type,
    stop_after_attempt,
    stop_after_delay,
)
from tenacity.retry import retry_base
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from retrysim.retry.adaptive import pacing_bound
from retrysim.retry.effective import resolve
from retrysim.retry.exceptions import GuardRefusedError
from retrysim.retry.guards import GuardChain, GuardSpec
from retrysim.retry.options import (
    ERROR_POLICY_NAMES,
    OPTION_NAMES,
    ErrorPolicy,
    PolicyOptions,
    explain,
    parse_options,
)
from retrysim.retry.per_error import (
    per_error_family,
    stop_after_attempt_per_error,
    wait_per_error,
)
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
    def error_policies(self) -> dict[str, ErrorPolicy]:
        """Each error family's own table (a knob None: it inherits the policy's)."""
        return self.options.error_policies()

    def attempts_for(self, error: BaseException | None) -> int:
        """The attempts a call may make when ``error`` is its latest error (its family's limit,
        else ``max_attempts``; :mod:`retrysim.retry.per_error`)."""
        family = None if error is None else per_error_family(error)
        own = self.error_policies[family].max_attempts if family is not None else None
        return self.max_attempts if own is None else own

    @property
    def most_attempts(self) -> int:
        """The most attempts any call can make, whatever its errors."""
        limits = (table.max_attempts for table in self.error_policies.values())
        return max([self.max_attempts, *(n for n in limits if n is not None)])

    def for_family(self, family: str) -> RetryPolicy:
        """This policy as a call whose every error is of ``family`` meets it: the family's own
        attempts and waits in place of the policy's, the same retry and guards. Its
        :meth:`schedule`, :meth:`wait_range` and :meth:`worst_case_total` are the family's."""
        if family not in ERROR_POLICY_NAMES:
            raise ValueError(
                f"unknown error family {family!r}; allowed: {', '.join(ERROR_POLICY_NAMES)}"
            )
        own = {k: v for k, v in self.error_policies[family].model_dump().items() if v is not None}
        blank = {name: ErrorPolicy() for name in ERROR_POLICY_NAMES}
        options = self.options.model_copy(update={**own, **blank})
        stop, wait = _stop_and_wait(self.operation, options)
        return replace(self, options=options, stop=stop, wait=wait)

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
            **{name: _every_knob(table) for name, table in self.options.error_policies().items()},
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
    stop, wait = _stop_and_wait(operation, resolved)
    if retry is None:
        retry = profile.retry()
    guards = (*mechanism_guards(operation, resolved.mechanisms()), *guards)
    guards = (*guards, *pacing_bound(resolved.max_delay, resolved.mechanisms()))
    if guards:  # a guard's refusal (an open breaker) is never retried, whatever retry says
        # (tenacity's "unless" form says yes to a returned result, so retry_if_result still
        # decides on results; retry_if_not_exception_type would say no to every result)
        retry = _never_a_refusal(retry)
    return RetryPolicy(
        operation=operation,
        options=resolved,
        stop=stop,
        wait=wait,
        retry=retry,  # type: ignore[arg-type]  # tenacity accepts plain predicates too
        guards=guards,
        overrides=frozenset(given),
    )


def _never_a_refusal(retry: Any) -> Any:
    """``retry``, except that a guard's refusal is never retried. An async strategy (tenacity's
    ``tenacity.asyncio`` ones) gets tenacity's async ``retry_all``, which awaits it: the sync one
    would take the coroutine it returns for a yes and retry every result."""
    from retrysim.retry.hooks import is_async_callable

    refusal = retry_unless_exception_type(GuardRefusedError)
    if is_async_callable(retry):
        from tenacity.asyncio import retry_all as async_retry_all

        return async_retry_all(refusal, retry)
    return retry_all(refusal, retry)


def _every_knob(table: ErrorPolicy) -> dict[str, Any]:
    """An error family's table with every knob (None: inherited), given or not."""
    return {knob: getattr(table, knob) for knob in ErrorPolicy.model_fields}


def _explicit(options: PolicyOptions) -> dict[str, Any]:
    return {name: getattr(options, name) for name in options.given()}


def _stop_and_wait(operation: str, resolved: PolicyOptions) -> tuple[stop_base, wait_base]:
    """The stop and the wait of resolved options: attempts (per error family when one has its
    own), a delay limit, the mechanisms' stops; the profile's formula (per error family when
    one has its own waits), honouring Retry-After where asked."""
    default = _given(resolved.max_attempts)
    limits = {
        name: table.max_attempts
        for name, table in resolved.error_policies().items()
        if table.max_attempts is not None
    }
    stop: stop_base = (
        stop_after_attempt_per_error(default, limits) if limits else stop_after_attempt(default)
    )
    if resolved.max_delay is not None:
        stop = stop | stop_after_delay(resolved.max_delay)
    for extra in mechanism_stops(resolved.mechanisms()):  # a per-call time budget
        stop = stop | extra

    profile = get_profile(_given(resolved.profile))
    formulas: dict[tuple[float, float], wait_base] = {}

    def waiting(min_wait: float, max_wait: float, respect_retry_after: bool) -> wait_base:
        # One formula object per wait range, so a family that differs only in honouring
        # Retry-After shares the policy's (a decorrelated wait remembers its previous wait).
        formula = formulas.get((min_wait, max_wait))
        if formula is None:
            shape = profile.shape(
                operation, min_wait, max_wait, _given(resolved.jitter), resolved.multiplier
            )
            formula = formulas[(min_wait, max_wait)] = profile.wait(shape)
        if respect_retry_after:
            return wait_retry_after(formula, cap=retry_after_cap(max_wait))
        return formula

    low, high = _given(resolved.min_wait), _given(resolved.max_wait)
    wait = waiting(low, high, resolved.respect_retry_after)
    by_family = {
        name: waiting(
            low if table.min_wait is None else table.min_wait,
            high if table.max_wait is None else table.max_wait,
            (
                resolved.respect_retry_after
                if table.respect_retry_after is None
                else table.respect_retry_after
            ),
        )
        for name, table in resolved.error_policies().items()
        if table.waits_differ()
    }
    return stop, (wait_per_error(wait, by_family) if by_family else wait)
