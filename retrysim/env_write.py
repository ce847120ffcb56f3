"""Writing ``RETRY__*`` lines into a ``.env`` file: merged in place, atomically.

``retrysim tune --write-env`` (and later anything that recommends settings) must not cost the
user a line of what they had: every other variable, every comment and blank line stays where
it was; a variable the file sets already gets its new value on the same line (each of its
lines, so no stale duplicate is left to mislead); new ones are appended under one comment
saying where they came from. The file is replaced atomically, so a crash or Ctrl-C leaves the
old file or the new one, never half of one.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from retrysim import output
from retrysim.errors import BadInputError

_ASSIGNMENT = re.compile(r"^(\s*(?:export\s+)?)([A-Za-z_][A-Za-z0-9_]*)(\s*=)")


class EnvFileError(BadInputError):
    """The .env file cannot be read as text, or is not a file."""


def env_value(value: Any) -> str:
    """A setting's value as a ``.env`` line writes it: ``true``/``false``, floats in ``%.6g``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def merge_env(path: Path, values: dict[str, str], note: str = "") -> list[str]:
    """Set each ``NAME=value`` in the file at ``path`` (created if missing); return what changed.

    The returned lines say, per variable, ``NAME: old -> new`` or ``NAME: added``.
    """
    text = _read(path)
    lines = text.splitlines()
    seen: dict[str, str] = {}
    for index, line in enumerate(lines):
        match = _ASSIGNMENT.match(line)
        if match is None or match.group(2) not in values:
            continue
        name = match.group(2)
        seen.setdefault(name, line[match.end() :].strip())
        lines[index] = f"{match.group(1)}{name}={values[name]}"
    added = [name for name in values if name not in seen]
    if added:
        if lines and lines[-1].strip():
            lines.append("")
        if note:
            lines.append(f"# {note}")
        lines.extend(f"{name}={values[name]}" for name in added)
    output.write_text(path, "\n".join(lines) + "\n")
    changes = [f"{name}: {seen[name]} -> {values[name]}" for name in values if name in seen]
    return changes + [f"{name}: added ({values[name]})" for name in added]


def _read(path: Path) -> str:
    if not path.exists():
        return ""
    if not path.is_file():
        raise EnvFileError(f"--write-env {path}: not a regular file")
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise EnvFileError(
            f"--write-env {path}: not UTF-8 text (byte {error.start}, line {line}); "
            "nothing was written"
        ) from None
