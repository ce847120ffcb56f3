"""The defaults in effect: each default that adds time or capacity, left unset and used by the
model, listed with the key that changes it and its value with its unit, read from the models'
marks; by ``retrysim validate`` and in the run report's header."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import retrysim
from retrysim.cli.app import app
from retrysim.model.defaults import describe, given_keys, in_effect, line, walk
from retrysim.model.marks import InEffect
from retrysim.model.reference import reference
from retrysim.model.scenario import Scenario, parse_scenario


def scenario(toml: str) -> Scenario:
    return parse_scenario(tomllib.loads(toml))


def listed(toml: str, sets: dict[str, Any] | None = None) -> list[str]:
    loaded = scenario(toml)
    applied = loaded.with_overrides(sets) if sets else loaded
    return [default.text() for default in in_effect(applied, given_keys(loaded, sets, applied))]


def test_an_occ_read_then_write_lists_its_latency_for_read_and_write_and_the_connect() -> None:
    assert listed(
        '[service]\nkind = "occ"\nprotocol = "read_then_write"\n[network]\nrtt = 0.002\n'
    ) == [
        "clients.processes = one per client",
        "clients.pool_size = as many as are asked for",
        "service.latency = 10 ms (OCC read and write each)",
        "network.connect = one more rtt draw",
    ]


def test_what_the_user_set_is_not_listed_and_what_the_model_does_not_use_neither() -> None:
    assert (
        listed(
            '[service]\nkind = "occ"\nprotocol = "read_then_write"\nlatency = 0.003\n'
            "[network]\nrtt = 0.002\nconnect = 0\n"
            "[clients]\nprocesses = 1\npool_size = 4\n"
        )
        == []
    )
    assert listed('[service]\nkind = "occ"\nlatency = 0.003\n') == []  # no network: no pools
    # a single-request OCC: its latency is the whole request's, no note
    assert listed('[service]\nkind = "occ"\n') == ["service.latency = 10 ms"]


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            '[service]\nkind = "queue"\nconcurrency = 4\n',
            ["service.queue_limit = 1,000", "service.latency = 10 ms"],
        ),
        (
            '[service]\nkind = "rate_limited"\nrate = 5\nlatency = 0\n',
            ["service.burst = 1"],
        ),
        (
            '[service]\nkind = "processor_sharing"\nlatency = 0.1\n',
            ["service.cores = 1 core"],  # no cap: no FIFO, so no queue_limit
        ),
        (
            '[service]\nkind = "processor_sharing"\nlatency = 0.1\nconcurrency = 2\n',
            ["service.cores = 1 core", "service.queue_limit = 1,000"],
        ),
        ('[service]\nkind = "lock"\nlatency = 0.1\non_busy = "fail"\n', []),
        (
            '[service]\nkind = "load_latency"\n',
            ["service.base = 10 ms", "service.per_request = 1 ms (added per request in flight)"],
        ),
        (
            "[clients]\ncpu_per_attempt = 0.001\n[service]\nkind = 'ideal'\nlatency = 0\n",
            [
                "clients.processes = one per client",
                "clients.pool_size = as many as are asked for",
                "clients.cpus = one per process",
            ],
        ),
        (
            "[network]\nrtt = 0.001\nconnect = 0.001\naccept_backlog = 5\n"
            "[clients]\nprocesses = 1\npool_size = 1\n[service]\nkind = 'ideal'\nlatency = 0\n",
            ["network.syn_retry = 1 s"],
        ),
        (
            '[service]\nkind = "ideal"\nlatency = { dist = "constant" }\n\n'
            '[[faults]]\nkind = "latency_spike"\nend = 2\nextra = { dist = "constant" }\n',
            ["service.latency.value = 10 ms", "faults.0.extra.value = 10 ms"],
        ),
    ],
)
def test_each_kind_lists_its_own_defaults(toml: str, expected: list[str]) -> None:
    assert listed(toml) == expected


def test_a_set_key_is_given_and_a_set_table_is_walked_for_what_it_leaves_unset() -> None:
    toml = '[service]\nkind = "occ"\nprotocol = "read_then_write"\n[network]\nrtt = 0.002\n'
    after = listed(toml, {"service.latency": 0.001, "network.connect": 0})
    assert not any(text.startswith(("service.latency", "network.connect")) for text in after)
    swapped = listed(
        "[service]\nkind = 'ideal'\nlatency = 0\n",
        {"service": {"kind": "queue", "concurrency": 2}},
    )
    assert swapped == ["service.queue_limit = 1,000", "service.latency = 10 ms"]


def test_setting_a_listed_key_to_the_value_shown_removes_it_and_changes_nothing_else() -> None:
    """The list is exactly the unset marked keys: set one, even to its default, and it goes."""
    for name in ("real-redis-blip", "real-http-rate-limit"):
        loaded = retrysim.load_scenario(name)
        before = in_effect(loaded, given_keys(loaded))
        assert before, name
        for default in before:
            value = _value_at(loaded, default.key)
            sets = {default.key: value.model_dump() if hasattr(value, "model_dump") else value}
            applied = loaded.with_overrides(sets)
            after = in_effect(applied, given_keys(loaded, sets, applied))
            assert after == [d for d in before if d.key != default.key], default.key


def _value_at(loaded: Scenario, key: str) -> Any:
    return next(field.value for field in walk(loaded) if field.key == key)


def test_every_marked_field_shows_adds_in_the_reference() -> None:
    rows = {
        (section.title, row.key): row.default for section in reference() for row in section.rows
    }
    marked = [
        (name, info)
        for model in _models()
        for name, info in model.model_fields.items()
        if any(isinstance(item, InEffect) for item in info.metadata)
    ]
    assert len(marked) >= 15
    defaults = [default for (_, key), default in rows.items() if "(adds " in default]
    assert len(defaults) == len(marked)
    connect = next(d for (t, k), d in rows.items() if k == "connect" and "network" in t)
    assert connect == "one more rtt draw (adds time)"


def _models() -> list[type[Any]]:
    """Every model a scenario's keys live in: those of a scenario with each table, and every
    server model."""
    from typing import get_args

    from retrysim.model.service import Service

    seen: list[type[Any]] = [type(field.table) for field in walk(_everything())]
    seen += list(get_args(get_args(Service)[0]))
    return list(dict.fromkeys(seen))


def _everything() -> Scenario:
    return scenario(
        '[clients]\ncpu_per_attempt = 0.001\n[service]\nkind = "occ"\n[network]\nrtt = 0.001\n'
    )


def test_values_are_shown_with_their_units() -> None:
    mark = InEffect("time")
    assert describe(0.01, "s", mark) == "10 ms"
    assert describe(1.5, "s", mark) == "1.5 s"
    assert describe(1000, None, mark) == "1,000"
    assert describe(2.0, "cores", mark) == "2 cores"
    assert describe(None, None, InEffect("time", "one more rtt draw")) == "one more rtt draw"
    assert line([]) == ""


def test_validate_lists_the_defaults_in_effect(tmp_path: Path) -> None:
    path = tmp_path / "orm.toml"
    path.write_text(
        '[service]\nkind = "occ"\nprotocol = "read_then_write"\n[network]\nrtt = 0.002\n'
    )
    result = CliRunner().invoke(app, ["validate", str(path), "redis-blip"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    at = lines.index(next(x for x in lines if x.startswith(f"ok: {path}")))
    assert lines[at + 1] == (
        "  defaults in effect: clients.processes = one per client; clients.pool_size = as many "
        "as are asked for; service.latency = 10 ms (OCC read and write each); network.connect = "
        "one more rtt draw"
    )
    assert "defaults in effect" not in "".join(lines[at + 2 :])  # redis-blip sets them all
    data = json.loads(CliRunner().invoke(app, ["validate", "--json", str(path)]).stdout)
    assert data[0]["defaults"][2] == "service.latency = 10 ms (OCC read and write each)"


def test_the_run_report_header_shows_them(tmp_path: Path) -> None:
    path = tmp_path / "orm.toml"
    path.write_text(
        'duration = 3\n[clients]\ncount = 5\n[service]\nkind = "occ"\nprotocol = "read_then_write"'
        "\n[network]\nrtt = 0.002\n"
    )
    result = CliRunner().invoke(app, ["run", str(path)], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "defaults in effect: clients.processes = one per client" in result.stdout
    assert "service.latency = 10 ms (OCC read and write each)" in result.stdout
    set_all = CliRunner().invoke(
        app, ["run", str(path), "--set", "service.latency=0", "--set", "network.connect=0"]
    )
    assert "service.latency = 10 ms" not in set_all.stdout
