"""Modules that moved into the layer packages keep their old paths for one release.

``import retrysim.metrics`` (a notebook's, a user's script's, an old pickle's) gives the module
now at ``retrysim.results.metrics`` itself, with a DeprecationWarning naming the new path and
the release the old one goes away in. The finder that does it is asked only about imports no
other finder found, so every other import costs nothing more.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import pickle
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from packaging.version import Version

import retrysim
from retrysim._lazy import MovedModules, alias_moved_modules

PACKAGE = Path(retrysim.__file__).resolve().parent
MOVED = retrysim._MOVED
REMOVED_IN = retrysim._MOVED_REMOVED_IN

Forget = Callable[[str], None]


@pytest.fixture
def forget(monkeypatch: pytest.MonkeyPatch) -> Forget:
    """Undo an earlier import of an old path, so importing it again runs the finder again."""

    def forget(old: str) -> None:
        monkeypatch.delitem(sys.modules, f"retrysim.{old}", raising=False)
        monkeypatch.delattr(retrysim, old, raising=False)

    return forget


def _finder() -> MovedModules:
    (finder,) = [f for f in sys.meta_path if isinstance(f, MovedModules)]
    return finder


def test_the_table_names_old_paths_that_are_gone_and_new_ones_that_exist() -> None:
    assert len(MOVED) == 28
    for old, new in MOVED.items():
        assert not (PACKAGE / f"{old}.py").exists() and not (PACKAGE / old).exists(), old
        assert (PACKAGE / (new.replace(".", "/") + ".py")).is_file(), new
    assert Version(retrysim.__version__) < Version(REMOVED_IN)


@pytest.mark.parametrize(("old", "new"), sorted(MOVED.items()))
def test_an_old_path_imports_the_new_module_with_a_warning(
    old: str, new: str, forget: Forget
) -> None:
    forget(old)
    with pytest.deprecated_call() as record:
        module = importlib.import_module(f"retrysim.{old}")
    assert module is importlib.import_module(f"retrysim.{new}")
    assert module.__spec__ is not None
    assert module.__name__ == module.__spec__.name == f"retrysim.{new}"  # left untouched
    (warning,) = record
    assert str(warning.message) == (
        f"retrysim.{old} moved to retrysim.{new}; import it from there "
        f"(retrysim.{old} goes away in retrysim {REMOVED_IN})"
    )


def test_from_old_path_import_a_name_works_and_the_warning_points_at_that_line(
    forget: Forget,
) -> None:
    forget("metrics")
    code = compile("x = 1\nfrom retrysim.metrics import summarize\n", "old_notebook.py", "exec")
    namespace: dict[str, object] = {}
    with pytest.warns(DeprecationWarning, match=r"retrysim\.results\.metrics") as record:
        exec(code, namespace)
    from retrysim.results.metrics import summarize

    assert namespace["summarize"] is summarize
    assert (record[0].filename, record[0].lineno) == ("old_notebook.py", 2)


def test_the_old_path_is_the_same_object_for_isinstance_and_monkeypatching(
    forget: Forget, monkeypatch: pytest.MonkeyPatch
) -> None:
    forget("scenario")
    forget("runner")
    with pytest.deprecated_call():
        old_scenario = importlib.import_module("retrysim.scenario")
        old_runner = importlib.import_module("retrysim.runner")
    from retrysim.model.library import load_scenario
    from retrysim.runs import runner

    assert isinstance(load_scenario("redis-blip"), old_scenario.Scenario)
    sentinel = object()
    monkeypatch.setattr(old_runner, "run", sentinel)
    assert runner.run is sentinel
    assert retrysim.runner is runner  # bound on the package by the import


def test_an_old_pickle_naming_the_old_path_loads(forget: Forget) -> None:
    """A pickle stores a class by module and name; one written before the move still loads."""
    forget("scenario")
    from retrysim.model.scenario import Scenario

    with pytest.deprecated_call():
        loaded = pickle.loads(b"cretrysim.scenario\nScenario\n.")
    assert loaded is Scenario


def test_a_second_import_is_cached_and_silent(forget: Forget) -> None:
    forget("facts")
    with pytest.deprecated_call():
        first = importlib.import_module("retrysim.facts")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert importlib.import_module("retrysim.facts") is first


def test_the_finder_is_asked_only_after_the_standard_finders() -> None:
    finder = _finder()
    assert sys.meta_path.index(finder) > sys.meta_path.index(importlib.machinery.PathFinder)


def test_a_module_found_elsewhere_never_reaches_the_finder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[str] = []
    finder = _finder()
    original = finder.find_spec

    def spy(
        fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        asked.append(fullname)
        return original(fullname)

    monkeypatch.setattr(finder, "find_spec", spy)
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    importlib.import_module("colorsys")
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("retrysim.no_such_module")
    assert asked == ["retrysim.no_such_module"]


@given(st.from_regex(r"[a-z_][a-z0-9_]{0,24}", fullmatch=True))
def test_the_finder_claims_only_the_old_paths(name: str) -> None:
    spec = _finder().find_spec(f"retrysim.{name}")
    assert (spec is not None) == (name in MOVED)
    assert _finder().find_spec(name) is None  # never a top-level name


def test_a_failing_new_module_leaves_no_placeholder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    alias_moved_modules("retrysim", {"gone_for_this_test": "model.no_such_module"}, REMOVED_IN)
    with pytest.deprecated_call(), pytest.raises(ModuleNotFoundError, match="no_such_module"):
        importlib.import_module("retrysim.gone_for_this_test")
    assert "retrysim.gone_for_this_test" not in sys.modules


def test_installing_twice_keeps_one_finder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    finder = alias_moved_modules("retrysim", MOVED, REMOVED_IN)
    assert [f for f in sys.meta_path if isinstance(f, MovedModules)] == [finder]
    assert sys.meta_path[-1] is finder


def test_importing_retrysim_stays_light() -> None:
    """The finder needs no importlib.abc (~20 ms) and imports no moved module ahead of time."""
    code = (
        "import sys, retrysim\n"
        "print(sorted(m for m in sys.modules if m == 'importlib.abc' or "
        "m.startswith('retrysim.')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['retrysim._lazy']"
