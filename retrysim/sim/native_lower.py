"""A built engine lowered into the native core's typed tables, or why it cannot be.

The native core (``native/``, C) runs the Python engine's model on packed rows: the
policy's stop and wait as a tree of nodes, the fault plan's strategies, the latency sampler,
the server's numbers. This module reads them off the engine the Python side built (its real
tenacity objects, its compiled :class:`~retrysim.sim.faults.FaultPlan`, its server), so the
scenario is interpreted once, by the same code, whichever loop then runs it.

Where a strategy's value needs Python's own arithmetic (an int power of a base, a mirror's
``max``/``min`` on mixed ints and floats), it is worked out here, per attempt number, by the
same expressions the mirrors in :mod:`retrysim.sim.compiled` evaluate, and handed over as a
table. Every number is handed over as a float only when it is one exactly: a value that a
double cannot hold refuses the native core (the Python engine runs), never rounds silently.
Anything the core does not model is a refusal too: :class:`Refused` says what, in words the
report shows (``engine: fast (the native core has no tiers)``).
"""

from __future__ import annotations

import math
import struct
import sys
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tenacity import (
    stop_after_attempt,
    stop_after_delay,
    stop_all,
    stop_any,
    stop_before_delay,
    wait_combine,
    wait_exponential,
    wait_exponential_jitter,
    wait_fixed,
    wait_none,
    wait_random,
    wait_random_exponential,
)

from retrysim.model.faults import Slicer
from retrysim.model.scenario import (
    Constant,
    Empirical,
    Exponential,
    LatencySpike,
    Lognormal,
    Normal,
    UniformLatency,
    Weibull,
)
from retrysim.retry.per_error import stop_after_attempt_per_error, wait_per_error
from retrysim.retry.waits import (
    capped_exponential,
    wait_capped,
    wait_decorrelated_jitter,
    wait_equal_jitter,
    wait_retry_after,
)
from retrysim.sim.balance import RULES
from retrysim.sim.compiled import CODE_ROWS, MIRRORS, code_families
from retrysim.sim.decide import unmirrored
from retrysim.sim.failures import CONFLICT
from retrysim.sim.faults import (
    CountGate,
    FlakyGate,
    LossDelay,
    Narrowed,
    OutageGate,
    RampGate,
    ResetRule,
    Spike,
)
from retrysim.sim.latency import _Z99
from retrysim.sim.service import (
    LoadLatencyServer,
    LockServer,
    OccServer,
    ProcessorSharingServer,
    QueueServer,
    RateLimitedServer,
    Server,
    SlotServer,
)
from retrysim.sim.streams import FAULT_BASE, stream_key

#: Attempt numbers a per-attempt table covers; past it, the last entry (checked to be final).
TABLE_ATTEMPTS = 1100
#: Row layouts, the C structs' (native/*.h); the module's own row widths are checked on import.
NODE = struct.Struct("<6i3d")  # op, child, count, table, length, slot; a, b, c
FAULT = struct.Struct("<8i9d3Q")
SAMPLER = struct.Struct("<4i2d")
#: kind, slots, queue limit, reject, drop, hint mode, rejection, occ's read sampler, cancel,
#: server key;
#: a lock's wait timeout, load_latency's per_request, a rate limit's rate and burst, cores
SERVER = struct.Struct("<9qQ5d")
#: processes, pool size, cpus, shared cpu, per leg, backlog; seven stream keys and a pad; the
#: SYN retry; the rtt, connect, attempt-CPU and connect-CPU samplers; the connect timeout
NETWORK = struct.Struct("<6q8Qd4qd")
# Node kinds (native/policy.h), fault kinds (native/faults.h), samplers (native/latency.h).
W_FIXED, W_RANDOM, W_TABLE, W_RANDOM_EXP, W_EXP_JITTER, W_COMBINE, W_PER_ERROR = range(1, 8)
W_CAPPED, W_EQUAL_JITTER, W_DECORRELATED, W_RETRY_AFTER = range(8, 12)
S_AFTER_ATTEMPT, S_AFTER_DELAY, S_BEFORE_DELAY, S_ANY, S_ALL, S_PER_ERROR = range(20, 26)
F_OUTAGE, F_FLAKY, F_RAMP, F_FIRST_N, F_EVERY_NTH = range(1, 6)
F_SPIKE, F_LOSS, F_RESET = 10, 11, 20
L_CONSTANT, L_UNIFORM, L_EXPONENTIAL, L_NORMAL, L_LOGNORMAL, L_WEIBULL, L_EMPIRICAL = range(1, 8)
#: Python 3.12's sum() of floats compensates its rounding; the core adds as 3.11 does.
PLAIN_SUM = sys.version_info < (3, 12)


