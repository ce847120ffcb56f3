"""The scenario model: TOML loading, bundled names, Python building, errors, overrides."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

import retrysim
from retrysim.model.library import bundled_scenarios, describe_bundled, resolve
from retrysim.model.scenario import (
    ERROR_NAMES,
    Burst,
    Clients,
    Constant,
    Flaky,
    Ideal,
    Lognormal,
    Outage,
    PolicySpec,
    Queue,
    Scenario,
    ScenarioError,
    parse_scenario,
    set_dotted,
)

FULL_TOML = """\
name = "demo"
description = "a demo"
seed = 9
duration = 120

[policy]
operation = "storage"
profile = "full_jitter"
max_attempts = 4
min_wait = 0.25
max_wait = 3.0

[clients]
count = 25
calls_per_client = 2
think_time = 1.5
timeout = 2.0
arrival = { kind = "uniform", start = 1, end = 11 }

[service]
kind = "queue"
concurrency = 4
queue_limit = 10
latency = { dist = "lognormal", median = 0.02, p99 = 0.2 }

[[faults]]
kind = "outage"
start = 10
end = 30
error = "ConnectionRefusedError"

[[faults]]
kind = "flaky"
start = 30
probability = 0.1
"""


def write(tmp_path: Path, text: str | bytes, name: str = "s.toml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str | bytes, name: str = "s.toml") -> str:
    path = write(tmp_path, text, name)
    with pytest.raises(ScenarioError) as info:
        retrysim.load_scenario(path)
    message = str(info.value)
    assert str(path) in message, "the message names the file"
    return message


# --- loading -----------------------------------------------------------------------------------


def test_load_full_toml_file(tmp_path: Path) -> None:
    s = retrysim.load_scenario(write(tmp_path, FULL_TOML))
    assert (s.name, s.description, s.seed, s.duration) == ("demo", "a demo", 9, 120.0)
    assert s.policy.operation == "storage" and s.policy.profile == "full_jitter"
    assert (s.policy.max_attempts, s.policy.min_wait, s.policy.max_wait) == (4, 0.25, 3.0)
    assert s.clients.count == 25 and s.clients.calls_per_client == 2
    assert s.clients.timeout == 2.0 and s.clients.think_time == 1.5
    assert s.clients.arrival.kind == "uniform"
    assert isinstance(s.service, Queue) and s.service.concurrency == 4
    assert isinstance(s.service.latency, Lognormal)
    assert [f.kind for f in s.faults] == ["outage", "flaky"]
    assert isinstance(s.faults[0], Outage) and s.faults[0].error == "ConnectionRefusedError"
    assert isinstance(s.faults[1], Flaky) and s.faults[1].end is None
    assert s.faults[1].until == math.inf


def test_load_by_string_path_and_by_path_object_agree(tmp_path: Path) -> None:
    path = write(tmp_path, FULL_TOML)
    assert retrysim.load_scenario(str(path)) == retrysim.load_scenario(path)


def test_bundled_names_load_and_match_their_files() -> None:
    bundled = bundled_scenarios()
    assert "thundering-herd" in bundled
    assert list(bundled) == sorted(bundled)
    for name, path in bundled.items():
        assert retrysim.load_scenario(name) == retrysim.load_scenario(path)
        assert resolve(name) == path


def test_describe_bundled_lists_every_bundled_scenario() -> None:
    rows = describe_bundled()
    assert [name for name, _ in rows] == list(bundled_scenarios())
    assert all(text for _, text in rows)


def test_unknown_bundled_name_suggests_the_closest() -> None:
    with pytest.raises(ScenarioError, match="did you mean 'thundering-herd'"):
        retrysim.load_scenario("thundering-hurd")


def test_defaults_when_built_in_python() -> None:
    s = Scenario()
    assert s.clients.count == 1 and isinstance(s.clients.arrival, Burst)
    assert s.clients.arrival.at == 0.0
    assert isinstance(s.service, Ideal) and s.service.latency == Constant()
    assert s.faults == [] and s.policy == PolicySpec()


def test_build_in_python_equals_the_same_toml(tmp_path: Path) -> None:
    built = Scenario(
        name="x",
        duration=10,
        policy=PolicySpec(operation="api", max_attempts=2),
        clients=Clients(count=3, timeout=1.0),
        service=Ideal(kind="ideal", latency=Constant(value=0.5)),
        faults=[Outage(kind="outage", start=1, end=2)],
    )
    text = (
        'name = "x"\nduration = 10\n[policy]\noperation = "api"\nmax_attempts = 2\n'
        "[clients]\ncount = 3\ntimeout = 1.0\n"
        '[service]\nkind = "ideal"\nlatency = 0.5\n'
        '[[faults]]\nkind = "outage"\nstart = 1\nend = 2\n'
    )
    assert retrysim.load_scenario(write(tmp_path, text)) == built


def test_a_number_means_a_constant_latency() -> None:
    s = parse_scenario({"service": {"kind": "load_latency", "base": 0.25}})
    assert s.service.base == Constant(value=0.25)  # type: ignore[union-attr]
    s = parse_scenario({"faults": [{"kind": "latency_spike", "start": 0, "end": 1, "extra": 2}]})
    assert s.faults[0].extra == Constant(value=2.0)  # type: ignore[union-attr]


def test_scenarios_are_frozen() -> None:
    s = Scenario()
    with pytest.raises(pydantic.ValidationError):
        s.duration = 5  # type: ignore[misc]


# --- errors: file and field in the message --------------------------------------------------


def test_unknown_top_level_key_suggests_the_closest(tmp_path: Path) -> None:
    message = load_error(tmp_path, "durration = 5\n")
    assert "durration" in message and "did you mean 'duration'" in message


def test_unknown_nested_key_suggests_the_closest(tmp_path: Path) -> None:
    message = load_error(tmp_path, "[policy]\nmax_atempts = 3\n")
    assert "policy.max_atempts" in message and "'max_attempts'" in message


def test_unknown_key_inside_a_fault_suggests_the_closest(tmp_path: Path) -> None:
    text = '[[faults]]\nkind = "outage"\nstart = 1\nend = 2\nerorr = "OSError"\n'
    message = load_error(tmp_path, text)
    assert "faults.0.erorr" in message and "'error'" in message


def test_unknown_key_inside_a_service_kind_suggests_the_closest(tmp_path: Path) -> None:
    message = load_error(tmp_path, '[service]\nkind = "queue"\nconcurency = 3\n')
    assert "service.concurency" in message and "'concurrency'" in message


def test_a_mistyped_arrival_key_is_answered_from_the_arrival_not_the_latency() -> None:
    # "uniform" is a tag in two unions (latency dist and arrival kind); the arrival's fields count
    with pytest.raises(ScenarioError) as info:
        parse_scenario({"clients": {"arrival": {"kind": "uniform", "ende": 5}}})
    message = str(info.value)
    assert "clients.arrival.ende: unknown key (did you mean 'end'?)" in message
    assert "low" not in message and "high" not in message
    with pytest.raises(ScenarioError) as info:
        parse_scenario({"clients": {"arrival": {"kind": "uniform", "end": 5, "zzzz": 1}}})
    assert "clients.arrival.zzzz: unknown key (allowed: end, kind, start)" in str(info.value)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # Latency, at each place it occurs
        (
            {"service": {"kind": "ideal", "latency": {"dist": "uniform", "lo": 1, "high": 2}}},
            "service.latency.lo: unknown key (did you mean 'low'?)",
        ),
        (
            {"service": {"kind": "load_latency", "base": {"dist": "normal", "mean": 1, "zz": 1}}},
            "service.base.zz: unknown key (allowed: dist, mean, negative, std)",
        ),
        (
            {
                "faults": [
                    {
                        "kind": "latency_spike",
                        "end": 2,
                        "extra": {"dist": "lognormal", "median": 1, "p9": 2},
                    }
                ]
            },
            "faults.0.extra.p9: unknown key (did you mean 'p99'?)",
        ),
        # Arrival, and a model nested in it
        (
            {"clients": {"arrival": {"kind": "burst", "att": 1}}},
            "clients.arrival.att: unknown key (did you mean 'at'?)",
        ),
        (
            {
                "clients": {
                    "arrival": {
                        "kind": "poisson",
                        "rate": 1,
                        "schedule": [{"start": 0, "end": 1, "rat": 2}],
                    }
                }
            },
            "clients.arrival.schedule.0.rat: unknown key (did you mean 'rate'?)",
        ),
        # Service
        (
            {"service": {"kind": "rate_limited", "rate": 1, "retry_afterr": "none"}},
            "service.retry_afterr: unknown key (did you mean 'retry_after'?)",
        ),
        # Fault, past a first fault of another kind
        (
            {
                "faults": [
                    {"kind": "outage", "end": 2},
                    {"kind": "reset", "probability": 0.1, "probabilty": 0.2},
                ]
            },
            "faults.1.probabilty: unknown key (did you mean 'probability'?)",
        ),
    ],
)
def test_unknown_keys_are_suggested_from_the_union_member_at_that_place(
    data: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data)
    assert expected in str(info.value)


def test_a_field_named_like_a_tag_stays_in_the_location() -> None:
    # rate_limited has a field "burst", which is also an arrival kind: the field is not a tag
    with pytest.raises(ScenarioError) as info:
        parse_scenario({"service": {"kind": "rate_limited", "rate": 1, "burst": 0.5}})
    assert "<scenario>: service.burst: " in str(info.value)


def test_wrong_type_names_the_field(tmp_path: Path) -> None:
    message = load_error(tmp_path, '[clients]\ncount = "many"\n')
    assert "clients.count" in message and "integer" in message


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('[[faults]]\nkind = "outage"\nstart = 10\nend = 5\n', "faults.0"),
        ('[[faults]]\nkind = "flaky"\nprobability = 0.1\nstart = 3\nend = 3\n', "faults.0"),
        ('[clients]\narrival = { kind = "uniform", start = 5, end = 1 }\n', "clients.arrival"),
        (
            '[clients]\narrival = { kind = "poisson", rate = 1, '
            "schedule = [{ start = 4, end = 2, rate = 9 }] }\n",
            "clients.arrival.schedule.0",
        ),
        ("[policy]\nmin_wait = 5\nmax_wait = 1\n", "policy"),
        (
            '[service]\nkind = "ideal"\nlatency = { dist = "uniform", low = 2, high = 1 }\n',
            "service.latency.high",
        ),
        (
            '[service]\nkind = "ideal"\nlatency = { dist = "lognormal", median = 1, p99 = 0.5 }\n',
            "service.latency.p99",
        ),
    ],
)
def test_inverted_windows_and_ranges_are_errors(tmp_path: Path, text: str, field: str) -> None:
    message = load_error(tmp_path, text)
    assert f": {field}: " in message


def test_inverted_poisson_window_is_an_error(tmp_path: Path) -> None:
    """A Poisson arrival window [start, end) with end < start must be rejected like the others.

    (Without validation the engine silently generates arrivals in [end, start) instead.)
    """
    text = '[clients]\narrival = { kind = "poisson", rate = 5, start = 30, end = 20 }\n'
    message = load_error(tmp_path, text)
    assert "clients.arrival" in message


@pytest.mark.parametrize(
    ("arrival", "empty_allowed"),
    [
        ('{ kind = "uniform", start = 3, end = 3 }', True),
        ('{ kind = "poisson", rate = 1, start = 3, end = 3 }', False),
        ('{ kind = "poisson", rate = 1, schedule = [{ start = 3, end = 3, rate = 9 }] }', False),
    ],
)
def test_a_window_whose_end_is_its_start(tmp_path: Path, arrival: str, empty_allowed: bool) -> None:
    """Uniform first calls may all start at one instant; an arrival window or a rate step of no
    length is an error, with the one message every window check gives."""
    text = f"duration = 10\n[clients]\narrival = {arrival}\n"
    if empty_allowed:
        arrival_of = retrysim.load_scenario(write(tmp_path, text)).clients.arrival
        assert (arrival_of.kind, getattr(arrival_of, "end", None)) == ("uniform", 3)
    else:
        assert "end (3.0) must be > start (3.0)" in load_error(tmp_path, text)


def test_a_fault_window_of_no_length_is_an_error(tmp_path: Path) -> None:
    text = '[[faults]]\nkind = "outage"\nstart = 2\nend = 2\n'
    assert ": faults.0: end (2.0) must be > start (2.0)" in load_error(tmp_path, text)


@pytest.mark.parametrize(
    ("text", "field", "allowed"),
    [
        ('[service]\nkind = "quantum"\n', "service", "'ideal'"),
        ('[[faults]]\nkind = "meteor"\n', "faults.0", "'outage'"),
        ('[clients]\narrival = { kind = "sometimes" }\n', "clients.arrival", "'poisson'"),
        (
            '[service]\nkind = "ideal"\nlatency = { dist = "pareto" }\n',
            "service.latency",
            "'normal'",
        ),
        ('[policy]\nprofile = "yolo"\n', "policy.profile", "'decorrelated'"),
        ('[policy]\noperation = "cache"\n', "policy.operation", "'storage'"),
    ],
)
def test_unknown_kinds_list_what_is_allowed(
    tmp_path: Path, text: str, field: str, allowed: str
) -> None:
    message = load_error(tmp_path, text)
    assert f": {field}: " in message and allowed in message


def test_unknown_error_name_lists_the_registry(tmp_path: Path) -> None:
    text = '[[faults]]\nkind = "flaky"\nprobability = 0.5\nerror = "KaboomError"\n'
    message = load_error(tmp_path, text)
    assert "faults.0.error" in message
    assert all(f"'{name}'" in message for name in ERROR_NAMES)


def test_unknown_error_name_in_retry_on_and_reject_error(tmp_path: Path) -> None:
    message = load_error(tmp_path, '[policy]\nretry_on = ["Nope"]\n')
    assert "policy.retry_on.0" in message
    message = load_error(
        tmp_path, '[service]\nkind = "queue"\nconcurrency = 1\nreject_error = "Nope"\n'
    )
    assert "service.reject_error" in message


def test_capacity_loss_needs_a_queue(tmp_path: Path) -> None:
    text = '[[faults]]\nkind = "capacity_loss"\nstart = 1\nend = 2\nslots = 1\n'
    message = load_error(tmp_path, text)
    assert "faults.0" in message and "queue" in message


def test_several_problems_are_all_reported(tmp_path: Path) -> None:
    message = load_error(tmp_path, "duration = -1\n[clients]\ncount = 0\n")
    assert "duration" in message and "clients.count" in message
    assert len(message.splitlines()) == 2


def test_invalid_toml_reports_line_and_column(tmp_path: Path) -> None:
    message = load_error(tmp_path, 'name = "x"\nduration = = 3\n')
    assert "invalid TOML" in message and "line 2" in message and "column" in message


def test_empty_file(tmp_path: Path) -> None:
    assert "empty" in load_error(tmp_path, "  \n\n")


def test_binary_file(tmp_path: Path) -> None:
    message = load_error(tmp_path, b"\xff\xfe\x00\x81garbage")
    assert "not a text file" in message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ScenarioError, match="no such file") as info:
        retrysim.load_scenario(path)
    assert str(path) in str(info.value)


def test_directory_is_not_a_scenario(tmp_path: Path) -> None:
    folder = tmp_path / "dir.toml"
    folder.mkdir()
    with pytest.raises(ScenarioError, match="directory") as info:
        retrysim.load_scenario(folder)
    assert str(folder) in str(info.value)


def test_parse_scenario_names_its_source() -> None:
    with pytest.raises(ScenarioError, match=r"^--set: clients\.count: "):
        parse_scenario({"clients": {"count": 0}}, source="--set")


def test_scenario_error_is_a_value_error() -> None:
    assert issubclass(ScenarioError, ValueError)


# --- overrides ---------------------------------------------------------------------------------


def test_with_overrides_sets_dotted_keys_and_list_items(tmp_path: Path) -> None:
    s = retrysim.load_scenario(write(tmp_path, FULL_TOML))
    t = s.with_overrides({"policy.max_attempts": 5, "faults.0.end": 40})
    assert t.policy.max_attempts == 5 and t.faults[0].end == 40
    # everything else unchanged, and the original untouched
    assert t.faults[1] == s.faults[1] and t.clients == s.clients and t.service == s.service
    assert s.policy.max_attempts == 4 and s.faults[0].end == 30


def test_with_overrides_validates_the_result() -> None:
    s = parse_scenario({"faults": [{"kind": "outage", "start": 5, "end": 9}]})
    with pytest.raises(ValueError, match=r"faults\.0"):
        s.with_overrides({"faults.0.end": 1})
    with pytest.raises(ValueError, match="max_attempts"):
        s.with_overrides({"policy.max_attempts": 0})
    with pytest.raises(ValueError, match="max_atempts"):
        s.with_overrides({"policy.max_atempts": 2})


def test_with_overrides_rejects_paths_that_do_not_exist() -> None:
    s = Scenario()
    with pytest.raises(KeyError, match=r"faults\.0"):
        s.with_overrides({"faults.0.end": 3})


def test_with_overrides_can_switch_a_kind() -> None:
    s = Scenario().with_overrides({"service": {"kind": "queue", "concurrency": 2}})
    assert isinstance(s.service, Queue) and s.service.concurrency == 2
    s = s.with_overrides({"service.latency": 0.5, "policy.profile": "bindu"})
    assert s.service.latency == Constant(value=0.5)  # type: ignore[union-attr]
    assert s.policy.profile == "bindu"


def test_set_dotted_on_plain_data() -> None:
    data: dict[str, Any] = {"a": [{"b": 1}, {"b": 2}]}
    set_dotted(data, "a.1.b", 7)
    set_dotted(data, "x.y", 3)  # missing dict steps are created
    assert data == {"a": [{"b": 1}, {"b": 7}], "x": {"y": 3}}
    with pytest.raises(KeyError):
        set_dotted(data, "a.5.b", 1)
    with pytest.raises(KeyError):
        set_dotted(data, "a.b", 1)


def test_without_faults_keeps_everything_else(tmp_path: Path) -> None:
    s = retrysim.load_scenario(write(tmp_path, FULL_TOML))
    bare = s.without_faults()
    assert bare.faults == []
    assert bare.model_copy(update={"faults": s.faults}) == s


# --- round trip law ----------------------------------------------------------------------------

_windows = st.tuples(st.floats(0, 100), st.floats(0.001, 100))


@st.composite
def _scenario_data(draw: st.DrawFn) -> dict[str, Any]:
    start, width = draw(_windows)
    fault = draw(
        st.sampled_from(
            [
                {"kind": "outage", "start": start, "end": start + width},
                {"kind": "flaky", "start": start, "probability": 0.5, "error": "OSError"},
                {"kind": "reset", "start": start, "end": start + width, "probability": 0.2},
                {"kind": "recovery_ramp", "start": start, "end": start + width},
                {"kind": "latency_spike", "start": start, "end": start + width, "extra": 1.0},
            ]
        )
    )
    return {
        "seed": draw(st.integers(0, 2**63 - 1)),
        "duration": draw(st.floats(3.5, 1000)),  # arrivals below start by 3 s, within it
        "policy": {
            "profile": draw(st.sampled_from(["bindu", "documented", "decorrelated"])),
            "max_attempts": draw(st.integers(1, 1000)),
        },
        "clients": {
            "count": draw(st.integers(1, 10**6)),
            "arrival": draw(
                st.sampled_from(
                    [
                        {"kind": "burst", "at": 3.0},
                        {"kind": "poisson", "rate": 2.5},
                        {"kind": "closed", "ramp": 1.0},
                        {"kind": "uniform", "start": 1.0, "end": 2.0},
                    ]
                )
            ),
        },
        "service": draw(
            st.sampled_from(
                [
                    {"kind": "ideal", "latency": {"dist": "exponential", "mean": 0.1}},
                    {"kind": "occ", "latency": {"dist": "normal", "mean": 0.1, "std": 0.1}},
                    {"kind": "rate_limited", "rate": 3.0, "burst": 2.0, "retry_after": "exact"},
                    {"kind": "load_latency", "base": 0.1, "per_request": 0.01},
                    {"kind": "processor_sharing", "cores": 2.5, "concurrency": 4},
                    {"kind": "lock", "on_busy": "wait", "wait_timeout": 0.5},
                ]
            )
        ),
        "faults": [fault],
    }


@given(_scenario_data())
def test_dump_and_parse_round_trip(data: dict[str, Any]) -> None:
    s = parse_scenario(data)
    assert parse_scenario(s.model_dump(mode="json")) == s
    assert s.with_overrides({}) == s
