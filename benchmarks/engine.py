"""Engine speed: a 10,000-client burst through a 30 s outage with the default worker policy.

Prints attempts per second of wall time, the ratio of engine time to a bare loop that drives the
same tenacity objects through the same attempt outcomes with no engine (target <= 1.3), peak
memory, and the wall time of a 100,000-client burst (target < 10 s on one core).

    python -m benchmarks engine [--clients N] [--repeat K]
"""

from __future__ import annotations

import argparse
import gc
import resource
import time
import tracemalloc
from collections.abc import Sequence

import numpy as np
from tenacity import DoAttempt, DoSleep, RetryCallState

from retrysim.model.scenario import Scenario, parse_scenario
from retrysim.sim.clock import current_stream, routed_jitter, tenacity_virtual_time
from retrysim.sim.engine import CALL_KEY_SHIFT, RunResult, policy_for, simulate
from retrysim.sim.failures import make_error
from retrysim.sim.streams import JITTER, Stream, stream_key


def herd(clients: int) -> Scenario:
    """The benchmark scenario: every client at t=0, the dependency refuses for 30 s."""
    return parse_scenario(
        {
            "name": f"bench-herd-{clients}",
            "seed": 7,
            "duration": 60,
            "policy": {"operation": "worker"},
            "clients": {"count": clients, "arrival": {"kind": "burst", "at": 0}},
            "service": {
                "kind": "ideal",
                "latency": {"dist": "lognormal", "median": 0.02, "p99": 0.2},
            },
            "faults": [{"kind": "outage", "start": 0, "end": 30, "error": "ConnectionError"}],
        }
    )


def fleet_hour() -> Scenario:
    """An hour of a 10,000-client fleet: each client calls every ~5 minutes (closed loop) through
    5% flaky errors and a 2-minute outage."""
    return parse_scenario(
        {
            "name": "bench-fleet-hour",
            "seed": 7,
            "duration": 3600,
            "policy": {"operation": "worker"},
            "clients": {
                "count": 10_000,
                "think_time": 300,
                "timeout": 5,
                "arrival": {"kind": "closed", "ramp": 300},
            },
            "service": {
                "kind": "ideal",
                "latency": {"dist": "lognormal", "median": 0.05, "p99": 1},
            },
            "faults": [
                {"kind": "flaky", "probability": 0.05},
                {"kind": "outage", "start": 1800, "end": 1920},
            ],
        }
    )


def bare_loop(scenario: Scenario, result: RunResult) -> float:
    """Drive the same tenacity objects through the recorded outcomes, with no engine at all.

    Same policy object, same per-call jitter streams, same exceptions: only the event heap,
    server, faults and record keeping are missing. Returns wall seconds.
    """
    policy = policy_for(scenario)
    retrying = policy.retrying()
    jitter_key = stream_key(result.seed, JITTER)
    attempts = result.attempts
    order = np.lexsort((attempts["attempt"], attempts["call"]))
    errors = attempts["error"][order].tolist()
    calls_of = attempts["call"][order].tolist()
    clients = result.calls["client"].tolist()
    clock = [0.0]
    start = time.perf_counter()
    with tenacity_virtual_time(lambda: clock[0]), routed_jitter():
        retrying.begin()
        i, n = 0, len(errors)
        while i < n:
            call = calls_of[i]
            stream = Stream(jitter_key, clients[call] << CALL_KEY_SHIFT)
            state = RetryCallState(retrying, None, (), {})
            current_stream.set(stream)  # once per call: nothing else runs in between
            while True:
                try:
                    do = retrying.iter(state)
                except Exception:
                    break
                if isinstance(do, DoAttempt):
                    code = errors[i]
                    i += 1
                    if code:
                        error = make_error(code)
                        state.set_exception((type(error), error, None))
                    else:
                        state.set_result(None)
                elif isinstance(do, DoSleep):
                    state.prepare_for_next_attempt()
                else:
                    break
    return time.perf_counter() - start


