"""The lab in a real terminal stopped by a signal: the exit code says which, the terminal is
given back (the alternate screen left, the cursor shown, mouse reporting off), one line says
what stopped it, and nothing it started outlives it.

The lab runs in a pseudo-terminal of its own (``pty.fork``), as a user's shell would run it;
the test reads what it draws until its first full screen, then sends the signal.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import sys
import time

import pytest

from tests.test_no_leftovers import DEADLINE, descendants, running

pytest.importorskip("textual")

#: Bytes that end a full-screen app cleanly: leave the alternate screen, show the cursor.
LEAVE_ALTERNATE_SCREEN = b"\x1b[?1049l"
SHOW_CURSOR = b"\x1b[?25h"


def _read(fd: int, seconds: float) -> bytes:
    """What the terminal shows within ``seconds`` (less if the lab closed it)."""
    got = b""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], min(left, 0.1))
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the lab ended and closed its side
                break
            if not chunk:
                break
            got += chunk
    return got


@pytest.mark.slow
@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGHUP], ids=lambda n: n.name)
def test_a_signal_ends_the_lab_with_its_code_and_gives_the_terminal_back(
    number: signal.Signals,
) -> None:
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child: the lab, as a user starts it
        os.environ["TERM"] = "xterm-256color"
        os.execv(sys.executable, [sys.executable, "-m", "retrysim", "lab", "redis-blip"])
    try:
        shown = b""
        deadline = time.monotonic() + DEADLINE
        while b"redis-blip" not in shown or b"max_attempts" not in shown:
            assert time.monotonic() < deadline, f"the lab drew no screen: {shown[-500:]!r}"
            shown += _read(fd, 0.5)
        started = descendants(pid)
        os.kill(pid, number)
        end = time.monotonic() + DEADLINE
        while not (status := os.waitpid(pid, os.WNOHANG))[0]:
            assert time.monotonic() < end, "the lab did not end after the signal"
            shown += _read(fd, 0.2)
        shown += _read(fd, 0.2)
    finally:
        if running(pid):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status[1]) == 128 + number
    tail = shown[-2000:]
    assert LEAVE_ALTERNATE_SCREEN in tail and SHOW_CURSOR in tail, tail
    assert f"retrysim: stopped by {number.name}".encode() in tail
    assert b"Traceback" not in shown
    for child in started:
        assert not running(child), f"process {child} outlived the lab"
