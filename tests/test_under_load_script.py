"""scripts/under_load.py: what it reads from a JUnit report, what it prints, and that its busy
loop cannot outlive it. (Its real use, 20 runs of the real-service tests, is in the README's
Development section; it takes minutes.)"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "under_load.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("retrysim_under_load_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


under_load = _load()

REPORT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="3">
<testcase classname="tests.test_x" name="test_fast">
  <properties><property name="took" value="0.25"/><property name="label" value="n/a"/></properties>
</testcase>
<testcase classname="tests.test_x" name="test_broken"><failure message="boom"/></testcase>
<testcase classname="tests.test_x" name="test_absent"><skipped message="no server"/></testcase>
</testsuite></testsuites>
"""


def test_a_report_gives_failures_skips_and_numeric_figures(tmp_path: Path) -> None:
    path = tmp_path / "run.xml"
    path.write_text(REPORT, encoding="utf-8")
    tests, failed, skipped, figures = under_load.read_junit(path)
    assert (tests, failed, skipped) == (3, ["tests.test_x::test_broken"], 1)
    assert figures == {"test_fast::took": 0.25}  # a figure that is no number has no spread


def test_the_summary_counts_passes_failures_and_the_spread_of_each_figure() -> None:
    outcome = under_load.RunOutcome
    outcomes = [
        outcome(0, 10.0, 2, [], 0, {"t::took": 0.3}),
        outcome(1, 12.0, 2, ["m::t"], 0, {"t::took": 0.1}),
        outcome(0, 11.0, 2, [], 0, {"t::took": 0.2}),
    ]
    lines = under_load.summarize(outcomes)
    assert lines[0] == "2 of 3 runs passed"
    assert "  failed in 1 run(s): m::t" in lines
    assert "  t::took: min 0.1  median 0.2  max 0.3  (n=3)" in lines
    assert lines[-1] == "wall time a run: min 10  median 11  max 12  (n=3) s"


def test_the_busy_loop_ends_when_the_script_is_gone() -> None:
    """A parent that starts a burner and dies at once (as a killed script would)."""
    spawn = (
        "import os, subprocess, sys\n"
        f"code = {under_load.BURNER!r}\n"
        "burner = subprocess.Popen([sys.executable, '-c', code, str(os.getpid())])\n"
        "print(burner.pid)\n"
    )
    pid = int(subprocess.run([sys.executable, "-c", spawn], capture_output=True, text=True,
                             check=True, timeout=30).stdout)  # fmt: skip
    stat = Path(f"/proc/{pid}/stat")
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        try:
            state = stat.read_text(encoding="ascii").rsplit(")", 1)[1].split()[0]
        except OSError:
            return  # gone
        if state in ("Z", "X"):
            return  # exited; its new parent has not reaped it yet
        time.sleep(0.05)
    raise AssertionError(f"the burner {pid} outlived its parent by 10 s")
