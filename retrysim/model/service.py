"""Server models of a scenario's ``[service]`` table: what answers the clients' requests.

Each model is validated data; ``retrysim.sim.service`` holds the behaviour that matches it.
A new server model is a class here, a member of :data:`Service`, and its server there.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import Field, model_validator

from retrysim.model.base import (
    Answer,
    Constant,
    Latency,
    Model,
    NonNeg,
    Pos,
    PosRate,
    numbers_as_constant,
)
from retrysim.model.marks import (
    ABANDONED,
    CANCELLED,
    CAPACITY,
    HINTED,
    LOCK_QUEUE,
    OCC_READ,
    OCC_TIME,
    PER_REQUEST,
    PS_QUEUE,
    TIME,
)
from retrysim.names import ErrorName

#: Cores of a processor-sharing server: from a thousandth of one (a starved container) to a
#: million (a fleet); the bounds keep ``cores / n`` and the completion times finite.
Cores = Annotated[
    float, Field(ge=1e-3, le=1e6, allow_inf_nan=False), Field(json_schema_extra={"unit": "cores"})
]

# --- service models --------------------------------------------------------------------------


#: How a client's balancer picks the replica each attempt goes to.
Balance = Literal["round_robin", "random", "least_outstanding", "power_of_two"]
#: Replicas a service may have: a fleet of hosts behind one name.
MAX_REPLICAS = 1000


class _ServiceBase(Model):
    replicas: Annotated[int, Field(ge=1, le=MAX_REPLICAS)] = Field(
        1,
        description="identical copies of this server behind a balancer, each with the capacity "
        "given here (faults can hit some of them: a fault's replicas)",
    )
    balance: Balance = Field(
        "round_robin",
        description="how each attempt picks a replica: in turn, at random, the one with the "
        "fewest requests outstanding, or the better of two picked at random",
    )

    @model_validator(mode="before")
    @classmethod
    def _numbers_as_constant(cls, data: Any) -> Any:
        return numbers_as_constant(data, ("latency", "base", "read_latency"))


class Ideal(_ServiceBase):
    """Infinite capacity; each request takes a draw from ``latency``."""

    kind: Literal["ideal"]
    latency: Annotated[Latency, TIME] = Field(Constant(), description="each request's service time")


class Queue(_ServiceBase):
    """``concurrency`` slots and a FIFO of ``queue_limit``; a full queue rejects at once."""

    kind: Literal["queue"]
    concurrency: Annotated[int, Field(ge=1)] = Field(
        description="requests served at once (replicas x workers each)"
    )
    queue_limit: Annotated[int, Field(ge=0), CAPACITY] = Field(
        1000, description="requests waiting at most; one more is rejected at once"
    )
    latency: Annotated[Latency, TIME] = Field(
        Constant(), description="a request's service time once it has a slot"
    )
    reject_error: ErrorName = Field(
        "ConnectionRefusedError", description="what a full queue rejects with"
    )
    drop_abandoned: Annotated[bool, ABANDONED] = Field(
        False, description="skip queued requests whose client already gave up"
    )


class LoadLatency(_ServiceBase):
    """latency = base + per_request * requests in flight (abandoned ones included); no cap."""

    kind: Literal["load_latency"]
    base: Annotated[Latency, TIME] = Field(
        Constant(), description="the service time with nothing else in flight"
    )
    per_request: Annotated[NonNeg, PER_REQUEST] = Field(
        0.001, description="added for each request in flight"
    )


class Occ(_ServiceBase):
    """One shared record under optimistic concurrency: a stale write fails with Conflict.

    ``protocol = "single"``: one request reads the version when it arrives and commits when
    its ``latency`` ends, so the whole request is the conflict window. ``"read_then_write"``:
    the read (``read_latency``) and the write (``latency``) are two requests with the client's
    round trip (``[network] rtt``) between them, as an ORM's load-modify-save is; the write
    commits when it arrives only if no write committed since the read answered, so the
    conflict window is the read's answer travelling back and the write travelling out.
    """

    kind: Literal["occ"]
    latency: Annotated[Latency, OCC_TIME] = Field(
        Constant(), description="the write's service time (single: all of it)"
    )
    protocol: Literal["single", "read_then_write"] = Field(
        "single", description="one request, or a read and a write a round trip apart"
    )
    read_latency: Annotated[Latency | None, OCC_READ] = Field(
        None, description="the read's service time (read_then_write); default: latency"
    )


class RateLimited(_ServiceBase):
    """Server-side token bucket; a rejection is RateLimited with a Retry-After hint."""

    kind: Literal["rate_limited"]
    rate: PosRate = Field(description="requests admitted per second (the bucket's refill)")
    burst: Annotated[float, Field(ge=1), CAPACITY] = Field(
        1.0, description="the bucket's size: requests admitted back to back"
    )
    latency: Annotated[Latency, TIME] = Field(
        Constant(), description="an admitted request's service time"
    )
    retry_after: Annotated[Literal["seconds", "exact", "none"], HINTED] = Field(
        "seconds", description="hint as whole seconds (HTTP), exact seconds, or none"
    )
    reject_answer: Answer | None = Field(
        None,
        description="what a rejected request returns instead of failing with RateLimited (such "
        "as 429): the call's result, for a result predicate (retry_if_result) to judge",
    )


class ProcessorSharing(_ServiceBase):
    """Requests share ``cores``: with n in service each gets min(1, cores/n) of a core.

    A CPU-bound service (a web server's worker pool on few cores, a database executing many
    queries at once): every request slows down as load grows, instead of queueing behind the
    others. ``latency`` is the work a request needs, its service time alone on an idle server.
    """

    kind: Literal["processor_sharing"]
    latency: Annotated[Latency, TIME] = Field(
        Constant(), description="the work a request needs, in core-seconds (its time alone)"
    )
    cores: Annotated[Cores, CAPACITY] = Field(
        1.0, description="the cores the requests in service share"
    )
    concurrency: Annotated[int, Field(ge=1)] | None = Field(
        None, description="at most this many in service, the rest wait in a FIFO (None: no cap)"
    )
    queue_limit: Annotated[int, Field(ge=0), CAPACITY, PS_QUEUE] = Field(
        1000, description="waiting places behind a concurrency cap; a full queue rejects at once"
    )
    reject_error: Annotated[ErrorName, PS_QUEUE] = Field(
        "ConnectionRefusedError", description="what a full queue rejects with"
    )
    cancel_abandoned: Annotated[bool, CANCELLED] = Field(
        False,
        description="drop a request whose client timed out (else it keeps using its share)",
    )


class Lock(_ServiceBase):
    """One lock (a row lock, an advisory lock, a mutex) held for each request's ``latency``.

    Contention is serial: one holder at a time, the others wait in a FIFO or fail at once.
    """

    kind: Literal["lock"]
    latency: Annotated[Latency, TIME] = Field(
        Constant(), description="how long each request holds the lock"
    )
    on_busy: Literal["wait", "fail"] = Field(
        "wait", description="wait in a FIFO for the lock, or fail at once with busy_error"
    )
    queue_limit: Annotated[int, Field(ge=0), CAPACITY, LOCK_QUEUE] = Field(
        1000, description="waiters at most; one more fails at once with busy_error"
    )
    busy_error: ErrorName = Field(
        "Conflict", description="what a request that gets no lock fails with"
    )
    wait_timeout: Annotated[Pos | None, LOCK_QUEUE] = Field(
        None, description="a waiter fails with busy_error after this many seconds (None: never)"
    )


Service = Annotated[
    Ideal | Queue | LoadLatency | Occ | RateLimited | ProcessorSharing | Lock,
    Field(discriminator="kind"),
]


@functools.cache
def service_choices() -> dict[str, tuple[str, ...]]:
    """The values a ``service.*`` key can take where they are a fixed set, across every kind.

    ``kind`` lists the kinds, a Literal field its words (``on_busy``: wait, fail), a switch
    true/false. Read from :data:`Service`, so a new server model completes without an edit in
    the completers.
    """
    choices: dict[str, tuple[str, ...]] = {}
    for model in get_args(get_args(Service)[0]):
        for name, field in model.model_fields.items():
            if field.annotation is bool:
                values: tuple[str, ...] = ("true", "false")
            elif get_origin(field.annotation) is Literal:
                values = tuple(str(value) for value in get_args(field.annotation))
            else:
                continue
            known = choices.get(name, ())
            choices[name] = known + tuple(v for v in values if v not in known)
    return choices
