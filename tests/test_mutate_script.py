"""scripts/mutate.py on a tiny hand-written module: the operators, what is never mutated, and
a mutant's verdict. No campaign over retrysim runs here (docs/mutation.md has the command)."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "mutate.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("retrysim_mutate_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


mutate = _load()

TINY = textwrap.dedent(
    '''\
    """A tiny module: its docstring must never be mutated."""
    import logging

    log = logging.getLogger(__name__)
    LIMIT: int = 3


    def clamp(x: float, low: float = 0, high: float = 10) -> float:
        """Clamp x into [low, high]."""
        assert low <= high, "low above high"
        log.debug("clamping %s", x + 1)
        if x < low or not x == x:
            return low
        return min(x, high)


    def step(total: float, n: int) -> float:
        total = total * 2
        done = True
        print("value")
        return total / n - 1
    '''
)


def _mutants() -> dict[str, str]:
    """operator -> the mutated line, for every mutant of TINY (each id's first one)."""
    found: dict[str, str] = {}
    for mutant in mutate.mutants_of(TINY, "tiny.py"):
        assert mutant.id == f"tiny.py:{mutant.line}:{mutant.col}:{mutant.operator}"
        line = mutant.apply(TINY).splitlines()[mutant.line - 1].strip()
        found.setdefault(f"{mutant.line}:{mutant.operator}", line)
    return found


def test_each_operator_makes_the_expected_mutant() -> None:
    found = _mutants()
    expected = {
        "12:cmp:Lt->LtE": "if (x <= low) or not x == x:",
        "12:cmp:Eq->NotEq": "if x < low or not (x != x):",
        "12:bool:Or->And": "if (x < low and (not x == x)):",
        "12:bool:not-removed": "if x < low or (x == x):",
        "13:return:None": "return None",
        "14:minmax:min->max": "return max(x, high)",
        "8:const:0->1": "def clamp(x: float, low: float = (1), high: float = 10) -> float:",
        "8:const:10->11": "def clamp(x: float, low: float = 0, high: float = (11)) -> float:",
        "18:arith:Mult->Div": "total = (total / 2)",
        "18:stmt:removed": "pass",
        "19:const:True->False": "done = (False)",
        "20:stmt:removed": "pass",
        "21:arith:Div->Mult": "return (total * n) - 1",
        "21:arith:Sub->Add": "return (total / n + 1)",
        "21:const:1->0": "return total / n - (0)",
    }
    for key, line in expected.items():
        assert found.get(key) == line, key


def test_docstrings_annotations_asserts_strings_and_logging_are_never_mutated() -> None:
    touched = {int(key.split(":")[0]) for key in _mutants()}
    assert 1 not in touched  # the module's docstring
    assert 9 not in touched  # the function's docstring
    assert 10 not in touched  # the assert, its comparison and its message
    assert 11 not in touched  # the logging call, even its arithmetic
    for mutant in mutate.mutants_of(TINY, "tiny.py"):
        assert "float" in mutant.apply(TINY).splitlines()[7]  # the annotations stay
    assert "5:const:3->4" in _mutants()  # an annotated assignment's value is still mutated
    # print("value"): the statement may go, the string is never edited
    assert [key for key in _mutants() if key.startswith("20:")] == ["20:stmt:removed"]


def test_every_mutant_compiles_and_differs_from_the_original() -> None:
    mutants = mutate.mutants_of(TINY, "tiny.py")
    assert len({m.id for m in mutants}) == len(mutants)
    for mutant in mutants:
        source = mutant.apply(TINY)
        assert source != TINY
        compile(source, "tiny.py", "exec")
        assert mutant.diff(TINY).startswith("--- a/tiny.py")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    (root / "tests").mkdir(parents=True)
    (root / "tiny.py").write_text(TINY)
    (root / "tests" / "test_tiny.py").write_text(
        "from tiny import clamp\n\n"
        "def test_clamp():\n"
        "    assert clamp(-1) == 0\n"
        "    assert clamp(5) == 5\n"
    )
    return root


def _one(key: str) -> Any:
    """The mutant at "line:operator"."""
    return next(m for m in mutate.mutants_of(TINY, "tiny.py") if f"{m.line}:{m.operator}" == key)


def test_a_mutant_a_test_catches_is_killed_and_one_it_misses_survives(project: Path) -> None:
    caught = _one("14:minmax:min->max")  # clamp(5) becomes 10
    missed = _one("18:arith:Mult->Div")  # step() is not tested at all
    tally = mutate.campaign(
        project, "tiny", "tiny.py", ["tests/test_tiny.py"], [caught, missed], echo=False
    )
    assert (tally.mutants, tally.killed, tally.timeout) == (2, 1, 0)
    assert tally.survived == [missed.id]
    assert tally.rate == 50.0
    assert (project / "tiny.py").read_text() == TINY  # the working copy is never touched


def test_a_journal_keeps_verdicts_until_the_module_or_its_tests_change(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long run can stop and go on: verdicts are kept as they come, reused while the module
    and its tests are as they were, and run again once either changed."""
    caught, missed = _one("14:minmax:min->max"), _one("18:arith:Mult->Div")
    tests = ["tests/test_tiny.py"]
    journal = mutate.Journal(tmp_path / "journal.jsonl")
    first = mutate.campaign(project, "tiny", "tiny.py", tests, [caught, missed], echo=False,
                            journal=journal)  # fmt: skip
    assert len((tmp_path / "journal.jsonl").read_text().splitlines()) == 2

    def no_run(*args: Any, **kwargs: Any) -> int:
        raise AssertionError("a mutant ran although the journal knew its verdict")

    with monkeypatch.context() as patched:
        patched.setattr(mutate, "_spawn", no_run)
        patched.setattr(mutate, "run_tests", no_run)
        again = mutate.campaign(project, "tiny", "tiny.py", tests, [caught, missed], echo=False,
                                journal=mutate.Journal(tmp_path / "journal.jsonl"))  # fmt: skip
    assert (again.killed, again.survived) == (first.killed, first.survived) == (1, [missed.id])

    # a test for step() now: the journal's verdicts no longer stand, and the survivor dies
    (project / "tests" / "test_tiny.py").write_text(
        (project / "tests" / "test_tiny.py").read_text()
        + "\nfrom tiny import step\n\ndef test_step():\n    assert step(3.0, 1) == 5.0\n"
    )
    rerun = mutate.campaign(project, "tiny", "tiny.py", tests, [caught, missed], echo=False,
                            journal=mutate.Journal(tmp_path / "journal.jsonl"))  # fmt: skip
    assert (rerun.killed, rerun.survived) == (2, [])


def test_a_kept_kill_stands_while_its_killing_file_is_unchanged(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A test file added to the row for a survivor leaves the kills of the other files kept;
    editing the file that killed a mutant sends that mutant round again."""
    caught, missed = _one("14:minmax:min->max"), _one("18:arith:Mult->Div")
    row = ["tests/test_tiny.py", "tests/test_more.py"]
    (project / "tests" / "test_more.py").write_text("def test_nothing_yet():\n    pass\n")
    mutate.campaign(project, "tiny", "tiny.py", row, [caught, missed], echo=False,
                    journal=mutate.Journal(tmp_path / "journal.jsonl"))  # fmt: skip
    kept = [json.loads(line) for line in (tmp_path / "journal.jsonl").read_text().splitlines()]
    assert {e["mutant"]: e.get("killer") for e in kept} == {
        caught.id: "tests/test_tiny.py",
        missed.id: None,
    }

    (project / "tests" / "test_more.py").write_text(
        "from tiny import step\n\ndef test_step():\n    assert step(3.0, 1) == 5.0\n"
    )
    ran: list[str] = []
    spawn = mutate._spawn

    def counting(project_copy: Path, tests: Any, trace: Any = None) -> int:
        if trace is None:
            ran.append((project_copy / "tiny.py").read_text())
        return int(spawn(project_copy, tests, trace))

    monkeypatch.setattr(mutate, "_spawn", counting)
    again = mutate.campaign(project, "tiny", "tiny.py", row, [caught, missed], echo=False,
                            journal=mutate.Journal(tmp_path / "journal.jsonl"))  # fmt: skip
    assert (again.killed, again.survived) == (2, [])
    assert ran == [missed.apply(TINY)]  # only the survivor ran again

    (project / "tests" / "test_tiny.py").write_text(
        (project / "tests" / "test_tiny.py").read_text() + "\n# edited\n"
    )
    ran.clear()
    mutate.campaign(project, "tiny", "tiny.py", row, [caught, missed], echo=False,
                    journal=mutate.Journal(tmp_path / "journal.jsonl"))  # fmt: skip
    assert ran == [caught.apply(TINY)]  # its killer changed; the other's kill (test_more) stands
    assert (
        mutate.Journal(tmp_path / "journal.jsonl").verdict(
            caught, "no such basis", (project, "tiny.py", ["tests/test_more.py"])
        )
        is None
    )  # a killer no longer in the row keeps nothing


def test_a_mutant_that_hangs_is_killed_by_timeout(project: Path, monkeypatch) -> None:
    (project / "tests" / "test_tiny.py").write_text(
        "import threading\nfrom tiny import LIMIT\n\n"
        "def test_limit():\n"
        "    if LIMIT == 4:  # the mutant hangs: it blocks until the campaign's timeout\n"
        "        threading.Event().wait()\n"
    )
    monkeypatch.setattr(mutate, "_timeout", lambda baseline, patience=3.0: 2.0)
    tally = mutate.campaign(
        project, "tiny", "tiny.py", ["tests/test_tiny.py"], [_one("5:const:3->4")], echo=False
    )
    assert (tally.killed, tally.timeout, tally.survived) == (0, 1, [])


def test_a_kept_timeout_is_run_again_with_more_time_only_when_rechecked(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A journal reuses a timeout as it reuses any verdict; with ``recheck_timeouts`` it runs
    the mutant again, with RECHECK_PATIENCE times the baseline, and keeps the new verdict (a
    run that outran its time on a busy machine and passes given time is a survivor)."""
    slow = _one("5:const:3->4")
    (project / "tests" / "test_tiny.py").write_text("def test_nothing():\n    pass\n")
    tests = ["tests/test_tiny.py"]
    path = tmp_path / "journal.jsonl"
    basis = mutate.Journal.basis(project, "tiny.py", tests)
    mutate.Journal(path).record(slow, basis, "timeout")
    patience: list[float] = []

    def timeout(baseline: float, given: float = 3.0) -> float:
        patience.append(given)
        return 60.0

    monkeypatch.setattr(mutate, "_timeout", timeout)
    kept = mutate.campaign(project, "tiny", "tiny.py", tests, [slow], echo=False,
                           journal=mutate.Journal(path))  # fmt: skip
    assert (kept.timeout, kept.survived, patience) == (1, [], [])
    rechecked = mutate.campaign(project, "tiny", "tiny.py", tests, [slow], echo=False,
                                journal=mutate.Journal(path, recheck_timeouts=True),
                                patience=mutate.RECHECK_PATIENCE)  # fmt: skip
    assert (rechecked.timeout, rechecked.survived) == (0, [slow.id])
    assert patience == [mutate.RECHECK_PATIENCE]
    assert mutate.Journal(path).verdict(slow, basis) == "passed"


def test_an_equivalent_mutant_is_left_out_of_the_rate(project: Path, monkeypatch) -> None:
    missed = _one("18:arith:Mult->Div")
    monkeypatch.setitem(mutate.EQUIVALENT, missed.id, "step() is not tested")
    tally = mutate.campaign(
        project, "tiny", "tiny.py", ["tests/test_tiny.py"], [missed], echo=False
    )
    assert (tally.equivalent, tally.survived, tally.rate) == ([missed.id], [], 100.0)


def test_every_equivalent_names_a_mutant_that_exists_with_a_reason() -> None:
    ids: dict[str, set[str]] = {}  # each module's mutants, made once: 249 ids, ~40 modules
    for mutant_id, reason in mutate.EQUIVALENT.items():
        path = mutant_id.split(":")[0]
        if path not in ids:
            source = (SCRIPT.parents[1] / path).read_text()
            ids[path] = {m.id for m in mutate.mutants_of(source, path)}
        assert mutant_id in ids[path], mutant_id
        assert reason.strip()


def test_the_documented_equivalents_are_the_scripts_equivalents() -> None:
    """docs/mutation.md explains each equivalent mutant; after code moves, its ids must follow
    the script's, or a reader looks up a line that no longer holds the mutant."""
    text = (SCRIPT.parents[1] / "docs" / "mutation.md").read_text()
    section = text.partition("## Equivalent mutants")[2].partition("## Known limits")[0]
    documented = dict(re.findall(r"^\| `(retrysim/[^`]+)` \| (.+) \|$", section, re.MULTILINE))
    assert set(documented) == set(mutate.EQUIVALENT)
    for mutant_id, reason in documented.items():
        assert reason.strip() == mutate.EQUIVALENT[mutant_id].strip(), mutant_id


def test_every_module_of_the_sim_and_retry_packages_is_in_the_map() -> None:
    """A module added under retrysim/sim/ or retrysim/retry/ without tests to answer for it
    fails here: the map is how mutation testing reaches it."""
    root = SCRIPT.parents[1]
    mapped = {path for path, _ in mutate.MODULES.values()}
    for package in ("retrysim/sim", "retrysim/retry"):
        for source in sorted((root / package).glob("*.py")):
            assert source.relative_to(root).as_posix() in mapped, f"{source.name} of {package}"
    assert len(mapped) == len(mutate.MODULES)  # no module answered for twice


def test_every_core_module_and_test_file_in_the_map_exists() -> None:
    root = SCRIPT.parents[1]
    assert {"policy", "waits", "engine", "faults", "service", "metrics", "records"} <= set(
        mutate.MODULES
    )
    for path, tests in mutate.MODULES.values():
        assert (root / path).is_file(), path
        assert tests, path
        for test in tests:
            file, _, name = test.partition("::")
            assert (root / file).is_file(), test
            if name:  # a test named in its file: it must still be defined there
                assert f"def {name}(" in (root / file).read_text(), test


def _two_tests(project: Path) -> list[str]:
    (project / "tests" / "test_tiny.py").write_text(
        "from tiny import clamp, step\n\n"
        "def test_clamp():\n"
        "    assert clamp(-1) == 0\n"
        "    assert clamp(5) == 5\n\n"
        "def test_step():\n"
        "    assert step(3.0, 1) == 5.0\n"
    )
    return ["tests/test_tiny.py"]


def test_a_mutant_runs_only_the_tests_that_reach_its_statement(project: Path) -> None:
    """Coverage maps each test to the lines it runs: a mutant in step() runs test_step alone,
    one in clamp()'s defaults the tests that call clamp, and a module constant (run at import,
    before any test) every test."""
    tests = _two_tests(project)
    reach, verdict = mutate.Coverage.measure(project, "tiny.py", tests, timeout=120)
    assert verdict == "passed"
    assert set(reach.seconds) == {"tests/test_tiny.py::test_clamp", "tests/test_tiny.py::test_step"}
    in_step = _one("18:arith:Mult->Div")
    assert reach.tests_for(in_step, tests) == ["tests/test_tiny.py::test_step"]
    default = next(m for m in mutate.mutants_of(TINY, "tiny.py") if m.line == 8)
    assert reach.tests_for(default, tests) == ["tests/test_tiny.py::test_clamp"]
    constant = _one("5:const:3->4")
    assert sorted(reach.tests_for(constant, tests)) == sorted(reach.seconds)


def test_every_test_reaching_a_cached_function_is_selected_for_its_mutants(tmp_path: Path) -> None:
    """A ``functools.cache``d function runs its body for the first caller only; the caches are
    emptied before each measured test, so the second test that calls it is selected too."""
    root = tmp_path / "cached"
    (root / "tests").mkdir(parents=True)
    source = "import functools\n\n\n@functools.cache\ndef table():\n    return [1, 2, 3]\n"
    (root / "memo.py").write_text(source)
    (root / "tests" / "test_memo.py").write_text(
        "from memo import table\n\n"
        "def test_first():\n    assert table()[0] == 1\n\n"
        "def test_second():\n    assert table()[2] == 3\n"
    )
    tests = ["tests/test_memo.py"]
    reach, verdict = mutate.Coverage.measure(root, "memo.py", tests, timeout=120)
    assert verdict == "passed"
    body = next(m for m in mutate.mutants_of(source, "memo.py") if m.line == 6)
    assert sorted(reach.tests_for(body, tests)) == [
        "tests/test_memo.py::test_first",
        "tests/test_memo.py::test_second",
    ]


def test_selected_tests_give_the_verdicts_of_all_tests(project: Path) -> None:
    tests = _two_tests(project)
    # Every third mutant: each run is a pytest process, and a third holds kills and survivors
    # of both functions, which is what the law is about.
    mutants = mutate.mutants_of(TINY, "tiny.py")[::3]
    chosen = mutate.campaign(project, "tiny", "tiny.py", tests, mutants, echo=False)
    every = mutate.campaign(
        project, "tiny", "tiny.py", tests, mutants, echo=False, select_tests=False
    )
    assert chosen.verdicts == every.verdicts
    assert chosen.killed > 0 and chosen.survived


def test_without_a_map_every_mutant_runs_every_test() -> None:
    reach = mutate.Coverage(TINY, None)
    assert reach.tests_for(_one("18:arith:Mult->Div"), ["tests/test_tiny.py"]) == [
        "tests/test_tiny.py"
    ]
