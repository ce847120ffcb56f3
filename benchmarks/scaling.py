"""Scaling: ``thundering-herd`` at 1k .. 1M clients, each in a fresh process.

A fresh interpreter per size, so one size's heap, caches and peak memory never colour the next:
the child loads the scenario, runs the fast path once and reports its CPU time (the run alone,
and the whole process), its maximum resident set and the attempts it simulated.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, resource, sys, time
from retrysim.model.library import load_scenario
clients, model = int(sys.argv[1]), sys.argv[2]
scenario = load_scenario("thundering-herd").with_overrides({"clients.count": clients})
if model == "floor":
    from benchmarks.models import HerdSpec, run_floor
    spec = HerdSpec.of(scenario)
    run = lambda: run_floor(spec)
else:
    from retrysim.sim.engine import simulate
    run = lambda: simulate(scenario, engine=model)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.process_time()
result = run()
cpu = time.process_time() - t0
usage = resource.getrusage(resource.RUSAGE_SELF)
if model == "floor":
    engine, calls, attempts = "floor", result.calls, result.attempts
else:
    engine, calls, attempts = result.engine, len(result.calls), len(result.attempts)
print(json.dumps({
    "clients": clients,
    "engine": engine,
    "cpu_s": cpu,
    "process_cpu_s": usage.ru_utime + usage.ru_stime,
    "max_rss_mib": usage.ru_maxrss / 1024,
    "rss_before_run_mib": before / 1024,
    "calls": int(calls),
    "attempts": int(attempts),
    "us_per_attempt": cpu / attempts * 1e6,
}))
"""


def scale_once(clients: int, model: str = "fast") -> dict[str, Any]:
    """One fresh process running ``thundering-herd`` with ``clients`` clients on the fast path
    (or, with ``model="floor"``, by the floor: :func:`benchmarks.models.run_floor`, what plain
    Python with every draw made up front costs at that size, the yardstick of the 1M targets;
    with ``model="native"``, by the native core, which refuses rather than falls back).
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(clients), model],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=ROOT,
    )
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def scaling(sizes: list[int], repeat: int = 1) -> list[dict[str, Any]]:
    """Each size ``repeat`` times (fresh processes); the run with the least CPU time is kept."""
    rows = []
    for clients in sizes:
        runs = [scale_once(clients) for _ in range(repeat)]
        best = min(runs, key=lambda row: row["cpu_s"])
        best["runs"] = len(runs)
        best["cpu_s_all"] = [row["cpu_s"] for row in runs]
        rows.append(best)
    return rows