class Refused(Exception):  # noqa: N818 (a verdict, not a failure: the Python engine runs)
    """What the native core does not model in this run (the message is shown as the reason)."""


def exact(value: Any, what: str) -> float:
    """``value`` as a float, refused when a double cannot hold it exactly."""
    number = float(value)
    if number != value and not (math.isnan(number) and math.isnan(value)):
        raise Refused(f"{what} ({value!r}) is not exactly a float")
    return number


@dataclass
class Tables:
    """The packed rows the core reads: nodes, children, doubles, keys, samplers, faults."""

    nodes: list[bytes] = field(default_factory=list)
    children: array[int] = field(default_factory=lambda: array("i"))
    doubles: array[float] = field(default_factory=lambda: array("d"))
    keys: array[int] = field(default_factory=lambda: array("Q"))
    samplers: list[bytes] = field(default_factory=list)
    faults: list[bytes] = field(default_factory=list)
    #: wait_decorrelated_jitter objects (by identity) -> their node: each remembers its last
    #: wait per call, in the call's slot numbered as its place here
    remembering: dict[int, int] = field(default_factory=dict)

    def node(
        self,
        op: int,
        children: list[int] = (),  # type: ignore[assignment]
        table: list[float] = (),  # type: ignore[assignment]
        a: float = 0.0,
        b: float = 0.0,
        c: float = 0.0,
        slot: int = 0,
    ) -> int:
        first, offset = len(self.children), len(self.doubles)
        self.children.extend(children)
        self.doubles.extend(table)
        self.nodes.append(NODE.pack(op, first, len(children), offset, len(table), slot, a, b, c))
        return len(self.nodes) - 1

    def table(self, values: list[float]) -> int:
        offset = len(self.doubles)
        self.doubles.extend(values)
        return offset


# -- the policy -------------------------------------------------------------------------------


class _Attempt:
    """A call state at attempt ``n``: all a wait_exponential reads of one."""

    __slots__ = ("attempt_number",)

    def __init__(self, n: int) -> None:
        self.attempt_number = n


def attempt_bound(stop: Any) -> int | None:
    """The highest attempt number ``stop`` lets a call reach (None: no bound by count)."""
    if type(stop) is stop_after_attempt:
        return int(stop.max_attempt_number)
    if type(stop) is stop_after_attempt_per_error:
        return max(int(stop.limit(family)) for family in code_families())
    if type(stop) is stop_any:
        bounds = [b for b in map(attempt_bound, stop.stops) if b is not None]
        return min(bounds) if bounds else None
    if type(stop) is stop_all:
        every = [attempt_bound(part) for part in stop.stops]
        known = [b for b in every if b is not None]
        return max(known) if known and len(known) == len(every) else None
    return None


def _per_attempt(value: Callable[[int], float], bound: int | None, what: str) -> list[float]:
    """``value(n)`` for attempts 1 .. TABLE_ATTEMPTS; refused when a call may go past the
    table and the value still changes there."""
    table = [value(n) for n in range(1, TABLE_ATTEMPTS + 1)]
    if bound is None or bound > TABLE_ATTEMPTS:
        later = {value(n) for n in (TABLE_ATTEMPTS + 1, 2 * TABLE_ATTEMPTS, 10 * TABLE_ATTEMPTS)}
        if later != {table[-1]} and not all(math.isnan(v) for v in (*later, table[-1])):
            raise Refused(f"{what} still grows after {TABLE_ATTEMPTS:,} attempts")
    return table


