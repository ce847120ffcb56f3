"""The one suggestion implementation behind scenario errors, --set and the shell."""

from __future__ import annotations

from retrysim.suggest import closest, dotted_keys, hint, unknown_key


def test_closest_finds_a_typo_and_refuses_a_stranger() -> None:
    assert closest("duraton", ["duration", "description"]) == "duration"
    assert closest("zzzz", ["duration", "description"]) is None


def test_hint_suggests_else_lists_what_is_allowed() -> None:
    assert hint("ende", ["start", "end", "kind"]) == " (did you mean 'end'?)"
    assert hint("zzzz", ["start", "end", "kind"]) == " (allowed: end, kind, start)"
    assert hint("zzzz", ["start", "end"], list_allowed=False) == ""
    assert hint("zzzz", []) == ""


def test_dotted_keys_walk_dicts_and_lists() -> None:
    data = {"policy": {"max_attempts": 3}, "faults": [{"end": 1}]}
    assert dotted_keys(data) == [
        "policy",
        "policy.max_attempts",
        "faults",
        "faults.0",
        "faults.0.end",
    ]


def test_unknown_key_names_the_key_and_the_closest_existing_one() -> None:
    data = {"faults": [{"kind": "outage", "end": 1}]}
    assert unknown_key("faults.3.end", data) == (
        "faults.3.end: no such key in the scenario (did you mean 'faults.0.end'?)"
    )
    assert unknown_key("zzzz", data) == "zzzz: no such key in the scenario"
