"""Per-tier figures of a call graph (the document's ``tiers`` section): how retries multiply.

A scenario with ``[tiers.NAME]`` tables runs one engine per tier (``RunResult.tiers``, top
first). Each tier's attempt rows are the requests it received; each of its calls serves one
request of the tier above (``TierRun.parents``). From those links alone this module works out
what post-mortems of retry storms ask: how many requests one user call became at each tier
(against the most it could have become, the product of every layer's ``max_attempts`` above
it, and of its hedge's ``max_attempts`` where a layer hedges), the load against the tier's
capacity, and the wasted work: requests a tier received after everyone above had stopped
waiting for them.

"Stopped waiting" is carried down the graph: a request is given up at its own end (its caller
heard an answer, or timed out), or sooner when the request it serves was given up. So a
database request started after the user's call to the gateway timed out is wasted even while
the service in between still waits on it: that is the work deadline propagation
(``tiers.NAME.propagate_deadline``) saves. At the top nothing is wasted in this sense (the
clients' own abandoned work is the run's ``wasted_work``).

Every figure is computed on whole columns with numpy: a run's rows are never looped over.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from retrysim.results.guard_metrics import refused_mask
from retrysim.results.rates import load, timeline
from retrysim.results.sections import TierSection
from retrysim.retry.per_error import most_attempts
from retrysim.sim import records as rec

if TYPE_CHECKING:
    from retrysim.sim.result import RunResult, TierRun

#: The scenario key of the clients' retry policy; a tier's own is ``tiers.NAME.policy``.
TOP_POLICY = "policy"


def policy_key(tiers: list[TierRun], level: int) -> str:
    """The scenario key of the policy tier ``level``'s callers retry under (what a ``--set``
    changes): the clients' ``policy`` at the top, the tier above's ``tiers.NAME.policy`` below."""
    return TOP_POLICY if level == 0 else f"tiers.{tiers[level - 1].name}.{TOP_POLICY}"


def attempt_limit(described: dict[str, Any]) -> int | None:
    """The most attempts a call can make under a described policy; None when its stop is not a
    fixed attempt count (the user's own tenacity policy without one)."""
    custom = described.get("custom")
    if isinstance(custom, dict) and not custom.get("attempts_limited", True):
        return None
    return most_attempts(described)


def sends_per_attempt(described: dict[str, Any]) -> int:
    """The requests one attempt under a described policy can send: its hedged group's
    ``max_attempts`` when hedging is on, else one."""
    hedge = described.get("hedge")
    if isinstance(hedge, dict) and hedge.get("enabled"):
        return int(hedge["max_attempts"])
    return 1


def success_rate(calls: np.ndarray) -> float | None:
    """Share of ``calls`` that succeeded (None without calls), as the run's own is counted."""
    return float(np.mean(calls["outcome"] == rec.SUCCEEDED)) if len(calls) else None


def given_up_times(tiers: list[TierRun]) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each tier, when each request it received was given up, as two times: ``ended``, its
    own end or the earliest end above it (a request that starts later has no one waiting), and
    ``timed_out``, the same over the ends that were timeouts (a request starting at that very
    instant was already given up: a propagated deadline refuses it). Infinity: never."""
    out: list[tuple[np.ndarray, np.ndarray]] = []
    for level, tier in enumerate(tiers):
        ends = np.asarray(tier.attempts["end"], dtype=np.float64)
        ended = np.where(np.isnan(ends), np.inf, ends)
        timed_out = np.where(tier.attempts["outcome"] == rec.TIMED_OUT, ended, np.inf)
        if level > 0 and len(ends):
            above = tier.parents[tier.attempts["call"]]
            ended = np.minimum(ended, out[-1][0][above])
            timed_out = np.minimum(timed_out, out[-1][1][above])
        out.append((ended, timed_out))
    return out


def wasted_masks(tiers: list[TierRun], names: tuple[str, ...]) -> list[np.ndarray]:
    """For each tier, which requests it received started once the request they serve had been
    given up (:func:`given_up_times`; never at the top). A refused attempt reached no tier."""
    gone = given_up_times(tiers)
    out = [np.zeros(len(tiers[0].attempts), dtype=bool)] if tiers else []
    for level in range(1, len(tiers)):
        attempts = tiers[level].attempts
        above = tiers[level].parents[attempts["call"]]
        ended, timed_out = gone[level - 1]
        start = attempts["start"]
        late = (start > ended[above]) | (start >= timed_out[above])
        out.append(late & ~refused_mask(attempts, names))
    return out


def user_calls_of(tiers: list[TierRun]) -> list[np.ndarray]:
    """For each tier, the top-level (user) call each request it received was made for."""
    out: list[np.ndarray] = []
    for level, tier in enumerate(tiers):
        calls = tier.attempts["call"].astype(np.int64)
        out.append(calls if level == 0 else out[-1][tier.parents[calls]])
    return out


def tiers_section(result: RunResult, width: float, bins: int) -> list[TierSection]:
    """The document's ``tiers``, top first (empty without tiers); timelines in the run's bins
    (``width`` seconds each, ``bins`` of them: a request started later counts in the last)."""
    tiers, names = result.tiers, result.error_names
    if not tiers:
        return []
    user_calls = len(tiers[0].calls)
    wasted = wasted_masks(tiers, names)
    made_for = user_calls_of(tiers)
    most: int | None = 1
    out: list[TierSection] = []
    for level, tier in enumerate(tiers):
        sent = ~refused_mask(tier.attempts, names)
        received = int(sent.sum())
        limit = attempt_limit(tier.policy)
        sends = sends_per_attempt(tier.policy)  # a hedged attempt is several requests
        most = None if most is None or limit is None else most * limit * sends
        seen = load(tier.attempts[sent], tier.calls, tier.capacity)
        lost = int(wasted[level].sum())
        per_user_call = np.bincount(made_for[level][sent], minlength=user_calls)
        budget = tier.policy.get("budget")
        out.append(
            {
                "name": tier.name,
                "calls": len(tier.calls),
                "attempts": received,
                "attempts_per_call": received / user_calls if user_calls else None,
                "max_attempts_per_call": most,
                "peak_per_call": int(per_user_call.max()) if user_calls else 0,
                "success_rate": success_rate(tier.calls),
                "capacity": tier.capacity,
                "peak_attempts_per_s": seen["peak_attempts_per_s"],
                "peak_over_capacity": seen["peak_over_capacity"],
                "wasted_attempts": lost,
                "wasted_share": lost / received if received else None,
                "replicas": tier.replicas,
                "timeout": tier.timeout,
                "propagates_deadline": tier.propagates_deadline,
                "policy_key": policy_key(tiers, level),
                "caller_max_attempts": limit,
                "caller_budget": bool(isinstance(budget, dict) and budget.get("enabled")),
                "timeline": timeline(tier.attempts, tier.calls, width, sent=sent, bins=bins),
            }
        )
    return out
