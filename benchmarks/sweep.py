"""Sweep speed: a 200-run sweep on 1 and 2 local workers, and the dask executor's cost per task.

Prints the wall time of the same 200 runs (network-timeouts, 10 variants x 20 seeds, about
0.2 s each) in this process and on two worker processes, and their ratio (target >= 1.8 on an
idle 2-core machine). Then the per-task overhead of the dask executor on a LocalCluster: many
tiny runs in this process against the same runs on the cluster, cluster start-up not counted
(it is printed on its own). The machine's load average is printed with each figure: on a shared
machine, other work takes cores from the measurement.

    python -m benchmarks sweep [--seeds K] [--tiny N] [--skip-local] [--skip-dask]
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from collections.abc import Callable, Sequence
from functools import partial

from retrysim.model.library import load_scenario
from retrysim.model.scenario import Scenario, parse_scenario
from retrysim.runs.executors import DaskExecutor, Executor, LocalExecutor
from retrysim.runs.runner import clear_baseline_cache
from retrysim.runs.sweep import Variant, compare, grid_variants


def sweep_work(seeds: int) -> tuple[Scenario, list[Variant], list[int]]:
    """network-timeouts over max_attempts 2..6 and two profiles: 10 variants x ``seeds``."""
    scenario = load_scenario("network-timeouts")
    variants = grid_variants(
        [
            ("policy.max_attempts", [2, 3, 4, 5, 6]),
            ("policy.profile", ["documented", "full_jitter"]),
        ]
    )
    return scenario, variants, list(range(1, seeds + 1))


def tiny() -> Scenario:
    """A run of a few milliseconds: what is left is the executor's own cost."""
    return parse_scenario(
        {
            "name": "bench-tiny",
            "seed": 1,
            "duration": 2,
            "policy": {"operation": "worker", "max_attempts": 2},
            "clients": {"count": 3, "arrival": {"kind": "burst", "at": 0}},
            "service": {"kind": "ideal", "latency": 0.01},
        }
    )


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def _cpu() -> float:
    """CPU seconds of this process and of its finished (joined) children: a pool's workers."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def timed(
    scenario: Scenario,
    variants: Sequence[Variant],
    seeds: Sequence[int],
    executor: Executor,
    cpu: list[float] | None = None,
) -> float:
    """Wall seconds of the runs; ``cpu`` gets the CPU seconds they took, workers included."""
    clear_baseline_cache()  # no run may reuse a baseline an earlier measurement computed
    cpu_start = _cpu()
    start = time.perf_counter()
    compare(scenario, variants, seeds, executor=executor)
    wall = time.perf_counter() - start
    if cpu is not None:
        cpu.append(_cpu() - cpu_start)
    return wall


def best(repeat: int, measure: Callable[[], float]) -> float:
    return min(measure() for _ in range(repeat))


def local(args: argparse.Namespace) -> None:
    scenario, variants, seeds = sweep_work(args.seeds)
    runs = len(variants) * len(seeds)
    print(f"sweep: {scenario.name}, {len(variants)} variants x {len(seeds)} seeds = {runs} runs")
    timed(scenario, variants[:1], seeds[:2], LocalExecutor(1))  # warm-up: imports, caches
    times, cpus = {}, {}
    for workers in (1, 2):
        print(f"  before {workers} worker(s): {load()}")
        executor = LocalExecutor(workers)
        cpu: list[float] = []
        times[workers] = best(args.repeat, partial(timed, scenario, variants, seeds, executor, cpu))
        cpus[workers] = min(cpu)
        per_run = times[workers] / runs
        print(
            f"  {workers} worker(s): {times[workers]:.1f} s wall ({1000 * per_run:.0f} ms per "
            f"run), {cpus[workers]:.1f} CPU-s ({cpus[workers] / times[workers]:.2f} cores busy)"
        )
    print(f"  speed-up, 2 workers over 1: {times[1] / times[2]:.2f}x (target >= 1.8 when idle)")
    # What two idle cores would give: the same CPU work spread over both. On a shared machine
    # the wall-time ratio also measures how many cores the others left free.
    print(
        f"  CPU per run, 2 workers / 1: {cpus[2] / cpus[1]:.2f} (1.00: parallel runs cost no "
        f"extra work; idle-machine speed-up about {2 * cpus[1] / cpus[2]:.2f}x)"
    )
    print(f"  after: {load()}")


def dask(args: argparse.Namespace) -> None:
    scenario = tiny()
    seeds = list(range(args.tiny))
    variants = [Variant("as is", {})]
    print(f"dask overhead: {args.tiny} tiny runs ({scenario.name}: 3 clients, 2 s)")
    print(f"  before: {load()}")
    timed(scenario, variants, seeds[:20], LocalExecutor(1))  # warm-up
    here = best(args.repeat, partial(timed, scenario, variants, seeds, LocalExecutor(1)))
    print(f"  in this process: {here:.2f} s ({1000 * here / args.tiny:.2f} ms per run)")
    for processes, what in ((True, "1 worker process"), (False, "1 worker thread")):
        start = time.perf_counter()
        executor = DaskExecutor(workers=1, processes=processes).__enter__()
        try:
            started = time.perf_counter() - start
            timed(scenario, variants, seeds[:20], executor)  # warm-up: the worker's imports
            on_dask = best(args.repeat, partial(timed, scenario, variants, seeds, executor))
        finally:
            stop = time.perf_counter()
            executor.__exit__(None, None, None)
            stopped = time.perf_counter() - stop
        overhead = (on_dask - here) / args.tiny
        print(
            f"  LocalCluster, {what}: {on_dask:.2f} s; overhead {1000 * overhead:.2f} ms per "
            f"task; cluster start {started:.2f} s, stop {stopped:.2f} s"
        )
    print(f"  after: {load()}")


def main(argv: Sequence[str] = ()) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks sweep")
    parser.add_argument("--seeds", type=int, default=20, help="seeds per variant (10 variants)")
    parser.add_argument("--tiny", type=int, default=500, help="tiny runs for the dask overhead")
    parser.add_argument("--repeat", type=int, default=1, help="best of this many")
    parser.add_argument("--skip-local", action="store_true")
    parser.add_argument("--skip-dask", action="store_true")
    args = parser.parse_args(list(argv))
    if not args.skip_local:
        local(args)
    if not args.skip_dask:
        dask(args)


if __name__ == "__main__":
    main()
