"""Measure what a real chaos run costs its one Python process: the inputs of clients.cpu_*.

    python scripts/measure_cpu.py real-redis-blip            # a real run's CPU per attempt
    python scripts/measure_cpu.py real-http-rate-limit       # (HTTP: --start-http's service)
    python scripts/measure_cpu.py --connects 200 redis       # what a connect costs, 200 at once
    python scripts/measure_cpu.py --connects 100 http

A real run (``retrysim chaos SCENARIO``'s fleet, the same code) is timed with the process's CPU
clock: the clients, their pools, the fault proxy and (HTTP) the service all run on its one
loop; redis-server is another process and is not counted. It prints the attempts, the
connections the proxy accepted, the CPU seconds and the CPU per attempt, and the latency of
the first attempts (the ones that open the connections).

``--connects N`` opens N connections at once through a fault-free proxy (N redis-py clients
each sending one INCR, or N httpx clients each one POST), then sends the same N requests
again over the open connections: the difference in CPU, over N, is what one connect costs.
A busy loop run just after the real run measures the share of a core the process got (other
jobs on the machine take turns). The README's "Sim vs real" section says how these make
``cpu_per_connect`` and ``cpu_per_attempt``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _quantiles(values: list[float]) -> str:
    if len(values) < 2:
        return "n/a"
    q = statistics.quantiles(values, n=10)
    return f"p50 {statistics.median(values) * 1000:.1f} ms, p90 {q[8] * 1000:.1f} ms"


class _CpuSampler:
    """A thread reading the process's CPU clock every ``step`` seconds of wall time."""

    def __init__(self, step: float = 0.1) -> None:
        import threading

        self.step = step
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.step):
            self.samples.append((time.perf_counter(), time.process_time()))

    def __enter__(self) -> _CpuSampler:
        self.samples.append((time.perf_counter(), time.process_time()))
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def report(self) -> str:
        """CPU seconds per wall second, for each 0.5 s of the run."""
        out, (t0, c0) = [], self.samples[0]
        for t, c in self.samples[5::5]:
            out.append(f"{(c - c0) / (t - t0):.2f}")
            t0, c0 = t, c
        return " ".join(out)


def core_share(seconds: float = 1.0) -> float:
    """The share of a core this process gets when it wants one: a busy loop's CPU over its wall
    time (1.0 on an idle machine; less when other jobs take turns on the cores)."""
    wall, cpu = time.perf_counter(), time.process_time()
    while time.perf_counter() - wall < seconds:
        pass
    return (time.process_time() - cpu) / (time.perf_counter() - wall)


def measure_run(name: str) -> None:
    from retrysim.chaos.http_run import run_http
    from retrysim.chaos.redis_target import private_redis
    from retrysim.chaos.run import run_real
    from retrysim.model.library import load_scenario

    scenario = load_scenario(name)
    import httpx  # noqa: F401  (imported before the clock starts: not a run's cost)
    import redis.asyncio  # noqa: F401

    http = any(getattr(f, "error", "") in ("RateLimited",) for f in scenario.faults) or (
        scenario.policy.operation == "api"
    )
    if http:
        started = time.process_time()
        with _CpuSampler() as sampler:
            result, _url, proxy, _service = run_http(scenario)
        cpu = time.process_time() - started
    else:
        with private_redis() as port:
            started = time.process_time()
            with _CpuSampler() as sampler:
                result, proxy = run_real(scenario, ("127.0.0.1", port))
            cpu = time.process_time() - started
    share = core_share()
    a = result.attempts
    ramp = getattr(scenario.clients.arrival, "ramp", 0.0) or 0.0
    first = (a["attempt"] == 1) & (a["start"] < max(ramp, 0.05))
    durations = [float(d) for d in (a["end"] - a["start"])[first]]
    attempts, connections = len(a), proxy.get("connections", 0)
    print(f"{name}: {attempts} attempts, {connections} connections, {cpu:.3f} s of CPU")
    print(f"  CPU per attempt (connects included): {cpu / attempts * 1000:.3f} ms")
    print(f"  share of a core this process got just after: {share:.2f}")
    print(f"  first attempts (started in the ramp, {len(durations)}): {_quantiles(durations)}")
    print(f"  CPU seconds per wall second, each 0.5 s: {sampler.report()}")


async def _redis_connects(n: int, port: int) -> tuple[float, float, list[float]]:
    from redis.asyncio import Redis

    from retrysim.chaos.proxy import FaultProxy

    async with FaultProxy(("127.0.0.1", port)) as proxy:
        clients = [Redis(host="127.0.0.1", port=proxy.port) for _ in range(n)]
        return await _twice(clients, lambda client: client.incr("retrysim:measure"))


async def _twice(
    clients: list[Any], request: Callable[[Any], Awaitable[Any]]
) -> tuple[float, float, list[float]]:
    """Every client's request at once, twice (connecting, then over the open connections):
    the CPU of each round, and each first request's seconds. The clients are closed after."""
    seconds: list[float] = []

    async def one(client: Any) -> None:
        t = time.perf_counter()
        await request(client)
        seconds.append(time.perf_counter() - t)

    cpu = time.process_time()
    await asyncio.gather(*(one(c) for c in clients))
    connecting = time.process_time() - cpu
    first = list(seconds)
    cpu = time.process_time()
    await asyncio.gather(*(one(c) for c in clients))
    open_ = time.process_time() - cpu
    for client in clients:
        await client.aclose()
    return connecting, open_, first


async def _http_connects(n: int) -> tuple[float, float, list[float]]:
    import ssl

    import httpx

    from retrysim.chaos.http_service import HttpService
    from retrysim.chaos.proxy import FaultProxy

    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    async with HttpService() as service, FaultProxy(service.address) as proxy:
        clients = [
            httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{proxy.port}", verify=tls, trust_env=False
            )
            for _ in range(n)
        ]
        warm = httpx.AsyncClient(base_url=f"http://127.0.0.1:{proxy.port}", trust_env=False)
        await warm.post("/")  # httpx's first request loads its backend: not a connect's cost
        await warm.aclose()
        return await _twice(clients, lambda client: client.post("/"))


def measure_connects(n: int, kind: str) -> None:
    if kind == "redis":
        from retrysim.chaos.redis_target import private_redis

        with private_redis() as port:
            connecting, open_, first = asyncio.run(_redis_connects(n, port))
    else:
        connecting, open_, first = asyncio.run(_http_connects(n))
    print(f"{kind}: {n} requests opening a connection each, at once: {connecting:.3f} s of CPU")
    print(f"  the same {n} over open connections: {open_:.3f} s of CPU")
    print(f"  CPU per connect: {(connecting - open_) / n * 1000:.3f} ms")
    print(f"  CPU per request on an open connection: {open_ / n * 1000:.3f} ms")
    print(f"  the first requests (connect included): {_quantiles(first)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", help="a real-* scenario, or with --connects: redis or http")
    parser.add_argument("--connects", type=int, default=0, metavar="N")
    args = parser.parse_args()
    if args.connects:
        measure_connects(args.connects, args.target)
    else:
        measure_run(args.target)


if __name__ == "__main__":
    main()
