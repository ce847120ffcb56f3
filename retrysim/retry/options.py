"""The policy options, each defined once: name, type, default, validation, description.

Everything that takes or shows a policy option derives from :class:`PolicyOptions`: the policy
builder, the four decorators and ``execute_with_retry`` (their keyword arguments), a scenario's
``[policy]`` table (``PolicySpec`` subclasses this model, so ``--set policy.*`` follows), fidelity
mode, the CLI's "where did this value come from" column, the run report's header and
``retrysim settings``. Adding an option is one field here plus its behaviour where it acts.

``None`` always means "not given": the value then comes from the ``RETRY__*`` settings (the
fields marked :class:`FromSettings`) or from the option's resolved default. An explicit value
wins, falsy or not, so ``min_wait=0.0`` or ``max_attempts=1`` are honoured. Which one is in
effect, and from where, is :mod:`retrysim.retry.effective`'s to say.

The settings are generated from this model: each :class:`FromSettings` option is a
``RETRY__*`` field with the option's type and limits and the default its mark gives, and each
resilience mechanism's knobs (registered in :mod:`retrysim.retry.mechanisms`, which also makes
the mechanism fields here) are ``RETRY__<OPERATION>_<MECHANISM>_<KNOB>`` fields, and so are each
error family's (:class:`ErrorPolicy`, ``RETRY__<OPERATION>_RATE_LIMITED_MAX_ATTEMPTS``; the
families and what they mean: :mod:`retrysim.retry.per_error`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from retrysim.names import MAX_ATTEMPTS_LIMIT, OPERATIONS
from retrysim.retry.knobs import Knobs
from retrysim.retry.mechanisms import MECHANISM_NAMES as MECHANISM_NAMES
from retrysim.retry.mechanisms import MECHANISMS, REGISTRY, mechanism_setting
from retrysim.retry.per_error import PER_ERROR_FAMILIES
from retrysim.suggest import hint

if TYPE_CHECKING:
    from retrysim.retry.adaptive import AdaptiveOptions
    from retrysim.retry.breaker import BreakerOptions
    from retrysim.retry.budget import BudgetOptions
    from retrysim.retry.hedge import HedgeOptions


@dataclass(frozen=True)
class FromSettings:
    """Marks an option whose unset value comes from the settings, and the setting's default.

    ``per_operation`` options read ``RETRY__<OPERATION>_<NAME>`` (``worker_max_attempts``) and
    have a default per operation; the others read ``RETRY__<NAME>`` (``profile``, ``jitter``).
    The settings' fields are generated from these marks (:mod:`retrysim.retry.settings`), with
    the option's own type and limits, so the two cannot disagree. Make one with
    :func:`per_operation` or :func:`shared_setting`.
    """

    per_operation: bool
    defaults: tuple[tuple[str, Any], ...]  # (operation, default); one ("", default) if shared

    def default(self, operation: str) -> Any:
        """The setting's documented default for ``operation`` (any, for a shared setting)."""
        values = dict(self.defaults)
        return values[operation] if self.per_operation else values[""]


def per_operation(**defaults: Any) -> FromSettings:
    """Read from ``RETRY__<OPERATION>_<NAME>``, defaulting to ``defaults[operation]``."""
    missing = [operation for operation in OPERATIONS if operation not in defaults]
    unknown = sorted(set(defaults) - set(OPERATIONS))
    if missing or unknown:
        raise TypeError(f"per_operation needs one default per operation {OPERATIONS}")
    return FromSettings(True, tuple((operation, defaults[operation]) for operation in OPERATIONS))


def shared_setting(default: Any) -> FromSettings:
    """Read from ``RETRY__<NAME>`` (every operation alike), defaulting to ``default``."""
    return FromSettings(False, (("", default),))


