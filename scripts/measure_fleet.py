"""Measure how large a real fleet one Python process can drive: the input of MAX_REAL_CLIENTS.

    python scripts/measure_fleet.py real-redis-blip --counts 200,500,1000,2000,4000
    python scripts/measure_fleet.py real-http-rate-limit --http --counts 100,200,400
    python scripts/measure_fleet.py thundering-herd --counts 500,1000,2000 --set duration=10 \
        --set faults.0.end=3

Each count N runs ``retrysim chaos SCENARIO --start-redis --set clients.count=N``'s fleet (the
same code: ``retrysim.chaos.run``) against a private redis-server, with one more task on the
fleet's loop: a probe that asks to sleep 10 ms, over and over, and records how late it woke.
That lateness is the loop's lag, which every real attempt's timing carries too (a client
waiting on its timeout, a retry's wait, an answer read from the socket). Printed per count:
the run's wall time, calls and how many finished, success, attempts and how many timed out,
the attempts' p50/p99 latency, and the loop's lag (p50, p99, max).

The run is trustworthy while the lag stays a small share of the client timeout: beyond that
the fleet measures its own loop, not the service (attempts time out on a healthy Redis,
calls are cut off unfinished at the end). ``retrysim.chaos.limits`` holds the result.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PROBE_STEP = 0.01


async def _probe(lags: list[float], done: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not done.is_set():
        asked = loop.time()
        await asyncio.sleep(PROBE_STEP)
        lags.append(loop.time() - asked - PROBE_STEP)


def _ms(value: float) -> str:
    return f"{1000 * value:,.0f} ms"


def _runner(scenario: Any, port: int | None) -> Any:
    """The Redis fleet against the private redis-server at ``port``; None: the HTTP fleet
    against retrysim's own service (``--start-http``)."""
    if port is None:
        from retrysim.chaos.http_run import _HttpRunner, _warm_up, check_http

        check_http(scenario, None, force=True)
        _warm_up()
        return _HttpRunner(scenario, None, scenario.seed, None)
    from retrysim.chaos.run import _RealRunner, check

    check(scenario, force=True)
    return _RealRunner(scenario, ("127.0.0.1", port), scenario.seed, None)


def measure(scenario: Any, port: int | None) -> dict[str, Any]:
    from retrysim.chaos.run import drive
    from retrysim.sim import records as rec

    runner = _runner(scenario, port)
    lags: list[float] = []

    async def main() -> None:
        done = asyncio.Event()
        probe = asyncio.ensure_future(_probe(lags, done))
        try:
            await runner.real_main()
        finally:
            done.set()
            await probe

    wall = time.perf_counter()
    result = drive(runner, main)
    wall = time.perf_counter() - wall
    calls, attempts = result.calls, result.attempts
    finished = attempts[~_isnan(attempts["end"])]
    latency = sorted(float(a["end"] - a["start"]) for a in finished)
    q = statistics.quantiles(latency, n=100) if len(latency) > 1 else [math.nan] * 99
    lag_q = statistics.quantiles(lags, n=100) if len(lags) > 1 else [math.nan] * 99
    return {
        "wall": wall,
        "calls": len(calls),
        "unfinished": int((calls["outcome"] == rec.UNFINISHED).sum()),
        "success": float((calls["outcome"] == rec.SUCCEEDED).mean()) if len(calls) else 0.0,
        "attempts": len(attempts),
        "timed_out": int((attempts["outcome"] == rec.TIMED_OUT).sum()),
        "p50": q[49],
        "p99": q[98],
        "lag_p50": lag_q[49],
        "lag_p99": lag_q[98],
        "lag_max": max(lags, default=math.nan),
    }


def _isnan(values: Any) -> Any:
    import numpy as np

    return np.isnan(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario")
    parser.add_argument("--counts", default="200,500,1000,2000,4000")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--http", action="store_true", help="the HTTP fleet (--start-http)")
    args = parser.parse_args()

    from retrysim.chaos.redis_target import private_redis
    from retrysim.cli.common import parse_sets
    from retrysim.model.library import load_scenario

    base = load_scenario(args.scenario).with_overrides(parse_sets(args.set))
    timeout = base.clients.timeout
    print(f"{base.name}: timeout {timeout} s, duration {base.duration:g} s")
    with nullcontext() if args.http else private_redis() as port:
        for count in (int(c) for c in args.counts.split(",")):
            scenario = base.with_overrides({"clients.count": count})
            m = measure(scenario, port)
            print(
                f"N={count:>6,}: wall {m['wall']:5.1f} s, calls {m['calls']:,} "
                f"({m['unfinished']:,} unfinished), success {100 * m['success']:.1f}%, "
                f"attempts {m['attempts']:,} ({m['timed_out']:,} timed out), latency p50 "
                f"{_ms(m['p50'])} p99 {_ms(m['p99'])}; loop lag p50 {_ms(m['lag_p50'])} "
                f"p99 {_ms(m['lag_p99'])} max {_ms(m['lag_max'])}",
                flush=True,
            )


if __name__ == "__main__":
    main()
