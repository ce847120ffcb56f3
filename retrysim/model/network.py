"""The ``[network]`` table: the wire between each client and the service.

``retrysim.sim.connections`` holds the behaviour: the round trips, the connects, the pools.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from retrysim.model.base import Latency, Model, Pos, numbers_as_constant
from retrysim.model.marks import CONNECT_TIME, SYN_RETRY, TIME


class Network(Model):
    """The wire between each client and the service, paid by every attempt of every call.

    An attempt's request travels to the server and its answer travels back, each one-way leg
    half of an ``rtt`` draw. With ``draws = "per_leg"`` (the default) each leg has a draw of its
    own: the way out, the way back, and a read-then-write's read answer back and write out, so
    a slow request says nothing about its answer. With ``"per_attempt"`` one draw is every leg
    of the attempt: rtt/2 out, rtt/2 back, and a read-then-write's window a whole rtt, all slow
    or all fast together. A round trip's mean is rtt's either way; per_leg's spread is narrower
    (two independent halves: half rtt's variance). A connection that is not open yet costs
    ``connect`` first (default: one more draw of ``rtt``, the TCP handshake). An error of the
    connection or timeout family (refused, reset, a client library's connection error, a
    timeout: :func:`retrysim.retry.classify.error_family`) fails a connect and closes an open
    connection, so the next attempt connects again; answers from a live server (rate limits,
    conflicts, server errors) keep it open. With ``accept_backlog``, a connect that finds that
    many connects still opening waits ``syn_retry`` (then twice that, ...) before it is let in:
    a listen backlog's dropped SYNs. Omitted, requests reach the server the instant they are
    sent and nothing connects.
    """

    rtt: Latency = Field(description="round-trip time between client and service, seconds")
    draws: Literal["per_leg", "per_attempt"] = Field(
        "per_leg",
        description="per_leg: each one-way leg (out, back; a read-then-write's read answer and "
        "write) is half of an rtt draw of its own, independent of the others; per_attempt: one "
        "rtt draw is all of an attempt's legs (rtt/2 out, rtt/2 back), so they are slow or fast "
        "together",
    )
    connect: Annotated[Latency | None, CONNECT_TIME] = Field(
        None, description="seconds to open a connection (handshake, TLS, AUTH); default: one rtt"
    )
    accept_backlog: Annotated[int, Field(ge=1)] | None = Field(
        None,
        description="connects the service's listener holds at once (asyncio's start_server: "
        "100); one beyond them has its SYN dropped and sent again after syn_retry; "
        "default: no limit",
    )
    syn_retry: Annotated[Pos, TIME, SYN_RETRY] = Field(
        1.0,
        description="seconds before a dropped connect's SYN is sent again, doubling each time "
        "(Linux: 1 s)",
    )

    @model_validator(mode="before")
    @classmethod
    def _numbers_as_constant(cls, data: Any) -> Any:
        return numbers_as_constant(data, ("rtt", "connect"))
