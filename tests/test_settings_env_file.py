"""Broken ``.env`` files: named in one line, never a raw traceback or dotenv's anonymous noise."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from retrysim.cli.app import app
from retrysim.retry import settings as settings_module
from retrysim.retry.settings import SettingsError, load_settings

WIDE = {"COLUMNS": "160", "NO_COLOR": "1"}


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts as a new process would: nothing warned about yet."""
    monkeypatch.setattr(settings_module, "_warned", set())


def settings_cli(*args: str):
    return CliRunner().invoke(app, ["settings", *args], env=WIDE)


def stderr_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def test_non_utf8_env_file_is_a_settings_error_naming_file_and_offset(tmp_path: Path) -> None:
    env = tmp_path / "latin1.env"
    env.write_bytes(b"RETRY__WORKER_MAX_ATTEMPTS=4\n# caf\xe9\n")
    with pytest.raises(SettingsError, match=r"latin1\.env.*0xe9 at offset 34, line 2"):
        load_settings(env)


def test_cli_names_the_non_utf8_file_in_one_error_line(tmp_path: Path) -> None:
    env = tmp_path / "latin1.env"
    env.write_bytes(b"\xff\n")
    result = settings_cli("--env-file", str(env))
    assert result.exit_code == 2, result.output
    [line] = stderr_lines(result)
    assert line.startswith("retrysim: error: ")
    assert line.count(str(env)) == 1 and "offset 0" in line and "UTF-8" in line


GARBAGE = "RETRY__WORKER_MAX_ATTEMPTS=4\nthis is not an assignment\nRETRY__API_MAX_ATTEMPTS=6\n"


def test_unparsable_lines_are_warned_once_naming_file_and_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = tmp_path / "garbage.env"
    env.write_text(GARBAGE)
    caplog.set_level(logging.DEBUG)
    settings = load_settings(env)
    load_settings(env)  # once per file and line, not once per read
    assert settings.worker_max_attempts == 4
    assert settings.api_max_attempts == 6
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert messages == [
        f"{env}, line 2: cannot parse this line (expected KEY=VALUE); it is ignored"
    ]
    assert all(r.name == "retrysim.retry" for r in caplog.records if r.levelno >= logging.WARNING)


def test_cli_warns_about_an_unparsable_line_once(tmp_path: Path) -> None:
    env = tmp_path / "garbage.env"
    env.write_text(GARBAGE)
    result = settings_cli("--env-file", str(env))
    assert result.exit_code == 0, result.output
    assert stderr_lines(result) == [
        f"retrysim: warning: {env}, line 2: cannot parse this line (expected KEY=VALUE); "
        "it is ignored"
    ]


def test_dev_null_is_an_empty_env_file() -> None:
    assert load_settings("/dev/null") == load_settings(None)
    result = settings_cli("--env-file", "/dev/null", "--json")
    assert result.exit_code == 0, result.output
    assert stderr_lines(result) == []


def test_only_a_missing_path_is_missing(tmp_path: Path) -> None:
    missing = tmp_path / "nope.env"
    with pytest.raises(SettingsError, match="no such file"):
        load_settings(missing)
    result = settings_cli("--env-file", str(missing))
    assert result.exit_code == 2
    assert "no such file" in result.stderr


def test_a_pipe_given_as_env_file_is_read_once_and_every_value_counts(tmp_path: Path) -> None:
    """``--env-file <(...)`` is a pipe: only its first reader gets the contents. The CLI reads
    it once and hands the contents to the warnings, the settings and the sources; a second
    open would block with no writer, which the subprocess timeout turns into a failure."""
    import json
    import os
    import subprocess
    import sys
    import threading

    fifo = tmp_path / "settings.fifo"
    os.mkfifo(fifo)

    def write_once() -> None:
        with open(fifo, "w", encoding="utf-8") as pipe:
            pipe.write("RETRY__API_MAX_ATTEMPTS=7\nRETRY__API_BREAKER_ENABLED=true\n")

    writer = threading.Thread(target=write_once, daemon=True)
    writer.start()
    done = subprocess.run(
        [sys.executable, "-m", "retrysim", "settings", "--env-file", str(fifo), "--json"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if not k.upper().startswith("RETRY__")},
    )
    writer.join(timeout=5)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    api = doc["operations"]["api"]
    assert (api["max_attempts"]["value"], api["max_attempts"]["source"]) == (7, ".env")
    assert '".env"' in json.dumps(doc["mechanisms"])  # the breaker switch, from the same read
