"""Every command a report suggests runs when pasted, and runs what the report was about.

A run of a scenario *file* whose path has a space and a quote in it, with options of its own
(--seed, other --set, --profile, --env-file): each suggested ``retrysim run`` line is taken
from the report text as printed (80 columns, not a terminal), split as a POSIX shell splits it
and run; it must exit 0, on the same file, with the user's options and only the suggested
change. One line also goes through a real ``bash``. The shell's report suggests its own
``set`` instead, which works in the same session.
"""

from __future__ import annotations

import io
import json
import os
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from retrysim.cli.app import app
from retrysim.cli.shell import Shell
from retrysim.model.library import bundled_scenarios
from retrysim.render.rerun import kept_arguments, run_command
from retrysim.results.document import ResultDocument

#: The user's options: a seed, a --set the suggestion replaces, one it must keep, a profile,
#: and an env file whose setting must stay in effect.
OPTIONS = [
    "--seed",
    "7",
    "--set",
    "policy.max_attempts=3",
    "--set",
    "clients.count=2000",
    "--set",
    "faults.0.end=15",
    "--profile",
    "equal_jitter",
]
HERE = "(here: "
PINNED = "   (the scenario sets it"


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """thundering-herd, copied to a folder and file whose names a shell would split or end."""
    folder = tmp_path_factory.mktemp("cmds") / "team's runs"
    folder.mkdir()
    path = folder / 'my "deploy" copy.toml'
    path.write_bytes(bundled_scenarios()["thundering-herd"].read_bytes())
    (folder / "prod env").write_text("RETRY__SCHEDULER_MIN_WAIT=1.5\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def first(scenario_file: Path) -> tuple[list[str], dict[str, Any], str]:
    """The user's command, its result document, and its report as printed."""
    env_file = str(scenario_file.parent / "prod env")
    args = ["run", str(scenario_file), *OPTIONS, "--env-file", env_file]
    shown = CliRunner().invoke(app, args)
    assert shown.exit_code == 0, shown.output
    saved = CliRunner().invoke(app, [*args, "--json"])
    assert saved.exit_code == 0, saved.output
    return args, json.loads(saved.stdout), shown.stdout


def suggested(report: str) -> list[str]:
    """Every ``retrysim run`` command in the report's diagnoses, as printed."""
    found = []
    for line in report.splitlines():
        text = line.strip()
        if HERE in text and text.endswith(")"):
            found.append(text.split(HERE, 1)[1][:-1])
        elif text.startswith("retrysim run "):
            found.append(text.split(PINNED, 1)[0])
    return found


def test_the_document_says_how_to_run_it_again(
    scenario_file: Path, first: tuple[list[str], dict[str, Any], str]
) -> None:
    args, doc, _ = first
    assert doc["source"] == str(scenario_file) and doc["scenario"] == "thundering-herd"
    assert ["run", doc["source"], *doc["arguments"]] == args


def test_every_suggested_command_runs_the_same_file_with_only_its_change(
    scenario_file: Path, first: tuple[list[str], dict[str, Any], str]
) -> None:
    _, doc, report = first
    commands = suggested(report)
    changes = [s["set"] for d in doc["diagnoses"] for s in d["settings"]]
    assert len(commands) == len(changes) >= 2, report  # every setting is shown as a command
    assert any(PINNED in line for line in report.splitlines())  # both forms of the line seen
    for command, change in zip(commands, changes, strict=True):
        words = shlex.split(command)
        assert words[:3] == ["retrysim", "run", str(scenario_file)], command
        assert words[-2:] == ["--set", change], command
        again = CliRunner().invoke(app, [*words[1:], "--json"])
        assert again.exit_code == 0, f"{command}: {again.output}"
        rerun = json.loads(again.stdout)
        key, _, value = change.partition("=")
        assert _at(rerun["settings"], key) == tomllib.loads(f"v = {value}")["v"], command
        assert _without(rerun["settings"], key) == _without(doc["settings"], key), command
        for same in ("seed", "clients", "faults", "profile", "source"):
            assert rerun[same] == doc[same], (command, same)
    assert doc["settings"]["min_wait"] == 1.5 and doc["clients"]["count"] == 2000  # kept


def test_a_suggested_command_runs_as_pasted_into_bash(
    first: tuple[list[str], dict[str, Any], str],
) -> None:
    """shlex.split is Python's reading; bash's is the one that matters when pasting."""
    command = suggested(first[2])[0]
    script = f'retrysim() {{ "$PYTHON" -m retrysim "$@"; }}\n{command} --json --quiet\n'
    done = subprocess.run(
        ["bash", "-c", script],
        env={**os.environ, "PYTHON": sys.executable, "COLUMNS": "80"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["source"] == first[1]["source"]


def test_a_command_is_one_line_however_narrow_the_report(
    first: tuple[list[str], dict[str, Any], str],
) -> None:
    """Rich never breaks a command (a pasted newline would run half of it): the line runs past
    the edge for the terminal to wrap softly."""
    report = first[2]
    lines = [line for line in report.splitlines() if "retrysim run '" in line]
    assert lines and all(len(line) > 80 for line in lines)  # wider than the report, yet whole
    for command in suggested(report):
        assert shlex.split(command)[-2] == "--set" and "--env-file" in command, command


CHAOS = """name = "http-blip"
seed = 1
duration = 0.5
policy = { operation = "api", max_attempts = 2, min_wait = 0.1, max_wait = 0.1, jitter = 0.0 }
clients = { count = 10, calls_per_client = 1, timeout = 1.0 }
service = { kind = "ideal", latency = 0.001 }
faults = [{ kind = "outage", start = 0, end = 2, error = "httpx.HTTPStatusError" }]
"""


def test_a_real_runs_suggestions_simulate_the_same_file(scenario_file: Path) -> None:
    """``retrysim chaos`` reports as ``run`` does: its suggestions simulate the change on the
    file it ran, with its --set; 503s for 2 s outlast two attempts 0.1 s apart."""
    path = scenario_file.parent / "http blip's.toml"
    path.write_text(CHAOS, encoding="utf-8")
    args = ["chaos", str(path), "--start-http", "--set", "clients.count=8"]
    real = CliRunner().invoke(app, args)
    assert real.exit_code == 0, real.output
    commands = suggested(real.stdout)
    assert commands, real.stdout
    for command in commands:
        words = shlex.split(command)
        assert words[:3] == ["retrysim", "run", str(path)] and "clients.count=8" in words
        again = CliRunner().invoke(app, [*words[1:], "--json"])
        assert again.exit_code == 0, f"{command}: {again.output}"
        assert json.loads(again.stdout)["clients"]["count"] == 8


def test_the_shell_suggests_its_own_set_which_works_there(scenario_file: Path) -> None:
    """The shell's scenario may hold edits no file has: its report suggests the shell's own
    ``set``, and each one typed into the same session changes that setting."""
    shell = Shell(io.StringIO())
    for line in (f"load {scenario_file}", "set clients.count=2000", "run"):
        shell.execute(line)
    stream = shell.stdout
    assert isinstance(stream, io.StringIO)
    report = stream.getvalue()
    lines = [text.split(HERE, 1)[1][:-1] for text in report.splitlines() if HERE in text]
    assert lines and all(line.startswith("set policy.") for line in lines), report
    assert "retrysim run" not in report and shell.errors == 0
    for line in lines:
        shell.execute(line)
        key, _, value = line.removeprefix("set ").partition("=")
        assert shell.loaded is not None
        assert _at(shell.loaded.data["policy"], key) == tomllib.loads(f"v = {value}")["v"]
    shell.execute("run")
    assert shell.errors == 0, stream.getvalue()


# --- the command itself: a law over any path and options -----------------------------------


_word = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=20)


@given(
    source=_word,
    kept=st.lists(_word, max_size=4),
    change=st.from_regex(r"policy\.[a-z_]{1,12}=[0-9]{1,3}", fullmatch=True),
)
def test_a_shell_reads_back_exactly_the_words_the_command_is_made_of(
    source: str, kept: list[str], change: str
) -> None:
    arguments = [w for item in kept for w in ("--set", f"clients.{item}=1")]
    doc = cast(ResultDocument, {"source": source, "arguments": arguments})
    assert shlex.split(run_command(doc, change)) == [
        "retrysim",
        "run",
        source,
        *arguments,
        "--set",
        change,
    ]


def test_a_set_of_the_changed_key_gives_way_to_the_change() -> None:
    arguments = ["--seed", "3", "--set", "policy.max_attempts=3", "--set", " clients.count = 5"]
    assert kept_arguments(arguments, ["policy.max_attempts=6"]) == [
        "--seed",
        "3",
        "--set",
        " clients.count = 5",
    ]
    assert kept_arguments(arguments, ["clients.count=9"]) == arguments[:4]


def _at(settings: dict[str, Any], key: str) -> Any:
    node: Any = settings
    for part in key.removeprefix("policy.").split("."):
        node = node[part]
    return node


def _without(settings: dict[str, Any], key: str) -> dict[str, Any]:
    """``settings`` without the changed knob and the list of options fixed by --set."""
    out = json.loads(json.dumps(settings))
    parts = key.removeprefix("policy.").split(".")
    node = out
    for part in parts[:-1]:
        node = node[part]
    del node[parts[-1]]
    out.pop("overrides")
    return cast(dict[str, Any], out)
