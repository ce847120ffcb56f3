"""The policy options, each defined once: name, type, default, validation, description.

Everything that takes or shows a policy option derives from :class:`PolicyOptions`: the policy
builder, the four decorators and ``execute_with_retry`` (their keyword arguments), a scenario's
``[policy]`` table (``PolicySpec`` subclasses this model, so ``--set policy.*`` follows), fidelity
mode, the CLI's "where did this value come from" column, the run report's header and
``retrysim settings``. Adding an option is one field here plus its behaviour where it acts.

``None`` always means "not given": the value then comes from the ``RETRY__*`` settings (the
fields marked :class:`FromSettings`) or from the option's resolved default. An explicit value
wins, falsy or not, so ``min_wait=0.0`` or ``max_attempts=1`` are honoured.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from retrysim.names import MAX_ATTEMPTS_LIMIT
from retrysim.retry.adaptive import AdaptiveOptions
from retrysim.retry.breaker import BreakerOptions
from retrysim.retry.budget import BudgetOptions
from retrysim.retry.mechanisms import MECHANISM_NAMES as MECHANISM_NAMES
from retrysim.retry.mechanisms import MECHANISMS, mechanism_setting

if TYPE_CHECKING:
    from retrysim.retry.settings import RetrySettings


@dataclass(frozen=True)
class FromSettings:
    """Marks an option whose unset value comes from the settings.

    ``per_operation`` options read ``RETRY__<OPERATION>_<NAME>`` (``worker_max_attempts``);
    the others read ``RETRY__<NAME>`` (``profile``, ``jitter``).
    """

    per_operation: bool


PER_OPERATION = FromSettings(per_operation=True)
GLOBAL = FromSettings(per_operation=False)

#: Seconds: finite, not negative, and at most about 31 years (no wait may overflow a clock).
MAX_SECONDS = 1e9
_NonNegative = Field(ge=0, le=MAX_SECONDS, allow_inf_nan=False, json_schema_extra={"unit": "s"})


class PolicyOptions(BaseModel):
    """Explicit overrides of a retry policy; ``None`` means "use the setting or default"."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    max_attempts: Annotated[
        int | None,
        Field(
            ge=1,
            le=MAX_ATTEMPTS_LIMIT,
            description="attempts in all, the first one included (1 = no retry)",
        ),
        PER_OPERATION,
    ] = None
    min_wait: Annotated[
        float | None,
        _NonNegative,
        Field(description="seconds; the exponential's base, or a floor once multiplier is set"),
        PER_OPERATION,
    ] = None
    max_wait: Annotated[
        float | None,
        _NonNegative,
        Field(description="seconds; no single wait is longer (a Retry-After hint aside)"),
        PER_OPERATION,
    ] = None
    multiplier: Annotated[
        float | None,
        Field(
            gt=0,
            le=MAX_SECONDS,
            allow_inf_nan=False,
            json_schema_extra={"unit": "s"},
            description=(
                "seconds; the exponential's base as in tenacity's wait_exponential(multiplier, "
                "min, max); unset: min_wait (bindu: 1)"
            ),
        ),
    ] = None
    profile: Annotated[
        str | None, Field(description="backoff profile (the wait formula)"), GLOBAL
    ] = None
    jitter: Annotated[
        float | None,
        _NonNegative,
        Field(description="seconds of additive jitter (documented profile)"),
        GLOBAL,
    ] = None
    max_delay: Annotated[
        float | None,
        Field(
            gt=0,
            le=MAX_SECONDS,
            allow_inf_nan=False,
            json_schema_extra={"unit": "s"},
            description="seconds; also stop once a call took this",
        ),
    ] = None
    respect_retry_after: Annotated[
        bool, Field(description="wait at least a server's Retry-After hint")
    ] = False
    # The resilience mechanisms: each a table of knobs, every knob unset falling back to
    # RETRY__<OPERATION>_<MECHANISM>_<KNOB> (see retrysim.retry.resilience).
    breaker: Annotated[
        BreakerOptions, Field(description="circuit breaker (retrysim.retry.breaker)")
    ] = BreakerOptions()
    budget: Annotated[BudgetOptions, Field(description="retry budgets (retrysim.retry.budget)")] = (
        BudgetOptions()
    )
    adaptive: Annotated[
        AdaptiveOptions,
        Field(description="adaptive backoff and send-rate limiter (retrysim.retry.adaptive)"),
    ] = AdaptiveOptions()

    @field_validator("breaker", "budget", "adaptive", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        """``breaker=True`` turns one on with its settings; ``breaker="llm-api"`` names it."""
        if isinstance(value, bool):
            return {"enabled": value}
        if isinstance(value, str):
            return {"enabled": True, "name": value}
        return value

    @field_validator("max_attempts", mode="before")
    @classmethod
    def _not_a_bool(cls, value: Any) -> Any:
        if isinstance(value, bool):  # True is an int to Python, never an attempt count
            raise ValueError(f"max_attempts must be a whole number, got {value!r}")
        return value

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, value: str | None) -> str | None:
        from retrysim.retry.profiles import check_profile

        return None if value is None else check_profile(value)

    @model_validator(mode="after")
    def _waits_ordered(self) -> PolicyOptions:
        if (
            self.min_wait is not None
            and self.max_wait is not None
            and self.min_wait > self.max_wait
        ):
            raise ValueError(f"min_wait ({self.min_wait}) must be <= max_wait ({self.max_wait})")
        return self

    def given(self) -> frozenset[str]:
        """Names of the options set explicitly (a value other than "not given"); a mechanism
        is given when any of its knobs is."""
        fields = type(self).model_fields
        scalars = (name for name in OPTION_NAMES if getattr(self, name) != fields[name].default)
        mechanisms = (name for name in MECHANISM_NAMES if getattr(self, name).model_fields_set)
        return frozenset((*scalars, *mechanisms))

    def resolved(self, operation: str, settings: RetrySettings) -> PolicyOptions:
        """Every option filled in: explicit values, then the settings, then the defaults."""
        values: dict[str, Any] = {}
        for name in OPTION_NAMES:
            value = getattr(self, name)
            source = setting_source(name)
            if value is None and source is not None:
                value = getattr(settings, settings_field(name, operation))
            values[name] = value
        for name in MECHANISM_NAMES:
            knobs: BaseModel = getattr(self, name)
            values[name] = {
                knob: getattr(knobs, knob)
                if knob in knobs.model_fields_set
                else getattr(settings, mechanism_setting(operation, name, knob))
                for knob in type(knobs).model_fields
            }
        return PolicyOptions.model_validate(values)


