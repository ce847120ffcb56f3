"""Which ``RETRY__*`` variable sets a policy option: the one place that mapping is made.

Diagnoses say which line to set, the tuner writes the lines it recommends, the lab writes its
``.env`` lines and ``retrysim settings`` lists each value's variable; all ask here. Its own
module because it reads both the options (which key falls back to which setting) and the
settings (their field names), which import in that order.
"""

from __future__ import annotations

from retrysim.retry.options import setting_for
from retrysim.retry.settings import RetrySettings, env_name


def option_variable(option: str, operation: str) -> str | None:
    """The variable that sets policy ``option`` for ``operation``, or None when none does.

    ``option`` is an option (``max_attempts``: ``RETRY__WORKER_MAX_ATTEMPTS``; ``profile``:
    ``RETRY__PROFILE``) or a mechanism's knob (``breaker.enabled``:
    ``RETRY__WORKER_BREAKER_ENABLED``). An option's variable is named for any ``operation``
    (``<operation>`` gives the pattern, as the scenario reference shows it).
    """
    field = setting_for(option, operation)
    if field is None:
        return None
    if "." in option and field not in RetrySettings.model_fields:
        return None  # a knob, for an operation the settings do not hold
    return env_name(field)
