"""A real Redis to run against: a ``redis://`` target on loopback, or a private redis-server.

``private_redis()`` starts ``redis-server --port P --bind 127.0.0.1 --save '' --appendonly no``
on a free loopback port (no disk, nothing shared with a system service), waits until it answers
PING and stops it on the way out (terminate, then kill), bounded in time either way. The way
out is any way the block ends: a normal end, an exception, Ctrl-C, SIGTERM and SIGHUP (the CLI
turns those into exceptions too). For SIGKILL, which runs nothing, the server is tied to this
process's life (``retrysim.runs.children``: on Linux the kernel kills it when retrysim dies),
so no redis-server and no port is ever left behind.
Standard library only; redis-py is imported only to check it is there (``require_redis_py``).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from retrysim.chaos.listener import LISTEN_BACKLOG
from retrysim.chaos.proxy import loopback_host
from retrysim.chaos.toxics import ChaosError
from retrysim.runs.children import tied_to_this_process

#: Seconds a private redis-server may take to answer PING, and to exit once told to.
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


def parse_target(url: str) -> tuple[str, int]:
    """``redis://host:port`` as (host, port); the host must be a loopback address."""
    parts = urlsplit(url)
    if parts.scheme != "redis":
        raise ChaosError(f"--target {url!r}: expected redis://HOST:PORT")
    try:
        port = parts.port
    except ValueError:
        port = None
    host = parts.hostname
    if not host or port is None or not 0 < port < 65536:
        raise ChaosError(f"--target {url!r}: expected redis://HOST:PORT with a port in 1..65535")
    try:
        return loopback_host(host), port
    except ChaosError:
        raise ChaosError(
            f"--target {url!r}: only a loopback host (127.0.0.0/8, ::1, localhost) is accepted"
        ) from None


def require_redis_py() -> None:
    """A ChaosError unless redis-py (with its asyncio client) is installed."""
    try:
        import redis.asyncio  # noqa: F401  (a plain import of a fixed name: nothing evaluated)
    except ImportError:
        raise ChaosError("redis-py is not installed: pip install redis") from None


def redis_server_binary() -> str:
    """The path of ``redis-server`` on PATH, or a ChaosError saying how to get it."""
    found = shutil.which("redis-server")
    if found is None:
        raise ChaosError(
            "redis-server not found on PATH: install it (apt-get install redis-server, "
            "brew install redis) or pass --target redis://127.0.0.1:PORT"
        )
    return found


def free_port() -> int:
    """A port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ping(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """Whether a Redis on ``host:port`` answers PING (raw RESP, no client library)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def private_redis(binary: str | None = None) -> Iterator[int]:
    """Run a private redis-server on a free loopback port for the ``with`` block; yields it."""
    path = binary if binary is not None else redis_server_binary()
    for _ in range(3):  # a port taken between choosing and binding: choose again
        port = free_port()
        process = subprocess.Popen(
            [
                *(path, "--port", str(port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no"),
                *("--tcp-backlog", str(LISTEN_BACKLOG)),  # as the proxy's: a burst's connects
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Killed by the kernel if retrysim is. The function is one libc call, looked up
            # before the fork, so it takes no lock a thread of this process could hold.
            preexec_fn=tied_to_this_process(),  # noqa: PLW1509
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while process.poll() is None and time.monotonic() < deadline:
                if ping(port):
                    break
                time.sleep(0.02)
            else:
                if process.poll() is None:
                    raise ChaosError(f"redis-server did not answer within {START_TIMEOUT:g} s")
                continue  # it exited (the port was taken): try another
            yield port
            return
        finally:
            _stop(process)
    raise ChaosError("redis-server could not start on a free loopback port (3 tries)")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate, then kill: killed even when the wait for it is interrupted (a signal)."""
    if process.poll() is not None:
        return
    try:
        process.terminate()
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pass
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(STOP_TIMEOUT)
