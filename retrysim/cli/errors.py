"""How the CLI reports bad input: one line on stderr, exit code 2, no traceback.

Commands are wrapped with :func:`reports_errors`: a :class:`UsageError`, ``ValueError`` or
``OSError`` from the command or the library becomes ``retrysim: error: <message>`` and exit 2.
``retrysim --debug`` lets the traceback through instead.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer

EXIT_THRESHOLD = 1
EXIT_BAD_INPUT = 2

P = ParamSpec("P")
R = TypeVar("R")

debug_mode = {"on": False}


class UsageError(Exception):
    """Bad input from the user: the message says what, where, and what is allowed."""


def fail(message: str) -> typer.Exit:
    """Print the one-line error and return the Exit to raise (exit code 2)."""
    print(f"retrysim: error: {message}", file=sys.stderr)
    return typer.Exit(EXIT_BAD_INPUT)


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn bad-input exceptions raised by ``command`` into a one-line error and exit 2."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except (UsageError, ValueError, OSError) as error:
            if debug_mode["on"]:
                raise
            raise fail(_one_line(error)) from None

    return wrapper


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    if isinstance(error, OSError) and error.filename is not None:
        text = f"{error.filename}: {error.strerror or text}"
    return " ".join(text.split()) or type(error).__name__
