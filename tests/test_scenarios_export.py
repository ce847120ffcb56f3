"""``retrysim scenarios export``: a scenario's faults as Toxiproxy JSON and Chaos Mesh objects.

Every document is checked against the formats' published field lists, written out below with
where they come from (facts, not code), and every fault either reaches the output or has an
item saying why not.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from retrysim.chaos.export import to_chaos_mesh, to_toxiproxy
from retrysim.chaos.export_base import NotExpressed, windows
from retrysim.chaos.toxics import ChaosError, ResetPeer, toxics_from_scenario
from retrysim.chaos.toxiproxy_json import from_toxiproxy
from retrysim.cli.app import app
from retrysim.model.library import load_scenario
from retrysim.model.scenario import Scenario

# --- the formats, as published ---------------------------------------------------------------

# https://github.com/Shopify/toxiproxy#http-api, "Proxy fields": what POST /populate takes per
# proxy (a JSON array of them; "Populating Proxies").
PROXY_FIELDS: dict[str, type] = {"name": str, "listen": str, "upstream": str, "enabled": bool}
# Same page, "Toxic fields": what POST /proxies/{proxy}/toxics takes.
TOXIC_FIELDS: dict[str, type] = {
    "name": str,
    "type": str,
    "stream": str,
    "toxicity": float,
    "attributes": dict,
}
STREAMS = {"upstream", "downstream"}
# https://github.com/Shopify/toxiproxy#toxics: each type's attributes (ms, KB/s, bytes, us);
# the server's structs hold them as int64 (toxics/*.go), so each is a whole number.
TOXIC_ATTRIBUTES: dict[str, set[str]] = {
    "latency": {"latency", "jitter"},
    "bandwidth": {"rate"},
    "slow_close": {"delay"},
    "timeout": {"timeout"},
    "reset_peer": {"timeout"},
    "slicer": {"average_size", "size_variation", "delay"},
    "limit_data": {"bytes"},
}

# https://chaos-mesh.org/docs/simulate-network-chaos-on-kubernetes/ ("Field description") and
# the CRD's types (github.com/chaos-mesh/chaos-mesh, api/v1alpha1/networkchaos_types.go,
# selector.go): apiVersion chaos-mesh.org/v1alpha1.
CHAOS_API = "chaos-mesh.org/v1alpha1"
POD_SELECTION: dict[str, type] = {"selector": dict, "mode": str, "value": str}
SELECTOR_FIELDS: dict[str, type] = dict.fromkeys(
    ("namespaces", "expressionSelectors", "nodes", "podPhaseSelectors"), list
) | dict.fromkeys(
    ("fieldSelectors", "labelSelectors", "annotationSelectors", "pods", "nodeSelectors"), dict
)
MODES = {"one", "all", "fixed", "fixed-percent", "random-max-percent"}
NETWORK_SPEC: dict[str, type] = {
    **POD_SELECTION,
    "action": str,
    "device": str,
    "duration": str,
    "direction": str,
    "target": dict,
    "targetDevice": str,
    "externalTargets": list,
    "remoteCluster": str,
    "delay": dict,
    "loss": dict,
    "duplicate": dict,
    "corrupt": dict,
    "bandwidth": dict,
}
NETWORK_ACTIONS = {"netem", "delay", "loss", "duplicate", "corrupt", "partition", "bandwidth"}
DIRECTIONS = {"to", "from", "both"}
DELAY_FIELDS: dict[str, type] = {"latency": str, "jitter": str, "correlation": str, "reorder": dict}
LOSS_FIELDS: dict[str, type] = {"loss": str, "correlation": str}
# https://chaos-mesh.org/docs/simulate-http-chaos-on-kubernetes/ (api/v1alpha1/httpchaos_types.go,
# podhttpchaos_types.go): port must be > 0 (httpchaos_webhook.go).
HTTP_SPEC: dict[str, type] = {
    **POD_SELECTION,
    "target": str,
    "port": int,
    "path": str,
    "method": str,
    "code": int,
    "request_headers": dict,
    "response_headers": dict,
    "abort": bool,
    "delay": str,
    "replace": dict,
    "patch": dict,
    "tls": dict,
    "duration": str,
    "remoteCluster": str,
}
HTTP_TARGETS = {"Request", "Response"}
REPLACE_FIELDS: dict[str, type] = dict.fromkeys(("path", "method", "body"), str) | {
    "code": int,
    "queries": dict,
    "headers": dict,
}
# https://chaos-mesh.org/docs/define-scheduling-rules/ (api/v1alpha1/schedule_types.go): the
# embedded spec sits under the type's field (networkChaos, httpChaos, ...).
SCHEDULE_SPEC: dict[str, type] = {
    "schedule": str,
    "startingDeadlineSeconds": int,
    "concurrencyPolicy": str,
    "historyLimit": int,
    "type": str,
    "networkChaos": dict,
    "httpChaos": dict,
}
SCHEDULE_FIELD = {"NetworkChaos": "networkChaos", "HTTPChaos": "httpChaos"}
#: A Go duration (Chaos Mesh's durations and delays are parsed by time.ParseDuration).
GO_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")
#: A Kubernetes object name (DNS-1123 subdomain), kept to label length here.
K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def typed(value: Any, kind: type) -> bool:
    """``value`` is of JSON type ``kind`` (a bool is no number; a whole float is no int)."""
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def check_fields(data: dict[str, Any], fields: dict[str, type], where: str) -> None:
    for key, value in data.items():
        assert key in fields, f"{where}: {key!r} is no published field"
        assert typed(value, fields[key]), f"{where}.{key}: {value!r} is no {fields[key].__name__}"


def check_toxiproxy(document: Any) -> None:
    """``document`` is what POST /populate takes, each proxy's toxics what POST .../toxics does."""
    assert isinstance(document, list)
    for proxy in document:
        populate = {key: value for key, value in proxy.items() if key != "toxics"}
        assert set(populate) == set(PROXY_FIELDS)
        check_fields(populate, PROXY_FIELDS, "proxy")
        assert re.fullmatch(r"[^:]+:\d+", proxy["listen"]) and ":" in proxy["upstream"]
        names = [toxic["name"] for toxic in proxy["toxics"]]
        assert len(names) == len(set(names)), "toxic names are unique per proxy"
        for toxic in proxy["toxics"]:
            assert set(toxic) == set(TOXIC_FIELDS)
            check_fields(toxic, TOXIC_FIELDS, "toxic")
            assert toxic["stream"] in STREAMS and 0.0 <= toxic["toxicity"] <= 1.0
            assert toxic["type"] in TOXIC_ATTRIBUTES
            for key, value in toxic["attributes"].items():
                assert key in TOXIC_ATTRIBUTES[toxic["type"]], (toxic["type"], key)
                assert typed(value, int) and value >= 0, (key, value)


