"""Tier names in dotted keys (``tiers.gateway.policy.max_attempts``), and each tier's view.

A scenario's ``tiers`` is a table keyed by the user's own names, so a dotted key can name a
tier the scenario does not have. ``Scenario.with_overrides`` would then quietly add a tier (a
dotted edit makes the tables it walks through), and the error that follows speaks of a policy
the new tier lacks rather than of the typo: :func:`check_tier_keys` says it in one line, with
the closest name, before anything is applied (``--set``, ``--grid``, the shell's ``set``,
``--policy NAME=MODULE:ATTR``).

:func:`serving_view` is the one-tier scenario that serves a tier's requests: the callers above
it (the clients, or the tier above with its policy and timeout) against its service and
faults. The marks on the service's and faults' fields (:mod:`retrysim.model.marks`) judge a
tier's keys against it, as they judge a one-tier scenario's against the scenario itself, so
``retrysim validate``'s defaults and the lint say of a tier what the engine does there. It is
the engine's own view (``retrysim.sim.tiers.tier_view``), defined here, a layer below it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from retrysim.errors import BadInputError
from retrysim.suggest import closest

if TYPE_CHECKING:
    from retrysim.model.scenario import Scenario

#: The key of the scenario's table of tiers.
TIERS = "tiers"
#: A tier's keys about the calls it makes to the next tier, which the last tier, calling no
#: one, has no use for (completion does not offer them there; the lint warns of ``callers``).
CALLER_KEYS = frozenset({"policy", "timeout", "propagate_deadline", "callers"})


class UnknownTierError(BadInputError):
    """A dotted key or a ``--policy NAME=...`` names a tier the scenario does not have."""


def tier_of(key: str) -> str | None:
    """The tier a dotted key is inside (``tiers.gateway.policy`` -> ``gateway``), else None."""
    head, _, rest = key.partition(".")
    if head != TIERS or not rest:
        return None
    return rest.partition(".")[0]


def within_tier(key: str) -> str:
    """A tier's key as the same key of a one-tier scenario (``tiers.db.service.kind`` ->
    ``service.kind``): what values it takes is the same; other keys as they are."""
    if tier_of(key) is None:
        return key
    return key.split(".", 2)[2] if key.count(".") >= 2 else key


def unknown_tier(scenario: Scenario, name: str, where: str) -> str:
    """The one line for tier ``name`` that ``scenario`` lacks (``where``: what named it)."""
    names = scenario.tier_names
    if not names:
        return (
            f"{where}: no tier {name!r}: scenario {scenario.name!r} has no tiers "
            f"(add a [tiers.{name}] table to its file)"
        )
    near = closest(name, names)
    suggestion = f"; did you mean {near!r}?" if near else ""
    return f"{where}: no tier {name!r}{suggestion} (its tiers: {', '.join(names)})"


def check_tier_keys(scenario: Scenario, keys: Iterable[str], option: str = "--set") -> None:
    """Raise :class:`UnknownTierError` for the first key inside a tier ``scenario`` lacks.

    A whole ``tiers`` table replaced (``--set tiers={...}``) names no tier and passes: it is
    a new graph, validated as one."""
    for key in keys:
        name = tier_of(key)
        if name is not None and name not in scenario.tiers:
            raise UnknownTierError(unknown_tier(scenario, name, f"{option} {key}"))


def check_caller(scenario: Scenario, name: str, where: str) -> None:
    """Tier ``name`` exists in ``scenario`` and calls a tier below (the last calls no one, so a
    retry policy for its calls would do nothing); else one line naming the tiers that do."""
    if name not in scenario.tiers:
        raise UnknownTierError(unknown_tier(scenario, name, where))
    callers = scenario.tier_names[:-1]
    if name not in callers:
        allowed = ", ".join(callers) if callers else "none"
        raise UnknownTierError(
            f"{where}: tier {name!r} is the last and calls no one, so no policy of its retries "
            f"anything; the tiers that call another: {allowed}"
        )


def check_callers(scenario: Scenario, names: Iterable[str], where: str) -> None:
    """:func:`check_caller` for each of ``names`` (``retryings`` given to the engine)."""
    for name in names:
        check_caller(scenario, name, f"{where} {name!r}")


def serving_view(scenario: Scenario, name: str) -> Scenario:
    """The one-tier scenario whose service is tier ``name``'s: its callers are the clients
    (the first tier) or the tier above (its ``callers``, ``policy`` and ``timeout``)."""
    from retrysim.model.scenario import Clients, Scenario

    names = scenario.tier_names
    level = names.index(name)
    tier = scenario.tiers[name]
    if level == 0:
        return scenario.model_copy(
            update={"service": tier.service, "faults": tier.faults, "tiers": {}}
        )
    upper = scenario.tiers[names[level - 1]]
    assert upper.policy is not None  # validation: every tier but the last has one
    return Scenario(
        name=f"{scenario.name}/{name}",
        seed=scenario.seed,
        duration=scenario.duration,
        policy=upper.policy,
        clients=Clients(count=upper.callers, timeout=upper.timeout),
        service=tier.service,
        faults=tier.faults,
        limits=scenario.limits,
    )


def deadline_from(scenario: Scenario, name: str) -> float | None:
    """The timeout that bounds the requests tier ``name`` serves (None: nothing does): that of
    the layer calling it (the clients' for the first tier) or, when that layer is a tier with
    no timeout of its own that passes its caller's deadline down (``propagate_deadline``), the
    one bounding that tier's own requests, all the way up."""
    names = scenario.tier_names
    level = names.index(name)
    if level == 0:
        return scenario.client_timeout
    upper = scenario.tiers[names[level - 1]]
    if upper.attempt_timeout is not None:
        return upper.attempt_timeout
    return deadline_from(scenario, names[level - 1]) if upper.propagate_deadline else None


def has_deadline(scenario: Scenario, name: str) -> bool:
    """Whether the requests tier ``name`` serves come with a deadline (:func:`deadline_from`):
    its callers can give up on them, and it has something to pass down."""
    return deadline_from(scenario, name) is not None


def judged_view(scenario: Scenario, name: str) -> Scenario:
    """:func:`serving_view`, its callers given the timeout that bounds their requests when it
    is a deadline passed down rather than their own: what the marks on a tier's fields ask
    (whether its requests can be abandoned) is then answered as the engine behaves."""
    view = serving_view(scenario, name)
    bound = deadline_from(scenario, name)
    if view.client_timeout is not None or bound is None:
        return view
    clients = view.clients.model_copy(update={"timeout": bound})
    return view.model_copy(update={"clients": clients})
