"""Run a ``retrysim chaos ... --vs-sim`` command N times beside a busy core; tally what held.

    python scripts/vs_sim_under_load.py -- retrysim chaos real-redis-blip --start-redis --vs-sim
    python scripts/vs_sim_under_load.py --runs 5 -- \\
        retrysim chaos real-http-rate-limit --start-http --vs-sim --no-calibrate

Whether the simulation predicts the real fleet must hold on a busy machine, not only an idle
one (issue 30: at least 9 of 10 metrics inside the simulated interval in 4 of 5 consecutive
runs with another process keeping one core busy). This starts ``--burners`` busy loops
(``scripts/under_load.py``'s, default 1), runs the command ``--runs`` times in a row (default
5) with ``--json`` added, and for each run prints the metrics inside the simulated 95%
interval out of those compared, each one outside (its real value, the interval, and how far
out as a share of the interval's width), the calibrated figures when the run calibrated, and
the load average when the run started. Then the tally: how many runs had at least
``--need`` metrics inside (default 9), the share of a core each burner got and the load
average at the end. ``--keep DIR`` saves each run's JSON document as ``DIR/run-N.json``.

Exit 0 when at least ``--runs - 1`` runs (4 of 5) had ``--need`` inside, 1 otherwise.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
# the sibling script's busy cores (a script, not a module: imported by name)
_under_load = importlib.import_module("under_load")


@dataclass
class Tally:
    """One run: metrics inside / compared, the rows outside, the calibration it used."""

    returncode: int
    seconds: float
    load: float
    inside: int = 0
    compared: int = 0
    outside: list[dict[str, Any]] = field(default_factory=list)
    calibration: dict[str, Any] | None = None
    said: str = ""


def tally(document: dict[str, Any]) -> tuple[int, int, list[dict[str, Any]]]:
    """(inside, compared, rows outside) of a document's ``versus`` section. A row with no
    verdict (no value on one side) is not compared."""
    rows = document.get("versus", {}).get("rows", [])
    judged = [row for row in rows if row.get("outside") is not None]
    outside = [row for row in judged if row["outside"]]
    return len(judged) - len(outside), len(judged), outside


def how_far(row: dict[str, Any]) -> str:
    """A row outside: real value, interval, and the distance past its edge over its width."""
    real, low, high = row["real"], row["low"], row["high"]
    past = (low - real) if real < low else (real - high)
    far = f"{past / (high - low):.2f} widths out" if high > low else "the interval is one value"
    return f"{row['metric']} {real:.4g} not in [{low:.4g} .. {high:.4g}] ({far})"


def calibration_line(calibration: dict[str, Any]) -> str:
    figures = calibration.get("figures", [])
    shown = ", ".join(f"{f['key']} {f['calibrated']} (shipped {f['shipped']})" for f in figures)
    slowdown = calibration.get("slowdown")
    return f"calibrated in {calibration.get('seconds', 0):.1f} s, slowdown {slowdown}: {shown}"


def run_once(command: list[str], keep: Path | None, index: int) -> Tally:
    load = os.getloadavg()[0]
    started = time.perf_counter()
    words = command if "--json" in command else [*command, "--json"]
    done = subprocess.run(words, capture_output=True, text=True, check=False)
    outcome = Tally(done.returncode, time.perf_counter() - started, load)
    try:
        document = json.loads(done.stdout)
    except json.JSONDecodeError:
        outcome.said = (done.stderr.strip().splitlines() or ["no JSON on stdout"])[-1]
        return outcome
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        (keep / f"run-{index}.json").write_text(done.stdout, encoding="utf-8")
    outcome.inside, outcome.compared, outcome.outside = tally(document)
    outcome.calibration = document.get("calibration")
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5, help="runs in a row (5)")
    parser.add_argument("--burners", type=int, default=1, help="busy-loop processes (1)")
    parser.add_argument("--need", type=int, default=9, help="metrics inside a run must have (9)")
    parser.add_argument("--keep", type=Path, default=None, help="save each run's JSON here")
    parser.add_argument("command", nargs="+", help="the retrysim chaos ... --vs-sim command")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.burners < 0:
        parser.error("--runs must be at least 1 and --burners at least 0")
    outcomes: list[Tally] = []
    with _under_load.BusyCores(args.burners) as busy:
        for i in range(args.runs):
            outcome = run_once(args.command, args.keep, i + 1)
            outcomes.append(outcome)
            head = f"run {i + 1}/{args.runs} (load average {outcome.load:.2f}, "
            head += f"{outcome.seconds:.1f} s, exit {outcome.returncode})"
            if outcome.compared == 0:
                print(f"{head}: no comparison: {outcome.said}", flush=True)
                continue
            print(f"{head}: {outcome.inside} of {outcome.compared} inside", flush=True)
            for row in outcome.outside:
                print(f"  outside: {how_far(row)}", flush=True)
            if outcome.calibration is not None:
                print(f"  {calibration_line(outcome.calibration)}", flush=True)
    held = sum(o.compared > 0 and o.inside >= args.need for o in outcomes)
    print(f"command: {' '.join(args.command)}")
    for line in busy.lines():
        print(line)
    print(f"inside per run: {', '.join(f'{o.inside}/{o.compared}' for o in outcomes)}")
    print(f"runs with at least {args.need} inside: {held} of {len(outcomes)}")
    return 0 if held >= max(1, args.runs - 1) else 1


if __name__ == "__main__":
    sys.exit(main())
