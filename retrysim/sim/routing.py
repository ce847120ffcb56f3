"""The engine's replicas: which replica each attempt goes to, and each replica's own parts.

A service with ``replicas = N`` is N copies of its server model behind a client-side
balancer (:class:`~retrysim.sim.balance.Balancer`), each copy with the faults aimed at it (a
fault's ``replicas``; none: every replica). The engine keeps one replica's fault plan, attempt
phases, gate and server as its current ones (the hot path reads them as attributes) and
switches them when an attempt is routed (:meth:`ReplicaRouting._route`), or when an event of
an attempt routed earlier comes due (:meth:`ReplicaRouting._use`). With one replica nothing
is ever switched: the single-service path is the engine's as it was.

A mixin of :class:`~retrysim.sim.engine.Engine`: the state it keeps is the engine's (in its
slots), declared below for type checkers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from retrysim.model.scenario import Scenario
from retrysim.sim import records as rec
from retrysim.sim.attempt import AttemptPhases
from retrysim.sim.balance import Balancer
from retrysim.sim.call import Call
from retrysim.sim.connections import Pool
from retrysim.sim.faults import compile_faults
from retrysim.sim.kernel import Kernel
from retrysim.sim.service import make_server, service_latency
from retrysim.sim.streams import BALANCE, stream_key

FAILED = rec.FAILED

if TYPE_CHECKING:
    from retrysim.sim.faults import FaultPlan
    from retrysim.sim.hedging import Hedges
    from retrysim.sim.service import Server


class ReplicaRouting:
    """Replicas of the engine's service (see the module docstring)."""

    if TYPE_CHECKING:
        attempts: rec.AttemptColumns
        kernel: Kernel
        seed: int
        plan: FaultPlan
        phases: AttemptPhases
        server: Server
        _gate: Any
        _plans: list[FaultPlan]
        _phases: list[AttemptPhases]
        _gates: list[Any]
        _servers: list[Server]
        _replicas: Balancer | None
        _tried: dict[int, int] | None
        _hedges: Hedges | None
        _holding: dict[int, Pool]
        at: Callable[..., Any]

        def _release(self, a: int, code: int) -> None: ...

    def _build_replicas(self, view: Scenario) -> None:
        """Each replica's fault plan, attempt phases and server (one, with one replica); the
        current ones (``plan``, ``phases``, ``_gate``, ``server``) are replica 0's until an
        attempt is routed."""
        service = view.service
        count = service.replicas
        latency = service_latency(service)
        self._plans = [
            compile_faults(
                [f for f in view.faults if f.replicas is None or r in f.replicas], self.seed
            )
            for r in range(count)
        ]
        self._phases = [AttemptPhases(plan, latency, self.seed) for plan in self._plans]
        # A lone gate (one outage, say) is asked directly; several, through the plan's loop.
        self._gates = [
            None if not plan.gates else plan.gates[0] if len(plan.gates) == 1 else plan.gate
            for plan in self._plans
        ]
        host: Any = self  # the Engine: the ServerHost each replica answers through
        self._servers = [make_server(host, service) for _ in range(count)]
        self._replicas = (
            None if count == 1 else Balancer(count, service.balance, stream_key(self.seed, BALANCE))
        )
        # replicas a call has tried, as a bit mask, when its retries avoid them
        self._tried: dict[int, int] | None = (
            {} if self._replicas is not None and view.policy.retry_other_host else None
        )
        self._use(0)

    def _use(self, replica: int) -> None:
        """Make ``replica``'s faults, phases and server the current ones."""
        self.plan = self._plans[replica]
        self.phases = self._phases[replica]
        self._gate = self._gates[replica]
        self.server = self._servers[replica]

    def _route(self, call: Call, a: int) -> None:
        """Attempt ``a`` goes to the replica the balancer picks (one its call has not tried,
        with ``retry_other_host``, while there is one; a hedge, one its siblings did not go
        to)."""
        balancer = self._replicas
        assert balancer is not None
        tried = self._tried
        avoid = 0 if tried is None else tried.get(call.id, 0)
        draw = self.attempts.attempt[a]
        if self._hedges is not None:
            avoid |= self._hedges.replicas_of(call)
            draw = self._hedges.draw_index(a)
        replica = balancer.pick(call.key, draw, avoid)
        self.attempts.replica[a] = replica
        balancer.sent(replica)
        if tried is not None:
            tried[call.id] = avoid | 1 << replica
        self._use(replica)

    def _schedule_capacity(self) -> None:
        """Each replica's capacity windows, as events."""
        for plan, server in zip(self._plans, self._servers, strict=True):
            for start, end, slots in plan.capacity_windows:
                self.at(start, server.capacity_change, slots)
                if math.isfinite(end):
                    self.at(end, server.capacity_change, None)

    @property
    def capacity(self) -> float | None:
        """Completions per second the service can sustain, all replicas together (None:
        unbounded)."""
        each = [server.capacity for server in self._servers]
        return None if any(c is None for c in each) else sum(c for c in each if c is not None)

    def _draw_index(self, a: int) -> int:
        """The attempt number row ``a``'s draws are keyed by (a hedge's is its own)."""
        hedges = self._hedges
        return self.attempts.attempt[a] if hedges is None else hedges.draw_index(a)

    def _close_send(self, call: Call, a: int, code: int, outcome: int | None) -> None:
        """Record a hedged attempt's send as answered (``code``) or cancelled, without a
        decision: its connection goes back, its replica has one request fewer outstanding,
        and a cancelled one's server may drop the work."""
        if self._holding:
            self._release(a, code)
        replicas = self._replicas
        if replicas is not None:
            replicas.answered(self.attempts.replica[a])
        attempts = self.attempts
        attempts.end[a] = self.kernel.now
        attempts.error[a] = code
        attempts.outcome[a] = outcome if outcome is not None else FAILED
        if outcome == rec.CANCELLED:
            self._servers[attempts.replica[a] if replicas else 0].abandon(call, a)