def check_spec(kind: str, spec: dict[str, Any], where: str) -> None:
    fields = NETWORK_SPEC if kind == "NetworkChaos" else HTTP_SPEC
    check_fields(spec, fields, where)
    check_fields(spec["selector"], SELECTOR_FIELDS, f"{where}.selector")
    assert spec["mode"] in MODES
    if spec["mode"] in ("fixed", "fixed-percent", "random-max-percent"):
        assert spec["value"].isdigit()
    if "duration" in spec:
        assert GO_DURATION.match(spec["duration"]), spec["duration"]
    if kind == "NetworkChaos":
        assert spec["action"] in NETWORK_ACTIONS and spec.get("direction", "to") in DIRECTIONS
        if spec["action"] == "delay":
            check_fields(spec["delay"], DELAY_FIELDS, f"{where}.delay")
            assert GO_DURATION.match(spec["delay"]["latency"])
            assert GO_DURATION.match(spec["delay"]["jitter"])
        if spec["action"] == "loss":
            check_fields(spec["loss"], LOSS_FIELDS, f"{where}.loss")
            assert 0 <= float(spec["loss"]["loss"]) <= 100
        if spec.get("direction") in ("from", "both"):  # the webhook's rule, partition aside
            assert spec["action"] == "partition" or "target" in spec
        return
    assert spec["target"] in HTTP_TARGETS and spec["port"] > 0
    assert sum(key in spec for key in ("abort", "delay", "replace", "patch")) == 1
    if "delay" in spec:
        assert GO_DURATION.match(spec["delay"])
    if "replace" in spec:
        check_fields(spec["replace"], REPLACE_FIELDS, f"{where}.replace")
        assert spec["target"] == "Response" or "code" not in spec["replace"]


