"""Tests written for mutants of ``retrysim/retry/settings.py`` that its own tests let survive
(a full mutation run, ``python scripts/mutate.py --module settings``): each pins a behaviour a
plausible wrong edit would change."""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import os
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from retrysim.retry import settings as settings_module
from retrysim.retry.settings import (
    EnvFile,
    RetrySettings,
    SettingsError,
    UnknownVariable,
    load_settings,
    read_env_file,
    unknown_variables,
    warn_unknown_variables,
)

# -- settings: types, validation and error messages ---------------------------------------------


def test_an_option_setting_refuses_none() -> None:
    """A policy option's setting always has a value: its option's "not given" None is no value
    for ``RETRY__WORKER_MAX_ATTEMPTS`` (else for_operation would hand a policy None attempts)."""
    with pytest.raises(ValidationError):
        RetrySettings(worker_max_attempts=None)
    with pytest.raises(ValidationError):
        RetrySettings(jitter=None)
    # attempt_timeout's documented default is None ("no limit"), so it keeps its None.
    assert RetrySettings(worker_attempt_timeout=None).worker_attempt_timeout is None


def test_a_number_past_its_bounds_names_the_variable_and_the_allowed_range(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bound error says what would be accepted, read from the field's bounds, and an error
    that is not about bounds (not a number at all) says no range."""
    monkeypatch.setenv("RETRY__WORKER_MAX_ATTEMPTS", "0")
    with pytest.raises(SettingsError) as caught:
        load_settings(None)
    assert str(caught.value) == (
        "RETRY__WORKER_MAX_ATTEMPTS: Input should be greater than or equal to 1 (got '0'); "
        "allowed: 1 to 10,000"
    )
    monkeypatch.setenv("RETRY__WORKER_MAX_ATTEMPTS", "many")
    with pytest.raises(SettingsError) as caught:
        load_settings(None)
    assert "RETRY__WORKER_MAX_ATTEMPTS" in str(caught.value)
    assert "allowed" not in str(caught.value)


def test_the_allowed_range_is_read_from_exclusive_bounds_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An exclusive range (the limiter's beta: above 0, below 1) is shown by its bounds, and a
    large bound with thousands separators."""
    monkeypatch.setenv("RETRY__API_ADAPTIVE_LIMITER_BETA", "1.5")
    with pytest.raises(SettingsError, match=r"allowed: 0 to 1$"):
        load_settings(None)
    monkeypatch.setenv("RETRY__API_ADAPTIVE_LIMITER_BETA", "0.5")
    monkeypatch.setenv("RETRY__API_MAX_WAIT", "2000000000")
    with pytest.raises(SettingsError, match=r"allowed: 0 to 1,000,000,000$"):
        load_settings(None)


def test_a_mechanism_that_cannot_work_is_refused_naming_the_variables_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An enabled breaker that can never open is refused when the settings load, naming the
    variables the operator set (not the ones left at their defaults) and the reason."""
    monkeypatch.setenv("RETRY__API_BREAKER_ENABLED", "true")
    monkeypatch.setenv("RETRY__API_BREAKER_FAILURE_THRESHOLD", "0")
    with pytest.raises(SettingsError) as caught:
        load_settings(None)
    assert str(caught.value) == (
        "RETRY__API_BREAKER_ENABLED=True, RETRY__API_BREAKER_FAILURE_THRESHOLD=0: "
        "an enabled breaker needs failure_threshold >= 1 or failure_rate > 0 to ever open"
    )


def test_validating_settings_gives_the_settings() -> None:
    """``RetrySettings.model_validate`` (as pydantic callers use it) returns the settings, each
    check passed, not something else."""
    loaded = RetrySettings.model_validate({"worker_max_attempts": 7})
    assert isinstance(loaded, RetrySettings)
    assert loaded.worker_max_attempts == 7


def test_an_error_from_the_default_env_file_that_is_missing_names_no_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With no ``.env`` in the working directory, a bad variable comes from the environment
    alone, so the message names no file."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RETRY__WORKER_MAX_ATTEMPTS", "0")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "(got '0');" in str(caught.value)
    assert ".env" not in str(caught.value)


def test_an_error_from_an_env_file_already_read_names_its_path(tmp_path: Path) -> None:
    """An :class:`EnvFile` handed over already read is named by its path in an error."""
    env = tmp_path / "prod.env"
    env.write_text("RETRY__WORKER_MAX_ATTEMPTS=0\n")
    with pytest.raises(SettingsError) as caught:
        load_settings(read_env_file(env))
    assert f"(got '0' from the environment or {env});" in str(caught.value)


# -- settings: where values come from ----------------------------------------------------------


def test_settings_built_directly_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """``RetrySettings()`` reads the ``RETRY__*`` variables, as its docstring says."""
    monkeypatch.setenv("RETRY__WORKER_MAX_ATTEMPTS", "7")
    assert RetrySettings().worker_max_attempts == 7


def test_a_file_read_alone_ignores_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``environment=False`` reads the file alone; afterwards settings read the environment
    and no file again (the switch and the file's values do not outlive the call)."""
    env = tmp_path / "a.env"
    env.write_text("RETRY__WORKER_MAX_ATTEMPTS=5\nRETRY__API_MAX_ATTEMPTS=6\n")
    monkeypatch.setenv("RETRY__WORKER_MAX_ATTEMPTS", "7")
    assert load_settings(env, environment=False).worker_max_attempts == 5
    after = RetrySettings()
    assert after.worker_max_attempts == 7
    assert after.api_max_attempts == 4  # the file's value is gone with the call


def test_a_file_values_do_not_outlive_the_load(tmp_path: Path) -> None:
    """After ``load_settings(file)``, settings built anew do not see that file's values."""
    env = tmp_path / "a.env"
    env.write_text("RETRY__API_MAX_ATTEMPTS=6\n")
    assert load_settings(env).api_max_attempts == 6
    assert RetrySettings().api_max_attempts == 4


def test_get_settings_in_a_fresh_process_loads_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first ``get_settings()`` of a process (nothing installed yet) loads the environment:
    the module is loaded anew, as a new process would, under a name of its own."""
    name = "retrysim_settings_fresh_copy"
    spec = importlib.util.spec_from_file_location(name, settings_module.__file__)
    assert spec is not None and spec.loader is not None
    fresh = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, fresh)
    spec.loader.exec_module(fresh)
    monkeypatch.setenv("RETRY__WORKER_MAX_ATTEMPTS", "7")
    assert fresh.get_settings().worker_max_attempts == 7


# -- settings: .env files and unknown variables -------------------------------------------------


def test_a_variable_in_an_env_file_expands_from_the_file_before_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``${VAR}`` in a .env file takes the file's own earlier ``VAR`` over the process
    environment's, as pydantic-settings' own reading (python-dotenv's dotenv_values) does."""
    monkeypatch.setenv("ATTEMPTS", "7")
    env = tmp_path / "a.env"
    env.write_text("ATTEMPTS=5\nRETRY__API_MAX_ATTEMPTS=${ATTEMPTS}\n")
    assert read_env_file(env).values["RETRY__API_MAX_ATTEMPTS"] == "5"
    assert load_settings(env).api_max_attempts == 5


def test_env_files_and_unknown_variables_are_immutable_values(tmp_path: Path) -> None:
    """An :class:`EnvFile` is read once and shared (load_settings, the warnings), so nobody
    can change it under another; an :class:`UnknownVariable` is a value: equal ones are one
    in a set."""
    env = tmp_path / "a.env"
    env.write_text("RETRY__API_MAX_ATTEMPTS=6\n")
    contents = read_env_file(env)
    with pytest.raises(dataclasses.FrozenInstanceError):
        contents.path = "other.env"  # type: ignore[misc]
    one = UnknownVariable("RETRY__X", "the environment", None)
    assert len({one, UnknownVariable("RETRY__X", "the environment", None)}) == 1
    assert isinstance(contents, EnvFile)


def test_an_unknown_variable_with_no_close_name_lists_the_valid_ones() -> None:
    """Without a suggestion, the message lists the option variables one by one and the tables'
    as patterns (not each of their hundreds of variables)."""
    message = UnknownVariable("RETRY__ZQXJ", "the environment", None).message()
    assert message.startswith("RETRY__ZQXJ in the environment is not a retry setting")
    assert "RETRY__WORKER_MAX_ATTEMPTS, " in message
    assert "RETRY__API_BREAKER_ENABLED" not in message
    assert message.endswith(
        "and RETRY__<OPERATION>_RATE_LIMITED_*, _SERVER_ERROR_*, _CONNECTION_ERROR_*, "
        "_TIMEOUT_ERROR_*, _BREAKER_*, _BUDGET_*, _ADAPTIVE_*, _HEDGE_* (see `retrysim settings`)"
    )
    assert "two underscores" not in message


def test_an_unknown_variable_from_a_file_names_the_file() -> None:
    """A variable from a .env file is placed in that file."""
    message = UnknownVariable("RETRY__ZQXJ", "prod.env", "RETRY__JITTER").message()
    assert message == (
        "RETRY__ZQXJ in prod.env is not a retry setting and is ignored; did you mean RETRY__JITTER?"
    )


def test_one_underscore_short_is_reported_with_the_real_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``RETRY_WORKER_MAX_ATTEMPTS`` (one underscore) is reported with the variable meant and a
    word on the prefix; another program's ``RETRY_*`` variable is left alone."""
    for name in list(os.environ):
        if name.upper().startswith("RETRY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("RETRY_WORKER_MAX_ATTEMPTS", "7")
    monkeypatch.setenv("RETRY_ZQXJ_HOST", "x")
    [variable] = unknown_variables(None)
    assert variable == UnknownVariable(
        "RETRY_WORKER_MAX_ATTEMPTS", "the environment", "RETRY__WORKER_MAX_ATTEMPTS"
    )
    assert variable.message().endswith(
        "did you mean RETRY__WORKER_MAX_ATTEMPTS? (settings start with RETRY__, two underscores)"
    )


def test_unknown_variables_are_warned_once_and_returned_every_time(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The warning comes once per variable and place; the list comes back on every call, for
    a caller that reports the variables its own way."""
    monkeypatch.setattr(settings_module, "_warned", set())
    monkeypatch.setenv("RETRY__WORKER_MAX_ATEMPTS", "7")
    caplog.set_level(logging.WARNING, logger="retrysim.retry")
    first = warn_unknown_variables(None)
    second = warn_unknown_variables(None)
    assert [v.name for v in first] == [v.name for v in second] == ["RETRY__WORKER_MAX_ATEMPTS"]
    warned = [r for r in caplog.records if r.name == "retrysim.retry"]
    assert len(warned) == 1
