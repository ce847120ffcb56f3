"""``retrysim fit`` recovers what retrysim's own simulator was told, within stated tolerances.

Each log is a scenario simulated and saved exactly as ``retrysim run --out DIR`` saves it, then
fitted with no option. The tolerances are measured, not hoped for:

- ``redis-blip`` (200 calls/s for 60 s, lognormal median 2 ms and p99 20 ms, an outage from
  20 s to 23 s), fitted for seeds 0 to 9: the rate fell within 196.2 to 202.7 (the Poisson
  standard error is 0.9%), the median within 1.8%, the p99 within 3.5%, the outage's ends
  within 11 ms. The test allows about three times that: 3%, 5%, 10%, 50 ms.
- The property tests allow four standard errors of each estimator (a Poisson count's,
  the lognormal's maximum-likelihood median and p99: sigma / sqrt(n) and
  sigma * sqrt((1 + z99^2 / 2) / n) in the log), plus 2% and 5% for a neighbouring family
  winning on held-out data when the tail is light; a window's ends within five mean gaps
  between requests (the boundary lies between two of them).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retrysim.fit.families import Z99
from retrysim.fit.holdout import HeldOutCheck, held_out_check
from retrysim.fit.pipeline import fit_files
from retrysim.fit.read import read_inputs
from retrysim.fit.writer import scenario_text, validate
from retrysim.model.library import load_scenario
from tests.fit_data import otlp_traces, saved_run, scenario


@pytest.fixture(scope="module")
def redis_blip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return saved_run(load_scenario("redis-blip"), tmp_path_factory.mktemp("redis-blip"))


def test_redis_blip_rate_latency_and_outage_are_recovered(redis_blip: Path) -> None:
    fit = fit_files([redis_blip])
    data = fit.scenario
    assert data["clients"]["arrival"]["kind"] == "poisson"
    assert data["clients"]["arrival"]["rate"] == pytest.approx(200, rel=0.03)
    assert fit.arrivals is not None and fit.arrivals.verdict.startswith("Poisson")
    latency = fit.latency[""]
    assert latency.family == "lognormal"
    assert latency.candidate.quantile(0.5) == pytest.approx(0.002, rel=0.05)
    assert latency.candidate.quantile(0.99) == pytest.approx(0.02, rel=0.10)
    outages = [f for f in data["faults"] if f["kind"] == "outage"]
    assert len(outages) == 1
    assert outages[0]["start"] == pytest.approx(20, abs=0.05)
    assert outages[0]["end"] == pytest.approx(23, abs=0.05)
    assert outages[0]["error"] == "ConnectionResetError"
    assert data["duration"] == 60
    assert data["clients"]["count"] == 500


def test_redis_blip_scenario_validates_and_says_where_each_value_came_from(
    redis_blip: Path,
) -> None:
    fit = fit_files([redis_blip])
    text = scenario_text(fit, "retrysim fit redis-blip-run")
    loaded = validate(text)
    assert loaded.duration == 60
    assert loaded.faults[0].kind == "outage"
    lines = text.splitlines()
    for key in ("rate", "median", "p99", "start", "end"):
        row = next(i for i, line in enumerate(lines) if line.startswith(f"{key} = "))
        above = _comment_block(lines, row)
        # a table's own comment sits above its header, so climb there for table fields
        header = next(i for i in range(row, -1, -1) if lines[i].startswith("["))
        block = above or _comment_block(lines, header)
        assert any("n = " in line for line in block), (key, block)
        assert any(redis_blip.name in line for line in block), (key, block)
    assert "KS D" in text and "binary segmentation" in text and "index of dispersion" in text


def _comment_block(lines: list[str], row: int) -> list[str]:
    block = []
    for line in reversed(lines[:row]):
        if not line.startswith("#"):
            break
        block.append(line)
    return block


def test_the_same_input_gives_the_same_bytes(redis_blip: Path) -> None:
    first = scenario_text(fit_files([redis_blip]), "retrysim fit run")
    again = scenario_text(fit_files([redis_blip]), "retrysim fit run")
    assert first == again
    document = fit_files([redis_blip]).to_dict()
    assert json.loads(json.dumps(document, allow_nan=False)) == document


def test_retries_in_the_data_are_the_services_requests_not_more_arrivals(tmp_path: Path) -> None:
    """A flaky service retried up to 5 times: the arrivals are the calls, the failure
    probability is per attempt, and the policy's limit shows in the calls that gave up."""
    truth = scenario(
        duration=30,
        seed=11,
        policy={"operation": "api", "max_attempts": 5, "min_wait": 0.01, "max_wait": 0.05},
        clients={"count": 100, "arrival": {"kind": "poisson", "rate": 200}},
        service={"kind": "ideal", "latency": {"dist": "lognormal", "median": 0.004, "p99": 0.03}},
        faults=[{"kind": "flaky", "probability": 0.3, "error": "ConnectionError"}],
    )
    fit = fit_files([saved_run(truth, tmp_path)])
    retries = fit.retries[""]
    assert retries.attempts > 1.3 * retries.calls  # the data holds many retries
    assert fit.scenario["clients"]["arrival"]["rate"] == pytest.approx(200, rel=0.05)
    steady = [f for f in fit.scenario["faults"] if "start" not in f]
    assert [f["error"] for f in steady] == ["ConnectionError"]
    n = retries.attempts
    assert steady[0]["probability"] == pytest.approx(0.3, abs=4 * math.sqrt(0.21 / n))
    assert fit.scenario["policy"] == {"max_attempts": 5}
    assert fit.latency[""].candidate.quantile(0.5) == pytest.approx(0.004, rel=0.05)