def check_chaos_mesh(document: Any) -> None:
    assert set(document) == {"apiVersion", "kind", "items"}
    assert (document["apiVersion"], document["kind"]) == ("v1", "List")
    names = [item["metadata"]["name"] for item in document["items"]]
    assert len(names) == len(set(names))
    for item in document["items"]:
        assert set(item) == {"apiVersion", "kind", "metadata", "spec"}
        assert item["apiVersion"] == CHAOS_API
        name = item["metadata"]["name"]
        assert K8S_NAME.match(name) and len(name) <= 63, name
        assert set(item["metadata"]) <= {"name", "annotations"}
        for key, value in item["metadata"].get("annotations", {}).items():
            prefix, _, label = key.rpartition("/")  # a qualified name: [DNS prefix/]name
            assert K8S_NAME.match(prefix) and re.fullmatch(r"[A-Za-z0-9][-\w.]*", label)
            assert isinstance(value, str)
        kind, spec = item["kind"], item["spec"]
        if kind == "Schedule":
            check_fields(spec, SCHEDULE_SPEC, name)
            assert re.fullmatch(r"@every \d+s", spec["schedule"])
            assert spec["concurrencyPolicy"] in ("Forbid", "Allow") and spec["historyLimit"] >= 1
            embedded = SCHEDULE_FIELD[spec["type"]]
            assert set(spec) & set(SCHEDULE_FIELD.values()) == {embedded}
            check_spec(spec["type"], spec[embedded], f"{name}.{embedded}")
        else:
            assert kind in SCHEDULE_FIELD
            check_spec(kind, spec, name)


def check_items(items: list[NotExpressed], scenario: Scenario, named: set[int]) -> None:
    """Each item names a fault of the scenario, its kind, and why; a fault with no object in
    the output (``named``: the indices that have one) has an item saying it was left out."""
    for item in items:
        found = re.fullmatch(r"faults\.(\d+)", item.fault)
        assert found, item.fault
        index = int(found[1])
        assert index < len(scenario.faults) and scenario.faults[index].kind == item.kind
        assert item.what and len(item.why) > 20
        assert item.in_output == (index in named), item.line()
        assert item.line().startswith(f"{item.fault} ({item.kind}) ")
    for index in set(range(len(scenario.faults))) - named:
        assert any(not i.in_output and i.fault == f"faults.{index}" for i in items), index


def toxic_indices(document: list[dict[str, Any]]) -> set[int]:
    return {int(re.match(r"fault(\d+)_", t["name"])[1]) for t in document[0]["toxics"]}  # type: ignore[index]


def chaos_indices(document: dict[str, Any]) -> set[int]:
    return {int(item["metadata"]["name"].split("-")[-2]) for item in document["items"]}


def scenario(*faults: dict[str, Any], **top: Any) -> Scenario:
    return Scenario.model_validate({"name": "Shop API", "duration": 60, **top, "faults": faults})


EVERY_KIND = scenario(
    {"kind": "outage", "start": 10, "end": 25, "error": "ConnectionRefusedError"},
    {"kind": "outage", "mode": "blackhole", "start": 30, "end": 32},
    {"kind": "flaky", "probability": 0.1},
    {"kind": "recovery_ramp", "start": 25, "end": 30, "probability": 0.8},
    {"kind": "latency_spike", "start": 5, "end": 9, "extra": 0.05},
    {"kind": "latency_spike", "end": 60, "extra": {"dist": "uniform", "low": 0.02, "high": 0.06}},
    {"kind": "latency_spike", "end": 4, "extra": {"dist": "exponential", "mean": 0.1}},
    {"kind": "reset", "probability": 0.25},
    {"kind": "capacity_loss", "start": 1, "end": 2, "slots": 1},
    {"kind": "packet_loss", "probability": 0.05, "rto": 0.3},
    {"kind": "first_n", "n": 3},
    {"kind": "every_nth", "n": 4, "start": 5, "end": 30},
    {"kind": "latency_spike", "extra": 0.2, "start": 2, "end": 13, "every": 5, "for": 1},
    service={"kind": "queue", "concurrency": 4, "latency": 0.01},
)


# --- Toxiproxy -------------------------------------------------------------------------------


