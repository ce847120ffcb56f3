"""``retrysim proxy``'s Toxiproxy-compatible API, driven by Toxiproxy's own Python client.

The client is toxiproxy-python from PyPI (module ``toxiproxy``), unchanged: it talks to the API
served in-process on a free loopback port (``tests/proxy_server.py``), whose proxies stand in
front of a private redis-server (skipped without one, failed under .ci/run: conftest). Every
runtime change is checked on a real redis-py connection, one opened before the change as well
as a new one. The timed assertions are a PING delayed by a latency toxic: at least the toxic's
latency (the answer cannot come sooner), and under a generous bound.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import toxiproxy
from redis.backoff import NoBackoff
from redis.retry import Retry
from toxiproxy.exceptions import InvalidToxic, NotFound

from retrysim.chaos.control import BAD_STREAM
from retrysim.chaos.redis_target import private_redis
from tests.proxy_server import Served, clear, served_api

LATENCY_MS = 300
#: Over the latency a delayed PING may take on a loaded 2-core machine (measured: 1 ms).
SLACK = 1.5


@pytest.fixture(scope="module")
def redis_port(redis_server: str) -> Iterator[int]:
    with private_redis(redis_server) as port:
        yield port


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with served_api() as running:
        yield running


@pytest.fixture
def client(served: Served) -> Iterator[Any]:
    """Toxiproxy's client pointed at the API; every proxy deleted after the test."""
    toxi = toxiproxy.Toxiproxy()
    toxi.update_api_consumer("127.0.0.1", served.port)
    yield toxi
    clear(served)


def _port(proxy: Any) -> int:
    host, _, port = proxy.listen.rpartition(":")
    assert host == "127.0.0.1"
    return int(port)


def _redis(port: int) -> redis.Redis:
    """A redis-py client that never retries on its own: each failure is seen as it happens."""
    return redis.Redis(port=port, socket_timeout=5, retry=Retry(NoBackoff(), 0))


def _applied(served: Served, name: str) -> Any:
    """The toxics proxy ``name``'s FaultProxy applies now (retrysim's units)."""
    running = served.api.proxies[name].running
    assert running is not None
    return running.toxics


def _timed_ping(connection: redis.Redis) -> float:
    started = time.perf_counter()
    assert connection.ping() is True
    return time.perf_counter() - started


def test_a_latency_toxic_added_at_runtime_delays_open_and_new_connections(
    client: Any, redis_port: int
) -> None:
    proxy = client.create(upstream=f"127.0.0.1:{redis_port}", name="redis")
    opened = _redis(_port(proxy))
    assert _timed_ping(opened) < LATENCY_MS / 1000  # connected before the toxic

    proxy.add_toxic(type="latency", attributes={"latency": LATENCY_MS})
    assert set(proxy.toxics()) == {"latency_downstream"}
    for connection in (opened, _redis(_port(proxy))):
        took = _timed_ping(connection)
        assert LATENCY_MS / 1000 <= took < LATENCY_MS / 1000 + SLACK

    proxy.destroy_toxic("latency_downstream")
    assert proxy.toxics() == {}
    for connection in (opened, _redis(_port(proxy))):
        assert _timed_ping(connection) < LATENCY_MS / 1000


def test_disable_refuses_connections_and_enable_restores_them(
    client: Any, served: Served, redis_port: int
) -> None:
    proxy = client.create(upstream=f"localhost:{redis_port}", name="redis")
    port = _port(proxy)
    opened = _redis(port)
    assert opened.ping()

    proxy.disable()
    assert served.request("GET", "/proxies/redis")[1]["enabled"] is False
    with pytest.raises(redis.ConnectionError):
        opened.ping()  # its connection was closed, and a new one is refused
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()

    proxy.enable()
    assert served.request("GET", "/proxies/redis")[1]["enabled"] is True
    assert _port(client.get_proxy("redis")) == port  # the same port again
    assert opened.ping() and _redis(port).ping()


