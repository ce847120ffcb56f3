"""Suggestions for a mistyped name, shared by scenario files, ``--set`` and the shell.

One implementation, so a typo gets the same kind of answer wherever it is typed. Standard
library only: the CLI imports this before it knows whether it will load pydantic at all.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable
from typing import Any


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
