"""Server models of a scenario's ``[service]`` table: what answers the clients' requests.

Each model is validated data; ``retrysim.sim.service`` holds the behaviour that matches it.
A new server model is a class here, a member of :data:`Service`, and its server there.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from retrysim.names import ErrorName
from retrysim.scenario_types import (
    Constant,
    Latency,
    Model,
    NonNeg,
    PosRate,
    latency_from_number,
)

# --- service models --------------------------------------------------------------------------


class _ServiceBase(Model):
    @model_validator(mode="before")
    @classmethod
    def _numbers_as_constant(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for key in ("latency", "base", "read_latency"):
                if key in data:
                    data[key] = latency_from_number(data[key])
        return data


class Ideal(_ServiceBase):
    """Infinite capacity; each request takes a draw from ``latency``."""

    kind: Literal["ideal"]
    latency: Latency = Field(Constant(), description="each request's service time")


class Queue(_ServiceBase):
    """``concurrency`` slots and a FIFO of ``queue_limit``; a full queue rejects at once."""

    kind: Literal["queue"]
    concurrency: Annotated[int, Field(ge=1)] = Field(
        description="requests served at once (replicas x workers each)"
    )
    queue_limit: Annotated[int, Field(ge=0)] = Field(
        1000, description="requests waiting at most; one more is rejected at once"
    )
    latency: Latency = Field(Constant(), description="a request's service time once it has a slot")
    reject_error: ErrorName = Field(
        "ConnectionRefusedError", description="what a full queue rejects with"
    )
    drop_abandoned: bool = Field(
        False, description="skip queued requests whose client already gave up"
    )


class LoadLatency(_ServiceBase):
    """latency = base + per_request * requests in flight (abandoned ones included); no cap."""

    kind: Literal["load_latency"]
    base: Latency = Field(Constant(), description="the service time with nothing else in flight")
    per_request: NonNeg = Field(0.001, description="added for each request in flight")


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
    latency: Latency = Field(Constant(), description="the write's service time (single: all of it)")
    protocol: Literal["single", "read_then_write"] = Field(
        "single", description="one request, or a read and a write a round trip apart"
    )
    read_latency: Latency | None = Field(
        None, description="the read's service time (read_then_write); default: latency"
    )


class RateLimited(_ServiceBase):
    """Server-side token bucket; a rejection is RateLimited with a Retry-After hint."""

    kind: Literal["rate_limited"]
    rate: PosRate = Field(description="requests admitted per second (the bucket's refill)")
    burst: Annotated[float, Field(ge=1)] = Field(
        1.0, description="the bucket's size: requests admitted back to back"
    )
    latency: Latency = Field(Constant(), description="an admitted request's service time")
    retry_after: Literal["seconds", "exact", "none"] = Field(
        "seconds", description="hint as whole seconds (HTTP), exact seconds, or none"
    )


Service = Annotated[Ideal | Queue | LoadLatency | Occ | RateLimited, Field(discriminator="kind")]
