"""A scenario's fleet as real asyncio clients against a real Redis, through a ``FaultProxy``.

Every client calls a function decorated with ``retrysim.retry``'s own decorator for the
scenario's operation, with the scenario's policy options and the ``RETRY__*`` settings, exactly
as fidelity mode does (this runner is fidelity mode's, ``retrysim.sim.fidelity``); only the
request is real: one ``INCR`` per attempt on a key of its own call, sent with redis-py's asyncio
client (its own retries off) to a ``FaultProxy`` built from the scenario's faults, in front of
the Redis. Times are real seconds since the start (an event loop whose clock starts at 0), so
the records are the simulator's, to the field, and ``metrics.summarize`` reads them unchanged.

What is real: connections (one redis-py pool per client process, ``clients.processes``, of at
most ``clients.pool_size`` connections), their opening, the refusals and black holes, the
client's timeout (``clients.timeout`` over the whole attempt: pool wait, connect, command), the
errors redis-py raises and the decorator's verdict on them. The scenario's ``[service]`` and
``[network]`` are the simulator's model of this; here the real Redis and loopback answer.
An attempt's ``executed`` comes from the Redis itself: after the run each call's counter says
how many of its INCRs ran; successful attempts ran, the surplus (duplicates) is put on the
call's last failed attempts.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec

from retrysim.chaos.fleet import check_fleet
from retrysim.chaos.proxy import FaultProxy
from retrysim.model.scenario import Scenario
from retrysim.retry.classify import full_name
from retrysim.retry.settings import RetrySettings, get_settings, use_settings
from retrysim.sim import records as rec
from retrysim.sim.clock import routed_jitter
from retrysim.sim.engine import CALL_KEY_SHIFT
from retrysim.sim.failures import CODES
from retrysim.sim.fidelity import _Runner
from retrysim.sim.result import RunResult

if TYPE_CHECKING:
    from retrysim.results.document import ResultDocument

P = ParamSpec("P")

#: A real run stops (its open calls left unfinished) this long after the scenario's duration.
GRACE = 30.0


class _ZeroLoop(asyncio.SelectorEventLoop):
    """A real-time event loop whose clock reads 0 when it is made: records start at 0."""

    def __init__(self) -> None:
        super().__init__()
        self._origin = time.monotonic()

    def time(self) -> float:
        return time.monotonic() - self._origin


def error_code(error: BaseException) -> int:
    """The record code of a real exception: its nearest class (along the MRO) in the registry.

    ``redis.exceptions.ConnectionError`` is recorded as itself, a builtin ``TimeoutError`` as
    ``TimeoutError``; a class the registry does not know records its nearest known ancestor,
    and anything else as ``ServerError``.
    """
    for cls in type(error).__mro__:
        name = full_name(cls)
        if name in CODES:
            return CODES[name]
    return CODES["ServerError"]


def _is_timeout(error: BaseException) -> bool:
    return isinstance(error, TimeoutError) or any(
        cls.__name__ == "TimeoutError" and cls.__module__.startswith("redis")
        for cls in type(error).__mro__
    )


class RealFleet(_Runner):
    """Fidelity mode's runner for a real fleet: what the Redis and the HTTP fleets share (their
    run lasts the scenario plus a grace period; a timeout is the client's giving up)."""

    clients: list[Any]  # one library client per client process, made by each fleet

    def max_time(self) -> float:
        return self.scenario.duration + GRACE

    def outcome_of(self, error: BaseException) -> int:
        return rec.TIMED_OUT if self.is_timeout(error) else rec.FAILED

    def is_timeout(self, error: BaseException) -> bool:
        """Whether ``error`` says the client stopped waiting for an answer."""
        raise NotImplementedError

    def client_of(self, key: int) -> Any:
        """The client (of one client process) call ``key`` sends through."""
        return self.clients[(key >> CALL_KEY_SHIFT) % len(self.clients)]

    def bounded(self) -> AbstractAsyncContextManager[Any]:
        """The client's timeout around one request (none without ``clients.timeout``)."""
        return nullcontext() if self.timeout is None else asyncio.timeout(self.timeout)


