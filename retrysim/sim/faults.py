"""Fault strategies: small callables consulted when an attempt starts, like tenacity's strategies.

A *gate* fault decides before the request reaches the server: let it through (``PASS``), drop it
into a black hole (``BLACKHOLE``), or fail it at once with an error code (or answer it at once
with a value: an answer's code, :class:`~retrysim.sim.failures.Answers`). A *latency* fault adds
seconds to the service time; a *reset* fault lets the request through but cuts the client off
part-way. Capacity loss is applied by the queue server itself (``capacity_windows``). Every
random decision is a counter-based draw on the fault's own stream."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, assert_never

from retrysim.errors import BadInputError
from retrysim.model.faults import (
    EveryNth,
    FirstN,
    LimitData,
    PacketLoss,
    Slicer,
    SlowClose,
    distinct_answers,
)
from retrysim.model.scenario import (
    CapacityLoss,
    Constant,
    Fault,
    Flaky,
    LatencySpike,
    Outage,
    RecoveryRamp,
    Reset,
)
from retrysim.sim.call import CALL_KEY_SHIFT
from retrysim.sim.failures import CODES, Answers
from retrysim.sim.latency import Sampler, sampler
from retrysim.sim.streams import (
    BLAST_RADIUS,
    FAULT_BASE,
    LOSS_SEGMENT,
    RESET_POINT,
    stream_key,
    unit,
)

PASS = 0
BLACKHOLE = -1


class NotSimulatedError(BadInputError):
    """A fault the simulator cannot model (the proxy can): the message says which and why."""


class Gate:
    """Base of faults that decide at the door: returns PASS, BLACKHOLE or an error code.

    ``hint`` is the Retry-After seconds its failure carries (a RateLimited fault's), or None.
    """

    start: float
    end: float
    hint: float | None

    def __call__(self, t: float, call_key: int, attempt: int) -> int:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class OutageGate(Gate):
    start: float
    end: float
    verdict: int  # BLACKHOLE or the error code
    hint: float | None = None

    def __call__(self, t: float, call_key: int, attempt: int) -> int:
        return self.verdict if self.start <= t < self.end else PASS


@dataclass(frozen=True, slots=True)
class FlakyGate(Gate):
    start: float
    end: float
    probability: float
    code: int
    key: int
    hint: float | None = None

    def __call__(self, t: float, call_key: int, attempt: int) -> int:
        if self.start <= t < self.end and unit(self.key, call_key, attempt) < self.probability:
            return self.code
        return PASS


@dataclass(frozen=True, slots=True)
class RampGate(Gate):
    """Failure probability falls linearly from ``probability`` at start to 0 at end."""

    start: float
    end: float
    probability: float
    code: int
    key: int
    hint: float | None = None

    def __call__(self, t: float, call_key: int, attempt: int) -> int:
        if not self.start <= t < self.end:
            return PASS
        p = self.probability * (self.end - t) / (self.end - self.start)
        return self.code if unit(self.key, call_key, attempt) < p else PASS


class CountGate(Gate):
    """Fails attempts by their place in the count of those that reached it in the window (and,
    recurring, in this recurrence): ``first`` fails the first ``n``; else every ``n``-th fails.

    Stateful, unlike the other strategies: the engine asks each gate once per attempt, in the
    order the attempts start (deterministic), and a plan is compiled afresh for each run. The
    verdict is kept for the attempt last asked, so that :meth:`FaultPlan.hint` asking again
    counts nothing twice.
    """

    def __init__(
        self,
        start: float,
        end: float,
        n: int,
        code: int,
        hint: float | None,
        *,
        first: bool,
        every: float = math.inf,
    ) -> None:
        self.start, self.end, self.n, self.code, self.hint = start, end, n, code, hint
        self.first, self.every = first, every
        self._count = 0
        self._occurrence = 0
        self._asked: tuple[float, int, int, int] | None = None

    def __call__(self, t: float, call_key: int, attempt: int) -> int:
        asked = self._asked
        if asked is not None and asked[:3] == (t, call_key, attempt):
            return asked[3]
        verdict = PASS
        if self.start <= t < self.end:
            occurrence = 0 if math.isinf(self.every) else int((t - self.start) // self.every)
            if occurrence != self._occurrence:
                self._occurrence, self._count = occurrence, 0
            self._count += 1
            hit = self._count <= self.n if self.first else self._count % self.n == 0
            verdict = self.code if hit else PASS
        self._asked = (t, call_key, attempt, verdict)
        return verdict


@dataclass(frozen=True, slots=True)
class Narrowed:
    """A strategy limited in time (on for ``duration`` seconds every ``every`` seconds from its
    ``start``) or to some clients (their indices, or a ``share`` drawn once per client on
    ``share_key``): elsewhere it answers ``off`` (PASS, no extra seconds, no reset) without
    asking the strategy, so a count counts only what it hits. Its ``hint`` and ``code``, which
    the plan reads, are the wrapped strategy's."""

    inner: Any
    off: Any
    every: float
    duration: float
    clients: frozenset[int] | None
    share: float
    share_key: int

    @property
    def hint(self) -> float | None:
        """The wrapped gate's Retry-After hint (what ``FaultPlan`` reads of every gate)."""
        hint: float | None = getattr(self.inner, "hint", None)
        return hint

    @property
    def code(self) -> int:
        """The wrapped reset rule's code (what ``FaultPlan.reset_share`` reads of a rule)."""
        return int(self.inner.code)

    def __call__(self, t: float, call_key: int, attempt: int) -> Any:
        if self.every != math.inf and (t - self.inner.start) % self.every >= self.duration:
            return self.off
        client = call_key >> CALL_KEY_SHIFT
        if self.clients is not None and client not in self.clients:
            return self.off
        if self.share < 1.0 and unit(self.share_key, client) >= self.share:
            return self.off
        return self.inner(t, call_key, attempt)


#: A segment lost this many times in a row is given up on (Linux's tcp_retries2 is 15): its
#: delay is then as long as it gets, and only the client's timeout is shorter.
MAX_RETRANSMISSIONS = 15


def retransmissions(u: float, probability: float) -> int:
    """How many times in a row a segment is lost, for the uniform draw ``u`` in [0, 1): k with
    chance ``probability**k * (1 - probability)``, by inverting the geometric law's tail
    (P(K >= k) = probability**k); at most :data:`MAX_RETRANSMISSIONS`."""
    if probability <= 0.0:
        return 0
    tail = 1.0 - u  # in (0, 1]: a draw of 0 would otherwise be an infinite run of losses
    return min(MAX_RETRANSMISSIONS, int(math.log(tail) / math.log(probability)))


def loss_delay(k: int, rto: float) -> float:
    """Seconds a segment lost ``k`` times in a row arrives late: rto + 2 rto + ... (doubling)."""
    return rto * (2.0**k - 1.0)


@dataclass(frozen=True, slots=True)
class LossDelay:
    """Packet loss: the seconds the lost transmissions of an attempt's segments add."""

    start: float
    end: float
    probability: float
    rto: float
    segment_keys: tuple[int, ...]  # one stream per segment

    def __call__(self, t: float, call_key: int, attempt: int) -> float:
        if not self.start <= t < self.end:
            return 0.0
        total = 0.0
        for key in self.segment_keys:
            k = retransmissions(unit(key, call_key, attempt), self.probability)
            if k:
                total += loss_delay(k, self.rto)
        return total


@dataclass(frozen=True, slots=True)
class Spike:
    start: float
    end: float
    extra: Sampler
    key: int

    def __call__(self, t: float, call_key: int, attempt: int) -> float:
        if self.start <= t < self.end:
            return self.extra(unit(self.key, call_key, attempt))
        return 0.0


@dataclass(frozen=True, slots=True)
class ResetRule:
    """With ``probability``, the client sees ``code`` after a uniform share of the latency."""

    start: float
    end: float
    probability: float
    code: int
    key: int
    share_key: int  # its own stream for where in the request the reset hits

    def __call__(self, t: float, call_key: int, attempt: int) -> float | None:
        """The share of the latency after which the reset hits, or None for no reset."""
        if self.start <= t < self.end and unit(self.key, call_key, attempt) < self.probability:
            return unit(self.share_key, call_key, attempt)
        return None


@dataclass(frozen=True)
class FaultPlan:
    """All of a scenario's faults, compiled into the strategy lists the engine consults."""

    gates: tuple[Gate, ...] = ()
    spikes: tuple[Callable[[float, int, int], float], ...] = ()  # Spike, LossDelay
    resets: tuple[ResetRule, ...] = ()
    capacity_windows: tuple[tuple[float, float, int], ...] = ()
    #: Some gate carries a Retry-After hint (else hint() is always None): derived from the
    #: gates, once, so a plan built by hand (a subset of gates) says it right too.
    hinted: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hinted", any(gate.hint is not None for gate in self.gates))

    @property
    def empty(self) -> bool:
        return not (self.gates or self.spikes or self.resets or self.capacity_windows)

    def gate(self, t: float, call_key: int, attempt: int) -> int:
        for gate in self.gates:
            verdict = gate(t, call_key, attempt)
            if verdict != PASS:
                return verdict
        return PASS

    def hint(self, t: float, call_key: int, attempt: int) -> float | None:
        """The Retry-After hint of the gate that failed this attempt (None: none, or passed)."""
        for gate in self.gates:
            if gate(t, call_key, attempt) != PASS:
                return gate.hint
        return None

    def extra_latency(self, t: float, call_key: int, attempt: int) -> float:
        return sum(spike(t, call_key, attempt) for spike in self.spikes)

    def reset_share(self, t: float, call_key: int, attempt: int) -> tuple[float, int] | None:
        for rule in self.resets:
            share = rule(t, call_key, attempt)
            if share is not None:
                return share, rule.code
        return None


def compile_faults(
    faults: Sequence[Fault], seed: int, keep: Callable[[Fault], bool] | None = None
) -> FaultPlan:
    """Turn validated fault specs into strategies, each with its own random stream.

    ``keep``: compile only the faults it says yes to, each still drawing on the stream of its
    place among all ``faults`` (an HTTP server applying its own faults draws as the simulator).

    Every member of the ``Fault`` union has its case (the match is exhaustive, checked by
    mypy through ``assert_never``), so a new kind of fault cannot validate and then do
    nothing.
    """
    gates: list[Any] = []
    spikes: list[Any] = []
    resets: list[Any] = []
    capacity: list[tuple[float, float, int]] = []
    # A gate's answer is recorded under its own code: the scenario's answers come in this
    # order (faults first), so these are the codes of the run's Answers table too.
    answers = Answers(distinct_answers(getattr(fault, "answer", None) for fault in faults))

    def code(error: str, answer: int | str | None) -> int:
        return CODES[error] if answer is None else answers.code(answer)

    for index, fault in enumerate(faults):
        if keep is not None and not keep(fault):
            continue
        key = stream_key(seed, FAULT_BASE + index)
        end = fault.until
        every, duration = fault.recurrence or (math.inf, math.inf)
        _check_simulated(fault, index)
        narrowed = _narrowing(fault, key)
        match fault:
            case Outage(start=start, mode=mode, error=error, retry_after=hint, answer=answer):
                verdict = BLACKHOLE if mode == "blackhole" else code(error, answer)
                gates.append(narrowed(OutageGate(start, end, verdict, hint), PASS))
            case Flaky(start=start, probability=p, error=error, retry_after=hint, answer=answer):
                flaky = FlakyGate(start, end, p, code(error, answer), key, hint)
                gates.append(narrowed(flaky, PASS))
            case RecoveryRamp(
                start=start, probability=p, error=error, retry_after=hint, answer=answer
            ):
                ramp = RampGate(start, end, p, code(error, answer), key, hint)
                gates.append(narrowed(ramp, PASS))
            case LatencySpike(start=start, extra=extra):
                spikes.append(narrowed(Spike(start, end, sampler(extra), key), 0.0))
            case Reset(start=start, probability=p, error=error):
                rule = ResetRule(start, end, p, CODES[error], key, stream_key(key, RESET_POINT))
                resets.append(narrowed(rule, None))
            case CapacityLoss(start=start, slots=slots):
                capacity += _occurrences(start, end, every, duration, slots)
            case PacketLoss(start=start, probability=p, rto=rto, segments=segments):
                keys = tuple(stream_key(key, LOSS_SEGMENT + s) for s in range(segments))
                spikes.append(narrowed(LossDelay(start, end, p, rto, keys), 0.0))
            case FirstN(start=start, n=n, error=error, retry_after=hint, answer=answer):
                verdict = code(error, answer)
                count = CountGate(start, end, n, verdict, hint, first=True, every=every)
                gates.append(narrowed(count, PASS))
            case EveryNth(start=start, n=n, error=error, retry_after=hint, answer=answer):
                verdict = code(error, answer)
                count = CountGate(start, end, n, verdict, hint, first=False, every=every)
                gates.append(narrowed(count, PASS))
            case Slicer(start=start, average_size=size, delay=delay, answer_bytes=answer):
                pieces = math.ceil((answer or size) / size)
                spike = Spike(start, end, sampler(Constant(value=(pieces - 1) * delay)), key)
                spikes.append(narrowed(spike, 0.0))
            case SlowClose() | LimitData():  # refused by _check_simulated above
                pass
            case _:  # a Fault kind without a case: mypy flags it here; at run time it raises
                assert_never(fault)
    return FaultPlan(tuple(gates), tuple(spikes), tuple(resets), tuple(capacity))


def _check_simulated(fault: Fault, index: int) -> None:
    """Refuse, in one line, what the simulator cannot model and the proxy can: a slow close, a
    data limit, a slicer without its answer's size, a share of connections; and a capacity loss
    given clients (it is the server's, every client's alike)."""
    why = None
    if isinstance(fault, SlowClose):
        why = "slow_close holds a connection's close, which no simulated attempt waits for"
    elif isinstance(fault, LimitData):
        why = "limit_data closes a connection after its bytes; the simulator counts none"
    elif isinstance(fault, Slicer) and fault.answer_bytes is None:
        why = "a slicer needs answer_bytes for the simulator to count an answer's pieces"
    elif fault.connections is not None:
        why = "connections is the proxy's blast radius (a simulated attempt has no "
        why += "connection to pick); use clients"
    elif isinstance(fault, CapacityLoss) and fault.clients is not None:
        raise NotSimulatedError(
            f"faults.{index}.clients: a capacity loss is the server's, it hits every client alike"
        )
    if why is not None:
        raise NotSimulatedError(f"faults.{index}: {why}; run it for real with retrysim chaos")


def _narrowing(fault: Fault, key: int) -> Callable[[Any, Any], Any]:
    """How the strategies of ``fault`` are limited: a function of (strategy, what it answers
    when off) giving the strategy itself, or it wrapped in :class:`Narrowed` when the fault
    recurs or hits only some clients (a count gate then counts only what it hits)."""
    every, duration = fault.recurrence or (math.inf, math.inf)
    listed = fault.clients if isinstance(fault.clients, list) else None
    share = fault.clients if isinstance(fault.clients, float) else 1.0
    if math.isinf(every) and listed is None and share == 1.0:
        return lambda strategy, off: strategy

    def narrowed(strategy: Any, off: Any) -> Narrowed:
        radius = None if listed is None else frozenset(listed)
        return Narrowed(
            strategy, off, every, duration, radius, share, stream_key(key, BLAST_RADIUS)
        )

    return narrowed


def _occurrences(
    start: float, end: float, every: float, duration: float, slots: int
) -> list[tuple[float, float, int]]:
    """A capacity loss's windows: one, or one per recurrence (its end is required)."""
    if math.isinf(every):
        return [(start, end, slots)]
    count = math.ceil((end - start) / every)
    return [
        (start + k * every, min(end, start + k * every + duration), slots) for k in range(count)
    ]
