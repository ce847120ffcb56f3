"""The transient-error classifier: by name along the MRO, attributes read defensively, never an
import; on the catalogue's stand-ins and on real errors raised by real clients (loopback only)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from tenacity import RetryCallState, Retrying

from retrysim.chaos.http_service import HttpService
from retrysim.chaos.proxy import FaultProxy
from retrysim.chaos.toxics import ResetPeer, Toxic
from retrysim.results.error_matrix import asks
from retrysim.retry import build_policy, retry_api_call, retry_metrics
from retrysim.retry.classify import (
    error_family,
    header_retry_after,
    is_transient,
    register_transient,
    retry_after_of,
    retry_if_transient,
    unregister_transient,
)
from retrysim.retry.exceptions import RateLimitedError, ServerError
from retrysim.retry.waits import wait_retry_after
from retrysim.sim.catalogue import BY_NAME, CATALOGUE, StandInResponse, stand_in

#: Library errors the classifier does not retry (a command error: the server answered).
PERMANENT_LIBRARY = ("redis.exceptions.ResponseError",)
TRANSIENT_LIBRARY = [
    e.name
    for e in CATALOGUE
    if "40001" not in e.note and "Response" not in e.name and e.name not in PERMANENT_LIBRARY
]


def _made(name: str, module: str, *bases: type, **attributes: Any) -> type[Exception]:
    return type(
        name, bases or (Exception,), {"__module__": module, "__qualname__": name, **attributes}
    )


@pytest.mark.parametrize("name", [*TRANSIENT_LIBRARY, "aiohttp.ClientResponseError"])
def test_every_transient_stand_in_is_transient(name: str) -> None:
    assert is_transient(stand_in(name)(name))


@pytest.mark.parametrize("name", [*PERMANENT_LIBRARY, "asyncpg.exceptions.SerializationError"])
def test_permanent_stand_ins_are_not(name: str) -> None:
    assert not is_transient(stand_in(name)(name))


def test_serialization_failures_are_opt_in() -> None:
    error = stand_in("asyncpg.exceptions.SerializationError")("x")
    assert not is_transient(error)
    assert is_transient(error, serialization=True)
    assert retry_if_transient(serialization=True)(_failed(error))
    assert not retry_if_transient()(_failed(error))


def test_builtins_match_the_default_set_exactly() -> None:
    transient: list[Exception] = [ConnectionRefusedError(), TimeoutError(), RateLimitedError()]
    permanent: list[Exception] = [OSError(), FileNotFoundError(), ServerError(), KeyError()]
    assert all(is_transient(error) for error in transient)
    assert not any(is_transient(error) for error in permanent)


def test_matched_by_package_and_name_whatever_the_private_module() -> None:
    base = _made("HTTPError", "httpx._exceptions")
    assert is_transient(_made("ConnectError", "httpx._exceptions", base)("x"))
    assert is_transient(_made("Sub", "myapp", _made("ConnectError", "httpx", base))("x"))
    assert not is_transient(_made("ConnectError", "notredis.x")("x"))  # another package


@pytest.mark.parametrize(
    ("status", "retried"), [(429, True), (503, True), (404, False), (500, False)]
)
def test_http_status_errors_by_status(status: int, retried: bool) -> None:
    cls = _made("HTTPStatusError", "httpx")
    error = cls("x")
    error.response = StandInResponse(status, {"Retry-After": "7"})  # type: ignore[attr-defined]
    assert is_transient(error) is retried
    aio = _made("ClientResponseError", "aiohttp.client_exceptions")("x")
    aio.status = status  # type: ignore[attr-defined]
    assert is_transient(aio) is retried
    assert retry_after_of(error) == 7.0


def test_odd_attributes_are_not_transient_and_never_raise() -> None:
    class Boom:
        @property
        def status_code(self) -> int:
            raise RuntimeError("no response")

    for response in (None, Boom(), "503", {"status_code": 503}):
        error = _made("HTTPStatusError", "httpx")("x")
        error.response = response  # type: ignore[attr-defined]
        assert not is_transient(error)
        assert header_retry_after(error) is None
    client = _made("ClientError", "botocore.exceptions")("x")
    answers: list[Any] = [None, {"Error": None}, {"Error": {"Code": 5}}, {"Error": {"Code": "X"}}]
    for answer in answers:
        client.response = answer  # type: ignore[attr-defined]
        assert not is_transient(client)
    client.response = {"Error": {"Code": "SlowDown"}}  # type: ignore[attr-defined]
    assert is_transient(client)


def test_sqlstates() -> None:
    pg = _made("PostgresError", "asyncpg.exceptions._base")
    for state, transient in (("08006", True), ("57P03", True), ("40001", False), ("23505", False)):
        assert is_transient(_made("Whatever", "asyncpg.exceptions", pg, sqlstate=state)("x")) is (
            transient
        )
    mine = _made("AppError", "myapp", _made("Whatever", "asyncpg.exceptions", pg))("x")
    mine.sqlstate = "08003"  # type: ignore[attr-defined]
    assert is_transient(mine)  # a subclass in the user's module still counts as the driver's
    psycopg = _made("IntegrityError", "psycopg")("x")
    psycopg.sqlstate = "08001"  # type: ignore[attr-defined]
    assert is_transient(psycopg)


def test_retry_after_header_reaches_the_wait() -> None:
    error = stand_in("httpx.HTTPStatusError")("x")
    wait = wait_retry_after(lambda state: 0.5, cap=60)  # type: ignore[arg-type]
    assert wait(_failed(error)) == 0.5  # the stand-in carries no header
    error.response = StandInResponse(503, {"Retry-After": "12"})  # type: ignore[attr-defined]
    assert wait(_failed(error)) == 12.0
    error.response = StandInResponse(503, {"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"})  # type: ignore[attr-defined]
    assert wait(_failed(error)) == 0.5


@pytest.fixture
def registered() -> Iterator[list[Any]]:
    added: list[Any] = []
    yield added
    for what in added:
        unregister_transient(what)


def test_register_transient_by_name_class_and_predicate(registered: list[Any]) -> None:
    by_name = _made("Unavailable", "mylib.errors")("x")
    mine = type("Busy", (Exception,), {})
    coded = _made("Coded", "other")("x")
    coded.code = "EAGAIN"  # type: ignore[attr-defined]
    assert not any(is_transient(e) for e in (by_name, mine("x"), coded))

    def eagain(error: BaseException) -> bool:
        return getattr(error, "code", None) == "EAGAIN"

    def broken(error: BaseException) -> bool:
        raise RuntimeError("a broken predicate must not replace the real error")

    for what in ("mylib.errors.Unavailable", mine, eagain, broken):
        register_transient(what)
        registered.append(what)
    assert all(is_transient(e) for e in (by_name, mine("x"), type("Sub", (mine,), {})("x"), coded))
    assert not is_transient(ValueError())
    with pytest.raises(ValueError, match=r"package\.module\.ClassName"):
        register_transient("nodots")
    with pytest.raises(TypeError):
        register_transient(42)  # type: ignore[arg-type]


def test_the_classifier_imports_no_library() -> None:
    code = (
        "import sys; from retrysim.retry.classify import is_transient; "
        "from retrysim.sim.failures import ERROR_CLASSES; "
        "[is_transient(c('x')) for c in ERROR_CLASSES.values()]; "
        "print([m for m in ('redis','httpx','aiohttp','requests','asyncpg','psycopg','botocore')"
        " if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _failed(error: BaseException) -> RetryCallState:
    state = RetryCallState(retry_object=Retrying(), fn=None, args=(), kwargs={})
    state.set_exception((type(error), error, None))
    return state


# --- real clients against a closed loopback port -------------------------------------------


@pytest.fixture
def closed_port() -> int:
    """A loopback port just bound and closed: nothing listens there, connects are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _real_redis_error(port: int) -> BaseException:
    redis = pytest.importorskip("redis")
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=2)
    with pytest.raises(redis.exceptions.ConnectionError) as raised:
        client.ping()
    error: BaseException = raised.value
    return error


