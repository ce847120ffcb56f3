"""The allow-list of client-library errors a scenario may raise, and their stand-in classes.

A fault or a server can fail with ``error = "redis.exceptions.ConnectionError"``: only the
names listed here are accepted (a scenario file never names an arbitrary import path). The
simulator always raises a **stand-in**: a class made here with the real one's module,
qualified name and ancestry (``redis.exceptions.ConnectionError`` derives from a stand-in
``redis.exceptions.RedisError(Exception)``), plus the attributes the classifier reads (an HTTP
status, an SQLSTATE, an AWS error code). So a run is the same whether or not the library is
installed, nothing is imported to raise it, and :func:`retrysim.retry.classify.is_transient`
treats it exactly as it treats the real one (it looks classes up by name). ``retrysim errors``
also tries the real class when the library is installed (:mod:`retrysim.results.error_matrix`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Ancestor = tuple[str, str]  # (module, qualname)


@dataclass(frozen=True)
class LibraryError:
    """One catalogue entry: the class's full name, its ancestry up to a builtin base."""

    name: str  # "redis.exceptions.ConnectionError": what a scenario writes
    library: str  # the import name of the package ("redis")
    ancestry: tuple[Ancestor, ...]  # the class first, then its library bases, nearest first
    base: type[Exception] = Exception  # the builtin the library's root class derives from
    attributes: dict[str, Any] = field(default_factory=dict)  # class attributes of the stand-in
    note: str = ""  # what the instance carries ("status 503"), shown by ``retrysim errors``

    @property
    def module(self) -> str:
        return self.ancestry[0][0]

    @property
    def qualname(self) -> str:
        return self.ancestry[0][1]


class StandInResponse:
    """The ``response`` of a stand-in HTTP status error: ``status_code`` and ``headers``."""

    def __init__(self, status_code: int, headers: dict[str, str] | None = None) -> None:
        self.status_code = status_code
        self.headers = dict(headers or {})


_HTTPX = ("httpx", "HTTPError"), ("httpx", "RequestError"), ("httpx", "TransportError")
_REDIS = (("redis.exceptions", "RedisError"),)
_PG = (("asyncpg.exceptions._base", "PostgresError"),)
_AIOHTTP = "aiohttp.client_exceptions"
_BOTO = "botocore.exceptions"


def _chain(*ancestors: Ancestor) -> tuple[Ancestor, ...]:
    return ancestors


