"""The resilience mechanisms a policy can turn on, each a table of knobs, defined once.

Each knob becomes a scenario key (``[policy.breaker]``), a decorator option
(``breaker={...}``) and a setting (``RETRY__API_BREAKER_FAILURE_THRESHOLD``), all derived from
the options models here.
"""

from __future__ import annotations

from retrysim.retry.adaptive import AdaptiveOptions
from retrysim.retry.breaker import BreakerOptions
from retrysim.retry.budget import BudgetOptions
from retrysim.retry.knobs import Knobs

#: Mechanism name -> its options model.
MECHANISMS: dict[str, type[Knobs]] = {
    "breaker": BreakerOptions,
    "budget": BudgetOptions,
    "adaptive": AdaptiveOptions,
}
MECHANISM_NAMES: tuple[str, ...] = tuple(MECHANISMS)


def mechanism_setting(operation: str, mechanism: str, knob: str) -> str:
    """The ``RetrySettings`` field of one knob: ``api_breaker_failure_threshold``."""
    return f"{operation}_{mechanism}_{knob}"