def test_a_reset_peer_toxic_resets_an_open_connections_next_command(
    client: Any, redis_port: int
) -> None:
    proxy = client.create(upstream=f"127.0.0.1:{redis_port}", name="redis")
    opened = _redis(_port(proxy))
    assert opened.ping()

    proxy.add_toxic(type="reset_peer", attributes={"timeout": 0})
    with pytest.raises(redis.ConnectionError, match="reset by peer"):
        opened.ping()

    assert client.reset() is True  # every toxic removed
    assert proxy.toxics() == {}
    assert opened.ping() and _redis(_port(proxy)).ping()


def test_reset_enables_every_proxy_and_removes_every_toxic(
    client: Any, served: Served, redis_port: int
) -> None:
    one = client.create(upstream="127.0.0.1:1", name="one")
    two = client.create(upstream=f"127.0.0.1:{redis_port}", name="two", enabled=False)
    one.add_toxic(type="bandwidth", attributes={"rate": 64})
    assert served.request("POST", "/reset") == (204, None)
    proxies = served.request("GET", "/proxies")[1]
    assert {name: (p["enabled"], p["toxics"]) for name, p in proxies.items()} == {
        "one": (True, []),
        "two": (True, []),
    }
    assert two.listen == "127.0.0.1:0"  # made disabled: no port yet
    listen = proxies["two"]["listen"]
    assert _redis(int(listen.rpartition(":")[2])).ping()
    assert one.name == "one"


def test_error_answers_have_toxiproxys_status_and_shape(client: Any, served: Served) -> None:
    client.create(upstream="127.0.0.1:6379", name="p")
    cases: list[tuple[str, str, Any, int, str]] = [
        ("GET", "/proxies/nope", None, 404, "proxy not found"),
        ("DELETE", "/proxies/nope", None, 404, "proxy not found"),
        ("POST", "/proxies/nope/toxics", {"type": "latency"}, 404, "proxy not found"),
        ("POST", "/proxies", {"name": "p", "upstream": "127.0.0.1:1"}, 409, "proxy already exists"),
        ("POST", "/proxies", {"upstream": "127.0.0.1:1"}, 400, "missing required field: name"),
        ("POST", "/proxies", {"name": "q"}, 400, "missing required field: upstream"),
        ("POST", "/proxies/p/toxics", {"type": "latency", "stream": "sideways"}, 400, BAD_STREAM),
        ("GET", "/proxies/p/toxics/none", None, 404, "toxic not found"),
        ("DELETE", "/proxies/p/toxics/none", None, 404, "toxic not found"),
    ]
    for method, path, body, status, error in cases:
        assert served.request(method, path, body) == (status, {"error": error, "status": status})

    bad = [
        {"type": "corrupt"},  # a toxic type the proxy does not have
        {"type": "timeout", "attributes": {"timeout": 100}},
        {"type": "latency", "attributes": {"latency": "slow"}},
        {"type": "latency", "attributes": {"latnecy": 100}},
        {"type": "latency", "toxicity": 2},
    ]
    for body in bad:
        status, answer = served.request("POST", "/proxies/p/toxics", body)
        assert (status, answer["status"]) == (400, 400), body
    assert (
        "'corrupt' is not supported"
        in served.request("POST", "/proxies/p/toxics", bad[0])[1]["error"]
    )

    proxy = client.get_proxy("p")
    proxy.add_toxic(type="latency", attributes={"latency": 10})
    status, answer = served.request("POST", "/proxies/p/toxics", {"type": "latency"})
    assert (status, answer) == (409, {"error": "toxic already exists", "status": 409})
    with pytest.raises(InvalidToxic):  # the client's own mapping of a 400
        proxy.add_toxic(type="corrupt", attributes={"probability": 10})
    with pytest.raises(NotFound):
        toxiproxy.api.APIConsumer.get("/proxies/nope")


def test_addresses_are_loopback_only(served: Served) -> None:
    for field, value in [("upstream", "10.0.0.5:6379"), ("upstream", "example.com:80")]:
        status, answer = served.request("POST", "/proxies", {"name": "x", field: value})
        assert status == 400 and "not a loopback address" in answer["error"]
    for listen in ("0.0.0.0:0", "[::]:18080", ":8080"):
        body = {"name": "x", "upstream": "127.0.0.1:1", "listen": listen}
        status, answer = served.request("POST", "/proxies", body)
        assert status == 400 and "listens on 127.0.0.1 only" in answer["error"], listen
    assert served.request("GET", "/proxies") == (200, {})


def test_toxic_json_is_in_toxiproxys_units_both_ways(client: Any, served: Served) -> None:
    client.create(upstream="127.0.0.1:6379", name="p")
    status, made = served.request(
        "POST",
        "/proxies/p/toxics",
        {"type": "latency", "stream": "upstream", "attributes": {"latency": 250}},
    )
    assert status == 200
    assert made == {
        "name": "latency_upstream",
        "type": "latency",
        "stream": "upstream",
        "toxicity": 1,
        "attributes": {"latency": 250, "jitter": 0},
    }
    assert _applied(served, "p")[0].latency == pytest.approx(0.25)  # seconds

    body = {"attributes": {"jitter": 20}, "toxicity": 0.5}
    status, changed = served.request("POST", "/proxies/p/toxics/latency_upstream", body)
    assert status == 200
    assert changed["attributes"] == {"latency": 250, "jitter": 20}
    assert changed["toxicity"] == 0.5
    applied = _applied(served, "p")[0]
    assert applied.jitter == pytest.approx(0.02) and applied.toxicity == 0.5
    assert served.request("GET", "/proxies/p/toxics/latency_upstream") == (200, changed)

    rate = {"type": "bandwidth", "name": "slow", "attributes": {"rate": 64}}
    assert served.request("POST", "/proxies/p/toxics", rate)[1]["attributes"] == {"rate": 64}
    assert _applied(served, "p")[1].rate == 64_000  # bytes/s
    toxics = served.request("GET", "/proxies/p/toxics")[1]
    assert [t["name"] for t in toxics] == ["latency_upstream", "slow"]


def test_populate_creates_keeps_and_replaces_and_takes_toxics(
    served: Served, redis_port: int
) -> None:
    upstream = f"127.0.0.1:{redis_port}"
    latency = {"type": "latency", "attributes": {"latency": LATENCY_MS}}
    body: list[dict[str, Any]] = [
        {"name": "slow", "listen": "127.0.0.1:0", "upstream": upstream, "toxics": [latency]},
        {"name": "off", "upstream": upstream, "enabled": False},
    ]
    try:
        status, answer = served.request("POST", "/populate", body)
        assert status == 201
        slow, off = answer["proxies"]
        assert [t["name"] for t in slow["toxics"]] == ["latency_downstream"]
        assert off["enabled"] is False
        port = int(slow["listen"].rpartition(":")[2])
        took = _timed_ping(_redis(port))  # the populated toxic applies
        assert LATENCY_MS / 1000 <= took < LATENCY_MS / 1000 + SLACK

        # The same again: kept as it is (port 0 matches the port it has).
        assert served.request("POST", "/populate", body[:1])[1]["proxies"] == [slow]
        # Without toxics: kept, toxics untouched; another upstream: replaced, toxics gone.
        again = served.request("POST", "/populate", [{**body[0], "toxics": None}])[1]
        assert again["proxies"][0]["toxics"] == slow["toxics"]
        moved = {"name": "slow", "upstream": "127.0.0.1:1"}
        replaced = served.request("POST", "/populate", [moved])[1]["proxies"][0]
        assert replaced["upstream"] == "127.0.0.1:1" and replaced["toxics"] == []

        # Checked whole before anything changes: one bad proxy, nothing made.
        bad = [{"name": "new", "upstream": upstream}, {"name": "x", "upstream": "10.1.1.1:1"}]
        status, answer = served.request("POST", "/populate", bad)
        assert status == 400 and answer["proxies"] == []
        assert "new" not in served.request("GET", "/proxies")[1]
    finally:
        clear(served)


def test_version_a_browser_and_a_malformed_request(served: Served) -> None:
    status, answer = served.request("GET", "/version")
    assert status == 200 and answer["version"].startswith("retrysim-")
    browser = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"}
    assert served.request("POST", "/reset", headers=browser)[0] == 403
    assert served.request("PUT", "/proxies")[0] == 405
    assert served.request("GET", "/proxies/")[0] == 404
    assert served.request("POST", "/proxies", None)[1]["error"] == "bad request body: EOF"
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as raw:
        raw.sendall(b"NONSENSE\r\n\r\n")
        assert raw.recv(4096).startswith(b"HTTP/1.1 400 ")
