"""Scenario data written as TOML with tomlkit: fresh files round-trip, edited files keep their
comments and layout where nothing changed."""

from __future__ import annotations

import copy
import tomllib
from typing import Any

import pytest

from retrysim.model.library import bundled_scenarios, load_scenario
from retrysim.model.scenario import parse_scenario
from retrysim.model.toml_edit import dumps, update

EDITED = """\
# capacity test for the blip
name = "mine"   # shown in reports
duration = 60

[policy]
operation = "scheduler"   # enqueueing
# max_attempts = 5

[clients]
count = 500               # half the fleet
arrival = { kind = "poisson", rate = 200 }

[service]
kind = "ideal"

[[faults]]                # the blip itself
kind = "outage"
start = 20
end = 23

[[faults]]                # a second, later one
kind = "flaky"
start = 40
end = 50
probability = 0.5
"""


def dumped(text: str) -> dict[str, Any]:
    return parse_scenario(tomllib.loads(text), "test").model_dump(mode="python")


@pytest.mark.parametrize("name", sorted(bundled_scenarios()))
def test_a_fresh_file_reads_back_as_the_same_scenario(name: str) -> None:
    data = load_scenario(name).model_dump(mode="python")
    assert dumped(dumps(data)) == data


def test_a_fresh_file_starts_tables_with_their_kind_and_leaves_out_unset_keys() -> None:
    text = dumps(load_scenario("redis-blip").model_dump(mode="python"))
    assert '[[faults]]\nkind = "outage"' in text
    assert "max_attempts" not in text  # None: not set, not written
    assert 'latency = {dist = "lognormal"' in text  # small nested tables stay inline


def test_values_toml_cannot_hold_are_a_type_error() -> None:
    with pytest.raises(TypeError):
        dumps({"name": object()})


def test_an_update_keeps_comments_and_touches_only_what_changed() -> None:
    old = dumped(EDITED)
    new = copy.deepcopy(old)
    new["policy"]["max_attempts"] = 5
    new["clients"]["count"] = 80
    new["clients"]["arrival"]["rate"] = 50.0
    text = update(EDITED, old, new)
    assert dumped(text) == new
    assert text.startswith('# capacity test for the blip\nname = "mine"   # shown in reports\n')
    assert 'operation = "scheduler"   # enqueueing\n# max_attempts = 5\nmax_attempts = 5\n' in text
    assert "count = 80               # half the fleet" in text
    assert 'arrival = { kind = "poisson", rate = 50.0 }' in text
    assert "[[faults]]                # the blip itself" in text
    assert "duration = 60\n" in text  # an unchanged value keeps its spelling (not 60.0)
    assert "think_time" not in text  # defaults the file never spelled out stay out


def test_an_unchanged_scenario_is_written_back_byte_for_byte() -> None:
    assert update(EDITED, dumped(EDITED), dumped(EDITED)) == EDITED


def test_removing_and_adding_faults_keeps_the_comments_of_the_others() -> None:
    old = dumped(EDITED)
    new = copy.deepcopy(old)
    del new["faults"][0]
    new["faults"].append({**old["faults"][0], "start": 70.0, "end": 75.0})
    text = update(EDITED, old, new)
    assert dumped(text) == new
    assert "# the blip itself" not in text
    assert "[[faults]]                # a second, later one" in text
    assert text.index("a second, later one") < text.index("start = 70.0")


def test_a_key_set_to_none_is_removed() -> None:
    old = dumped(EDITED)
    new = copy.deepcopy(old)
    new["faults"][1]["end"] = None  # flaky until the run ends
    text = update(EDITED, old, new)
    assert dumped(text) == new
    assert "end = 50" not in text