def lower_wait(wait: Any, tables: Tables, bound: int | None) -> int:
    """The node index of ``wait`` (and its parts)."""
    kind = type(wait)
    if kind in (wait_fixed, wait_none):
        return tables.node(W_FIXED, a=exact(wait.wait_fixed, "a fixed wait"))
    if kind is wait_random:
        low, high = wait.wait_random_min, wait.wait_random_max
        return tables.node(W_RANDOM, a=exact(low, "wait_random's min"), b=float(high - low))
    if kind in (wait_exponential, wait_random_exponential):
        # The Python mirror's own function of the attempt number (compiled._exponential).
        from retrysim.sim.compiled import _exponential

        high_of = _exponential(wait)

        def high(n: int) -> float:
            return float(high_of(_Attempt(n)))

        if kind is wait_exponential:
            return tables.node(W_TABLE, table=_per_attempt(high, bound, "wait_exponential"))
        bottom = wait.min

        def span(n: int) -> float:
            return float(high_of(_Attempt(n)) - bottom)

        table = _per_attempt(span, bound, "wait_random_exponential")
        return tables.node(W_RANDOM_EXP, table=table, a=exact(bottom, "its min"))
    if kind is wait_exponential_jitter:
        return _lower_exponential_jitter(wait, tables, bound)
    if kind is wait_combine:
        if not PLAIN_SUM and len(wait.wait_funcs) > 1:
            raise Refused("wait_combine sums with compensation on Python 3.12+")
        parts = [lower_wait(part, tables, bound) for part in wait.wait_funcs]
        return tables.node(W_COMBINE, children=parts)
    if kind is wait_per_error:
        chosen = {f: lower_wait(wait.strategy(f), tables, bound) for f in set(code_families())}
        return tables.node(W_PER_ERROR, children=[chosen[f] for f in code_families()])
    return _lower_own_wait(wait, tables, bound)


def _lower_own_wait(wait: Any, tables: Tables, bound: int | None) -> int:
    """retrysim's own waits (:mod:`retrysim.retry.waits`), which the fast path calls as they
    are: the same arithmetic, their jitter drawn from the call's stream as theirs is."""
    kind = type(wait)
    if kind is wait_capped:
        inner = lower_wait(wait.inner, tables, bound)
        return tables.node(W_CAPPED, children=[inner], a=exact(wait.cap, "wait_capped's cap"))
    if kind is wait_equal_jitter:

        def half(n: int) -> float:
            return float(capped_exponential(wait.multiplier, wait.max, n) / 2)

        table = _per_attempt(half, bound, "wait_equal_jitter")
        return tables.node(W_EQUAL_JITTER, table=table, a=exact(wait.min, "its min"))
    if kind is wait_decorrelated_jitter:  # each remembers a wait per call: a slot of its own
        known = tables.remembering.get(id(wait))
        if known is not None:
            return known
        tables.remembering[id(wait)] = node = tables.node(
            W_DECORRELATED,
            a=exact(wait.base, "its base"),
            b=exact(wait.max, "its max"),
            c=exact(wait.min, "its min"),
            slot=len(tables.remembering),
        )
        return node
    if kind is wait_retry_after:  # the hint is the attempt's (RateLimited's alone)
        fallback = lower_wait(wait.fallback, tables, bound)
        return tables.node(W_RETRY_AFTER, children=[fallback], a=exact(wait.cap, "its cap"))
    raise Refused(f"the native core has no {kind.__name__}")


def _lower_exponential_jitter(wait: Any, tables: Tables, bound: int | None) -> int:
    """wait_exponential_jitter: ``multiplier * base ** (n - 1)`` per attempt (NaN where
    Python's arithmetic overflows, which the mirror and tenacity answer with ``max``)."""
    multiplier, base, top = wait.multiplier, wait.exp_base, wait.max

    def power(n: int) -> float:
        try:
            return float(multiplier * base ** (n - 1))
        except OverflowError:
            return math.nan

    table = [power(n) for n in range(1, TABLE_ATTEMPTS + 1)]
    if bound is None or bound > TABLE_ATTEMPTS:
        last = table[-1]
        if not (multiplier > 0 and base > 1 and (math.isnan(last) or last >= top)):
            raise Refused(f"wait_exponential_jitter still grows after {TABLE_ATTEMPTS:,} attempts")
    return tables.node(
        W_EXP_JITTER,
        table=table,
        a=float(wait.jitter - 0),
        b=exact(top, "its max"),
        c=exact(max(0, wait.min), "its min"),
    )


def lower_stop(stop: Any, tables: Tables) -> int:
    kind = type(stop)
    if kind is stop_after_attempt:
        return tables.node(S_AFTER_ATTEMPT, a=exact(stop.max_attempt_number, "attempts"))
    if kind is stop_after_delay:
        return tables.node(S_AFTER_DELAY, a=exact(stop.max_delay, "stop_after_delay"))
    if kind is stop_before_delay:
        return tables.node(S_BEFORE_DELAY, a=exact(stop.max_delay, "stop_before_delay"))
    if kind in (stop_any, stop_all):
        parts = [lower_stop(part, tables) for part in stop.stops]
        return tables.node(S_ANY if kind is stop_any else S_ALL, children=parts)
    if kind is stop_after_attempt_per_error:
        limits = [exact(stop.limit(family), "attempts") for family in code_families()]
        return tables.node(S_PER_ERROR, table=limits)
    raise Refused(f"the native core has no {kind.__name__}")


