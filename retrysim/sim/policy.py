"""A scenario's retry policy, built by the one policy builder the decorators use."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tenacity import retry_if_exception_type

from retrysim.model.scenario import Scenario, ScenarioError
from retrysim.retry.guards import GuardSpec
from retrysim.retry.policy import RetryPolicy, build_policy
from retrysim.retry.settings import RetrySettings
from retrysim.sim.failures import ERROR_CLASSES


def policy_for(
    scenario: Scenario,
    settings: RetrySettings | None = None,
    guards: Sequence[GuardSpec] = (),
    retrying: Any = None,
) -> RetryPolicy:
    """The scenario's policy through the one builder (settings default to the documented ones).

    ``guards`` are attempt guards given through the Python API; the simulator keeps their state
    per client or fleet-wide as each declares. Raises ScenarioError when the scenario's
    options and the settings cannot make one policy. ``retrying`` replaces the scenario's
    policy with the user's own: a tenacity ``Retrying``/``AsyncRetrying``, a function
    decorated with ``@tenacity.retry``, or a policy :func:`retrysim.sim.foreign.foreign_policy`
    already made (and named).
    """
    if retrying is not None:
        from retrysim.sim.foreign import foreign_policy, policy_label

        if guards:
            raise ValueError("guards apply to retrysim's own policies, not to a Retrying of yours")
        if isinstance(retrying, RetryPolicy):
            return retrying
        return foreign_policy(retrying, policy_label(retrying), scenario.policy.operation)
    spec = scenario.policy
    retry = None
    if spec.retry_on is not None:
        retry = retry_if_exception_type(tuple(ERROR_CLASSES[name] for name in spec.retry_on))
    try:
        return build_policy(
            spec.operation,
            settings if settings is not None else RetrySettings.defaults(),
            retry=retry,
            guards=guards,
            options=spec,
        )
    except ValueError as error:
        # Each side validated on its own, so what build_policy refuses here is the scenario's
        # policy against these settings (its min_wait above the settings' max_wait): bad input.
        raise ScenarioError(f"policy: {error} (the scenario with the RETRY__* settings)") from None


def client_timeout(scenario: Scenario, policy: RetryPolicy) -> float | None:
    """The clients' timeout per attempt, seconds (None: they wait for ever).

    The scenario's (``clients.timeout`` or ``policy.attempt_timeout``: one timeout under two
    keys), else the policy's resolved ``attempt_timeout`` (a ``RETRY__<OPERATION>_ATTEMPT_TIMEOUT``
    setting): the scenario's value wins over the setting, as every scenario key does. A policy of
    your own (``--policy``) has no attempt timeout; the scenario's still holds.
    """
    timeout = scenario.client_timeout
    return policy.options.attempt_timeout if timeout is None else timeout
