"""OTLP JSON traces written by the real opentelemetry-sdk, fitted into a scenario with tiers:
the call graph from parent and child spans across services, each tier's own latency and
errors, the retries at the api, and a scenario that validates."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from retrysim.fit.observations import FitInputError
from retrysim.fit.pipeline import fit_files
from retrysim.fit.read import read_inputs
from retrysim.fit.writer import scenario_text, validate
from tests.fit_data import as_lines, otlp_traces


@pytest.fixture(scope="module")
def traces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("otlp") / "traces.json"
    path.write_text(otlp_traces().text)
    return path


def test_spans_of_three_services_give_a_chain_of_tiers(traces: Path) -> None:
    fit = fit_files([traces])
    assert fit.graph is not None and fit.graph.chain == ("gateway", "api", "db")
    tiers = fit.scenario["tiers"]
    assert list(tiers) == ["gateway", "api", "db"]
    text = scenario_text(fit, "retrysim fit traces.json")
    loaded = validate(text)
    assert loaded.tier_names == ("gateway", "api", "db")
    assert "policy" in tiers["gateway"] and "policy" in tiers["api"] and "policy" not in tiers["db"]


def test_each_tier_has_its_own_latency_and_errors(traces: Path) -> None:
    fit = fit_files([traces])
    tiers = fit.scenario["tiers"]
    # the gateway's own millisecond, without the api's time below it
    assert tiers["gateway"]["service"]["latency"] == {"dist": "constant", "value": 0.001}
    # the api's own work, without its db calls and the waits between their attempts
    assert fit.latency["api"].candidate.quantile(0.5) == pytest.approx(0.002, rel=0.1)
    assert fit.latency["db"].candidate.quantile(0.5) == pytest.approx(0.005, rel=0.1)
    # the db's failures are the db's: the api and the gateway failed only because of them
    assert tiers["gateway"]["faults"] == [] and tiers["api"]["faults"] == []
    outage = next(f for f in tiers["db"]["faults"] if f["kind"] == "outage")
    assert outage["error"] == "ConnectionError"
    assert outage["start"] == pytest.approx(12, abs=0.3)  # db requests arrive about 20 a second
    assert outage["end"] == pytest.approx(15, abs=0.3)


def test_the_api_retries_are_its_policy_and_not_more_db_arrivals(traces: Path) -> None:
    fit = fit_files([traces])
    assert fit.scenario["tiers"]["api"]["policy"] == {"max_attempts": 3}
    db = fit.retries["db"]
    assert db.calls == 600 and db.attempts > db.calls and db.gave_up_at == 3
    assert fit.scenario["clients"]["arrival"]["rate"] == pytest.approx(20, rel=0.2)
    assert fit.arrivals is not None and fit.arrivals.n == 600


def test_json_lines_and_hex_ids_read_as_the_single_document(traces: Path, tmp_path: Path) -> None:
    lines = tmp_path / "traces.jsonl"
    lines.write_text(as_lines(traces.read_text()))
    hexed = tmp_path / "hex.json"
    hexed.write_text(_hex_ids(traces.read_text()))

    def fitted(path: Path) -> dict[str, object]:
        found = dict(fit_files([path]).scenario)
        del found["description"]  # names the file
        return found

    reference = fitted(traces)
    assert fitted(lines) == reference
    assert fitted(hexed) == reference


def _hex_ids(text: str) -> str:
    """protobuf's JSON mapping writes ids in base64; the OTLP/JSON spec writes them in hex."""
    document = json.loads(text)
    for resource in document["resourceSpans"]:
        for scope in resource["scopeSpans"]:
            for span in scope["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if span.get(key):
                        span[key] = base64.b64decode(span[key]).hex()
                span["status"] = {"code": 2} if span.get("status", {}).get("code") else {}
    return json.dumps(document)


def test_one_service_is_one_tier(tmp_path: Path) -> None:
    document = json.loads(otlp_traces(requests=200).text)
    document["resourceSpans"] = [r for r in document["resourceSpans"] if _service(r) == "db"]
    path = tmp_path / "db.json"
    path.write_text(json.dumps(document))
    fit = fit_files([path])
    assert "tiers" not in fit.scenario
    assert any("one service (db)" in note for note in fit.notes)
    validate(scenario_text(fit))


def _service(resource: dict[str, Any]) -> str:
    attributes = resource["resource"]["attributes"]
    return str(next(a["value"]["stringValue"] for a in attributes if a["key"] == "service.name"))


def test_a_span_without_times_is_one_line(tmp_path: Path) -> None:
    document = json.loads(otlp_traces(requests=3).text)
    span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    del span["endTimeUnixNano"]
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(document))
    with pytest.raises(FitInputError, match=r"broken\.json: line 1, span .*endTimeUnixNano"):
        read_inputs([path])
