"""every_nth and a slicer against retrysim's own HTTP service through the proxy, beside their
simulation: each reset the proxy counts fails one real attempt, the fleet makes the attempts
per call the model predicts, and a sliced answer costs the real client and the model the same
delays (the service leaves the slicer to the proxy: it is applied once)."""

from __future__ import annotations

from typing import Any

import numpy as np

from retrysim.chaos.http_run import http_real_run
from retrysim.model.scenario import Scenario
from retrysim.sim import records as rec

DELAY = 0.005  # between two pieces of a sliced answer


def small(**faults: Any) -> Scenario:
    """real-http-rate-limit cut down: 10 clients every 0.2 s for 3 s, and the given faults."""
    return Scenario.model_validate(
        {
            "name": "small-http-vocabulary",
            "seed": 7,
            "duration": 3,
            "policy": {"operation": "api", "max_attempts": 6, "min_wait": 0.05, "jitter": 0.1},
            "clients": {
                "count": 10,
                "think_time": 0.2,
                "timeout": 2.0,
                "arrival": {"kind": "closed", "ramp": 0.2},
                "cpus": 1,
                "cpu_per_attempt": 0.0023,
                "cpu_per_connect": 0.0006,
            },
            "service": {"kind": "ideal", "latency": 0.002},
            "network": {"rtt": {"dist": "lognormal", "median": 0.002, "p99": 0.02}},
            "faults": list(faults.values()),
        }
    )


def test_every_nth_fails_what_it_counts_and_the_model_agrees() -> None:
    nth = {"kind": "every_nth", "n": 4, "start": 1, "end": 2.5, "error": "httpx.ReadError"}
    ran = http_real_run(small(nth=nth), vs_sim=3)
    attempts, doc = ran.result.attempts, ran.document
    failed = int((attempts["outcome"] == rec.FAILED).sum())
    assert failed == doc["proxy"]["counted_resets"] > 5  # one real attempt per counted request
    assert set(ran.result.calls["outcome"]) == {rec.SUCCEEDED}
    row = {r["metric"]: r for r in doc["versus"]["rows"]}["attempts_per_call"]
    real, model = row["real"], row["mean"]
    assert real is not None and model is not None
    assert abs(real - model) < 0.05 * model, row


def test_a_sliced_answer_costs_the_fleet_and_the_model_its_delays() -> None:
    """A 95-byte answer in 40-byte pieces: two delays more, in the real run and the model."""
    slicer = {"kind": "slicer", "average_size": 40, "delay": DELAY, "answer_bytes": 95}
    ran = http_real_run(small(slicer=slicer), vs_sim=3)
    attempts, doc = ran.result.attempts, ran.document
    took = attempts["end"] - attempts["start"]
    assert doc["proxy"]["sliced"] == len(attempts)  # every answer cut
    assert np.median(took) >= 2 * DELAY
    row = {r["metric"]: r for r in doc["versus"]["rows"]}["p50_latency"]
    real, model = row["real"], row["mean"]
    assert real is not None and model is not None
    assert model >= 2 * DELAY  # the model adds the same two delays
    assert real < model + 1.5 * DELAY  # not again by the service: that added two more
