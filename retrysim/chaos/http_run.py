"""A scenario's fleet as real asyncio httpx clients against an HTTP service, through the proxy.

The HTTP counterpart of ``retrysim.chaos.run`` (the Redis fleet), on the same runner (fidelity
mode's, ``retrysim.sim.fidelity``) and the same real-time loop, so the records are the
simulator's to the field: every client calls a function decorated with ``retrysim.retry``'s own
decorator for the scenario's operation (``api`` for an HTTP API), and each attempt is one real
``POST`` with ``httpx.AsyncClient`` (one per client process, ``clients.processes``, with at most
``clients.pool_size`` connections; ``clients.timeout`` over the whole attempt) to a
``FaultProxy`` in front of the service.

Why the faults are split: an HTTP answer (429 with Retry-After, 503, 500, a slow 200) is an
HTTP server's to give and a connection fault (refusal, reset, black hole) the proxy's
(``retrysim.chaos.http_faults.split_faults``). With ``--start-http`` the HTTP server is
retrysim's own service (``HttpService``, on the same loop), which answers with the simulator's
own draws and counts each call's executions. Against the user's own service (``--target``) it
is the gateway in front of it (``retrysim.chaos.http_gateway.HttpGateway``, on the same loop),
which answers the HTTP faults with the same draws and passes every other request on: the chain
is proxy -> gateway -> service, and a call's executions are its requests the service answered
with a 2xx.

A failed attempt's error is recorded under the name the simulator uses for the same thing
(``http_error_code``): a 429 as ``RateLimited``, a 500 as ``ServerError``, any other status as
``httpx.HTTPStatusError``; httpx's transport errors by their own names where the simulator
knows them (``httpx.ConnectError``, ``httpx.RemoteProtocolError``, ...).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from contextlib import AsyncExitStack
from typing import Any

from retrysim.chaos.http_faults import HTTP_STATUS, split_faults
from retrysim.chaos.http_gateway import HttpGateway
from retrysim.chaos.http_service import HttpFaultServer, HttpService
from retrysim.chaos.http_target import HttpTarget
from retrysim.chaos.proxy import FaultProxy
from retrysim.chaos.run import (
    RealFleet,
    RealRun,
    assign_executions,
    check,
    close_all,
    document_only,
    drive,
    error_code,
    real_document,
)
from retrysim.chaos.toxics import ChaosError, toxics_from_scenario
from retrysim.model.scenario import Scenario
from retrysim.retry.settings import RetrySettings
from retrysim.sim.engine import CALL_KEY_SHIFT
from retrysim.sim.failures import CODES
from retrysim.sim.result import RunResult

#: The record name of an HTTP status the service gives for a fault (the fault's own error).
STATUS_NAMES: dict[int, str] = {
    status: name for name, status in HTTP_STATUS.items() if name != "httpx.HTTPStatusError"
}


def _httpx_name(cls: type) -> str | None:
    from retrysim.retry.classify import class_key

    package, name = class_key(cls)
    return name if package in ("httpx", "httpcore") else None


def http_error_code(error: BaseException) -> int:
    """The record code of a real httpx (or any other) exception; see the module docstring."""
    from retrysim.retry.classify import status_of

    for cls in type(error).__mro__:
        name = _httpx_name(cls)
        if name == "HTTPStatusError":
            return CODES[STATUS_NAMES.get(status_of(error) or 0, "httpx.HTTPStatusError")]
        if name is not None and f"httpx.{name}" in CODES:
            return CODES[f"httpx.{name}"]
    return error_code(error)


def _is_timeout(error: BaseException) -> bool:
    """The client stopped waiting for an answer (a connect timeout is a failed connect)."""
    if isinstance(error, TimeoutError):
        return True
    names = {_httpx_name(cls) for cls in type(error).__mro__}
    return "TimeoutException" in names and "ConnectTimeout" not in names


class _HttpRunner(RealFleet):
    def __init__(
        self,
        scenario: Scenario,
        target: HttpTarget | None,
        seed: int,
        settings: RetrySettings | None,
    ) -> None:
        super().__init__(scenario, seed, settings, ())
        self.target = target
        self.clients: list[Any] = []  # one httpx.AsyncClient per client process
        self.path = "/" if target is None else target.path
        self.proxy_stats: dict[str, int] = {}
        self.service_stats: dict[str, int] | None = None
        self.url = "" if target is None else target.url
        # Built before the loop starts (compiling the schedule imports the samplers), so the
        # service and the proxy are up within milliseconds of the fleet's clock reading 0.
        _, proxy_faults = split_faults(scenario.faults)
        self.toxics = toxics_from_scenario(proxy_faults)
        self.server: HttpFaultServer = (
            HttpService(scenario, seed, origin=0.0)
            if target is None
            else HttpGateway(target.address, scenario, seed, origin=0.0)
        )
        self.watched = None if target is None else target.address  # another process's

    def code_of(self, error: BaseException) -> int:
        return http_error_code(error)

    def is_timeout(self, error: BaseException) -> bool:
        return _is_timeout(error)

    async def request(
        self, key: int, n: int, attempt: dict[str, Any], record: dict[str, Any]
    ) -> None:
        headers = {"X-Retrysim-Call": str(key), "X-Retrysim-Attempt": str(n)}
        async with self.bounded():
            response = await self.client_of(key).post(self.path, headers=headers)
        response.raise_for_status()  # httpx.HTTPStatusError for a 4xx or 5xx

    async def real_main(self) -> None:
        import httpx

        clients = self.scenario.clients
        processes = clients.process_count
        # httpx loads a CA bundle per client (40 ms each) unless given a context; http:// never
        # uses it, so one bare context serves them all.
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        async with AsyncExitStack() as stack:
            server = await stack.enter_async_context(self.server)
            upstream = server.address
            if self.target is None:
                self.url = f"http://{upstream[0]}:{upstream[1]}/ (retrysim's own service)"
            proxy = await stack.enter_async_context(
                FaultProxy(upstream, self.toxics, self.seed, origin=0.0)
            )
            limits = httpx.Limits(
                max_connections=clients.pool_size,
                max_keepalive_connections=clients.pool_size,
                keepalive_expiry=None,  # a connection stays open until an error closes it
            )
            timeout = httpx.Timeout(None, connect=clients.connect_timeout)
            for _ in range(processes):
                client = httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{proxy.port}",
                    limits=limits,
                    timeout=timeout,
                    verify=tls,
                    trust_env=False,  # no HTTP(S)_PROXY: the requests go to the proxy only
                )
                self.clients.append(client)
            try:
                await self.run_fleet(proxy)
            finally:
                await close_all(self.clients, lambda client: client.aclose())
            self.proxy_stats = proxy.stats.as_dict()
            self.service_stats = server.stats.as_dict()
            for record in self.calls:
                key = (record["client"] << CALL_KEY_SHIFT) | record["index"]
                record["executions"] = server.executions[key]
        assign_executions(self)

    def upstream_failures(self, proxy: FaultProxy) -> int:
        """The proxy's failures to reach the HTTP server, and the gateway's to reach the
        user's service (what the run's watch looks at)."""
        return proxy.stats.upstream_failed + getattr(self.server.stats, "upstream_failed", 0)


def check_http(scenario: Scenario, target: HttpTarget | None, *, force: bool = False) -> None:
    """``check`` plus: retrysim's own service is the ``ideal`` one (the user's own service, a
    ``--target``, may be modelled by any kind with a ``latency``), and no Redis errors."""
    from retrysim.model.scenario import Ideal

    check(scenario, force=force)
    service = scenario.service
    if target is None and not isinstance(service, Ideal):
        raise ChaosError(
            f"service.kind: --start-http runs the 'ideal' service, not {service.kind!r}"
        )
    if not hasattr(service, "latency"):
        raise ChaosError(f"service.kind: a real run cannot model a {service.kind!r} service")
    if any(f.kind == "capacity_loss" for f in scenario.faults):
        raise ChaosError("faults: capacity_loss is a queue server's, not an HTTP service's")
    for index, fault in enumerate(scenario.faults):
        error = getattr(fault, "error", None) or ""
        if error.startswith("redis."):
            raise ChaosError(
                f"faults.{index}: the {fault.kind}'s error {error!r} is redis-py's, which an "
                "HTTP client never raises: run it with --start-redis (or --target "
                "redis://127.0.0.1:PORT), or give the fault an HTTP error"
            )


_warm = {"done": False}


def _warm_up() -> None:
    """One request to a throwaway service on a loop of its own, once per process.

    httpx loads httpcore on its first client and anyio's asyncio backend on its first request
    (about 60 ms together); inside a run that would land on the first attempts' clock.
    """
    if _warm["done"]:
        return
    import httpx

    async def once() -> None:
        async with HttpService() as service, httpx.AsyncClient(trust_env=False) as client:
            await client.post(f"http://127.0.0.1:{service.port}/")

    asyncio.run(once())
    _warm["done"] = True


def run_http(
    scenario: Scenario,
    target: HttpTarget | None = None,
    seed: int | None = None,
    settings: RetrySettings | None = None,
    *,
    force: bool = False,
) -> tuple[RunResult, str, dict[str, int], dict[str, int] | None]:
    """Run ``scenario``'s fleet for real against an HTTP service (loopback).

    ``target`` None starts retrysim's own ``HttpService`` for the run. Returns the records, the
    target's URL, the proxy's counters and the HTTP server's (retrysim's service's, or for a
    ``target`` its gateway's: ``GatewayStats``). A
    fleet past ``retrysim.chaos.fleet.MAX_REAL_CLIENTS`` is refused unless ``force``.
    """
    result, runner = _run_http(scenario, target, seed, settings, force=force)
    return result, runner.url, runner.proxy_stats, runner.service_stats


def _run_http(
    scenario: Scenario,
    target: HttpTarget | None,
    seed: int | None,
    settings: RetrySettings | None,
    *,
    force: bool,
) -> tuple[RunResult, _HttpRunner]:
    check_http(scenario, target, force=force)
    _warm_up()
    runner = _HttpRunner(scenario, target, scenario.seed if seed is None else seed, settings)
    return drive(runner, runner.real_main), runner


def http_real_run(
    scenario: Scenario,
    target: HttpTarget | None = None,
    seed: int | None = None,
    settings: RetrySettings | None = None,
    *,
    vs_sim: int = 0,
    force: bool = False,
    model: Scenario | None = None,
) -> RealRun:
    """Run the HTTP fleet (``run_http``): its records and ``http_chaos_document``'s document;
    ``model`` is what ``vs_sim`` simulates (default: ``scenario``; a calibrated one)."""
    started = time.perf_counter()
    result, runner = _run_http(scenario, target, seed, settings, force=force)
    stats, url = runner.proxy_stats, runner.url
    document = real_document(result, started, url, stats, settings, vs_sim=vs_sim, model=model)
    if runner.service_stats is not None:
        document["service"] = runner.service_stats
    return RealRun(result, document, runner.incomplete)


http_chaos_document = document_only(
    http_real_run,
    "http_chaos_document",
    """A real HTTP run's result document: ``chaos_document``'s, with ``service`` (what
    retrysim's own service answered, or for a ``target`` what the gateway in front of it did);
    ``http_real_run``'s arguments.""",
)
