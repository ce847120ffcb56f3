"""A fit as a scenario file: valid TOML, every fitted value with a comment saying where it came
from and how good the fit is, every default with the reason, and a header saying what wrote
it from which inputs.

The text is a pure function of the fit and the command line handed in: no clock, no host, no
path other than the inputs', so the same inputs and options give the same bytes. Values are
rendered by tomlkit (quoting, escapes); the layout is the writer's own: a table's own values,
then its sub-tables, a fitted table's comment above its header.
"""

from __future__ import annotations

import textwrap
import tomllib
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tomlkit

from retrysim.fit.result import FitResult, Fitted
from retrysim.model.scenario import Scenario, parse_scenario
from retrysim.safe import visible

#: Comment lines are wrapped to fit this many characters.
WIDTH = 99
#: Numbers a line of a long array holds (an empirical latency's quantiles).
PER_LINE = 6


def scenario_text(result: FitResult, command: str = "retrysim fit") -> str:
    """The scenario file for ``result``; ``command`` is the command line that wrote it."""
    values = {item.key: item for item in result.values}
    out = _header(result, command)
    _table(out, "", result.scenario, values, None)
    return "\n".join(out).rstrip() + "\n"


def validate(text: str, source: str = "<fitted scenario>") -> Scenario:
    """The written text loaded as the project loads any scenario (a ScenarioError if not)."""
    return parse_scenario(tomllib.loads(text), source)


def _comment(lines: list[str], out: list[str], indent: str = "") -> None:
    for line in lines:
        wrapped = textwrap.wrap(
            visible(line),
            width=WIDTH - len(indent) - 2,
            break_long_words=False,
            break_on_hyphens=False,
            subsequent_indent="  ",
        )
        out += [f"{indent}# {part}" for part in wrapped or [""]]


def _header(result: FitResult, command: str) -> list[str]:
    out: list[str] = []
    lines = [
        "A scenario fitted by retrysim fit from the inputs below. Each fitted value says where "
        "it came from and how well it fits; each default says why it is one.",
        f"Written by: {command}",
    ]
    for source in result.sources:
        digest = f", sha256 {source.sha256[:16]}" if source.sha256 else ""
        lines.append(f"Input: {source.describe()}, read as {source.format}{digest}")
    lines.append(
        "Same inputs and options, same bytes: nothing here depends on when or where it ran."
    )
    if result.origin:
        moment = datetime.fromtimestamp(result.origin, UTC).isoformat().replace("+00:00", "Z")
        lines.append(
            f"Time 0 is {moment} (epoch {result.origin:.0f} s), the data's first whole second."
        )
    else:
        lines.append("Time 0 is the data's own 0 (a run's clock).")
    lines += [f"Note: {note}" for note in result.notes]
    lines += [f"Default: {line}" for line in result.missing]
    _comment(lines, out)
    out.append("")
    return out


def _render(value: Any) -> str:
    if (
        isinstance(value, list)
        and len(value) > PER_LINE
        and not any(isinstance(v, Mapping | list) for v in value)
    ):
        rows = [value[i : i + PER_LINE] for i in range(0, len(value), PER_LINE)]
        body = [("    " + ", ".join(_render(v) for v in row) + ",") for row in rows]
        return "[\n" + "\n".join(body) + "\n]"
    return str(tomlkit.item(value).as_string())


def _is_tables(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _table(
    out: list[str],
    prefix: str,
    data: Mapping[str, Any],
    values: Mapping[str, Fitted],
    header: str | None,
) -> None:
    """A table's own values (each with its comment), its unset defaults as comments, then
    its sub-tables and arrays of tables."""
    only_tables = bool(data) and all(isinstance(v, Mapping) or _is_tables(v) for v in data.values())
    if header is not None and (prefix in values or not only_tables):
        if prefix in values:
            _comment(values[prefix].comment_lines(), out)
        out.append(header)
    for key, value in data.items():
        full = f"{prefix}.{key}" if prefix else key
        if value is None or isinstance(value, Mapping) or _is_tables(value):
            continue
        if full in values:
            _comment(values[full].comment_lines(), out)
        out.append(f"{key} = {_render(value)}")
    for full, item in values.items():
        parent, _, leaf = full.rpartition(".")
        if parent == prefix and item.value is None and leaf not in data:
            _comment([f"{leaf} not set; {item.comment_lines()[0]}"], out)
    for key, value in data.items():
        full = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping):
            out.append("")
            _table(out, full, value, values, f"[{full}]")
        elif _is_tables(value):
            for index, item in enumerate(value):
                out.append("")
                _table(out, f"{full}.{index}", item, values, f"[[{full}]]")


def write_scenario(result: FitResult, target: str | Path, command: str = "retrysim fit") -> str:
    """Write the scenario file atomically (:mod:`retrysim.output`) and return its text."""
    from retrysim import output

    text = scenario_text(result, command)
    output.write_text(target, text)
    return text
