"""The diagnoses of a call graph and of replicated services (registered in
:mod:`retrysim.results.diagnose`, which gives each its id, title and section).

- :func:`amplification`: two or more layers retry, so one user call becomes the product of
  their attempts at the bottom. It prescribes what practitioners do, each as the ``--set``
  that simulates it: retry at one layer only (the topmost that retries; every other layer's
  ``max_attempts = 1``), a retry budget at the lower layers, and, when requests were sent
  after the user had given up on them, deadline propagation.
- :func:`sick_replica`: one replica fails far more than its siblings and retries go back to
  it; it prescribes ``retry_other_host``.

A prescription that needs several settings at once (every lower tier's ``max_attempts``) is
one group in the finding's ``together`` figure: :mod:`retrysim.render.verdict` prints one
command for the group. Each reads only the document's ``tiers`` and ``replicas`` sections.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from retrysim.results.findings import Finding, Suggestion
from retrysim.results.sections import ReplicaSection, TierSection

if TYPE_CHECKING:
    from retrysim.results.document import ResultDocument

#: Attempts per user call at the bottom tier at or above which amplification is high severity:
#: every user call costs the bottom at least twice what it would without retries.
HIGH_AMPLIFICATION = 2.0
#: A replica fails "far more" than its siblings when its failure rate is at least this many
#: times theirs and this much higher in absolute terms (a 2% vs 1% gap is noise, not a sick host).
SICK_RATIO = 2.0
SICK_GAP = 0.25
#: Fewer attempts than this on a replica, or fewer retries back to it, say nothing.
MIN_REPLICA_ATTEMPTS = 20
MIN_SAME_REPLICA_RETRIES = 5
#: The scenario key of the clients' policy (a tier's is ``tiers.NAME.policy``).
TOP_POLICY = "policy"


def setting(policy_key: str, knob: str, value: Any) -> Suggestion:
    """``knob=value`` in the policy at ``policy_key`` (``policy``, ``tiers.NAME.policy``), as a
    ``--set``. No ``RETRY__*`` line: a tier's policy is that service's own configuration."""
    shown = ("true" if value else "false") if isinstance(value, bool) else str(value)
    option = knob if policy_key == TOP_POLICY else f"{policy_key}.{knob}"
    return Suggestion(option, value, None, f"{policy_key}.{knob}={shown}")


def tier_key(policy_key: str) -> str:
    """``tiers.NAME`` from ``tiers.NAME.policy`` (the tier whose callers' policy it is)."""
    return policy_key.removesuffix(f".{TOP_POLICY}")


def amplification(doc: ResultDocument) -> Finding | None:
    """Retries at two or more layers that multiplied in this run (see the module)."""
    tiers = doc.get("tiers")
    if not tiers:
        return None
    retrying = [t for t in tiers if t["caller_max_attempts"] != 1]
    limits = [t["caller_max_attempts"] for t in retrying]
    bottom = tiers[-1]
    single = max((n for n in limits if n is not None), default=1)
    if len(retrying) < 2 or bottom["peak_per_call"] <= single:
        return None  # no layer's retries multiplied another's in this run
    most, seen = bottom["max_attempts_per_call"], bottom["attempts_per_call"] or 0.0
    product = " x ".join("?" if n is None else str(n) for n in limits)
    bound = f"up to {most:,}" if most is not None else "no fixed bound on"
    evidence = (
        f"Retries at {len(retrying)} tiers multiply ({product}): {bound} {bottom['name']} "
        f"requests per user call; {seen:.1f} in this run, and one user call sent "
        f"{bottom['peak_per_call']:,}."
    )
    wasted = sum(t["wasted_attempts"] for t in tiers)
    if wasted:
        evidence += (
            f" {wasted:,} requests below the top started after the call they served had been "
            "given up: work nobody waited for."
        )
    keep, *lower = retrying
    one_tier = tuple(setting(t["policy_key"], "max_attempts", 1) for t in lower)
    budgets = tuple(
        setting(t["policy_key"], "budget.enabled", True) for t in lower if not t["caller_budget"]
    )
    deadlines = _deadline_settings(tiers) if wasted else ()
    advice = f"Retry at one tier only: keep {_layer(keep)} retries, the others try once"
    if budgets:
        advice += "; or cap the lower tiers' retries with a retry budget"
    if deadlines:
        advice += "; and pass the caller's deadline down, so no tier works for a caller gone"
    advice += "."
    groups = [list(group) for group in (one_tier, budgets, deadlines) if group]
    return Finding(
        "high" if seen >= HIGH_AMPLIFICATION else "warning",
        evidence,
        {
            "retrying_tiers": len(retrying),
            "max_attempts_per_call": most,
            "attempts_per_call": seen,
            "peak_per_call": bottom["peak_per_call"],
            "wasted_attempts": wasted,
            "together": [[s.set for s in group] for group in groups],
        },
        advice,
        (*one_tier, *budgets, *deadlines),
    )


def _layer(tier: TierSection) -> str:
    """Whose retries a tier's callers' are, possessive: the clients', or the tier above's."""
    key = tier["policy_key"]
    return "the clients'" if key == TOP_POLICY else f"{tier_key(key).removeprefix('tiers.')}'s"


def _deadline_settings(tiers: list[TierSection]) -> tuple[Suggestion, ...]:
    """``propagate_deadline = true`` on every tier from the top down to the lowest one that
    received wasted requests (a deadline reaches a tier only through every tier above it)."""
    lowest = max(i for i, t in enumerate(tiers) if t["wasted_attempts"])
    found = []
    for tier in tiers[1 : lowest + 1]:
        if not tier["propagates_deadline"]:
            key = f"{tier_key(tier['policy_key'])}.propagate_deadline"
            found.append(Suggestion(key, True, None, f"{key}=true"))
    return tuple(found)


def sick_replica(doc: ResultDocument) -> Finding | None:
    """One replica failing far more than its siblings, with retries going back to it."""
    groups: dict[str | None, list[ReplicaSection]] = {}
    for replica in doc.get("replicas") or []:
        groups.setdefault(replica["tier"], []).append(replica)
    for tier, replicas in groups.items():
        found = _sick(tier, replicas, doc)
        if found is not None:
            return found
    return None


def _sick(tier: str | None, replicas: list[ReplicaSection], doc: ResultDocument) -> Finding | None:
    worst = max(replicas, key=lambda r: r["failure_rate"] or 0.0)
    rate = worst["failure_rate"] or 0.0
    others = [r for r in replicas if r is not worst]
    sent = sum(r["attempts"] for r in others)
    usual = sum(r["failed"] for r in others) / sent if sent else 0.0
    back = worst["same_replica_retries"]
    if (
        worst["retry_other_host"]
        or worst["attempts"] < MIN_REPLICA_ATTEMPTS
        or back < MIN_SAME_REPLICA_RETRIES
        or rate < SICK_RATIO * usual
        or rate - usual < SICK_GAP
    ):
        return None
    where = "the service" if tier is None else f"tier {tier}"
    calls = doc["calls"]
    failed = calls["failed"] / calls["total"] if calls["total"] else 0.0
    return Finding(
        "high" if failed > 0 else "warning",
        f"Replica {worst['replica']} of {where} failed {100 * rate:.1f}% of its "
        f"{worst['attempts']:,} requests, against {100 * usual:.1f}% on the other "
        f"{len(others)}; {back:,} retries went back to it right after failing there.",
        {
            "tier": tier,
            "replica": worst["replica"],
            "failure_rate": rate,
            "others_failure_rate": usual,
            "same_replica_retries": back,
        },
        "Send each retry to a replica the call has not tried yet (a balancer's previous-hosts "
        "predicate), so one sick host costs an attempt, not the call.",
        (setting(worst["policy_key"], "retry_other_host", True),),
    )
