"""retrysim's production retry mechanism: tenacity policies configured by ``RETRY__*`` settings.

Import what a service needs from here::

    from retrysim.retry import retry_storage_operation, execute_with_retry

    @retry_storage_operation()
    async def load_task(task_id): ...

This package never imports the CLI, Rich or matplotlib. Names load on first use, so
importing one module (``retrysim.retry.options``, say) does not import them all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from retrysim._lazy import lazy_exports

_EXPORTS = {
    "AdaptiveOptions": "retrysim.retry.adaptive",
    "AttemptGuard": "retrysim.retry.guards",
    "BreakerChange": "retrysim.retry.hooks",
    "BreakerOptions": "retrysim.retry.breaker",
    "BudgetOptions": "retrysim.retry.budget",
    "CircuitOpenError": "retrysim.retry.exceptions",
    "ConflictError": "retrysim.retry.exceptions",
    "DEFAULT_RETRYABLE": "retrysim.retry.exceptions",
    "ErrorPolicy": "retrysim.retry.options",
    "ExhaustedCall": "retrysim.retry.hooks",
    "GuardChain": "retrysim.retry.guards",
    "GuardEvent": "retrysim.retry.guards",
    "GuardRefusedError": "retrysim.retry.exceptions",
    "GuardSpec": "retrysim.retry.guards",
    "GuardStates": "retrysim.retry.guards",
    "HedgeOptions": "retrysim.retry.hedge",
    "OPERATIONS": "retrysim.retry.settings",
    "OPTION_NAMES": "retrysim.retry.options",
    "OperationCounters": "retrysim.retry.counters",
    "OperationDecorator": "retrysim.retry.decorators",
    "PROCESS_GUARDS": "retrysim.retry.guards",
    "PROFILES": "retrysim.retry.settings",
    "PolicyOptions": "retrysim.retry.options",
    "Profile": "retrysim.retry.profiles",
    "RateLimitedError": "retrysim.retry.exceptions",
    "RetriedResult": "retrysim.retry.exceptions",
    "RetryEvent": "retrysim.retry.hooks",
    "RetryPolicy": "retrysim.retry.policy",
    "RetrySettings": "retrysim.retry.settings",
    "ServerError": "retrysim.retry.exceptions",
    "SettingsError": "retrysim.retry.settings",
    "TransientError": "retrysim.retry.exceptions",
    "add_breaker_hook": "retrysim.retry.hooks",
    "add_exhausted_hook": "retrysim.retry.hooks",
    "add_retry_hook": "retrysim.retry.hooks",
    "build_policy": "retrysim.retry.policy",
    "env_name": "retrysim.retry.settings",
    "execute_with_retry": "retrysim.retry.decorators",
    "get_profile": "retrysim.retry.profiles",
    "is_transient": "retrysim.retry.classify",
    "register_transient": "retrysim.retry.classify",
    "retry_if_transient": "retrysim.retry.classify",
    "unregister_transient": "retrysim.retry.classify",
    "get_settings": "retrysim.retry.settings",
    "instrument_opentelemetry": "retrysim.retry.otel",
    "load_settings": "retrysim.retry.settings",
    "per_error_family": "retrysim.retry.per_error",
    "register_collector": "retrysim.retry.export",
    "register_profile": "retrysim.retry.profiles",
    "reload_settings": "retrysim.retry.settings",
    "remove_breaker_hook": "retrysim.retry.hooks",
    "remove_exhausted_hook": "retrysim.retry.hooks",
    "remove_fallback": "retrysim.retry.hooks",
    "remove_retry_hook": "retrysim.retry.hooks",
    "render_prometheus": "retrysim.retry.export",
    "reset_retry_metrics": "retrysim.retry.counters",
    "retry_api_call": "retrysim.retry.decorators",
    "retry_metrics": "retrysim.retry.counters",
    "retry_scheduler_operation": "retrysim.retry.decorators",
    "retry_storage_operation": "retrysim.retry.decorators",
    "retry_with_adaptive_backoff": "retrysim.retry.decorators",
    "retry_with_budget": "retrysim.retry.decorators",
    "retry_with_circuit_breaker": "retrysim.retry.decorators",
    "retry_worker_operation": "retrysim.retry.decorators",
    "set_fallback": "retrysim.retry.hooks",
    "setting_sources": "retrysim.retry.settings",
    "use_settings": "retrysim.retry.settings",
}

__all__ = [
    "DEFAULT_RETRYABLE",
    "OPERATIONS",
    "OPTION_NAMES",
    "PROCESS_GUARDS",
    "PROFILES",
    "AdaptiveOptions",
    "AttemptGuard",
    "BreakerChange",
    "BreakerOptions",
    "BudgetOptions",
    "CircuitOpenError",
    "ConflictError",
    "ErrorPolicy",
    "ExhaustedCall",
    "GuardChain",
    "GuardEvent",
    "GuardRefusedError",
    "GuardSpec",
    "GuardStates",
    "HedgeOptions",
    "OperationCounters",
    "OperationDecorator",
    "PolicyOptions",
    "Profile",
    "RateLimitedError",
    "RetriedResult",
    "RetryEvent",
    "RetryPolicy",
    "RetrySettings",
    "ServerError",
    "SettingsError",
    "TransientError",
    "add_breaker_hook",
    "add_exhausted_hook",
    "add_retry_hook",
    "build_policy",
    "env_name",
    "execute_with_retry",
    "get_profile",
    "get_settings",
    "instrument_opentelemetry",
    "is_transient",
    "load_settings",
    "per_error_family",
    "register_collector",
    "register_profile",
    "register_transient",
    "reload_settings",
    "remove_breaker_hook",
    "remove_exhausted_hook",
    "remove_fallback",
    "remove_retry_hook",
    "render_prometheus",
    "reset_retry_metrics",
    "retry_api_call",
    "retry_if_transient",
    "retry_metrics",
    "retry_scheduler_operation",
    "retry_storage_operation",
    "retry_with_adaptive_backoff",
    "retry_with_budget",
    "retry_with_circuit_breaker",
    "retry_worker_operation",
    "set_fallback",
    "setting_sources",
    "unregister_transient",
    "use_settings",
]

if TYPE_CHECKING:
    from retrysim.retry.adaptive import AdaptiveOptions as AdaptiveOptions
    from retrysim.retry.breaker import BreakerOptions as BreakerOptions
    from retrysim.retry.budget import BudgetOptions as BudgetOptions
    from retrysim.retry.classify import is_transient as is_transient
    from retrysim.retry.classify import register_transient as register_transient
    from retrysim.retry.classify import retry_if_transient as retry_if_transient
    from retrysim.retry.classify import unregister_transient as unregister_transient
    from retrysim.retry.counters import OperationCounters as OperationCounters
    from retrysim.retry.counters import reset_retry_metrics as reset_retry_metrics
    from retrysim.retry.counters import retry_metrics as retry_metrics
    from retrysim.retry.decorators import OperationDecorator as OperationDecorator
    from retrysim.retry.decorators import execute_with_retry as execute_with_retry
    from retrysim.retry.decorators import retry_api_call as retry_api_call
    from retrysim.retry.decorators import retry_scheduler_operation as retry_scheduler_operation
    from retrysim.retry.decorators import retry_storage_operation as retry_storage_operation
    from retrysim.retry.decorators import retry_with_adaptive_backoff as retry_with_adaptive_backoff
    from retrysim.retry.decorators import retry_with_budget as retry_with_budget
    from retrysim.retry.decorators import retry_with_circuit_breaker as retry_with_circuit_breaker
    from retrysim.retry.decorators import retry_worker_operation as retry_worker_operation
    from retrysim.retry.exceptions import DEFAULT_RETRYABLE as DEFAULT_RETRYABLE
    from retrysim.retry.exceptions import CircuitOpenError as CircuitOpenError
    from retrysim.retry.exceptions import ConflictError as ConflictError
    from retrysim.retry.exceptions import GuardRefusedError as GuardRefusedError
    from retrysim.retry.exceptions import RateLimitedError as RateLimitedError
    from retrysim.retry.exceptions import RetriedResult as RetriedResult
    from retrysim.retry.exceptions import ServerError as ServerError
    from retrysim.retry.exceptions import TransientError as TransientError
    from retrysim.retry.export import register_collector as register_collector
    from retrysim.retry.export import render_prometheus as render_prometheus
    from retrysim.retry.guards import PROCESS_GUARDS as PROCESS_GUARDS
    from retrysim.retry.guards import AttemptGuard as AttemptGuard
    from retrysim.retry.guards import GuardChain as GuardChain
    from retrysim.retry.guards import GuardEvent as GuardEvent
    from retrysim.retry.guards import GuardSpec as GuardSpec
    from retrysim.retry.guards import GuardStates as GuardStates
    from retrysim.retry.hedge import HedgeOptions as HedgeOptions
    from retrysim.retry.hooks import BreakerChange as BreakerChange
    from retrysim.retry.hooks import ExhaustedCall as ExhaustedCall
    from retrysim.retry.hooks import RetryEvent as RetryEvent
    from retrysim.retry.hooks import add_breaker_hook as add_breaker_hook
    from retrysim.retry.hooks import add_exhausted_hook as add_exhausted_hook
    from retrysim.retry.hooks import add_retry_hook as add_retry_hook
    from retrysim.retry.hooks import remove_breaker_hook as remove_breaker_hook
    from retrysim.retry.hooks import remove_exhausted_hook as remove_exhausted_hook
    from retrysim.retry.hooks import remove_fallback as remove_fallback
    from retrysim.retry.hooks import remove_retry_hook as remove_retry_hook
    from retrysim.retry.hooks import set_fallback as set_fallback
    from retrysim.retry.options import OPTION_NAMES as OPTION_NAMES
    from retrysim.retry.options import ErrorPolicy as ErrorPolicy
    from retrysim.retry.options import PolicyOptions as PolicyOptions
    from retrysim.retry.otel import instrument_opentelemetry as instrument_opentelemetry
    from retrysim.retry.per_error import per_error_family as per_error_family
    from retrysim.retry.policy import RetryPolicy as RetryPolicy
    from retrysim.retry.policy import build_policy as build_policy
    from retrysim.retry.profiles import Profile as Profile
    from retrysim.retry.profiles import get_profile as get_profile
    from retrysim.retry.profiles import register_profile as register_profile
    from retrysim.retry.settings import OPERATIONS as OPERATIONS
    from retrysim.retry.settings import PROFILES as PROFILES
    from retrysim.retry.settings import RetrySettings as RetrySettings
    from retrysim.retry.settings import SettingsError as SettingsError
    from retrysim.retry.settings import env_name as env_name
    from retrysim.retry.settings import get_settings as get_settings
    from retrysim.retry.settings import load_settings as load_settings
    from retrysim.retry.settings import reload_settings as reload_settings
    from retrysim.retry.settings import setting_sources as setting_sources
    from retrysim.retry.settings import use_settings as use_settings


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals(), __all__)