def test_a_blackhole_outage_and_the_client_timeout_are_recovered(tmp_path: Path) -> None:
    """Requests that hang until the client's 0.5 s timeout: the timeout is read from their
    durations, and their window is an outage in blackhole mode."""
    truth = scenario(
        duration=30,
        seed=2,
        policy={"operation": "api", "max_attempts": 3, "min_wait": 0.1, "max_wait": 0.2},
        clients={"count": 50, "timeout": 0.5, "arrival": {"kind": "poisson", "rate": 100}},
        service={"kind": "ideal", "latency": {"dist": "lognormal", "median": 0.005, "p99": 0.05}},
        faults=[{"kind": "outage", "mode": "blackhole", "start": 10, "end": 13}],
    )
    fit = fit_files([saved_run(truth, tmp_path)])
    assert fit.scenario["clients"]["timeout"] == pytest.approx(0.5, rel=1e-3)
    (outage,) = fit.scenario["faults"]
    assert outage["kind"] == "outage" and outage["mode"] == "blackhole"
    assert outage["start"] == pytest.approx(10, abs=0.05)
    assert outage["end"] == pytest.approx(13, abs=0.05)
    validate(scenario_text(fit))


def test_a_closed_loop_is_written_as_one(tmp_path: Path) -> None:
    truth = scenario(
        duration=30,
        clients={"count": 20, "think_time": 0.05, "arrival": {"kind": "closed", "ramp": 1}},
        service={"kind": "ideal", "latency": {"dist": "lognormal", "median": 0.01, "p99": 0.05}},
    )
    fit = fit_files([saved_run(truth, tmp_path)])
    clients = fit.scenario["clients"]
    assert clients["arrival"]["kind"] == "closed"
    assert clients["count"] == 20
    assert clients["think_time"] == pytest.approx(0.05, rel=0.01)
    assert clients["arrival"]["ramp"] <= 1
    validate(scenario_text(fit))


def test_a_rate_step_is_found_as_a_schedule_step(tmp_path: Path) -> None:
    truth = scenario(
        duration=40,
        clients={
            "count": 50,
            "arrival": {
                "kind": "poisson",
                "rate": 100,
                "schedule": [{"start": 10, "end": 20, "rate": 400}],
            },
        },
        service={"kind": "ideal", "latency": 0.001},
    )
    fit = fit_files([saved_run(truth, tmp_path)])
    arrival = fit.scenario["clients"]["arrival"]
    assert arrival["rate"] == pytest.approx(100, abs=4 * math.sqrt(100 / 30))
    (step,) = arrival["schedule"]
    assert step["start"] == pytest.approx(10, abs=0.5)
    assert step["end"] == pytest.approx(20, abs=0.5)
    assert step["rate"] == pytest.approx(400, abs=4 * math.sqrt(400 / 10))


