"""Reading a scenario file: a regular file, small, shallow, UTF-8 TOML, then validated.

Loading never runs anything from the file. Each refusal is one :class:`ScenarioError` line
naming the file.
"""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path
from typing import Any

from retrysim.errors import BadInputError
from retrysim.model.scenario import Scenario, ScenarioError, parse_scenario

#: A scenario file is a few hundred bytes; anything past this is not one (and a file of millions
#: of keys would cost gigabytes to validate).
MAX_FILE_BYTES = 1 << 20
#: Tables nest four deep in a scenario ([[faults]] -> extra -> ...); more is not a scenario.
MAX_NESTING = 16


def load_scenario(path: str | Path) -> Scenario:
    """Load and validate a TOML scenario file.

    Only a regular file is read (a FIFO with no writer would block forever), at most
    ``MAX_FILE_BYTES`` of it, nested at most ``MAX_NESTING`` levels deep.
    """
    path = Path(path)
    raw = _read_scenario_bytes(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ScenarioError(
            f"{path}: not a text file (invalid UTF-8 at byte {error.start})"
        ) from None
    if not text.strip():
        raise ScenarioError(f"{path}: empty file; a scenario needs at least [clients] or [service]")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError(f"{path}: invalid TOML: {error}") from None
    except RecursionError:
        raise ScenarioError(
            f"{path}: nested more than {MAX_NESTING} levels deep; a scenario needs a few"
        ) from None
    if nesting_depth(data) > MAX_NESTING:
        raise ScenarioError(
            f"{path}: nested more than {MAX_NESTING} levels deep; a scenario needs a few"
        )
    return parse_scenario(data, str(path))


def _read_scenario_bytes(path: Path) -> bytes:
    return read_small_file(path, str(path), ScenarioError, "a scenario file is a few lines")


def read_small_file(
    path: Path, label: str, error: type[BadInputError], size_hint: str, limit: int = MAX_FILE_BYTES
) -> bytes:
    """The bytes of a user's small input file, or ``error`` in one line starting with
    ``label``: missing, unreadable, a folder, a pipe or device (reading one could block for
    ever), or over ``limit`` bytes (``size_hint`` says what a normal one is). Scenario files and
    ``retrysim check``'s configuration are read alike."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise error(f"{label}: no such file") from None
    except OSError as failure:
        raise error(f"{label}: cannot read: {failure.strerror or failure}") from None
    if stat.S_ISDIR(info.st_mode):
        raise error(f"{label}: is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{label}: not a regular file (a pipe, socket or device); give a file")
    try:
        with path.open("rb") as handle:
            raw = handle.read(limit + 1)
    except OSError as failure:
        raise error(f"{label}: cannot read: {failure.strerror or failure}") from None
    if len(raw) > limit:
        raise error(f"{label}: larger than {limit >> 10:,} KiB; {size_hint}")
    return raw


def nesting_depth(data: Any) -> int:
    """How deeply tables and arrays nest in parsed TOML (iteratively: no recursion limit).

    The walk stops at the first level past ``MAX_NESTING``: that is deep enough to refuse.
    """
    deepest = 0
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        if depth > MAX_NESTING:  # deep enough to refuse; no need to walk the rest
            return depth
        stack.extend((child, depth + 1) for child in children)
    return deepest
