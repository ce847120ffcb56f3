"""The result document's sections, each a ``TypedDict`` (the document itself:
:mod:`retrysim.results.document`, which explains why they are typed).

Each field's docstring is its description in the published JSON Schema. Only the standard
library and ``typing_extensions``: :mod:`retrysim.results.metric_table` names these types.
"""

from __future__ import annotations

from typing import Literal, NotRequired

from typing_extensions import TypeAliasType, TypedDict

#: Any JSON value: a diagnosis's figures and a suggested setting's value are free-form.
Json = TypeAliasType("Json", "str | int | float | bool | list[Json] | dict[str, Json] | None")
#: Whose state a resilience mechanism keeps: each client process's, or one for the whole fleet.
SharedScope = Literal["client", "fleet"]
Severity = Literal["high", "warning"]
#: A shared retry budget's kind: gRPC's token bucket, Finagle's ratio, the AWS SDKs' quota.
BudgetKind = Literal["tokens", "ratio", "quota"]


# --- the settings the run used -----------------------------------------------------------------


class BreakerKnobs(TypedDict):
    """``[policy.breaker]`` as resolved (``retrysim.retry.breaker.BreakerOptions``)."""

    enabled: bool
    mode: Literal["calls", "retries"]
    """what it gates: every attempt, or only retries (first attempts always go through)"""
    failure_threshold: int
    failure_rate: float
    window: int
    window_seconds: float
    minimum_calls: int
    recovery_timeout: float
    half_open_probes: int
    name: str
    scope: SharedScope


class BudgetKnobs(TypedDict):
    """``[policy.budget]`` as resolved (``retrysim.retry.budget.BudgetOptions``)."""

    enabled: bool
    kind: BudgetKind
    max_tokens: float
    token_ratio: float
    percent: float
    min_retries_per_second: float
    window: float
    initial_allowance: int
    quota_capacity: int
    retry_cost: int
    timeout_retry_cost: int
    success_refund: int
    max_total_time: float | None
    scope: SharedScope


class AdaptiveKnobs(TypedDict):
    """``[policy.adaptive]`` as resolved (``retrysim.retry.adaptive.AdaptiveOptions``)."""

    enabled: bool
    window: float
    max_factor: float
    limiter: bool
    limiter_beta: float
    limiter_scale: float
    limiter_min_rate: float
    scope: SharedScope


class HedgeKnobs(TypedDict):
    """``[policy.hedge]`` as resolved (``retrysim.retry.hedge.HedgeOptions``)."""

    enabled: bool
    max_attempts: int
    """sends per attempt, the first one included"""
    delay: float
    """seconds without an answer before each further send"""


class ErrorPolicyKnobs(TypedDict):
    """An error family's own attempts and waits (``retrysim.retry.options.ErrorPolicy``);
    null: the policy's own value."""

    max_attempts: int | None
    """attempts in all for a call whose latest error is of this family"""
    min_wait: float | None
    max_wait: float | None
    respect_retry_after: bool | None


class CustomPolicy(TypedDict):
    """The user's own tenacity policy (``--policy MODULE:ATTR``), as probed."""

    name: str
    strategies: dict[str, str]
    """its stop, wait and retry, each as text"""
    attempts_limited: bool
    notes: list[str]


class Settings(TypedDict):
    """Every policy option in effect (``retrysim.retry.options.PolicyOptions``), resolved."""

    operation: str
    max_attempts: int
    min_wait: float
    max_wait: float
    multiplier: float | None
    profile: str
    """a built-in profile's name, or `custom:NAME` for the user's own policy"""
    jitter: float
    max_delay: float | None
    respect_retry_after: bool
    attempt_timeout: float | None
    """seconds an attempt may take before it fails with TimeoutError (null: no limit)"""
    rate_limited: ErrorPolicyKnobs
    """after HTTP 429 or throttling"""
    server_error: ErrorPolicyKnobs
    """after HTTP 5xx or a busy server"""
    connection_error: ErrorPolicyKnobs
    """after a connection refused, reset or aborted"""
    timeout_error: ErrorPolicyKnobs
    """after no answer in time"""
    breaker: BreakerKnobs
    budget: BudgetKnobs
    adaptive: AdaptiveKnobs
    hedge: NotRequired[HedgeKnobs]
    """absent from documents written before hedging existed"""
    overrides: list[str]
    """options the scenario or a --set fixed (so a RETRY__ variable alone would not move them)"""
    custom: NotRequired[CustomPolicy]
    """only for the user's own tenacity policy"""


