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

from retrysim.model.scenario import Scenario
from retrysim.model.tier_keys import serving_view
from retrysim.sim.call import CALL_KEY_SHIFT
from retrysim.sim.streams import ATTEMPT_STEP, CALL_STEP, M64, mix, stream_key

#: The purpose under which a tier's seed is drawn from the run's (far from every stream's).
TIER_SEED = 0x7133


def tier_view(scenario: Scenario, level: int) -> Scenario:
    """The one-tier scenario engine ``level`` runs (the scenario itself without tiers): the
    model's own view of the tier it serves (:func:`retrysim.model.tier_keys.serving_view`)."""
    if not scenario.tiers:
        return scenario
    return serving_view(scenario, scenario.tier_names[level])


def caller_of(client: int, index: int, draw: int, callers: int) -> int:
    """Which of a tier's ``callers`` makes the call for a request it has served: the request
    of ``client``'s call ``index``, its send keyed ``draw`` (attempt, and hedge). Spread by a
    hash of the request, as a load balancer in front of the tier spreads requests over its
    instances; the same request always goes to the same caller, whatever else runs."""
    key = (client << CALL_KEY_SHIFT) | index
    return mix((key * CALL_STEP + draw * ATTEMPT_STEP) & M64) % callers


def tier_seed(seed: int, level: int) -> int:
    """The seed of engine ``level``'s streams: the run's own at the top, a mix of it below."""
    if level == 0:
        return seed
    return stream_key(seed, TIER_SEED + level) & (M64 >> 1)  # a scenario seed is < 2**63