def verdicts(decider: Any) -> bytes:
    """Whether the policy's retry retries each record code, asked of its real retry object
    once per code (the fast decider's own verdicts)."""
    table = bytearray(CODE_ROWS)
    retry = decider.strategies[2]
    for code in range(1, len(decider.answers.names)):
        table[code] = bool(decider._verdict(retry, code))
    return bytes(table)


# -- the faults and the latency -----------------------------------------------------------------


def lower_sampler(dist: Any, tables: Tables) -> int:
    """A latency distribution as a sampler row (latency.sampler's formulas' numbers)."""
    reflect, q_off, q_len, a, b = 0, 0, 0, 0.0, 0.0
    match dist:
        case Constant(value=value):
            kind, a = L_CONSTANT, exact(value, "a constant latency")
        case UniformLatency(low=low, high=high):
            kind, a, b = L_UNIFORM, exact(low, "low"), float(high - low)
        case Exponential(mean=mean):
            kind, a = L_EXPONENTIAL, exact(-mean, "mean")
        case Normal(mean=mean, std=std, negative=negative):
            kind, a, b = L_NORMAL, exact(mean, "mean"), exact(std, "std")
            reflect = int(negative == "reflect")
        case Lognormal(median=median, p99=p99):
            kind, a, b = L_LOGNORMAL, math.log(median), math.log(p99 / median) / _Z99
        case Weibull(shape=shape, scale=scale):
            kind, a, b = L_WEIBULL, exact(scale, "scale"), 1 / shape
        case Empirical(quantiles=quantiles):
            kind, q_len = L_EMPIRICAL, len(quantiles)
            q_off = tables.table([exact(q, "a quantile") for q in quantiles])
        case _:
            raise Refused(f"the native core has no {type(dist).__name__.lower()} latency")
    tables.samplers.append(SAMPLER.pack(kind, reflect, q_off, q_len, a, b))
    return len(tables.samplers) - 1


def lower_fault(strategy: Any, specs: dict[int, Any], tables: Tables) -> int:
    """One compiled fault strategy (a gate, spike, loss or reset, maybe narrowed) as a row;
    ``specs`` maps a fault's stream key to its scenario entry (a spike's distribution)."""
    narrowed, every, duration, share, radius_key = 0, math.inf, math.inf, 1.0, 0
    clients_off, clients_len = -1, 0
    hint = getattr(strategy, "hint", None)  # a gate's Retry-After (a narrowed one's, its own)
    if isinstance(strategy, Narrowed):
        narrowed, every, duration = 1, strategy.every, strategy.duration
        share, radius_key = strategy.share, strategy.share_key
        if strategy.clients is not None:
            clients_off, clients_len = len(tables.keys), len(strategy.clients)
            tables.keys.extend(sorted(strategy.clients))
        strategy = strategy.inner
    code, n, keys_off, probability, rto, count_every = 0, 0, 0, 0.0, 0.0, math.inf
    key = share_key = 0
    match strategy:
        case OutageGate(verdict=verdict):
            kind, code = F_OUTAGE, verdict
        case FlakyGate(probability=p, code=c, key=k) | RampGate(probability=p, code=c, key=k):
            kind = F_FLAKY if isinstance(strategy, FlakyGate) else F_RAMP
            code, probability, key = c, p, k
        case CountGate():
            kind = F_FIRST_N if strategy.first else F_EVERY_NTH
            code, n, count_every = strategy.code, strategy.n, strategy.every
        case Spike(key=k):
            kind, key = F_SPIKE, k
            spec = specs[k]
            dist = Constant(value=strategy.extra(0.0)) if isinstance(spec, Slicer) else spec.extra
            if not isinstance(spec, Slicer | LatencySpike):
                raise Refused(f"the native core has no {type(spec).__name__} spike")
            n = lower_sampler(dist, tables)
        case LossDelay(probability=p, rto=r, segment_keys=segment_keys):
            kind, probability, rto, n = F_LOSS, p, r, len(segment_keys)
            keys_off = len(tables.keys)
            tables.keys.extend(segment_keys)
        case ResetRule(probability=p, code=c, key=k, share_key=s):
            kind, code, probability, key, share_key = F_RESET, c, p, k, s
        case _:
            raise Refused(f"the native core has no {type(strategy).__name__} fault")
    tables.faults.append(
        FAULT.pack(
            kind, code, n, narrowed, clients_off, clients_len, keys_off, 0,
            exact(strategy.start, "a fault's start"), exact(strategy.end, "a fault's end"),
            exact(probability, "a probability"), exact(rto, "rto"), exact(every, "every"),
            exact(duration, "for"), exact(share, "a share of clients"),
            exact(count_every, "every"), math.nan if hint is None else exact(hint, "retry_after"),
            key, share_key, radius_key,
        )
    )  # fmt: skip
    return len(tables.faults) - 1


