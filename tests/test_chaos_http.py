"""``retrysim chaos`` against HTTP: retrysim's own loopback service, httpx clients, the proxy.

The service's schedule is checked without waiting for its windows: a service made with an
``origin`` in the past is already inside them. The real runs are a second or two of real time
each, with windows placed so that every call makes the same attempts on every seed, with a few
tenths of a second of margin for a loaded machine.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from typer.testing import CliRunner

from retrysim.chaos.http_run import check_http, http_error_code, run_http
from retrysim.chaos.http_service import HttpService, split_faults
from retrysim.chaos.http_target import HttpTarget, parse_http_target
from retrysim.chaos.toxics import ChaosError
from retrysim.cli.app import app
from retrysim.model.scenario import Scenario
from retrysim.model.toml_edit import dumps as toml_dumps
from retrysim.sim import records as rec
from retrysim.sim.attempt import AttemptPhases
from retrysim.sim.failures import CODES
from retrysim.sim.faults import compile_faults
from retrysim.sim.invariants import violations
from retrysim.sim.service import service_latency

T = TypeVar("T")
DEADLINE = 10.0


def run(main: Callable[[], Awaitable[T]]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(main(), DEADLINE)

    return asyncio.run(bounded())


SCHEDULE: dict[str, Any] = {
    "name": "schedule",
    "seed": 4,
    "service": {"kind": "ideal", "latency": 0.001},
    "faults": [
        {"kind": "outage", "start": 0, "end": 5, "error": "ConnectionRefusedError"},  # proxy's
        {"kind": "outage", "start": 10, "end": 20, "error": "RateLimited", "retry_after": 0.5},
        {"kind": "outage", "start": 20, "end": 30, "error": "httpx.HTTPStatusError"},
        {"kind": "outage", "start": 30, "end": 40, "error": "ServerError"},
        {"kind": "latency_spike", "start": 40, "end": 50, "extra": 0.2},
        {"kind": "flaky", "start": 50, "end": 60, "probability": 0.5, "error": "RateLimited"},
    ],
}


async def _post(port: int, headers: dict[str, str] | None = None) -> tuple[httpx.Response, float]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:
        started = time.perf_counter()
        response = await client.post("/", headers=headers or {})
        return response, time.perf_counter() - started


def test_the_service_answers_429_503_500_and_slow_on_schedule(record_property: Any) -> None:
    scenario = Scenario.model_validate(SCHEDULE)

    async def at(elapsed: float) -> tuple[httpx.Response, float]:
        origin = asyncio.get_running_loop().time() - elapsed
        async with HttpService(scenario, scenario.seed, origin=origin) as service:
            return await _post(service.port)

    async def main() -> dict[float, tuple[httpx.Response, float]]:
        return {t: await at(t) for t in (2.0, 15.0, 25.0, 35.0, 45.0, 65.0)}

    answers = run(main)
    # a connection fault is the proxy's: the service itself answers 200
    assert answers[2.0][0].status_code == 200
    limited = answers[15.0][0]
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "0.5"
    assert answers[25.0][0].status_code == 503 and "Retry-After" not in answers[25.0][0].headers
    assert answers[35.0][0].status_code == 500
    ok, took = answers[45.0]
    record_property("spike_answer", took)
    record_property("plain_answer", answers[65.0][1])
    # the spike: a slow answer. Measured with one core kept busy (20 runs, scripts/under_load.py):
    # 205 to 246 ms with the spike, 6 to 26 ms without, against bounds of 0.2 to 1.0 s and 0.2 s
    assert ok.status_code == 200 and 0.2 <= took < 1.0
    assert answers[65.0][0].status_code == 200 and answers[65.0][1] < 0.2


def test_the_service_draws_as_the_simulator_does() -> None:
    """Same seed, same (call, attempt): the service fails exactly the attempts the simulator
    fails, though the proxy's fault comes first in the list (indices are the scenario's)."""
    scenario = Scenario.model_validate(SCHEDULE)
    service = HttpService(scenario, scenario.seed)
    plan = compile_faults(scenario.faults, scenario.seed)
    phases = AttemptPhases(plan, service_latency(scenario.service), scenario.seed)
    failed = 0
    for key in range(400):
        for attempt in (1, 2):
            status, _, hint = service.decide(55.0, key, attempt)
            expected = phases.door(55.0, key, attempt)
            assert (status == 429) == (expected == CODES["RateLimited"])
            assert hint is None  # the flaky one has no hint
            failed += status == 429
    assert 300 < failed < 500  # about half of 800
    mine, proxys = split_faults(scenario.faults)
    assert [f.kind for f in proxys] == ["outage"] and len(mine) == 5


def test_the_service_keeps_connections_and_rejects_garbage() -> None:
    async def main() -> tuple[bytes, bytes, int]:
        async with HttpService() as service:
            reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
            request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"
            writer.write(request + request)
            first = await reader.readuntil(b"200 OK\n")
            second = await reader.readuntil(b"200 OK\n")
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
            writer.write(b"nonsense\r\n\r\n")
            bad = await reader.read()  # answered, then closed
            writer.close()
            return first + second, bad, service.stats.bad_requests

    both, bad, bad_requests = run(main)
    assert both.count(b"HTTP/1.1 200 OK") == 2 and b"keep-alive" in both
    assert bad.startswith(b"HTTP/1.1 400") and bad_requests == 1


def _scenario(**changes: Any) -> Scenario:
    """10 calls at once, all in a 429 window of 1.35 s whose Retry-After (0.8 s) outlasts the
    backoff: attempts at 0 and 0.8 s are refused and the one at 1.6 s gets through, so every
    call makes 3 attempts on every seed. A real attempt starts late by what the earlier ones
    took (connects through the proxy, the 429s): up to 0.27 s with both cores busy with other
    work, inside the margins (0.55 s before the window's end for the second attempt, at least
    0.25 s after it for the third). Measured, 20 runs with one core kept busy (`python
    scripts/under_load.py tests/test_chaos_http.py`): 3.0 attempts a call every run; in the
    503 test below, on the same timings, attempt 2 last started 0.83 to 0.93 s (up to 0.13 s
    late) and attempt 3 first 1.63 to 1.73 s.
    """
    data: dict[str, Any] = {
        "name": "http-429",
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
        "faults": [
            {"kind": "outage", "start": 0, "end": 1.35, "error": "RateLimited", "retry_after": 0.8}
        ],
    }
    data.update(changes)
    return Scenario.model_validate(data)


def _write(path: Path, scenario: Scenario) -> None:
    data = scenario.model_dump(mode="json", exclude_none=True)
    path.write_text(toml_dumps(data), encoding="utf-8")


def test_a_real_run_via_the_cli_falls_in_the_simulated_interval(
    tmp_path: Path, record_property: Any
) -> None:
    path = tmp_path / "http-429.toml"
    _write(path, _scenario())
    args = ["chaos", str(path), "--start-http", "--vs-sim", "--seeds", "5", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["mode"] == "real" and doc["target"].startswith("http://127.0.0.1:")
    assert doc["service"]["rate_limited"] == 20 and doc["service"]["ok"] == 10
    rows = {row["metric"]: row for row in doc["versus"]["rows"]}
    record_property("attempts_per_call", rows["attempts_per_call"]["real"])
    for name in ("success_rate", "attempts_per_call"):
        row = rows[name]
        assert row["outside"] is False, row
        assert row["low"] <= row["real"] + 1e-9 and row["real"] <= row["high"] + 1e-9
    assert rows["attempts_per_call"]["real"] == pytest.approx(3.0)
    assert rows["success_rate"]["real"] == 1.0
    # every retry waited the hint the 429 carried, not the 0.1 s backoff
    assert doc["retry_wait"]["total"] == pytest.approx(20 * 0.8)


def test_503s_are_retried_500s_are_not_and_errors_keep_the_simulators_names(
    record_property: Any,
) -> None:
    """1.3 s of 503s then 500s: a 503 is transient (retried after 0.8 s), a 500 is not (the
    call gives up at once), as the simulator's stand-in and ServerError are. Attempts at 0 and
    0.8 s (late by up to 0.3 s, loaded) get 503s, the one at 1.6 s a 500: measured with one
    core kept busy (20 runs), attempt 2 by 0.93 s (0.37 s before the 500s) and attempt 3 from
    1.63 s (0.33 s after)."""
    scenario = _scenario(
        duration=0.2,
        policy={"operation": "api", "max_attempts": 5, "min_wait": 0.8, "max_wait": 0.8},
        clients={"count": 5, "calls_per_client": 1, "timeout": 1.0},
        faults=[
            {"kind": "outage", "start": 0, "end": 1.3, "error": "httpx.HTTPStatusError"},
            {"kind": "outage", "start": 1.3, "end": 5, "error": "ServerError"},
        ],
    )
    result, url, proxy, service = run_http(scenario)
    assert violations(result) == []
    calls, attempts = result.calls, result.attempts
    record_property("attempt2_last_start", float(attempts[attempts["attempt"] == 2]["start"].max()))
    record_property(
        "attempt3_first_start", float(attempts[attempts["attempt"] == 3]["start"].min())
    )
    assert set(calls["outcome"]) == {rec.GAVE_UP}
    assert set(calls["error"]) == {CODES["ServerError"]}
    assert list(calls["attempts"]) == [3] * 5
    errors = sorted(set(attempts["error"]))
    assert errors == sorted({CODES["httpx.HTTPStatusError"], CODES["ServerError"]})
    assert service is not None and service["unavailable"] == 10 and service["server_errors"] == 5
    assert int(calls["executions"].sum()) == 0 and proxy["forwarded"] == 5
    assert url.startswith("http://127.0.0.1:")


def test_httpx_errors_map_to_the_simulators_codes() -> None:
    request = httpx.Request("POST", "http://127.0.0.1:1/")

    def status(code: int) -> httpx.HTTPStatusError:
        response = httpx.Response(code, request=request)
        return httpx.HTTPStatusError("x", request=request, response=response)

    assert http_error_code(status(429)) == CODES["RateLimited"]
    assert http_error_code(status(500)) == CODES["ServerError"]
    assert http_error_code(status(503)) == CODES["httpx.HTTPStatusError"]
    assert http_error_code(httpx.ConnectError("x")) == CODES["httpx.ConnectError"]
    assert http_error_code(httpx.ReadError("x")) == CODES["httpx.ReadError"]
    assert http_error_code(httpx.RemoteProtocolError("x")) == CODES["httpx.RemoteProtocolError"]
    assert http_error_code(TimeoutError()) == CODES["TimeoutError"]


@pytest.fixture
def plain_service() -> Iterator[int]:
    """retrysim's service with no faults, on its own loop in a thread: another service."""
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def serve() -> None:
        async with HttpService() as service:
            box["port"], box["stop"] = service.port, asyncio.Event()
            box["loop"] = asyncio.get_running_loop()
            ready.set()
            await box["stop"].wait()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(5.0)
    yield int(box["port"])
    box["loop"].call_soon_threadsafe(box["stop"].set)
    thread.join(5.0)
    assert not thread.is_alive()


