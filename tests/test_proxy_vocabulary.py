"""The proxy's side of the new fault vocabulary, through a real loopback echo service: packet
loss at its configured rate (binomial tolerance) and with TCP's delays, count-based resets,
recurring windows, and toxics changed while connections are open."""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from retrysim.chaos import Down, EveryNth, FirstN, Latency, PacketLoss
from retrysim.chaos.toxics import STREAMS, LimitData, Slicer, SlowClose, toxics_from_scenario
from retrysim.chaos.toxiproxy_json import from_toxiproxy, to_toxiproxy
from retrysim.model.scenario import parse_scenario
from retrysim.sim.faults import loss_delay
from tests.test_chaos_proxy import outcome, proxied, request, run


def test_packet_loss_loses_transmissions_at_its_rate() -> None:
    """3,000 one-chunk exchanges on one connection through 20% loss each way: the lost share of
    transmissions (losses / (losses + deliveries)) is 0.2 within four binomial deviations."""
    p, exchanges = 0.2, 3000

    async def main() -> tuple[int, int]:
        toxics = [PacketLoss(stream=s, probability=p, rto=1e-4) for s in STREAMS]
        async with proxied(toxics, seed=11) as proxy:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            for i in range(exchanges):
                payload = f"{i:08d}".encode()
                writer.write(payload)
                await writer.drain()
                assert await reader.readexactly(len(payload)) == payload  # late, never lost
            writer.close()
            return proxy.stats.segments, proxy.stats.transmissions_lost

    segments, lost = run(main)
    assert segments == 2 * exchanges
    trials = segments + lost
    assert abs(lost / trials - p) < 4 * math.sqrt(p * (1 - p) / trials)


def test_a_lost_segment_arrives_after_the_retransmission_timeouts() -> None:
    """With 50% loss on the answer and a 50 ms RTO, every exchange takes at least the delay of
    its own losses (rto, 3 rto, ...) as the proxy drew them; at least one was held 150 ms."""

    async def main() -> list[tuple[float, float]]:
        loss = PacketLoss(stream="downstream", probability=0.5, rto=0.05)
        timings = []
        async with proxied([loss], seed=2) as proxy:
            for _ in range(12):
                lost_before = proxy.stats.transmissions_lost
                began = time.perf_counter()
                assert await request(proxy.port, b"x") == b"x"
                k = proxy.stats.transmissions_lost - lost_before
                timings.append((time.perf_counter() - began, loss_delay(k, 0.05)))
        return timings

    timings = run(main)
    assert all(took >= held * 0.95 for took, held in timings)
    assert max(held for _, held in timings) >= 0.15 - 1e-9


def test_first_n_resets_the_first_requests_then_lets_all_through() -> None:
    async def main() -> list[str]:
        async with proxied([FirstN(n=3)]) as proxy:
            seen = [await outcome(proxy.port) for _ in range(6)]
            assert proxy.stats.counted_resets == 3
            return seen

    assert run(main) == ["reset", "reset", "reset", "ok", "ok", "ok"]


def test_every_nth_resets_every_nth_request_on_an_open_connection_too() -> None:
    """Requests are counted, not connections: the third request of a kept connection is reset."""

    async def main() -> tuple[list[str], str]:
        async with proxied([EveryNth(n=3)]) as proxy:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            for payload in (b"a", b"b"):
                writer.write(payload)
                await writer.drain()
                assert await reader.readexactly(1) == payload
            writer.write(b"c")
            await writer.drain()
            third = "ok"
            try:
                if not await reader.read(1):
                    third = "eof"
            except ConnectionError:
                third = "reset"
            writer.close()
            return [await outcome(proxy.port) for _ in range(3)], third

    later, third = run(main)
    assert third in ("reset", "eof")
    assert later == ["ok", "ok", "reset"]  # requests 4 and 5 pass, the 6th is reset