def fault_specs(faults: list[Any], seed: int) -> dict[int, Any]:
    """Each fault's stream key -> its scenario entry (as compile_faults keys them)."""
    return {stream_key(seed, FAULT_BASE + i): fault for i, fault in enumerate(faults)}


# -- the whole run ------------------------------------------------------------------------------


@dataclass
class Lowered:
    """What the core's ``run`` takes besides the arrivals, limits and progress."""

    tables: Tables
    plans: array[int]  # a replica's gates, spikes, resets: (offset, count) each into members
    members: array[int]
    windows: array[float]  # capacity windows: (start, end, slots, replica) each
    replicas: int
    balance_rule: int  # balance.RULES' index
    balance_key: int
    retry_other_host: bool
    hedge_max: int  # sends per hedged attempt (0: no hedging)
    hedge_delay: float
    stop_root: int
    wait_root: int
    remembers: int  # waits each call remembers (its decorrelated jitters')
    verdicts: bytes
    served_judged: bool
    server: bytes
    network: bytes  # empty: attempts reach the server the instant they are sent
    hinted: bool  # an attempt can carry a Retry-After hint (a gate's, a rate limit's)


def refusal(engine: Any) -> str | None:
    """Why the native core cannot run ``engine``'s model, or None when it can (a quick look;
    :func:`lower` may still refuse a number)."""
    decider = engine.decider
    if decider.name != "fast":
        why: str | None = decider.why
        return why
    for reason, present in (
        ("tiers", engine.below is not None or engine.level > 0),
        ("more than 64 replicas", engine._replicas is not None and engine._replicas.replicas > 64),
        ("guards (breakers, budgets, limiters)", bool(engine.policy.guards)),
        ("retry strategies of its own", bool(unmirrored(engine.policy.strategies()[2:], MIRRORS))),
    ):
        if present:
            return f"the native core has no {reason}"
    if type(engine.server) not in SERVERS:
        return f"the native core has no {engine.scenario.service.kind} service"
    return None


#: The service models the core runs, by class: what lower_server packs for each.
SERVERS = {
    Server: 0,
    QueueServer: 1,
    LockServer: 2,
    LoadLatencyServer: 3,
    RateLimitedServer: 4,
    OccServer: 5,
    ProcessorSharingServer: 6,
}
HINT_MODES = {"seconds": 0, "exact": 1, "none": 2}


def lower_server(engine: Any, tables: Tables) -> bytes:
    """The service model's numbers (service.py's classes' attributes) as the core's row; an
    occ's read latency is a sampler of its own."""
    server = engine.server
    kind = SERVERS[type(server)]
    slots, limit, reject, drop, hint_mode, rejection, reads, cancel = 0, 0, 0, 0, 0, 0, -1, 0
    wait_timeout, per_request, rate, burst, cores = math.nan, 0.0, 0.0, 0.0, 0.0
    if isinstance(server, SlotServer):
        slots, limit, reject = min(server.slots, 2**62), server.limit, server.reject_code
        drop = int(server.drop_abandoned)
    if isinstance(server, LockServer) and server.wait_timeout is not None:
        wait_timeout = exact(server.wait_timeout, "wait_timeout")
    if isinstance(server, LoadLatencyServer):
        per_request = exact(server.per_request, "per_request")
    if isinstance(server, RateLimitedServer):
        rate, burst = exact(server.rate, "rate"), exact(server.burst, "burst")
        hint_mode, rejection = HINT_MODES[server.hint], server.rejection
    if isinstance(server, OccServer):
        reject = CONFLICT
        spec = engine.scenario.service
        if spec.protocol == "read_then_write":
            read = spec.read_latency if spec.read_latency is not None else spec.latency
            reads = lower_sampler(read, tables)
    if isinstance(server, ProcessorSharingServer):
        cancel, cores = int(server.cancel_abandoned), exact(server.sharing.cores, "cores")
    return SERVER.pack(
        kind, slots, limit, reject, drop, hint_mode, rejection, reads, cancel,
        engine._server_key, wait_timeout, per_request, rate, burst, cores,
    )  # fmt: skip