def _real_httpx_error(port: int) -> BaseException:
    httpx = pytest.importorskip("httpx")
    with pytest.raises(httpx.ConnectError) as raised:
        httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
    error: BaseException = raised.value
    return error


@pytest.mark.parametrize("raise_real", [_real_redis_error, _real_httpx_error])
def test_real_outages_are_retried_by_documented_not_by_bindu(
    closed_port: int, raise_real: Any
) -> None:
    error = raise_real(closed_port)
    assert not isinstance(error, OSError)  # why the shipped predicate misses it
    assert is_transient(error)
    for op in ("worker", "storage", "scheduler", "api"):
        assert asks(build_policy(op, profile="documented"), error)
        assert not asks(build_policy(op, profile="bindu"), error)


@pytest.mark.parametrize("library", ["redis", "httpx"])
def test_stand_ins_have_the_real_ancestry(library: str) -> None:
    import importlib

    pytest.importorskip(library)
    for entry in (e for e in CATALOGUE if e.library == library):
        module, _, attr = entry.name.rpartition(".")
        real = getattr(importlib.import_module(module), attr)
        names = [(c.__module__, c.__qualname__) for c in real.__mro__]
        assert [(c.__module__, c.__qualname__) for c in stand_in(entry.name).__mro__] == names
        assert entry.name in BY_NAME