def test_a_target_of_another_service_counts_successes_as_executions(plain_service: int) -> None:
    scenario = _scenario(
        duration=0.5,
        clients={"count": 5, "think_time": 0.1, "timeout": 1.0, "arrival": {"kind": "closed"}},
        faults=[{"kind": "latency_spike", "start": 0, "end": 5, "extra": 0.05}],  # the proxy's
    )
    target = parse_http_target(f"http://localhost:{plain_service}/work")
    assert target == HttpTarget("127.0.0.1", plain_service, "/work")
    result, url, proxy, service = run_http(scenario, target)
    assert url == f"http://127.0.0.1:{plain_service}/work" and service is not None  # gateway's
    calls = result.calls
    assert set(calls["outcome"]) == {rec.SUCCEEDED}
    assert int(calls["executions"].sum()) == len(calls) > 5
    assert service["delayed"] == service["forwarded"] == len(calls)  # the spike: the gateway's
    assert proxy["chunks_delayed"] == 0
    assert float(calls["end"][0] - calls["start"][0]) >= 0.05  # the spike, held by the gateway


def _one_line(args: list[str], expected: str) -> None:
    result = CliRunner().invoke(app, ["chaos", *args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://10.0.0.5:80", "loopback"),
        ("http://example.com:80", "loopback"),
        ("http://127.0.0.1", "expected http://HOST:PORT"),
        ("http://127.0.0.1:0", "port in 1..65535"),
        ("http://127.0.0.1:99999", "port in 1..65535"),
        ("https://127.0.0.1:443", "https is not supported"),
        ("http://127.0.0.1:80/?q=1", "no user, query or fragment"),
        ("ftp://127.0.0.1:21", "expected redis://HOST:PORT or http://"),
        ("127.0.0.1:8080", "expected redis://HOST:PORT or http://"),
    ],
)
def test_bad_http_targets_are_one_line_and_exit_2(url: str, expected: str) -> None:
    _one_line(["real-http-rate-limit", "--target", url], expected)


