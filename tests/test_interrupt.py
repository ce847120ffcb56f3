"""Ctrl-C during any command prints ``retrysim: interrupted`` on stderr and exits 130.

Typer turns a KeyboardInterrupt inside a command into a silent exit 130, so the promised line
never appeared. compare and sweep say more on that one line: how many runs finished, where they
are kept, and how to go on from them.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import retrysim.runs.runner
from retrysim.cli import app as app_module
from retrysim.cli import exits
from retrysim.cli.app import app
from retrysim.results.document import ResultDocument
from retrysim.runs import executors


def _interrupt(*args: Any, **kwargs: Any) -> Any:
    raise KeyboardInterrupt


def test_ctrl_c_during_run_says_interrupted_and_exits_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    earlier = out / "result.json"
    earlier.write_text('{"earlier": true}\n', encoding="utf-8")
    monkeypatch.setattr(retrysim.runs.runner, "run", _interrupt)
    monkeypatch.setattr(sys, "argv", ["retrysim", "run", "redis-blip", "--out", str(out), "-q"])
    with pytest.raises(SystemExit) as exited:
        app_module.main()
    assert exited.value.code == 130
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == "retrysim: interrupted"
    assert "Traceback" not in err
    assert earlier.read_text(encoding="utf-8") == '{"earlier": true}\n'  # untouched
    assert sorted(p.name for p in out.iterdir()) == ["result.json"]  # no partial files


# --- compare and sweep: a Ctrl-C keeps what finished and says how to go on ----------------------

# A real SIGINT in a real process (with a real pool of two workers): the command's progress
# callback sends it once two runs have finished, as a Ctrl-C at that moment would.
CTRL_C_AFTER_TWO = """
import os, signal, sys
from retrysim.cli import app as app_module, progress
real_update = progress.WorkProgress.update
def update(self, done, total):
    real_update(self, done, total)
    if done == {after}:
        os.{how}(os.getpid(), signal.{signal})
progress.WorkProgress.update = update
sys.argv = ["retrysim", *sys.argv[1:]]
app_module.main()
"""

SWEEP = [
    "sweep",
    "lock-contention",
    "--grid",
    "policy.max_attempts=2,3,4",
    "--seeds",
    "2",
    "--json",
]
COMPARE = [
    "compare",
    "lock-contention",
    "--set",
    "policy.max_attempts=2,3,4",
    "--seeds",
    "2",
    "--json",
]


def _in_subprocess(script: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, check=False
    )


def _complete_checkpoints(runs: Path) -> list[Path]:
    files = sorted(runs.iterdir())
    for file in files:
        assert not file.name.startswith("."), file  # no temporary file left behind
        data = json.loads(file.read_text(encoding="utf-8"))
        assert set(data) == {"variant", "seed", "document"}
    return files


@pytest.mark.parametrize("command", [SWEEP, COMPARE], ids=["sweep", "compare"])
def test_ctrl_c_keeps_complete_checkpoints_and_says_how_to_resume(
    command: list[str], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    script = CTRL_C_AFTER_TWO.format(after=2, how="kill", signal="SIGINT")
    done = _in_subprocess(script, [*command, "--workers", "2", "--out", str(out), "-q"])
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("retrysim: interrupted after 2 of 6 runs; ")
    assert f"saved in {out / 'runs'}" in lines[0]
    assert "run the same command again (or with --resume)" in lines[0]
    assert done.stdout == ""  # no partial table or JSON
    assert len(_complete_checkpoints(out / "runs")) == 2
    name = "sweep.json" if command is SWEEP else "compare.json"
    assert not (out / name).exists()  # results of the whole run only once it is whole

    resumed = CliRunner().invoke(app, [*command, "--out", str(out), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    fresh = CliRunner().invoke(app, command)
    assert json.loads(resumed.stdout) == json.loads(fresh.stdout)
    assert json.loads((out / name).read_text(encoding="utf-8")) == json.loads(fresh.stdout)


def test_a_killed_compare_resumes_from_its_checkpoints(tmp_path: Path) -> None:
    """SIGKILL: no clean-up at all, like a crash; the checkpoints written so far are whole."""
    out = tmp_path / "out"
    script = CTRL_C_AFTER_TWO.format(after=3, how="kill", signal="SIGKILL")
    killed = _in_subprocess(script, [*COMPARE, "--workers", "1", "--out", str(out), "-q"])
    assert killed.returncode == -signal.SIGKILL
    assert len(_complete_checkpoints(out / "runs")) == 3
    resumed = CliRunner().invoke(app, [*COMPARE, "--out", str(out)])  # the same command again
    assert resumed.exit_code == 0, resumed.output
    fresh = CliRunner().invoke(app, COMPARE)
    assert json.loads(resumed.stdout) == json.loads(fresh.stdout)


def test_ctrl_c_without_out_says_nothing_was_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real = executors.run_task

    def second_is_interrupted(task: executors.Task) -> ResultDocument:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(task)

    monkeypatch.setattr(executors, "run_task", second_is_interrupted)
    result = CliRunner().invoke(app, [*SWEEP, "--workers", "1"])
    assert result.exit_code == 130
    assert result.stderr.strip() == (
        "retrysim: interrupted after 1 of 6 runs; nothing was kept (with --out DIR each "
        "finished run is saved, and the same command again goes on from there)"
    )
    assert result.stdout == ""


def test_the_entry_point_prints_a_commands_own_interrupted_line_only(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(executors, "run_task", _interrupt)
    monkeypatch.setitem(exits.interrupt_reported, "on", False)
    monkeypatch.setattr(sys, "argv", ["retrysim", *SWEEP, "--workers", "1", "-q"])
    with pytest.raises(SystemExit) as exited:
        app_module.main()
    assert exited.value.code == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("retrysim: interrupted after 0 of 6 runs; ")


def test_resume_is_refused_when_there_is_nothing_to_resume(tmp_path: Path) -> None:
    no_out = CliRunner().invoke(app, [*SWEEP, "--resume"])
    assert no_out.exit_code == 2
    assert "--resume needs --out DIR" in no_out.stderr
    empty = CliRunner().invoke(app, [*SWEEP, "--out", str(tmp_path / "new"), "--resume"])
    assert empty.exit_code == 2
    assert f"--resume: nothing to resume in {tmp_path / 'new'}" in empty.stderr
    assert not (tmp_path / "new").exists()  # refused before anything was written
    other = tmp_path / "other"
    assert CliRunner().invoke(app, [*COMPARE, "--out", str(other)]).exit_code == 0
    different = CliRunner().invoke(
        app, ["sweep", "startup-race", "--grid", "policy.max_attempts=2,3", "--out", str(other),
              "--resume"],
    )  # fmt: skip
    assert different.exit_code == 2
    assert "none of the 6 checkpoints" in different.stderr
    assert len(different.stderr.strip().splitlines()) == 1
