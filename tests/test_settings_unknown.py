"""A mistyped RETRY__* variable is named, with the closest real one, not silently ignored."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from retrysim.cli.app import app
from retrysim.retry import settings as settings_module
from retrysim.retry.settings import load_settings, unknown_variables, valid_variables


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts as a new process would: nothing warned about yet."""
    monkeypatch.setattr(settings_module, "_warned", set())


def warnings_in(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "retrysim.retry" and r.levelno == logging.WARNING
    ]


def test_library_warns_once_per_unknown_variable_with_the_closest_name(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("RETRY__WORKER_MAX_ATEMPTS", "7")
    monkeypatch.setenv("RETRY__STORAGE_MIN_WIAT", "1")
    caplog.set_level(logging.WARNING, logger="retrysim.retry")
    loaded = load_settings()
    load_settings()  # the same variables again: no new warnings
    assert loaded.worker_max_attempts == 3  # still ignored, as before: a warning, not an error
    messages = warnings_in(caplog)
    assert len(messages) == 2
    assert any(
        "RETRY__WORKER_MAX_ATEMPTS" in m and "did you mean RETRY__WORKER_MAX_ATTEMPTS?" in m
        for m in messages
    )
    assert any("did you mean RETRY__STORAGE_MIN_WAIT?" in m for m in messages)
    assert all("in the environment" in m for m in messages)


def test_library_checks_the_env_file_and_names_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = tmp_path / "prod.env"
    env.write_text("RETRY__JITTR=2\nRETRY__API_MAX_ATTEMPTS=6\nDATABASE_URL=x\n")
    caplog.set_level(logging.WARNING, logger="retrysim.retry")
    assert load_settings(env).api_max_attempts == 6
    [message] = warnings_in(caplog)
    assert f"RETRY__JITTR in {env}" in message and "did you mean RETRY__JITTER?" in message


def test_valid_variables_in_any_case_and_other_variables_are_not_warned(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("retry__worker_max_attempts", "4")
    monkeypatch.setenv("RETRYING_SOMETHING_ELSE", "1")
    caplog.set_level(logging.WARNING, logger="retrysim.retry")
    assert load_settings().worker_max_attempts == 4
    assert warnings_in(caplog) == []
    assert unknown_variables() == []


def test_a_variable_like_no_setting_lists_the_valid_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRY__XYZ", "1")
    [unknown] = unknown_variables()
    assert unknown.suggestion is None
    assert "valid: RETRY__WORKER_MAX_ATTEMPTS" in unknown.message()


def test_load_settings_warn_false_logs_nothing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("RETRY__WORKER_MAX_ATEMPTS", "7")
    caplog.set_level(logging.WARNING, logger="retrysim.retry")
    load_settings(warn=False)
    assert warnings_in(caplog) == []


def test_cli_prints_one_warning_line_per_variable_and_exits_0(tmp_path: Path) -> None:
    env = tmp_path / "my.env"
    env.write_text("RETRY__SCHEDULER_MAX_WAITT=3\n")
    result = CliRunner().invoke(
        app,
        ["settings", "--env-file", str(env)],
        env={"RETRY__WORKER_MAX_ATEMPTS": "7", "COLUMNS": "160"},
    )
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        "retrysim: warning: RETRY__WORKER_MAX_ATEMPTS in the environment is not a retry "
        "setting and is ignored; did you mean RETRY__WORKER_MAX_ATTEMPTS?",
        f"retrysim: warning: RETRY__SCHEDULER_MAX_WAITT in {env} is not a retry setting and "
        "is ignored; did you mean RETRY__SCHEDULER_MAX_WAIT?",
    ]


# --- one underscore short: RETRY_X ------------------------------------------------------------


def test_a_single_underscore_prefix_is_warned_with_the_right_variable(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("RETRY_SCHEDULER_MAX_ATTEMPTS", "6")
    caplog.set_level(logging.WARNING, logger="retrysim.retry")
    loaded = load_settings()
    load_settings()  # once per process, as every other typo
    assert loaded.scheduler_max_attempts == 3  # still ignored: a warning, not a value
    assert warnings_in(caplog) == [
        "RETRY_SCHEDULER_MAX_ATTEMPTS in the environment is not a retry setting and is ignored; "
        "did you mean RETRY__SCHEDULER_MAX_ATTEMPTS? (settings start with RETRY__, two "
        "underscores)"
    ]


def test_a_single_underscore_typo_in_the_env_file_too(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("retry_api_max_atempts=6\nRETRY__API_MIN_WAIT=0.5\n")
    [unknown] = unknown_variables(env)
    assert unknown.name == "retry_api_max_atempts" and unknown.origin == str(env)
    assert unknown.suggestion == "RETRY__API_MAX_ATTEMPTS"


@pytest.mark.parametrize("name", ["RETRY_COUNT", "RETRY_DELAY_MS", "RETRY_", "RETRYING_X"])
def test_other_programs_retry_variables_are_left_alone(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(name, "3")
    assert unknown_variables() == []


def test_the_cli_prints_the_single_underscore_warning(tmp_path: Path) -> None:
    env = tmp_path / "my.env"
    env.write_text("RETRY_WORKER_MIN_WAIT=2\n")
    result = CliRunner().invoke(app, ["settings", "--env-file", str(env)], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert (
        f"retrysim: warning: RETRY_WORKER_MIN_WAIT in {env} is not a retry setting and is "
        "ignored; did you mean RETRY__WORKER_MIN_WAIT? (settings start with RETRY__, two "
        "underscores)"
    ) in result.stderr


def test_every_setting_one_underscore_short_suggests_itself(tmp_path: Path) -> None:
    valid = valid_variables()
    env = tmp_path / "short.env"
    env.write_text("".join(f"{name.replace('RETRY__', 'RETRY_', 1)}=1\n" for name in valid))
    found = {u.name: u.suggestion for u in unknown_variables(env)}
    assert found == {name.replace("RETRY__", "RETRY_", 1): name for name in valid}
