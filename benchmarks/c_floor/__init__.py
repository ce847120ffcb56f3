"""The C floor: ``herd.c`` beside this file, compiled at benchmark time, run as a subprocess.

The native core is C, so its honest yardstick is the same herd model written directly in C
(:func:`benchmarks.models.run_floor`'s events, a typed heap, SplitMix64 draws, records in
arrays allocated once). It is compiled with ``gcc -O2`` into a directory the caller owns (a
temporary one: no build artefact is kept), reads the model's numbers from its arguments and
reports its summary and the CPU time of its simulation alone, measured inside the process so
that starting a process is not counted against it.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

from benchmarks.models import HerdSpec, Summary

SOURCE = Path(__file__).with_name("herd.c")
GCC_MISSING = "gcc is not installed (apt-get install gcc): the C floor not measured"


def gcc_available() -> bool:
    """Whether ``gcc`` is on the PATH (the C floor is skipped, and says so, without it)."""
    return shutil.which("gcc") is not None


def build(directory: Path) -> Path:
    """Compile ``herd.c`` with ``gcc -O2`` into ``directory``; the executable's path."""
    binary = directory / "herd"
    subprocess.run(
        ["gcc", "-O2", "-o", str(binary), str(SOURCE), "-lm"],
        check=True,
        capture_output=True,
        text=True,
    )
    return binary


def argv_of(spec: HerdSpec) -> list[str]:
    """``spec`` as ``herd``'s arguments, in its order (floats by ``repr``: exact round trips)."""
    start, end = spec.outage
    return [
        str(spec.clients),
        str(spec.calls_per_client),
        repr(spec.think_time),
        repr(math.inf if spec.timeout is None else spec.timeout),
        repr(spec.duration),
        repr(spec.arrive_at),
        repr(start),
        repr(end),
        str(spec.concurrency or 0),  # 0: the ideal server
        str(spec.queue_limit),
        repr(spec.mu),
        repr(spec.sigma),
        str(spec.max_attempts),
        repr(spec.min_wait),
        repr(spec.max_wait),
        repr(spec.jitter),
        str(spec.seed),
    ]


def command(binary: Path, spec: HerdSpec, clients: int | None = None) -> list[str]:
    """The command line running ``spec`` (with ``clients`` clients instead, when given)."""
    if clients is not None:
        spec = replace(spec, clients=clients)
    return [str(binary), *argv_of(spec)]


@dataclass(frozen=True)
class CRun:
    """What one run of the C floor printed: its summary and its simulation's CPU seconds."""

    summary: Summary
    cpu_s: float


def run_c_floor(binary: Path, spec: HerdSpec) -> CRun:
    """Run the compiled floor on ``spec``; ValueError if it printed something else."""
    done = subprocess.run(command(binary, spec), capture_output=True, text=True, check=True)
    fields = dict(item.split("=", 1) for item in done.stdout.split())
    if not {"calls", "succeeded", "attempts", "cpu_s"} <= set(fields):
        raise ValueError(f"the C floor printed {done.stdout!r}")
    summary = Summary(int(fields["calls"]), int(fields["attempts"]), int(fields["succeeded"]))
    return CRun(summary, float(fields["cpu_s"]))
