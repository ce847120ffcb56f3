"""``retrysim proxy``: serve as a process (lines, signals, exit codes) and the client commands.

The client commands run in-process (Typer's runner) against the API served on a thread
(``tests/proxy_server.py``); ``serve`` runs as the real process a user starts, in front of a
private redis-server (skipped without one, failed under .ci/run: conftest), and is stopped by
a signal once a PING through its proxy has shown the proxy works.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from typer.testing import CliRunner

from retrysim.chaos.redis_target import free_port, private_redis
from retrysim.cli.app import app
from tests.proxy_server import BOUND, Served, clear, served_api


@pytest.fixture(scope="module")
def redis_port(redis_server: str) -> Iterator[int]:
    with private_redis(redis_server) as port:
        yield port


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with served_api() as running:
        yield running


@pytest.fixture
def cli(served: Served) -> Iterator[Any]:
    """Run ``retrysim proxy ...`` against the served API; every proxy deleted afterwards."""

    def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
        api = [] if env else ["--api", served.address]
        return CliRunner().invoke(app, ["proxy", *args, *api], env=env)

    yield invoke
    clear(served)


def _error_line(result: Any) -> str:
    """The one line a failed command printed (exit 2, no traceback)."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("retrysim: error: "), result.stderr
    return str(lines[0])


