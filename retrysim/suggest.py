"""Suggestions for a mistyped name, shared by scenario files, ``--set``, the shell, metric
names, decorator keywords and ``RETRY__*`` variables; and the matching of two lists.

One implementation, so a typo gets the same kind of answer wherever it is typed: this is the
only module that uses :mod:`difflib` (``tests/test_suggest.py`` checks that). Standard
library only: the CLI imports this before it knows whether it will load pydantic at all.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable, Sequence
from typing import Any, Literal

#: One step of :func:`edits`: what to do with ``old[i1:i2]`` to get ``new[j1:j2]``.
Edit = tuple[Literal["replace", "delete", "insert", "equal"], int, int, int, int]


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice most like ``word``, or None when none is close enough to be a typo of it."""
    match = difflib.get_close_matches(word, list(choices), n=1)
    return match[0] if match else None


def hint(word: str, choices: Collection[str], *, list_allowed: bool = True) -> str:
    """`` (did you mean 'x'?)``; else `` (allowed: a, b)`` if ``list_allowed``; else ``""``.

    Lists are worth printing only when short (a model's fields), not for every dotted key.
    """
    match = closest(word, choices)
    if match is not None:
        return f" (did you mean {match!r}?)"
    if list_allowed and choices:
        return f" (allowed: {', '.join(sorted(choices))})"
    return ""


def dotted_keys(data: Any, prefix: str = "") -> list[str]:
    """Every dotted key of nested dicts and lists: ``policy``, ``policy.max_attempts``, ..."""
    keys: list[str] = []
    if isinstance(data, dict):
        for k, v in data.items():
            keys.append(prefix + str(k))
            keys.extend(dotted_keys(v, f"{prefix}{k}."))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            keys.append(f"{prefix}{i}")
            keys.extend(dotted_keys(v, f"{prefix}{i}."))
    return keys


def unknown_key(key: str, data: Any) -> str:
    """The message for a dotted ``key`` that names nothing in the scenario ``data``."""
    return f"{key}: no such key in the scenario" + hint(key, dotted_keys(data), list_allowed=False)


def edits(old: Sequence[str], new: Sequence[str]) -> list[Edit]:
    """The steps that turn ``old`` into ``new``, matched as a diff matches lines (difflib's
    opcodes): a scenario file's ``[[faults]]`` edited item by item keeps the untouched ones."""
    return list(difflib.SequenceMatcher(a=old, b=new).get_opcodes())