def setting_source(name: str) -> FromSettings | None:
    """How option ``name`` falls back to the settings (None: it does not)."""
    for item in PolicyOptions.model_fields[name].metadata:
        if isinstance(item, FromSettings):
            return item
    return None


def settings_field(name: str, operation: str) -> str:
    """The ``RetrySettings`` field an option falls back to (``worker_max_attempts``)."""
    source = setting_source(name)
    if source is None:
        raise KeyError(f"option {name!r} has no setting")
    return f"{operation}_{name}" if source.per_operation else name


#: Every single-valued option, in declaration order (what reports and documents list).
OPTION_NAMES: tuple[str, ...] = tuple(
    name for name in PolicyOptions.model_fields if name not in MECHANISMS
)


#: Options read from ``RETRY__<OPERATION>_<NAME>`` when not given.
PER_OPERATION_OPTIONS: tuple[str, ...] = tuple(
    name for name in OPTION_NAMES if (s := setting_source(name)) is not None and s.per_operation
)
#: Options read from ``RETRY__<NAME>`` when not given.
GLOBAL_OPTIONS: tuple[str, ...] = tuple(
    name for name in OPTION_NAMES if (s := setting_source(name)) is not None and not s.per_operation
)


def parse_options(options: dict[str, Any], where: str = "retry option") -> PolicyOptions:
    """Validate keyword overrides into :class:`PolicyOptions`.

    An unknown name is a ``TypeError`` (it is a mistake in code, like an unknown keyword
    argument) with the closest valid name suggested; a bad value is a ``ValueError`` naming
    the option and what is allowed.
    """
    allowed = (*OPTION_NAMES, *MECHANISM_NAMES)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, allowed, n=1)
            hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise TypeError(f"unknown {where}(s) {', '.join(hints)}; allowed: {', '.join(allowed)}")
    try:
        return PolicyOptions.model_validate(options)
    except ValidationError as error:
        raise ValueError(explain(error)) from None


def explain(error: ValidationError) -> str:
    """One clause per problem: ``max_attempts must be ...: got 0``."""
    parts = []
    for item in error.errors():
        loc = ".".join(str(p) for p in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        got = f" (got {item['input']!r})" if loc else ""
        parts.append(f"{loc}: {message}{got}" if loc else message)
    return "; ".join(parts)
