"""A service can depend on the retry mechanism alone: ``pip install retrysim``.

The package's core dependencies are tenacity and pydantic-settings; the simulator, the CLI,
plots and the shell are the ``workbench`` extra. Checked three ways:

- statically: pyproject's core dependencies are exactly those two, and everything
  ``retrysim.retry`` can import (AST, imports inside functions included, following retrysim's
  own modules) is the standard library, those two (with pydantic and python-dotenv, which
  pydantic-settings brings), retrysim's base modules, or an optional client library imported
  only inside a function or a ``try``;
- for real: a virtual environment holding only that dependency closure (computed from the
  installed metadata, each distribution linked from this environment, no network) plus
  retrysim runs decorated sync and async functions configured by ``RETRY__*`` variables,
  cannot import numpy, Typer, Rich or matplotlib, answers the ``retrysim`` command (and
  ``python -m retrysim``) with one line and exit 2, and runs a pytest suite that uses the
  plugin's ``virtual_time`` fixture (pytest added to that environment);
- the entry point in this full environment: it runs the CLI, and names missing modules.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from retrysim.cli import entry
from retrysim.cli.exits import EXIT_BAD_INPUT

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "retrysim"
PYPROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

#: What a lean install may import (top-level names), besides the standard library.
CORE_IMPORTS = {"tenacity", "pydantic", "pydantic_settings"}
#: python-dotenv: imported by retrysim/retry/settings.py to read a .env file the way
#: pydantic-settings does; it is pydantic-settings' own dependency (checked below).
CORE_TRANSITIVE = {"dotenv": "python-dotenv"}
#: Client libraries retrysim.retry uses when present: imported only inside a function (or a
#: try, or for type checking), never at import time.
OPTIONAL_CLIENTS = {"prometheus_client", "opentelemetry"}
#: The root modules retrysim.retry may use (each standard library only).
RETRY_BASE = {"retrysim", "retrysim._lazy", "retrysim.names", "retrysim.errors", "retrysim.suggest"}
WORKBENCH_EXTRA = "retrysim[workbench]"
NOT_IN_A_LEAN_INSTALL = ("numpy", "typer", "rich", "matplotlib", "prompt_toolkit", "tomlkit")
MISSING_LINE = (
    "retrysim: error: the command line needs the workbench (missing: "
    + ", ".join(entry.WORKBENCH_MODULES)
    + "): pip install 'retrysim[workbench]'"
)


# --- pyproject --------------------------------------------------------------------------------


def _names(requirements: Iterable[str]) -> set[str]:
    return {canonicalize_name(Requirement(r).name) for r in requirements}


def test_core_dependencies_are_exactly_tenacity_and_pydantic_settings() -> None:
    assert _names(PYPROJECT["project"]["dependencies"]) == {"tenacity", "pydantic-settings"}


def test_the_workbench_extra_is_what_the_entry_point_checks() -> None:
    workbench = PYPROJECT["project"]["optional-dependencies"]["workbench"]
    assert _names(workbench) == {canonicalize_name(m) for m in entry.WORKBENCH_MODULES}


def test_extras_that_run_the_simulator_include_the_workbench() -> None:
    extras: dict[str, list[str]] = PYPROJECT["project"]["optional-dependencies"]
    for name in ("plots", "notebooks", "tune", "dask", "http", "lab", "bench", "dev"):
        assert WORKBENCH_EXTRA in extras[name], name
    # The Prometheus and OpenTelemetry exports belong to the retry mechanism: no workbench.
    assert WORKBENCH_EXTRA not in extras["prometheus"]
    assert WORKBENCH_EXTRA not in extras["otel"]
    # dev holds every other extra's tools (the notebooks' JupyterLab aside: nbclient runs them).
    others = ("prometheus", "otel", "tune", "dask", "http", "lab", "bench")
    assert {r for name in others for r in extras[name]} <= set(extras["dev"])


def test_the_console_script_is_the_checking_entry_point() -> None:
    assert PYPROJECT["project"]["scripts"] == {"retrysim": "retrysim.cli.entry:main"}
    installed = importlib.metadata.entry_points(group="console_scripts", name="retrysim")
    assert [ep.value for ep in installed] == ["retrysim.cli.entry:main"], (
        "the installed metadata is stale: pip install -e '.[dev]'"
    )


def test_pydantic_settings_brings_python_dotenv() -> None:
    required = importlib.metadata.requires("pydantic-settings") or []
    unconditional = [Requirement(r) for r in required if Requirement(r).marker is None]
    assert "python-dotenv" in {canonicalize_name(r.name) for r in unconditional}


# --- what retrysim.retry imports (AST) ---------------------------------------------------------


def _module_paths() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _module_paths()


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and ast.unparse(node.test) in {
        "TYPE_CHECKING",
        "typing.TYPE_CHECKING",
    }


def _imports(path: Path) -> Iterator[tuple[str, bool, bool]]:
    """(imported name, guarded, type-checking only) for every import in ``path``.

    Guarded: inside a function or a ``try`` (so it runs only when called or may fail).
    """

    def walk(node: ast.AST, guarded: bool, typing_only: bool) -> Iterator[tuple[str, bool, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield alias.name, guarded, typing_only
            elif isinstance(child, ast.ImportFrom):
                assert child.level == 0, f"{path}: relative import"
                assert child.module is not None
                yield child.module, guarded, typing_only
                for alias in child.names:
                    yield f"{child.module}.{alias.name}", guarded, typing_only
            inner = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Try)
            yield from walk(child, guarded or inner, typing_only or _is_type_checking(child))

    yield from walk(ast.parse(path.read_text(encoding="utf-8")), False, False)


def _owner(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _retry_closure() -> tuple[set[str], list[tuple[str, str, bool]]]:
    """retrysim modules ``retrysim.retry`` can load, and (module, third party, guarded) imports.

    Starts from every module in retrysim/retry/ (``retrysim.retry`` loads them by name, lazily)
    and each one's parent packages (importing a module runs them); type-checking imports never
    run, so they are not followed.
    """
    todo = [
        name for name in MODULES if name == "retrysim.retry" or name.startswith("retrysim.retry.")
    ]
    seen: set[str] = set()
    third_party: list[tuple[str, str, bool]] = []
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        parts = module.split(".")
        todo += [
            ".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) in MODULES
        ]
        for name, guarded, typing_only in _imports(MODULES[module]):
            top = name.split(".")[0]
            if top == "retrysim":
                found = _owner(name)
                if found is not None and not typing_only:
                    todo.append(found)
            elif top not in sys.stdlib_module_names and top != "__future__":
                third_party.append((module, top, guarded or typing_only))
    return seen, third_party


def test_retry_uses_only_its_own_modules_and_the_light_base_modules() -> None:
    loaded, _ = _retry_closure()
    outside = {m for m in loaded if not m.startswith("retrysim.retry")} - RETRY_BASE
    assert outside == set()


def test_retry_lazy_exports_stay_inside_retry() -> None:
    import retrysim.retry

    targets = set(retrysim.retry._EXPORTS.values())
    assert targets and all(t.startswith("retrysim.retry.") for t in targets)
    assert targets <= set(MODULES)


def test_retry_imports_only_core_packages_and_optional_clients_lazily() -> None:
    _, third_party = _retry_closure()
    found = {top for _, top, _ in third_party}
    assert found <= CORE_IMPORTS | set(CORE_TRANSITIVE) | OPTIONAL_CLIENTS
    assert found >= CORE_IMPORTS  # the scan sees the imports it should
    eager_optional = [
        (m, top) for m, top, guarded in third_party if top in OPTIONAL_CLIENTS and not guarded
    ]
    assert eager_optional == []


def test_the_import_scan_sees_guarded_and_eager_imports(tmp_path: Path) -> None:
    source = tmp_path / "sample.py"
    source.write_text(
        "import tenacity\n"
        "try:\n    import redis\nexcept ImportError:\n    redis = None\n"
        "def f():\n    from httpx import Client\n"
        "if TYPE_CHECKING:\n    import numpy\n",
        encoding="utf-8",
    )
    seen = {(name, guarded, typing_only) for name, guarded, typing_only in _imports(source)}
    assert ("tenacity", False, False) in seen
    assert ("redis", True, False) in seen
    assert ("httpx", True, False) in seen
    assert ("numpy", False, True) in seen


# --- the entry point, in this (full) environment ----------------------------------------------


def test_the_entry_point_runs_the_cli_when_the_workbench_is_installed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import retrysim

    monkeypatch.setattr(sys, "argv", ["retrysim", "--version"])
    with pytest.raises(SystemExit) as exit_:
        entry.main()
    assert exit_.value.code == 0
    assert retrysim.__version__ in capsys.readouterr().out


def test_the_entry_point_names_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(entry, "WORKBENCH_MODULES", ("typer", "no_such_module_for_this_test"))
    monkeypatch.setattr(sys, "argv", ["retrysim", "--version"])
    with pytest.raises(SystemExit) as exit_:
        entry.main()
    assert exit_.value.code == EXIT_BAD_INPUT == entry.EXIT_MISSING_WORKBENCH
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "retrysim: error: the command line needs the workbench (missing: "
        "no_such_module_for_this_test): pip install 'retrysim[workbench]'\n"
    )


# --- a real lean environment --------------------------------------------------------------------


def _closure(requirements: Iterable[str]) -> dict[str, importlib.metadata.Distribution]:
    """Every installed distribution ``requirements`` pull in (markers evaluated, extras too)."""
    found: dict[str, importlib.metadata.Distribution] = {}
    todo: list[tuple[str, str]] = [(r, "") for r in requirements]
    done: set[tuple[str, str]] = set()
    while todo:
        text, extra = todo.pop()
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        for wanted in ("", *sorted(requirement.extras)):
            if (name, wanted) in done:
                continue
            done.add((name, wanted))
            dist = found.setdefault(name, importlib.metadata.distribution(requirement.name))
            todo += [(r, wanted) for r in dist.requires or []]
    return found


def _link_distributions(dists: Iterable[importlib.metadata.Distribution], into: Path) -> None:
    """Symlink each distribution's top-level packages, modules and .dist-info into ``into``."""
    into.mkdir(parents=True, exist_ok=True)
    for dist in dists:
        assert dist.files is not None, f"{dist.metadata['Name']} has no RECORD"
        tops = {f.parts[0] for f in dist.files if f.parts}
        for top in sorted(tops):
            if top in {"..", "__pycache__"} or top.endswith(".pth"):
                continue
            target = Path(str(dist.locate_file(top)))
            link = into / top
            if target.exists() and not link.exists():
                link.symlink_to(target)


