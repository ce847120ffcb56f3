"""The proxy's faults ("toxics", as Toxiproxy calls them) and how a scenario's faults become them.

Each toxic has a window relative to the proxy's start (``start``/``end`` in seconds, ``end``
None: until the proxy stops) and a ``toxicity``: the chance it applies to a connection, drawn
once per connection, as in Toxiproxy. ``stream`` is Toxiproxy's direction: ``upstream`` is
client -> service, ``downstream`` service -> client (the default, as in Toxiproxy).

Units are retrysim's, not Toxiproxy's: seconds (Toxiproxy's latency, jitter and timeouts are
milliseconds) and bytes per second (Toxiproxy's bandwidth ``rate`` is KB/s).
:mod:`retrysim.chaos.toxiproxy_json` converts a toxic to and from Toxiproxy's JSON.

Standard library only, apart from the scenario models a schedule is built from.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
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
    #: The window recurs: on for ``duration`` seconds every ``every`` seconds from ``start``
    #: (a scenario fault's ``every`` and ``for``); both None: one window.
    every: float | None = None
    duration: float | None = None
    #: The connections it applies to, by their numbers in the order opened (None: any, each
    #: with ``toxicity``): a fault's blast radius given as a list.
    connections: frozenset[int] | None = None
    #: The index of the scenario fault it was made from: it draws on that fault's stream, as
    #: the simulator does (a packet loss is two toxics of one fault). None: its place among
    #: the proxy's toxics.
    source: int | None = None

    def __post_init__(self) -> None:
        name = type(self).__name__
        if not (math.isfinite(self.start) and self.start >= 0):
            raise ChaosError(f"{name}: start must be a number >= 0, not {self.start!r}")
        if self.end is not None and not self.end > self.start:
            raise ChaosError(f"{name}: end ({self.end!r}) must be > start ({self.start!r})")
        if not 0.0 <= self.toxicity <= 1.0:
            raise ChaosError(f"{name}: toxicity must be in [0, 1], not {self.toxicity!r}")
        if (self.every is None) != (self.duration is None):
            raise ChaosError(f"{name}: every and duration go together")
        if (
            self.every is not None
            and self.duration is not None
            and not (0 < self.duration <= self.every < math.inf)
        ):
            raise ChaosError(
                f"{name}: need 0 < duration <= every, not {self.duration!r}, {self.every!r}"
            )

    @property
    def until(self) -> float:
        """The end of the window as a number (infinity when open-ended)."""
        return math.inf if self.end is None else self.end

    def active(self, elapsed: float) -> bool:
        """Whether ``elapsed`` seconds after the proxy's start fall in the window (and, when it
        recurs, in the on part of a recurrence)."""
        if not self.start <= elapsed < self.until:
            return False
        if self.every is None or self.duration is None:
            return True
        return (elapsed - self.start) % self.every < self.duration

    def occurrence(self, elapsed: float) -> int:
        """Which recurrence ``elapsed`` falls in (0 for a window that does not recur)."""
        if self.every is None:
            return 0
        return int((elapsed - self.start) // self.every)

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


@dataclass(frozen=True, kw_only=True)
class PacketLoss(_Toxic):
    """Each chunk through ``stream`` is a segment whose transmissions are lost with
    ``probability``: a chunk lost k times in a row is held ``rto * (2**k - 1)`` seconds (TCP's
    doubling retransmission timeout), order kept. The simulator's ``packet_loss`` fault, with
    one definition of the law (``retrysim.sim.faults.retransmissions``) and the same streams:
    upstream chunks draw as an attempt's request segment, downstream ones as its answer's."""

    stream: Stream = "downstream"
    probability: float = 0.0
    rto: float = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_stream(self, self.stream)
        if not 0.0 <= self.probability < 1.0:
            raise ChaosError(f"PacketLoss: probability must be in [0, 1), not {self.probability}")
        if not (math.isfinite(self.rto) and self.rto > 0):
            raise ChaosError(f"PacketLoss: rto must be > 0 seconds, not {self.rto!r}")


@dataclass(frozen=True, kw_only=True)
class FirstN(_Toxic):
    """The first ``n`` requests (chunks the client sends) in the window reset their connection
    before they reach the service; with ``every``, the count starts again in each recurrence.
    A protocol's handshake on a new connection is a request too."""

    n: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n < 1:
            raise ChaosError(f"FirstN: n must be >= 1, not {self.n}")

    def hits(self, count: int) -> bool:
        """Whether the ``count``-th request (from 1) of a recurrence fails."""
        return count <= self.n


