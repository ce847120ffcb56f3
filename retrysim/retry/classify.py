"""Which failures are transient: builtin socket errors and client libraries' own, by name.

A predicate of builtin ``ConnectionError`` / ``TimeoutError`` / ``OSError`` does not see a Redis
or HTTP outage at all: redis-py raises ``redis.exceptions.ConnectionError`` (a ``RedisError``,
not the builtin), httpx raises ``httpx.ConnectError`` (a ``TransportError``, not an OSError).
:func:`is_transient` knows them, for redis-py, httpx, aiohttp, requests/urllib3, asyncpg,
psycopg and botocore, **without importing any of them**: it walks ``type(error).__mro__`` and
looks each class up by its top-level package and class name (``cls.__module__`` up to the first
dot, the last part of ``cls.__qualname__``), so ``httpx._exceptions.ConnectError`` and
``httpx.ConnectError`` are one name, and it works the same whether the library is installed or
not. Status codes, SQLSTATEs and AWS error codes are read defensively (a missing or odd
attribute means "not transient", never an exception).

Extend it with :func:`register_transient`::

    register_transient("mylib.errors.Unavailable")      # by name: the library need not be loaded
    register_transient(MyBusyError)                      # by class (subclasses count)
    register_transient(lambda e: getattr(e, "code", None) == "EAGAIN")   # a predicate

**Idempotent operations.** The classifier answers for an operation that is safe to run twice
(idempotent, or made so with an idempotency key, which the counters and the simulator's
duplicates diagnosis watch). Errors that can come after the server got the request are then
transient like the rest: a read timeout, and a connection reset or closed mid-response, which
httpx raises as ``ReadError`` (an RST: ``ECONNRESET`` while reading the answer) or
``RemoteProtocolError`` (the peer closed before a complete answer), urllib3/requests as
``ProtocolError`` / ``ChunkedEncodingError``. The request may or may not have been executed,
and for an idempotent one that does not matter: the retry gets the answer the reset lost. For
an operation that is not idempotent, retry only failures that happen before anything is sent
(a decorator's ``retry=retry_if_exception_type(httpx.ConnectError)``, a scenario's
``retry_on``), or give it an idempotency key.

:class:`retry_if_transient` is the tenacity strategy (``retry=retry_if_transient()``); the
``documented`` profile uses it. ``serialization=True`` also retries SQL serialization
failures and deadlocks (SQLSTATE 40001 / 40P01), which are only safe to retry when the whole
transaction is retried.

:func:`error_family` says what kind of failure an error is, by the same walk: the connection
could not be opened or broke (``connection``), no answer came in time (``timeout``), a live
server answered with an error (``answer``), or answered that it cannot serve yet and the client
library drops the connection for it (``busy``); ``refusal`` is a guard's, never sent. Builtin
and library errors of one family are one thing: the simulator decides from the family alone
whether an error closes its connection or fails a connect (:mod:`retrysim.sim.connections`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from tenacity import RetryCallState
from tenacity.retry import retry_base

from retrysim.retry.exceptions import (
    ConflictError,
    GuardRefusedError,
    RateLimitedError,
    ServerError,
    TransientError,
)

#: HTTP statuses worth retrying: too many requests, bad gateway, unavailable, gateway timeout.
RETRY_STATUSES: frozenset[int] = frozenset({429, 502, 503, 504})
#: AWS error codes that mean "slow down and try again".
THROTTLING_CODES: frozenset[str] = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "SlowDown",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
        "BandwidthLimitExceeded",
        "TransactionInProgressException",
    }
)
#: SQLSTATEs: class 08 (connection exception) and 57P03 (cannot connect now) are transient;
#: 40001 (serialization failure) and 40P01 (deadlock) only when asked (``serialization=True``).
CANNOT_CONNECT_NOW = "57P03"
#: SQLSTATEs that decide a family (:func:`error_family`): "too many connections" fails the
#: connect; "query canceled" is what a statement timeout raises.
TOO_MANY_CONNECTIONS = "53300"
QUERY_CANCELED = "57014"
SERIALIZATION_STATES: frozenset[str] = frozenset({"40001", "40P01"})

#: Builtin transient errors: the connection family, timeouts, and retrysim's TransientError.
BUILTIN_TRANSIENT: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError, TransientError)

Key = tuple[str, str]  # (top-level package, class name)

#: Library classes that are transient by class alone (subclasses count).
_BY_NAME: set[Key] = {
    # redis-py (BusyLoadingError is a ConnectionError there; listed for readers)
    ("redis", "ConnectionError"),
    ("redis", "TimeoutError"),
    ("redis", "BusyLoadingError"),
    # httpx
    ("httpx", "ConnectError"),
    ("httpx", "ConnectTimeout"),
    ("httpx", "ReadTimeout"),
    ("httpx", "WriteTimeout"),
    ("httpx", "PoolTimeout"),
    # A connection reset or closed mid-response (see "Idempotent operations" above).
    ("httpx", "ReadError"),
    ("httpx", "RemoteProtocolError"),
    ("httpcore", "ConnectError"),
    ("httpcore", "ConnectTimeout"),
    ("httpcore", "ReadTimeout"),
    ("httpcore", "WriteTimeout"),
    ("httpcore", "PoolTimeout"),
    ("httpcore", "ReadError"),
    ("httpcore", "RemoteProtocolError"),
    # aiohttp (ServerTimeoutError is a ClientConnectionError too)
    ("aiohttp", "ClientConnectionError"),
    ("aiohttp", "ServerTimeoutError"),
    # requests / urllib3
    ("requests", "ConnectionError"),
    ("requests", "Timeout"),
    ("requests", "ChunkedEncodingError"),
    ("urllib3", "ProtocolError"),
    ("urllib3", "NewConnectionError"),
    ("urllib3", "TimeoutError"),
    ("urllib3", "MaxRetryError"),
    # asyncpg: the connection class and "cannot connect now"
    ("asyncpg", "PostgresConnectionError"),
    ("asyncpg", "ConnectionDoesNotExistError"),
    ("asyncpg", "CannotConnectNowError"),
    ("asyncpg", "TooManyConnectionsError"),
    # psycopg (3) and psycopg2
    ("psycopg", "OperationalError"),
    ("psycopg", "CannotConnectNow"),
    ("psycopg2", "OperationalError"),
    # botocore
    ("botocore", "EndpointConnectionError"),
    ("botocore", "ConnectionClosedError"),
    ("botocore", "ReadTimeoutError"),
    ("botocore", "ConnectTimeoutError"),
}

#: Library classes that are transient only with the right status / code / SQLSTATE.
_STATUS_ERRORS: set[Key] = {("httpx", "HTTPStatusError"), ("aiohttp", "ClientResponseError")}
_AWS_ERRORS: set[Key] = {("botocore", "ClientError")}
_SQL_PACKAGES = frozenset({"asyncpg", "psycopg", "psycopg2"})

_USER_CLASSES: list[type[BaseException]] = []
_USER_PREDICATES: list[Callable[[BaseException], bool]] = []


def class_key(cls: type) -> Key:
    """``(top-level package, class name)`` of ``cls``: how library classes are matched."""
    module = str(getattr(cls, "__module__", "") or "")
    qualname = str(getattr(cls, "__qualname__", "") or getattr(cls, "__name__", ""))
    return module.partition(".")[0], qualname.rpartition(".")[2]


def name_key(name: str) -> Key:
    """The key of a dotted name: ``"redis.exceptions.X"`` -> ("redis", "X")."""
    package, _, rest = name.strip().partition(".")
    if not package or not rest:
        raise ValueError(f"expected 'package.module.ClassName', got {name!r}")
    return package, rest.rpartition(".")[2]


def full_name(cls: type) -> str:
    """``module.QualName`` of ``cls`` (builtins: just the name)."""
    module = getattr(cls, "__module__", "")
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def register_transient(
    what: str | type[BaseException] | Callable[[BaseException], bool],
) -> None:
    """Treat more failures as transient: a ``"package.module.ClassName"`` name (the library
    need not be imported), an exception class (its subclasses too), or a predicate
    ``(error) -> bool`` (an exception it raises counts as False). A predicate must depend on
    the error alone, not on when or how often it is asked: the simulator's fast path asks it
    once a run for each kind of simulated error."""
    if isinstance(what, str):
        _BY_NAME.add(name_key(what))
    elif isinstance(what, type) and issubclass(what, BaseException):
        _USER_CLASSES.append(what)
    elif callable(what) and not isinstance(what, type):
        _USER_PREDICATES.append(what)
    else:
        raise TypeError(f"register_transient takes a name, a class or a predicate, not {what!r}")


def unregister_transient(
    what: str | type[BaseException] | Callable[[BaseException], bool],
) -> None:
    """Undo :func:`register_transient` (tests, mostly); unknown entries are ignored."""
    if isinstance(what, str):
        _BY_NAME.discard(name_key(what))
    elif what in _USER_CLASSES:
        _USER_CLASSES.remove(what)
    elif what in _USER_PREDICATES:
        _USER_PREDICATES.remove(what)


def is_transient(error: BaseException, *, serialization: bool = False) -> bool:
    """Whether ``error`` is worth retrying (see the module docstring). Never raises."""
    if isinstance(error, BUILTIN_TRANSIENT):
        return True
    if _USER_CLASSES and isinstance(error, tuple(_USER_CLASSES)):
        return True
    sql = False
    for cls in type(error).__mro__:
        key = class_key(cls)
        if key in _BY_NAME:
            return True
        if key in _STATUS_ERRORS:
            return status_of(error) in RETRY_STATUSES
        if key in _AWS_ERRORS:
            return aws_code_of(error) in THROTTLING_CODES
        sql = sql or key[0] in _SQL_PACKAGES
    if sql and _sql_transient(error, serialization):  # a database driver's error, by SQLSTATE
        return True
    return any(_safely(predicate, error) for predicate in _USER_PREDICATES)


def _safely(predicate: Callable[[BaseException], bool], error: BaseException) -> bool:
    try:
        return bool(predicate(error))
    except Exception:  # a broken predicate must not replace the real error
        return False


def _attr(value: Any, name: str) -> Any:
    try:
        return getattr(value, name, None)
    except Exception:  # properties can raise (httpx's .response without one set, say)
        return None


def status_of(error: BaseException) -> int | None:
    """The HTTP status of an httpx ``HTTPStatusError`` or aiohttp ``ClientResponseError``."""
    for status in (_attr(_attr(error, "response"), "status_code"), _attr(error, "status")):
        if isinstance(status, int) and not isinstance(status, bool):
            return status
    return None


def aws_code_of(error: BaseException) -> str | None:
    """``error.response["Error"]["Code"]`` of a botocore ``ClientError``, if it is there."""
    response = _attr(error, "response")
    details = response.get("Error") if isinstance(response, Mapping) else None
    code = details.get("Code") if isinstance(details, Mapping) else None
    return code if isinstance(code, str) else None


def sqlstate_of(error: BaseException) -> str | None:
    """The SQLSTATE of an asyncpg (``sqlstate``) or psycopg (``sqlstate`` / ``pgcode``) error."""
    for name in ("sqlstate", "pgcode"):
        state = _attr(error, name)
        if isinstance(state, str):
            return state
    return None


def _sql_transient(error: BaseException, serialization: bool) -> bool:
    state = sqlstate_of(error)
    if state is None:
        return False
    if state.startswith("08") or state == CANNOT_CONNECT_NOW:
        return True
    return serialization and state in SERIALIZATION_STATES


def retry_after_of(error: BaseException) -> float | None:
    """The server's Retry-After hint in seconds: a numeric ``error.retry_after``, else the
    ``Retry-After`` header (seconds form) of an httpx or aiohttp response error."""
    hint = _seconds(_attr(error, "retry_after"))
    return hint if hint is not None else header_retry_after(error)


def header_retry_after(error: BaseException) -> float | None:
    """The ``Retry-After`` header, in seconds, of ``error.response`` (httpx) or
    ``error.headers`` (aiohttp); None when absent, an HTTP date, or not a number."""
    for headers in (_attr(_attr(error, "response"), "headers"), _attr(error, "headers")):
        try:
            value = headers.get("Retry-After") if headers is not None else None
            seconds = _seconds(float(value)) if value is not None else None
        except Exception:  # an HTTP date, or headers that are not a mapping
            continue
        if seconds is not None:
            return seconds
    return None


def _seconds(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        seconds = float(value)
    except OverflowError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


class retry_if_transient(retry_base):  # noqa: N801  (tenacity's naming)
    """Retry when the attempt failed with a transient error (:func:`is_transient`)."""

    def __init__(self, *, serialization: bool = False) -> None:
        self.serialization = serialization

    def __call__(self, retry_state: RetryCallState) -> bool:
        outcome = retry_state.outcome
        if outcome is None or not outcome.failed:
            return False
        error = outcome.exception()
        return error is not None and is_transient(error, serialization=self.serialization)

    def __repr__(self) -> str:
        return f"retry_if_transient(serialization={self.serialization})"


def transient_names() -> Iterable[str]:
    """The library classes known by name, as ``package.ClassName`` (for docs and help)."""
    return sorted(f"{package}.{name}" for package, name in _BY_NAME)


# -- families: what kind of failure an error is -------------------------------------------------

Family = Literal["connection", "timeout", "busy", "answer", "refusal", "other"]

#: Each family, in words (``retrysim errors`` and the scenario reference say the same).
FAMILIES: dict[Family, str] = {
    "connection": "the connection could not be opened, or broke (refused, reset, aborted, "
    "cannot connect now)",
    "timeout": "no answer in time (a connect, read or pool timeout)",
    "busy": "a live server answered that it cannot serve yet, and the client library drops the "
    "connection for it (redis-py's BusyLoadingError, a ConnectionError there)",
    "answer": "a live server answered with an error (429, 503, a conflict, a command error, "
    "a serialization failure)",
    "refusal": "refused in the client by a guard, never sent (an open breaker)",
    "other": "none of these (an application's own error)",
}

#: Builtin classes and retrysim's own, matched exactly along the MRO (nearest first).
_FAMILY_BY_CLASS: dict[type, Family] = {
    TimeoutError: "timeout",
    ConnectionError: "connection",
    OSError: "connection",  # a socket error: what ``OSError`` means in a scenario
    RateLimitedError: "answer",
    ConflictError: "answer",
    ServerError: "answer",
    GuardRefusedError: "refusal",
}

#: Library classes by (top-level package, class name), matched along the MRO (nearest first),
#: so a subclass listed here wins over its base (requests' ConnectTimeout is a ConnectionError
#: and a Timeout: a timeout).
_FAMILY_BY_KEY: dict[Key, Family] = {
    **dict.fromkeys(
        [
            ("redis", "ConnectionError"),
            ("httpx", "ConnectError"),
            ("httpx", "ReadError"),
            ("httpx", "WriteError"),
            ("httpx", "CloseError"),
            ("httpx", "NetworkError"),
            ("httpx", "RemoteProtocolError"),
            ("httpcore", "ConnectError"),
            ("httpcore", "ReadError"),
            ("httpcore", "WriteError"),
            ("httpcore", "NetworkError"),
            ("httpcore", "RemoteProtocolError"),
            ("aiohttp", "ClientConnectionError"),
            ("requests", "ConnectionError"),
            ("requests", "ChunkedEncodingError"),
            ("urllib3", "ProtocolError"),
            ("urllib3", "NewConnectionError"),
            ("asyncpg", "PostgresConnectionError"),
            ("asyncpg", "ConnectionDoesNotExistError"),
            ("asyncpg", "CannotConnectNowError"),
            ("asyncpg", "TooManyConnectionsError"),
            ("psycopg", "OperationalError"),
            ("psycopg2", "OperationalError"),
            ("botocore", "ConnectionError"),
            ("botocore", "EndpointConnectionError"),
            ("botocore", "ConnectionClosedError"),
        ],
        "connection",
    ),
    **dict.fromkeys(
        [
            ("redis", "TimeoutError"),
            ("httpx", "TimeoutException"),
            ("httpcore", "TimeoutException"),
            ("aiohttp", "ServerTimeoutError"),
            ("aiohttp", "ConnectionTimeoutError"),
            ("aiohttp", "SocketTimeoutError"),
            ("requests", "Timeout"),
            ("requests", "ConnectTimeout"),
            ("urllib3", "TimeoutError"),
            ("botocore", "ReadTimeoutError"),
            ("botocore", "ConnectTimeoutError"),
        ],
        "timeout",
    ),
    ("redis", "BusyLoadingError"): "busy",
    **dict.fromkeys(
        [
            ("redis", "ResponseError"),
            ("httpx", "HTTPStatusError"),
            ("aiohttp", "ClientResponseError"),
            ("botocore", "ClientError"),
        ],
        "answer",
    ),
}


def error_family(error: BaseException) -> Family:
    """The family of ``error`` (see :data:`FAMILIES`). Never raises, imports nothing.

    The nearest class along the MRO that is known decides, builtin or a library's (by package
    and class name, as :func:`is_transient` matches them). A database driver's error with an
    SQLSTATE is decided by it first: class 08 and 57P03 are connection failures, 57014 (a
    statement timeout) a timeout, any other state the server's answer.
    """
    sql = False
    for cls in type(error).__mro__:
        family = _FAMILY_BY_CLASS.get(cls)
        if family is not None:
            return family
        key = class_key(cls)
        sql = sql or key[0] in _SQL_PACKAGES
        if sql:
            state = sqlstate_of(error)
            if state is not None:
                return _sql_family(state)
        family = _FAMILY_BY_KEY.get(key)
        if family is not None:
            return family
    return "other"


def _sql_family(state: str) -> Family:
    if state.startswith("08") or state in (CANNOT_CONNECT_NOW, TOO_MANY_CONNECTIONS):
        return "connection"
    return "timeout" if state == QUERY_CANCELED else "answer"
