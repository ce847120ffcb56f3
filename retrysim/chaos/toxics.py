"""The proxy's faults ("toxics", as Toxiproxy calls them) and how a scenario's faults become them.

Each toxic has a window relative to the proxy's start (``start``/``end`` in seconds, ``end``
None: until the proxy stops) and a ``toxicity``: the chance it applies to a connection, drawn
once per connection, as in Toxiproxy. ``stream`` is Toxiproxy's direction: ``upstream`` is
client -> service, ``downstream`` service -> client (the default, as in Toxiproxy).

Units are retrysim's, not Toxiproxy's: seconds (Toxiproxy's latency, jitter and timeouts are
milliseconds) and bytes per second (Toxiproxy's bandwidth ``rate`` is KB/s).
:func:`from_toxiproxy` converts a Toxiproxy toxic's JSON.

Standard library only, apart from the scenario models a schedule is built from.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from retrysim.errors import BadInputError

if TYPE_CHECKING:
    from retrysim.model.scenario import Fault, Scenario

Stream = Literal["upstream", "downstream"]
STREAMS: tuple[Stream, ...] = ("upstream", "downstream")


class ChaosError(BadInputError):
    """A toxic, a schedule or an upstream the proxy cannot use; the message says why."""


@dataclass(frozen=True, kw_only=True)
class _Toxic:
    start: float = 0.0
    end: float | None = None
    toxicity: float = 1.0

    def __post_init__(self) -> None:
        name = type(self).__name__
        if not (math.isfinite(self.start) and self.start >= 0):
            raise ChaosError(f"{name}: start must be a number >= 0, not {self.start!r}")
        if self.end is not None and not self.end > self.start:
            raise ChaosError(f"{name}: end ({self.end!r}) must be > start ({self.start!r})")
        if not 0.0 <= self.toxicity <= 1.0:
            raise ChaosError(f"{name}: toxicity must be in [0, 1], not {self.toxicity!r}")

    @property
    def until(self) -> float:
        """The end of the window as a number (infinity when open-ended)."""
        return math.inf if self.end is None else self.end

    def active(self, elapsed: float) -> bool:
        """Whether ``elapsed`` seconds after the proxy's start fall in the window."""
        return self.start <= elapsed < self.until

    def chance(self, elapsed: float) -> float:
        """The toxicity at ``elapsed`` (constant but for :class:`Down`'s ramp)."""
        return self.toxicity


@dataclass(frozen=True, kw_only=True)
class Down(_Toxic):
    """The service is down: a new connection is reset at once (RST), never forwarded.

    Toxiproxy's ``enabled = false`` on a proxy. ``close_existing``: when the window opens, the
    connections already open are reset too (each with ``toxicity``). ``toxicity_end``: the
    toxicity falls (or rises) linearly to this at ``end``, a recovery ramp.
    """

    close_existing: bool = True
    toxicity_end: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.toxicity_end is not None:
            if self.end is None:
                raise ChaosError("Down: toxicity_end needs an end")
            if not 0.0 <= self.toxicity_end <= 1.0:
                raise ChaosError(f"Down: toxicity_end must be in [0, 1], not {self.toxicity_end}")

    def chance(self, elapsed: float) -> float:
        if self.toxicity_end is None or self.end is None:
            return self.toxicity
        share = min(1.0, max(0.0, (elapsed - self.start) / (self.end - self.start)))
        return self.toxicity + (self.toxicity_end - self.toxicity) * share


@dataclass(frozen=True, kw_only=True)
class Blackhole(_Toxic):
    """Accept, never answer: data is read and dropped; the client's own timeout ends it.

    Toxiproxy's ``timeout`` toxic with ``timeout = 0``. A connection opened in the window never
    reaches the service (it stays a black hole until the client gives up or the proxy stops);
    on a connection opened before, the chunks that arrive in the window are dropped.
    """


@dataclass(frozen=True, kw_only=True)
class ResetPeer(_Toxic):
    """Reset the connection (TCP RST, SO_LINGER 0) once ``bytes`` bytes have passed ``stream``.

    Toxiproxy's ``reset_peer``. ``bytes = 0`` on ``downstream`` (the default): the request
    reaches the service, which does the work, and the client is reset before any of the answer,
    as a retrysim ``reset`` fault. ``bytes = n``: the first ``n`` bytes get through, then RST.
    ``timeout > 0`` (Toxiproxy's, in seconds here): instead of counting bytes, RST ``timeout``
    seconds after it starts applying to a connection (when it opens, or when the window does),
    whatever has flowed, if the window is still open then.
    """

    stream: Stream = "downstream"
    bytes: int = 0
    timeout: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_stream(self, self.stream)
        if self.bytes < 0:
            raise ChaosError(f"ResetPeer: bytes must be >= 0, not {self.bytes}")
        if not (math.isfinite(self.timeout) and self.timeout >= 0):
            raise ChaosError(f"ResetPeer: timeout must be >= 0 seconds, not {self.timeout!r}")


@dataclass(frozen=True, kw_only=True)
class Latency(_Toxic):
    """Delay each chunk by ``latency`` ± ``jitter`` seconds (uniform), order kept per stream.

    Toxiproxy's ``latency`` (there in milliseconds). ``draw``, when given, replaces latency ±
    jitter: a function from a uniform draw in [0, 1) to seconds (a scenario's distribution).
    """

    stream: Stream = "downstream"
    latency: float = 0.0
    jitter: float = 0.0
    draw: Callable[[float], float] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_stream(self, self.stream)
        if not (self.latency >= 0 and self.jitter >= 0):
            raise ChaosError("Latency: latency and jitter must be >= 0 seconds")

    def delay(self, u: float) -> float:
        """The delay for a chunk given the uniform draw ``u``, never below 0."""
        if self.draw is not None:
            return max(0.0, self.draw(u))
        return max(0.0, self.latency + self.jitter * (2.0 * u - 1.0))


