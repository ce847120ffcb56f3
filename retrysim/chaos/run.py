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
import signal
import time
import uuid
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager, nullcontext, suppress
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
from retrysim.stop_signals import held_by_loop

if TYPE_CHECKING:
    from retrysim.results.document import ResultDocument

P = ParamSpec("P")

#: A real run stops (its open calls left unfinished) this long after the scenario's duration.
GRACE = 30.0
#: Seconds each operation of the run's own talk with the service may take: connecting, the
#: health check, reading the executions back. A service that accepts and then never answers
#: fails the run's end in bounded time instead of hanging it (the fleet's requests are bounded
#: by the client's timeout, ``clients.timeout``, and by the run's end).
SERVICE_TIMEOUT = 5.0
#: How often a real run checks that its service is still there once the proxy failed to reach
#: it (no injected fault does that: the proxy's own refusals never try the service).
WATCH_INTERVAL = 0.25


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
    run lasts the scenario plus a grace period; a timeout is the client's giving up).

    A service that goes away mid-run (a Redis killed, an HTTP service stopped) ends the run
    where it went: :meth:`run_fleet` watches for the proxy failing to reach it, asks the service
    itself (:meth:`service_answers`), and if it does not answer stops every call, leaves them
    unfinished, and says why in ``incomplete``: the records up to then are the report's, marked
    incomplete, rather than lost to an error.
    """

    clients: list[Any]  # one library client per client process, made by each fleet
    #: Why the records are incomplete (the service went away, its counts could not be read
    #: back), in one line; None for a run that went to its end.
    incomplete: str | None = None
    #: The service the proxy forwards to, when it is another process (None: in this one).
    watched: tuple[str, int] | None = None

    def max_time(self) -> float:
        return self.scenario.duration + GRACE

    async def service_answers(self, address: tuple[str, int]) -> bool:
        """Whether the service at ``address`` is still there (here: it accepts a connection
        within :data:`SERVICE_TIMEOUT`); the Redis fleet asks for a PONG."""
        try:
            async with asyncio.timeout(SERVICE_TIMEOUT):
                _, writer = await asyncio.open_connection(*address)
        except (OSError, TimeoutError):
            return False
        writer.transport.abort()
        return True

    async def run_fleet(self, proxy: FaultProxy) -> None:
        """``main()`` (every client, to the run's end), stopped early if the service goes away
        (see the class)."""
        fleet = asyncio.ensure_future(self.main())
        owner = asyncio.current_task()
        watch = None if self.watched is None else asyncio.ensure_future(self._watch(proxy, owner))
        try:
            await fleet
        except asyncio.CancelledError:
            if self.incomplete is None or (owner is not None and owner.cancelling()):
                # A Ctrl-C or a signal, not the service's doing. main() does not stop the
                # clients it started when it is cancelled: stop them (and whatever else runs)
                # before the clients' connections are closed under them.
                self.stopping = True
                await stop_others({owner}, SERVICE_TIMEOUT)
                raise
            self.end_time = max(
                [c["end"] for c in self.calls if not math.isnan(c["end"])], default=0.0
            )
        finally:
            if watch is not None:
                watch.cancel()
                await asyncio.gather(watch, return_exceptions=True)

    async def _watch(self, proxy: FaultProxy, owner: asyncio.Task[Any] | None) -> None:
        """Every :data:`WATCH_INTERVAL`: if the proxy failed to reach the service since the
        last look and the service does not answer, stop every task but ``owner`` (the one
        waiting for the fleet) and this one."""
        assert self.watched is not None
        host, port = self.watched
        seen = 0
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            failed = self.upstream_failures(proxy)
            if failed == seen:
                continue
            seen = failed
            at = loop.time()
            if await self.service_answers(self.watched):
                continue
            self.incomplete = (
                f"the service at {host}:{port} went away at {at:.1f} s (the proxy could not "
                "reach it and it did not answer): the run stopped there"
            )
            self.stopping = True  # what still runs is left unfinished, not timed out
            await stop_others({owner}, SERVICE_TIMEOUT)
            return

    def upstream_failures(self, proxy: FaultProxy) -> int:
        """How often the service could not be reached so far (the HTTP fleet adds its
        gateway's tries)."""
        return proxy.stats.upstream_failed

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
        self.watched = upstream
        self.prefix = f"retrysim:{uuid.uuid4().hex[:12]}"
        self.clients: list[Any] = []  # one redis.asyncio.Redis per client process
        self.proxy_stats: dict[str, int] = {}

    def code_of(self, error: BaseException) -> int:
        return error_code(error)

    def is_timeout(self, error: BaseException) -> bool:
        return _is_timeout(error)

    async def service_answers(self, address: tuple[str, int]) -> bool:
        """Whether the Redis at ``address`` answers PING within :data:`SERVICE_TIMEOUT`."""
        try:
            async with asyncio.timeout(SERVICE_TIMEOUT):
                reader, writer = await asyncio.open_connection(*address)
                try:
                    writer.write(b"*1\r\n$4\r\nPING\r\n")
                    return (await reader.readline()).startswith(b"+PONG")
                finally:
                    writer.transport.abort()
        except (OSError, TimeoutError):
            return False

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
                await self.run_fleet(proxy)
            finally:
                await close_all(self.clients, lambda c: c.aclose(close_connection_pool=True))
            self.proxy_stats = proxy.stats.as_dict()
        if self.incomplete is None:
            await self._count_executions()
        else:
            successes_only(self)
        assign_executions(self)

    async def _count_executions(self) -> None:
        """Each call's executions, read from the Redis directly (not through the proxy).

        Each command waits at most :data:`SERVICE_TIMEOUT`; a Redis that does not answer (gone,
        or stalled) leaves the executions at the successful attempts, and the run marked
        incomplete, saying so.
        """
        from redis.asyncio import Redis
        from redis.exceptions import RedisError

        host, port = self.upstream
        direct = Redis(
            host=host,
            port=port,
            socket_timeout=SERVICE_TIMEOUT,
            socket_connect_timeout=SERVICE_TIMEOUT,
        )
        try:
            keys = [(c["client"] << CALL_KEY_SHIFT) | c["index"] for c in self.calls]
            names = [f"{self.prefix}:{k}" for k in keys]
            for start in range(0, len(names), 1000):
                chunk = names[start : start + 1000]
                async with asyncio.timeout(SERVICE_TIMEOUT):
                    values = await direct.mget(chunk)
                for record, value in zip(self.calls[start : start + 1000], values, strict=True):
                    record["executions"] = int(value or 0)
                async with asyncio.timeout(SERVICE_TIMEOUT):
                    await direct.delete(*chunk)
        except (RedisError, OSError, TimeoutError) as error:
            detail = " ".join(str(error).split()) or f"no answer within {SERVICE_TIMEOUT:g} s"
            self.incomplete = (
                f"the executions could not be read back from redis://{host}:{port} ({detail}): "
                "duplicates are not counted"
            )
            successes_only(self)
        finally:
            with suppress(RedisError, OSError, TimeoutError):
                async with asyncio.timeout(SERVICE_TIMEOUT):
                    await direct.aclose()


async def stop_others(keep: set[asyncio.Task[Any] | None], timeout: float) -> None:
    """Cancel every task on the loop but ``keep`` and the current one, and wait (at most
    ``timeout`` seconds) for them to end."""
    keep = {*keep, asyncio.current_task()}
    others = [task for task in asyncio.all_tasks() if task not in keep]
    for task in others:
        task.cancel()
    if others:
        await asyncio.wait(others, timeout=timeout)


async def close_all(clients: list[Any], close: Callable[[Any], Coroutine[Any, Any, Any]]) -> None:
    """``close`` each client, all of them within :data:`SERVICE_TIMEOUT` (a connection to a
    service that stopped answering must not hold the run's end)."""
    with suppress(TimeoutError):
        async with asyncio.timeout(SERVICE_TIMEOUT):
            for client in clients:
                await close(client)


def successes_only(runner: _Runner) -> None:
    """Each call's executions as its successful attempts: all that is known when the service
    cannot say (another HTTP service, a Redis gone before its counts were read)."""
    for record in runner.calls:
        mine = runner.mine[(record["client"], record["index"])]
        record["executions"] = sum(a["outcome"] == rec.OK for a in mine)


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
    the runner's settings and with tenacity's jitter routed to each call's own stream.

    SIGTERM and SIGHUP stop it as asyncio stops a Ctrl-C (:func:`stopped_by_signals`): the
    fleet is cancelled, its clients, proxy and service closed, and then the signal goes to
    whatever handled it before (the CLI's handler, which ends the command with 143 or 129).
    """
    previous = get_settings()
    use_settings(runner.settings)
    wall = time.perf_counter()
    caught: list[signal.Signals] = []
    try:
        with routed_jitter(), asyncio.Runner(loop_factory=_ZeroLoop) as loop_runner:
            loop_runner.run(stopped_by_signals(main(), caught))
    finally:
        use_settings(previous)
    if caught:
        redeliver(caught[0])
    return runner.result(time.perf_counter() - wall)


async def stopped_by_signals(work: Coroutine[Any, Any, None], caught: list[signal.Signals]) -> None:
    """Await ``work``; a SIGTERM or SIGHUP meanwhile cancels it (so every ``finally`` of the
    fleet runs on the loop, as for a Ctrl-C) and is put in ``caught`` for :func:`redeliver`.

    Without this, the CLI's handler would raise in whatever task happened to run, leaving the
    other tasks to be torn down with a "Task exception was never retrieved" each
    (:func:`~retrysim.stop_signals.held_by_loop` says what else the loop's handlers do).
    """
    task = asyncio.current_task()

    def stop(number: signal.Signals) -> None:
        if task is not None:
            caught.append(number)
            task.cancel()

    with held_by_loop(stop):
        try:
            await work
        except asyncio.CancelledError:
            if not caught or task is None or task.cancelling() > 1:
                raise  # not (only) our signal's cancel: a Ctrl-C
            task.uncancel()


def redeliver(number: signal.Signals) -> None:
    """Hand a signal a real run stopped on to the handler it had before the run: the CLI's
    raises its own exception; the default action ends the process as the signal would."""
    handler = signal.getsignal(number)
    if callable(handler):
        handler(number, None)
    else:
        signal.raise_signal(number)
    raise KeyboardInterrupt  # a handler that returned: the run was stopped all the same


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
    result, runner = _run_redis(scenario, upstream, seed, settings, force=force)
    return result, runner.proxy_stats


def _run_redis(
    scenario: Scenario,
    upstream: tuple[str, int],
    seed: int | None,
    settings: RetrySettings | None,
    *,
    force: bool,
) -> tuple[RunResult, _RealRunner]:
    check(scenario, force=force)
    check_redis(scenario)
    runner = _RealRunner(scenario, upstream, scenario.seed if seed is None else seed, settings)
    return drive(runner, runner.real_main), runner


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


def check_redis(scenario: Scenario) -> None:
    """A ChaosError for what a Redis run cannot give: an HTTP service's answers.

    A fault answering ``RateLimited`` (a 429), ``httpx.HTTPStatusError`` (a 503) or
    ``ServerError`` (a 500), or a ``rate_limited`` service, is an HTTP service's; through the
    proxy in front of a Redis they would silently become refused connections.
    """
    from retrysim.chaos.http_service import HTTP_STATUS, is_http_fault
    from retrysim.chaos.toxics import ChaosError

    for index, fault in enumerate(scenario.faults):
        if is_http_fault(fault):
            error = getattr(fault, "error", "")
            raise ChaosError(
                f"faults.{index}: the {fault.kind}'s error {error!r} is an HTTP answer "
                f"({HTTP_STATUS[error]}) a Redis cannot give: run it with --start-http (or "
                "--target http://127.0.0.1:PORT), or drop the fault"
            )
    if scenario.service.kind == "rate_limited":
        raise ChaosError(
            "service.kind: a 'rate_limited' service answers 429s, an HTTP service's answers a "
            "Redis cannot give: run it against a rate-limited HTTP service with --target "
            "http://127.0.0.1:PORT, or model the limit as an outage with error = 'RateLimited' "
            "for --start-http"
        )


@dataclass(frozen=True)
class RealRun:
    """A real run's records and its result document: what ``retrysim chaos --out`` saves, as
    ``retrysim run --out`` saves a simulation's. ``incomplete`` says why the records stop short
    (the service went away mid-run, its counts could not be read back), None when they do not.
    """

    result: RunResult
    document: ResultDocument
    incomplete: str | None = None


def real_run(
    scenario: Scenario,
    upstream: tuple[str, int],
    seed: int | None = None,
    settings: RetrySettings | None = None,
    *,
    vs_sim: int = 0,
    force: bool = False,
    model: Scenario | None = None,
) -> RealRun:
    """Run the Redis fleet (``run_real``) and build its document (``chaos_document``'s);
    ``model`` is what ``vs_sim`` simulates (default: ``scenario``; a calibrated one)."""
    started = time.perf_counter()
    result, runner = _run_redis(scenario, upstream, seed, settings, force=force)
    target = f"redis://{upstream[0]}:{upstream[1]}"
    stats = runner.proxy_stats
    document = real_document(result, started, target, stats, settings, vs_sim=vs_sim, model=model)
    return RealRun(result, document, runner.incomplete)


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
    model: Scenario | None = None,
) -> ResultDocument:
    """``summarize``'s document of a real run, with ``mode``, ``target``, ``proxy`` and (with
    ``vs_sim = K > 0``) the ``versus`` section against K simulated seeds of ``model`` (default:
    the run's own scenario)."""
    from retrysim.results.metrics import summarize

    document = summarize(result, wall_time=time.perf_counter() - started)
    document["mode"] = "real"
    document["target"] = target
    document["proxy"] = proxy
    if vs_sim > 0:
        from retrysim.chaos.versus import simulated, versus

        simulation = result.scenario if model is None else model
        document["versus"] = versus(document, simulated(simulation, result.seed, vs_sim, settings))
    return document