# --- what happened -----------------------------------------------------------------------------


class CallCounts(TypedDict):
    """The calls: how many, and how each ended."""

    total: int
    succeeded: int
    failed: int
    """gave up after their last attempt"""
    unfinished: int
    """still retrying when the run stopped"""
    success_rate: float | None
    """share of all calls (null without calls)"""


class AttemptCounts(TypedDict):
    """The attempts: first tries and retries; ``sent`` left out the ones a breaker refused."""

    total: int
    retries: int
    retry_rate: float | None
    """share of calls that needed a retry"""
    mean_per_call: float | None
    max_per_call: int
    sent: int
    refused: int


class Latency(TypedDict):
    """Seconds from a call's start to its end, over finished calls (null: none finished)."""

    mean: float | None
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None


class LatencyOverhead(TypedDict):
    """Latency with faults minus the same run's without them, in seconds."""

    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None


class RetryWait(TypedDict):
    """Seconds spent waiting between attempts."""

    total: float
    mean_per_call: float | None


class Load(TypedDict):
    """What the dependency saw (sent attempts only)."""

    peak_attempts_per_s: float
    """attempts in the busiest whole second"""
    amplification: float | None
    """attempts per call"""
    capacity: float | None
    """the server's requests per second, when it has one"""
    peak_over_capacity: float | None


class JitterSpread(TypedDict):
    """When retries started: a histogram and the busiest 100 ms window's share."""

    retries: int
    peak_share_100ms: float | None
    first_retry_peak_share_100ms: float | None
    edges: list[float]
    counts: list[int]


class Timeline(TypedDict):
    """Attempts and goodput per second in each bin of ``bin_width`` seconds."""

    bin_width: float
    labels: list[str]
    """one per series: first try, retry 1, ..., the last holding every later retry"""
    attempts_per_s: list[list[float]]
    """one list per series, one value per bin"""
    goodput_per_s: list[float]
    """calls succeeding per second, per bin"""


class FaultWindow(TypedDict):
    """A fault of the scenario and its window (``end`` null: until the run ends)."""

    index: int
    kind: str
    start: float
    end: float | None
    tier: NotRequired[str]
    """the tier whose service it hits (only with tiers)"""
    replicas: NotRequired[list[int]]
    """the replicas it hits (only when it names some; absent: every one)"""


class ArrivalWindow(TypedDict):
    """A window of a Poisson schedule with its own rate (a traffic spike, a lull)."""

    start: float
    end: float
    rate: float
    base_rate: float


class Clients(TypedDict):
    """How the fleet called: clients, calls each, the arrival kind and the offered load."""

    count: int
    calls_per_client: int | None
    arrival: str
    offered_rate: float | None
    """a Poisson fleet's steady calls per second"""
    spikes: list[ArrivalWindow]
    arrivals_end: float
    """when new calls stop arriving"""


class PolicyFacts(TypedDict):
    """What the policy could do, from its formula (not sampled from the run)."""

    retried_errors: list[str]
    wait_ranges: list[list[float]]
    """[min, max] seconds before retry 1, 2, ..."""
    min_total_wait: float
    worst_case_total_wait: float


class Refusals(TypedDict):
    """Calls a resilience mechanism ended."""

    breaker: int
    budget: int


class GiveUps(TypedDict):
    """Why calls gave up."""

    not_retried: dict[str, int]
    """after their first attempt, on an error the policy never retries, by error"""
    during_fault: int
    """attempts ran out while a fault was still open"""
    refused: Refusals


class Outage(TypedDict):
    """A downtime window and how long calls that failed in it sat idle after it ended."""

    start: float
    end: float
    retried_after_end: int
    mean_wait_past_end: float | None


Recovery = TypedDict(
    "Recovery",
    {
        "disturbance_start": float,
        "disturbance_end": float,
        "from": float,
        "until": float,
        "goodput_after": float,
        "goodput_reference": float,
        "reference": Literal["before", "offered"],
        "ratio": float,
    },
)
Recovery.__doc__ = (
    "Goodput from `from` to `until` (after the last disturbance settled) against goodput "
    "before the first one (`reference` before) or the offered rate (offered)."
)


