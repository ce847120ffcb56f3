"""Which ``RETRY__*`` variable sets a policy option: the one place that mapping is made.

Diagnoses say which line to set, the tuner writes the lines it recommends, and both ask here.
Its own module because it reads both the options (which options fall back to settings) and the
settings (their field names), and neither of those may import the other.
"""

from __future__ import annotations

from retrysim.retry.mechanisms import MECHANISM_NAMES, mechanism_setting
from retrysim.retry.options import settings_field
from retrysim.retry.settings import RetrySettings, env_name


def option_variable(option: str, operation: str) -> str | None:
    """The variable that sets policy ``option`` for ``operation``, or None when none does.

    ``option`` is an option (``max_attempts``: ``RETRY__WORKER_MAX_ATTEMPTS``; ``profile``:
    ``RETRY__PROFILE``) or a mechanism's knob (``breaker.enabled``:
    ``RETRY__WORKER_BREAKER_ENABLED``).
    """
    mechanism, _, knob = option.partition(".")
    if knob:
        if mechanism not in MECHANISM_NAMES:
            return None
        field = mechanism_setting(operation, mechanism, knob)
        return env_name(field) if field in RetrySettings.model_fields else None
    try:
        return env_name(settings_field(option, operation))
    except KeyError:
        return None