def test_the_cli_refuses_what_it_cannot_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    plain = tmp_path / "plain.toml"
    _write(plain, _scenario(faults=[]))
    _one_line([str(plain), "--target", url], "nothing listens at")
    _one_line(["real-http-rate-limit", "--start-http", "--start-redis"], "give one of")
    _one_line(["real-http-rate-limit"], "give one of")
    monkeypatch.setitem(sys.modules, "httpx", None)  # as if not installed
    _one_line(["real-http-rate-limit", "--start-http"], "httpx is not installed")


def test_check_http_names_the_field() -> None:
    with pytest.raises(ChaosError, match=r"service\.kind"):
        check_http(_scenario(service={"kind": "rate_limited", "rate": 10}), None)
    with pytest.raises(ChaosError, match="Poisson"):
        check_http(_scenario(clients={"arrival": {"kind": "poisson", "rate": 5}}), None)


def test_the_report_shows_what_the_proxy_and_the_service_did(
    plain_service: int, tmp_path: Path
) -> None:
    path = tmp_path / "plain.toml"
    _write(path, _scenario(duration=0.3, clients={"count": 5, "timeout": 1.0}, faults=[]))
    env = {"COLUMNS": "200"}
    own = CliRunner().invoke(app, ["chaos", str(path), "--start-http"], env=env)
    assert own.exit_code == 0, own.output
    assert "proxy: 5 connections, 5 forwarded" in own.stdout
    assert "service: 5 requests, 5 ok, 0 rate limited" in own.stdout
    url = f"http://127.0.0.1:{plain_service}/"
    other = CliRunner().invoke(app, ["chaos", str(path), "--target", url], env=env)
    assert other.exit_code == 0, other.output
    assert "proxy: 5 connections" in other.stdout and "service:" not in other.stdout
