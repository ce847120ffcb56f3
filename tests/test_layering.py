"""Architecture rules that keep retrysim fast to start and safe to embed.

- ``retrysim --help`` and ``retrysim scenarios`` import neither numpy, matplotlib nor
  pydantic_settings (checked in a fresh interpreter, where nothing is cached).
- ``retrysim.sim``, ``retrysim.retry`` and ``retrysim.chaos`` never import rich, typer or
  matplotlib, neither in their source nor (sim and retry) at run time.
- ``retrysim.__all__`` lists exactly the public names, and each resolves.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import TypedDict

import pytest

import retrysim

PACKAGE = Path(retrysim.__file__).resolve().parent
HEAVY = ("numpy", "matplotlib", "pydantic_settings", "prompt_toolkit", "tomlkit", "textual")
UI = ("rich", "typer", "matplotlib", "click", "textual")
#: The only modules that import Textual (retrysim lab's screen; the rest of the lab is plain).
TEXTUAL_MODULES = {"lab/app.py", "lab/widgets.py"}

PROBE = """
import json, sys
from typer.testing import CliRunner
from retrysim.cli.app import app
result = CliRunner().invoke(app, {args!r})
print(json.dumps({{"code": result.exit_code, "out": result.stdout,
                   "modules": sorted(m.split(".")[0] for m in sys.modules)}}))
"""


class Probe(TypedDict):
    """What ``PROBE`` prints."""

    code: int
    out: str
    modules: list[str]


def _probe(args: list[str]) -> Probe:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=args)],
        capture_output=True,
        text=True,
        check=True,
    )
    probe: Probe = json.loads(done.stdout.strip().splitlines()[-1])
    return probe


@pytest.mark.parametrize("args", [["--help"], ["scenarios"], ["run", "--help"]])
def test_light_commands_do_not_import_heavy_modules(args: list[str]) -> None:
    probe = _probe(args)
    assert probe["code"] == 0, probe["out"]
    loaded = set(probe["modules"])
    assert not loaded & set(HEAVY), f"{args} imported {sorted(loaded & set(HEAVY))}"


def test_scenarios_listing_names_every_bundled_scenario() -> None:
    probe = _probe(["scenarios"])
    for name in retrysim.bundled_scenarios():
        assert name in str(probe["out"])


def _imported_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("layer", ["sim", "retry", "chaos"])
def test_engine_and_retry_sources_never_import_ui(layer: str) -> None:
    files = sorted((PACKAGE / layer).glob("*.py"))
    assert files
    for path in files:
        bad = _imported_names(path) & set(UI)
        assert not bad, f"{path.name} imports {sorted(bad)}"


def test_only_the_labs_screen_imports_textual() -> None:
    importing = {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "textual" in _imported_names(path)
    }
    assert importing == TEXTUAL_MODULES


def test_running_a_simulation_loads_no_ui_module() -> None:
    code = (
        "import sys, retrysim\n"
        "from retrysim.retry import retry_worker_operation\n"
        "r = retrysim.simulate(retrysim.load_scenario('redis-blip').with_overrides("
        "{'clients.count': 20, 'duration': 5}))\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({UI!r})))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_public_api_all_is_exact_and_resolves() -> None:
    assert sorted(retrysim.__all__) == sorted(set(retrysim.__all__))
    for name in retrysim.__all__:
        assert getattr(retrysim, name) is not None
    public = {n for n in dir(retrysim) if not n.startswith(("_", "@"))}  # "@": see test_plots
    assert public <= set(retrysim.__all__)
    with pytest.raises(AttributeError):
        retrysim.no_such_name  # noqa: B018


def test_cli_metric_names_match_the_metrics_module() -> None:
    from retrysim.results.metric_table import METRIC_NAMES
    from retrysim.results.metrics import METRICS

    assert list(METRIC_NAMES) == list(METRICS)


def test_names_are_defined_once() -> None:
    """Settings, scenarios and the CLI take their names from retrysim.names."""
    from retrysim import names
    from retrysim.cli import common
    from retrysim.model import scenario
    from retrysim.retry import settings
    from retrysim.sim import failures

    assert settings.PROFILES is names.PROFILES and settings.OPERATIONS is names.OPERATIONS
    assert common.PROFILE_NAMES is names.PROFILES
    assert scenario.ERROR_NAMES is names.ERROR_NAMES
    assert tuple(failures.ERROR_CLASSES) == names.ERROR_NAMES


def test_no_module_exceeds_600_lines() -> None:
    """A module past 600 lines mixes concerns (plots.py was 985); split it by what it does."""
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert lines <= 600, f"{path.relative_to(PACKAGE)}: {lines} lines"
