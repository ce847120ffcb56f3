"""What a run returns: the records and everything needed to read them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from retrysim.model.scenario import Scenario
from retrysim.retry.guards import GuardEvent
from retrysim.sim.failures import CODE_NAMES


@dataclass
class TierRun:
    """One tier's records in a run of a call graph (``scenario.tiers``), top tier first.

    ``attempts`` are the requests the tier received and ``calls`` the calls its callers made
    to it (the top tier's are the clients', the run's own records). ``parents[i]`` is the row,
    in the tier above's attempts, of the request call ``i`` served (-1 at the top).
    """

    name: str
    attempts: np.ndarray
    calls: np.ndarray
    parents: np.ndarray
    capacity: float | None
    replicas: int
    timeout: float | None  # its callers' timeout per attempt
    policy: dict[str, Any]  # its callers' retry policy, described
    engine: str  # the decider its callers' retries ran on
    propagates_deadline: bool = False  # the calls it receives carry their caller's deadline
    retry_other_host: bool = False  # its callers' retries avoid the replicas a call has tried


@dataclass
class RunResult:
    """Everything a run produced: records plus the settings actually used."""

    scenario: Scenario
    seed: int
    policy: dict[str, Any]
    attempts: np.ndarray
    calls: np.ndarray
    end_time: float
    events: int
    wall_time: float
    capacity: float | None
    stopped: str | None = None
    error_names: tuple[str, ...] = CODE_NAMES  # error codes in the records -> names
    #: What the policy's guards did, in time order: breaker state changes, budget refusals,
    #: rate-limiter delays and rate changes (``client`` None: fleet-wide state).
    guard_events: list[GuardEvent] = field(default_factory=list)
    #: What the connections did (connects, connect failures and timeouts, attempts that queued
    #: for a pooled connection); None when the scenario models no connections.
    connections: dict[str, int] | None = None
    #: Which path decided the retries: ``"fast"`` (the policy's strategies called directly) or
    #: ``"reference"`` (tenacity's own ``iter()``); the records are the same either way.
    engine: str = "reference"
    #: Why the reference path ran (a policy the fast path does not mirror, or asked for).
    engine_note: str | None = None
    #: Each tier's records, top first, when the scenario has tiers (empty: one tier).
    tiers: list[TierRun] = field(default_factory=list)
