"""The control API served in-process for the proxy tests: its own event loop on a thread.

Why a thread: Toxiproxy's Python client, redis-py's sync client and the CLI's urllib calls
all block, so the API and its proxies run on a loop of their own while the test drives them
from the main thread, as separate processes would, without paying a process start per test.
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from retrysim.chaos.control import ControlApi
from retrysim.chaos.control_http import ControlServer

#: Seconds any one start, stop or request may take.
BOUND = 10.0


@dataclass
class Served:
    """A running API: its port, and its registry (read it only through the API's answers)."""

    port: int
    api: ControlApi
    loop: asyncio.AbstractEventLoop

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """(status, JSON answer or None) of one raw HTTP request, errors included."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://{self.address}{path}", data=data, method=method, headers=headers or {}
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=BOUND) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        return status, json.loads(raw) if raw else None


@contextmanager
def served_api(seed: int = 0) -> Iterator[Served]:
    """The control API on a free loopback port, stopped (with every proxy) on the way out."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="control-api", daemon=True)
    thread.start()
    api = ControlApi(seed=seed)
    server = ControlServer(api, 0)
    try:
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(BOUND)
        yield Served(server.port, api, loop)
    finally:

        async def stop() -> None:
            await server.stop()
            await api.close()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(BOUND)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(BOUND)
        loop.close()


def clear(served: Served) -> None:
    """Delete every proxy, through the API (between tests sharing one server)."""
    status, proxies = served.request("GET", "/proxies")
    assert status == 200
    for name in proxies:
        assert served.request("DELETE", f"/proxies/{name}")[0] == 204