class PoolWait(TypedDict):
    """Attempts that queued for a pooled connection, and for how long (seconds)."""

    attempts: int
    share: float
    """of the sent attempts"""
    total: float
    mean: float | None
    p99: float | None
    max: float | None


class Connections(TypedDict):
    """Processes, pools, the network and connects (a scenario that models connections)."""

    processes: int
    pool_size: int | None
    connect_timeout: float | None
    rtt_mean: float | None
    connect_mean: float | None
    connects: int
    connect_failures: int
    connect_timeouts: int
    pool_waits: int
    pool_wait: PoolWait


class BreakerSection(TypedDict):
    """What the circuit breakers did."""

    scope: SharedScope
    opened: int
    closed: int
    half_open: int
    refused: int
    refused_retries: int
    calls_refused: int
    open_seconds: float
    """summed over breakers"""
    open_at_end: int
    peak_open_clients: int | None
    windows: list[list[float]]
    """[start, end] of the union of open windows, the first 50"""
    windows_total: int
    windows_truncated: bool
    open_share: list[float]
    """per timeline bin, the time-weighted share of breakers open"""
    refused_per_s: list[float]


class BudgetSection(TypedDict):
    """What the retry budget refused."""

    kind: BudgetKind | None
    scope: SharedScope | None
    max_total_time: float | None
    refused: int
    retries_asked: int
    refused_share: float | None
    refused_per_s: list[float]


class LimiterSection(TypedDict):
    """What the send-rate limiter held back."""

    delays: int
    delayed_seconds: float
    mean_delay: float | None
    throttles: int
    last_rate: float | None
    delays_per_s: list[float]


class Guards(TypedDict):
    """What the resilience mechanisms did; per-second series line up with the timeline."""

    mechanisms: list[str]
    bin_width: float
    breaker: NotRequired[BreakerSection]
    budget: NotRequired[BudgetSection]
    limiter: NotRequired[LimiterSection]


class SuggestedSetting(TypedDict):
    """One setting to try: ``env`` sets it in production (null: no variable does)."""

    option: str
    value: Json
    env: str | None
    set: str
    """the --set that tries it here"""
    pinned: bool


class Diagnosis(TypedDict):
    """What a diagnosis rule found in this run (``retrysim.results.diagnose``)."""

    id: str
    title: str
    section: str
    severity: Severity
    evidence: str
    figures: dict[str, Json]
    suggestion: str
    settings: list[SuggestedSetting]


# --- a real run's (retrysim chaos) -------------------------------------------------------------


class VersusRow(TypedDict):
    """One metric: the real run's value beside the simulation's mean and 95% interval."""

    metric: str
    label: str
    real: float | None
    mean: float | None
    low: float | None
    high: float | None
    outside: bool | None


class Versus(TypedDict):
    """A real run against the simulation over several seeds (``retrysim chaos --vs-sim``)."""

    seeds: list[int]
    interval: str
    rows: list[VersusRow]
    outside: list[str]


class CalibrationFigure(TypedDict):
    """One scenario value a calibration sets (``retrysim chaos --calibrate``)."""

    key: str
    """the dotted key: clients.cpu_per_attempt, clients.cpu_per_connect, clients.cpus"""
    shipped: Json
    """the scenario's own value (a constant latency as its seconds; null: unset)"""
    calibrated: float | None
    """the value the calibration fitted (null: not fitted, the scenario's is kept)"""
    source: str
    """where the calibrated value came from, in a line"""


class CalibrationSection(TypedDict):
    """A short real run before the real one, one attempt per call and no faults, and the
    client model fitted from it (``retrysim chaos --calibrate``; ``--vs-sim`` simulates with
    it unless ``--no-calibrate``)."""

    at: str
    """when it started (ISO 8601, UTC)"""
    seconds: float
    """how long it took, run and fit, in wall seconds"""
    attempts: int
    connects: int
    """connections the fault proxy accepted during it"""
    cpu_per_attempt: float | None
    """CPU seconds an attempt cost the process (least squares over the run)"""
    cpu_per_connect: float | None
    """CPU seconds a new connection cost the process"""
    fit_r2: float
    """share of the CPU's variation over time that the fit explains"""
    slowdown: float | None
    """wall seconds a CPU second of the loop took while it waited for a core (schedstat)"""
    figures: list[CalibrationFigure]
    used: bool
    """whether the simulation (--vs-sim) ran with the calibrated figures"""
    notes: list[str]
    """one line per figure kept at the scenario's, saying why"""


