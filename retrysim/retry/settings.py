"""Retry settings: the ``RETRY__*`` variables, generated from the policy options.

Each policy option marked ``FromSettings`` (:mod:`retrysim.retry.options`) is a field here with
that option's type and limits and the default its mark documents: per operation
(``RETRY__WORKER_MAX_ATTEMPTS``, ...) or shared (``RETRY__PROFILE``, ``RETRY__JITTER``). Each
knob of each registered resilience mechanism (:mod:`retrysim.retry.mechanisms`) is a field per
operation (``RETRY__API_BREAKER_FAILURE_THRESHOLD``), with the knob's own type, default and
limits, and so is each knob of each error family's own policy
(``RETRY__API_RATE_LIMITED_MAX_ATTEMPTS``; unset, it inherits the operation's value). Nothing is
written twice, so a value the policy would refuse is refused here, when the
settings load, naming the variable.

Values come from, in order of precedence: process environment, a ``.env`` file, the defaults
documented for the mechanism. Errors name the environment variable, not the Python field,
because the variable is what an operator typed.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import types
import typing
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationError, create_model, model_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from retrysim.errors import BadInputError, not_utf8

# Re-exported: the settings are where most code looks for these names.
from retrysim.names import OPERATIONS as OPERATIONS
from retrysim.names import PROFILES as PROFILES
from retrysim.names import Operation as Operation
from retrysim.names import Profile as Profile
from retrysim.retry.mechanisms import MECHANISMS, mechanism_setting
from retrysim.retry.options import (
    ERROR_POLICY_NAMES,
    GLOBAL_OPTIONS,
    PER_OPERATION_OPTIONS,
    TABLES,
    PolicyOptions,
    setting_source,
    table_setting,
)
from retrysim.suggest import closest

ENV_PREFIX = "RETRY__"
#: The prefix one underscore short: ``RETRY_SCHEDULER_MAX_ATTEMPTS`` is warned about as a typo.
SINGLE_PREFIX = "RETRY_"
Source = Literal["default", "env", ".env"]

logger = logging.getLogger("retrysim.retry")


class SettingsError(BadInputError):
    """Invalid retry settings; the message names each offending ``RETRY__*`` variable."""


def _given_type(annotation: Any) -> Any:
    """An option's type without its "not given" ``None`` (a setting always has a value)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        kept = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(kept) == 1:
            return kept[0]
    return annotation


def _option_field(name: str, operation: str) -> tuple[Any, Any]:
    """Option ``name``'s setting: the option's type, limits and description, and the default
    its ``FromSettings`` mark documents for ``operation`` ("" for a shared setting)."""
    info = PolicyOptions.model_fields[name]
    source = setting_source(name)
    assert source is not None, f"option {name!r} is read from no setting"
    # A setting whose documented default is None ("no limit": attempt_timeout) keeps the None.
    nullable = any(default is None for _, default in source.defaults)
    given = info.annotation if nullable else _given_type(info.annotation)
    kind = Annotated[(given, *info.metadata)]  # type: ignore[valid-type]
    return kind, Field(source.default(operation), description=info.description)


def _option_fields() -> dict[str, tuple[Any, Any]]:
    """``<operation>_<option>`` for every per-operation option, then ``<option>`` for every
    shared one, in the options' order (``worker_max_attempts``, ..., ``profile``, ``jitter``)."""
    fields = {
        f"{operation}_{name}": _option_field(name, operation)
        for operation in OPERATIONS
        for name in PER_OPERATION_OPTIONS
    }
    fields.update({name: _option_field(name, "") for name in GLOBAL_OPTIONS})
    return fields


def _mechanism_fields() -> dict[str, tuple[Any, Any]]:
    """``<operation>_<table>_<knob>`` for every knob of every table of knobs: each error
    family's (``api_rate_limited_max_attempts``, default None: inherit the policy's) and each
    resilience mechanism's, with the knob's own type, default and limits (each knob is defined
    once, in its table's model)."""
    fields: dict[str, tuple[Any, Any]] = {}
    for operation in OPERATIONS:
        for table, model in TABLES.items():
            for knob, info in model.model_fields.items():
                fields[table_setting(operation, table, knob)] = (info.annotation, info)
    return fields


