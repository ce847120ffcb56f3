"""Fidelity mode across tiers and replicas: the server of a tier that calls the next one, each
tier's records, and the replicas an attempt is routed to.

A tier serves a request as a service built on ``asyncio`` would: its own work (the tier's drawn
service time), then a call to the next tier, made by the caller the engine's
:func:`~retrysim.sim.tiers.caller_of` picks, through the real decorator of that tier's policy.
The work runs in a task of its own, which the attempt awaits through ``asyncio.shield``: an
attempt that stops waiting (its ``attempt_timeout``, a reset connection) leaves the work and
the call below running, the wasted work the engine counts. With ``propagate_deadline`` the call
below runs under ``asyncio.timeout_at`` of the caller's deadline (the attempt's start plus its
timeout, or sooner the deadline its own call carries), as gRPC carries a deadline with the
request: the caller giving up cancels the call below there and then, through every tier that
propagates it. The call below ends with its record; the request above is answered with what it
ended with (success, an answer it took, or the error it gave up with, without the Retry-After
hint: a service answers its caller with a status of its own, not its dependency's exception).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from retrysim.model.scenario import Scenario
from retrysim.sim import records as rec
from retrysim.sim.aio import answer_after
from retrysim.sim.attempt import AttemptPhases
from retrysim.sim.balance import Balancer
from retrysim.sim.failures import TIMEOUT
from retrysim.sim.faults import compile_faults
from retrysim.sim.hedging import HEDGE_SHIFT
from retrysim.sim.result import TierRun
from retrysim.sim.service import service_latency
from retrysim.sim.streams import BALANCE, stream_key
from retrysim.sim.tiers import caller_of


class Runner(Protocol):
    """What this module asks of fidelity mode's runner of one tier (``fidelity._Runner``;
    named structurally, so the two modules do not import each other)."""

    level: int
    scenario: Scenario
    timeout: float | None
    tiers: TierLink
    attempts: list[dict[str, Any]]
    calls: list[dict[str, Any]]

    @property
    def policy(self) -> Any: ...

    def chain(self) -> Sequence[Runner]: ...

    async def call(
        self, client: int, index: int, parent: dict[str, Any] | None, deadline: float
    ) -> dict[str, Any]: ...

    def record_arrays(self) -> tuple[np.ndarray, np.ndarray, list[int]]: ...


class Replicas:
    """A tier's replicas as the engine builds them: each one's attempt phases (its own faults:
    a fault's ``replicas``) and the balancer that picks one per attempt, on the same stream."""

    def __init__(self, view: Scenario, seed: int) -> None:
        service = view.service
        latency = service_latency(service)
        self.phases = [
            AttemptPhases(
                compile_faults(
                    [f for f in view.faults if f.replicas is None or r in f.replicas], seed
                ),
                latency,
                seed,
            )
            for r in range(service.replicas)
        ]
        self.balancer = (
            None
            if service.replicas == 1
            else Balancer(service.replicas, service.balance, stream_key(seed, BALANCE))
        )
        # retries go to replicas the call has not tried yet, while there is one
        self.avoid_tried = self.balancer is not None and view.policy.retry_other_host

    def route(
        self, key: int, n: int, attempt: dict[str, Any], record: dict[str, Any]
    ) -> AttemptPhases:
        """The replica the balancer picks for attempt ``n`` of the call keyed ``key`` (one the
        call ``record`` has not tried, with ``retry_other_host``, while there is one): its
        phases. The attempt is outstanding there until its caller hears from it."""
        assert self.balancer is not None
        avoid = record.get("tried", 0) if self.avoid_tried else 0
        for sibling in record["group"][:-1]:  # a hedge avoids its siblings' replicas
            avoid |= 1 << sibling["replica"]
        replica = self.balancer.pick(key, n, avoid)
        self.balancer.sent(replica)
        if self.avoid_tried:
            record["tried"] = avoid | 1 << replica
        attempt["replica"] = replica
        return self.phases[replica]


class TierLink:
    """What links one tier's runner to the tiers above and below it (nothing, with one tier)."""

    def __init__(self, runner: Runner, scenario: Scenario, above: Runner | None) -> None:
        self.runner = runner
        self.names = scenario.tier_names
        self.has_below = runner.level + 1 < len(self.names)
        self.below: Runner | None = None  # built by the runner once it is complete
        #: whether the calls made to this tier carry their caller's deadline
        self.propagates = (
            above is not None and scenario.tiers[self.names[runner.level - 1]].propagate_deadline
        )
        self.issued = [0] * runner.scenario.clients.count  # calls each caller has made so far
        #: the servers' tasks still running, at every tier (one set, the top runner's)
        self.servers: set[asyncio.Task[int]] = set() if above is None else above.tiers.servers

    async def pass_down(
        self,
        phases: AttemptPhases,
        t: float,
        key: int,
        n: int,
        service_time: float,
        attempt: dict[str, Any],
        record: dict[str, Any],
    ) -> int:
        """Attempt ``n`` of the call keyed ``key``, sent at ``t``, past the door of its replica
        (``phases``): the server's work starts; the record code the attempt hears (0: served,
        an answer's code, or the error the call below gave up with, or its reset's)."""
        server = asyncio.ensure_future(self.serve(service_time, attempt, record))
        self.servers.add(server)
        server.add_done_callback(self.servers.discard)
        reset = phases.reset(t, key, n)
        if reset is not None:  # the connection is cut while the server works on
            await answer_after(reset[0] * service_time)
            return reset[1]
        return await asyncio.shield(server)  # giving up on it leaves the work running

    async def serve(
        self, service_time: float, attempt: dict[str, Any], record: dict[str, Any]
    ) -> int:
        """The server's work for ``attempt`` (of the call ``record``): this tier's service
        time, then the call below; the code the request is answered with."""
        await asyncio.sleep(service_time)
        attempt["executed"] = 1  # this tier's work is done, whoever still waits for it
        record["executions"] += 1
        below = self.below
        assert below is not None
        issued = below.tiers.issued
        draw = attempt["attempt"] + (attempt["hedge"] << HEDGE_SHIFT)
        client = caller_of(record["client"], record["index"], draw, len(issued))
        index = issued[client]
        issued[client] = index + 1
        deadline = self.deadline_of(attempt, record) if below.tiers.propagates else math.inf
        code: int = await below.tiers.answer(client, index, attempt, deadline)
        return code

    def deadline_of(self, attempt: dict[str, Any], record: dict[str, Any]) -> float:
        """When the caller of ``attempt`` stops waiting for it: its timeout, or sooner the
        deadline its own call carries from above (infinity: never)."""
        timeout = self.runner.timeout
        deadline = math.inf if timeout is None else attempt["start"] + timeout
        return min(deadline, float(record.get("deadline", math.inf)))

    async def answer(self, client: int, index: int, parent: dict[str, Any], deadline: float) -> int:
        """Call ``index`` of ``client`` at this tier, made for the request ``parent`` above and
        cut at ``deadline``: the code that request is answered with."""
        runner = self.runner
        try:
            async with asyncio.timeout_at(None if math.isinf(deadline) else deadline):
                record = await runner.call(client, index, parent, deadline)
        except TimeoutError:
            return TIMEOUT  # the caller's deadline cut it (the call recorded how)
        if record["outcome"] != rec.SUCCEEDED:
            return int(record["error"])
        last = record["last"]  # the send whose answer the call took
        return int(last["error"]) if last["outcome"] == rec.OK else 0  # an answer it took

    async def let_servers_finish(self, max_time: float) -> None:
        """Wait, up to ``max_time``, for the work callers gave up on (calls below included)."""
        loop = asyncio.get_running_loop()
        while self.servers and loop.time() < max_time:
            await asyncio.wait(set(self.servers), timeout=max_time - loop.time())


def tier_runs(top: Runner, attempts: np.ndarray, calls: np.ndarray) -> list[TierRun]:
    """Each tier's records in the engine's form, top first (``attempts`` and ``calls``: the
    top's own); none without tiers."""
    names = top.tiers.names
    if not names:
        return []
    runs: list[TierRun] = []
    rows_above: dict[int, int] = {}  # an attempt of the tier above (its dict's id) -> its row
    for runner, name in zip(top.chain(), names, strict=True):
        parents = np.full(len(calls), -1, dtype=np.int64)
        if runner is not top:
            attempts, calls, order = runner.record_arrays()
            parents = np.array(
                [rows_above[id(runner.calls[i]["parent"])] for i in order], dtype=np.int64
            )
        rows_above = {id(attempt): row for row, attempt in enumerate(runner.attempts)}
        runs.append(
            TierRun(
                name=name,
                attempts=attempts,
                calls=calls,
                parents=parents,
                capacity=None,  # the ideal server's: unbounded
                replicas=runner.scenario.service.replicas,
                timeout=runner.timeout,
                policy=runner.policy.describe(),
                engine="decorators",
                propagates_deadline=runner.tiers.propagates,
                retry_other_host=runner.scenario.policy.retry_other_host,
            )
        )
    return runs
