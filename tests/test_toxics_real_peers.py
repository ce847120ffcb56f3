"""Each of the proxy's new toxics in front of a real redis-server and retrysim's own HTTP
service, seen by a real client (redis-py, httpx, or a raw socket where a library hides it):
packet loss slows but never loses, counts reset the requests they count, a slicer cuts the
answer yet it arrives whole, a slow close holds the FIN, a data limit cuts the answer off."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, TypeVar

import httpx
import pytest
import redis.asyncio as aredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from retrysim.chaos import EveryNth, FaultProxy, FirstN, PacketLoss
from retrysim.chaos.http_service import HttpService
from retrysim.chaos.redis_target import private_redis
from retrysim.chaos.toxics import STREAMS, LimitData, Slicer, SlowClose, Toxic

T = TypeVar("T")
DEADLINE = 15.0


@pytest.fixture(scope="module")
def redis_port(redis_server: str) -> Iterator[int]:
    with private_redis(redis_server) as port:
        yield port


def run(main: Callable[[], Awaitable[T]]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(main(), DEADLINE)

    return asyncio.run(bounded())


def redis_client(port: int) -> aredis.Redis:
    """One connection at a time, no retries of redis-py's own: each failure is seen."""
    return aredis.Redis(port=port, socket_timeout=5, retry=Retry(NoBackoff(), 0))


async def redis_calls(port: int, calls: int) -> list[tuple[str, float]]:
    """(outcome, seconds) of ``calls`` PINGs, a new client after each failure."""
    seen: list[tuple[str, float]] = []
    client = redis_client(port)
    for _ in range(calls):
        began = time.perf_counter()
        try:
            assert await client.ping() is True
            seen.append(("ok", time.perf_counter() - began))
        except RedisConnectionError:
            seen.append(("failed", time.perf_counter() - began))
            await client.aclose()
            client = redis_client(port)
    await client.aclose()
    return seen


async def http_calls(port: int, calls: int) -> list[tuple[str, float]]:
    seen: list[tuple[str, float]] = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:
        for _ in range(calls):
            began = time.perf_counter()
            try:
                answer = await client.post("/work", content=b"x" * 200)
                outcome = "ok" if answer.status_code == 200 else f"status {answer.status_code}"
            except httpx.TransportError:
                outcome = "failed"
            seen.append((outcome, time.perf_counter() - began))
    return seen


async def through_redis(port: int, toxics: Sequence[Toxic], calls: int) -> tuple[Any, list[Any]]:
    async with FaultProxy(("127.0.0.1", port), toxics, seed=3) as proxy:
        return proxy.stats, await redis_calls(proxy.port, calls)


async def through_http(toxics: Sequence[Toxic], calls: int) -> tuple[Any, list[Any]]:
    async with (
        HttpService() as service,
        FaultProxy(("127.0.0.1", service.port), toxics, seed=3) as proxy,
    ):
        return proxy.stats, await http_calls(proxy.port, calls)


PEERS = ["redis", "http"]


def through(
    peer: str, redis_port: int, toxics: Sequence[Toxic], calls: int
) -> tuple[Any, list[Any]]:
    if peer == "redis":
        return run(lambda: through_redis(redis_port, toxics, calls))
    return run(lambda: through_http(toxics, calls))


@pytest.mark.parametrize("peer", PEERS)
def test_packet_loss_delays_by_the_rto_and_loses_nothing(peer: str, redis_port: int) -> None:
    loss = [PacketLoss(stream=s, probability=0.3, rto=0.04) for s in STREAMS]
    stats, seen = through(peer, redis_port, loss, 15)
    assert [outcome for outcome, _ in seen] == ["ok"] * 15
    assert stats.transmissions_lost > 0
    assert max(took for _, took in seen) >= 0.04


@pytest.mark.parametrize("peer", PEERS)
def test_first_n_fails_requests_until_its_count_is_spent(peer: str, redis_port: int) -> None:
    stats, seen = through(peer, redis_port, [FirstN(n=3)], 8)
    outcomes = [outcome for outcome, _ in seen]
    assert stats.counted_resets == 3
    assert outcomes[0] == "failed" and "failed" not in outcomes[3:]
    assert outcomes[-1] == "ok"


@pytest.mark.parametrize("peer", PEERS)
def test_every_nth_keeps_failing_requests(peer: str, redis_port: int) -> None:
    stats, seen = through(peer, redis_port, [EveryNth(n=3)], 12)
    outcomes = [outcome for outcome, _ in seen]
    assert stats.counted_resets >= 3
    assert outcomes.count("failed") == stats.counted_resets
    assert outcomes.count("ok") >= 6


@pytest.mark.parametrize("peer", PEERS)
def test_a_sliced_answer_arrives_whole_and_later(peer: str, redis_port: int) -> None:
    slicer = Slicer(average_size=2, size_variation=1, delay=0.01)
    stats, seen = through(peer, redis_port, [slicer], 3)
    assert [outcome for outcome, _ in seen] == ["ok"] * 3
    assert stats.sliced >= 3
    assert min(took for _, took in seen) >= 0.02  # +PONG\r\n, or an HTTP head: 3 pieces at least


@pytest.mark.parametrize("peer", PEERS)
def test_a_data_limit_cuts_the_answer_off(peer: str, redis_port: int) -> None:
    stats, seen = through(peer, redis_port, [LimitData(bytes=3)], 2)
    assert [outcome for outcome, _ in seen] == ["failed", "failed"]
    assert stats.limited == 2


async def raw_exchange(port: int, request: bytes) -> tuple[bytes, float]:
    """Send ``request``, close our side, read to EOF: (what came, seconds from the last byte of
    the answer to the EOF)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    writer.write_eof()
    got, last = b"", time.perf_counter()
    while data := await reader.read(65536):
        got, last = got + data, time.perf_counter()
    held = time.perf_counter() - last
    writer.close()
    return got, held


@pytest.mark.parametrize("peer", PEERS)
def test_a_slow_close_holds_the_servers_close(peer: str, redis_port: int) -> None:
    async def main() -> tuple[bytes, float, int]:
        slow: list[Toxic] = [SlowClose(delay=0.25)]
        if peer == "redis":
            async with FaultProxy(("127.0.0.1", redis_port), slow) as proxy:
                got, held = await raw_exchange(proxy.port, b"QUIT\r\n")
                return got, held, proxy.stats.slow_closes
        async with (
            HttpService() as service,
            FaultProxy(("127.0.0.1", service.port), slow) as proxy,
        ):
            request = b"POST /work HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
            got, held = await raw_exchange(proxy.port, request + b"Connection: close\r\n\r\n")
            return got, held, proxy.stats.slow_closes

    got, held, slowed = run(main)
    assert got.startswith(b"+OK" if peer == "redis" else b"HTTP/1.1 200")
    assert held >= 0.24 and slowed == 1
