"""``retrysim chaos`` against services that misbehave, and faults it cannot give.

- A Redis (or HTTP service) that accepts, answers PING, then never answers: the run ends in
  bounded time (each attempt bounded by the client's timeout, the read-back by the run's own),
  with what it recorded, marked incomplete.
- A Redis killed mid-run: the report of what was recorded, a line saying why it stopped, exit 3
  (the service's doing), not "internal error".
- HTTP answers asked of a Redis run (and redis-py errors of an HTTP run): refused in one line.
- A burst of 1,000 connects at once through the proxy: none waits for the kernel's SYN
  retransmission (the listen backlog holds them), and every one is answered.

The misbehaving services are small asyncio servers on loopback, each on a thread of its own.
"""

from __future__ import annotations

import asyncio
import resource
import select
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest
from typer.testing import CliRunner

from retrysim.chaos import run as chaos_run
from retrysim.chaos.http_run import http_real_run
from retrysim.chaos.http_target import HttpTarget
from retrysim.chaos.listener import LISTEN_BACKLOG
from retrysim.chaos.proxy import FaultProxy
from retrysim.chaos.redis_target import private_redis
from retrysim.chaos.run import real_run
from retrysim.cli.app import app
from retrysim.model.library import load_scenario
from retrysim.model.scenario import Scenario
from retrysim.sim import records as rec
from tests.conftest import missing
from tests.test_no_leftovers import (
    DEADLINE,
    finish,
    reaped,
    redis_child,
    retrysim,
    running,
    wait_for,
)

T = TypeVar("T")


@contextmanager
def stalling_server(answer_ping: bool) -> Iterator[int]:
    """A loopback server that accepts, answers PING (if ``answer_ping``) and nothing else,
    ever: it reads every request and keeps the connection open. Yields its port."""
    loop = asyncio.new_event_loop()
    writers: set[asyncio.StreamWriter] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.add(writer)
        try:
            while data := await reader.read(65536):
                if answer_ping and b"PING" in data.upper():
                    writer.write(b"+PONG\r\n")
        except OSError:
            pass

    server = loop.run_until_complete(asyncio.start_server(handle, "127.0.0.1", 0))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:

        def stop() -> None:
            server.close()
            for writer in writers:
                writer.transport.abort()
            loop.stop()

        loop.call_soon_threadsafe(stop)
        thread.join(DEADLINE)
        loop.close()


def within(seconds: float, work: Callable[[], T]) -> tuple[T, float]:
    """``work()``'s value and how long it took; a failure (not a hung suite) past ``seconds``."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = work()
        except BaseException as error:  # handed to the test's thread
            box["error"] = error

    started = time.monotonic()
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"still running after {seconds} s: a hang")
    if "error" in box:
        raise box["error"]
    return box["value"], time.monotonic() - started


def small(name: str, **changes: Any) -> Scenario:
    """Bundled scenario ``name``, cut to 3 clients for 1 s, no faults, 2 attempts of 0.3 s."""
    data = load_scenario(name).model_dump(mode="json", exclude_unset=True)
    data["duration"] = 1
    data["faults"] = []
    data["clients"].update(count=3, timeout=0.3)
    data["policy"].update(max_attempts=2, min_wait=0.05, max_wait=0.1)
    for key, value in changes.items():
        section, _, field = key.partition(".")
        if value is None:
            data[section].pop(field, None)
        else:
            data[section][field] = value
    return Scenario.model_validate(data)


@pytest.fixture
def quick_service_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """The run's own talk with the service bounded by 0.5 s (5 s in use), the grace 0.5 s."""
    monkeypatch.setattr(chaos_run, "SERVICE_TIMEOUT", 0.5)
    monkeypatch.setattr(chaos_run, "GRACE", 0.5)


@pytest.mark.usefixtures("quick_service_timeout")
def test_a_redis_that_answers_ping_then_stalls_ends_the_run_in_bounded_time() -> None:
    pytest.importorskip("redis")
    with stalling_server(answer_ping=True) as port:
        run, took = within(30, lambda: real_run(small("real-redis-blip"), ("127.0.0.1", port)))
    outcomes = set(run.result.attempts["outcome"])
    assert outcomes == {rec.TIMED_OUT}, outcomes  # each attempt bounded by clients.timeout
    assert run.incomplete is not None and "could not be read back" in run.incomplete
    assert "no answer within 0.5 s" in run.incomplete
    assert took < 10


