"""``retrysim errors``'s document: which common errors each operation's policy retries.

Every row is an error instance (the builtin or retrysim class, the real library class when the
library is installed and the class takes a plain message, else the catalogue's stand-in) and
every answer comes from the real policy's real tenacity ``retry`` object, asked with a
``RetryCallState`` whose attempt failed with that instance: what the decorators would do.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from tenacity import RetryCallState

from retrysim.retry.classify import full_name, is_transient
from retrysim.retry.policy import RetryPolicy, build_policy
from retrysim.retry.settings import OPERATIONS, RetrySettings
from retrysim.sim.catalogue import BY_NAME

#: A builtin error no simulated fault raises but users meet: the shipped set retries it
#: (it is an OSError) although a missing file never comes back by itself.
EXTRA_BUILTINS: dict[str, type[Exception]] = {"FileNotFoundError": FileNotFoundError}


def library_module(library: str) -> ModuleType | None:
    """The module that holds ``library``'s catalogue classes, or None when it is not installed
    (or fails to import). Plain import statements of fixed names: retrysim keeps importlib for
    ``--policy`` alone, and the classifier itself never imports any of these."""
    module: ModuleType
    try:
        if library == "redis":
            import redis.exceptions

            module = redis.exceptions
        elif library == "httpx":
            import httpx

            module = httpx
        elif library == "aiohttp":
            import aiohttp

            module = aiohttp
        elif library == "requests":
            import requests.exceptions

            module = requests.exceptions
        elif library == "urllib3":
            import urllib3.exceptions

            module = urllib3.exceptions
        elif library == "asyncpg":
            import asyncpg.exceptions

            module = asyncpg.exceptions
        elif library == "psycopg":
            import psycopg

            module = psycopg
        elif library == "botocore":
            import botocore.exceptions

            module = botocore.exceptions
        else:
            return None
    except Exception:  # not installed, or broken: the stand-in answers for it
        return None
    return module


def real_error(name: str, module: ModuleType | None) -> BaseException | None:
    """An instance of ``name``'s real class from ``module`` if the class takes a plain message
    and the entry carries no status or code (those rows use the stand-in); else None."""
    if module is None or BY_NAME[name].attributes:
        return None
    try:
        error = getattr(module, name.rpartition(".")[2])(f"{name} (retrysim errors)")
    except Exception:
        return None
    return error if isinstance(error, BaseException) else None


def asks(policy: RetryPolicy, error: BaseException) -> bool:
    """Whether ``policy``'s tenacity retry retries a first attempt that raised ``error``."""
    retrying = policy.retrying()
    state = RetryCallState(retry_object=retrying, fn=None, args=(), kwargs={})
    state.attempt_number = 1
    state.set_exception((type(error), error, None))
    return bool(retrying.retry(state))


def _rows() -> list[tuple[str, BaseException, dict[str, Any]]]:
    from retrysim.sim.failures import ERROR_CLASSES, make_error

    rows: list[tuple[str, BaseException, dict[str, Any]]] = []
    for code, name in enumerate(ERROR_CLASSES, start=1):
        if name == "CircuitOpen":
            continue  # a breaker's refusal, not something a dependency raises
        entry = BY_NAME.get(name)
        if entry is None:
            error = make_error(code)
            kind = "builtin" if type(error).__module__ == "builtins" else "retrysim"
            rows.append((name, error, {"library": None, "installed": None, "instance": kind}))
            continue
        module = library_module(entry.library)
        real = real_error(name, module)
        info = {
            "library": entry.library,
            "installed": module is not None,
            "instance": "real" if real is not None else "stand-in",
            "note": entry.note,
        }
        rows.append((name, real if real is not None else make_error(code), info))
    for name, cls in EXTRA_BUILTINS.items():
        rows.append((name, cls(name), {"library": None, "installed": None, "instance": "builtin"}))
    return rows


def error_matrix(settings: RetrySettings, profile: str | None = None) -> dict[str, Any]:
    """The document: the profile, and per error its class, what it is and who retries it."""
    policies = {op: build_policy(op, settings, profile=profile) for op in OPERATIONS}
    chosen = next(iter(policies.values())).profile_object
    errors = []
    for name, error, info in _rows():
        errors.append(
            {
                "name": name,
                "class": full_name(type(error)),
                **info,
                "note": info.get("note", ""),
                "transient": is_transient(error),
                "retried": {op: asks(policy, error) for op, policy in policies.items()},
            }
        )
    return {
        "profile": chosen.name,
        "retries": chosen.retries_what,
        "operations": list(OPERATIONS),
        "errors": errors,
    }
