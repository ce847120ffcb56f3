"""How the CLI ends: an exit code that says whose fault it was, and one line saying what.

Commands are wrapped with :func:`reports_errors`. Bad input (a
:class:`~retrysim.errors.BadInputError`, which :class:`UsageError`, ``ScenarioError``,
``SettingsError``, ``ScenarioTooLargeError`` and an error raised by the user's own ``--policy``
code are, or an ``OSError`` on a path the user gave) becomes ``retrysim: error: <message>`` and
exit 2. A worker process that died under a run (killed by the system, out of memory) is
neither the user's input nor retrysim's bug: exit 3, with how to go on from what was saved.
Any other exception is a bug in retrysim: one line saying so, what it was, and how to report
it, and exit 1; dressing it up as bad input would send the user hunting for a mistake they did
not make. ``retrysim --debug`` lets the traceback through instead.

Signals: Ctrl-C exits 130; SIGTERM (143) and SIGHUP (129) are delivered, while a command runs
under :func:`stop_on_signals`, as a Ctrl-C is (a :class:`SignalStop`, a KeyboardInterrupt), so
they get the same clean-up: workers and services stopped, the line saying what was kept.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any, ParamSpec, TypeVar

import typer

from retrysim.errors import BadInputError
from retrysim.safe import visible
from retrysim.stop_signals import STOP_SIGNALS

EXIT_THRESHOLD = 1
EXIT_BUG = 1
EXIT_BAD_INPUT = 2
EXIT_ENVIRONMENT = 3  # the machine failed under the run: a worker process died
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C

P = ParamSpec("P")
R = TypeVar("R")

debug_mode = {"on": False}
#: Set once a command has printed its own ``retrysim: interrupted ...`` line (see
#: :func:`interrupted`), so the entry point does not print a second, plainer one.
interrupt_reported = {"on": False}

#: The signal stopping this command (see :func:`stop_on_signals`), None for none or a Ctrl-C.
stopping: dict[str, signal.Signals | None] = {"signal": None}

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
    """Print ``retrysim: interrupted <detail>`` (what was kept, how to go on; ``stopped by
    SIGTERM`` for a signal) on stderr and return the Exit to raise (:func:`interrupt_code`)."""
    print(f"retrysim: {interruption()} {visible(detail)}", file=sys.stderr)
    interrupt_reported["on"] = True
    return typer.Exit(interrupt_code())


def interruption() -> str:
    """What stopped the command, as its line says it: ``interrupted`` (Ctrl-C) or
    ``stopped by SIGTERM``."""
    caught = stopping["signal"]
    return "interrupted" if caught is None else f"stopped by {caught.name}"


def interrupt_code() -> int:
    """The exit code of a stopped command: 128 + the signal, as shells report it (130 for a
    Ctrl-C, 143 for SIGTERM, 129 for SIGHUP)."""
    caught = stopping["signal"]
    return EXIT_INTERRUPTED if caught is None else 128 + int(caught)


def stopped_by(number: signal.Signals) -> typer.Exit:
    """End a command that caught a stop signal on its own (the lab's event loop holds them
    while its screen runs) as one :func:`stop_on_signals` stopped: exit 128 + the signal, and
    the entry point's ``retrysim: stopped by SIGTERM`` line."""
    stopping["signal"] = number
    return typer.Exit(interrupt_code())


class SignalStop(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised as a Ctrl-C is so every clean-up for one runs; whatever
    treats Ctrl-C as "cancel this and go on" (the shell) lets this one through."""


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise :class:`SignalStop` in the main thread.

    A signal the process was started ignoring (``nohup`` ignores SIGHUP) stays ignored. Only
    the first signal raises; a second one ends the process at once, as it would without a
    handler (so a command whose clean-up hangs can still be stopped). A process forked from
    this one (a local worker) gets the signals' default actions back before it runs anything
    (:func:`_fork_keeps_defaults`), so stopping a worker stays a plain SIGTERM. The handlers
    are put back when the block ends.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set in the main thread
        return
    owner = os.getpid()
    stopping["signal"] = None

    def handler(number: int, frame: FrameType | None) -> None:
        if os.getpid() == owner and stopping["signal"] is None:
            stopping["signal"] = signal.Signals(number)
            raise SignalStop
        signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)

    before = {number: signal.getsignal(number) for number in STOP_SIGNALS}
    handled = [number for number, previous in before.items() if previous is signal.SIG_DFL]
    _fork_keeps_defaults()
    for number in handled:
        signal.signal(number, handler)
    _in_forks["reset"] = handled
    try:
        yield
    finally:
        _in_forks["reset"] = []
        for number in handled:
            signal.signal(number, signal.SIG_DFL)
        stopping["signal"] = None  # read within the block (the exit code): done with now


#: The signals a process forked now must set back to their default action (see below).
_in_forks: dict[str, list[signal.Signals]] = {"reset": []}
_fork_hook = {"set": False}


def _fork_keeps_defaults() -> None:
    """Make every fork (a local worker) start with SIGTERM and SIGHUP at their default actions.

    A forked child inherits the parent's handler, and CPython drops the signals that arrive
    in the child before its interpreter is ready: a SIGTERM sent to a worker just forked (a
    pool stopped as it starts) would be lost, and the pool's clean-up would wait for it for
    ever. So the signals are blocked across the fork and unblocked in the child only once
    their default action is back: one sent meanwhile then kills it, as without a handler.
    Registered once per process (``os.register_at_fork`` cannot be undone); it acts only
    while :func:`stop_on_signals` has handlers set.
    """
    if _fork_hook["set"] or not hasattr(os, "register_at_fork"):
        return  # (no fork, no forked workers: Windows)
    _fork_hook["set"] = True

    def block() -> None:
        if _in_forks["reset"]:
            signal.pthread_sigmask(signal.SIG_BLOCK, _in_forks["reset"])

    def unblock() -> None:
        if _in_forks["reset"]:
            try:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, _in_forks["reset"])
            except SignalStop:
                # A signal sent during the fork runs its handler here, inside an at-fork hook,
                # where CPython ignores what it raises (a pool starting would then run on
                # after a SIGTERM): sent again from outside the hook, it stops the command.
                again, stopping["signal"] = stopping["signal"], None
                if again is not None:
                    resend = threading.Timer(0.05, os.kill, (os.getpid(), again))
                    resend.daemon = True
                    resend.start()

    def in_child() -> None:
        reset, _in_forks["reset"] = _in_forks["reset"], []
        for number in reset:
            signal.signal(number, signal.SIG_DFL)
        if reset:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, reset)

    os.register_at_fork(before=block, after_in_parent=unblock, after_in_child=in_child)


def worker_died(detail: str = "") -> typer.Exit:
    """Print that a worker process died (neither the input nor retrysim: the machine), with
    ``detail`` (how far the runs got, what was kept, how to go on); return the Exit (code 3)."""
    said = "a worker process died (killed by the system? out of memory? fewer --workers use less)"
    print(f"retrysim: error: {said}{' ' + visible(detail) if detail else ''}", file=sys.stderr)
    return typer.Exit(EXIT_ENVIRONMENT)


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
            if _worker_died(error):
                raise worker_died() from None
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


def _worker_died(error: BaseException) -> bool:
    """Whether ``error`` says a local worker process died (imported only when one failed)."""
    from retrysim.runs.executors import WorkerDiedError

    return isinstance(error, WorkerDiedError)


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
