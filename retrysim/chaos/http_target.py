"""An HTTP service to run against: an ``http://`` target on loopback, checked before the run.

Why a module of its own: as with ``redis_target``, what is accepted is decided before anything
is started, in one place, with one-line errors that name the option: only ``http://`` on a
loopback host (127.0.0.0/8, ``::1``, ``localhost``) with a port, an optional path (each attempt
is one ``POST`` to it, default ``/``) and nothing else (no user, query or fragment). Standard
library only; httpx is imported only to check it is there (``require_httpx``).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from retrysim.chaos.proxy import loopback_host
from retrysim.chaos.toxics import ChaosError


@dataclass(frozen=True)
class HttpTarget:
    """Where the fleet's requests go (through the proxy): host, port and the path it POSTs."""

    host: str
    port: int
    path: str = "/"

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.path}"


def parse_http_target(url: str) -> HttpTarget:
    """``http://host:port[/path]`` as an ``HttpTarget``; the host must be a loopback address."""
    expected = "expected http://HOST:PORT[/PATH]"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ChaosError(f"--target {url!r}: {expected} with a port in 1..65535") from None
    if parts.scheme != "http":
        hint = " (https is not supported: loopback needs no TLS)" if parts.scheme == "https" else ""
        raise ChaosError(f"--target {url!r}: {expected}{hint}")
    host = parts.hostname
    if not host or port is None or not 0 < port < 65536:
        raise ChaosError(f"--target {url!r}: {expected} with a port in 1..65535")
    if parts.username is not None or parts.query or parts.fragment:
        raise ChaosError(f"--target {url!r}: {expected}, no user, query or fragment")
    try:
        host = loopback_host(host)
    except ChaosError:
        raise ChaosError(
            f"--target {url!r}: only a loopback host (127.0.0.0/8, ::1, localhost) is accepted"
        ) from None
    return HttpTarget(host, port, parts.path or "/")


def require_httpx() -> None:
    """A ChaosError unless httpx is installed."""
    try:
        import httpx  # noqa: F401  (a plain import of a fixed name: nothing evaluated)
    except ImportError:
        raise ChaosError("httpx is not installed: pip install 'retrysim[http]'") from None


def listening(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