@pytest.mark.usefixtures("quick_service_timeout")
def test_without_a_client_timeout_the_run_ends_at_its_end_all_the_same() -> None:
    """No clients.timeout: the attempts are bounded by the run's end (duration + grace)."""
    pytest.importorskip("redis")
    scenario = small("real-redis-blip", **{"clients.timeout": None})
    assert scenario.clients.timeout is None
    with stalling_server(answer_ping=True) as port:
        run, took = within(30, lambda: real_run(scenario, ("127.0.0.1", port)))
    assert set(run.result.attempts["outcome"]) == {rec.OPEN}  # cut off at the end, unfinished
    assert run.incomplete is not None
    assert took < 10


def test_the_health_check_gives_up_on_a_server_that_never_answers() -> None:
    pytest.importorskip("redis")
    with stalling_server(answer_ping=False) as port:
        invoke = CliRunner().invoke
        args = ["chaos", "real-redis-blip", "--target", f"redis://127.0.0.1:{port}"]
        result, took = within(30, lambda: invoke(app, args))
    assert result.exit_code == 2
    assert (
        result.stderr.strip()
        == f"retrysim: error: nothing answers PING at redis://127.0.0.1:{port}"
    )
    assert took < 10


def test_an_http_service_that_never_answers_ends_the_run_in_bounded_time() -> None:
    pytest.importorskip("httpx")
    scenario = small("real-http-rate-limit")
    with stalling_server(answer_ping=False) as port:
        target = HttpTarget("127.0.0.1", port)
        run, took = within(30, lambda: http_real_run(scenario, target))
    assert set(run.result.attempts["outcome"]) == {rec.TIMED_OUT}
    assert run.incomplete is None  # nothing to read back: the records are whole
    assert took < 10


HTTP_429 = "faults.0: the outage's error 'RateLimited' is an HTTP answer (429)"
RATE_LIMITED = "service.kind: a 'rate_limited' service"
SMALL_FLEET = ["--set", "clients.count=10"]  # api-rate-limit's 1,000 are past the limit
REDIS_ERROR = "faults.0: the outage's error 'redis.exceptions.ConnectionError' is redis-py's"


@pytest.mark.parametrize(
    ("scenario", "flag", "fault", "use"),
    [
        ("real-http-rate-limit", ["--start-redis"], HTTP_429, "--start-http"),
        ("real-http-rate-limit", ["--target", "redis://127.0.0.1:1"], HTTP_429, "--start-http"),
        ("api-rate-limit", ["--start-redis", *SMALL_FLEET], RATE_LIMITED, "--start-http"),
        ("real-redis-blip", ["--start-http"], REDIS_ERROR, "--start-redis"),
        ("real-redis-blip", ["--target", "http://127.0.0.1:1/"], REDIS_ERROR, "--start-redis"),
    ],
)  # fmt: skip
def test_faults_the_service_cannot_give_are_refused_in_one_line(
    scenario: str, flag: list[str], fault: str, use: str
) -> None:
    """A 429 asked of a Redis would silently become a refused connection (and redis-py's
    error of an HTTP run an httpx one): refused before anything starts, naming the fault and
    the flag to use instead."""
    pytest.importorskip("redis")
    pytest.importorskip("httpx")
    result = CliRunner().invoke(app, ["chaos", scenario, *flag])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith(f"retrysim: error: {fault}"), lines
    assert use in lines[0]


# --- the proxy's listen backlog ---------------------------------------------------------------

BURST = 1000


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data)
        await writer.drain()
    writer.close()