def test_toxiproxy_document_has_only_published_fields_and_names_every_fault() -> None:
    document, items = to_toxiproxy(EVERY_KIND, "127.0.0.1:6379", "shop")
    check_toxiproxy(document)
    assert document[0]["name"] == "shop" and document[0]["upstream"] == "127.0.0.1:6379"
    check_items(items, EVERY_KIND, toxic_indices(document))
    toxics = {t["name"]: t for t in document[0]["toxics"]}
    assert toxics["fault0_reset_peer"]["stream"] == "upstream"  # refused before the service
    assert toxics["fault1_timeout"]["attributes"] == {"timeout": 0}
    assert toxics["fault2_reset_peer"]["toxicity"] == 0.1
    assert toxics["fault4_latency"]["attributes"] == {"latency": 50, "jitter": 0}
    assert toxics["fault5_latency"]["attributes"] == {"latency": 40, "jitter": 20}
    assert toxics["fault6_latency"]["attributes"] == {"latency": 100, "jitter": 0}  # the mean
    assert toxics["fault7_reset_peer"]["stream"] == "downstream"  # the service does the work
    left_out = {item.fault for item in items if not item.in_output}
    # capacity_loss, packet_loss (Toxiproxy has none), first_n, every_nth
    assert left_out == {"faults.8", "faults.9", "faults.10", "faults.11"}
    assert any(i.fault == "faults.9" and "packet" in i.why for i in items)
    assert any(i.fault == "faults.10" and "first 3 connections" in i.why for i in items)
    assert any(i.fault == "faults.11" and "one connection in 4" in i.why for i in items)


def test_toxiproxy_lists_each_window_with_when_to_add_and_remove_the_toxic() -> None:
    _, items = to_toxiproxy(EVERY_KIND, "127.0.0.1:6379", "shop")
    timed = {i.fault: i for i in items if i.what in ("window", "every/for")}
    assert (
        timed["faults.0"].windows == ((10.0, 25.0),)
        and "fault0_reset_peer" in timed["faults.0"].why
    )
    assert timed["faults.6"].windows == ((0.0, 4.0),)
    assert "faults.2" not in timed  # on from 0 to the end: the document is the whole story
    # every 5 s for 1 s from 2 to 13: on at 2, 7 and 12, the last cut short by the end
    assert timed["faults.12"].windows == ((2.0, 3.0), (7.0, 8.0), (12.0, 13.0))
    assert "3 windows" in timed["faults.12"].why
    approximated = {(i.fault, i.what) for i in items if i.in_output}
    assert {
        ("faults.3", "ramp"),
        ("faults.6", "extra"),
        ("faults.2", "probability"),
    } <= approximated


def test_an_open_recurring_window_is_listed_up_to_the_scenario_duration() -> None:
    spiky = scenario({"kind": "reset", "probability": 0.1, "every": 20, "for": 5})
    assert windows(spiky.faults[0], spiky.duration) == [(0, 5), (20, 25), (40, 45)]
    always = scenario({"kind": "reset", "probability": 0.1, "every": 5, "for": 5})
    assert windows(always.faults[0], 60) == [(0.0, None)]  # on all the time: one window
    assert [i.what for i in to_toxiproxy(always, "127.0.0.1:1", "x")[1]] == ["probability"]
    dense = scenario({"kind": "reset", "probability": 0.1, "every": 1e-6, "for": 5e-7})
    _, items = to_toxiproxy(dense, "127.0.0.1:1", "x")  # 60 million windows: counted, not made
    (listed,) = (i for i in items if i.what == "every/for")
    assert len(listed.windows) == 50 and "(60000000 windows, the first 50 listed)" in listed.why


def test_toxiproxy_toxics_read_back_as_the_proxy_builds_them_from_the_scenario() -> None:
    """from_toxiproxy gives what toxics_from_scenario gives for the types both know."""
    both = scenario(
        {"kind": "outage", "mode": "blackhole", "start": 3, "end": 5},
        {"kind": "latency_spike", "start": 1, "end": 2, "extra": 0.05},
        {
            "kind": "latency_spike",
            "end": 9,
            "extra": {"dist": "uniform", "low": 0.02, "high": 0.06},
        },
        {"kind": "reset", "probability": 0.25, "start": 4},
    )
    document, _ = to_toxiproxy(both, "127.0.0.1:6379", "p")
    ours = toxics_from_scenario(both)
    for fault, toxic, built in zip(both.faults, document[0]["toxics"], ours, strict=True):
        read = from_toxiproxy(toxic, fault.start, fault.end)
        assert type(read) is type(built)
        for key, value in asdict(read).items():
            if key == "source":  # which scenario fault it came from: the JSON has no such key
                continue
            wanted = getattr(built, key)
            assert value == (pytest.approx(wanted) if isinstance(wanted, float) else wanted), key


