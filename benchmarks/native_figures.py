"""The native core's rows of the suite's table: instructions, a million clients, ``tune``.

The native core's CPU-time ratios sit with the other variants' (:mod:`benchmarks.suite`);
these are the figures measured outside the interleaved rounds: instructions counted by
callgrind (native against the C floor, free of timing noise), the core at a million clients in
a fresh process and as a whole ``retrysim run``, and the README's ``tune`` example with the
core on and off. Each is a :class:`~benchmarks.checks.Check` with its target; one that was not
measured still shows its row and target, and says why.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.c_floor import GCC_MISSING
from benchmarks.checks import Check
from benchmarks.instructions import (
    VALGRIND_MISSING,
    c_floor_instructions,
    engine_instructions,
    valgrind_available,
)
from benchmarks.models import HerdSpec

#: The command whose whole-process wall time has the 30 s target at a million clients.
RUN_1M = ["run", "thundering-herd", "--set", "clients.count=1000000"]
COUNTED = ("native", "fast", "c_floor")


def measure_instructions(
    spec: HerdSpec, binary: Path | None, say: Callable[[str], None]
) -> dict[str, Any]:
    """Instructions of one simulation of ``spec``'s herd: native core, fast path, C floor.

    Each count is an int, or None with the reason in ``notes`` (no valgrind, no gcc, the core
    not running the herd, a run that failed): a failed measurement is reported, never raised.
    """
    counts: dict[str, int | None] = dict.fromkeys(COUNTED)
    notes: dict[str, str] = {}
    measure: dict[str, Callable[[], int]] = {
        "native": lambda: engine_instructions("native", spec.clients),
        "fast": lambda: engine_instructions("fast", spec.clients),
    }
    if binary is None:
        notes["c_floor"] = GCC_MISSING
    else:
        measure["c_floor"] = lambda: c_floor_instructions(binary, spec)
    for name, count in measure.items():
        if not valgrind_available():
            notes[name] = VALGRIND_MISSING
            continue
        say(f"instructions of {name} (callgrind), {spec.clients:,} clients")
        try:
            counts[name] = count()
        except RuntimeError as error:
            notes[name] = f"{name} not counted: {error}"
    return {"clients": spec.clients, "counts": counts, "notes": notes}


def instruction_checks(measured: dict[str, Any] | None, clients: int) -> list[Check]:
    """native / C floor (target <= 3) and fast / native, in instructions; None: skipped."""
    counts = measured["counts"] if measured else dict.fromkeys(COUNTED)
    notes = (
        measured["notes"] if measured else dict.fromkeys(COUNTED, "skipped (--skip-instructions)")
    )
    known = ", ".join(f"{name} {count:,}" for name, count in counts.items() if count is not None)
    out = []
    for top, bottom, target in (("native", "c_floor", 3.0), ("fast", "native", None)):
        a, b = counts[top], counts[bottom]
        why = "; ".join(dict.fromkeys(notes[name] for name in (top, bottom) if name in notes))
        out.append(
            Check(
                f"thundering-herd ({clients:,} clients), instructions: {top} / {bottom}",
                None if a is None or b is None else a / b,
                target=target,
                note=why if a is None or b is None else f"callgrind, per run: {known}",
            )
        )
    return out


def native_1m_checks(
    row: dict[str, Any] | None, whole: dict[str, Any] | None, pending: str
) -> list[Check]:
    """The core at a million clients: CPU < 10 s and max RSS < 600 MiB in a fresh process,
    and the whole ``retrysim run`` < 30 s of wall time; ``pending`` says why one is missing."""
    note = pending
    if row is not None:
        note = (
            f"engine {row['engine']}, {row['us_per_attempt']:.2f} µs/attempt, "
            f"{row['attempts']:,} attempts, {row['rss_before_run_mib']:,.0f} MiB before the run"
        )
    checks = [
        Check(
            "1M-client thundering-herd, native core: CPU time",
            None if row is None else row["cpu_s"],
            unit="s",
            target=10.0,
            note=note,
        ),
        Check(
            "1M-client thundering-herd, native core: max RSS",
            None if row is None else row["max_rss_mib"],
            unit="MiB",
            target=600.0,
            note=note,
        ),
    ]
    checks.append(
        Check(
            f"`retrysim {' '.join(RUN_1M)}`, whole process (wall, median)",
            None if whole is None else whole["median_s"],
            unit="s",
            target=30.0,
            note=pending
            if whole is None
            else f"fastest {whole['min_s']:.1f} s of {whole['runs']} runs",
        )
    )
    return checks


def tune_check(tune: dict[str, Any] | None) -> Check:
    """The README's ``tune`` example, core off / core on (target >= 5); None: skipped."""
    name = "`retrysim tune` (README example): native off / on, whole process (wall, median)"
    if tune is None:
        return Check(name, None, target=5.0, at_most=False, note="skipped (--tune-pairs 0)")
    on, off = tune["native_s"], tune["python_s"]
    if tune["core_missing"]:  # some "on" runs ran the fast path: no figure to pass off as one
        why = "; ".join(tune["core_missing"])
        return Check(name, None, target=5.0, at_most=False, note=f"the core did not load: {why}")
    return Check(
        name,
        tune["median"],
        target=5.0,
        at_most=False,
        note=f"pairs {tune['low']:.3g}-{tune['high']:.3g}, best times {tune['best_times']:.3g}; "
        f"on {min(on):.1f}-{max(on):.1f} s, off {min(off):.1f}-{max(off):.1f} s, "
        f"{tune['pairs']} interleaved pairs",
    )
