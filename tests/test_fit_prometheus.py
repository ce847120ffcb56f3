"""Prometheus scrapes written by the real ``prometheus_client``, fitted: the latency from the
histogram's buckets, the rate and the error window from the counter's differences."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

from retrysim.fit.observations import FitInputError
from retrysim.fit.options import ReadOptions
from retrysim.fit.pipeline import fit_files
from retrysim.fit.read import read_inputs
from retrysim.fit.writer import scenario_text, validate
from tests.fit_data import prometheus_scrapes, timestamped_scrapes


def test_scrapes_give_latency_rate_and_the_failing_window(tmp_path: Path) -> None:
    scraped = prometheus_scrapes(tmp_path, rate=100, median=0.01, sigma=0.7)
    fit = fit_files(scraped.files, ReadOptions(scrape_interval=scraped.interval))
    latency = fit.latency[""]
    assert latency.binned and latency.family == "lognormal"
    assert latency.n == scraped.observed
    assert latency.candidate.quantile(0.5) == pytest.approx(0.01, rel=0.05)
    assert latency.candidate.quantile(0.99) == pytest.approx(
        0.01 * math.exp(0.7 * 2.3263), rel=0.15
    )
    data = fit.scenario
    assert data["clients"]["arrival"]["rate"] == pytest.approx(100, abs=4 * math.sqrt(100 / 59))
    windows = [f for f in data["faults"] if "start" in f]
    # scrape k (at k seconds) counts the requests of step k, which happened in (k-1, k]:
    # steps 20 to 24 failing are the interval [19, 24)
    assert [(w["start"], w["end"], w["error"]) for w in windows] == [(19.0, 24.0, "ServerError")]
    assert windows[0]["kind"] == "flaky"
    assert windows[0]["probability"] == pytest.approx(0.5, abs=4 * math.sqrt(0.25 / 500))
    steady = [f for f in data["faults"] if "start" not in f]
    assert steady and steady[0]["probability"] == pytest.approx(0.01, abs=0.006)
    text = scenario_text(fit, "retrysim fit scrape-*.prom --scrape-interval 1")
    validate(text)
    assert "binned maximum likelihood" in text and "scrape-000.prom to scrape-059.prom" in text


def test_scrapes_without_times_fit_the_latency_and_say_what_is_missing(tmp_path: Path) -> None:
    scraped = prometheus_scrapes(tmp_path, scrapes=10)
    fit = fit_files(scraped.files)
    assert fit.latency[""].family == "lognormal"
    assert fit.arrivals is None
    missing = [line for line in fit.missing if line.startswith("clients.arrival")]
    assert missing == [
        "clients.arrival: the scrapes have no times (no timestamps, no --scrape-interval)"
    ]
    assert any("no --scrape-interval" in note for note in fit.notes)
    text = scenario_text(fit)
    assert "# default: the scrapes have no times" in text
    validate(text)


def test_samples_carrying_timestamps_order_the_scrapes(tmp_path: Path) -> None:
    path = timestamped_scrapes(tmp_path, [0, 150, 150, 150, 150, 150, 150], interval=15)
    data = read_inputs([path])
    assert data.scrapes is not None and data.scrapes.starts is not None
    assert data.scrapes.starts.tolist() == [0, 15, 30, 45, 60, 75]  # from the first scrape
    assert data.origin == 1_700_000_000
    fit = fit_files([path])
    assert fit.scenario["clients"]["arrival"]["rate"] == pytest.approx(10)
    (steady,) = fit.scenario["faults"]
    assert steady["probability"] == pytest.approx(0.1)
    assert steady["error"] == "ServerError"  # "error" names no error: the closest is written
    assert fit.latency == {}  # a counter alone: no latency, said so
    assert any(line.startswith("service.latency") for line in fit.missing)


def test_openmetrics_text_reads_as_the_text_format_does(tmp_path: Path) -> None:
    from prometheus_client import CollectorRegistry, Histogram
    from prometheus_client import generate_latest as text_format
    from prometheus_client.openmetrics.exposition import generate_latest as openmetrics

    registry = CollectorRegistry()
    histogram = Histogram("rpc_latency_seconds", "x", registry=registry, buckets=(0.01, 0.1, 1))
    for value in [0.005] * 60 + [0.05] * 30 + [0.5] * 10:
        histogram.observe(value)
    (tmp_path / "a.prom").write_bytes(text_format(registry))
    (tmp_path / "b.om").write_bytes(openmetrics(registry))
    one = read_inputs([tmp_path / "a.prom"]).scrapes
    other = read_inputs([tmp_path / "b.om"]).scrapes
    assert one is not None and other is not None
    assert one.buckets.tolist() == other.buckets.tolist() == [[60, 30, 10, 0]]


def test_a_restart_is_counted_from_zero_not_as_negative_requests(tmp_path: Path) -> None:
    before = prometheus_scrapes(tmp_path / "before", scrapes=5, failing=None, seed=1)
    after = prometheus_scrapes(tmp_path / "after", scrapes=5, failing=None, seed=2)
    scrapes = read_inputs(before.files + after.files, ReadOptions(scrape_interval=1)).scrapes
    assert scrapes is not None
    assert scrapes.requests.min() >= 0
    assert scrapes.requests.sum() == before.observed + after.observed


def test_a_histogram_named_by_the_user_must_exist(tmp_path: Path) -> None:
    scraped = prometheus_scrapes(tmp_path, scrapes=3)
    with pytest.raises(FitInputError, match=r"no histogram 'nope' .*http_request_duration_seconds"):
        read_inputs(scraped.files, ReadOptions(metric="nope"))


def test_the_latency_reads_only_the_successful_series_of_a_labelled_histogram(
    tmp_path: Path,
) -> None:
    """Errors answered fast (refusals) must not pull the service's latency down: a histogram
    split by status gives the latency of its successes, and says so."""
    from prometheus_client import CollectorRegistry, Histogram, generate_latest

    registry = CollectorRegistry()
    histogram = Histogram(
        "api_request_duration_seconds",
        "x",
        ["code"],
        registry=registry,
        buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1),
    )
    for value in [0.008] * 50 + [0.015] * 50:
        histogram.labels(code="200").observe(value)
    for value in [0.0005] * 400:
        histogram.labels(code="503").observe(value)
    (tmp_path / "one.prom").write_bytes(generate_latest(registry))
    scrapes = read_inputs([tmp_path / "one.prom"]).scrapes
    assert scrapes is not None
    assert scrapes.buckets.tolist() == [[0, 0, 0, 50, 50, 0, 0, 0]]  # the 503s left out
    assert scrapes.requests.tolist() == [500] and scrapes.errors["ServerError"].tolist() == [400]
    assert any("latency from the successful code only" in note for note in scrapes.notes)

    # no success at all: every series is read, and said so
    only_errors = CollectorRegistry()
    failing = Histogram("api_request_duration_seconds", "x", ["code"], registry=only_errors)
    failing.labels(code="503").observe(0.0005)
    (tmp_path / "two.prom").write_bytes(generate_latest(only_errors))
    scrapes = read_inputs([tmp_path / "two.prom"]).scrapes
    assert scrapes is not None and scrapes.buckets.sum() == 1
    assert any("no series with a successful code" in note for note in scrapes.notes)


def test_prometheus_text_without_prometheus_client_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scraped = prometheus_scrapes(tmp_path, scrapes=2)
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(
        FitInputError, match=r"needs prometheus_client.*pip install 'retrysim\[fit\]'"
    ):
        read_inputs(scraped.files)