def test_refusals_and_flaky_read_back_as_resets_before_the_service() -> None:
    """An outage that refuses is a reset_peer upstream: from_toxiproxy's ResetPeer on the
    request's first bytes, with the fault's probability as toxicity."""
    refusing = scenario(
        {"kind": "outage", "start": 0, "end": 5},
        {"kind": "flaky", "probability": 0.3},
    )
    document, _ = to_toxiproxy(refusing, "127.0.0.1:6379", "p")
    first, second = (from_toxiproxy(t) for t in document[0]["toxics"])
    assert isinstance(first, ResetPeer) and isinstance(second, ResetPeer)
    assert (first.stream, first.toxicity, first.bytes, first.timeout) == ("upstream", 1.0, 0, 0.0)
    assert (second.stream, second.toxicity, second.timeout) == ("upstream", 0.3, 0.0)


def test_http_answers_are_not_toxics_and_say_so() -> None:
    answering = scenario(
        {"kind": "outage", "start": 1, "end": 2, "error": "RateLimited", "retry_after": 0.5},
        {"kind": "flaky", "probability": 0.2, "answer": 503},
    )
    document, items = to_toxiproxy(answering, "127.0.0.1:8080", "api")
    assert document[0]["toxics"] == []
    assert [(i.fault, i.what, i.in_output) for i in items] == [
        ("faults.0", "answer", False),
        ("faults.1", "answer", False),
    ]
    assert "429" in items[0].why


def test_a_delay_under_a_millisecond_is_rounded_and_listed() -> None:
    fine = scenario({"kind": "latency_spike", "end": 1, "extra": 0.0004})
    document, items = to_toxiproxy(fine, "127.0.0.1:1", "x")
    assert document[0]["toxics"][0]["attributes"]["latency"] == 0
    assert any(i.what == "extra" and "0.4 ms" in i.why for i in items)


@pytest.mark.parametrize(
    ("upstream", "name", "listen", "message"),
    [
        ("redis:6379:1", "x", "127.0.0.1:0", "--upstream 'redis:6379:1'"),
        ("127.0.0.1:70000", "x", "127.0.0.1:0", "--upstream"),
        ("127.0.0.1:6379", "Shop API", "127.0.0.1:0", "--name 'Shop API'"),
        ("127.0.0.1:6379", "x", "localhost", "--listen 'localhost'"),
    ],
)
def test_bad_addresses_and_names_are_refused_naming_the_option(
    upstream: str, name: str, listen: str, message: str
) -> None:
    with pytest.raises(ChaosError, match=re.escape(message)):
        to_toxiproxy(EVERY_KIND, upstream, name, listen=listen)


# --- Chaos Mesh ------------------------------------------------------------------------------


def test_chaos_mesh_objects_have_only_published_fields_and_name_every_fault() -> None:
    document, items = to_chaos_mesh(EVERY_KIND, "127.0.0.1:6379", "shop")
    check_chaos_mesh(document)
    check_items(items, EVERY_KIND, chaos_indices(document))
    by_name = {item["metadata"]["name"]: item for item in document["items"]}
    assert set(by_name) == {
        "shop-1-partition",
        "shop-4-delay",
        "shop-5-delay",
        "shop-6-delay",
        "shop-9-loss",
        "shop-12-delay",
    }
    assert by_name["shop-1-partition"]["spec"]["duration"] == "2s"
    assert by_name["shop-4-delay"]["spec"]["delay"]["latency"] == "50ms"
    assert by_name["shop-5-delay"]["spec"]["delay"] == {
        "latency": "40ms",
        "jitter": "20ms",
        "correlation": "0",
    }
    assert by_name["shop-9-loss"]["spec"]["loss"]["loss"] == "5"
    assert by_name["shop-4-delay"]["spec"]["selector"] == {"labelSelectors": {"app": "shop"}}
    schedule = by_name["shop-12-delay"]
    assert schedule["kind"] == "Schedule" and schedule["spec"]["schedule"] == "@every 5s"
    assert schedule["spec"]["networkChaos"]["duration"] == "1s"
    left_out = {(i.fault, i.what) for i in items if not i.in_output}
    assert left_out == {
        ("faults.0", "mode"),  # a TCP refusal
        ("faults.2", "probability"),
        ("faults.3", "probability"),
        ("faults.7", "kind"),  # a reset, on a TCP service
        ("faults.8", "kind"),
        ("faults.10", "n"),
        ("faults.11", "n"),
    }
    kept = {(i.fault, i.what) for i in items if i.in_output}
    assert {("faults.4", "start"), ("faults.9", "rto"), ("faults.12", "end")} <= kept
    for number, item in [(4, by_name["shop-4-delay"]), (12, by_name["shop-12-delay"])]:
        own = [i.line() for i in items if i.fault == f"faults.{number}"]
        assert item["metadata"]["annotations"]["retrysim/not-expressed"].split("\n") == own