@dataclass(frozen=True, kw_only=True)
class EveryNth(_Toxic):
    """Every ``n``-th request in the window (the n-th, 2n-th, ...) resets its connection before
    it reaches the service."""

    n: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n < 2:
            raise ChaosError(f"EveryNth: n must be >= 2, not {self.n}")

    def hits(self, count: int) -> bool:
        """Whether the ``count``-th request (from 1) of a recurrence fails."""
        return count % self.n == 0


@dataclass(frozen=True, kw_only=True)
class Slicer(_Toxic):
    """Cut each chunk through ``stream`` into pieces of ``average_size`` ± ``size_variation``
    bytes (uniform), written ``delay`` seconds apart: Toxiproxy's ``slicer`` (its delay is in
    microseconds). An answer of B bytes arrives ``(ceil(B / average_size) - 1) * delay`` later,
    what the simulator's ``slicer`` fault adds."""

    stream: Stream = "downstream"
    average_size: int = 1
    size_variation: int = 0
    delay: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_stream(self, self.stream)
        if not 0 <= self.size_variation < self.average_size:
            raise ChaosError("Slicer: need 0 <= size_variation < average_size (bytes)")
        if not (math.isfinite(self.delay) and self.delay >= 0):
            raise ChaosError(f"Slicer: delay must be >= 0 seconds, not {self.delay!r}")


@dataclass(frozen=True, kw_only=True)
class SlowClose(_Toxic):
    """Hold the close of ``stream`` (its FIN) ``delay`` seconds after the data ends:
    Toxiproxy's ``slow_close`` (there in milliseconds)."""

    stream: Stream = "downstream"
    delay: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_stream(self, self.stream)
        if not (math.isfinite(self.delay) and self.delay >= 0):
            raise ChaosError(f"SlowClose: delay must be >= 0 seconds, not {self.delay!r}")


@dataclass(frozen=True, kw_only=True)
class LimitData(_Toxic):
    """Close the connection (a FIN each way, not a reset) once ``bytes`` bytes have passed
    ``stream``: Toxiproxy's ``limit_data``. The chunk that crosses the limit is cut at it."""

    stream: Stream = "downstream"
    bytes: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_stream(self, self.stream)
        if self.bytes < 0:
            raise ChaosError(f"LimitData: bytes must be >= 0, not {self.bytes}")


