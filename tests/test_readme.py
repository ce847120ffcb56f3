"""The README's Quick start is what CI runs, and its examples name real things."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from retrysim.cli.app import app
from retrysim.names import METRIC_NAMES

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def quick_start() -> list[str]:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None, "the Quick start has a bash block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_quick_start_is_exactly_two_commands() -> None:
    commands = quick_start()
    assert len(commands) == 2
    assert commands[0].endswith("retrysim run thundering-herd")


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    test_command = quick_start()[1]
    lines = [line.strip() for line in ci.splitlines() if not line.lstrip().startswith("#")]
    assert test_command in lines


def test_every_command_in_the_table_exists() -> None:
    table = README.split("## Commands", 1)[1].split("### ", 1)[0]
    names = set(re.findall(r"`retrysim (\w+)", table))
    assert names
    for name in names:
        result = CliRunner().invoke(app, [name, "--help"])
        assert result.exit_code == 0, f"retrysim {name} --help: {result.output}"


def test_every_metric_name_is_documented() -> None:
    for name in METRIC_NAMES:
        assert f"`{name}`" in README, name


def test_every_bundled_scenario_is_documented() -> None:
    import retrysim

    for name in retrysim.bundled_scenarios():
        assert f"`{name}`" in README, name