def test_chaos_mesh_on_an_http_service_answers_aborts_and_delays() -> None:
    http = scenario(
        {"kind": "outage", "start": 3, "end": 5, "error": "RateLimited", "retry_after": 0.5},
        {"kind": "outage", "start": 6, "end": 7, "answer": 503},
        {"kind": "outage", "start": 8, "end": 9, "error": "ConnectionError"},
        {"kind": "reset", "probability": 1.0},
        {"kind": "latency_spike", "end": 2, "extra": 0.25},
        {"kind": "flaky", "probability": 0.5, "answer": "busy"},
    )
    document, items = to_chaos_mesh(http, "10.0.0.7:8080", "api", selector={"app": "web"})
    check_chaos_mesh(document)
    check_items(items, http, chaos_indices(document))
    specs = [item["spec"] for item in document["items"]]
    assert [s.get("replace") for s in specs[:2]] == [
        {"code": 429, "headers": {"Retry-After": "0.5"}},
        {"code": 503},
    ]
    assert (specs[2]["target"], specs[2]["abort"]) == ("Request", True)
    assert (specs[3]["target"], specs[3]["abort"]) == ("Response", True)
    assert specs[4]["delay"] == "250ms" and all(s["port"] == 8080 for s in specs)
    assert all(s["selector"]["labelSelectors"] == {"app": "web"} for s in specs)
    assert [(i.fault, i.what) for i in items if not i.in_output] == [("faults.5", "answer")]


def test_a_fault_on_some_replicas_picks_that_many_pods() -> None:
    some = scenario(
        {"kind": "outage", "mode": "blackhole", "start": 0, "end": 5, "replicas": [0, 2]},
        service={"kind": "queue", "concurrency": 2, "latency": 0.01, "replicas": 3},
    )
    document, items = to_chaos_mesh(some, "127.0.0.1:6379", "db")
    assert (document["items"][0]["spec"]["mode"], document["items"][0]["spec"]["value"]) == (
        "fixed",
        "2",
    )
    assert [i.what for i in items] == ["replicas"]


def test_a_schedule_that_cannot_keep_a_fractional_period_says_so() -> None:
    odd = scenario({"kind": "packet_loss", "probability": 0.1, "start": 4, "every": 2.5, "for": 1})
    document, items = to_chaos_mesh(odd, "127.0.0.1:6379", "db")
    check_chaos_mesh(document)
    assert document["items"][0]["spec"]["schedule"] == "@every 2s"
    assert any(i.what == "every" and "2.5 s" in i.why for i in items)
    start = next(i for i in items if i.what == "start")
    assert "at 2 s" in start.why and start.windows[0] == (4.0, 5.0)


def test_tiers_need_one_chosen() -> None:
    tiered = load_scenario("three-tier-storm")  # its database tier has an outage
    with pytest.raises(ChaosError, match="--tier NAME"):
        to_chaos_mesh(tiered, "127.0.0.1:1", "x")
    with pytest.raises(ChaosError, match="--tier 'db': no such tier"):
        to_toxiproxy(tiered, "127.0.0.1:1", "x", tier="db")
    document, items = to_toxiproxy(tiered, "127.0.0.1:5432", "db", tier="database")
    check_toxiproxy(document)
    assert [t["name"] for t in document[0]["toxics"]] == ["fault0_reset_peer"]
    assert {i.fault for i in items} == {"tiers.database.faults.0"}
    assert to_toxiproxy(tiered, "127.0.0.1:1", "x", tier="gateway")[0][0]["toxics"] == []


# --- the command -----------------------------------------------------------------------------


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, ["scenarios", "export", *args])


