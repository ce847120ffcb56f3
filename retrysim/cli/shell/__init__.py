"""``retrysim shell``: load a scenario, change it, run it, compare runs, save it.

At a terminal the session runs on prompt_toolkit (:mod:`retrysim.cli.shell.interactive`):
completion, searchable history, a toolbar, Ctrl-C that cancels instead of quitting. From a pipe
it reads plain lines, so sessions can be scripted and tested, and exits 2 if any command
failed. The commands are in :mod:`retrysim.cli.shell.commands`, the session's state in
:mod:`retrysim.model.session`, completion in :mod:`retrysim.cli.shell.completer`.
"""

from __future__ import annotations

import sys
from typing import IO

from retrysim.cli.exits import SignalStop
from retrysim.cli.shell.commands import COMMANDS, Shell

__all__ = ["COMMANDS", "Shell", "run_shell"]


def run_shell(stdin: IO[str] | None = None, stdout: IO[str] | None = None) -> int:
    """Run a session on the given streams (default: the terminal, or a pipe); the exit code.

    A scripted session (a pipe) reports failure like any command: 2 if a command failed.
    """
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    if stdin.isatty() and stdout.isatty():
        from retrysim.cli.shell.interactive import interact  # prompt_toolkit: only now

        interact(Shell(stdout, interactive=True))
        return 0
    shell = Shell(stdout)
    try:
        for line in stdin:
            if shell.execute(line.rstrip("\n")):
                break
    except SignalStop:
        raise  # SIGTERM or SIGHUP: the command's exit code says so (143, 129)
    except KeyboardInterrupt:
        stdout.write("\n")
    return 2 if shell.errors else 0