class _RealRunner(RealFleet):
    def __init__(
        self,
        scenario: Scenario,
        upstream: tuple[str, int],
        seed: int,
        settings: RetrySettings | None,
    ) -> None:
        super().__init__(scenario, seed, settings, ())
        self.upstream = upstream
        self.prefix = f"retrysim:{uuid.uuid4().hex[:12]}"
        self.clients: list[Any] = []  # one redis.asyncio.Redis per client process
        self.proxy_stats: dict[str, int] = {}

    def code_of(self, error: BaseException) -> int:
        return error_code(error)

    def is_timeout(self, error: BaseException) -> bool:
        return _is_timeout(error)

    async def request(
        self, key: int, n: int, attempt: dict[str, Any], record: dict[str, Any]
    ) -> None:
        async with self.bounded():
            await self.client_of(key).incr(f"{self.prefix}:{key}")

    async def real_main(self) -> None:
        from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        clients = self.scenario.clients
        processes = clients.process_count
        options: dict[str, Any] = {
            "retry": Retry(NoBackoff(), 0),  # the decorator retries, redis-py must not
            "socket_connect_timeout": clients.connect_timeout,
        }
        # its windows on the fleet's clock (the loop's zero), however long the start took
        async with FaultProxy(self.upstream, self.scenario, self.seed, origin=0.0) as proxy:
            for _ in range(processes):
                if clients.pool_size is None:
                    pool: Any = ConnectionPool(host="127.0.0.1", port=proxy.port, **options)
                else:
                    pool = BlockingConnectionPool(
                        host="127.0.0.1",
                        port=proxy.port,
                        max_connections=clients.pool_size,
                        timeout=None,  # the attempt's own timeout bounds the wait
                        **options,
                    )
                self.clients.append(Redis(connection_pool=pool))
            try:
                await self.main()
            finally:
                for client in self.clients:
                    await client.aclose(close_connection_pool=True)
            self.proxy_stats = proxy.stats.as_dict()
        await self._count_executions()

    async def _count_executions(self) -> None:
        """Each call's executions, read from the Redis directly (not through the proxy)."""
        from redis.asyncio import Redis

        direct = Redis(host=self.upstream[0], port=self.upstream[1])
        try:
            keys = [(c["client"] << CALL_KEY_SHIFT) | c["index"] for c in self.calls]
            names = [f"{self.prefix}:{k}" for k in keys]
            for start in range(0, len(names), 1000):
                chunk = names[start : start + 1000]
                values = await direct.mget(chunk)
                for record, value in zip(self.calls[start : start + 1000], values, strict=True):
                    record["executions"] = int(value or 0)
                await direct.delete(*chunk)
        finally:
            await direct.aclose()
        assign_executions(self)


def assign_executions(runner: _Runner) -> None:
    """Put each call's ``executions`` (counted by the service) on its attempts.

    Successful attempts ran; the surplus (duplicates: work done for an attempt the client saw
    fail) goes on the call's last failed or timed-out attempts.
    """
    for record in runner.calls:
        mine = runner.mine[(record["client"], record["index"])]
        extra = record["executions"]
        for attempt in mine:
            if attempt["outcome"] == rec.OK:
                attempt["executed"] = 1
                extra -= 1
        for attempt in reversed(mine):
            if extra <= 0:
                break
            if attempt["outcome"] in (rec.FAILED, rec.TIMED_OUT):
                attempt["executed"] = 1
                extra -= 1


def drive(runner: _Runner, main: Callable[[], Coroutine[Any, Any, None]]) -> RunResult:
    """Run ``main`` (a runner's real fleet) on a real-time loop whose clock starts at 0, under
    the runner's settings and with tenacity's jitter routed to each call's own stream."""
    previous = get_settings()
    use_settings(runner.settings)
    wall = time.perf_counter()
    try:
        with routed_jitter(), asyncio.Runner(loop_factory=_ZeroLoop) as loop_runner:
            loop_runner.run(main())
    finally:
        use_settings(previous)
    return runner.result(time.perf_counter() - wall)