#: The mechanisms' variables as a pattern: ``RETRY__<OPERATION>_BREAKER_*, _BUDGET_*, ...``.
MECHANISM_VARIABLES = f"{ENV_PREFIX}<OPERATION>_" + ", _".join(
    f"{name.upper()}_*" for name in MECHANISMS
)
#: Every table's variables as a pattern: the error families' and the mechanisms'.
TABLE_VARIABLES = f"{ENV_PREFIX}<OPERATION>_" + ", _".join(f"{name.upper()}_*" for name in TABLES)
#: The policy options' settings (``RETRY__WORKER_MAX_ATTEMPTS``, ``RETRY__PROFILE``, ...).
_OPTION_FIELDS = _option_fields()
#: The tables' knobs as settings fields (``RETRY__API_RATE_LIMITED_MAX_ATTEMPTS``,
#: ``RETRY__API_BREAKER_FAILURE_THRESHOLD``, ...).
_MECHANISM_FIELDS = _mechanism_fields()
_GeneratedSettings: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "_GeneratedSettings", __base__=BaseModel, **_OPTION_FIELDS, **_MECHANISM_FIELDS
)


class RetrySettings(_GeneratedSettings, BaseSettings):
    """Retry settings per operation type, read from ``RETRY__*`` variables and ``.env``.

    Defaults are the documented ones: worker 3/1.0/10.0, storage 5/0.5/5.0,
    scheduler 3/1.0/8.0, api 4/1.0/15.0 (max attempts / min wait / max wait, seconds). The
    resilience mechanisms (``RETRY__<OPERATION>_BREAKER_*``, ``_BUDGET_*``, ``_ADAPTIVE_*``)
    are all off by default. Every field is generated (see the module docstring).
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        case_sensitive=False,
        extra="ignore",
        frozen=True,
        env_file=None,
    )

    # Type checkers cannot run create_model, so they are told the option fields' types here;
    # tests/test_settings_generated.py keeps these the generated fields' types.
    if TYPE_CHECKING:
        worker_max_attempts: int
        worker_min_wait: float
        worker_max_wait: float
        storage_max_attempts: int
        storage_min_wait: float
        storage_max_wait: float
        scheduler_max_attempts: int
        scheduler_min_wait: float
        scheduler_max_wait: float
        api_max_attempts: int
        api_min_wait: float
        api_max_wait: float
        worker_attempt_timeout: float | None
        storage_attempt_timeout: float | None
        scheduler_attempt_timeout: float | None
        api_attempt_timeout: float | None
        profile: str
        jitter: float

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The .env values come already read (once, by read_env_file), so the file is neither
        # re-read (a pipe can be read only once) nor parsed by dotenv's noisy logger.
        if not _read_environment.get():  # load_settings(environment=False): the file alone
            return init_settings, _ReadEnvFile(settings_cls), file_secret_settings
        return init_settings, env_settings, _ReadEnvFile(settings_cls), file_secret_settings

    @model_validator(mode="after")
    def _min_not_above_max(self) -> RetrySettings:
        for op in OPERATIONS:
            lo, hi = getattr(self, f"{op}_min_wait"), getattr(self, f"{op}_max_wait")
            if lo > hi:
                raise ValueError(
                    f"{env_name(op + '_min_wait')}={lo} is greater than "
                    f"{env_name(op + '_max_wait')}={hi}; min_wait must be <= max_wait"
                )
        return self

    @model_validator(mode="after")
    def _family_waits_ordered(self) -> RetrySettings:
        """An error family's wait range, with what it inherits from its operation, is a range
        (``RETRY__API_RATE_LIMITED_MIN_WAIT=20`` above ``RETRY__API_MAX_WAIT=15`` is not)."""
        for op in OPERATIONS:
            for family in ERROR_POLICY_NAMES:
                low, lowest = self._family_wait(op, family, "min_wait")
                high, highest = self._family_wait(op, family, "max_wait")
                if lowest > highest:
                    raise ValueError(
                        f"{env_name(low)}={lowest} is greater than {env_name(high)}={highest}; "
                        "min_wait must be <= max_wait"
                    )
        return self

    def _family_wait(self, operation: str, family: str, name: str) -> tuple[str, float]:
        """(field, value) of an error family's wait knob in effect: its own setting if set,
        else its operation's (``api_rate_limited_min_wait``, else ``api_min_wait``)."""
        own = table_setting(operation, family, name)
        field = own if getattr(self, own) is not None else f"{operation}_{name}"
        return field, getattr(self, field)

    @model_validator(mode="after")
    def _mechanisms_hold_together(self) -> RetrySettings:
        """Each mechanism's own cross-knob rules (an enabled breaker must be able to open),
        checked here so the error names the variables, not a build_policy call later."""
        for op in OPERATIONS:
            for mechanism, model in MECHANISMS.items():
                fields = {k: mechanism_setting(op, mechanism, k) for k in model.model_fields}
                try:
                    model.model_validate({k: getattr(self, f) for k, f in fields.items()})
                except ValidationError as error:
                    names = ", ".join(
                        f"{env_name(f)}={getattr(self, f)!r}"
                        for f in fields.values()
                        if getattr(self, f) != model.model_fields[_knob(f, op, mechanism)].default
                    )
                    reasons = "; ".join(
                        e["msg"].removeprefix("Value error, ") for e in error.errors()
                    )
                    raise ValueError(
                        f"{names or env_name(op + '_' + mechanism + '_*')}: {reasons}"
                    ) from None
        return self

    @classmethod
    def defaults(cls) -> RetrySettings:
        """The documented defaults, whatever the environment says (simulations use these
        unless given settings, so a run is a function of its inputs alone)."""
        return cls.model_construct()

    def for_operation(self, operation: Operation) -> tuple[int, float, float]:
        """Return ``(max_attempts, min_wait, max_wait)`` for one operation type."""
        if operation not in OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}; allowed: {', '.join(OPERATIONS)}")
        return (
            getattr(self, f"{operation}_max_attempts"),
            getattr(self, f"{operation}_min_wait"),
            getattr(self, f"{operation}_max_wait"),
        )