CATALOGUE: tuple[LibraryError, ...] = (
    LibraryError(
        "redis.exceptions.ConnectionError",
        "redis",
        _chain(("redis.exceptions", "ConnectionError"), *_REDIS),
    ),
    LibraryError(
        "redis.exceptions.TimeoutError",
        "redis",
        _chain(("redis.exceptions", "TimeoutError"), *_REDIS),
    ),
    LibraryError(
        "redis.exceptions.BusyLoadingError",
        "redis",
        _chain(
            ("redis.exceptions", "BusyLoadingError"),
            ("redis.exceptions", "ConnectionError"),
            *_REDIS,
        ),
    ),
    LibraryError(
        "redis.exceptions.ResponseError",
        "redis",
        _chain(("redis.exceptions", "ResponseError"), *_REDIS),
    ),
    LibraryError(
        "httpx.ConnectError",
        "httpx",
        _chain(("httpx", "ConnectError"), ("httpx", "NetworkError"), *reversed(_HTTPX)),
    ),
    LibraryError(
        "httpx.ConnectTimeout",
        "httpx",
        _chain(("httpx", "ConnectTimeout"), ("httpx", "TimeoutException"), *reversed(_HTTPX)),
    ),
    LibraryError(
        "httpx.ReadTimeout",
        "httpx",
        _chain(("httpx", "ReadTimeout"), ("httpx", "TimeoutException"), *reversed(_HTTPX)),
    ),
    LibraryError(
        "httpx.RemoteProtocolError",
        "httpx",
        _chain(("httpx", "RemoteProtocolError"), ("httpx", "ProtocolError"), *reversed(_HTTPX)),
    ),
    LibraryError(
        "httpx.HTTPStatusError",
        "httpx",
        _chain(("httpx", "HTTPStatusError"), ("httpx", "HTTPError")),
        attributes={"response": StandInResponse(503)},
        note="status 503",
    ),
    LibraryError(
        "aiohttp.ClientConnectionError",
        "aiohttp",
        _chain((_AIOHTTP, "ClientConnectionError"), (_AIOHTTP, "ClientError")),
    ),
    LibraryError(
        "aiohttp.ClientResponseError",
        "aiohttp",
        _chain((_AIOHTTP, "ClientResponseError"), (_AIOHTTP, "ClientError")),
        attributes={"status": 503, "headers": None},
        note="status 503",
    ),
    LibraryError(
        "requests.exceptions.ConnectionError",
        "requests",
        _chain(
            ("requests.exceptions", "ConnectionError"), ("requests.exceptions", "RequestException")
        ),
        base=OSError,
    ),
    LibraryError(
        "requests.exceptions.Timeout",
        "requests",
        _chain(("requests.exceptions", "Timeout"), ("requests.exceptions", "RequestException")),
        base=OSError,
    ),
    LibraryError(
        "urllib3.exceptions.ProtocolError",
        "urllib3",
        _chain(("urllib3.exceptions", "ProtocolError"), ("urllib3.exceptions", "HTTPError")),
    ),
    LibraryError(
        "asyncpg.exceptions.CannotConnectNowError",
        "asyncpg",
        _chain(
            ("asyncpg.exceptions", "CannotConnectNowError"),
            ("asyncpg.exceptions", "OperatorInterventionError"),
            *_PG,
        ),
        attributes={"sqlstate": "57P03"},
        note="SQLSTATE 57P03",
    ),
    LibraryError(
        "asyncpg.exceptions.SerializationError",
        "asyncpg",
        _chain(
            ("asyncpg.exceptions", "SerializationError"),
            ("asyncpg.exceptions", "TransactionRollbackError"),
            *_PG,
        ),
        attributes={"sqlstate": "40001"},
        note="SQLSTATE 40001 (opt-in)",
    ),
    LibraryError(
        "psycopg.OperationalError",
        "psycopg",
        _chain(("psycopg", "OperationalError"), ("psycopg", "DatabaseError"), ("psycopg", "Error")),
    ),
    LibraryError(
        "botocore.exceptions.EndpointConnectionError",
        "botocore",
        _chain(
            (_BOTO, "EndpointConnectionError"), (_BOTO, "ConnectionError"), (_BOTO, "BotoCoreError")
        ),
    ),
    LibraryError(
        "botocore.exceptions.ClientError",
        "botocore",
        _chain(
            (_BOTO, "ClientError"),
        ),
        attributes={"response": {"Error": {"Code": "ThrottlingException"}}},
        note="code ThrottlingException",
    ),
    # Last, so the record codes of the names before it stay what they were. What httpx raises
    # when the connection is reset (ECONNRESET) under a request: transient for the classifier,
    # like urllib3's ProtocolError for the same reset (an idempotent request is safe to retry).
    LibraryError(
        "httpx.ReadError",
        "httpx",
        _chain(("httpx", "ReadError"), ("httpx", "NetworkError"), *reversed(_HTTPX)),
    ),
)

BY_NAME: dict[str, LibraryError] = {entry.name: entry for entry in CATALOGUE}
LIBRARY_ERROR_NAMES: tuple[str, ...] = tuple(BY_NAME)

_CLASSES: dict[Ancestor, type[Exception]] = {}


def _class(ancestry: tuple[Ancestor, ...], base: type[Exception]) -> type[Exception]:
    key = ancestry[0]
    if key not in _CLASSES:
        parent = _class(ancestry[1:], base) if len(ancestry) > 1 else base
        module, qualname = key
        _CLASSES[key] = type(
            qualname.rpartition(".")[2],
            (parent,),
            {"__module__": module, "__qualname__": qualname, "__doc__": "retrysim stand-in"},
        )
    return _CLASSES[key]


def stand_in(name: str) -> type[Exception]:
    """The stand-in class of catalogue entry ``name`` (one class per name, made once)."""
    entry = BY_NAME[name]
    cls = _class(entry.ancestry, entry.base)
    for attribute, value in entry.attributes.items():
        setattr(cls, attribute, value)
    return cls