def lower(engine: Any) -> Lowered:
    """``engine``'s model as the core's tables (:class:`Refused` when a part cannot be)."""
    tables = Tables()
    view = engine.scenario
    from retrysim.sim.service import service_latency

    lower_sampler(service_latency(view.service), tables)  # sampler 0: the service's latency
    stop, wait, _ = engine.policy.strategies()
    bound = attempt_bound(stop)
    wait_root = lower_wait(wait, tables, bound)
    stop_root = lower_stop(stop, tables)
    # Each replica's fault plan, compiled by the engine (routing._build_replicas): its gates,
    # spikes and resets as rows of the faults table, six numbers a replica in ``plans``.
    plans, members, windows = array("i"), array("i"), array("d")
    for replica, plan in enumerate(engine._plans):
        kept = [f for f in view.faults if f.replicas is None or replica in f.replicas]
        specs = fault_specs(kept, engine.seed)
        for strategies in (plan.gates, plan.spikes, plan.resets):
            plans.extend((len(members), len(strategies)))
            members.extend(lower_fault(strategy, specs, tables) for strategy in strategies)
        if not PLAIN_SUM and len(plan.spikes) > 1:
            raise Refused("latency spikes sum with compensation on Python 3.12+")
        for start, end, slots in plan.capacity_windows:
            windows.extend(
                (exact(start, "a window's start"), exact(end, "its end"), slots, replica)
            )
    balancer = engine._replicas
    decider = engine.decider
    return Lowered(
        tables=tables,
        plans=plans,
        members=members,
        windows=windows,
        replicas=1 if balancer is None else balancer.replicas,
        balance_rule=0 if balancer is None else RULES.index(balancer.rule),
        balance_key=0 if balancer is None else balancer._key,
        retry_other_host=engine._tried is not None,
        hedge_max=0 if engine._hedges is None else engine._hedges.max_attempts,
        hedge_delay=0.0 if engine._hedges is None else exact(engine._hedges.delay, "delay"),
        stop_root=stop_root,
        wait_root=wait_root,
        remembers=len(tables.remembering),
        verdicts=verdicts(decider),
        served_judged=bool(decider._verdict(decider.strategies[2], decider.answers.none_code)),
        server=lower_server(engine, tables),
        network=b"" if engine.connections is None else lower_network(engine, tables),
        hinted=any(p.hinted for p in engine._plans) or isinstance(engine.server, RateLimitedServer),
    )


def lower_network(engine: Any, tables: Tables) -> bytes:
    """The connections model's numbers (:class:`~retrysim.sim.connections.Connections`)."""
    connections, view = engine.connections, engine.scenario
    clients, network = view.clients, view.network

    def sampler_or_none(dist: Any) -> int:
        return -1 if dist is None else lower_sampler(dist, tables)

    rtt = connect = -1
    if network is not None:
        rtt = lower_sampler(network.rtt, tables)
        connect = lower_sampler(
            network.connect if network.connect is not None else network.rtt, tables
        )
    size = clients.pool_size
    return NETWORK.pack(
        connections.processes, -1 if size is None else size, len(connections.cpus),
        int(connections.shared_cpu), int(connections.per_leg),
        -1 if connections.backlog is None else connections.backlog,
        connections._rtt_key, connections._back_key, connections._read_back_key,
        connections._write_out_key, connections._connect_key, connections._cpu_key,
        connections._connect_cpu_key, 0, exact(connections.syn_retry, "syn_retry"), rtt, connect,
        sampler_or_none(clients.cpu_per_attempt), sampler_or_none(clients.cpu_per_connect),
        math.nan if connections.connect_timeout is None else
        exact(connections.connect_timeout, "connect_timeout"),
    )  # fmt: skip


def code_set(codes: frozenset[int]) -> bytes:
    """A set of record codes as one byte per code (the families' connection rules)."""
    return bytes(code in codes for code in range(CODE_ROWS))
