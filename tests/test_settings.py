"""RETRY__* settings: documented defaults, environment and .env overrides, sources, validation."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from retrysim.names import Operation
from retrysim.retry import (
    OPERATIONS,
    PROFILES,
    RetrySettings,
    SettingsError,
    get_settings,
    load_settings,
    reload_settings,
    retry_storage_operation,
    retry_worker_operation,
    setting_sources,
    use_settings,
)

#: The documented defaults (seed "Default Settings" table): attempts, min wait, max wait.
DOCUMENTED = {
    "worker": (3, 1.0, 10.0),
    "storage": (5, 0.5, 5.0),
    "scheduler": (3, 1.0, 8.0),
    "api": (4, 1.0, 15.0),
}
FIELDS = [f"{op}_{knob}" for op in OPERATIONS for knob in ("max_attempts", "min_wait", "max_wait")]


def var(field: str) -> str:
    return "RETRY__" + field.upper()


def write_env(path: Path, values: dict[str, str]) -> Path:
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return path


# --- defaults -------------------------------------------------------------------------------


def test_operations_are_the_four_documented_ones() -> None:
    assert set(OPERATIONS) == {"worker", "storage", "scheduler", "api"}


@pytest.mark.parametrize("operation", sorted(DOCUMENTED))
def test_defaults_match_the_documented_table(operation: Operation) -> None:
    current = get_settings()
    assert current.for_operation(operation) == DOCUMENTED[operation]
    attempts, lo, hi = DOCUMENTED[operation]
    assert getattr(current, f"{operation}_max_attempts") == attempts
    assert getattr(current, f"{operation}_min_wait") == lo
    assert getattr(current, f"{operation}_max_wait") == hi


def test_profile_and_jitter_defaults() -> None:
    current = load_settings()
    assert current.profile == "documented"
    assert current.jitter == 1.0
    assert set(PROFILES) == {
        "documented",
        "bindu",
        "full_jitter",
        "equal_jitter",
        "decorrelated",
        "exponential",
    }


def test_every_source_is_default_without_env_or_file() -> None:
    sources = setting_sources()
    assert set(sources) >= {*FIELDS, "profile", "jitter"}
    assert set(sources.values()) == {"default"}


def test_settings_are_immutable() -> None:
    with pytest.raises(ValidationError):
        get_settings().worker_max_attempts = 9  # type: ignore[misc]  # frozen on purpose


def test_for_operation_rejects_unknown_operation() -> None:
    with pytest.raises(ValueError, match="database"):
        get_settings().for_operation("database")  # type: ignore[arg-type]  # unknown on purpose


# --- environment ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "raw", "field", "expected"),
    [
        ("RETRY__WORKER_MAX_ATTEMPTS", "7", "worker_max_attempts", 7),
        ("RETRY__STORAGE_MIN_WAIT", "0.25", "storage_min_wait", 0.25),
        ("RETRY__SCHEDULER_MAX_WAIT", "30", "scheduler_max_wait", 30.0),
        ("RETRY__API_MAX_ATTEMPTS", "1", "api_max_attempts", 1),
        ("RETRY__PROFILE", "bindu", "profile", "bindu"),
        ("RETRY__JITTER", "0", "jitter", 0.0),
    ],
)
def test_environment_overrides_after_reload(
    monkeypatch: pytest.MonkeyPatch, variable: str, raw: str, field: str, expected: object
) -> None:
    assert getattr(get_settings(), field) != expected
    monkeypatch.setenv(variable, raw)
    reloaded = reload_settings()
    assert getattr(reloaded, field) == expected
    assert getattr(get_settings(), field) == expected
    assert setting_sources()[field] == "env"


def test_settings_are_cached_until_reload(monkeypatch: pytest.MonkeyPatch) -> None:
    first = get_settings()
    monkeypatch.setenv("RETRY__WORKER_MAX_ATTEMPTS", "9")
    assert get_settings() is first
    assert get_settings().worker_max_attempts == 3
    assert reload_settings().worker_max_attempts == 9
    assert get_settings().worker_max_attempts == 9


def test_use_settings_installs_and_none_rereads(monkeypatch: pytest.MonkeyPatch) -> None:
    explicit = RetrySettings(worker_max_attempts=8)
    use_settings(explicit)
    monkeypatch.setenv("RETRY__WORKER_MAX_ATTEMPTS", "2")
    assert get_settings() is explicit
    use_settings(None)
    assert get_settings().worker_max_attempts == 2


def test_lowercase_environment_names_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("retry__api_max_wait", "42")
    assert load_settings().api_max_wait == 42.0
    assert setting_sources()["api_max_wait"] == "env"


# --- .env files -----------------------------------------------------------------------------


def test_dotenv_in_working_directory_is_read_by_default(tmp_path: Path) -> None:
    write_env(tmp_path / ".env", {"RETRY__STORAGE_MAX_ATTEMPTS": "11"})
    assert Path(".env").resolve() == (tmp_path / ".env").resolve()
    assert load_settings().storage_max_attempts == 11
    assert reload_settings().storage_max_attempts == 11
    assert setting_sources()["storage_max_attempts"] == ".env"
    assert setting_sources()["storage_min_wait"] == "default"


def test_named_env_file_via_load_and_reload(tmp_path: Path) -> None:
    path = write_env(
        tmp_path / "prod.env",
        {"RETRY__API_MAX_ATTEMPTS": "6", "RETRY__API_MAX_WAIT": "30.0", "RETRY__PROFILE": "bindu"},
    )
    loaded = load_settings(path)
    assert (loaded.api_max_attempts, loaded.api_max_wait, loaded.profile) == (6, 30.0, "bindu")
    assert load_settings().api_max_attempts == 4  # the named file is not the default .env
    reload_settings(str(path))
    assert get_settings().for_operation("api") == (6, 1.0, 30.0)
    sources = setting_sources(path)
    assert sources["api_max_attempts"] == sources["api_max_wait"] == sources["profile"] == ".env"
    assert sources["api_min_wait"] == "default"


def test_environment_wins_over_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_env(
        tmp_path / "x.env",
        {"RETRY__WORKER_MAX_ATTEMPTS": "6", "RETRY__WORKER_MAX_WAIT": "20"},
    )
    monkeypatch.setenv("RETRY__WORKER_MAX_ATTEMPTS", "2")
    loaded = load_settings(path)
    assert loaded.worker_max_attempts == 2
    assert loaded.worker_max_wait == 20.0
    sources = setting_sources(path)
    assert sources["worker_max_attempts"] == "env"
    assert sources["worker_max_wait"] == ".env"
    assert sources["worker_min_wait"] == "default"


def test_missing_named_env_file_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.env"
    with pytest.raises(SettingsError, match=r"nope\.env"):
        load_settings(missing)
    with pytest.raises(SettingsError, match=r"nope\.env"):
        reload_settings(missing)


def test_missing_default_dotenv_is_fine() -> None:
    assert not Path(".env").exists()
    assert load_settings(".env").worker_max_attempts == 3


def test_env_file_none_ignores_dotenv(tmp_path: Path) -> None:
    write_env(tmp_path / ".env", {"RETRY__WORKER_MAX_ATTEMPTS": "9"})
    assert load_settings(None).worker_max_attempts == 3
    assert setting_sources(None)["worker_max_attempts"] == "default"


def _value_for(field: str, pick: int) -> int:
    """A valid value for ``field``: min waits stay below max waits whatever else is set."""
    if field.endswith("min_wait"):
        return pick % 5  # 0..4
    if field.endswith("max_wait"):
        return 5 + pick  # 5..
    return 1 + pick


@settings(max_examples=40, deadline=None)
@given(
    choices=st.dictionaries(
        st.sampled_from(FIELDS),
        st.tuples(st.sampled_from(["env", ".env", "both"]), st.integers(0, 9), st.integers(0, 9)),
    )
)
def test_sources_and_values_agree(choices: dict[str, tuple[str, int, int]]) -> None:
    """Whatever mix of env and .env sets each field, the value and its reported source agree."""
    env: dict[str, str] = {}
    file_values: dict[str, str] = {}
    for field, (where, pick_env, pick_file) in choices.items():
        if where in ("env", "both"):
            env[var(field)] = str(_value_for(field, pick_env))
        if where in (".env", "both"):
            file_values[var(field)] = str(_value_for(field, pick_file))
    with tempfile.TemporaryDirectory() as folder, mock.patch.dict(os.environ, env):
        path = write_env(Path(folder) / "t.env", file_values)
        loaded = load_settings(path)
        sources = setting_sources(path)
    for field in FIELDS:
        op, knob = field.split("_", 1)
        default = DOCUMENTED[op][("max_attempts", "min_wait", "max_wait").index(knob)]
        if var(field) in env:
            assert (getattr(loaded, field), sources[field]) == (float(env[var(field)]), "env")
        elif var(field) in file_values:
            assert (getattr(loaded, field), sources[field]) == (
                float(file_values[var(field)]),
                ".env",
            )
        else:
            assert (getattr(loaded, field), sources[field]) == (default, "default")


# --- decorated functions follow a reload ----------------------------------------------------


def test_already_decorated_function_follows_reload(
    monkeypatch: pytest.MonkeyPatch, sync_sleep: object
) -> None:
    calls = 0

    @retry_worker_operation(sleep=sync_sleep, profile="exponential")
    def always_down() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        always_down()
    assert calls == 3
    monkeypatch.setenv("RETRY__WORKER_MAX_ATTEMPTS", "5")
    reload_settings()
    calls = 0
    with pytest.raises(ConnectionError):
        always_down()
    assert calls == 5


def test_already_decorated_function_follows_reload_of_env_file(
    tmp_path: Path, sync_sleep: object
) -> None:
    calls = 0

    @retry_storage_operation(sleep=sync_sleep, profile="exponential")
    def flaky() -> None:
        nonlocal calls
        calls += 1
        raise TimeoutError("slow")

    reload_settings(write_env(tmp_path / "a.env", {"RETRY__STORAGE_MAX_ATTEMPTS": "2"}))
    with pytest.raises(TimeoutError):
        flaky()
    assert calls == 2


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("RETRY__WORKER_MAX_ATTEMPTS", "0"),
        ("RETRY__API_MAX_ATTEMPTS", "-3"),
        ("RETRY__STORAGE_MIN_WAIT", "-0.5"),
        ("RETRY__SCHEDULER_MAX_WAIT", "-1"),
        ("RETRY__JITTER", "-1"),
        ("RETRY__PROFILE", "linear"),
        ("RETRY__WORKER_MAX_ATTEMPTS", "three"),
        ("RETRY__API_MIN_WAIT", "soon"),
        ("RETRY__STORAGE_MAX_ATTEMPTS", "2.5"),
    ],
)
def test_invalid_environment_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, raw: str
) -> None:
    monkeypatch.setenv(variable, raw)
    with pytest.raises(SettingsError) as info:
        reload_settings()
    assert variable in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("RETRY__WORKER_MAX_ATTEMPTS", "0"),
        ("RETRY__STORAGE_MIN_WAIT", "-2"),
        ("RETRY__PROFILE", "nope"),
        ("RETRY__API_MAX_WAIT", "x"),
    ],
)
def test_invalid_env_file_value_names_the_variable(tmp_path: Path, variable: str, raw: str) -> None:
    path = write_env(tmp_path / "bad.env", {variable: raw})
    with pytest.raises(SettingsError, match=variable):
        load_settings(path)


@pytest.mark.parametrize("operation", OPERATIONS)
def test_min_wait_above_max_wait_names_both_variables(
    monkeypatch: pytest.MonkeyPatch, operation: str
) -> None:
    prefix = f"RETRY__{operation.upper()}"
    monkeypatch.setenv(f"{prefix}_MIN_WAIT", "9")
    monkeypatch.setenv(f"{prefix}_MAX_WAIT", "3")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert f"{prefix}_MIN_WAIT" in str(info.value)
    assert f"{prefix}_MAX_WAIT" in str(info.value)


def test_min_wait_equal_to_max_wait_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRY__API_MIN_WAIT", "15")
    assert load_settings().for_operation("api") == (4, 15.0, 15.0)


def test_failed_reload_keeps_previous_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRY__WORKER_MAX_ATTEMPTS", "6")
    good = reload_settings()
    monkeypatch.setenv("RETRY__WORKER_MAX_ATTEMPTS", "0")
    with pytest.raises(SettingsError):
        reload_settings()
    assert get_settings() is good


@pytest.mark.parametrize("raw", ["inf", "1e400", "nan"])
def test_non_finite_wait_is_rejected_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    """A wait the policy builder refuses must already be refused by the settings, by name.

    build_policy rejects non-finite waits ("max_wait must be a finite number"), so accepting
    RETRY__WORKER_MAX_WAIT=inf here only moves the failure to the first decorated call, with
    a message that no longer names the variable.
    """
    monkeypatch.setenv("RETRY__WORKER_MAX_WAIT", raw)
    with pytest.raises(SettingsError, match="RETRY__WORKER_MAX_WAIT"):
        load_settings()
