"""When calls start: burst, uniform, Poisson (with a rate schedule) or closed loop.

``first_calls`` gives the time of each client's first call (or, for open-loop Poisson, of every
call). Draws are counter-based per client, so they do not depend on anything else in the run.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from retrysim.scenario import Burst, Closed, Poisson, Scenario, UniformArrival
from retrysim.sim.streams import ARRIVAL, Stream, stream_key, unit


def first_calls(scenario: Scenario) -> np.ndarray:
    """Start times of the calls that arrivals create (sorted, float64)."""
    arrival = scenario.clients.arrival
    count = scenario.clients.count
    key = stream_key(scenario.seed, ARRIVAL)
    match arrival:
        case Burst(at=at):
            return np.full(count, at, dtype=np.float64)
        case UniformArrival(start=start, end=end):
            times = [start + (end - start) * unit(key, client) for client in range(count)]
            return np.sort(np.asarray(times, dtype=np.float64))
        case Closed(ramp=ramp):
            times = [ramp * unit(key, client) for client in range(count)]
            return np.sort(np.asarray(times, dtype=np.float64))
        case Poisson():
            return poisson_times(arrival, scenario.duration, key)
    raise TypeError(f"unknown arrival {arrival!r}")


def rate_segments(arrival: Poisson, duration: float) -> list[tuple[float, float, float]]:
    """(start, end, rate) pieces of the piecewise-constant rate; later steps win overlaps."""
    end = duration if arrival.end is None else min(arrival.end, duration)
    cuts = {arrival.start, end}
    for step in arrival.schedule:
        cuts.update(t for t in (step.start, step.end) if arrival.start < t < end)
    edges = sorted(cuts)
    pieces = []
    for lo, hi in itertools.pairwise(edges):
        rate = arrival.rate
        for step in arrival.schedule:
            if step.start <= lo and hi <= step.end:
                rate = step.rate
        pieces.append((lo, hi, rate))
    return pieces


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
    """Roughly how many calls the scenario makes (for the memory estimate)."""
    clients = scenario.clients
    arrival = clients.arrival
    if isinstance(arrival, Poisson):
        total = sum((hi - lo) * rate for lo, hi, rate in rate_segments(arrival, scenario.duration))
        return total + 5 * math.sqrt(total) + 1
    if isinstance(arrival, Closed) and clients.calls_per_client is None:
        per_call = max(clients.think_time, 1e-3)
        return clients.count * min(scenario.duration / per_call + 1, 1e6)
    return float(clients.count * (clients.calls_per_client or 1))
