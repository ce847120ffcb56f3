"""The shell at a real pseudo-terminal: keys as a user types them, through prompt_toolkit.

Each test starts ``python -m retrysim shell`` under pexpect with this tree first on the path
and HOME in a temporary folder (so the history file is the test's own). Every wait is for
output the step must produce; pexpect's timeout only guards against a hang, it asserts nothing
about speed. Keys that depend on what is on screen (Tab on an open menu, Ctrl-C during a run)
are sent only after that output was seen, and Ctrl-C or Ctrl-D for the prompt only once the
prompt is drawn: before that the terminal is not yet in raw mode, and its line discipline
would take Ctrl-D as end of file.
"""

from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pexpect
import pytest

ROOT = Path(__file__).resolve().parents[1]
HANG_GUARD = 120  # seconds; a hang fails the test instead of blocking CI
PROMPT = "retrysim>"
if TYPE_CHECKING:
    Terminal = pexpect.spawn[str]  # a session read and written as text (generic in the stubs only)
LOADED = "loaded .*{}"  # the name is bold: colour codes stand between the words

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX"),
]


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Terminal]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HOME": str(tmp_path),
        "TERM": "xterm",
        "PROMPT_TOOLKIT_NO_CPR": "1",  # pexpect does not answer cursor-position requests
    }
    child = pexpect.spawn(
        sys.executable,
        ["-m", "retrysim", "shell"],
        env=env,
        cwd=str(tmp_path),
        encoding="utf-8",
        timeout=HANG_GUARD,
        dimensions=(40, 160),
    )
    child.expect("Ctrl-D leaves")  # the intro: the session is up
    child.expect(PROMPT)
    yield child
    if child.isalive():
        child.terminate(force=True)


def test_ctrl_c_clears_the_line_and_ctrl_d_offers_to_save(shell: Terminal, tmp_path: Path) -> None:
    shell.send("load thundering-herd")  # half a line, never entered
    shell.sendintr()
    shell.expect(PROMPT)
    shell.send("load redis-blip\r")
    shell.expect(LOADED.format("redis-blip"))
    shell.send("set clients.count=7\r")
    shell.expect("clients.count = 7")
    shell.expect(PROMPT)  # control keys go to the prompt only once it reads the terminal raw
    shell.sendeof()
    shell.expect(r"redis-blip has unsaved changes\. Save them\? \[y/n/c\]")
    shell.send("y\r")
    shell.expect(r"Save to \[redis-blip\.toml\]:")
    shell.send("mine.toml\r")  # a typed name replaces the offered one
    shell.expect("saved mine.toml")
    shell.expect(pexpect.EOF)
    shell.close()
    assert shell.exitstatus == 0
    data = tomllib.loads((tmp_path / "mine.toml").read_text(encoding="utf-8"))
    assert data["name"] == "redis-blip"  # the half-typed load never ran
    assert data["clients"]["count"] == 7
    assert "load redis-blip" in (tmp_path / ".retrysim_history").read_text(encoding="utf-8")


def test_cancel_at_the_save_question_stays_in_the_shell(shell: Terminal) -> None:
    shell.send("load redis-blip\r")
    shell.expect(LOADED.format("redis-blip"))
    shell.send("set clients.count=7\r")
    shell.expect("clients.count = 7")
    shell.send("quit\r")
    shell.expect(r"Save them\? \[y/n/c\]")
    shell.send("c\r")
    shell.expect(PROMPT)
    shell.send("exit\r")
    shell.expect(r"Save them\? \[y/n/c\]")
    shell.send("n\r")
    shell.expect(pexpect.EOF)


def test_tab_completes_a_command_with_its_space(shell: Terminal) -> None:
    shell.send("lo")
    shell.expect("load NAME\\|FILE")  # the completion menu is open
    shell.send("\t")
    shell.send("redis-blip\r")  # typed right after the Tab: works only with "load " in place
    shell.expect(LOADED.format("redis-blip"))
    shell.expect(PROMPT)
    shell.sendeof()
    shell.expect(pexpect.EOF)


def test_ctrl_c_cancels_a_run_and_keeps_the_session(shell: Terminal) -> None:
    shell.send("load thundering-herd\r")
    shell.expect(LOADED.format("thundering-herd"))
    shell.send("set clients.count=200000\r")
    shell.expect("clients.count = 200000")
    shell.send("run\r")
    shell.expect("Ctrl-C cancels")  # the run is under way
    shell.sendintr()
    shell.expect("run cancelled")
    shell.send("set clients.count=100\r")  # the session and its scenario are still there
    shell.expect("clients.count = 100")
    shell.send("run\r")
    shell.expect("Latency per call")
    shell.expect(PROMPT)
    shell.send("quit\r")
    shell.expect(r"Save them\? \[y/n/c\]")
    shell.send("n\r")
    shell.expect(pexpect.EOF)
