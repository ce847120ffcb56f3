"""The one suggestion implementation behind scenario errors, --set and the shell."""

from __future__ import annotations

import ast
from pathlib import Path

from retrysim.suggest import closest, dotted_keys, edits, hint, unknown_key


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


def _imports_difflib(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import) and any(a.name == "difflib" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and node.module == "difflib":
            return True
    return False


def test_only_the_suggestion_module_uses_difflib() -> None:
    """Every "did you mean" goes through closest/hint, so a typo gets the same answer
    everywhere; a module reaching for difflib itself would start a second implementation."""
    package = Path(__file__).resolve().parent.parent / "retrysim"
    users = sorted(
        str(path.relative_to(package.parent))
        for path in package.rglob("*.py")
        if _imports_difflib(path)
    )
    assert users == ["retrysim/suggest.py"]


def test_the_difflib_check_sees_both_import_forms(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("import os, difflib\n", encoding="utf-8")
    (tmp_path / "b.py").write_text(
        "def f():\n    from difflib import SequenceMatcher\n", encoding="utf-8"
    )
    (tmp_path / "c.py").write_text("import difflibx\n", encoding="utf-8")
    found = [_imports_difflib(tmp_path / name) for name in ("a.py", "b.py", "c.py")]
    assert found == [True, True, False]


def test_edits_match_lists_as_a_diff_matches_lines() -> None:
    old, new = ["a", "b", "c", "d"], ["a", "c", "x", "d"]
    steps = edits(old, new)
    rebuilt: list[str] = []
    for tag, i1, i2, j1, j2 in steps:
        rebuilt += old[i1:i2] if tag == "equal" else new[j1:j2]
    assert rebuilt == new
    assert ("delete", 1, 2, 1, 1) in steps  # "b" removed, the rest kept in place
    assert edits(old, old) == [("equal", 0, 4, 0, 4)]
