"""Run a pytest selection N times in a row while another process keeps one core busy.

    python scripts/under_load.py tests/test_chaos_run.py tests/test_chaos_http.py
    python scripts/under_load.py --runs 20 --burners 1 -- tests/test_chaos_proxy.py -k latency

The timing-sensitive real-service tests (a real Redis, retrysim's HTTP service, the fault
proxy on the real clock) must hold on a busy machine, not only an idle one. This starts
``--burners`` busy-loop processes (default 1: one core of a 2-core machine), runs
``python -m pytest -n 0 -p no:cacheprovider -q --junitxml=...`` on the selection ``--runs``
times (default 20), then stops the burners and prints:

- how many runs passed, and which tests failed in how many runs;
- the spread (min, median, max over every run) of each figure the tests measured: a test
  reports a figure with pytest's ``record_property("name", value)`` (kept in the JUnit XML),
  which is how the tolerances in those tests were set from measured spread;
- the share of a core each burner got (its CPU seconds over the wall time), so the figures
  say how busy the machine was.

Exit 0 when every run passed, 1 otherwise. A burner exits by itself if this script dies
without stopping it (it watches its parent's process id).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: A busy loop that ends when its parent (this script, whose pid it is given) is gone.
BURNER = "import os, sys\nparent = int(sys.argv[1])\nwhile os.getppid() == parent:\n    pass\n"


@dataclass
class RunOutcome:
    """One pytest run: its exit code, wall time, failed tests and the figures recorded."""

    returncode: int
    seconds: float
    tests: int = 0
    failed: list[str] = field(default_factory=list)
    skipped: int = 0
    figures: dict[str, float] = field(default_factory=dict)


def read_junit(path: Path) -> tuple[int, list[str], int, dict[str, float]]:
    """Tests run, failed test ids, skipped count and ``test::property`` figures of one report."""
    failed: list[str] = []
    figures: dict[str, float] = {}
    tests = skipped = 0
    for case in ET.parse(path).getroot().iter("testcase"):
        tests += 1
        test_id = f"{case.get('classname', '')}::{case.get('name', '')}"
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(test_id)
        if case.find("skipped") is not None:
            skipped += 1
        for prop in case.iter("property"):
            try:
                figures[f"{case.get('name', '')}::{prop.get('name', '')}"] = float(
                    prop.get("value", "")
                )
            except ValueError:
                continue  # a figure that is not a number has no spread
    return tests, failed, skipped, figures


def spread(values: list[float]) -> str:
    """min / median / max of a figure over the runs."""
    return (
        f"min {min(values):.4g}  median {statistics.median(values):.4g}  max {max(values):.4g}"
        f"  (n={len(values)})"
    )


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds of a live process (Linux /proc), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14, 15)


def run_once(selection: list[str], junit: Path) -> RunOutcome:
    args = [sys.executable, "-m", "pytest", "-n", "0", "-p", "no:cacheprovider", "-q"]
    args += ["-o", "junit_family=legacy"]  # the family that keeps record_property's figures
    started = time.perf_counter()
    done = subprocess.run(
        [*args, f"--junitxml={junit}", *selection],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    outcome = RunOutcome(done.returncode, time.perf_counter() - started)
    if junit.exists():
        outcome.tests, outcome.failed, outcome.skipped, outcome.figures = read_junit(junit)
    if done.returncode != 0:
        said = [line for line in done.stdout.splitlines() if line.startswith(("E ", "FAILED"))]
        shown = "\n".join(said[-20:] or done.stdout.strip().splitlines()[-15:])
        print(f"  run failed (exit {done.returncode}):\n{shown}", flush=True)
    return outcome


def summarize(outcomes: list[RunOutcome]) -> list[str]:
    """The report's lines: passes, failures by test, the spread of every figure."""
    passed = sum(o.returncode == 0 for o in outcomes)
    lines = [f"{passed} of {len(outcomes)} runs passed"]
    failures: dict[str, int] = defaultdict(int)
    for outcome in outcomes:
        for test_id in outcome.failed:
            failures[test_id] += 1
    lines += [f"  failed in {n} run(s): {test_id}" for test_id, n in sorted(failures.items())]
    if any(o.skipped for o in outcomes):
        lines.append(f"  skipped tests: {max(o.skipped for o in outcomes)} a run (not measured)")
    figures: dict[str, list[float]] = defaultdict(list)
    for outcome in outcomes:
        for name, value in outcome.figures.items():
            figures[name].append(value)
    if figures:
        lines.append("figures (record_property), over the runs:")
        lines += [f"  {name}: {spread(values)}" for name, values in sorted(figures.items())]
    seconds = [o.seconds for o in outcomes]
    lines.append(f"wall time a run: {spread(seconds)} s")
    return lines


class BusyCores:
    """``count`` busy-loop processes for a block (each ends by itself if this process dies),
    and the share of a core each got while the block ran."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.burners: list[subprocess.Popen[bytes]] = []
        self.shares: list[float] = []
        self.began = 0.0

    def __enter__(self) -> BusyCores:
        command = [sys.executable, "-c", BURNER, str(os.getpid())]
        self.burners = [
            subprocess.Popen(command, stdin=subprocess.DEVNULL) for _ in range(self.count)
        ]
        self.began = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self.began
        seconds = [cpu_seconds(b.pid) for b in self.burners]
        self.shares = [s / wall for s in seconds if s is not None and wall > 0]
        for burner in self.burners:
            burner.kill()
            burner.wait()

    def lines(self) -> list[str]:
        """What the load was: the busy loops, their share of a core, the load average."""
        said = f"load: {self.count} busy-loop process(es); {os.cpu_count()} cores"
        if self.shares:
            said += f"; burner share of a core: {', '.join(f'{s:.0%}' for s in self.shares)}"
        average = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        return [said, f"load average at the end: {average}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=20, help="pytest runs in a row (20)")
    parser.add_argument("--burners", type=int, default=1, help="busy-loop processes (1)")
    parser.add_argument("selection", nargs="+", help="pytest arguments: files, node ids, -k ...")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.burners < 0:
        parser.error("--runs must be at least 1 and --burners at least 0")
    outcomes: list[RunOutcome] = []
    with (
        BusyCores(args.burners) as busy,
        tempfile.TemporaryDirectory(prefix="under-load-") as folder,
    ):
        for i in range(args.runs):
            outcome = run_once(args.selection, Path(folder) / f"run-{i}.xml")
            outcomes.append(outcome)
            verdict = "pass" if outcome.returncode == 0 else "FAIL"
            print(
                f"run {i + 1}/{args.runs}: {verdict}, {outcome.tests} tests, "
                f"{outcome.seconds:.1f} s",
                flush=True,
            )
    for line in [*busy.lines(), *summarize(outcomes)]:
        print(line)
    return 0 if all(o.returncode == 0 for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
