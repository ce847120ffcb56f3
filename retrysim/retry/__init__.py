"""retrysim's production retry mechanism: tenacity policies configured by ``RETRY__*`` settings.

Import what a service needs from here::

    from retrysim.retry import retry_storage_operation, execute_with_retry

    @retry_storage_operation()
    async def load_task(task_id): ...

This package never imports the CLI, Rich or matplotlib.
"""

from retrysim.retry.counters import OperationCounters, reset_retry_metrics, retry_metrics
from retrysim.retry.decorators import (
    OperationDecorator,
    execute_with_retry,
    retry_api_call,
    retry_scheduler_operation,
    retry_storage_operation,
    retry_worker_operation,
)
from retrysim.retry.errors import (
    DEFAULT_RETRYABLE,
    ConflictError,
    RateLimitedError,
    ServerError,
    TransientError,
)
from retrysim.retry.policy import RetryPolicy, build_policy
from retrysim.retry.settings import (
    OPERATIONS,
    PROFILES,
    RetrySettings,
    SettingsError,
    env_name,
    get_settings,
    load_settings,
    reload_settings,
    setting_sources,
    use_settings,
)

__all__ = [
    "DEFAULT_RETRYABLE",
    "OPERATIONS",
    "PROFILES",
    "ConflictError",
    "OperationCounters",
    "OperationDecorator",
    "RateLimitedError",
    "RetryPolicy",
    "RetrySettings",
    "ServerError",
    "SettingsError",
    "TransientError",
    "build_policy",
    "env_name",
    "execute_with_retry",
    "get_settings",
    "load_settings",
    "reload_settings",
    "reset_retry_metrics",
    "retry_api_call",
    "retry_metrics",
    "retry_scheduler_operation",
    "retry_storage_operation",
    "retry_worker_operation",
    "setting_sources",
    "use_settings",
]