#: Seconds: finite, not negative, and at most about 31 years (no wait may overflow a clock).
MAX_SECONDS = 1e9
_NonNegative = Field(ge=0, le=MAX_SECONDS, allow_inf_nan=False, json_schema_extra={"unit": "s"})
#: Seconds that must be more than 0 (a multiplier, a deadline, a timeout).
_Positive = Field(gt=0, le=MAX_SECONDS, allow_inf_nan=False, json_schema_extra={"unit": "s"})


class _AttemptsAndWaits:
    """The checks an attempts-and-waits table shares with the policy itself (written once):
    ``max_attempts`` is a whole number, not a bool, and ``min_wait`` is not above ``max_wait``.
    A mixin of validators only; each model declares its own fields (descriptions and settings
    differ)."""

    if TYPE_CHECKING:
        min_wait: float | None
        max_wait: float | None

    @field_validator("max_attempts", mode="before")
    @classmethod
    def _not_a_bool(cls, value: Any) -> Any:
        if isinstance(value, bool):  # True is an int to Python, never an attempt count
            raise ValueError(f"max_attempts must be a whole number, got {value!r}")
        return value

    @model_validator(mode="after")
    def _waits_ordered(self) -> Self:
        if (
            self.min_wait is not None
            and self.max_wait is not None
            and self.min_wait > self.max_wait
        ):
            raise ValueError(f"min_wait ({self.min_wait}) must be <= max_wait ({self.max_wait})")
        return self


class ErrorPolicy(_AttemptsAndWaits, Knobs):
    """``[policy.<family>]`` / ``RETRY__<OPERATION>_<FAMILY>_*``: an error family's own
    attempts and waits, each knob unset inheriting the policy's. A call stops when its attempts
    reach the limit of its latest error's family; the wait after an error is its family's.

    The families and the rule: :mod:`retrysim.retry.per_error`.
    """

    max_attempts: Annotated[
        int | None,
        Field(
            ge=1,
            le=MAX_ATTEMPTS_LIMIT,
            description="attempts in all for a call whose latest error is of this family",
        ),
    ] = None
    min_wait: Annotated[
        float | None,
        _NonNegative,
        Field(description="seconds; min_wait in the profile's formula after such an error"),
    ] = None
    max_wait: Annotated[
        float | None,
        _NonNegative,
        Field(description="seconds; max_wait in the profile's formula after such an error"),
    ] = None
    respect_retry_after: Annotated[
        bool | None, Field(description="wait at least the Retry-After hint of such an error")
    ] = None

    def waits_differ(self) -> bool:
        """Whether a wait knob is set (else the family waits as the policy does)."""
        return any(
            value is not None for value in (self.min_wait, self.max_wait, self.respect_retry_after)
        )


def _error_annotations() -> dict[str, Any]:
    """Each per-error family's table as a field's annotation, with its description."""
    return {
        name: Annotated[ErrorPolicy, Field(description=f"own attempts and waits {about}")]
        for name, about in PER_ERROR_FAMILIES.items()
    }


def _known_profile(value: str) -> str:
    from retrysim.retry.profiles import check_profile

    return check_profile(value)


#: A profile's name, checked against the registry (a profile registered in code counts). In the
#: type, so the generated ``RETRY__PROFILE`` setting checks it too.
ProfileName = Annotated[str, AfterValidator(_known_profile)]


def _mechanism_annotations() -> dict[str, Any]:
    """Each registered mechanism's table as a field's annotation, with its description."""
    return {
        name: Annotated[entry.knobs, Field(description=entry.description)]
        for name, entry in REGISTRY.items()
    }


def _mechanism_defaults() -> dict[str, Knobs]:
    """Each table's default: every knob unset, so each falls back to its setting."""
    return {name: entry.knobs() for name, entry in REGISTRY.items()}


