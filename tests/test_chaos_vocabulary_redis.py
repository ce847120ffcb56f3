"""The new fault kinds against a real redis-server, with the simulator beside them: first_n
fails exactly its count of real attempts, as in the model; packet loss loses transmissions at
its rate; a real run with both matches its simulation (``chaos --vs-sim``)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from retrysim.chaos.redis_target import ping, private_redis
from retrysim.chaos.run import real_run
from retrysim.model.scenario import Scenario
from retrysim.sim import records as rec
from retrysim.sim.engine import simulate
from retrysim.sim.invariants import violations

LOSS, FIRST = 0.05, 40


@pytest.fixture(scope="module")
def redis_port(redis_server: str) -> Iterator[int]:
    with private_redis(redis_server) as port:
        yield port
    assert not ping(port)


def lossy() -> Scenario:
    """real-redis-lossy cut down: 30 workers for 2.5 s, 5% loss with a 50 ms RTO, and the
    first 40 requests after 1 s failed."""
    data: dict[str, Any] = {
        "name": "small-lossy",
        "seed": 4,
        "duration": 2.5,
        "policy": {"operation": "storage", "max_attempts": 6, "min_wait": 0.05, "jitter": 0.1},
        "clients": {
            "count": 30,
            "think_time": 0.2,
            "timeout": 1.0,
            "arrival": {"kind": "closed", "ramp": 0.2},
        },
        "faults": [
            {"kind": "packet_loss", "probability": LOSS, "rto": 0.05},
            {
                "kind": "first_n",
                "n": FIRST,
                "start": 1.0,
                "error": "redis.exceptions.ConnectionError",
            },
        ],
    }
    return Scenario.model_validate(data)


def test_first_n_and_packet_loss_against_a_real_redis_and_the_model(redis_port: int) -> None:
    scenario = lossy()
    ran = real_run(scenario, ("127.0.0.1", redis_port), vs_sim=3)
    real, doc = ran.result, ran.document
    assert violations(real) == []
    stats = doc["proxy"]
    failed = real.attempts[real.attempts["outcome"] == rec.FAILED]
    # exactly the count, each a request the proxy reset, none before the window opened
    assert stats["counted_resets"] == FIRST == len(failed)
    assert failed["start"].min() >= 0.95
    assert set(real.calls["outcome"]) == {rec.SUCCEEDED}
    # the model fails the same number of attempts, on every seed
    for seed in (1, 2, 3):
        model = simulate(scenario, seed=seed).attempts
        assert (model["outcome"] == rec.FAILED).sum() == FIRST
    # transmissions lost at the configured rate (four binomial deviations)
    trials = stats["segments"] + stats["transmissions_lost"]
    share = stats["transmissions_lost"] / trials
    assert abs(share - LOSS) < 4 * math.sqrt(LOSS * (1 - LOSS) / trials), (share, trials)
    # a lost answer is late by the RTO at least: the slowest successful attempts show it
    ok = real.attempts[real.attempts["outcome"] == rec.OK]
    assert np.max(ok["end"] - ok["start"]) >= 0.05
    rows = {row["metric"]: row for row in doc["versus"]["rows"]}
    assert rows["success_rate"]["outside"] is False
