"""The ``[network]`` table: the wire between each client and the service.

``retrysim.sim.connections`` holds the behaviour: the round trips, the connects, the pools.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, model_validator

from retrysim.model.base import Latency, Model, Pos, numbers_as_constant


class Network(Model):
    """The wire between each client and the service, paid by every attempt of every call.

    An attempt's request travels ``rtt``/2 to the server and the answer ``rtt``/2 back (one
    draw per attempt). A connection that is not open yet costs ``connect`` first (default: one
    more draw of ``rtt``, the TCP handshake). A connection-level error (refused, reset, any
    ``ConnectionError`` or ``OSError``) or a timeout closes the connection, so the next attempt
    connects again; other errors (rate limits, conflicts, server errors) keep it open. With
    ``accept_backlog``, a connect that finds that many connects still opening waits
    ``syn_retry`` (then twice that, ...) before it is let in: a listen backlog's dropped SYNs.
    Omitted, requests reach the server the instant they are sent and nothing connects.
    """

    rtt: Latency = Field(description="round-trip time between client and service, seconds")
    connect: Latency | None = Field(
        None, description="seconds to open a connection (handshake, TLS, AUTH); default: one rtt"
    )
    accept_backlog: Annotated[int, Field(ge=1)] | None = Field(
        None,
        description="connects the service's listener holds at once (asyncio's start_server: "
        "100); one beyond them has its SYN dropped and sent again after syn_retry; "
        "default: no limit",
    )
    syn_retry: Pos = Field(
        1.0,
        description="seconds before a dropped connect's SYN is sent again, doubling each time "
        "(Linux: 1 s)",
    )

    @model_validator(mode="before")
    @classmethod
    def _numbers_as_constant(cls, data: Any) -> Any:
        return numbers_as_constant(data, ("rtt", "connect"))
