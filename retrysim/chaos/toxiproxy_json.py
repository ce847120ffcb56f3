"""A toxic to and from Toxiproxy's JSON, the one place that knows Toxiproxy's names and units.

Toxiproxy's toxic JSON is ``{"name", "type", "stream", "toxicity", "attributes"}`` with times in
milliseconds and bandwidth in KB/s; ours are seconds and bytes/s. The types both have:
``latency`` (latency, jitter), ``bandwidth`` (rate), ``reset_peer`` (timeout), ``timeout``
(with timeout 0 only: a black hole), ``slicer`` (average_size, size_variation, delay in
microseconds), ``slow_close`` (delay) and ``limit_data`` (bytes). retrysim's own, under their
scenario names, for a client of ``retrysim proxy`` that wants them: ``packet_loss``
(probability, rto in ms), ``first_n`` (n) and ``every_nth`` (n). A Toxiproxy proxy's
``enabled = false`` is :class:`Down`, not a toxic. Windows (start, end, recurrence) have no
Toxiproxy form: a toxic is on while it exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from retrysim.chaos.toxics import (
    Bandwidth,
    Blackhole,
    ChaosError,
    EveryNth,
    FirstN,
    Latency,
    LimitData,
    PacketLoss,
    ResetPeer,
    Slicer,
    SlowClose,
    Toxic,
)

#: The types :func:`from_toxiproxy` takes, Toxiproxy's first.
KNOWN_TYPES = (
    "latency",
    "bandwidth",
    "reset_peer",
    "timeout",
    "slicer",
    "slow_close",
    "limit_data",
    "packet_loss",
    "first_n",
    "every_nth",
)


def _number(attributes: Mapping[str, Any], name: str, default: float) -> float:
    value = attributes.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ChaosError(f"toxiproxy attribute {name!r} must be a number, not {value!r}")
    return float(value)


def from_toxiproxy(toxic: Mapping[str, Any], start: float = 0.0, end: float | None = None) -> Toxic:
    """A Toxiproxy toxic's JSON (``{"type": "latency", "attributes": {"latency": 50}}``) as ours.

    Converts Toxiproxy's units (ms, KB/s) to seconds and bytes/s. Any type outside
    :data:`KNOWN_TYPES` is an error naming the ones it knows.
    """
    kind = toxic.get("type")
    attributes: Mapping[str, Any] = toxic.get("attributes") or {}
    toxicity = toxic.get("toxicity", 1.0)
    if isinstance(toxicity, bool) or not isinstance(toxicity, int | float):
        raise ChaosError(f"toxiproxy toxicity must be a number in [0, 1], not {toxicity!r}")
    common: dict[str, Any] = {"start": start, "end": end, "toxicity": float(toxicity)}
    stream = toxic.get("stream", "downstream")
    match kind:
        case "latency":
            latency = _number(attributes, "latency", 0) / 1000
            jitter = _number(attributes, "jitter", 0) / 1000
            return Latency(**common, stream=stream, latency=latency, jitter=jitter)
        case "bandwidth":
            return Bandwidth(**common, stream=stream, rate=_number(attributes, "rate", 0) * 1000)
        case "reset_peer":
            timeout = _number(attributes, "timeout", 0) / 1000
            return ResetPeer(**common, stream=stream, timeout=timeout)
        case "timeout" if _number(attributes, "timeout", 0) != 0:
            raise ChaosError("toxiproxy timeout: only timeout = 0 (a black hole) is supported")
        case "timeout":
            return Blackhole(**common)
        case "slicer":
            return Slicer(
                **common,
                stream=stream,
                average_size=int(_number(attributes, "average_size", 1)),
                size_variation=int(_number(attributes, "size_variation", 0)),
                delay=_number(attributes, "delay", 0) / 1e6,
            )
        case "slow_close":
            delay = _number(attributes, "delay", 0) / 1000
            return SlowClose(**common, stream=stream, delay=delay)
        case "limit_data":
            limit = int(_number(attributes, "bytes", 0))
            return LimitData(**common, stream=stream, bytes=limit)
        case "packet_loss":
            probability = _number(attributes, "probability", 0)
            rto = _number(attributes, "rto", 200) / 1000
            return PacketLoss(**common, stream=stream, probability=probability, rto=rto)
        case "first_n":
            return FirstN(**common, n=int(_number(attributes, "n", 1)))
        case "every_nth":
            return EveryNth(**common, n=int(_number(attributes, "n", 2)))
    raise ChaosError(f"toxiproxy toxic type {kind!r} is not supported ({', '.join(KNOWN_TYPES)})")


def _whole(value: float) -> float | int:
    """``value`` as an int when it is one: Toxiproxy keeps its attributes as Go integers, and
    its JSON decoder refuses ``50.0`` for one."""
    nearest = round(value)
    return nearest if abs(value - nearest) < 1e-9 else value


def to_toxiproxy(toxic: Toxic, name: str | None = None) -> dict[str, Any]:
    """Our toxic as Toxiproxy's JSON (its units), named ``name`` or ``TYPE_STREAM`` as
    Toxiproxy names a toxic by default. Its window does not carry over (see the module's
    docstring); :class:`Down` has no toxic form and is an error."""
    kind: str
    attributes: dict[str, float | int]
    stream = getattr(toxic, "stream", "downstream")
    match toxic:
        case Latency(latency=latency, jitter=jitter, draw=None):
            kind, attributes = "latency", {"latency": latency * 1000, "jitter": jitter * 1000}
        case Latency():
            raise ChaosError("a latency drawn from a distribution has no Toxiproxy form")
        case Bandwidth(rate=rate):
            kind, attributes = "bandwidth", {"rate": rate / 1000}
        case ResetPeer(timeout=timeout):
            kind, attributes = "reset_peer", {"timeout": timeout * 1000}
        case Blackhole():
            kind, attributes = "timeout", {"timeout": 0}
        case Slicer(average_size=size, size_variation=variation, delay=delay):
            kind = "slicer"
            attributes = {"average_size": size, "size_variation": variation, "delay": delay * 1e6}
        case SlowClose(delay=delay):
            kind, attributes = "slow_close", {"delay": delay * 1000}
        case LimitData(bytes=limit):
            kind, attributes = "limit_data", {"bytes": limit}
        case PacketLoss(probability=probability, rto=rto):
            kind, attributes = "packet_loss", {"probability": probability, "rto": rto * 1000}
        case FirstN(n=n):
            kind, attributes, stream = "first_n", {"n": n}, "upstream"
        case EveryNth(n=n):
            kind, attributes, stream = "every_nth", {"n": n}, "upstream"
        case _:
            raise ChaosError(
                f"{type(toxic).__name__} has no Toxiproxy toxic form (a proxy's enabled = false)"
            )
    return {
        "name": name or f"{kind}_{stream}",
        # probabilities stay fractions; every other attribute is a count in Toxiproxy's units
        "attributes": {
            key: value if key == "probability" else _whole(value)
            for key, value in attributes.items()
        },
        "type": kind,
        "stream": stream,
        "toxicity": toxic.toxicity,
    }
