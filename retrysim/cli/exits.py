"""How the CLI reports errors: bad input is the user's to fix, anything else is our bug.

Commands are wrapped with :func:`reports_errors`. Bad input (a
:class:`~retrysim.errors.BadInputError`, which :class:`UsageError`, ``ScenarioError``,
``SettingsError`` and ``ScenarioTooLargeError`` are, or an ``OSError`` on a path the user gave)
becomes ``retrysim: error: <message>`` and exit 2. Any other exception is a bug in retrysim:
one line saying so, what it was, and how to report it, and exit 1; dressing it up as bad input
would send the user hunting for a mistake they did not make. ``retrysim --debug`` lets the
traceback through instead.
"""

from __future__ import annotations

import errno
import functools
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import typer

from retrysim.errors import BadInputError
from retrysim.safe import visible

EXIT_THRESHOLD = 1
EXIT_BUG = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C

P = ParamSpec("P")
R = TypeVar("R")

debug_mode = {"on": False}
#: Set once a command has printed its own ``retrysim: interrupted ...`` line (see
#: :func:`interrupted`), so the entry point does not print a second, plainer one.
interrupt_reported = {"on": False}

#: OSErrors about the machine rather than retrysim: a full disk, a closed pipe (``| head``).
ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EPIPE})


class UsageError(BadInputError):
    """Bad input from the user: the message says what, where, and what is allowed."""


def fail(message: str) -> typer.Exit:
    """Print the one-line error and return the Exit to raise (exit code 2)."""
    print(f"retrysim: error: {visible(message)}", file=sys.stderr)
    return typer.Exit(EXIT_BAD_INPUT)


def warn(message: str) -> None:
    """Print one ``retrysim: warning: ...`` line on stderr; the command goes on."""
    print(f"retrysim: warning: {visible(message)}", file=sys.stderr)


def interrupted(detail: str) -> typer.Exit:
    """Print ``retrysim: interrupted <detail>`` (what was kept, how to go on) on stderr and
    return the Exit to raise (code 130, as a shell reports a Ctrl-C)."""
    print(f"retrysim: interrupted {visible(detail)}", file=sys.stderr)
    interrupt_reported["on"] = True
    return typer.Exit(EXIT_INTERRUPTED)


def bug(error: BaseException) -> typer.Exit:
    """Print the one line that says ``error`` is a bug in retrysim; return the Exit (code 1)."""
    print(
        f"retrysim: internal error: {type(error).__name__}: {visible(one_line(error))} -- this "
        "is a bug in retrysim, not in your input; please report it with the command you ran "
        "(retrysim --debug COMMAND shows the traceback)",
        file=sys.stderr,
    )
    return typer.Exit(EXIT_BUG)


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Report what ``command`` raises in one line: bad input exits 2, a bug exits 1."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except _CLICK_EXCEPTIONS:
            raise  # typer.Exit and friends: the command's own way out
        except Exception as error:
            if debug_mode["on"]:
                raise
            if is_bad_input(error, _paths_in([*args, *kwargs.values()])):
                raise fail(one_line(error)) from None
            raise bug(error) from None

    return wrapper


def is_bad_input(error: BaseException, user_paths: Iterable[Path] = ()) -> bool:
    """Whether ``error`` is the user's to fix rather than a bug in retrysim.

    An ``OSError`` counts when it names one of ``user_paths`` (a file or folder the user gave,
    something inside that folder, or a parent folder it needs), or when it is about the
    machine (disk full, quota, a closed pipe).
    """
    if isinstance(error, BadInputError):
        return True
    if not isinstance(error, OSError):
        return False
    if error.errno in ENVIRONMENT_ERRNOS:
        return True
    named = [_absolute(name) for name in (error.filename, error.filename2) if name is not None]
    for path in map(_absolute, user_paths):
        for name in named:
            if name == path or path in name.parents or name in path.parents:
                return True
    return False


def _paths_in(values: Iterable[Any]) -> list[Path]:
    """The paths among a command's arguments (a ``list[Path]`` argument included)."""
    paths: list[Path] = []
    for value in values:
        if isinstance(value, Path):
            paths.append(value)
        elif isinstance(value, list | tuple):
            paths.extend(item for item in value if isinstance(item, Path))
    return paths


def _absolute(name: Any) -> Path:
    return Path(os.path.abspath(os.fsdecode(name)))


def one_line(error: BaseException) -> str:
    text = str(error).strip()
    if isinstance(error, OSError) and error.filename is not None:
        text = f"{error.filename}: {error.strerror or text}"
    return " ".join(text.split()) or type(error).__name__


def _click_exceptions() -> tuple[type[BaseException], ...]:
    """typer.Exit, typer.Abort and Click's ClickException (found through Typer's BadParameter,
    since recent Typer releases vendor Click)."""
    click_exception = next(
        cls for cls in typer.BadParameter.__mro__ if cls.__name__ == "ClickException"
    )
    return (typer.Exit, typer.Abort, click_exception)


_CLICK_EXCEPTIONS = _click_exceptions()
