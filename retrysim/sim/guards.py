"""Refusing, up front, a scenario this machine cannot hold in memory."""

from __future__ import annotations

import os

from retrysim.errors import BadInputError
from retrysim.scenario import Poisson, Scenario
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
        arrival = scenario.clients.arrival
        field = "clients.arrival.rate" if isinstance(arrival, Poisson) else "clients.count"
        raise ScenarioTooLargeError(
            f"{field}: this scenario needs at least {_gib(need)} of memory "
            f"(~{calls:,.0f} calls); this machine has {_gib(available)} available. "
            "Use fewer clients or calls."
        )


def available_memory() -> float:
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
