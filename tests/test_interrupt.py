"""Ctrl-C during any command prints ``retrysim: interrupted`` on stderr and exits 130.

Typer turns a KeyboardInterrupt inside a command into a silent exit 130, so the promised line
never appeared.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

import retrysim.runner
from retrysim.cli import app as app_module


def _interrupt(*args: Any, **kwargs: Any) -> Any:
    raise KeyboardInterrupt


def test_ctrl_c_during_run_says_interrupted_and_exits_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    earlier = out / "result.json"
    earlier.write_text('{"earlier": true}\n', encoding="utf-8")
    monkeypatch.setattr(retrysim.runner, "run", _interrupt)
    monkeypatch.setattr(sys, "argv", ["retrysim", "run", "redis-blip", "--out", str(out), "-q"])
    with pytest.raises(SystemExit) as exited:
        app_module.main()
    assert exited.value.code == 130
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == "retrysim: interrupted"
    assert "Traceback" not in err
    assert earlier.read_text(encoding="utf-8") == '{"earlier": true}\n'  # untouched
    assert sorted(p.name for p in out.iterdir()) == ["result.json"]  # no partial files
