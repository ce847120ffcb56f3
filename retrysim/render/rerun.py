"""The commands a report suggests: ``retrysim run`` on the run's own scenario, with a change.

A suggested command is worth something only if it runs when pasted, and runs what the report
was about. So the scenario is named as the run was given it (the document's ``source``: a
bundled name, or the path of its file, never just the scenario's ``name``, which no command
can find), the user's other options that shaped the run (the document's ``arguments``:
``--seed``, ``--set``, ``--profile``, ``--env-file``) are kept, and every word is quoted for
a POSIX shell (:func:`shlex.join`), so a path with a space or a quote in it stays one word. A
``--set`` the user gave for a key the change sets is dropped: the change replaces it.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from retrysim.results.document import ResultDocument
from retrysim.safe import visible


def run_command(doc: ResultDocument, *changes: str) -> str:
    """``retrysim run SOURCE ARGUMENTS... --set CHANGE...``, quoted for the shell and safe to
    print (:func:`retrysim.safe.visible`); each change is a ``KEY=VALUE`` as ``--set`` takes."""
    words = ["retrysim", "run", doc["source"]]
    words += kept_arguments(doc.get("arguments", []), changes)
    for change in changes:
        words += ["--set", change]
    return visible(shlex.join(words))


def kept_arguments(arguments: Sequence[str], changes: Sequence[str]) -> list[str]:
    """``arguments`` without the ``--set`` items whose key one of ``changes`` sets."""
    changed = {_key(change) for change in changes}
    kept: list[str] = []
    words = iter(arguments)
    for word in words:
        if word == "--set":
            item = next(words, "")
            if _key(item) not in changed:
                kept += [word, item]
        else:
            kept.append(word)
    return kept


def _key(item: str) -> str:
    return item.partition("=")[0].strip()