def test_create_list_toxics_and_delete_through_the_api(cli: Any, served: Served) -> None:
    made = cli("create", "web", "--upstream", "127.0.0.1:6379")
    assert made.exit_code == 0, made.output
    listen = served.request("GET", "/proxies/web")[1]["listen"]
    assert (
        made.stdout == f"created proxy web: listening on {listen}, forwarding to 127.0.0.1:6379\n"
    )

    added = cli("toxic", "add", "web", "-t", "latency", "-a", "latency=100", "-a", "jitter=2.5")
    assert added.stdout == "added downstream latency toxic 'latency_downstream' on proxy 'web'\n"
    added = cli(
        "toxic", "add", "web", "--type", "reset_peer", "--stream", "upstream",
        "--toxicity", "0.25", "--name", "cut",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    listed = json.loads(cli("toxic", "list", "web", "--json").stdout)
    assert listed == served.request("GET", "/proxies/web/toxics")[1]
    assert [(t["name"], t["stream"], t["toxicity"], t["attributes"]) for t in listed] == [
        ("latency_downstream", "downstream", 1, {"latency": 100, "jitter": 2.5}),
        ("cut", "upstream", 0.25, {"timeout": 0}),
    ]
    table = cli("toxic", "list", "web").stdout.splitlines()
    assert table[0].split() == ["name", "type", "stream", "toxicity", "attributes"]
    row = ["latency_downstream", "latency", "downstream", "1", "latency=100", "jitter=2.5"]
    assert table[1].split() == row

    proxies = cli("list").stdout.splitlines()
    row = ["web", listen, "127.0.0.1:6379", "true", "latency_downstream,", "cut"]
    assert proxies[1].split() == row
    assert json.loads(cli("list", "--json").stdout) == served.request("GET", "/proxies")[1]

    removed = cli("toxic", "remove", "web", "cut")
    assert removed.stdout == "removed toxic 'cut' from proxy 'web'\n"
    assert [t["name"] for t in served.request("GET", "/proxies/web/toxics")[1]] == [
        "latency_downstream"
    ]
    assert cli("delete", "web").stdout == "deleted proxy web\n"
    assert served.request("GET", "/proxies") == (200, {})
    assert cli("list").stdout.startswith("no proxies")


def test_the_apis_errors_become_one_line_and_exit_2(cli: Any) -> None:
    assert cli("create", "web", "--upstream", "127.0.0.1:6379").exit_code == 0
    cases = [
        (("toxic", "add", "nope", "-t", "latency"), "404 proxy not found"),
        (("toxic", "add", "web", "-t", "corrupt"), "400 toxiproxy toxic type 'corrupt'"),
        (("toxic", "remove", "web", "none"), "404 toxic not found"),
        (("create", "web", "--upstream", "127.0.0.1:1"), "409 proxy already exists"),
        (("create", "far", "--upstream", "10.0.0.5:6379"), "400 upstream '10.0.0.5'"),
        (("delete", "nope"), "404 proxy not found"),
        (("toxic", "add", "web", "-t", "latency", "-a", "latency"), "expected KEY=NUMBER"),
        (("toxic", "add", "web", "-t", "latency", "-a", "latency=fast"), "expected KEY=NUMBER"),
    ]
    for args, said in cases:
        assert said in _error_line(cli(*args)), args


def test_the_api_address_comes_from_toxiproxy_url_and_an_absent_api_is_one_line(
    cli: Any, served: Served
) -> None:
    made = cli("create", "web", "--upstream", "127.0.0.1:6379", env={"TOXIPROXY_URL": "8474"})
    assert "--api (or TOXIPROXY_URL) '8474': expected HOST:PORT" in _error_line(made)
    url = f"http://{served.address}"
    assert cli("create", "web", "-u", "127.0.0.1:6379", env={"TOXIPROXY_URL": url}).exit_code == 0
    assert "web" in served.request("GET", "/proxies")[1]
    nobody = f"127.0.0.1:{free_port()}"
    line = _error_line(CliRunner().invoke(app, ["proxy", "list", "--api", nobody]))
    assert f"no proxy API at http://{nobody}/proxies" in line


def test_serve_refuses_a_bad_api_address_or_config_in_one_line(tmp_path: Path) -> None:
    def serve(*args: str) -> str:
        return _error_line(CliRunner().invoke(app, ["proxy", "serve", *args]))

    assert "listens on 127.0.0.1 only" in serve("--api", "0.0.0.0:8474")
    assert "expected HOST:PORT" in serve("--api", "8474")
    config = tmp_path / "proxies.json"
    config.write_text("[{")
    assert serve("--config", str(config)).startswith(f"retrysim: error: {config}: not JSON")
    config.write_text(json.dumps([{"name": "far", "upstream": "10.0.0.5:6379"}]))
    line = serve("--api", "127.0.0.1:0", "--config", str(config))
    assert f"{config}: upstream '10.0.0.5' is not a loopback address" in line


def test_the_seed_decides_which_connections_a_toxic_picks() -> None:
    """The same seed picks the same connections for a toxic with toxicity 0.5; another seed,
    others (what `serve --seed` sets)."""

    def picks(seed: int) -> list[bool]:
        with served_api(seed=seed) as served:
            try:
                body = {"name": "p", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"}
                assert served.request("POST", "/proxies", body)[0] == 201
                toxic = {"type": "latency", "toxicity": 0.5, "attributes": {"latency": 1}}
                assert served.request("POST", "/proxies/p/toxics", toxic)[0] == 200
                running = served.api.proxies["p"].running
                assert running is not None
                return [running.picked(0, connection, 0.0) for connection in range(64)]
            finally:
                clear(served)

    first = picks(1)
    assert picks(1) == first and picks(2) != first
    assert 16 < sum(first) < 48


def test_the_proxy_commands_take_dash_h() -> None:
    for command in ([], ["serve"], ["toxic"], ["toxic", "add"]):
        short = CliRunner().invoke(app, ["proxy", *command, "-h"])
        assert short.exit_code == 0 and "Usage:" in short.stdout, (command, short.output)
        assert short.stdout == CliRunner().invoke(app, ["proxy", *command, "--help"]).stdout


# --- serve as a process ----------------------------------------------------------------------


def _serve(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "retrysim", "proxy", "serve", "--api", "127.0.0.1:0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def _stopped(process: subprocess.Popen[str], number: signal.Signals) -> tuple[int, str, str]:
    process.send_signal(number)
    out, err = process.communicate(timeout=BOUND)
    return process.returncode, out, err


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_runs_its_config_until_a_signal_and_exits_as_the_project_does(
    tmp_path: Path, redis_port: int, number: signal.Signals
) -> None:
    latency = {"type": "latency", "attributes": {"latency": 200}}
    config = tmp_path / "proxies.json"
    proxy = {"name": "redis", "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{redis_port}"}
    config.write_text(json.dumps([{**proxy, "toxics": [latency]}]))
    process = _serve("--config", str(config))
    try:
        assert process.stdout is not None
        first, second = process.stdout.readline(), process.stdout.readline()
        assert first.startswith("retrysim proxy: control API on http://127.0.0.1:"), first
        api = first.split("http://", 1)[1].split(" ", 1)[0]
        assert second.startswith("proxy redis: listening on 127.0.0.1:"), second
        port = int(second.split("127.0.0.1:", 1)[1].split(",", 1)[0])
        assert second.endswith(f"forwarding to 127.0.0.1:{redis_port}\n")

        through = redis.Redis(port=port, socket_timeout=5, retry=Retry(NoBackoff(), 0))
        started = time.perf_counter()
        assert through.ping()
        assert 0.2 <= time.perf_counter() - started < 1.7  # the config's toxic applies
        listed = CliRunner().invoke(app, ["proxy", "toxic", "list", "redis", "--api", api])
        assert listed.stdout.splitlines()[1].split()[0] == "latency_downstream"
        through.close()
    finally:
        code, out, err = _stopped(process, number)
    expected = {signal.SIGTERM: (143, "stopped by SIGTERM"), signal.SIGINT: (130, "interrupted")}
    assert (code, err) == (expected[number][0], f"retrysim: {expected[number][1]}\n")
    assert out == ""  # nothing more on stdout: no line per proxy stopped, no traceback
    with pytest.raises(redis.ConnectionError):  # it stopped its proxy too
        redis.Redis(port=port, socket_timeout=5, retry=Retry(NoBackoff(), 0)).ping()