def test_a_recurring_down_refuses_only_in_its_recurrences() -> None:
    """Down for 0.2 s of every 0.4 s: connections made well inside the on part are refused,
    those well inside the off part are not (50 ms of margin for the loop's own lag)."""

    async def main() -> list[tuple[float, str]]:
        down = Down(start=0.0, end=1.6, every=0.4, duration=0.2)
        seen = []
        async with proxied([down]) as proxy:
            while (at := proxy.elapsed()) < 1.8:  # connection after connection, no pause
                seen.append((at, await outcome(proxy.port)))
        return seen

    seen = run(main)
    for at, result in seen:
        phase = at % 0.4
        if at < 1.55 and 0.01 < phase < 0.15:
            assert result == "reset", (at, result)
        elif at >= 1.65 or 0.25 < phase < 0.35:
            assert result == "ok", (at, result)
    assert {r for _, r in seen} == {"ok", "reset"}


def test_a_toxic_added_while_a_connection_is_open_applies_to_its_next_chunk() -> None:
    async def main() -> tuple[float, float, float]:
        async with proxied() as proxy:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)

            async def exchange() -> float:
                began = time.perf_counter()
                writer.write(b"ping")
                await writer.drain()
                assert await reader.readexactly(4) == b"ping"
                return time.perf_counter() - began

            before = await exchange()
            latency = Latency(latency=0.2)
            proxy.set_toxics([latency])
            during = await exchange()
            proxy.set_toxics([])
            after = await exchange()
            writer.close()
            return before, during, after

    before, during, after = run(main)
    assert during >= 0.2 and before < 0.1 and after < 0.1


def test_a_down_added_at_runtime_resets_open_connections() -> None:
    async def main() -> str:
        async with proxied() as proxy:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            writer.write(b"a")
            await writer.drain()
            assert await reader.readexactly(1) == b"a"
            proxy.set_toxics([Down()])
            try:
                got = await asyncio.wait_for(reader.read(1), 2.0)
            except ConnectionError:
                return "reset"
            finally:
                writer.close()
            return "eof" if not got else "data"

    assert run(main) in ("reset", "eof")


def test_the_scenarios_new_kinds_become_the_proxys_toxics() -> None:
    scenario = parse_scenario(
        {
            "faults": [
                {"kind": "packet_loss", "probability": 0.1, "rto": 0.3, "every": 60, "for": 10},
                {"kind": "first_n", "n": 5, "start": 2},
                {"kind": "every_nth", "n": 4, "end": 9},
            ]
        }
    )
    up, down, first, nth = toxics_from_scenario(scenario)
    for toxic, stream in zip((up, down), STREAMS, strict=True):
        assert toxic == PacketLoss(
            stream=stream, probability=0.1, rto=0.3, every=60, duration=10, source=0
        )
    assert first == FirstN(start=2, n=5, source=1)
    assert nth == EveryNth(end=9, n=4, source=2)


def test_a_faults_toxics_draw_on_that_faults_stream_as_in_the_simulator() -> None:
    """A packet loss is two toxics of one fault: both draw on its stream, and the fault after
    it on its own, FAULT_BASE + its index, not shifted by the extra toxic."""
    from retrysim.chaos import FaultProxy
    from retrysim.sim.streams import FAULT_BASE, stream_key

    scenario = parse_scenario(
        {
            "faults": [
                {"kind": "packet_loss", "probability": 0.1},
                {"kind": "flaky", "probability": 0.5},
            ]
        }
    )
    proxy = FaultProxy(("127.0.0.1", 9), scenario, seed=5)
    fault = [stream_key(5, FAULT_BASE + index) for index in (0, 1)]
    assert proxy.keys == [fault[0], fault[0], fault[1]]
    added = Latency(latency=0.1)
    proxy.set_toxics([*proxy.toxics, added])  # not started: the keys are all that changes
    assert proxy.keys[-1] == stream_key(5, FAULT_BASE + 2)


def test_toxiproxy_json_round_trips_the_new_types() -> None:
    for toxic in (
        PacketLoss(stream="upstream", probability=0.25, rto=0.3),
        FirstN(n=4),
        EveryNth(n=3, toxicity=0.5),
        Latency(latency=0.05, jitter=0.01),
    ):
        assert from_toxiproxy(to_toxiproxy(toxic)) == toxic
    assert to_toxiproxy(PacketLoss(probability=0.1))["attributes"] == {
        "probability": 0.1,
        "rto": 200.0,
    }


