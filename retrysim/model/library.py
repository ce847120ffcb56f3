"""Bundled scenarios, and loading a scenario by bundled name or by path."""

from __future__ import annotations

import tomllib
from pathlib import Path

from retrysim.model.files import load_scenario as load_scenario_file
from retrysim.model.scenario import Scenario, ScenarioError
from retrysim.suggest import closest


def scenarios_dir() -> Path:
    """Where the bundled scenarios live: inside the installed package, or the source tree."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "_scenarios", package.parent / "scenarios"):
        if candidate.is_dir():
            return candidate
    raise ScenarioError("bundled scenarios not found (is retrysim installed correctly?)")


def bundled_scenarios() -> dict[str, Path]:
    """Bundled scenario names and their files, sorted by name."""
    return {path.stem: path for path in sorted(scenarios_dir().glob("*.toml"))}


def describe_bundled() -> list[tuple[str, str]]:
    """(name, description) of each bundled scenario, read without validating."""
    rows = []
    for name, path in bundled_scenarios().items():
        with path.open("rb") as handle:
            rows.append((name, str(tomllib.load(handle).get("description", ""))))
    return rows


def resolve(name_or_path: str | Path) -> Path:
    """A bundled name (``thundering-herd``) or a path to a TOML file."""
    text = str(name_or_path)
    path = Path(text)
    if path.suffix == ".toml" or path.exists() or "/" in text or "\\" in text:
        return path
    bundled = bundled_scenarios()
    if text in bundled:
        return bundled[text]
    close = closest(text, bundled)
    hint = f"; did you mean {close!r}?" if close else ""
    raise ScenarioError(
        f"{text}: no such scenario file or bundled scenario{hint} (bundled: {', '.join(bundled)})"
    )


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a bundled scenario by name, or a TOML scenario file by path."""
    return load_scenario_file(resolve(name_or_path))
