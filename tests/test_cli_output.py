"""Finished work is never lost: paths are checked before a run, the report comes before files."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import retrysim.plots
import retrysim.runs.runner
from retrysim.cli.app import app

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--set", "clients.count=300"]


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "160"})


def test_matplotlib_comes_with_the_workbench() -> None:
    """Every figure command works after the Quick start's install (the workbench extra)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert any(
        dep.startswith("matplotlib") for dep in project["optional-dependencies"]["workbench"]
    )
    notebooks = project["optional-dependencies"]["notebooks"]
    assert any(dep.startswith("jupyterlab") for dep in notebooks)


@pytest.mark.usefixtures("no_simulation")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "redis-blip", "--out", "{file}"], "--out {file}: exists and is not a folder"),
        (["run", "redis-blip", "--out", "{file}/sub"], "is not a folder"),
        (["run", "redis-blip", "--plot", "{tmp}/missing/x.png"], "no such folder"),
        (["run", "redis-blip", "--plot", "{tmp}/x.gif"], "must end in"),
        (["sweep", "redis-blip", "--grid", "policy.max_attempts=1,2", "--out", "{file}"], "--out"),
        (["compare", "redis-blip", "--profile", "bindu", "--plot", "{tmp}/no/x.svg"], "folder"),
        (["settings", "--plot", "{tmp}/no/x.pdf"], "no such folder"),
    ],
)
def test_bad_output_paths_fail_before_any_simulation(
    tmp_path: Path, args: list[str], message: str
) -> None:
    file = tmp_path / "a-file"
    file.write_text("x")
    fill = {"file": str(file), "tmp": str(tmp_path)}
    result = invoke(*(a.format(**fill) for a in args))
    assert result.exit_code == 2, result.output
    assert message.format(**fill) in result.output


def test_a_failing_figure_does_not_lose_the_report(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("figure broke")

    monkeypatch.setattr(retrysim.plots, "save_run_figure", broken)
    result = invoke("run", "thundering-herd", *SMALL, "--plot", str(tmp_path / "x.png"))
    assert result.exit_code == 1
    assert "Outcome" in result.stdout  # the report was printed before the figure failed
    assert "figure broke" in result.stderr


def test_json_is_printed_before_files_are_written(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def full_disk(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device", str(tmp_path / "out" / "result.json"))

    monkeypatch.setattr("retrysim.output.write_json", full_disk)
    result = invoke("run", "redis-blip", "--json", "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert result.stdout.lstrip().startswith("{")
    assert "No space left" in result.stderr