def _core_requirements() -> list[str]:
    """The installed retrysim's requirements outside any extra: what ``pip install`` adds."""
    required = importlib.metadata.requires("retrysim") or []
    return [r for r in required if Requirement(r).marker is None]


class Lean:
    """A virtual environment with only retrysim and its core dependencies."""

    def __init__(self, root: Path) -> None:
        self.cwd = root / "work"  # no .env here: only the RETRY__* variables a test passes
        self.cwd.mkdir()
        subprocess.run(
            [sys.executable, "-m", "venv", "--without-pip", str(root / "venv")], check=True
        )
        self.python = str(root / "venv" / "bin" / "python")
        site = self.run("import sysconfig; print(sysconfig.get_path('purelib'))").stdout.strip()
        self.site = Path(site)
        self.dists = _closure(_core_requirements())
        _link_distributions(self.dists.values(), self.site)
        (self.site / "retrysim").symlink_to(PACKAGE)
        # retrysim's own metadata as installed here (entry points, requirements), no RECORD.
        installed = importlib.metadata.distribution("retrysim")
        info = self.site / f"retrysim-{installed.version}.dist-info"
        info.mkdir()
        for name in ("METADATA", "entry_points.txt"):
            text = installed.read_text(name)
            if text is None and name == "METADATA":  # a checkout's setuptools egg-info
                text = installed.read_text("PKG-INFO")
            assert text is not None, name
            (info / name).write_text(text, encoding="utf-8")

    def run(
        self, code: str, *args: str, env: dict[str, str] | None = None, module: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """``code`` (or ``-m code``) in the lean interpreter: isolated, no bytecode written."""
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "RETRY__"))}
        command = [self.python, "-I", "-B", *(["-m", code] if module else ["-c", code]), *args]
        return subprocess.run(
            command,
            check=False,
            capture_output=True,
            text=True,
            cwd=self.cwd,
            env={**clean, **(env or {})},
            timeout=120,
        )