INSTRUCTION_PROBE = """
import sys
from benchmarks.engine import herd, bare_loop
from retrysim.sim.engine import simulate
scenario = herd(int(sys.argv[2]))
result = simulate(scenario, engine="reference")
if sys.argv[1] == "engine":
    simulate(scenario, engine="reference")
elif sys.argv[1] == "bare":
    bare_loop(scenario, result)
"""


def instruction_ratio(clients: int) -> None:
    """Engine vs bare loop in CPU instructions (callgrind): free of timing noise.

    Each mode runs in its own process under valgrind; a third run with neither gives the
    start-up and warm-up cost to subtract.
    """
    import sys

    from benchmarks.instructions import VALGRIND_MISSING, callgrind, valgrind_available

    if not valgrind_available():
        print(f"instructions: {VALGRIND_MISSING}")
        return
    counts = {
        mode: callgrind([sys.executable, "-c", INSTRUCTION_PROBE, mode, str(clients)])[0]
        for mode in ("none", "engine", "bare")
    }
    engine = counts["engine"] - counts["none"]
    bare = counts["bare"] - counts["none"]
    print(
        f"instructions, {clients:,}-client burst: engine {engine:,}, bare loop {bare:,}, "
        f"ratio {engine / bare:.3f}"
    )


def best_of(repeat: int, fn: object) -> tuple[float, object]:
    best, value = float("inf"), None
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        value = fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - t0)
    return best, value


def main(argv: Sequence[str] = ()) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks engine")
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="also count CPU instructions under valgrind (deterministic; slow: about 2 min)",
    )
    args = parser.parse_args(list(argv))

    scenario = herd(args.clients)
    result = simulate(
        scenario, engine="reference"
    )  # warm-up, and the outcomes the bare loop replays
    # Interleave engine and bare runs so drift in machine speed hits both alike; report the
    # median of the paired ratios (and the best times) rather than one lucky or unlucky pair.
    engine_times, bare_times = [], []
    for _ in range(args.repeat):
        engine_times.append(best_of(1, lambda: simulate(scenario, engine="reference"))[0])
        gc.collect()
        bare_times.append(bare_loop(scenario, result))
    ratios = sorted(e / b for e, b in zip(engine_times, bare_times, strict=True))
    engine_s, bare_s = min(engine_times), min(bare_times)
    n_attempts = len(result.attempts)
    print(f"scenario: {args.clients:,}-client burst, 30 s outage, default worker policy")
    print(f"attempts: {n_attempts:,}  calls: {len(result.calls):,}  events: {result.events:,}")
    print(
        f"engine (simulate, incl. records + invariants): {engine_s:.3f} s "
        f"= {n_attempts / engine_s:,.0f} attempts/s"
    )
    print(
        f"bare tenacity loop, same outcomes:              {bare_s:.3f} s "
        f"= {n_attempts / bare_s:,.0f} attempts/s"
    )
    median = ratios[len(ratios) // 2]
    print(
        f"engine / bare ratio: {median:.2f} median of {len(ratios)} interleaved pairs "
        f"(range {ratios[0]:.2f}-{ratios[-1]:.2f}); best times {engine_s / bare_s:.2f}; "
        "target <= 1.30"
    )
    tracemalloc.start()
    simulate(scenario)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"peak traced memory, {args.clients:,} clients: {peak / 2**20:.1f} MiB")

    hour = fleet_hour()
    hour_s, hour_result = best_of(1, lambda: simulate(hour))
    assert isinstance(hour_result, RunResult)
    print(
        f"an hour of a 10,000-client fleet (closed loop, 5 min think, flaky + outage): "
        f"{hour_s:.2f} s wall, {len(hour_result.calls):,} calls, "
        f"{len(hour_result.attempts):,} attempts"
    )

    if args.instructions:
        instruction_ratio(2000)

    if args.big:
        big = herd(args.big)
        big_s, big_result = best_of(1, lambda: simulate(big))
        assert isinstance(big_result, RunResult)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{args.big:,}-client burst: {big_s:.2f} s wall, {len(big_result.attempts):,} "
            f"attempts (target < 10 s); process max RSS {rss:.0f} MiB"
        )


if __name__ == "__main__":
    main()
