"""Paper cuts: -h everywhere, clean help, --json on scenarios and validate, --grid named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from retrysim.cli.app import app

COMMANDS = [
    [],
    ["run"],
    ["compare"],
    ["sweep"],
    ["settings"],
    ["scenarios"],
    ["scenarios", "show"],
    ["scenarios", "reference"],
    ["scenarios", "export"],
    ["validate"],
    ["plot"],
    ["schema"],
    ["schema", "result"],
    ["shell"],
    ["lab"],
    ["fit"],
    ["proxy"],
    ["proxy", "serve"],
    ["proxy", "toxic", "add"],
]


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "100"})


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "retrysim")
def test_every_command_takes_dash_h_and_its_help_is_clean(command: list[str]) -> None:
    short, long = invoke(*command, "-h"), invoke(*command, "--help")
    assert short.exit_code == 0, short.output
    assert short.stdout == long.stdout
    for noise in ("<bool>", "<str>", "<path>", "<int", "<list", "9223372036854775807"):
        assert noise not in short.stdout, (noise, short.stdout)


def test_seed_help_says_what_a_seed_is_and_a_bad_one_is_refused() -> None:
    assert "a whole number >= 0" in " ".join(invoke("run", "-h").stdout.split())
    result = invoke("run", "redis-blip", "--seed", "-1")
    assert result.exit_code == 2
    assert "whole number >= 0" in result.output


def test_scenarios_json_lists_names_and_descriptions() -> None:
    result = invoke("scenarios", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    names = [row["name"] for row in rows]
    assert "thundering-herd" in names
    assert all(set(row) == {"name", "description"} and row["description"] for row in rows)


def test_scenarios_show_json_is_the_validated_scenario() -> None:
    result = invoke("scenarios", "show", "redis-blip", "--json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["name"] == "redis-blip" and doc["clients"]["count"] == 500


def test_validate_json_gives_one_entry_per_file_and_exit_2_if_any_is_bad(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[policy]\nmax_atempts = 3\n', encoding="utf-8")
    result = invoke("validate", "redis-blip", str(bad), "--json")
    assert result.exit_code == 2
    good_entry, bad_entry = json.loads(result.stdout)
    assert good_entry == {
        "file": "redis-blip",
        "ok": True,
        "errors": [],
        "warnings": [],
        "defaults": [],  # redis-blip sets every default that would add time or capacity
        "summary": good_entry["summary"],
    }
    assert "500 clients" in good_entry["summary"]
    assert bad_entry["file"] == str(bad) and bad_entry["ok"] is False
    assert any("max_atempts" in e and "max_attempts" in e for e in bad_entry["errors"])
    assert result.stderr == ""  # the errors are in the document, not printed twice


def test_validate_json_all_good_exits_0() -> None:
    result = invoke("validate", "redis-blip", "--json")
    assert result.exit_code == 0
    assert [entry["ok"] for entry in json.loads(result.stdout)] == [True]


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ("policy.max_atempts=1,2", "--grid: policy.max_atempts: unknown key"),
        ("policy.max_attempts=1,x", "--grid: policy.max_attempts:"),
        ("faults.7.end=1,2", "--grid faults.7"),
    ],
)
def test_grid_errors_name_grid_not_set(grid: str, message: str) -> None:
    result = invoke("sweep", "redis-blip", "--grid", grid)
    assert result.exit_code == 2
    assert message in result.stderr and "--set" not in result.stderr