@dataclass(frozen=True, kw_only=True)
class Bandwidth(_Toxic):
    """At most ``rate`` bytes per second through ``stream`` (Toxiproxy's is KB/s)."""

    stream: Stream = "downstream"
    rate: float = 1e6

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_stream(self, self.stream)
        if not self.rate > 0:
            raise ChaosError(f"Bandwidth: rate must be > 0 bytes/s, not {self.rate!r}")


Toxic = Down | Blackhole | ResetPeer | Latency | Bandwidth


def _check_stream(toxic: object, stream: str) -> None:
    if stream not in STREAMS:
        raise ChaosError(
            f"{type(toxic).__name__}: stream must be 'upstream' or 'downstream', not {stream!r}"
        )


# --- from a scenario -------------------------------------------------------------------------


def toxics_from_scenario(faults: Scenario | Sequence[Fault]) -> tuple[Toxic, ...]:
    """A scenario's ``[[faults]]`` (a ``Scenario`` or its ``faults``) as the proxy's toxics.

    outage refuse -> Down, outage blackhole -> Blackhole, flaky -> Down with the probability
    per new connection (open ones untouched), recovery_ramp -> Down whose toxicity falls to 0,
    latency_spike -> Latency downstream (its distribution per chunk), reset -> ResetPeer at the
    answer's first byte. capacity_loss is the queue server's, not the network's: an error.
    An outage's or flaky's ``error`` is what the client library raises, not the proxy's to pick.
    """
    from retrysim.model.scenario import (
        Constant,
        Flaky,
        LatencySpike,
        Outage,
        RecoveryRamp,
        Reset,
        Scenario,
        UniformLatency,
    )
    from retrysim.sim.latency import sampler

    listed = faults.faults if isinstance(faults, Scenario) else faults
    toxics: list[Toxic] = []
    for index, fault in enumerate(listed):
        start, end = fault.start, fault.end
        if getattr(fault, "answer", None) is not None:
            raise ChaosError(
                f"faults.{index}.answer: a real dependency answers what it answers; the proxy "
                "can only fail or delay connections (give the fault an error instead)"
            )
        match fault:
            case Outage(mode="blackhole"):
                toxics.append(Blackhole(start=start, end=end))
            case Outage():
                toxics.append(Down(start=start, end=end))
            case Flaky(probability=p):
                toxics.append(Down(start=start, end=end, toxicity=p, close_existing=False))
            case RecoveryRamp(probability=p):
                toxics.append(
                    Down(start=start, end=end, toxicity=p, toxicity_end=0.0, close_existing=False)
                )
            case Reset(probability=p):
                toxics.append(ResetPeer(start=start, end=end, toxicity=p))
            case LatencySpike(extra=Constant(value=value)):
                toxics.append(Latency(start=start, end=end, latency=value))
            case LatencySpike(extra=UniformLatency(low=low, high=high)):
                toxics.append(
                    Latency(start=start, end=end, latency=(low + high) / 2, jitter=(high - low) / 2)
                )
            case LatencySpike(extra=extra):
                toxics.append(Latency(start=start, end=end, draw=sampler(extra)))
            case _:
                raise ChaosError(
                    f"faults.{index}: the proxy cannot apply a {fault.kind!r} fault (it applies "
                    "outage, flaky, recovery_ramp, latency_spike and reset)"
                )
    return tuple(toxics)


# --- from Toxiproxy's JSON -------------------------------------------------------------------


def from_toxiproxy(toxic: Mapping[str, Any], start: float = 0.0, end: float | None = None) -> Toxic:
    """A Toxiproxy toxic's JSON (``{"type": "latency", "attributes": {"latency": 50}}``) as ours.

    Converts Toxiproxy's units (ms, KB/s) to seconds and bytes/s. Knows ``latency``,
    ``bandwidth``, ``reset_peer`` and ``timeout`` (with ``timeout = 0`` only: a black hole);
    any other type is an error naming the ones it knows.
    """
    kind = toxic.get("type")
    attributes: Mapping[str, Any] = toxic.get("attributes") or {}
    common: dict[str, Any] = {
        "start": start,
        "end": end,
        "toxicity": float(toxic.get("toxicity", 1.0)),
    }
    stream = toxic.get("stream", "downstream")
    if kind == "latency":
        return Latency(
            **common,
            stream=stream,
            latency=float(attributes.get("latency", 0)) / 1000,
            jitter=float(attributes.get("jitter", 0)) / 1000,
        )
    if kind == "bandwidth":
        return Bandwidth(**common, stream=stream, rate=float(attributes.get("rate", 0)) * 1000)
    if kind == "reset_peer":
        timeout = float(attributes.get("timeout", 0)) / 1000
        return ResetPeer(**common, stream=stream, timeout=timeout)
    if kind == "timeout" and float(attributes.get("timeout", 0)) != 0:
        raise ChaosError("toxiproxy timeout: only timeout = 0 (a black hole) is supported")
    if kind == "timeout":
        return Blackhole(**common)
    raise ChaosError(
        f"toxiproxy toxic type {kind!r} is not supported (latency, bandwidth, reset_peer, timeout)"
    )
