"""``retrysim chaos SCENARIO --target http://127.0.0.1:PORT``: the scenario's HTTP faults put in
front of the user's OWN service by the gateway (``retrysim.chaos.http_gateway``).

The user's service here is the standard library's ``http.server`` in a thread on a free
loopback port, counting the requests it serves: what reaches it is what the gateway forwarded,
and nothing a fault answered.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from retrysim.chaos.http_gateway import HttpGateway, fault_layer
from retrysim.cli.app import app
from retrysim.model.scenario import Scenario
from retrysim.model.toml_edit import dumps as toml_dumps

pytest.importorskip("httpx")


class _Served:
    """The user's service's count of requests served, across its threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0

    def add(self) -> None:
        with self.lock:
            self.count += 1


@pytest.fixture
def users_service() -> Iterator[tuple[int, _Served]]:
    """A plain HTTP/1.1 service (200 "done" to every POST), as a user would write one."""
    served = _Served()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # its head and body go out at once, no 40 ms stall

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            served.add()
            self.send_response(200)
            self.send_header("Content-Length", "4")
            self.end_headers()
            self.wfile.write(b"done")

        def log_message(self, *args: Any) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        request_queue_size = 128  # 5 by default: a burst of 10 connects would wait for SYNs

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server.server_address[1], served
    server.shutdown()
    server.server_close()
    thread.join(5.0)


def _scenario(faults: list[dict[str, Any]], **changes: Any) -> dict[str, Any]:
    """10 calls at once, each POSTing through retrysim.retry's decorator (Retry-After honoured)."""
    data: dict[str, Any] = {
        "name": "target-429",
        "seed": 3,
        "duration": 1.0,
        "policy": {
            "operation": "api",
            "max_attempts": 6,
            "min_wait": 0.05,
            "max_wait": 0.1,
            "jitter": 0.0,
            "respect_retry_after": True,
        },
        "clients": {"count": 10, "calls_per_client": 1, "timeout": 1.0},
        "service": {"kind": "ideal", "latency": 0.001},
        "faults": faults,
    }
    data.update(changes)
    return data


