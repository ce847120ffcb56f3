"""Hedging's figures: what hedged requests did in a run, or what one hedge would do.

A hedge pays when a slow send is slow by chance (a busy replica, a GC pause, a lost packet)
and a second send is likely fast. This run's successful sends are a sample of that chance:
with one hedge sent ``d`` seconds after the first, an attempt takes ``min(L1, d + L2)``, so
``P(T > x) = P(L > x) P(L > x - d)`` for two independent draws ``L1, L2`` of the send latency
``L``. The estimate evaluates that on the sample, with ``d`` the sends' p90: about 10% more
load, the price of cutting a tail that starts there. Independence is the assumption to state:
a request that is slow everywhere (a big query) is not helped by a hedge, and the estimate
would flatter it.
"""

from __future__ import annotations

import numpy as np

from retrysim.results.sections import HedgeSection
from retrysim.sim import records as rec
from retrysim.sim.result import RunResult

#: The quantile of the sends' latency a hedge is suggested after.
HEDGE_AT = 0.9
#: A tail worth a hedge: the estimated p99 at most this share of the sends' p99 ...
WORTH_IT = 0.5
#: ... over at least this many successful sends (fewer say nothing of a p99).
MIN_SENDS = 200


def hedging_section(result: RunResult) -> HedgeSection | None:
    """The ``hedging`` section of ``result``'s document, or None (hedging off and no tail a
    hedge would cut by half)."""
    attempts = result.attempts
    hedge = attempts["hedge"]
    enabled = bool(result.policy.get("hedge", {}).get("enabled")) or bool(np.any(hedge > 0))
    ok = attempts["outcome"] == rec.OK
    latency = np.sort(attempts["end"][ok] - attempts["start"][ok])
    p50 = p99 = delay = estimated = extra = None
    if len(latency) >= MIN_SENDS:
        p50, p99 = (float(q) for q in np.quantile(latency, (0.5, 0.99)))
        if not enabled:
            delay = float(np.quantile(latency, HEDGE_AT))
            estimated = hedged_quantile(latency, delay, 0.99)
            extra = float(np.mean(latency > delay))
    if not enabled and (estimated is None or p99 is None or estimated > WORTH_IT * p99):
        return None
    firsts = int(np.sum(hedge == 0))
    hedges = len(hedge) - firsts
    return {
        "enabled": enabled,
        "hedges": hedges,
        "extra_load": hedges / firsts if firsts else None,
        "won": int(np.sum(ok & (hedge > 0))),
        "send_p50": p50,
        "send_p99": p99,
        "suggested_delay": delay,
        "estimated_p99": estimated,
        "estimated_extra_load": extra,
    }


def hedged_quantile(latency: np.ndarray, delay: float, q: float) -> float:
    """The ``q`` quantile of ``min(L1, delay + L2)`` for independent draws from the sorted
    sample ``latency``: the smallest sample point ``x`` with ``P(L > x) P(L > x - delay) <=
    1 - q`` (the survival functions read off the sample)."""
    n = len(latency)
    candidates = np.union1d(latency, latency + delay)

    def survival(x: np.ndarray) -> np.ndarray:
        return 1.0 - np.searchsorted(latency, x, side="right") / n

    tail = survival(candidates) * survival(candidates - delay)
    return float(candidates[np.argmax(tail <= 1.0 - q)])
