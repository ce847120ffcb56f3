"""What happens to one attempt, phase by phase: the one description the engine and fidelity use.

An attempt goes through these phases, in this order:

1. **guards** (client side: breakers, budgets...) may refuse it; the caller sees the refusal at
   once and nothing is sent (the decorators and the engine both ask ``GuardChain``);
2. **gate faults** (outage, flaky, recovery ramp) may fail it at once with an error, or swallow
   it (a black hole: no answer; only the client's timeout ends it);
3. the **service time** is drawn from the service's latency, plus any latency spike;
4. a **reset** fault may cut the connection after a share of that service time (the server
   still does the work);
5. the **server** does the work (the engine's server models; fidelity mode's ideal server);
6. the client's **timeout** ends the wait if the answer is later.

With connections modelled (``retrysim.sim.connections``), the engine puts the client
process's CPU, a wait for a pooled connection, a connect and the network's trips around
phases 2 to 5: gate faults judge the attempt when it leaves the pool, spikes and resets when
it reaches the server.

Every draw is a counter-based draw keyed by (call, attempt), so both paths see the same
numbers. When a reset, the answer and the timeout fall due at the same instant, the reset wins,
then the answer, then the timeout.
"""

from __future__ import annotations

from typing import Any

from retrysim.sim.faults import BLACKHOLE, PASS, FaultPlan
from retrysim.sim.latency import sampler
from retrysim.sim.streams import LATENCY, stream_key, unit

__all__ = ["BLACKHOLE", "PASS", "AttemptPhases"]


class AttemptPhases:
    """Phases 2 to 4 of an attempt for one run: faults at the door, service time, reset."""

    __slots__ = ("_latency", "_latency_key", "plan")

    def __init__(self, plan: FaultPlan, latency: Any, seed: int) -> None:
        self.plan = plan
        self._latency = sampler(latency)
        self._latency_key = stream_key(seed, LATENCY)

    def door(self, t: float, call_key: int, attempt: int) -> int:
        """Phase 2: ``PASS``, ``BLACKHOLE``, or the error code the attempt fails with at once."""
        plan = self.plan
        return plan.gate(t, call_key, attempt) if plan.gates else PASS

    def hint(self, t: float, call_key: int, attempt: int) -> float | None:
        """Phase 2's Retry-After hint: what the gate that failed the attempt says, if anything."""
        return self.plan.hint(t, call_key, attempt) if self.plan.hinted else None

    def service_time(self, t: float, call_key: int, attempt: int) -> float:
        """Phase 3: seconds of work the request needs (latency draw plus spikes)."""
        seconds = self._latency(unit(self._latency_key, call_key, attempt))
        if self.plan.spikes:
            seconds += self.plan.extra_latency(t, call_key, attempt)
        return seconds

    def reset(self, t: float, call_key: int, attempt: int) -> tuple[float, int] | None:
        """Phase 4: (share of the service time after which it hits, error code), or None."""
        return self.plan.reset_share(t, call_key, attempt) if self.plan.resets else None
