"""Fault strategies: small callables consulted when an attempt starts, like tenacity's strategies.

A *gate* fault decides before the request reaches the server: let it through (``PASS``), drop it
into a black hole (``BLACKHOLE``), or fail it at once with an error code (or answer it at once
with a value: an answer's code, :class:`~retrysim.sim.failures.Answers`). A *latency* fault adds
seconds to the service time; a *reset* fault lets the request through but cuts the client off
part-way. Capacity loss is applied by the queue server itself (``capacity_windows``). Every
random decision is a counter-based draw on the fault's own stream."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import assert_never

from retrysim.model.faults import distinct_answers
from retrysim.model.scenario import (
    CapacityLoss,
    Fault,
    Flaky,
    LatencySpike,
    Outage,
    RecoveryRamp,
    Reset,
)
from retrysim.sim.failures import CODES, Answers
from retrysim.sim.latency import Sampler, sampler
from retrysim.sim.streams import FAULT_BASE, RESET_POINT, stream_key, unit

PASS = 0
BLACKHOLE = -1


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
    spikes: tuple[Spike, ...] = ()
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


def compile_faults(faults: Sequence[Fault], seed: int) -> FaultPlan:
    """Turn validated fault specs into strategies, each with its own random stream.

    Every member of the ``Fault`` union has its case (the match is exhaustive, checked by
    mypy through ``assert_never``), so a new kind of fault cannot validate and then do
    nothing.
    """
    gates: list[Gate] = []
    spikes: list[Spike] = []
    resets: list[ResetRule] = []
    capacity: list[tuple[float, float, int]] = []
    # A gate's answer is recorded under its own code: the scenario's answers come in this
    # order (faults first), so these are the codes of the run's Answers table too.
    answers = Answers(distinct_answers(getattr(fault, "answer", None) for fault in faults))

    def code(error: str, answer: int | str | None) -> int:
        return CODES[error] if answer is None else answers.code(answer)

    for index, fault in enumerate(faults):
        key = stream_key(seed, FAULT_BASE + index)
        end = fault.until
        match fault:
            case Outage(start=start, mode=mode, error=error, retry_after=hint, answer=answer):
                verdict = BLACKHOLE if mode == "blackhole" else code(error, answer)
                gates.append(OutageGate(start, end, verdict, hint))
            case Flaky(start=start, probability=p, error=error, retry_after=hint, answer=answer):
                gates.append(FlakyGate(start, end, p, code(error, answer), key, hint))
            case RecoveryRamp(
                start=start, probability=p, error=error, retry_after=hint, answer=answer
            ):
                gates.append(RampGate(start, end, p, code(error, answer), key, hint))
            case LatencySpike(start=start, extra=extra):
                spikes.append(Spike(start, end, sampler(extra), key))
            case Reset(start=start, probability=p, error=error):
                resets.append(
                    ResetRule(start, end, p, CODES[error], key, stream_key(key, RESET_POINT))
                )
            case CapacityLoss(start=start, slots=slots):
                capacity.append((start, end, slots))
            case _:  # a Fault kind without a case: mypy flags it here; at run time it raises
                assert_never(fault)
    return FaultPlan(tuple(gates), tuple(spikes), tuple(resets), tuple(capacity))