# --- a real reset through the fault proxy ----------------------------------------------------

DEADLINE = 10.0


def _through_proxy(toxics: Sequence[Toxic], seed: int = 0, upstream: Any = None) -> BaseException:
    """What httpx raises for one POST through a FaultProxy (``toxics``) in front of retrysim's
    own HTTP service, or in front of ``upstream`` (a coroutine function serving a connection)."""
    httpx = pytest.importorskip("httpx")

    async def main() -> BaseException:
        async with contextlib.AsyncExitStack() as stack:
            if upstream is None:
                address = (await stack.enter_async_context(HttpService())).address
            else:
                server = await asyncio.start_server(upstream, "127.0.0.1", 0)
                stack.push_async_callback(server.wait_closed)
                stack.callback(server.close)
                address = ("127.0.0.1", server.sockets[0].getsockname()[1])
            proxy = await stack.enter_async_context(FaultProxy(address, toxics, seed))
            url = f"http://127.0.0.1:{proxy.port}/"
            async with httpx.AsyncClient(trust_env=False, timeout=5) as client:
                with pytest.raises(httpx.TransportError) as raised:
                    await client.post(url)
        error: BaseException = raised.value
        return error

    return asyncio.run(asyncio.wait_for(main(), DEADLINE))


@pytest.mark.parametrize(
    "toxic",
    [
        ResetPeer(),  # the request reaches the service, the answer is reset before any byte
        ResetPeer(bytes=20),  # a reset part-way through the answer
        ResetPeer(stream="upstream", bytes=10),  # a reset part-way through the request
    ],
    ids=["before-answer", "mid-answer", "mid-request"],
)
def test_a_real_reset_is_a_transient_read_error_like_its_stand_in(toxic: ResetPeer) -> None:
    import httpx

    error = _through_proxy([toxic])
    assert type(error) is httpx.ReadError
    stand = stand_in("httpx.ReadError")("x")
    assert is_transient(error) and is_transient(stand)
    assert error_family(error) == error_family(stand) == "connection"
    assert retry_if_transient()(_failed(error))
    for op in ("worker", "storage", "scheduler", "api"):
        assert asks(build_policy(op, profile="documented"), error)


def test_a_real_answer_cut_short_is_a_transient_remote_protocol_error() -> None:
    """An upstream that closes (FIN, not RST) half-way through its answer, through the proxy:
    httpx says RemoteProtocolError, as urllib3 says ProtocolError for the same thing."""
    import httpx

    async def truncated(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b")
        await writer.drain()
        writer.close()

    error = _through_proxy([], upstream=truncated)
    assert type(error) is httpx.RemoteProtocolError
    assert is_transient(error) and is_transient(stand_in("httpx.RemoteProtocolError")("x"))
    assert error_family(error) == "connection"


def test_a_decorated_call_retries_a_real_reset_and_succeeds() -> None:
    """The first connection is reset, the retry's new one is not (the proxy draws per
    connection from its seed; the seed is found, not assumed)."""
    httpx = pytest.importorskip("httpx")
    toxics = [ResetPeer(toxicity=0.5)]
    upstream = ("127.0.0.1", 9)

    def resets(seed: int, connection: int) -> bool:
        return FaultProxy(upstream, toxics, seed).picked(0, connection, 0.0)

    seed = next(s for s in range(1000) if resets(s, 0) and not resets(s, 1))
    sent: list[int] = []

    async def main() -> int:
        async with (
            HttpService() as service,
            FaultProxy(service.address, toxics, seed) as proxy,
            httpx.AsyncClient(trust_env=False, timeout=5) as client,
        ):

            @retry_api_call(profile="documented", max_attempts=3, min_wait=0.0)
            async def fetch() -> int:
                sent.append(1)
                response = await client.post(f"http://127.0.0.1:{proxy.port}/")
                status: int = response.status_code
                return status

            return await fetch()

    assert asyncio.run(asyncio.wait_for(main(), DEADLINE)) == 200
    assert len(sent) == 2
    (ops,) = retry_metrics().values()
    assert ops.failures_by_type == {"ReadError": 1} and ops.successes_after_retry == 1
