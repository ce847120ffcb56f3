"""Make user-supplied text safe to print on a terminal.

Scenario names, descriptions, file names, keys and values come from the user. Printed raw, a
``[/x]`` in them is read as Rich markup (and crashes it), and an escape sequence
(``\\x1b]0;title\\x07``, ``\\x1b[2J``) retitles or clears the terminal. Everything the CLI prints
that the user supplied goes through :func:`visible` (plain ``print`` lines) or :func:`markup`
(strings Rich parses as markup). Dependency-free apart from Rich's own escape, imported late.
"""

from __future__ import annotations

import re

#: C0 controls except tab and newline, DEL, and the C1 controls (0x80-0x9f).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _show(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


def visible(text: object) -> str:
    """``text`` with every control character (but tab and newline) shown as ``\\x1b``-style
    escapes, so it can never drive the terminal."""
    return _CONTROL.sub(_show, str(text))


def markup(text: object) -> str:
    """``text`` made :func:`visible` and escaped, to embed in a string Rich reads as markup."""
    from rich.markup import escape

    return escape(visible(text))
