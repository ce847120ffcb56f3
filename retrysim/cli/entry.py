"""The ``retrysim`` console script and ``python -m retrysim``: the workbench checked first.

``pip install retrysim`` installs only the retry mechanism (tenacity, pydantic-settings); the
command line needs the ``workbench`` extra (Typer, Rich, numpy, matplotlib, prompt_toolkit,
tomlkit). This module imports nothing but the standard library, so in a lean install the
command says what to install in one line and exits 2, where importing the CLI would end in
an ImportError traceback (or, for numpy, fail later inside a command).
"""

from __future__ import annotations

import importlib.util
import sys

#: The import names of the ``workbench`` extra's distributions (tests/test_lean_library.py
#: checks they match pyproject.toml).
WORKBENCH_MODULES = (
    "typer",
    "rich",
    "numpy",
    "matplotlib",
    "prompt_toolkit",
    "tomlkit",
    "jinja2",
)
#: Bad input or setup: the same code the CLI gives every "your input is wrong" error.
EXIT_MISSING_WORKBENCH = 2


def missing_workbench() -> list[str]:
    """The workbench's modules this environment cannot import (found, never imported)."""
    return [name for name in WORKBENCH_MODULES if importlib.util.find_spec(name) is None]


def main() -> None:
    """Run the CLI, or say in one line that it needs ``retrysim[workbench]`` (exit 2)."""
    missing = missing_workbench()
    if missing:
        print(
            f"retrysim: error: the command line needs the workbench (missing: "
            f"{', '.join(missing)}): pip install 'retrysim[workbench]'",
            file=sys.stderr,
        )
        sys.exit(EXIT_MISSING_WORKBENCH)
    from retrysim.cli.app import main as run_cli

    run_cli()
