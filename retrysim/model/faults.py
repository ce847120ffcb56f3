"""Fault models of a scenario's ``[[faults]]`` tables: what goes wrong, when, and how it shows.

Each model is validated data; ``retrysim.sim.faults`` compiles it into the strategy the engine
consults. A *gate* fault (outage, flaky, recovery ramp) decides at the door: it fails an
attempt at once with its ``error``, or, with an ``answer``, the attempt returns that value
instead of raising (an HTTP 503 answered as a status, not raised as an exception): a result,
which a policy retries only when its result predicate (``retry_if_result``) says so. A new
fault is a class here, a member of :data:`Fault`, and its case in
``retrysim.sim.faults.compile_faults``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from retrysim.model.base import (
    PROBABILITY,
    Answer,
    Latency,
    Model,
    NonNeg,
    Pos,
    Prob,
    check_window,
    numbers_as_constant,
)
from retrysim.model.marks import FAILS, REFUSES, REFUSES_FAILING
from retrysim.names import ErrorName

#: Distinct answers a scenario may give: records hold an attempt's error or answer in one byte,
#: beside the error names.
MAX_ANSWERS = 64
_ANSWER = (
    "what an attempt returns instead of failing: a status (such as 503) or a word, the call's "
    "result for a result predicate (retry_if_result) to judge; replaces error"
)
_HINT = "seconds: the Retry-After hint a RateLimited failure carries (HTTP 429)"


#: Replicas a fault hits: indices into the service's replicas (0 is the first).
ReplicaIndex = Annotated[int, Field(ge=0, lt=1000)]
#: Clients a fault hits: indices of the scenario's clients (0 is the first).
ClientIndex = Annotated[int, Field(ge=0)]
#: Connections a fault hits in the proxy: their numbers, in the order they were opened.
ConnectionIndex = Annotated[int, Field(ge=0)]


def replica_shares_as_lists(data: Any) -> Any:
    """A scenario's raw data with each fault's ``replicas`` share (a number in (0, 1]) made the
    list of replicas it stands for: the first ceil(share * service.replicas), at least one, of
    the service the fault is beside (the top-level one, or its tier's). The engine and the
    reports then see one form; which replicas is no matter, a balancer treats them alike. The
    caller's data is left as it was (a shell or lab keeps it to save)."""
    if not isinstance(data, dict):
        return data
    data = dict(data)
    if "faults" in data:
        data["faults"] = _replica_lists(data, "")
    tiers = data.get("tiers")
    if isinstance(tiers, dict):
        data["tiers"] = {
            name: {**tier, "faults": _replica_lists(tier, f"tiers.{name}.")}
            if isinstance(tier, dict) and "faults" in tier
            else tier
            for name, tier in tiers.items()
        }
    return data


def _replica_lists(place: dict[str, Any], prefix: str) -> Any:
    """``place``'s faults (a copy where a share became a list; as given when not a list)."""
    faults = place.get("faults", [])
    if not isinstance(faults, list):
        return faults
    service = place.get("service")
    count = service.get("replicas", 1) if isinstance(service, dict) else 1
    made = []
    for index, fault in enumerate(faults):
        share = fault.get("replicas") if isinstance(fault, dict) else None
        if isinstance(share, float | int) and not isinstance(share, bool):
            if not 0 < share <= 1 or not isinstance(count, int):
                raise ValueError(
                    f"{prefix}faults.{index}.replicas: a share must be in (0, 1], or a list of "
                    f"replicas, not {share!r}"
                )
            hit = list(range(max(1, math.ceil(share * count))))
            made.append({**fault, "replicas": hit})
        else:
            made.append(fault)
    return made


class _Window(Model):
    # ``for`` is a Python keyword: the field is ``for_``, read as ``for`` (or ``for_``) and
    # written as ``for`` by the serializer below, so a dumped scenario reads back as itself.
    model_config = Model.model_config | ConfigDict(populate_by_name=True)

    start: NonNeg = Field(0.0, description="when the fault begins")
    end: NonNeg | None = Field(None, description="omitted: until the run ends")
    replicas: list[ReplicaIndex] | None = Field(
        None,
        description="the service replicas it hits (0 is the first; service.replicas), or a "
        "share of them (0.4 of 5: the first two, read as [0, 1]); omitted: every replica",
    )

    clients: Annotated[float, Field(gt=0, le=1)] | list[ClientIndex] | None = Field(
        None,
        description="its blast radius in the simulator: a share of the clients (0.25: one in "
        "four, the same ones all run) or their indices; omitted: every client",
    )
    connections: Annotated[float, Field(gt=0, le=1)] | list[ConnectionIndex] | None = Field(
        None,
        description="its blast radius in the proxy: the share of connections it applies to "
        "(Toxiproxy's toxicity) or their numbers (0: the first opened); omitted: every one",
    )
    every: Pos | None = Field(
        None,
        description="seconds: the window recurs, on for `for` seconds every `every` seconds "
        "from start (until end); omitted: one window",
    )
    for_: Pos | None = Field(
        None,
        alias="for",
        description="seconds the fault is on in each recurrence (needs every; at most every)",
    )

    @model_validator(mode="after")
    def _window(self) -> _Window:
        check_window(self.start, self.end)
        if (self.every is None) != (self.for_ is None):
            raise ValueError("every and for go together: the period and the time on in each")
        if self.every is not None and self.for_ is not None and self.for_ > self.every:
            raise ValueError(f"for ({self.for_}) must be at most every ({self.every})")
        return self

    @property
    def until(self) -> float:
        """The end of the window as a number (infinity when open-ended)."""
        return math.inf if self.end is None else self.end

    @model_serializer(mode="wrap")
    def _write_for(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if "for_" in data:
            data["for"] = data.pop("for_")
        return data

    @property
    def recurrence(self) -> tuple[float, float] | None:
        """(every, for) when the window recurs, else None."""
        if self.every is None or self.for_ is None:
            return None
        return self.every, self.for_


class _Gate(_Window):
    """A fault that fails an attempt at once with its ``error``, or answers with ``answer``; a
    ``retry_after`` hint goes with ``error = "RateLimited"`` only (what an HTTP 429's
    Retry-After header says), and never with an answer (a returned value carries none)."""

    @model_validator(mode="after")
    def _hint_needs_rate_limited(self) -> _Gate:
        error, answer = getattr(self, "error", None), getattr(self, "answer", None)
        if getattr(self, "retry_after", None) is None:
            return self
        if answer is not None:
            raise ValueError(
                f"retry_after is the hint a RateLimited failure carries; answer {answer!r} "
                "is a returned value and carries none"
            )
        if error != "RateLimited":
            raise ValueError(
                f"retry_after is the hint a RateLimited failure carries; error is {error!r}"
            )
        return self


class Outage(_Gate):
    """The dependency is down: refuse (error at once) or blackhole (hang until client timeout)."""

    kind: Literal["outage"]
    end: NonNeg = Field(description="when the fault ends")
    mode: Literal["refuse", "blackhole"] = Field(
        "refuse", description="refuse: an attempt fails at once; blackhole: it hangs to a timeout"
    )
    error: Annotated[ErrorName, REFUSES_FAILING] = Field(
        "ConnectionError", description="what a refused attempt fails with"
    )
    answer: Annotated[Answer | None, REFUSES] = Field(None, description=_ANSWER)
    retry_after: Annotated[NonNeg | None, REFUSES] = Field(None, description=_HINT)


class Flaky(_Gate):
    """Each attempt in the window fails at once with ``probability``."""

    kind: Literal["flaky"]
    probability: Prob = Field(description="the chance that an attempt in the window fails")
    error: Annotated[ErrorName, FAILS] = Field("ConnectionError", description="what it fails with")
    answer: Answer | None = Field(None, description=_ANSWER)
    retry_after: NonNeg | None = Field(None, description=_HINT)


class LatencySpike(_Window):
    """Extra latency for requests that arrive in the window."""

    kind: Literal["latency_spike"]
    end: NonNeg = Field(description="when the fault ends")
    extra: Latency = Field(description="added to the service time of each request in the window")

    @model_validator(mode="before")
    @classmethod
    def _number(cls, data: Any) -> Any:
        return numbers_as_constant(data, ("extra",))


class CapacityLoss(_Window):
    """A queue server runs with only ``slots`` slots during the window."""

    kind: Literal["capacity_loss"]
    end: NonNeg = Field(description="when the fault ends")
    slots: Annotated[int, Field(ge=0)] = Field(description="the queue's slots left in the window")


class RecoveryRamp(_Gate):
    """After an outage: failure probability falls linearly from ``probability`` to 0 at ``end``."""

    kind: Literal["recovery_ramp"]
    end: NonNeg = Field(description="when the fault ends")
    probability: Prob = Field(1.0, description="the failure probability at start")
    error: Annotated[ErrorName, FAILS] = Field(
        "ConnectionError", description="what a failing attempt fails with"
    )
    answer: Answer | None = Field(None, description=_ANSWER)
    retry_after: NonNeg | None = Field(None, description=_HINT)


class Reset(_Window):
    """The connection resets mid-request with ``probability``; the server still does the work."""

    kind: Literal["reset"]
    probability: Prob = Field(description="the chance that an attempt's connection resets")
    error: ErrorName = Field("ConnectionResetError", description="what the client sees")


class PacketLoss(_Window):
    """Each transmission of a segment is lost with ``probability`` and sent again after a
    retransmission timeout that doubles on each loss of the same segment (TCP's backoff): a
    segment lost k times in a row arrives ``rto * (2**k - 1)`` seconds late. The simulator adds
    that to the service time of each of an attempt's ``segments``; the proxy delays each chunk
    it forwards (in both directions) the same way. Nothing is ever lost for good: TCP delivers
    late, it does not drop, unless the client's timeout gives up first."""

    kind: Literal["packet_loss"]
    probability: Annotated[float, Field(ge=0, lt=1), PROBABILITY] = Field(
        description="the chance that one transmission of a segment is lost"
    )
    rto: Pos = Field(0.2, description="seconds: the first retransmission timeout (Linux: 0.2)")
    segments: Annotated[int, Field(ge=1, le=64)] = Field(
        2, description="segments an attempt sends, request and answer (the simulator's count)"
    )


class FirstN(_Gate):
    """The first ``n`` attempts that reach the dependency in the window fail (the proxy: the
    first ``n`` requests, chunks a client sends, reset their connection before reaching the
    service). With ``every``/``for``, the count starts again in each recurrence; with
    ``replicas``, each replica counts its own."""

    kind: Literal["first_n"]
    n: Annotated[int, Field(ge=1)] = Field(description="how many attempts fail")
    error: Annotated[ErrorName, FAILS] = Field("ConnectionError", description="what they fail with")
    answer: Answer | None = Field(None, description=_ANSWER)
    retry_after: NonNeg | None = Field(None, description=_HINT)


class EveryNth(_Gate):
    """Every ``n``-th attempt that reaches the dependency in the window fails: the n-th, the
    2n-th, ... (the proxy: every n-th request resets its connection before reaching the
    service)."""

    kind: Literal["every_nth"]
    n: Annotated[int, Field(ge=2)] = Field(description="one attempt in n fails")
    error: Annotated[ErrorName, FAILS] = Field("ConnectionError", description="what they fail with")
    answer: Answer | None = Field(None, description=_ANSWER)
    retry_after: NonNeg | None = Field(None, description=_HINT)


class Slicer(_Window):
    """The answer arrives in pieces of ``average_size`` ± ``size_variation`` bytes,
    ``delay`` seconds apart (Toxiproxy's slicer). The simulator adds
    ``(ceil(answer_bytes / average_size) - 1) * delay`` to an attempt's service time; the proxy
    cuts what really passes."""

    kind: Literal["slicer"]
    average_size: Annotated[int, Field(ge=1)] = Field(description="bytes: a piece's mean size")
    size_variation: Annotated[int, Field(ge=0)] = Field(
        0, description="bytes: a piece is average_size plus or minus up to this"
    )
    delay: NonNeg = Field(description="seconds between two pieces")
    answer_bytes: Annotated[int, Field(ge=1)] | None = Field(
        None,
        description="bytes in an answer: the simulator needs it to count the pieces (the proxy "
        "cuts what passes); without it the fault runs for real only",
    )

    @model_validator(mode="after")
    def _variation_below_size(self) -> Slicer:
        if self.size_variation >= self.average_size:
            raise ValueError("size_variation must be below average_size")
        return self


class SlowClose(_Window):
    """A connection's close (its FIN) is held ``delay`` seconds after the answer (Toxiproxy's
    slow_close). No simulated attempt waits for a close: the simulator refuses it in one line;
    ``retrysim chaos`` runs it for real."""

    kind: Literal["slow_close"]
    delay: NonNeg = Field(description="seconds the close is held")


class LimitData(_Window):
    """A connection is closed once ``bytes`` bytes of answers have passed it (Toxiproxy's
    limit_data). The simulator does not count bytes on a connection: it refuses this fault in
    one line; ``retrysim chaos`` runs it for real."""

    kind: Literal["limit_data"]
    bytes: Annotated[int, Field(ge=0)] = Field(description="bytes after which it closes")


Fault = Annotated[
    Outage
    | Flaky
    | LatencySpike
    | CapacityLoss
    | RecoveryRamp
    | Reset
    | PacketLoss
    | FirstN
    | EveryNth
    | Slicer
    | SlowClose
    | LimitData,
    Field(discriminator="kind"),
]


def distinct_answers(found: Iterable[Any]) -> tuple[int | str, ...]:
    """The answers among ``found`` (None: none), each once, in order of first appearance; more
    than :data:`MAX_ANSWERS` is refused (a ValueError, which validation reports)."""
    answers = tuple(dict.fromkeys(answer for answer in found if answer is not None))
    if len(answers) > MAX_ANSWERS:
        raise ValueError(f"{len(answers)} distinct answers; at most {MAX_ANSWERS} are allowed")
    return answers
