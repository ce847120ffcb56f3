"""One answer everywhere, and no run made twice.

The default search needs no extra, so whether Optuna is installed changes nothing (it is not even
imported); Optuna runs only when asked, refused in one line without it. A tuning makes each
(scenario, settings, seed) run once, and a second tuning under the same ``--out`` none at all.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from retrysim.runs import executors
from retrysim.runs.sweep import task_key
from retrysim.runs.tune import Dimension, Objective, Tuning, tune
from retrysim.runs.tune_search import strategy
from tests.test_tune import independent

SPACE = [
    Dimension("policy.max_attempts", 2, 6, integer=True),
    Dimension("policy.max_wait", 0.001, 0.01),  # continuous: the search is not a grid
]

_SCRIPT = """
import json, sys
if sys.argv[1] == "blocked":
    sys.modules["optuna"] = None  # importing it now raises ImportError, as if not installed
from retrysim.render.tune_report import document
from retrysim.runs.tune import Dimension, Objective, Tuning, tune
from tests.test_tune import independent

scenario = independent()
scenario = scenario.model_copy(
    update={"clients": scenario.clients.model_copy(update={"count": 200})}
)
tuning = Tuning(
    [Dimension("policy.max_attempts", 2, 6, integer=True),
     Dimension("policy.max_wait", 0.001, 0.01)],
    Objective.of("success_rate"), seeds=1, budget=6,
)
doc = document(tune([scenario], tuning))
print(json.dumps({"doc": doc, "optuna": sys.modules.get("optuna") is not None}, default=str))
"""


def _tuned(mode: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, mode],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parent.parent,
    )
    return dict(json.loads(done.stdout))


def test_the_default_search_never_imports_optuna_and_answers_the_same_without_it() -> None:
    assert strategy(Tuning(SPACE, Objective.of("success_rate"))) == "random"
    installed, blocked = _tuned("installed"), _tuned("blocked")
    assert installed["optuna"] is False  # not loaded, even where it is installed
    assert installed["doc"] == blocked["doc"]
    assert installed["doc"]["groups"][0]["search"] == "random"
    assert installed["doc"]["env"]  # a recommendation, the same either way


def test_asking_for_optuna_without_it_is_one_line_naming_the_extra(tmp_path: Path) -> None:
    script = (
        "import sys; sys.modules['optuna'] = None\n"
        "from retrysim.cli.app import app\n"
        "app(prog_name='retrysim')\n"
    )
    scenario = tmp_path / "s.toml"
    scenario.write_text(
        'name = "s"\nduration = 5\n[clients]\ncount = 10\n[service]\nkind = "ideal"\n',
        encoding="utf-8",
    )
    args = ["tune", str(scenario), "--search", "policy.max_wait=1..5.5", "-q"]
    done = subprocess.run(
        [sys.executable, "-c", script, *args, "--strategy", "optuna"],
        check=False,
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    assert done.returncode == 2, done.stderr
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and "retrysim[tune]" in lines[0], lines


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    made: list[str] = []
    real = executors.run_task

    def counting(task: executors.Task) -> Any:
        made.append(task_key(task.scenario, task.sets, task.seed, task.settings, task.policy))
        return real(task)

    monkeypatch.setattr(executors, "run_task", counting)
    return made


def test_no_run_is_made_twice_and_a_second_tuning_under_the_same_folder_makes_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = independent()
    scenario = scenario.model_copy(
        update={"clients": scenario.clients.model_copy(update={"count": 300})}
    )
    tuning = Tuning(
        [Dimension("policy.max_attempts", 2, 5, integer=True)],
        Objective.of("success_rate"),
        seeds=3,
    )
    made = _counting(monkeypatch)
    (group,) = tune([scenario], tuning, checkpoint=tmp_path / "runs").groups
    assert made and len(made) == len(set(made))  # the current settings are a grid point too
    assert len(made) == sum(c.seeds() for c in group.candidates)
    assert any(c.dropped for c in group.candidates)  # racing stopped some before every seed
    first = [(c.label, c.seeds()) for c in group.candidates]
    made.clear()
    (again,) = tune([scenario], tuning, checkpoint=tmp_path / "runs").groups
    assert made == []
    assert [(c.label, c.seeds()) for c in again.candidates] == first
    assert again.best is not None and group.best is not None
    assert again.best.label == group.best.label