def run_real(
    scenario: Scenario,
    upstream: tuple[str, int],
    seed: int | None = None,
    settings: RetrySettings | None = None,
    *,
    force: bool = False,
) -> tuple[RunResult, dict[str, int]]:
    """Run ``scenario``'s fleet for real against the Redis at ``upstream`` (loopback).

    Returns the records (a ``RunResult``, times in seconds since the start) and what the proxy
    did (``ProxyStats.as_dict()``). Needs redis-py; the upstream must be a loopback address.
    A fleet past ``retrysim.chaos.fleet.MAX_REAL_CLIENTS`` is refused unless ``force``.
    """
    check(scenario, force=force)
    runner = _RealRunner(scenario, upstream, scenario.seed if seed is None else seed, settings)
    return drive(runner, runner.real_main), runner.proxy_stats


def check(scenario: Scenario, *, force: bool = False) -> None:
    """A ChaosError for a scenario a real run cannot run: Poisson arrivals, ``retry_on``, a
    duration of 120 s or more, or (unless ``force``) a fleet larger than one process drives."""
    from retrysim.chaos.toxics import ChaosError
    from retrysim.model.scenario import Poisson

    if isinstance(scenario.clients.arrival, Poisson):
        raise ChaosError("chaos runs closed, burst and uniform arrivals, not Poisson")
    if scenario.policy.retry_on is not None:
        raise ChaosError("chaos runs the policy's own error classifier; drop policy.retry_on")
    if not math.isfinite(scenario.duration) or scenario.duration > 120:
        raise ChaosError("chaos runs in real time: keep the scenario's duration under 120 s")
    check_fleet(scenario, force=force)


@dataclass(frozen=True)
class RealRun:
    """A real run's records and its result document: what ``retrysim chaos --out`` saves, as
    ``retrysim run --out`` saves a simulation's."""

    result: RunResult
    document: ResultDocument


def real_run(
    scenario: Scenario,
    upstream: tuple[str, int],
    seed: int | None = None,
    settings: RetrySettings | None = None,
    *,
    vs_sim: int = 0,
    force: bool = False,
) -> RealRun:
    """Run the Redis fleet (``run_real``) and build its document (``chaos_document``'s)."""
    started = time.perf_counter()
    result, stats = run_real(scenario, upstream, seed, settings, force=force)
    target = f"redis://{upstream[0]}:{upstream[1]}"
    document = real_document(result, started, target, stats, settings, vs_sim=vs_sim)
    return RealRun(result, document)


def document_only(run: Callable[P, RealRun], name: str, doc: str) -> Callable[P, ResultDocument]:
    """``run`` (a fleet's ``*_real_run``) answering with its document alone: the one body of
    ``chaos_document`` and ``http_chaos_document``, which take their runner's very arguments."""

    def document(*args: P.args, **kwargs: P.kwargs) -> ResultDocument:
        return run(*args, **kwargs).document

    document.__module__ = run.__module__
    document.__name__ = document.__qualname__ = name
    document.__doc__ = doc
    return document


chaos_document = document_only(
    real_run,
    "chaos_document",
    """A real run's result document (``summarize``'s, plus ``mode``, ``target`` and ``proxy``):
    ``real_run``'s arguments, its document.

    ``vs_sim = K > 0`` also simulates the scenario over K seeds (its seed, +1, ...) and adds the
    side-by-side (``retrysim.chaos.versus``) as the document's ``versus`` section.
    """,
)


def real_document(
    result: RunResult,
    started: float,
    target: str,
    proxy: dict[str, int],
    settings: RetrySettings | None,
    *,
    vs_sim: int = 0,
) -> ResultDocument:
    """``summarize``'s document of a real run, with ``mode``, ``target``, ``proxy`` and (with
    ``vs_sim = K > 0``) the ``versus`` section against K simulated seeds."""
    from retrysim.results.metrics import summarize

    scenario = result.scenario
    document = summarize(result, wall_time=time.perf_counter() - started)
    document["mode"] = "real"
    document["target"] = target
    document["proxy"] = proxy
    if vs_sim > 0:
        from retrysim.chaos.versus import versus
        from retrysim.runs.runner import run

        first = result.seed
        simulated = [
            run(scenario, seed=first + i, settings=settings, baseline=False).document
            for i in range(vs_sim)
        ]
        document["versus"] = versus(document, simulated)
    return document
