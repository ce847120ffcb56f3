"""``retrysim tune`` on the README's example, with the native core on and off: the speed-up.

What a user of ``tune`` waits for is the whole process (start-up, every candidate's runs on the
worker processes, the report), so that is what is timed: wall seconds of the README's command,
as it stands in the README (found there, so the figure follows the documentation), run with
the core on and with ``RETRYSIM_NATIVE=0``, interleaved on, off, on, off ... so that drift in
the machine's speed hits both alike. Each run works in a fresh temporary directory: the
example's ``--write-env .env`` writes there, never into the repository. Before each run with
the core on, a fresh interpreter checks that the core loads: a core missing or half rebuilt
would make ``retrysim`` quietly fall back to the fast path, and "on" would not be on.
"""

from __future__ import annotations

import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.scaling import ROOT
from retrysim.sim.native import SWITCH

README = ROOT / "README.md"


def readme_tune_example(readme: Path = README) -> list[str]:
    """The arguments after ``retrysim`` of the README's first ``retrysim tune`` bash block."""
    for block in re.findall(r"```bash\n(.*?)```", readme.read_text(encoding="utf-8"), re.S):
        line = block.replace("\\\n", " ").strip()
        if line.startswith("retrysim tune "):
            return shlex.split(line)[1:]
    raise ValueError(f"{readme} has no ```bash block running retrysim tune")


#: Prints nothing when the native core loads, else why not.
PROBE = "from retrysim.sim import native; print('' if native.core() else native.absent())"


def _env(native: bool) -> dict[str, str]:
    """This process's environment with the core on (the switch unset) or off."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env.pop(SWITCH, None)
    if not native:
        env[SWITCH] = "0"
    return env


def core_missing() -> str:
    """Why a fresh ``retrysim`` process would not load the native core ("" when it would)."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        check=False,  # a core that fails to import is an answer, not an error
        env=_env(True),
        cwd=ROOT,
    )
    return done.stdout.strip() if done.returncode == 0 else done.stderr.strip()[-300:]


def _wall(argv: list[str], native: bool) -> float:
    """Wall seconds of one whole ``retrysim`` process, with the core on or off."""
    env = _env(native)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True, env=env, cwd=tmp)
        return time.perf_counter() - t0


def tune_speedup(retrysim: list[str], pairs: int) -> dict[str, Any]:
    """The example ``pairs`` times each way, interleaved: off / on, the median of the pairs'
    ratios (as the suite's other ratios), their range and the best times' ratio."""
    example = readme_tune_example()
    argv = [*retrysim, *example]
    on: list[float] = []
    off: list[float] = []
    missing: list[str] = []  # why the core did not load before an "on" run, if it did not
    for _ in range(pairs):
        missing += filter(None, [core_missing()])
        on.append(_wall(argv, native=True))
        off.append(_wall(argv, native=False))
    ratios = sorted(b / a for a, b in zip(on, off, strict=True))
    return {
        "command": shlex.join(["retrysim", *example]),
        "native_s": on,
        "python_s": off,
        "median": statistics.median(ratios),
        "best_times": min(off) / min(on),
        "low": ratios[0],
        "high": ratios[-1],
        "pairs": pairs,
        "core_missing": sorted(set(missing)),
    }
