"""Real chaos for real services: a fault-injecting TCP proxy on loopback (``FaultProxy``).

Standard library and asyncio only (no rich, typer or matplotlib); a scenario's faults become
its schedule through ``toxics_from_scenario``. The real fleets are ``run`` (redis-py) and
``http_run`` (httpx, against ``http_service.HttpService``, which gives the HTTP answers a TCP
proxy cannot: 429 with Retry-After, 503, 500, slow 200s); their client libraries are imported
only when such a run starts.
"""

from __future__ import annotations

from retrysim.chaos.proxy import FaultProxy, loopback_host
from retrysim.chaos.proxy_stats import ProxyStats
from retrysim.chaos.toxics import (
    Bandwidth,
    Blackhole,
    ChaosError,
    Down,
    EveryNth,
    FirstN,
    Latency,
    PacketLoss,
    ResetPeer,
    Toxic,
    toxics_from_scenario,
)
from retrysim.chaos.toxiproxy_json import from_toxiproxy, to_toxiproxy

__all__ = [
    "Bandwidth",
    "Blackhole",
    "ChaosError",
    "Down",
    "EveryNth",
    "FaultProxy",
    "FirstN",
    "Latency",
    "PacketLoss",
    "ProxyStats",
    "ResetPeer",
    "Toxic",
    "from_toxiproxy",
    "loopback_host",
    "to_toxiproxy",
    "toxics_from_scenario",
]
