"""The shell at a terminal: a prompt_toolkit prompt with completion, history and a toolbar.

Built as interactive database and Python shells are (pgcli, litecli, IPython): menus of
completions, history in ``~/.retrysim_history`` searchable with Ctrl-R, a bottom toolbar with
the loaded scenario and whether it has unsaved changes. Ctrl-C never ends the session: at the
prompt it clears the line, during a command it cancels the command (a ``run`` stops; the
scenario and the previous results stay). Ctrl-D, ``quit`` or ``exit`` leave, after asking
whether to save changes that were not saved.

Imported only when the shell starts at a terminal, so ``retrysim --help`` never loads
prompt_toolkit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from prompt_toolkit import PromptSession
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.history import FileHistory

from retrysim.cli.exits import SignalStop
from retrysim.cli.shell.commands import Shell
from retrysim.cli.shell.completer import ShellCompleter

PROMPT = "retrysim> "
INTRO = (
    "retrysim shell. 'load thundering-herd' to start, 'help' for commands.\n"
    "Tab completes, Ctrl-R searches history, Ctrl-C cancels, Ctrl-D leaves."
)

#: Asks a question and returns the answer; None when the user pressed Ctrl-C or Ctrl-D.
Ask = Callable[[str, str], str | None]


def history_path() -> Path:
    """Where the history lives; read when the shell starts, so HOME set by a test counts."""
    return Path.home() / ".retrysim_history"


class _History(FileHistory):
    """A history file that cannot end the session: a read-only home just keeps no history."""

    def store_string(self, string: str) -> None:
        with contextlib.suppress(OSError):
            super().store_string(string)


def toolbar(shell: Shell) -> StyleAndTextTuples:
    """The bottom line: which scenario is loaded, from where, and whether it is saved."""
    loaded = shell.loaded
    parts: StyleAndTextTuples = []
    if loaded is None:
        parts.append(("class:bottom-toolbar", " no scenario loaded "))
    else:
        where = str(loaded.path) if loaded.path is not None else "bundled"
        parts.append(("class:bottom-toolbar", f" {loaded.name} ({where}) "))
        if loaded.dirty:
            parts.append(("class:bottom-toolbar bold fg:ansired", " unsaved changes "))
        else:
            parts.append(("class:bottom-toolbar", " saved "))
    parts.append(("class:bottom-toolbar", "  Tab completes · Ctrl-R history · Ctrl-D leaves"))
    return parts


def interact(shell: Shell) -> None:
    """Read and run commands at the terminal until the user leaves."""
    session: PromptSession[str] = PromptSession(
        history=_History(str(history_path())),
        completer=ShellCompleter(shell),
        complete_while_typing=True,
        auto_suggest=AutoSuggestFromHistory(),
        bottom_toolbar=lambda: toolbar(shell),
    )
    shell.console.print(INTRO, highlight=False)
    ask = _asker()
    while True:
        try:
            line = session.prompt(PROMPT)
        except SignalStop:
            raise  # SIGTERM or SIGHUP: the session ends, as the command does
        except KeyboardInterrupt:
            continue  # Ctrl-C at the prompt: the half-typed line is gone, the session stays
        except EOFError:
            line = "quit"  # Ctrl-D leaves as quit does, through the same save question
        try:
            if shell.execute(line) and leave(shell, ask):
                return
        except SignalStop:
            raise
        except KeyboardInterrupt:
            shell.cancelled(line)


def leave(shell: Shell, ask: Ask) -> bool:
    """Whether to leave now: yes when nothing is unsaved, else as the user answers.

    y saves (to the file name the user types, or the one offered on Enter) and leaves, unless
    saving failed;
    n leaves without saving; c, Ctrl-C or Ctrl-D stay in the shell.
    """
    loaded = shell.loaded
    if loaded is None or not loaded.dirty:
        return True
    while True:
        answer = ask(f"{loaded.name} has unsaved changes. Save them? [y/n/c] ", "")
        if answer is None:
            return False
        choice = answer.strip().lower()[:1]
        if choice == "n":
            return True
        if choice == "c":
            return False
        if choice == "y":
            break
    # The default is shown, not pre-typed: typing a name replaces it, Enter accepts it.
    default = str(loaded.default_target())
    name = ask(f"Save to [{default}]: ", "")
    if name is None:
        return False
    shell.execute(f"save {name.strip() or default}")
    return not loaded.dirty  # a failed save printed its error; stay so nothing is lost


def _asker() -> Ask:
    """A prompt for questions, apart from the command prompt so answers stay out of history."""
    questions: PromptSession[str] = PromptSession()

    def ask(message: str, default: str) -> str | None:
        try:
            return questions.prompt(message, default=default)
        except SignalStop:
            raise
        except (KeyboardInterrupt, EOFError):
            return None

    return ask