def _toml(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(toml_dumps(data), encoding="utf-8")
    return path


def test_the_fleet_gets_429s_with_retry_after_and_faulted_requests_never_reach_the_service(
    users_service: tuple[int, _Served], tmp_path: Path
) -> None:
    """Every attempt in [0, 1.35) s is answered 429 with Retry-After: 0.8 by the gateway:
    attempts at 0 and 0.8 s are refused, the one at 1.6 s passes (as with --start-http's
    service, tests/test_chaos_http.py says why the margins hold under load)."""
    port, served = users_service
    faults = [
        {
            "kind": "flaky",
            "start": 0,
            "end": 1.35,
            "probability": 1.0,
            "error": "RateLimited",
            "retry_after": 0.8,
        }
    ]
    path = _toml(tmp_path / "target-429.toml", _scenario(faults))
    args = ["chaos", str(path), "--target", f"http://127.0.0.1:{port}/", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["target"] == f"http://127.0.0.1:{port}/"
    gateway = doc["service"]
    assert gateway["rate_limited"] == 20 and gateway["requests"] == 30
    assert gateway["forwarded"] == 10 == served.count  # the 429s never reached it
    assert gateway["ok"] == 10 and gateway["upstream_failed"] == 0
    assert doc["failures_by_type"]["RateLimited"] == 20
    assert doc["calls"]["succeeded"] == 10 and doc["attempts"]["total"] == 30
    # the client waited the hint each 429 carried, not the 0.1 s backoff: Retry-After arrived
    assert doc["retry_wait"]["total"] == pytest.approx(20 * 0.8)
    assert doc["duplicates"] == 0


async def _raw(port: int, body: bytes = b"x") -> tuple[bytes, float]:
    """One POST with no retrysim headers (a user's own client), its whole answer and time."""
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = f"POST /work HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
    writer.write(head.encode() + b"Connection: close\r\n\r\n" + body)
    try:
        answer = await reader.read()
    finally:
        writer.close()
    return answer, time.perf_counter() - started


def _faults(**fields: Any) -> Scenario:
    """A scenario whose windows the gateways below are put in by their ``origin``: a 429 in
    [0, 100), a 0.3 s spike in [100, 200), a coin-flip 503 in [200, 300), nothing after."""
    faults = [
        {"kind": "outage", "start": 0, "end": 100, "error": "RateLimited", "retry_after": 2.5},
        {"kind": "latency_spike", "start": 100, "end": 200, "extra": 0.3},
        {
            "kind": "flaky",
            "start": 200,
            "end": 300,
            "probability": 0.5,
            "error": "httpx.HTTPStatusError",
        },
        {"kind": "reset", "start": 400, "end": 500, "probability": 1.0},
    ]
    return Scenario.model_validate(_scenario(faults, duration=600, **fields))


def test_a_raw_request_gets_the_fault_the_spike_or_the_service(
    users_service: tuple[int, _Served],
) -> None:
    port, served = users_service
    scenario = _faults()

    async def main() -> dict[str, Any]:
        now = asyncio.get_running_loop().time()
        found: dict[str, Any] = {}
        for name, at in (("429", 50), ("spike", 150), ("flaky", 250), ("clear", 350)):
            gateway = HttpGateway(("127.0.0.1", port), scenario, origin=now - at)
            async with gateway:
                if name == "flaky":
                    found[name] = [(await _raw(gateway.port))[0] for _ in range(20)]
                else:
                    found[name] = await _raw(gateway.port)
                found[f"{name} stats"] = gateway.stats
                found[f"{name} served"] = served.count
        return found

    found = asyncio.run(main())
    answer, _ = found["429"]
    assert answer.startswith(b"HTTP/1.1 429 Too Many Requests\r\n")
    assert b"\r\nRetry-After: 2.5\r\n" in answer
    assert found["429 served"] == 0 and found["429 stats"].forwarded == 0
    answer, took = found["spike"]
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"done")
    assert took >= 0.3 and found["spike stats"].delayed == 1
    assert found["spike served"] == 1
    # a request without retrysim's headers is a call of its own: the coin is flipped each time
    unavailable = sum(a.startswith(b"HTTP/1.1 503 ") for a in found["flaky"])
    passed = sum(a.startswith(b"HTTP/1.1 200 ") for a in found["flaky"])
    assert 0 < unavailable < 20 and unavailable + passed == 20
    assert found["flaky served"] - 1 == passed == found["flaky stats"].forwarded
    answer, took = found["clear"]
    assert answer.endswith(b"done") and took < 0.3
    assert found["clear served"] == 2 + passed


def test_the_fault_layer_resets_where_the_proxy_does(users_service: tuple[int, _Served]) -> None:
    """A reset fault is the proxy's, in front of the gateway: the service does the work and
    the client is reset before any of the answer."""
    port, served = users_service
    scenario = _faults()

    async def main() -> tuple[bytes | BaseException, int]:
        now = asyncio.get_running_loop().time()
        async with fault_layer(("127.0.0.1", port), scenario, origin=now - 450) as layer:
            proxy, _ = layer
            try:
                answer: bytes | BaseException = (await _raw(proxy.port))[0]
            except OSError as error:
                answer = error
            return answer, proxy.stats.reset

    answer, resets = asyncio.run(main())
    assert isinstance(answer, ConnectionResetError) or answer == b"", answer
    assert resets == 1 and served.count == 1


def _one_line(args: list[str], expected: str) -> None:
    result = CliRunner().invoke(app, ["chaos", *args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr


def test_bad_targets_are_one_line_and_exit_2(tmp_path: Path) -> None:
    path = _toml(tmp_path / "s.toml", _scenario([]))
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _one_line([str(path), "--target", f"http://127.0.0.1:{port}"], "nothing listens at")
    _one_line([str(path), "--target", "http://192.0.2.7:80"], "only a loopback host")
    _one_line([str(path), "--target", "http://[::1]"], "with a port in 1..65535")
    both = [str(path), "--target", f"http://127.0.0.1:{port}", "--start-http"]
    _one_line(both, "give one of")
    _one_line([*both[:3], "--start-redis"], "give one of")


def test_answers_are_relayed_as_framed_chunked_or_to_the_end() -> None:
    """A chunked answer passes whole and the connection stays open for the next request; an
    HTTP/1.0 answer with no length runs to the end of the connection, which then closes."""

    async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while head := await reader.readuntil(b"\r\n\r\n"):
            if head.startswith(b"POST /chunked "):
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                writer.write(b"4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n")
                await writer.drain()
                continue
            writer.write(b"HTTP/1.0 200 OK\r\n\r\nall of it")
            await writer.drain()
            writer.close()
            return

    async def main() -> tuple[bytes, bytes, bytes, int]:
        server = await asyncio.start_server(upstream, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server, HttpGateway(("127.0.0.1", port)) as gateway:
            reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
            ask = b"POST /chunked HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
            answers = []
            for _ in range(2):  # the same connection both times
                writer.write(ask)
                answers.append(await reader.readuntil(b"0\r\n\r\n"))
            writer.write(ask.replace(b"/chunked", b"/eof"))
            answers.append(await reader.read())  # to the end: the gateway closed it
            writer.close()
            return answers[0], answers[1], answers[2], gateway.stats.connections

    first, second, last, connections = asyncio.run(main())
    assert first == second and first.endswith(b"\r\n\r\n4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n")
    assert last == b"HTTP/1.0 200 OK\r\n\r\nall of it" and connections == 1
