"""What the fault proxy did, counted: its own module so that the proxy and its links (which
count) share it without importing each other."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class ProxyStats:
    """What the proxy did, for a report."""

    connections: int = 0  # accepted
    forwarded: int = 0  # connected to the upstream
    refused: int = 0  # reset at once by Down
    closed_by_down: int = 0  # open connections reset when a Down window opened
    blackholed: int = 0  # accepted into a black hole, never forwarded
    reset: int = 0  # reset mid-stream by ResetPeer
    upstream_failed: int = 0  # the upstream could not be reached
    bytes_upstream: int = 0  # client -> service, delivered
    bytes_downstream: int = 0  # service -> client, delivered
    bytes_dropped: int = 0  # read and thrown away by a black hole
    chunks_delayed: int = 0  # chunks a Latency toxic held back
    segments: int = 0  # chunks a PacketLoss toxic judged
    transmissions_lost: int = 0  # their lost transmissions (a chunk may lose several)
    counted_resets: int = 0  # requests a FirstN or EveryNth toxic reset
    sliced: int = 0  # chunks a Slicer cut into pieces
    slow_closes: int = 0  # closes a SlowClose held back
    limited: int = 0  # connections a LimitData closed

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
