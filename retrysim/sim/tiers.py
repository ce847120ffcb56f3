"""What each tier of a call graph is to the engine: a one-tier scenario of its own.

A scenario with ``[tiers.NAME]`` tables runs as one engine per tier on one kernel
(:class:`~retrysim.sim.engine.Engine`, linked above and below). Engine ``k`` is the callers of
tier ``k`` and their retries: the scenario's clients and policy for the top tier, tier
``k - 1``'s callers and policy below it, against tier ``k``'s service and faults. Each engine
gets that view as a plain scenario, so every server kind, fault, guard and both deciders work
at every tier unchanged; each draws from streams of its own, so adding a tier below leaves the
draws above it as they were.
"""

from __future__ import annotations

from retrysim.model.scenario import Clients, Scenario
from retrysim.sim.streams import M64, stream_key

#: The purpose under which a tier's seed is drawn from the run's (far from every stream's).
TIER_SEED = 0x7133


def tier_view(scenario: Scenario, level: int) -> Scenario:
    """The one-tier scenario engine ``level`` runs (the scenario itself without tiers)."""
    if not scenario.tiers:
        return scenario
    names = scenario.tier_names
    tier = scenario.tiers[names[level]]
    if level == 0:
        return scenario.model_copy(
            update={"service": tier.service, "faults": tier.faults, "tiers": {}}
        )
    upper = scenario.tiers[names[level - 1]]
    assert upper.policy is not None  # validation: every tier but the last has one
    return Scenario(
        name=f"{scenario.name}/{names[level]}",
        seed=scenario.seed,
        duration=scenario.duration,
        policy=upper.policy,
        clients=Clients(count=upper.callers, timeout=upper.timeout),
        service=tier.service,
        faults=tier.faults,
        limits=scenario.limits,
    )


def tier_seed(seed: int, level: int) -> int:
    """The seed of engine ``level``'s streams: the run's own at the top, a mix of it below."""
    if level == 0:
        return seed
    return stream_key(seed, TIER_SEED + level) & (M64 >> 1)  # a scenario seed is < 2**63