async def _burst(backlog: int | None) -> tuple[int, int]:
    """1,000 connects to the proxy at once: (how many waited for the kernel's SYN
    retransmission, how many were answered through it within 10 s each).

    Every SYN is sent while the proxy's loop is held, as a burst that outruns its accept loop
    does; a connect the listen queue could not hold is still unanswered half a second later
    (the kernel resends a dropped SYN after 1 s).
    """
    upstream = await asyncio.start_server(_echo, "127.0.0.1", 0, backlog=LISTEN_BACKLOG)
    address = ("127.0.0.1", int(upstream.sockets[0].getsockname()[1]))
    proxy = FaultProxy(address) if backlog is None else FaultProxy(address, backlog=backlog)
    async with upstream, proxy:
        sockets = []
        for _ in range(BURST):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", proxy.port))
            sockets.append(sock)
        poller = select.poll()
        for sock in sockets:
            poller.register(sock, select.POLLOUT)
        connected: set[int] = set()
        deadline = time.monotonic() + 0.5
        while len(connected) < BURST and (left := deadline - time.monotonic()) > 0:
            ready = {fd for fd, _ in poller.poll(left * 1000)}
            for fd in ready:
                poller.unregister(fd)
            connected |= ready
        waited = BURST - len(connected)
        if waited:
            for sock in sockets:
                sock.close()
            return waited, 0

        async def exchange(sock: socket.socket) -> bool:
            try:
                async with asyncio.timeout(10):
                    reader, writer = await asyncio.open_connection(sock=sock)
                    writer.write(b"ping\n")
                    answered = await reader.readexactly(5) == b"ping\n"
                    writer.close()
                    return answered
            except (OSError, TimeoutError, asyncio.IncompleteReadError):
                sock.close()
                return False

        answered = await asyncio.gather(*(exchange(sock) for sock in sockets))
        return waited, sum(answered)


@pytest.fixture
def enough_files() -> None:
    """A burst needs about 4,000 descriptors in this process (client, proxy twice, upstream)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 4 * BURST + 200
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            missing(f"needs {need} open files; the hard limit is {hard} (raise it: ulimit -Hn)")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


@pytest.mark.usefixtures("enough_files")
def test_a_burst_of_1000_connects_through_the_proxy_is_held_and_answered() -> None:
    waited, answered = asyncio.run(_burst(None))
    assert (waited, answered) == (0, BURST)


@pytest.mark.usefixtures("enough_files")
def test_a_backlog_of_100_drops_a_burst_of_1000_so_the_check_can_fail() -> None:
    waited, _ = asyncio.run(_burst(100))
    assert waited >= BURST - 200  # about 899: the queue holds backlog + 1


@pytest.mark.slow
@pytest.mark.usefixtures("enough_files")
def test_a_fault_free_burst_of_1000_real_clients_reports_no_timeouts(redis_server: str) -> None:
    """The fleet, not a socket loop: 1,000 redis-py clients call at once through the proxy
    into a healthy Redis. Each attempt may take 10 s (the loop's own CPU for 1,000 attempts
    is about 2 s when quiet and stays far inside it with both cores busy), so a timeout
    here can only be a connect the proxy's listener dropped: none is, every call succeeds
    on its first attempt."""
    pytest.importorskip("redis")
    scenario = Scenario.model_validate(
        {
            "name": "burst-1000",
            "duration": 12,
            "policy": {"operation": "storage", "max_attempts": 2, "min_wait": 0.1, "max_wait": 0.1},
            "clients": {"count": BURST, "timeout": 10.0, "arrival": {"kind": "burst", "at": 0}},
        }
    )
    with private_redis(redis_server) as port:
        result, stats = chaos_run.run_real(scenario, ("127.0.0.1", port), force=True)
    outcomes = result.attempts["outcome"]
    assert len(result.calls) == BURST
    assert int((outcomes == rec.TIMED_OUT).sum()) == 0, stats
    assert set(result.calls["outcome"]) == {rec.SUCCEEDED}
    assert len(result.attempts) == BURST  # nobody retried
    assert stats["forwarded"] == BURST and stats["refused"] == stats["reset"] == 0


def test_the_backlog_is_refused_below_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        FaultProxy(("127.0.0.1", 1), backlog=0)


# --- a Redis killed mid-run -------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.usefixtures("redis_server")  # skips naming the install line, fails in CI
def test_a_redis_killed_mid_run_still_reports_what_was_recorded() -> None:
    with reaped(retrysim("chaos", "real-redis-blip", "--start-redis")) as process:
        server, port = redis_child(process)
        signal_sent = signal.SIGKILL
        subprocess.run(["kill", f"-{signal_sent.name[3:]}", str(server)], check=True)
        stdout, stderr = finish(process)
    wait_for(lambda: not running(server), "the killed redis-server to be gone", timeout=10)
    assert process.returncode == 3, stderr
    assert "internal error" not in stderr and "Traceback" not in stderr, stderr
    assert "calls" in stdout and "proxy:" in stdout  # the report of what was recorded
    report = " ".join(stdout.split())
    assert f"incomplete: the service at 127.0.0.1:{port} went away at" in report, stdout
    assert "the run stopped there" in report
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("retrysim: error: the run is incomplete: the service at"), stderr
