"""When calls start: burst, uniform, Poisson (with a rate schedule) or closed loop.

``first_calls`` gives the time of each client's first call (or, for open-loop Poisson, of every
call). Draws are counter-based per client, so they do not depend on anything else in the run.
"""

from __future__ import annotations

import bisect
import math

import numpy as np

from retrysim.model.scenario import Burst, Closed, Poisson, Scenario, UniformArrival
from retrysim.sim.streams import ARRIVAL, Stream, stream_key, unit


def first_calls(scenario: Scenario, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Start times of the calls arrivals create, sorted, and whose call each one is.

    For burst, uniform and closed arrivals the second array holds the client of each first
    call: client c's start is its own draw, so adding clients never renumbers existing ones.
    For Poisson it is the arrival's index (the engine spreads those over the clients).
    """
    arrival = scenario.clients.arrival
    count = scenario.clients.count
    key = stream_key(scenario.seed if seed is None else seed, ARRIVAL)
    match arrival:
        case Burst(at=at):
            return np.full(count, at, dtype=np.float64), np.arange(count)
        case UniformArrival(start=start, end=end):
            draws = [start + (end - start) * unit(key, client) for client in range(count)]
            return _sorted(np.asarray(draws, dtype=np.float64))
        case Closed(ramp=ramp):
            draws = [ramp * unit(key, client) for client in range(count)]
            return _sorted(np.asarray(draws, dtype=np.float64))
        case Poisson():
            times = poisson_times(arrival, scenario.duration, key)
            return times, np.arange(len(times))
    raise TypeError(f"unknown arrival {arrival!r}")


def _sorted(times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(times, kind="stable")
    return times[order], order


def rate_segments(arrival: Poisson, duration: float) -> list[tuple[float, float, float]]:
    """(start, end, rate) pieces of the piecewise-constant rate; later steps win overlaps.

    Steps are painted from the last to the first onto the pieces between their edges, each
    piece painted once (a "next unpainted piece" pointer skips painted runs), so a schedule of
    n steps costs O(n log n), not O(n^2).
    """
    end = duration if arrival.end is None else min(arrival.end, duration)
    if end <= arrival.start:
        return []
    cuts = {arrival.start, end}
    for step in arrival.schedule:
        cuts.update(t for t in (step.start, step.end) if arrival.start < t < end)
    edges = sorted(cuts)
    rates: list[float | None] = [None] * (len(edges) - 1)
    next_unpainted = list(range(len(edges)))  # pointer jumping over painted pieces

    def find(i: int) -> int:
        root = i
        while next_unpainted[root] != root:
            root = next_unpainted[root]
        while next_unpainted[i] != root:  # compress the path walked
            next_unpainted[i], i = root, next_unpainted[i]
        return root

    for step in reversed(arrival.schedule):
        first = bisect.bisect_left(edges, max(step.start, arrival.start))
        last = bisect.bisect_left(edges, min(step.end, end))  # pieces first .. last-1
        if first >= last:
            continue  # the step lies outside the arrival window
        i = find(first)
        while i < last:
            rates[i] = step.rate
            next_unpainted[i] = i + 1
            i = find(i + 1)
    return [
        (lo, hi, arrival.rate if rate is None else rate)
        for lo, hi, rate in zip(edges, edges[1:], rates, strict=False)
    ]


def poisson_times(arrival: Poisson, duration: float, key: int) -> np.ndarray:
    """Arrival times of a non-homogeneous Poisson process, segment by segment."""
    stream = Stream(key, 0)
    times: list[float] = []
    for lo, hi, rate in rate_segments(arrival, duration):
        if rate <= 0:
            continue
        t = lo
        while True:
            t += -math.log1p(-stream.random()) / rate
            if t >= hi:
                break
            times.append(t)
    return np.asarray(times, dtype=np.float64)


def expected_calls(scenario: Scenario) -> float:
    """Roughly how many calls the scenario makes (for the memory estimate and progress)."""
    clients = scenario.clients
    arrival = clients.arrival
    if isinstance(arrival, Poisson):
        total = sum((hi - lo) * rate for lo, hi, rate in rate_segments(arrival, scenario.duration))
        return total + 5 * math.sqrt(total) + 1
    if isinstance(arrival, Closed) and clients.calls_per_client is None:
        # Each client calls again think_time after its call ends; a call takes at least its
        # service time (on average). With both tiny, a handful of clients make billions of calls.
        from retrysim.sim.latency import mean_of
        from retrysim.sim.service import service_latency

        per_call = clients.think_time + mean_of(service_latency(scenario.service))
        if per_call <= 0:
            return math.inf
        return clients.count * (scenario.duration / per_call + 1)
    return float(clients.count * (clients.calls_per_client or 1))


def time_limit(scenario: Scenario) -> float:
    """Virtual time a run may reach: ``limits.max_time``, by default duration * 10 + 1 hour."""
    limit = scenario.limits.max_time
    return limit if limit is not None else scenario.duration * 10 + 3600


def follow_up_calls(scenario: Scenario) -> float:
    """How many calls each client makes in all, as the engine counts them.

    0 means none after the first (open loop: every Poisson arrival is its own call); infinity
    means a closed loop that calls again until the duration ends; otherwise
    ``calls_per_client`` (default 1). A follow-up starts ``think_time`` after the previous call
    ends, and only before the duration ends.
    """
    clients = scenario.clients
    if isinstance(clients.arrival, Poisson):
        return 0
    if clients.calls_per_client is not None:
        return clients.calls_per_client
    return math.inf if isinstance(clients.arrival, Closed) else 1