def test_a_slicer_cuts_the_answer_into_pieces_a_delay_apart() -> None:
    """A 100-byte answer in 10-byte pieces 20 ms apart: ten reads of at most 10 bytes, the
    last at least 9 delays after the first."""

    async def main() -> tuple[list[int], float]:
        slicer = Slicer(average_size=10, size_variation=0, delay=0.02)
        async with proxied([slicer]) as proxy:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            writer.write(b"x" * 100)
            await writer.drain()
            sizes: list[int] = []
            first = last = 0.0
            while sum(sizes) < 100:
                sizes.append(len(await reader.read(1000)))
                last = time.perf_counter()
                first = first or last
            writer.close()
            assert proxy.stats.sliced == 1
            return sizes, last - first

    sizes, spread = run(main)
    assert sum(sizes) == 100 and max(sizes) <= 10 and len(sizes) == 10
    assert spread >= 9 * 0.02 * 0.95


def test_limit_data_closes_after_its_bytes_without_a_reset() -> None:
    async def main() -> tuple[bytes, int]:
        async with proxied([LimitData(bytes=10)]) as proxy:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            writer.write(b"y" * 100)
            await writer.drain()
            got = await reader.read()  # to EOF: a reset would raise instead
            writer.close()
            return got, proxy.stats.limited

    got, limited = run(main)
    assert got == b"y" * 10 and limited == 1


def test_slow_close_holds_the_end_of_the_answer() -> None:
    async def main() -> float:
        async with proxied([SlowClose(delay=0.2)]) as proxy:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            writer.write(b"z")
            writer.write_eof()  # the echo service then closes its side
            assert await reader.readexactly(1) == b"z"
            answered = time.perf_counter()
            assert await reader.read() == b""
            writer.close()
            assert proxy.stats.slow_closes == 1
            return time.perf_counter() - answered

    assert run(main) >= 0.19


def test_toxiproxy_json_round_trips_toxiproxys_own_types_in_its_units() -> None:
    slicer = {"average_size": 64, "size_variation": 16, "delay": 500}
    assert to_toxiproxy(from_toxiproxy({"type": "slicer", "attributes": slicer}))["attributes"] == {
        "average_size": 64,
        "size_variation": 16,
        "delay": 500.0,
    }
    assert from_toxiproxy({"type": "slow_close", "attributes": {"delay": 250}}) == SlowClose(
        delay=0.25
    )
    assert from_toxiproxy(
        {"type": "limit_data", "stream": "upstream", "attributes": {"bytes": 7}}
    ) == LimitData(stream="upstream", bytes=7)


def test_a_toxic_on_listed_connections_spares_the_others() -> None:
    """Down on connection 1 only: the second connection is refused, the first and third pass;
    a FirstN on connection 0 counts only that connection's requests."""

    async def main() -> tuple[list[str], int]:
        async with proxied([Down(connections=frozenset({1}))]) as proxy:
            seen = [await outcome(proxy.port) for _ in range(3)]
        async with proxied([FirstN(n=5, connections=frozenset({0}))]) as proxy:
            assert await outcome(proxy.port) == "reset"  # connection 0: counted, fails
            spared = [await outcome(proxy.port) for _ in range(3)]
            assert spared == ["ok"] * 3
            return seen, proxy.stats.counted_resets

    seen, counted = run(main)
    assert seen == ["ok", "reset", "ok"] and counted == 1


def test_the_http_service_leaves_the_proxys_faults_to_the_proxy() -> None:
    """A slicer and packet loss are the proxy's: retrysim's HTTP service must not add their
    delays to its answers as well (they would count twice), and a fault only the proxy can
    apply (slow_close) must not stop the service from starting."""
    from retrysim.chaos.http_service import HttpService

    scenario = parse_scenario(
        {
            "service": {"kind": "ideal", "latency": 0.002},
            "faults": [
                {"kind": "slicer", "average_size": 10, "delay": 0.5, "answer_bytes": 100},
                {"kind": "packet_loss", "probability": 0.9, "rto": 1.0},
                {"kind": "slow_close", "delay": 1.0},
                {"kind": "latency_spike", "start": 5, "end": 6, "extra": 0.25},
            ],
        }
    )
    service = HttpService(scenario, seed=1)
    assert [service.decide(1.0, call, 1) for call in range(20)] == [(200, 0.002, None)] * 20
    status, delay, hint = service.decide(5.5, 0, 1)  # the service's own spike
    assert (status, hint) == (200, None) and delay == pytest.approx(0.252)
