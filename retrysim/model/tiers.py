"""A scenario's ``[tiers.NAME]`` tables: a call graph of services that each retry.

A user's call goes client -> gateway -> service -> database, and every layer may retry: the
multiplication of retries down such a chain is the retry disaster post-mortems describe. The
scenario's ``[clients]`` and ``[policy]`` are the top: the callers and how they retry their
calls to the first tier. Each tier, in file order, is one layer below: its ``service`` (what the
tier's own work costs, and every server kind retrysim has, replicas included) and its
``faults`` judge the requests that reach it; a tier with a tier below sends each request it
has served down as a call of its own, under its ``policy``, and answers its caller when that
call ends. The last tier calls no one.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from retrysim.model.base import Model, Pos
from retrysim.model.faults import Fault
from retrysim.model.policy_spec import PolicySpec
from retrysim.model.service import Ideal, Service

#: Tiers a scenario may chain: enough for any architecture diagram, few enough to read.
MAX_TIERS = 8
#: A tier's name: what ``--set tiers.NAME.*`` and the reports call it.
TIER_NAME = r"^[a-z][a-z0-9_-]{0,31}$"


class Tier(Model):
    """One layer of the call graph, named by its key and listed top first: the service and faults
    that judge the requests reaching it, and how it retries its calls to the next tier (the
    last tier calls no one).

    See the module docstring.
    """

    callers: Annotated[int, Field(ge=1)] = Field(
        1,
        description="instances of this tier that call the next one, each with its own retry "
        "state (the requests it serves are spread over them, as a load balancer spreads them)",
    )
    policy: PolicySpec | None = Field(
        None,
        description="how this tier retries its calls to the next tier (required on every tier "
        "but the last; max_attempts = 1 for none)",
    )
    timeout: Pos | None = Field(
        None,
        description="this tier's timeout per attempt on the next tier, seconds "
        "(policy.attempt_timeout is the same timeout)",
    )
    propagate_deadline: bool = Field(
        False,
        description="pass the caller's remaining deadline down (gRPC-style): a call this tier "
        "makes stops retrying, and its attempt is cut, when the request it serves has been "
        "given up by its caller; false: abandoned work keeps running below",
    )
    service: Service = Field(
        default_factory=lambda: Ideal(kind="ideal"),
        description="what this tier's own work costs each request (a tier with a next tier "
        "calls it once this work is done)",
    )
    faults: list[Fault] = Field(
        default_factory=list, description="what goes wrong at this tier, and when"
    )

    @model_validator(mode="after")
    def _one_timeout(self) -> Tier:
        attempt_timeout = None if self.policy is None else self.policy.attempt_timeout
        if None not in (self.timeout, attempt_timeout) and self.timeout != attempt_timeout:
            raise ValueError(
                f"timeout ({self.timeout:g}) and policy.attempt_timeout ({attempt_timeout:g}) "
                "are one timeout, the tier's per attempt: give one of them, or the same value"
            )
        return self

    @property
    def attempt_timeout(self) -> float | None:
        """The tier's timeout per attempt on the next tier, under either of its keys."""
        if self.timeout is not None or self.policy is None:
            return self.timeout
        return self.policy.attempt_timeout
