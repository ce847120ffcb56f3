"""The notebooks run headless, top to bottom, against the installed package.

How long they take is a measurement, not a test (a timed assertion fails on a busy machine and
proves nothing about the code); a generous per-cell timeout only stops a hung kernel.

Each notebook is executed with nbclient on the ``python3`` kernel; the test asserts that no
cell failed, that the story's figures were drawn (image outputs), and that the notebook was
committed without outputs. A first check proves the kernel is this interpreter, so the
notebooks test the retrysim installed here and not some other one on the machine.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NAMES = ["01-thundering-herd.ipynb", "02-compare-policies.ipynb", "03-tune-env-settings.ipynb"]
CELL_TIMEOUT = 600  # seconds: a hung kernel, not a slow one


def _execute(nb: nbformat.NotebookNode, cwd: Path) -> nbformat.NotebookNode:
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(cwd)}},
    )
    return client.execute()


def _outputs(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]


def _text(nb: nbformat.NotebookNode) -> str:
    parts = []
    for out in _outputs(nb):
        if out.output_type == "stream":
            parts.append(out.text)
        elif "data" in out:
            parts.append(out.data.get("text/plain", ""))
    return "".join(parts)


def test_python3_kernel_is_this_interpreter(tmp_path: Path) -> None:
    code = "import sys, retrysim; print(sys.prefix); print(retrysim.__file__)"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    prefix, package = _text(_execute(nb, tmp_path)).split()
    assert Path(prefix).resolve() == Path(sys.prefix).resolve()
    import retrysim

    assert Path(package).resolve() == Path(retrysim.__file__).resolve()


class Executed:
    """One notebook as committed, and after running it."""

    def __init__(self, name: str, cwd: Path) -> None:
        self.committed = nbformat.read(NOTEBOOKS / name, as_version=4)
        self.nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        _execute(self.nb, cwd)  # raises CellExecutionError, naming the cell, if a cell fails
        self.left_behind = sorted(p.name for p in cwd.iterdir())


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Executed]:
    """Run each notebook at most once per test session, in its own empty folder."""
    cache: dict[str, Executed] = {}

    def run(name: str) -> Executed:
        if name not in cache:
            cache[name] = Executed(name, tmp_path_factory.mktemp(name.removesuffix(".ipynb")))
        return cache[name]

    return run


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_committed_clean(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    assert not _outputs(nb), f"{name} was committed with outputs; clear them"
    assert all(c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")
    assert len([c for c in nb.cells if c.cell_type == "markdown"]) >= 4, "a story needs prose"


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_and_draws(name: str, executed: Callable[[str], Executed]) -> None:
    run = executed(name)
    outputs = _outputs(run.nb)
    assert not [out for out in outputs if out.output_type == "error"]
    images = [out for out in outputs if "image/png" in out.get("data", {})]
    assert images, f"{name} drew no figure"
    assert run.left_behind == [], f"{name} wrote files into its working directory"


def test_herd_notebook_shows_the_synchronised_first_retry(
    executed: Callable[[str], Executed],
) -> None:
    text = _text(executed("01-thundering-herd.ipynb").nb)
    assert "distinct first waits among 10,000 sampled calls: [1.0]" in text


def test_tuning_notebook_ends_with_env_lines(executed: Callable[[str], Executed]) -> None:
    run = executed("03-tune-env-settings.ipynb")
    last = [c for c in run.nb.cells if c.cell_type == "code"][-1]
    printed = "".join(out.text for out in last.outputs if out.output_type == "stream")
    lines = printed.strip().splitlines()
    assert [line.split("=")[0] for line in lines] == [
        "RETRY__STORAGE_MAX_ATTEMPTS",
        "RETRY__STORAGE_MIN_WAIT",
        "RETRY__STORAGE_MAX_WAIT",
    ]
    from retrysim.retry import RetrySettings

    # raw strings, as from the environment: the settings model parses them
    values: dict[str, Any] = dict(line.removeprefix("RETRY__").lower().split("=") for line in lines)
    tuned = RetrySettings(**values)  # the printed lines are valid settings
    assert tuned.storage_max_attempts > RetrySettings.defaults().storage_max_attempts
    assert "targets met on fresh seeds: True" in _text(run.nb)