class PolicyOptions(_AttemptsAndWaits, BaseModel):
    """Explicit overrides of a retry policy; ``None`` means "use the setting or default"."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    max_attempts: Annotated[
        int | None,
        Field(
            ge=1,
            le=MAX_ATTEMPTS_LIMIT,
            description="attempts in all, the first one included (1 = no retry)",
        ),
        per_operation(worker=3, storage=5, scheduler=3, api=4),
    ] = None
    min_wait: Annotated[
        float | None,
        _NonNegative,
        Field(description="seconds; the exponential's base, or a floor once multiplier is set"),
        per_operation(worker=1.0, storage=0.5, scheduler=1.0, api=1.0),
    ] = None
    max_wait: Annotated[
        float | None,
        _NonNegative,
        Field(description="seconds; no single wait is longer (a Retry-After hint aside)"),
        per_operation(worker=10.0, storage=5.0, scheduler=8.0, api=15.0),
    ] = None
    multiplier: Annotated[
        float | None,
        _Positive,
        Field(
            description=(
                "seconds; the exponential's base as in tenacity's wait_exponential(multiplier, "
                "min, max); unset: min_wait (bindu: 1)"
            ),
        ),
    ] = None
    profile: Annotated[
        ProfileName | None,
        Field(description="backoff profile (the wait formula)"),
        shared_setting("documented"),
    ] = None
    jitter: Annotated[
        float | None,
        _NonNegative,
        Field(description="seconds of additive jitter (documented profile)"),
        shared_setting(1.0),
    ] = None
    max_delay: Annotated[
        float | None,
        _Positive,
        Field(description="seconds; also stop once a call took this"),
    ] = None
    respect_retry_after: Annotated[
        bool, Field(description="wait at least a server's Retry-After hint")
    ] = False
    attempt_timeout: Annotated[
        float | None,
        _Positive,
        Field(
            description=(
                "seconds; an attempt not done by then fails with TimeoutError (coroutines); "
                "unset: no limit"
            ),
        ),
        per_operation(worker=None, storage=None, scheduler=None, api=None),
    ] = None
    # The per-error policies: one table per error family (retrysim.retry.per_error), every
    # knob unset inheriting the policy's value, or set by RETRY__<OPERATION>_<FAMILY>_<KNOB>.
    # Made from the families, like the mechanisms below (tests/test_mechanisms_registry.py
    # keeps the lines for type checkers the same).
    if TYPE_CHECKING:
        rate_limited: ErrorPolicy = ErrorPolicy()
        server_error: ErrorPolicy = ErrorPolicy()
        connection_error: ErrorPolicy = ErrorPolicy()
        timeout_error: ErrorPolicy = ErrorPolicy()
    else:
        __annotations__.update(_error_annotations())
        locals().update({name: ErrorPolicy() for name in PER_ERROR_FAMILIES})
    # The resilience mechanisms: one table each, every knob unset falling back to
    # RETRY__<OPERATION>_<MECHANISM>_<KNOB>. The fields are made from the registry
    # (retrysim.retry.mechanisms), after the options above; type checkers cannot run that, so
    # they are told the registered tables' types here (tests/test_mechanisms_registry.py keeps
    # the two the same). A mechanism without such a line is still a field, read through
    # ``mechanisms()``.
    if TYPE_CHECKING:
        breaker: BreakerOptions = BreakerOptions()
        budget: BudgetOptions = BudgetOptions()
        adaptive: AdaptiveOptions = AdaptiveOptions()
        hedge: HedgeOptions = HedgeOptions()
    else:
        __annotations__.update(_mechanism_annotations())
        locals().update(_mechanism_defaults())

    @field_validator(*MECHANISM_NAMES, mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        """``breaker=True`` turns one on with its settings; ``breaker="llm-api"`` names it."""
        if isinstance(value, bool):
            return {"enabled": value}
        if isinstance(value, str):
            return {"enabled": True, "name": value}
        return value

    @model_validator(mode="after")
    def _family_waits_ordered(self) -> PolicyOptions:
        """A family's wait range, with what it inherits, is a range: its ``min_wait`` above
        the policy's ``max_wait`` (or the reverse) is refused, naming both."""
        for name, table in self.error_policies().items():
            low = self.min_wait if table.min_wait is None else table.min_wait
            high = self.max_wait if table.max_wait is None else table.max_wait
            if low is not None and high is not None and low > high:
                low_key = "min_wait" if table.min_wait is None else f"{name}.min_wait"
                high_key = "max_wait" if table.max_wait is None else f"{name}.max_wait"
                raise ValueError(f"{low_key} ({low}) must be <= {high_key} ({high})")
        return self

    def given(self) -> frozenset[str]:
        """Names of the options set explicitly (a value other than "not given"); a mechanism
        or an error family's table is given when any of its knobs is."""
        fields = type(self).model_fields
        scalars = (name for name in OPTION_NAMES if getattr(self, name) != fields[name].default)
        tables = (name for name in TABLE_NAMES if getattr(self, name).model_fields_set)
        return frozenset((*scalars, *tables))

    def mechanisms(self) -> dict[str, Knobs]:
        """Each registered mechanism's table, by name."""
        return {name: getattr(self, name) for name in MECHANISM_NAMES}

    def error_policies(self) -> dict[str, ErrorPolicy]:
        """Each error family's own table (``rate_limited``, ...), by name."""
        return {name: getattr(self, name) for name in ERROR_POLICY_NAMES}

    def tables(self) -> dict[str, Knobs]:
        """Every table of knobs: the error families', then the mechanisms'."""
        return {name: getattr(self, name) for name in TABLE_NAMES}


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