@pytest.fixture(scope="module")
def lean(tmp_path_factory: pytest.TempPathFactory) -> Lean:
    return Lean(tmp_path_factory.mktemp("lean"))


RETRY_PROBE = """
import asyncio, importlib.util, json, sys
from retrysim.retry import retry_metrics, retry_worker_operation

slept = []
calls = {"sync": 0, "async": 0, "down": 0}

@retry_worker_operation(sleep=slept.append)
def fetch():
    calls["sync"] += 1
    if calls["sync"] < 3:
        raise ConnectionError("redis down")
    return "sync ok"

async def record(delay):
    slept.append(delay)

@retry_worker_operation(sleep=record)
async def load():
    calls["async"] += 1
    if calls["async"] < 3:
        raise ConnectionError("redis down")
    return "async ok"

@retry_worker_operation(sleep=slept.append)
def always_down():
    calls["down"] += 1
    raise ConnectionError("still down")

results = [fetch(), asyncio.run(load())]
try:
    always_down()
except ConnectionError as error:
    results.append(f"gave up: {error}")
heavy = ("numpy", "typer", "rich", "matplotlib", "prompt_toolkit", "tomlkit")
print(json.dumps({
    "results": results,
    "calls": calls,
    "slept": slept,
    "counters": {
        name: [c.kind, c.attempts, c.retries, c.exhausted] for name, c in retry_metrics().items()
    },
    "importable": [m for m in heavy if importlib.util.find_spec(m) is not None],
    "loaded": sorted({m.split(".")[0] for m in sys.modules} & set(heavy)),
}))
"""


