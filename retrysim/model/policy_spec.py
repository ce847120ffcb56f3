"""A scenario's ``[policy]`` table (and each tier's): the retry policy its callers use."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from retrysim.names import ErrorName
from retrysim.names import Operation as OperationName
from retrysim.retry.options import PolicyOptions


class PolicySpec(PolicyOptions):
    """Which RETRY__ group to use, and the policy options (``retrysim.retry.PolicyOptions``).

    The options are inherited, not listed here: a new policy option is a scenario key at once.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    operation: OperationName = Field(
        "worker", description="the RETRY__ group whose settings fill the options not given"
    )
    retry_on: list[ErrorName] | None = Field(
        None, description="Errors to retry; default: the profile's retryable set."
    )
    retry_other_host: bool = Field(
        False,
        description="a retry goes to a replica this call has not tried yet while there is one "
        "(a balancer's previous-hosts predicate); simulator only: the library sees no hosts",
    )
