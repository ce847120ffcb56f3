"""Refusing, up front, a scenario this machine cannot hold in memory."""

from __future__ import annotations

import math
import os
import resource

from retrysim.errors import BadInputError
from retrysim.model.scenario import Closed, Poisson, Scenario
from retrysim.sim.arrivals import expected_calls

BYTES_PER_CALL = 1200  # live call state: tenacity's RetryCallState, its Future, our bookkeeping
BYTES_PER_ATTEMPT = 320  # record columns while running, then the numpy rows


class ScenarioTooLargeError(BadInputError):
    """The run would need more memory than this machine has; refused before it starts."""


def check_memory(scenario: Scenario, max_attempts: int) -> None:
    """Raise ScenarioTooLargeError if the calls alone would not fit in 80% of free memory.

    A lower bound: every call's state plus records for up to three attempts. Runs that retry
    far more than that are stopped by ``limits.max_events`` instead.
    """
    calls = expected_calls(scenario)
    need = calls * (BYTES_PER_CALL + min(max_attempts, 3) * BYTES_PER_ATTEMPT)
    available = available_memory()
    if need > 0.8 * available:
        clients = scenario.clients
        arrival = clients.arrival
        if isinstance(arrival, Poisson):
            field, advice = "clients.arrival.rate", "Use a lower rate or a shorter duration."
        elif isinstance(arrival, Closed) and clients.calls_per_client is None:
            field = "clients.think_time"
            advice = (
                "Each client calls again as soon as its call ends: give a think_time, "
                "calls_per_client, or fewer clients."
            )
        else:
            field, advice = "clients.count", "Use fewer clients or calls."
        amount = "unboundedly many" if math.isinf(calls) else f"~{calls:,.0f}"
        raise ScenarioTooLargeError(
            f"{field}: this scenario needs at least {_gib(need)} of memory "
            f"({amount} calls); this machine has {_gib(available)} available. {advice}"
        )


#: Memory one event of a run holds on to, at most: an attempt's record row (~320 B) spread over
#: the two or three events each attempt takes, plus the heap entry and tenacity's state.
BYTES_PER_EVENT = 250


def event_limit(scenario: Scenario) -> tuple[int, str]:
    """How many events the run may take, and what sets that limit.

    The up-front estimate counts calls, not what they do: a closed loop against a
    zero-latency service, or 10,000 attempts per call with no wait, can make far more events
    than any estimate of calls foresees. A run stops (with a valid partial result) after as many
    events as 60% of the available memory can record, or ``limits.max_events``, whichever is
    lower.
    """
    budget = int(0.6 * available_memory() / BYTES_PER_EVENT)
    if budget < scenario.limits.max_events:
        return budget, (
            f"the memory limit: {budget:,} events fit in 60% of the "
            f"{_gib(available_memory())} available"
        )
    return scenario.limits.max_events, "limits.max_events"


#: The attempts budget: a run stops after ``max(ATTEMPTS_FLOOR, ATTEMPTS_PER_CALL x expected
#: calls)`` attempts. A retry storm (zero waits, thousands of attempts a call, against an outage
#: that refuses at once) makes attempts without moving virtual time, so neither
#: ``limits.max_time`` nor any estimate of calls stops it, and ``limits.max_events`` (200
#: million) only after minutes of wall time. Fifty attempts per call on average is far past
#: any policy that waits (every bundled scenario makes under ten), and a million attempts take
#: a few seconds.
ATTEMPTS_PER_CALL = 50
ATTEMPTS_FLOOR = 1_000_000


def attempt_limit(scenario: Scenario) -> int:
    """How many attempts the run may make (the attempts budget above)."""
    calls = expected_calls(scenario)
    if not math.isfinite(calls):  # a closed loop without calls_per_client: no estimate
        return ATTEMPTS_FLOOR
    return max(ATTEMPTS_FLOOR, math.ceil(ATTEMPTS_PER_CALL * calls))


def attempts_stopped(limit: int) -> str:
    """The run's one line when the attempts budget stopped it (as the kernel's for events and
    virtual time)."""
    return (
        f"stopped after {limit:,} attempts (the attempts budget: {ATTEMPTS_PER_CALL} per "
        f"expected call, at least {ATTEMPTS_FLOOR:,}; a retry storm with no wait?); calls "
        "still running are reported unfinished"
    )


def available_memory() -> float:
    """Bytes of memory available now: Linux MemAvailable (a sysconf estimate elsewhere), or
    less if the process's address-space limit (``ulimit -v``) leaves less room."""
    return min(_free_memory(), _address_space_left())


def _address_space_left() -> float:
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (ValueError, OSError, AttributeError):
        return math.inf
    if soft == resource.RLIM_INFINITY:
        return math.inf
    try:
        with open("/proc/self/statm") as statm:
            used = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        used = 0
    return float(max(soft - used, 0))


def _free_memory() -> float:
    """Bytes of memory available now (Linux MemAvailable; a sysconf estimate elsewhere)."""
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return float(8 << 30)


def _gib(n: float) -> str:
    return f"{n / (1 << 30):,.1f} GiB"