def test_the_retry_mechanism_works_with_only_its_core_dependencies(lean: Lean) -> None:
    assert set(lean.dists) >= {"tenacity", "pydantic-settings", "pydantic", "python-dotenv"}
    assert not set(lean.dists) & {canonicalize_name(m) for m in NOT_IN_A_LEAN_INSTALL}
    settings = {
        "RETRY__WORKER_MAX_ATTEMPTS": "4",
        "RETRY__WORKER_MIN_WAIT": "0.25",
        "RETRY__WORKER_MAX_WAIT": "1",
        "RETRY__PROFILE": "exponential",
    }
    done = lean.run(RETRY_PROBE, env=settings)
    assert done.returncode == 0, done.stderr
    probe = json.loads(done.stdout)
    assert probe["results"] == ["sync ok", "async ok", "gave up: still down"]
    # RETRY__WORKER_MAX_ATTEMPTS=4 stops the always-failing call; the waits are the settings'
    # exponential ones (0.25 s doubling, capped at 1 s), recorded by the injected sleeps.
    assert probe["calls"] == {"sync": 3, "async": 3, "down": 4}
    assert probe["slept"] == [0.25, 0.5, 0.25, 0.5, 0.25, 0.5, 1.0]
    assert probe["counters"] == {
        "__main__.fetch": ["worker", 3, 2, 0],
        "__main__.load": ["worker", 3, 2, 0],
        "__main__.always_down": ["worker", 4, 3, 1],
    }
    assert probe["importable"] == []
    assert probe["loaded"] == []


def test_the_retrysim_command_says_it_needs_the_workbench(lean: Lean) -> None:
    script = (
        "import sys\n"
        "from importlib.metadata import entry_points\n"
        "(command,) = entry_points(group='console_scripts', name='retrysim')\n"
        "sys.argv = ['retrysim', 'run', 'thundering-herd']\n"
        "sys.exit(command.load()())\n"
    )
    for done in (lean.run(script), lean.run("retrysim", "run", "thundering-herd", module=True)):
        assert (done.returncode, done.stdout) == (2, "")
        assert done.stderr.splitlines() == [MISSING_LINE]


PLUGIN_SUITE = """
import sys

import pytest

from retrysim.retry import retry_worker_operation


RETRY = retry_worker_operation(max_attempts=3, min_wait=30, max_wait=120, profile="exponential")


def flaky_then_ok():
    calls = []

    def operation():
        calls.append(None)
        if len(calls) < 3:
            raise ConnectionError("down")
        return len(calls)

    return operation


@pytest.mark.retrysim(seed=1)
def test_sync_waits_are_virtual(virtual_time):
    operation = RETRY(flaky_then_ok())
    assert operation() == 3
    assert virtual_time.sleeps == [30.0, 60.0]


async def test_async_waits_are_virtual(virtual_time):
    flaky = flaky_then_ok()

    @RETRY
    async def operation():
        return flaky()

    assert await operation() == 3
    assert virtual_time.sleeps == [30.0, 60.0]


def test_nothing_heavy_was_imported():
    heavy = {"numpy", "typer", "rich", "matplotlib", "prompt_toolkit", "tomlkit"}
    assert not {m.split(".")[0] for m in sys.modules} & heavy
"""


def test_pytest_with_the_plugin_runs_in_a_lean_install(lean: Lean, tmp_path: Path) -> None:
    """pytest loads retrysim's plugin through the entry point; its fixtures work lean."""
    extra = tmp_path / "pytest-site"
    _link_distributions([d for n, d in _closure(["pytest"]).items() if n not in lean.dists], extra)
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (suite / "test_lean.py").write_text(PLUGIN_SUITE, encoding="utf-8")
    code = (
        f"import sys; sys.path.append({str(extra)!r}); import pytest; "
        f"sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', {str(suite)!r}]))"
    )
    done = lean.run(code)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout
