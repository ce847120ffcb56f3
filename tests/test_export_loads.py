"""`retrysim scenarios export --to toxiproxy` loads into `retrysim proxy`'s own API: the same
toxics come back, and a real Redis client through the loaded proxy sees them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from typer.testing import CliRunner

from retrysim.chaos.redis_target import private_redis
from retrysim.cli.app import app
from tests.proxy_server import clear, served_api

SCENARIO = """\
name = "slow-and-sliced"
duration = 10

[[faults]]
kind = "latency_spike"
end = 10
extra = 0.15

[[faults]]
kind = "slicer"
average_size = 2
size_variation = 1
delay = 0.001

[[faults]]
kind = "first_n"
n = 2
"""


@pytest.fixture(scope="module")
def redis_port(redis_server: str) -> Iterator[int]:
    with private_redis(redis_server) as port:
        yield port


def test_the_exported_document_loads_and_its_toxics_apply(tmp_path: Path, redis_port: int) -> None:
    path = tmp_path / "slow.toml"
    path.write_text(SCENARIO)
    upstream = f"127.0.0.1:{redis_port}"
    args = ["scenarios", "export", str(path), "--to", "toxiproxy", "--upstream", upstream]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    exported = json.loads(result.stdout)
    proxies: list[dict[str, Any]] = exported["document"]
    # first_n has no Toxiproxy form: listed, not in the document
    assert any(item["fault"] == "faults.2" for item in exported["not_expressed"])
    assert [t["type"] for t in proxies[0]["toxics"]] == ["latency", "slicer"]
    with served_api() as served:
        try:
            status, answer = served.request("POST", "/populate", proxies)
            assert status == 201
            name = proxies[0]["name"]
            status, toxics = served.request("GET", f"/proxies/{name}/toxics")
            assert status == 200
            mine = {t["name"]: t for t in toxics}
            for toxic in proxies[0]["toxics"]:  # what was exported is what the API holds
                held = mine[toxic["name"]]
                assert (held["type"], held["stream"], held["toxicity"]) == (
                    toxic["type"],
                    toxic["stream"],
                    toxic["toxicity"],
                )
                assert held["attributes"] == pytest.approx(toxic["attributes"])
            port = int(answer["proxies"][0]["listen"].rpartition(":")[2])
            client = redis.Redis(port=port, socket_timeout=5, retry=Retry(NoBackoff(), 0))
            started = time.perf_counter()
            assert client.ping() is True  # through the latency and the slicer
            assert time.perf_counter() - started >= 0.15
            client.close()
        finally:
            clear(served)