Toxic = (
    Down
    | Blackhole
    | ResetPeer
    | Latency
    | Bandwidth
    | PacketLoss
    | FirstN
    | EveryNth
    | Slicer
    | SlowClose
    | LimitData
)
#: The toxic classes, for isinstance checks (a union is not a class on every Python).
TOXICS = (
    Down,
    Blackhole,
    ResetPeer,
    Latency,
    Bandwidth,
    PacketLoss,
    FirstN,
    EveryNth,
    Slicer,
    SlowClose,
    LimitData,
)


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
    answer's first byte, packet_loss -> PacketLoss on both streams (request and answer),
    first_n -> FirstN, every_nth -> EveryNth, slicer, slow_close and limit_data -> theirs on
    the answer's stream; a fault's ``every``/``for`` -> the toxics' own ``every``/``duration``,
    its ``connections`` share -> their toxicity times it, a list -> their ``connections``.
    capacity_loss is the queue server's, not the network's, and ``clients`` the simulator's:
    errors. An outage's or flaky's
    ``error`` is what the client library raises, not the proxy's to pick.
    """
    from retrysim.model.scenario import Scenario

    listed = faults.faults if isinstance(faults, Scenario) else faults
    toxics: list[Toxic] = []
    for index, fault in enumerate(listed):
        _check_applicable(fault, index)
        made = [replace(toxic, source=index) for toxic in _toxics_of(fault, index)]
        radius = fault.connections  # its blast radius: a share of the connections, or some
        if isinstance(radius, float):
            made = [replace(toxic, toxicity=toxic.toxicity * radius) for toxic in made]
        elif radius is not None:
            made = [replace(toxic, connections=frozenset(radius)) for toxic in made]
        toxics += made
    return tuple(toxics)


def _toxics_of(fault: Fault, index: int) -> list[Toxic]:
    """The toxics of one fault (several for packet loss: one per direction)."""
    from retrysim.model.faults import EveryNth as EveryNthFault
    from retrysim.model.faults import FirstN as FirstNFault
    from retrysim.model.faults import LimitData as LimitDataFault
    from retrysim.model.faults import PacketLoss as PacketLossFault
    from retrysim.model.faults import Slicer as SlicerFault
    from retrysim.model.faults import SlowClose as SlowCloseFault
    from retrysim.model.scenario import (
        Constant,
        Flaky,
        LatencySpike,
        Outage,
        RecoveryRamp,
        Reset,
        UniformLatency,
    )
    from retrysim.sim.latency import sampler

    every, duration = fault.recurrence or (None, None)
    window: dict[str, Any] = {
        "start": fault.start,
        "end": fault.end,
        "every": every,
        "duration": duration,
    }
    match fault:
        case Outage(mode="blackhole"):
            return [Blackhole(**window)]
        case Outage():
            return [Down(**window)]
        case Flaky(probability=p):
            return [Down(**window, toxicity=p, close_existing=False)]
        case RecoveryRamp(probability=p):
            return [Down(**window, toxicity=p, toxicity_end=0.0, close_existing=False)]
        case Reset(probability=p):
            return [ResetPeer(**window, toxicity=p)]
        case LatencySpike(extra=Constant(value=value)):
            return [Latency(**window, latency=value)]
        case LatencySpike(extra=UniformLatency(low=low, high=high)):
            return [Latency(**window, latency=(low + high) / 2, jitter=(high - low) / 2)]
        case LatencySpike(extra=extra):
            return [Latency(**window, draw=sampler(extra))]
        case PacketLossFault(probability=p, rto=rto):  # an attempt's request and its answer
            return [PacketLoss(**window, stream=s, probability=p, rto=rto) for s in STREAMS]
        case FirstNFault(n=n):
            return [FirstN(**window, n=n)]
        case EveryNthFault(n=n):
            return [EveryNth(**window, n=n)]
        case SlicerFault(average_size=size, size_variation=variation, delay=delay):
            return [Slicer(**window, average_size=size, size_variation=variation, delay=delay)]
        case SlowCloseFault(delay=delay):
            return [SlowClose(**window, delay=delay)]
        case LimitDataFault(bytes=limit):
            return [LimitData(**window, bytes=limit)]
    raise ChaosError(
        f"faults.{index}: the proxy cannot apply a {fault.kind!r} fault (it applies every kind "
        "but capacity_loss, which is the queue server's)"
    )


def _check_applicable(fault: Fault, index: int) -> None:
    """Refuse, in one line, the parts of a fault the proxy cannot apply: the clients it hits
    (the proxy sees connections, not clients) and replicas other than the one it fronts."""
    if getattr(fault, "answer", None) is not None:
        raise ChaosError(
            f"faults.{index}.answer: a real dependency answers what it answers; the proxy "
            "can only fail or delay connections (give the fault an error instead)"
        )
    if fault.clients is not None:
        raise ChaosError(
            f"faults.{index}.clients: the proxy sees connections, not clients; give its blast "
            "radius as connections (a share) for a real run"
        )
    if fault.replicas is not None and 0 not in fault.replicas:
        raise ChaosError(
            f"faults.{index}.replicas: the proxy fronts one service (replica 0); a fault on "
            f"replicas {fault.replicas} only would not apply to it"
        )