#: The per-error tables (``rate_limited``, ``server_error``, ...), in the families' order.
ERROR_POLICY_NAMES: tuple[str, ...] = tuple(PER_ERROR_FAMILIES)
#: Every table of knobs on the options: the error families', then the mechanisms'.
TABLE_NAMES: tuple[str, ...] = (*ERROR_POLICY_NAMES, *MECHANISM_NAMES)
#: Each table's model, by name (a mechanism's ``Knobs`` or :class:`ErrorPolicy`).
TABLES: dict[str, type[Knobs]] = {
    **dict.fromkeys(ERROR_POLICY_NAMES, ErrorPolicy),
    **MECHANISMS,
}

#: Every single-valued option, in declaration order (what reports and documents list).
OPTION_NAMES: tuple[str, ...] = tuple(
    name for name in PolicyOptions.model_fields if name not in TABLES
)

#: Every policy key a value and a source are reported for: the options, then each table's
#: knobs as ``rate_limited.max_attempts`` or ``breaker.failure_threshold``.
POLICY_KEYS: tuple[str, ...] = (
    *OPTION_NAMES,
    *(f"{name}.{knob}" for name, model in TABLES.items() for knob in model.model_fields),
)


def table_setting(operation: str, table: str, knob: str) -> str:
    """The ``RetrySettings`` field of one table's knob: ``api_rate_limited_max_attempts``,
    ``api_breaker_failure_threshold``."""
    return mechanism_setting(operation, table, knob)


def setting_for(key: str, operation: str) -> str | None:
    """The ``RetrySettings`` field policy ``key`` falls back to for ``operation`` (None: no
    setting does): ``max_wait`` -> ``worker_max_wait``, ``breaker.enabled`` ->
    ``worker_breaker_enabled``, ``rate_limited.max_attempts`` ->
    ``worker_rate_limited_max_attempts``."""
    table, _, knob = key.partition(".")
    if knob:
        if table not in TABLES or knob not in TABLES[table].model_fields:
            return None
        return table_setting(operation, table, knob)
    if key not in PolicyOptions.model_fields or setting_source(key) is None:
        return None
    return settings_field(key, operation)


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
    allowed = (*OPTION_NAMES, *TABLE_NAMES)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        hints = [f"{name!r}" + hint(name, allowed, list_allowed=False) for name in unknown]
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
