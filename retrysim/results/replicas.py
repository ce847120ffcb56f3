"""Per-replica figures of a replicated service (the document's ``replicas`` section).

A service with ``replicas > 1`` sits behind a balancer, and each attempt row records the
replica it went to. One sick replica among healthy ones shows here as a failure rate far above
its siblings'; whether retries made it worse shows as ``same_replica_retries``: retries sent to
the replica the same call had just failed on (what ``retry_other_host`` avoids). Both the
scenario's one service and each tier's service are covered (``tier`` names which).

Whole columns with numpy: no loop over a run's rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from retrysim.results.guard_metrics import refused_mask
from retrysim.results.sections import ReplicaSection
from retrysim.results.tiers import TOP_POLICY, policy_key
from retrysim.sim import records as rec

if TYPE_CHECKING:
    from retrysim.sim.result import RunResult


def replicas_section(result: RunResult, width: float, bins: int) -> list[ReplicaSection]:
    """The document's ``replicas``: every replica of every replicated service, top tier first
    (empty when no service has more than one); per-second series in the run's timeline bins
    (``width`` seconds each, ``bins`` of them: a request started later counts in the last)."""
    groups: list[tuple[str | None, np.ndarray, int, bool, str]]
    if not result.tiers:
        scenario = result.scenario
        groups = [
            (
                None,
                result.attempts,
                scenario.service.replicas,
                scenario.policy.retry_other_host,
                TOP_POLICY,
            )
        ]
    else:
        groups = [
            (t.name, t.attempts, t.replicas, t.retry_other_host, policy_key(result.tiers, level))
            for level, t in enumerate(result.tiers)
        ]
    out: list[ReplicaSection] = []
    for name, attempts, count, other_host, key in groups:
        if count < 2:
            continue
        sent = attempts[~refused_mask(attempts, result.error_names)]
        received, failed, again, series = per_replica(sent, count, width, bins)
        for r in range(count):
            out.append(
                {
                    "tier": name,
                    "replica": r,
                    "attempts": int(received[r]),
                    "failed": int(failed[r]),
                    "failure_rate": float(failed[r] / received[r]) if received[r] else None,
                    "same_replica_retries": int(again[r]),
                    "retry_other_host": other_host,
                    "policy_key": key,
                    "attempts_per_s": (series[r] / width).tolist(),
                }
            )
    return out


def per_replica(
    attempts: np.ndarray, count: int, width: float, bins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For each of ``count`` replicas, from the attempts sent to them: the attempts, the failed
    ones (an error or a timeout), the same-replica retries (:func:`same_replica_retry`), and
    the attempts started in each of ``bins`` bins of ``width`` seconds (one row a replica)."""
    replica = attempts["replica"].astype(np.int64)
    outcome = attempts["outcome"]
    failed_row = (outcome == rec.FAILED) | (outcome == rec.TIMED_OUT)
    received = np.bincount(replica, minlength=count)
    failed = np.bincount(replica[failed_row], minlength=count)
    again = np.bincount(replica[same_replica_retry(attempts)], minlength=count)
    series = np.zeros((count, bins), dtype=np.int64)
    if len(attempts):
        idx = np.minimum((attempts["start"] / width).astype(np.int64), bins - 1)
        np.add.at(series, (replica, idx), 1)
    return received, failed, again, series


def same_replica_retry(attempts: np.ndarray) -> np.ndarray:
    """Which rows are retries sent to the replica their call's previous attempt failed on (a
    mask over ``attempts``, whatever their order)."""
    if not len(attempts):
        return np.zeros(0, dtype=bool)
    order = np.lexsort((attempts["attempt"], attempts["call"]))
    rows = attempts[order]
    follows = np.zeros(len(rows), dtype=bool)
    follows[1:] = (
        (rows["call"][1:] == rows["call"][:-1])
        & (rows["attempt"][1:] == rows["attempt"][:-1] + 1)
        & (rows["replica"][1:] == rows["replica"][:-1])
        & (rows["outcome"][:-1] != rec.OK)
    )
    mask = np.zeros(len(rows), dtype=bool)
    mask[order] = follows
    return mask
