"""What the connections did in a run: the result document's ``connections`` section.

Present only when the scenario models connections (a ``[network]``, a bounded
``clients.pool_size`` or a ``clients.connect_timeout``), so documents of scenarios without
them keep exactly the keys they had. The pool wait is inside each attempt's time, and so inside
every latency figure; this section says how much of it was waiting for a connection.
"""

from __future__ import annotations

import numpy as np

from retrysim.model.scenario import Scenario
from retrysim.results.sections import Connections
from retrysim.sim.latency import mean_of


def connections_section(
    scenario: Scenario, stats: dict[str, int], attempts: np.ndarray, sent: np.ndarray
) -> Connections:
    """Processes, pool size, the network's mean round trip, connects, and the pool waits.

    ``sent`` marks the attempts that were sent (guards' refusals never asked for a connection).
    ``pool_wait`` figures are over the attempts that had to queue; ``share`` is their share of
    the sent attempts. ``stats`` are the engine's counts (``ConnectionStats.as_dict()``).
    """
    clients, network = scenario.clients, scenario.network
    waits = attempts["pool_wait"][sent]
    queued = waits[waits > 0]
    return {
        "processes": clients.process_count,
        "pool_size": clients.pool_size,
        "connect_timeout": clients.connect_timeout,
        "rtt_mean": None if network is None else mean_of(network.rtt),
        "connect_mean": (
            None
            if network is None
            else mean_of(network.connect if network.connect is not None else network.rtt)
        ),
        "connects": stats["connects"],
        "connect_failures": stats["connect_failures"],
        "connect_timeouts": stats["connect_timeouts"],
        "pool_waits": stats["pool_waits"],
        "pool_wait": {
            "attempts": len(queued),
            "share": len(queued) / len(waits) if len(waits) else 0.0,
            "total": float(queued.sum()),
            "mean": float(queued.mean()) if len(queued) else None,
            "p99": float(np.quantile(queued, 0.99)) if len(queued) else None,
            "max": float(queued.max()) if len(queued) else None,
        },
    }