def test_cli_toxiproxy_on_a_bundled_scenario_prints_the_document_and_the_items() -> None:
    result = invoke("postgres-restart", "--to", "toxiproxy", "--upstream", "127.0.0.1:5432")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    check_toxiproxy(document)
    assert document[0]["name"] == "postgres-restart"
    assert [t["type"] for t in document[0]["toxics"]] == ["reset_peer", "reset_peer"]
    lines = result.stderr.splitlines()
    assert lines and all(line.startswith("retrysim: not expressed: faults.") for line in lines)
    assert any("faults.0 (outage) window" in line and "at 10 s" in line for line in lines)


def test_cli_chaos_mesh_json_holds_the_document_and_every_item() -> None:
    result = invoke("real-http-rate-limit", "--to", "chaos-mesh", "--json", "--selector", "app=api")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["format"] == "chaos-mesh" and report["out"] is None
    check_chaos_mesh(report["document"])
    assert report["document"]["items"][0]["kind"] == "HTTPChaos"
    assert report["document"]["items"][0]["spec"]["port"] == 8080  # the HTTP default
    assert len(report["not_expressed"]) == len(result.stderr.splitlines()) >= 1
    assert {"fault", "kind", "what", "why", "in_output", "windows"} == set(
        report["not_expressed"][0]
    )


def test_cli_out_writes_the_file_whole_and_leaves_nothing_beside_it(tmp_path: Path) -> None:
    target = tmp_path / "manifests.json"
    target.write_text("old\n")
    target.chmod(0o640)
    printed = invoke("replica-down", "--to", "chaos-mesh")
    result = invoke("replica-down", "--to", "chaos-mesh", "--out", str(target))
    assert result.exit_code == 0, result.output
    assert target.read_text() == printed.stdout  # the same document, not the old text
    assert yaml.safe_load(target.read_text()) == json.loads(printed.stdout)  # kubectl reads it
    assert os.listdir(tmp_path) == ["manifests.json"]  # no temporary file left behind
    assert target.stat().st_mode & 0o777 == 0o640  # replaced, keeping its permissions
    assert result.stdout.startswith(f"wrote {target}")


def test_cli_bad_input_leaves_the_out_file_alone(tmp_path: Path) -> None:
    target = tmp_path / "proxies.json"
    target.write_text("old\n")
    result = invoke("redis-blip", "--to", "toxiproxy", "--out", str(target), "--upstream", "x")
    assert result.exit_code == 2
    assert target.read_text() == "old\n"
    missing = invoke("redis-blip", "--to", "toxiproxy", "--out", str(tmp_path / "no" / "f.json"))
    assert missing.exit_code == 2 and "no such folder" in missing.stderr


def test_cli_options_of_the_other_format_are_refused() -> None:
    result = invoke("redis-blip", "--to", "toxiproxy", "--selector", "app=x")
    assert result.exit_code == 2
    assert result.stderr.strip() == "retrysim: error: --selector applies to --to chaos-mesh only"


def test_cli_a_scenario_file_with_the_new_kinds(tmp_path: Path) -> None:
    path = tmp_path / "lossy.toml"
    path.write_text(
        'name = "lossy"\nduration = 30\n'
        '[[faults]]\nkind = "packet_loss"\nprobability = 0.02\nstart = 5\nend = 20\n'
        '[[faults]]\nkind = "first_n"\nn = 2\n'
        '[[faults]]\nkind = "latency_spike"\nextra = 0.1\nend = 30\nevery = 10\nfor = 2\n'
    )
    result = invoke(str(path), "--to", "chaos-mesh", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    kinds = [(i["kind"], i["metadata"]["name"]) for i in report["document"]["items"]]
    assert kinds == [("NetworkChaos", "lossy-0-loss"), ("Schedule", "lossy-2-delay")]
    left = [(i["fault"], i["what"]) for i in report["not_expressed"] if not i["in_output"]]
    assert left == [("faults.1", "n")]


def test_cli_a_bad_format_is_one_line_and_exit_2() -> None:
    process = subprocess.run(
        [sys.executable, "-m", "retrysim", "scenarios", "export", "redis-blip", "--to", "istio"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert process.returncode == 2
    assert process.stdout == ""
    assert process.stderr == "retrysim: error: --to 'istio': allowed: toxiproxy, chaos-mesh\n"


def test_cli_export_takes_dash_h() -> None:
    result = CliRunner().invoke(app, ["scenarios", "export", "-h"], env={"COLUMNS": "100"})
    assert result.exit_code == 0 and "--to" in result.stdout and "<str>" not in result.stdout