#: The .env values :func:`load_settings` read, for the settings source below to hand over.
_env_file_values: ContextVar[Mapping[str, str | None] | None] = ContextVar(
    "_env_file_values", default=None
)
#: False while :func:`load_settings` reads a file alone (``environment=False``).
_read_environment: ContextVar[bool] = ContextVar("_read_environment", default=True)


class _ReadEnvFile(DotEnvSettingsSource):
    """pydantic-settings' .env source, fed the values :func:`read_env_file` already read."""

    def _read_env_files(self) -> Mapping[str, str | None]:
        values = _env_file_values.get() or {}
        return {key.lower(): value for key, value in values.items()}


@dataclass(frozen=True)
class EnvFile:
    """A ``.env`` file as read: its values and the lines that are not ``KEY=VALUE``."""

    path: str
    values: dict[str, str | None]
    unparsable: tuple[int, ...]  # 1-based line numbers; python-dotenv skips these lines

    def warnings(self) -> list[str]:
        return [
            f"{self.path}, line {line}: cannot parse this line (expected KEY=VALUE); it is ignored"
            for line in self.unparsable
        ]


def env_file_present(env_file: str | Path | None) -> bool:
    """Whether ``env_file`` names something that exists (a device like /dev/null counts)."""
    return env_file is not None and os.path.exists(env_file)


