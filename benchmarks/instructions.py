"""Instructions per simulation, counted by callgrind: a figure the machine's drift cannot move.

CPU times on a shared machine wander from round to round; the number of instructions a run
executes does not. ``perf stat`` would be cheaper, but it is often not supported in the
containers this runs in (``perf stat -e instructions true`` says ``<not supported>``), so
valgrind's callgrind counts them: deterministic, about 50 times slower than the run itself.
Only the simulation is counted: each figure is the difference of two processes, one doing
everything but the run (Python's start-up, the imports, a warm-up: :mod:`benchmarks.one_run`;
for the C floor, the same executable with no clients) and one that also runs it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from benchmarks.c_floor import command
from benchmarks.models import HerdSpec
from benchmarks.scaling import ROOT

VALGRIND_MISSING = "valgrind is not installed (apt-get install valgrind): instructions not counted"


def valgrind_available() -> bool:
    """Whether ``valgrind`` is on the PATH (without it the counts are reported not measured)."""
    return shutil.which("valgrind") is not None


def callgrind(argv: Sequence[str]) -> tuple[int, str]:
    """The instructions ``argv`` executes under callgrind, and what it printed on stdout.

    RuntimeError, with the program's last line of complaint, when it fails.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/out", *argv],
            capture_output=True,
            text=True,
            check=False,  # a failure is reported with the program's own words, below
            env=env,
            cwd=ROOT,
        )
    if done.returncode:
        said = [line for line in done.stderr.splitlines() if not line.startswith("==")]
        raise RuntimeError(said[-1] if said else f"exit status {done.returncode}")
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"callgrind reported no count: {done.stderr[-500:]}")
    return int(found.group(1)), done.stdout


def engine_instructions(engine: str, clients: int) -> int:
    """One ``simulate`` of ``thundering-herd`` at ``clients`` clients on ``engine``.

    RuntimeError when the run did not take that engine (the native core off or refusing it):
    a count of the wrong engine must not pass for the right one.
    """
    argv = [sys.executable, "-m", "benchmarks.one_run", engine, str(clients)]
    setup, _ = callgrind([*argv, "--setup-only"])
    full, printed = callgrind(argv)
    if f"engine={engine} " not in printed:
        raise RuntimeError(f"benchmarks.one_run {engine} ran another engine: {printed.strip()}")
    return full - setup


def c_floor_instructions(binary: Path, spec: HerdSpec) -> int:
    """One run of the compiled C floor on ``spec``, less a run of it with no clients."""
    full, _ = callgrind(command(binary, spec))
    empty, _ = callgrind(command(binary, spec, clients=0))
    return full - empty