def test_a_call_graph_run_gives_its_tiers(tmp_path: Path) -> None:
    """A saved three-tier run: each tier's own latency (the gateway's 1 ms and the service's
    5 ms are constants, the database's a lognormal), the database's outage at the database
    alone, and a policy on each caller tier, its limit read from the calls that gave up."""
    tier_policy = {"operation": "api", "max_attempts": 3, "min_wait": 0.01, "max_wait": 0.02}
    truth = scenario(
        duration=20,
        seed=3,
        policy={"operation": "api", "max_attempts": 2, "min_wait": 0.5, "max_wait": 1},
        clients={"count": 50, "timeout": 5, "arrival": {"kind": "poisson", "rate": 50}},
        tiers={
            "gateway": {"policy": tier_policy, "service": {"kind": "ideal", "latency": 0.001}},
            "service": {"policy": tier_policy, "service": {"kind": "ideal", "latency": 0.005}},
            "database": {
                "service": {
                    "kind": "ideal",
                    "latency": {"dist": "lognormal", "median": 0.003, "p99": 0.02},
                },
                "faults": [{"kind": "outage", "start": 8, "end": 11, "error": "ConnectionError"}],
            },
        },
    )
    fit = fit_files([saved_run(truth, tmp_path)])
    tiers = fit.scenario["tiers"]
    assert list(tiers) == ["gateway", "service", "database"]
    assert tiers["gateway"]["service"]["latency"] == {"dist": "constant", "value": 0.001}
    assert tiers["service"]["service"]["latency"] == {"dist": "constant", "value": 0.005}
    assert fit.latency["database"].family == "lognormal"
    assert fit.latency["database"].candidate.quantile(0.5) == pytest.approx(0.003, rel=0.1)
    (outage,) = tiers["database"]["faults"]
    assert outage["kind"] == "outage" and outage["error"] == "ConnectionError"
    assert outage["start"] == pytest.approx(8, abs=0.1)
    assert outage["end"] == pytest.approx(11, abs=0.1)
    assert tiers["gateway"]["faults"] == [] and tiers["service"]["faults"] == []
    assert tiers["service"]["policy"] == {"max_attempts": 3}
    assert "policy" not in tiers["database"]
    assert fit.scenario["clients"]["arrival"]["rate"] == pytest.approx(50, abs=4 * (50 / 20) ** 0.5)
    loaded = validate(scenario_text(fit))
    assert loaded.tier_names == ("gateway", "service", "database")


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rate=st.floats(60, 300),
    median=st.floats(0.0005, 0.05),
    tail=st.floats(1.5, 30),
    start=st.floats(4, 18),
    length=st.floats(0.5, 5),
    error=st.sampled_from(["ConnectionError", "ConnectionRefusedError", "ServerError"]),
    seed=st.integers(0, 2**31),
)
def test_rate_latency_and_outage_are_recovered_over_many_scenarios(
    tmp_path_factory: pytest.TempPathFactory,
    rate: float,
    median: float,
    tail: float,
    start: float,
    length: float,
    error: str,
    seed: int,
) -> None:
    duration = 30.0
    truth = scenario(
        duration=duration,
        seed=seed,
        policy={"operation": "api", "max_attempts": 3, "min_wait": 0.05, "max_wait": 0.2},
        clients={"count": 50, "arrival": {"kind": "poisson", "rate": rate}},
        service={
            "kind": "ideal",
            "latency": {"dist": "lognormal", "median": median, "p99": median * tail},
        },
        faults=[{"kind": "outage", "start": start, "end": start + length, "error": error}],
    )
    fit = fit_files([saved_run(truth, tmp_path_factory.mktemp("run"))])
    data = fit.scenario
    assert data["clients"]["arrival"]["rate"] == pytest.approx(
        rate, abs=4 * math.sqrt(rate / duration)
    )
    sigma = math.log(tail) / Z99
    n = fit.latency[""].n
    fitted = fit.latency[""].candidate
    assert math.log(fitted.quantile(0.5) / median) == pytest.approx(
        0, abs=4 * sigma / math.sqrt(n) + 0.02
    )
    assert math.log(fitted.quantile(0.99) / (median * tail)) == pytest.approx(
        0, abs=4 * sigma * math.sqrt((1 + Z99**2 / 2) / n) + 0.05
    )
    (outage,) = [f for f in data["faults"] if f["kind"] == "outage"]
    gap = 5 / rate
    assert outage["start"] == pytest.approx(start, abs=gap)
    assert outage["end"] == pytest.approx(start + length, abs=gap)
    assert outage["error"] == error
    validate(scenario_text(fit))


def test_the_held_out_half_falls_inside_the_fitted_halfs_simulations(redis_blip: Path) -> None:
    """redis-blip's calls dealt to two halves: fitted on one, simulated with 5 seeds, the
    other half's rate, failed share, latency and attempts per call each inside the runs' 95%
    prediction interval (all six, for this run; ``retrysim chaos --vs-sim`` asks 9 of 10)."""
    check = held_out_check(read_inputs([redis_blip]), seeds=5)
    assert isinstance(check, HeldOutCheck)
    assert check.calls[0] == pytest.approx(check.calls[1], rel=0.02)
    assert [m.name for m in check.metrics if not m.inside] == []
    assert check.inside == len(check.metrics) == 6
    rate = check.metrics[0]
    assert rate.real == pytest.approx(100, rel=0.05)  # half the calls: half the rate
    assert json.loads(json.dumps(check.to_dict(), allow_nan=False))


def test_the_held_out_check_says_what_it_cannot_check(tmp_path: Path) -> None:
    traces = tmp_path / "traces.json"
    traces.write_text(otlp_traces(requests=15).text)  # 8 and 7 user calls: too few to judge
    assert "root calls" in str(held_out_check(read_inputs([traces])))
