"""``retrysim settings``: table and JSON output, sources, and one-line errors with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from retrysim.cli.app import app
from retrysim.retry import OPERATIONS, PROFILES, build_policy, load_settings

DOCUMENTED = {
    "worker": (3, 1.0, 10.0),
    "storage": (5, 0.5, 5.0),
    "scheduler": (3, 1.0, 8.0),
    "api": (4, 1.0, 15.0),
}
WIDE = {"COLUMNS": "220", "NO_COLOR": "1"}


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, ["settings", *args], env={**WIDE, **(env or {})})


def settings_json(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = invoke("--json", *args, env=env)
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def assert_one_line_error(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("retrysim: error: ")
    for needle in needles:
        assert needle in lines[0]
    assert "Traceback" not in result.output
    assert result.stdout.strip() == ""


# --- table ----------------------------------------------------------------------------------


def test_table_shows_operations_values_and_sources() -> None:
    result = invoke()
    assert result.exit_code == 0, result.output
    out = result.stdout
    for op in OPERATIONS:
        assert op in out
    assert "default" in out
    assert "documented" in out
    assert "retry 4" in out  # storage has 5 attempts, so 4 retries
    assert "retry 5" not in out


def test_table_marks_env_and_dotenv_sources(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("RETRY__STORAGE_MAX_ATTEMPTS=7\n")
    result = invoke(env={"RETRY__API_MAX_WAIT": "22"})
    assert result.exit_code == 0, result.output
    assert "(env)" in result.stdout
    assert "(.env)" in result.stdout
    assert "22.0" in result.stdout
    assert "retry 6" in result.stdout  # storage now retries 6 times


def test_table_warns_about_synchronised_first_retry_with_bindu() -> None:
    bindu = invoke("--profile", "bindu")
    documented = invoke()
    assert bindu.exit_code == documented.exit_code == 0
    assert "first retry" in bindu.stdout
    assert "first retry" not in documented.stdout


# --- JSON -----------------------------------------------------------------------------------


def test_json_document_shape_and_defaults() -> None:
    doc = settings_json()
    assert {"profile", "jitter", "operations"} <= set(doc)
    assert doc["profile"]["value"] == "documented"
    assert doc["profile"]["source"] == "default"
    assert doc["profile"]["variable"] == "RETRY__PROFILE"
    assert doc["jitter"] == {"value": 1.0, "source": "default", "variable": "RETRY__JITTER"}
    assert set(doc["operations"]) == set(OPERATIONS)
    for op, spec in doc["operations"].items():
        knobs = ("max_attempts", "min_wait", "max_wait")
        for knob, value in zip(knobs, DOCUMENTED[op], strict=True):
            assert spec[knob] == {
                "value": value,
                "source": "default",
                "variable": f"RETRY__{op.upper()}_{knob.upper()}",
            }
        rows = spec["schedule"]
        assert len(rows) == DOCUMENTED[op][0] - 1
        total = 0.0
        for n, row in enumerate(rows, start=1):
            assert set(row) == {"retry", "min_wait", "max_wait", "worst_case_total_wait"}
            assert row["retry"] == n
            assert row["min_wait"] <= row["max_wait"] <= DOCUMENTED[op][2]
            total += row["max_wait"]
            assert row["worst_case_total_wait"] == pytest.approx(total)


def test_json_schedule_follows_documented_formula() -> None:
    doc = settings_json()
    lo, hi = DOCUMENTED["storage"][1:]
    for row in doc["operations"]["storage"]["schedule"]:
        n = row["retry"]
        assert row["min_wait"] == pytest.approx(min(hi, lo * 2 ** (n - 1)))
        assert row["max_wait"] == pytest.approx(min(hi, lo * 2 ** (n - 1) + 1.0))


def test_json_env_variable_shows_env_source() -> None:
    doc = settings_json(env={"RETRY__WORKER_MAX_ATTEMPTS": "6", "RETRY__PROFILE": "exponential"})
    worker = doc["operations"]["worker"]
    assert worker["max_attempts"] == {
        "value": 6,
        "source": "env",
        "variable": "RETRY__WORKER_MAX_ATTEMPTS",
    }
    assert worker["min_wait"]["source"] == "default"
    assert len(worker["schedule"]) == 5
    assert [r["max_wait"] for r in worker["schedule"]] == [1.0, 2.0, 4.0, 8.0, 10.0]
    assert doc["profile"]["value"] == "exponential"
    assert doc["profile"]["source"] == "env"


def test_json_env_file_shows_dotenv_source(tmp_path: Path) -> None:
    path = tmp_path / "staging.env"
    path.write_text("RETRY__API_MAX_ATTEMPTS=6\nRETRY__API_MAX_WAIT=30.0\nRETRY__JITTER=0.5\n")
    doc = settings_json("--env-file", str(path), env={"RETRY__API_MAX_WAIT": "40"})
    api = doc["operations"]["api"]
    assert api["max_attempts"]["value"] == 6
    assert api["max_attempts"]["source"] == ".env"
    assert api["max_wait"] == {"value": 40.0, "source": "env", "variable": "RETRY__API_MAX_WAIT"}
    assert api["min_wait"]["source"] == "default"
    assert doc["jitter"]["value"] == 0.5
    assert doc["jitter"]["source"] == ".env"


def test_json_default_dotenv_in_working_directory(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("RETRY__SCHEDULER_MIN_WAIT=2\n")
    scheduler = settings_json()["operations"]["scheduler"]
    assert scheduler["min_wait"] == {
        "value": 2.0,
        "source": ".env",
        "variable": "RETRY__SCHEDULER_MIN_WAIT",
    }


@pytest.mark.parametrize("profile", PROFILES)
def test_json_profile_preview_matches_the_policy(profile: str) -> None:
    doc = settings_json("--profile", profile)
    assert doc["profile"]["value"] == profile
    assert doc["profile"]["source"] != "default"
    settings = load_settings()
    for op in OPERATIONS:
        policy = build_policy(op, settings, profile=profile)
        rows = doc["operations"][op]["schedule"]
        assert [(r["min_wait"], r["max_wait"]) for r in rows] == [
            policy.wait_range(n) for n in range(1, policy.max_attempts)
        ]


def test_json_bindu_first_retry_has_no_spread() -> None:
    doc = settings_json("--profile", "bindu")
    for op in OPERATIONS:
        first = doc["operations"][op]["schedule"][0]
        assert first["min_wait"] == first["max_wait"] == 1.0


# --- errors ---------------------------------------------------------------------------------


def test_missing_env_file_is_a_one_line_error(tmp_path: Path) -> None:
    missing = tmp_path / "absent.env"
    assert_one_line_error(invoke("--env-file", str(missing)), "absent.env")


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("RETRY__WORKER_MAX_ATTEMPTS", "0"),
        ("RETRY__STORAGE_MIN_WAIT", "-1"),
        ("RETRY__API_MAX_ATTEMPTS", "many"),
        ("RETRY__PROFILE", "linear"),
    ],
)
def test_invalid_env_value_is_a_one_line_error(variable: str, raw: str) -> None:
    assert_one_line_error(invoke(env={variable: raw}), variable)
    assert_one_line_error(invoke("--json", env={variable: raw}), variable)


def test_min_above_max_is_a_one_line_error() -> None:
    result = invoke(env={"RETRY__SCHEDULER_MIN_WAIT": "9", "RETRY__SCHEDULER_MAX_WAIT": "2"})
    assert_one_line_error(result, "RETRY__SCHEDULER_MIN_WAIT", "RETRY__SCHEDULER_MAX_WAIT")


def test_invalid_value_in_env_file_names_file_and_variable(tmp_path: Path) -> None:
    path = tmp_path / "bad.env"
    path.write_text("RETRY__WORKER_MAX_WAIT=-3\n")
    assert_one_line_error(invoke("--env-file", str(path)), "bad.env", "RETRY__WORKER_MAX_WAIT")


def test_unknown_profile_option_exits_2() -> None:
    assert_one_line_error(invoke("--profile", "nope"), "nope", "--profile")


def test_infinite_wait_is_a_one_line_error_naming_the_variable() -> None:
    assert_one_line_error(invoke(env={"RETRY__WORKER_MAX_WAIT": "inf"}), "RETRY__WORKER_MAX_WAIT")


def test_long_decorrelated_schedule_does_not_crash() -> None:
    """RETRY__WORKER_MAX_ATTEMPTS=700 with the decorrelated profile: a valid configuration."""
    result = invoke(
        "--json", "--profile", "decorrelated", env={"RETRY__WORKER_MAX_ATTEMPTS": "700"}
    )
    assert result.exit_code == 0, result.output
    worker = json.loads(result.stdout)["operations"]["worker"]
    rows = worker["schedule"]
    assert len(rows) == 100  # listed rows are capped; the total still covers all 699 retries
    assert worker["schedule_truncated"] is True
    assert rows[-1]["max_wait"] == 10.0
    # decorrelated at min_wait 1, max_wait 10: longest waits 3, 9, then 10 for 697 retries
    assert worker["worst_case_total_wait"] == 3.0 + 9.0 + 10.0 * 697


def test_settings_help_lists_the_options() -> None:
    helped = CliRunner().invoke(app, ["settings", "--help"], env=WIDE)
    assert helped.exit_code == 0
    for option in ("--env-file", "--profile", "--json"):
        assert option in helped.stdout


def test_version_flag_prints_the_version() -> None:
    from retrysim import __version__

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"retrysim {__version__}"
