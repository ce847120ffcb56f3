"""Client libraries' errors in scenarios (the allow-list), the run's verdict on them, and the
``retrysim errors`` command."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

import retrysim
from retrysim.cli.app import app
from retrysim.names import ERROR_NAMES
from retrysim.sim import records as rec
from retrysim.sim.catalogue import LIBRARY_ERROR_NAMES
from retrysim.sim.failures import CODE_NAMES, ERROR_CLASSES, make_error

REDIS = "redis.exceptions.ConnectionError"


def scenario(error: str, profile: str) -> dict[str, Any]:
    return {
        "name": "redis-down",
        "duration": 6,
        "policy": {"operation": "scheduler", "profile": profile},
        "clients": {"count": 200, "arrival": {"kind": "uniform", "start": 0, "end": 5}},
        "service": {"kind": "queue", "concurrency": 50, "queue_limit": 5000, "latency": 0.002},
        "faults": [{"kind": "outage", "start": 1, "end": 2, "error": error}],
    }


def test_library_names_are_in_the_registry_after_the_old_codes() -> None:
    assert ERROR_NAMES[-len(LIBRARY_ERROR_NAMES) :] == LIBRARY_ERROR_NAMES
    assert CODE_NAMES.index("CircuitOpen") == 10  # existing records keep their codes
    assert len(CODE_NAMES) <= 2 ** (8 * rec.ATTEMPT_DTYPE["error"].itemsize)
    error = make_error(CODE_NAMES.index(REDIS))
    assert type(error) is ERROR_CLASSES[REDIS]
    assert f"{type(error).__module__}.{type(error).__qualname__}" == REDIS


def test_an_unknown_error_name_is_one_line_with_a_did_you_mean() -> None:
    with pytest.raises(retrysim.ScenarioError) as raised:
        retrysim.parse_scenario(scenario("redis.ConnectionEror", "bindu"))
    message = str(raised.value)
    assert "\n" not in message
    assert "did you mean 'redis.exceptions.ConnectionError'?" in message
    assert "'httpx.ConnectError'" in message  # the allowed names are listed
    with pytest.raises(retrysim.ScenarioError, match=r"'os\.system' is not allowed"):
        retrysim.parse_scenario(scenario("os.system", "bindu"))


def test_bindu_never_retries_a_redis_outage_and_the_document_says_so() -> None:
    doc = retrysim.run(retrysim.parse_scenario(scenario(REDIS, "bindu"))).document
    failed = doc["give_ups"]["not_retried"][REDIS]
    assert failed > 0
    assert REDIS not in doc["policy_facts"]["retried_errors"]
    (finding,) = [d for d in doc["diagnoses"] if d["id"] == "not_retried"]
    assert (
        f"{failed:,} calls failed on {REDIS}, which this policy never retries"
        in (finding["evidence"])
    )


def test_documented_retries_a_redis_outage() -> None:
    doc = retrysim.run(retrysim.parse_scenario(scenario(REDIS, "documented"))).document
    assert REDIS in doc["policy_facts"]["retried_errors"]
    assert doc["give_ups"]["not_retried"] == {}
    assert "not_retried" not in {d["id"] for d in doc["diagnoses"]}


def test_library_errors_are_listed_only_where_raised() -> None:
    doc = retrysim.run(retrysim.parse_scenario(scenario("ConnectionError", "documented"))).document
    assert not set(doc["policy_facts"]["retried_errors"]) & set(LIBRARY_ERROR_NAMES)


def test_the_report_marks_errors_the_policy_never_retries(tmp_path: Any) -> None:
    path = tmp_path / "redis.toml"
    faults = '[[faults]]\nkind = "outage"\nstart = 1\nend = 2\nerror = "' + REDIS + '"\n'
    path.write_text(
        'name = "r"\nduration = 6\n[policy]\noperation = "scheduler"\n'
        '[clients]\ncount = 100\narrival = { kind = "uniform", start = 0, end = 5 }\n'
        '[service]\nkind = "queue"\nconcurrency = 50\nqueue_limit = 5000\nlatency = 0.002\n'
        + faults,
        encoding="utf-8",
    )
    bindu = CliRunner().invoke(
        app, ["run", str(path), "--profile", "bindu"], env={"COLUMNS": "200"}
    )
    assert bindu.exit_code == 0, bindu.output
    assert "this policy never retries it" in bindu.output
    assert f"calls failed on {REDIS}, which this policy never retries" in bindu.output
    documented = CliRunner().invoke(
        app, ["run", str(path), "--profile", "documented"], env={"COLUMNS": "200"}
    )
    assert documented.exit_code == 0, documented.output
    assert "never retries" not in documented.output


def _errors(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["errors", *args, "--json"])
    assert result.exit_code == 0, result.output
    return {row["name"]: row for row in json.loads(result.output)["errors"]}


def test_errors_command_bindu_does_not_retry_redis() -> None:
    rows = _errors("--profile", "bindu")
    assert not any(rows[REDIS]["retried"].values())
    assert not any(rows["httpx.ConnectError"]["retried"].values())
    assert all(rows["FileNotFoundError"]["retried"].values())  # an OSError: the shipped set
    assert all(rows["requests.exceptions.ConnectionError"]["retried"].values())  # also OSError
    assert rows[REDIS]["transient"]


def test_errors_command_documented_retries_transient_library_errors() -> None:
    rows = _errors("--profile", "documented")
    for name in (REDIS, "httpx.ConnectError", "botocore.exceptions.ClientError"):
        assert all(rows[name]["retried"].values()), name
    for name in ("ServerError", "FileNotFoundError", "asyncpg.exceptions.SerializationError"):
        assert not any(rows[name]["retried"].values()), name
    for row in rows.values():  # the classifier and the policy agree, row by row
        assert all(retried is row["transient"] for retried in row["retried"].values())


def test_errors_command_says_real_class_or_stand_in() -> None:
    rows = _errors("--profile", "documented")
    for row in rows.values():
        if row["library"] is None:
            assert row["instance"] in ("builtin", "retrysim")
        elif row["installed"] and not row["note"]:
            assert row["instance"] == "real"
        else:
            assert row["instance"] == "stand-in"
    assert rows[REDIS]["class"] == REDIS


def test_errors_command_table_and_bad_profile() -> None:
    table = CliRunner().invoke(app, ["errors", "--profile", "bindu"], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert REDIS in table.output and "Transient but not retried everywhere" in table.output
    bad = CliRunner().invoke(app, ["errors", "--profile", "bindo"])
    assert bad.exit_code == 2
    assert "unknown profile 'bindo'" in bad.output


def test_errors_table_never_breaks_a_name_mid_word_at_80_columns() -> None:
    table = CliRunner().invoke(app, ["errors", "--profile", "bindu"], env={"COLUMNS": "80"})
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    for name in _errors("--profile", "bindu"):
        module, _, cls = name.rpartition(".")
        # each class name stands whole on one line (after its module, or on the next line)
        assert any(cls in line for line in lines), name
        assert not module or any(f"{module}." in line for line in lines), name