def read_env_file(env_file: str | Path) -> EnvFile:
    """Read and parse a ``.env`` file once, as python-dotenv would (``${VAR}`` expanded).

    Raises :class:`SettingsError` naming the file if it cannot be read or is not UTF-8 (with
    the offset of the first bad byte). Unparsable lines are reported in ``unparsable``, not
    logged: callers decide how to warn.
    """
    from dotenv.main import resolve_variables
    from dotenv.parser import parse_stream

    path = str(env_file)
    try:
        data = Path(env_file).read_bytes()
    except OSError as error:
        raise SettingsError(
            f"{path}: cannot read the .env file: {error.strerror or error}"
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SettingsError(
            f"{path}: the .env file is not UTF-8: {not_utf8(data, error)}; save it as UTF-8"
        ) from None
    bindings = list(parse_stream(io.StringIO(text)))
    pairs = [(b.key, b.value) for b in bindings if b.key is not None]
    values = dict(resolve_variables(pairs, override=True))
    unparsable = tuple(b.original.line for b in bindings if b.error)
    return EnvFile(path, values, unparsable)


#: Where ``.env`` values come from: a path (read when needed), an :class:`EnvFile` already read
#: (a pipe such as ``--env-file <(...)`` can be read only once), or None for no file.
EnvSource = str | Path | EnvFile | None


def env_file_contents(env_file: EnvSource) -> EnvFile | None:
    """``env_file`` as read: itself if already read, None if absent or missing."""
    if isinstance(env_file, EnvFile):
        return env_file
    if env_file is None or not env_file_present(env_file):
        return None
    return read_env_file(env_file)


def env_file_warnings(env_file: EnvSource = ".env") -> list[str]:
    """One message per unparsable line of ``env_file`` (none if it is missing)."""
    contents = env_file_contents(env_file)
    return [] if contents is None else contents.warnings()


def _knob(field: str, operation: str, mechanism: str) -> str:
    return field.removeprefix(f"{operation}_{mechanism}_")


def env_name(field: str) -> str:
    """The variable that sets a field: ``worker_max_attempts`` -> ``RETRY__WORKER_MAX_ATTEMPTS``."""
    return ENV_PREFIX + field.upper()


def _explain(error: ValidationError, origin: str) -> SettingsError:
    lines = []
    for item in error.errors():
        loc = item["loc"]
        if loc:
            field = str(loc[0])
            allowed = _allowed(field) if item["type"] in _BOUND_ERRORS else ""
            lines.append(
                f"{env_name(field)}: {item['msg']} (got {item.get('input')!r}{origin}){allowed}"
            )
        else:
            lines.append(item["msg"].removeprefix("Value error, "))
    return SettingsError("; ".join(lines))


#: pydantic's error types for a number past one of its field's bounds.
_BOUND_ERRORS = frozenset({"greater_than", "greater_than_equal", "less_than", "less_than_equal"})


def _allowed(field: str) -> str:
    """``; allowed: 0 to 1,000,000,000``: the field's range, read from its bounds."""
    info = RetrySettings.model_fields.get(field)
    if info is None:
        return ""
    low = high = None
    for mark in info.metadata:
        low = next((getattr(mark, k) for k in ("ge", "gt") if hasattr(mark, k)), low)
        high = next((getattr(mark, k) for k in ("le", "lt") if hasattr(mark, k)), high)
    if low is None or high is None:
        return ""
    return f"; allowed: {_plain(low)} to {_plain(high)}"


def _plain(number: float) -> str:
    return f"{int(number):,}" if float(number).is_integer() else f"{number:g}"


@dataclass(frozen=True)
class UnknownVariable:
    """A ``RETRY__*`` variable that names no setting, so nothing reads it (a typo, usually), or
    a ``RETRY_*`` one a setting's name with one underscore too few."""

    name: str
    origin: str  # "the environment", or "<path>" for a .env file
    suggestion: str | None  # the closest valid variable, if one is close

    def message(self) -> str:
        where = "in the environment" if self.origin == "the environment" else f"in {self.origin}"
        core = [
            name
            for name in valid_variables()
            if name.removeprefix(ENV_PREFIX).lower() not in _MECHANISM_FIELDS
        ]
        hint = (
            f"did you mean {self.suggestion}?"
            if self.suggestion is not None
            else f"valid: {', '.join(core)}, and {TABLE_VARIABLES} (see `retrysim settings`)"
        )
        if not self.name.upper().startswith(ENV_PREFIX):
            hint += f" (settings start with {ENV_PREFIX}, two underscores)"
        return f"{self.name} {where} is not a retry setting and is ignored; {hint}"


def valid_variables() -> list[str]:
    """Every variable :class:`RetrySettings` reads: ``RETRY__WORKER_MAX_ATTEMPTS``, ..., then
    the resilience knobs (``RETRY__WORKER_BREAKER_ENABLED``, ...)."""
    own = [name for name in RetrySettings.model_fields if name not in _MECHANISM_FIELDS]
    return [env_name(name) for name in (*own, *_MECHANISM_FIELDS)]


def unknown_variables(env_file: EnvSource = ".env") -> list[UnknownVariable]:
    """``RETRY__*`` variables in the environment and in ``env_file`` that name no setting, and
    ``RETRY_*`` ones (one underscore) whose rest is close to a setting's name.

    Matching is case-insensitive, as the settings' own is. A missing ``env_file`` is skipped.
    """
    valid = valid_variables()
    names: list[tuple[str, str]] = [(key, "the environment") for key in sorted(os.environ)]
    contents = env_file_contents(env_file)
    if contents is not None:
        names.extend((key, contents.path) for key in contents.values)
    fields = [name.removeprefix(ENV_PREFIX) for name in valid]  # the prefix makes all look alike
    unknown = []
    for key, origin in names:
        upper = key.upper()
        if upper.startswith(ENV_PREFIX) and upper not in valid:
            match = closest(upper.removeprefix(ENV_PREFIX), fields)
            suggestion = None if match is None else ENV_PREFIX + match
            unknown.append(UnknownVariable(key, origin, suggestion))
        elif upper.startswith(SINGLE_PREFIX) and not upper.startswith(ENV_PREFIX):
            # RETRY_SCHEDULER_MAX_ATTEMPTS: one underscore short. Other programs' RETRY_*
            # variables are not retrysim's to judge, so only a name close to a setting is one.
            match = closest(upper.removeprefix(SINGLE_PREFIX), fields)
            if match is not None:
                unknown.append(UnknownVariable(key, origin, ENV_PREFIX + match))
    return unknown


_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


def warn_unknown_variables(env_file: EnvSource = ".env") -> list[UnknownVariable]:
    """Log each unknown ``RETRY__*`` variable once per process (``retrysim.retry`` logger).

    Returns all of them, warned before or not, for a caller that reports them its own way.
    """
    unknown = unknown_variables(env_file)
    for variable in unknown:
        key = (variable.name, variable.origin)
        with _warned_lock:
            if key in _warned:
                continue
            _warned.add(key)
        logger.warning("%s", variable.message())
    return unknown


def settings_warnings(env_file: EnvSource = ".env") -> list[str]:
    """Every warning about the settings' inputs: unparsable ``.env`` lines, unknown variables.

    For callers that report them their own way (the CLI); raises :class:`SettingsError` if the
    file cannot be read.
    """
    contents = env_file_contents(env_file)  # read once for both
    return [*env_file_warnings(contents), *(v.message() for v in unknown_variables(contents))]


def _warn_once(key: tuple[str, str], message: str) -> None:
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    logger.warning("%s", message)


def load_settings(
    env_file: EnvSource = ".env", *, warn: bool = True, environment: bool = True
) -> RetrySettings:
    """Read settings from the process environment and ``env_file`` through pydantic-settings.

    The environment wins over the file. A missing default ``.env`` is fine; a missing file that
    was named explicitly is an error, since the operator expected its values to apply. With
    ``warn`` (the default), a ``RETRY__*`` variable that names no setting is logged as a warning
    on the ``retrysim.retry`` logger, once per variable and place per process, with the closest
    valid name; ``warn=False`` is for callers that report :func:`unknown_variables` themselves.
    ``env_file`` may be an :class:`EnvFile` already read (it is not read again).
    ``environment=False`` reads the file alone, the process environment ignored (``retrysim
    check`` compares two files, which an exported variable must not make look alike).
    """
    if isinstance(env_file, str | Path) and not env_file_present(env_file):
        if str(env_file) != ".env":
            raise SettingsError(f"{env_file}: no such file (given as the .env file)")
        env_file = None
    contents = env_file_contents(env_file)
    values: dict[str, str | None] = {}
    if contents is not None:
        env_file = contents.path
        values = contents.values
        if warn:
            for line, message in zip(contents.unparsable, contents.warnings(), strict=True):
                _warn_once((f"line {line}", contents.path), message)
    if warn:
        warn_unknown_variables(contents)
    token = _env_file_values.set(values)
    alone = _read_environment.set(environment)
    try:
        return RetrySettings()
    except ValidationError as exc:
        where = " from the environment or" if environment else " from"
        raise _explain(exc, f"{where} {env_file}" if env_file else "") from None
    finally:
        _read_environment.reset(alone)
        _env_file_values.reset(token)


def setting_sources(env_file: EnvSource = ".env") -> dict[str, Source]:
    """Where each field's effective value came from: ``default``, ``env`` or ``.env``.

    Mirrors pydantic-settings' precedence (environment over file) without re-validating.
    """
    contents = env_file_contents(env_file)
    from_file: set[str] = set()
    if contents is not None:
        from_file = {key.upper() for key, value in contents.values.items() if value is not None}
    from_env = {key.upper() for key in os.environ}
    sources: dict[str, Source] = {}
    for name in RetrySettings.model_fields:
        var = env_name(name)
        sources[name] = "env" if var in from_env else ".env" if var in from_file else "default"
    return sources


_current: RetrySettings | None = None


def get_settings() -> RetrySettings:
    """The settings the decorators use now; loaded from the environment on first use."""
    global _current  # noqa: PLW0603 - one process-wide view of the environment, by design
    if _current is None:
        _current = load_settings()
    return _current


def reload_settings(env_file: str | Path | None = ".env") -> RetrySettings:
    """Re-read the environment (and ``env_file``); already-decorated functions follow at once."""
    global _current  # noqa: PLW0603
    _current = load_settings(env_file)
    return _current


def use_settings(settings: RetrySettings | None) -> None:
    """Install explicit settings (``None`` goes back to reading the environment on next use)."""
    global _current  # noqa: PLW0603
    _current = settings
