"""A stand-in for the fault proxy as one forwarded connection (``retrysim.chaos.link.Link``)
sees it, with every toxic always on: for tests of what a Link does to a chunk, without sockets.
"""

from __future__ import annotations

from typing import Any

from retrysim.chaos.proxy_stats import ProxyStats
from retrysim.chaos.toxics import Toxic


class FakeProxy:
    """What a Link asks its proxy (``retrysim.chaos.link.Proxy``), every toxic always on."""

    def __init__(self, toxics: tuple[Toxic, ...], keys: list[int]) -> None:
        self.toxics, self.keys, self.stats = toxics, keys, ProxyStats()

    @property
    def stopping(self) -> bool:
        return False

    def elapsed(self) -> float:
        return 0.0

    def picked(self, index: int, connection: int, elapsed: float) -> bool:
        return True

    def active_toxics(
        self, kind: type[Any] | tuple[type[Any], ...], connection: int, elapsed: float
    ) -> list[int]:
        return [i for i, toxic in enumerate(self.toxics) if isinstance(toxic, kind)]

    def counted_out(self, connection: int, elapsed: float) -> bool:
        return False