class TierSection(TypedDict):
    """One tier of a call graph (``scenario.tiers``), top first: what reached it and why."""

    name: str
    calls: int
    """calls its callers made to it (the top tier's are the clients' own)"""
    attempts: int
    """requests it received (attempts of those calls)"""
    attempts_per_call: float | None
    """requests it received per top-level (user) call: the amplification down to it"""
    max_attempts_per_call: int | None
    """the most requests one top-level call can send it: the product of max_attempts of every
    layer above it, times hedge.max_attempts where a layer hedges (null when a layer's stop is
    not a fixed attempt count)"""
    peak_per_call: int
    """the most requests one top-level call sent it in this run"""
    success_rate: float | None
    """share of the calls made to it that succeeded"""
    capacity: float | None
    """its service's requests per second, all replicas together, when bounded"""
    peak_attempts_per_s: float
    peak_over_capacity: float | None
    wasted_attempts: int
    """requests it received after the request they serve had been given up, by its caller or
    by one further up (work nobody waits for; zero at the top)"""
    wasted_share: float | None
    replicas: int
    timeout: float | None
    """its callers' timeout per attempt"""
    propagates_deadline: bool
    """whether the calls it receives carry their caller's deadline"""
    policy_key: str
    """the scenario key of its callers' retry policy: `policy` (the clients') at the top,
    `tiers.NAME.policy` (the tier above's) below; what a --set changes"""
    caller_max_attempts: int | None
    """the most attempts its callers make per call (null: not a fixed count)"""
    caller_budget: bool
    """whether its callers' retry budget is on"""
    timeline: NotRequired[Timeline]
    """requests it received per second (same bins as the run's timeline)"""


class GraphSection(TypedDict):
    """A call graph in a line: what reached its bottom tier (the figures compare and sweep
    tables show; each tier's are in ``tiers``)."""

    bottom: str
    """the bottom tier's name"""
    bottom_requests_per_call: float | None
    """requests the bottom tier received per user call"""
    bottom_max_per_call: int | None
    """the most one user call can send it (the product of every layer's max_attempts)"""
    bottom_peak_over_capacity: float | None
    """its busiest second against its capacity"""
    wasted_requests: int
    """requests below the top started after the request they served had been given up"""


class ReplicaSection(TypedDict):
    """One replica of a replicated service (``service.replicas``)."""

    tier: str | None
    """its tier's name (null: the scenario's one service)"""
    replica: int
    attempts: int
    failed: int
    """attempts it answered with an error or a timeout"""
    failure_rate: float | None
    same_replica_retries: int
    """retries it received right after the same call's previous attempt failed on it"""
    retry_other_host: bool
    """whether its callers' retries go to a replica their call has not tried yet"""
    policy_key: str
    """the scenario key of its callers' retry policy (`policy`, or `tiers.NAME.policy`)"""
    attempts_per_s: NotRequired[list[float]]
    """requests it received per second, per bin of the run's timeline"""


class HedgeSection(TypedDict):
    """Hedged requests (``policy.hedge``): what they did, or what they would do.

    Present when hedging is on, or when this run's sends have a tail one hedge would cut by
    half or more (the estimate, from this run's own send latencies, assumes a hedge's latency
    is drawn independently of its sibling's: true of a replica's own slowness, not of a
    request that is slow everywhere)."""

    enabled: bool
    hedges: int
    """extra sends started (beyond one per retry attempt)"""
    extra_load: float | None
    """hedges per attempt: the load hedging added"""
    won: int
    """attempts a hedge answered first"""
    send_p50: float | None
    """successful sends' latency, seconds"""
    send_p99: float | None
    suggested_delay: float | None
    """the sends' p90: a hedge after it costs about 10% more load"""
    estimated_p99: float | None
    """a send's p99 with one hedge after suggested_delay, from this run's send latencies"""
    estimated_extra_load: float | None
    """hedges per attempt that delay would cost: the share of sends slower than it"""
