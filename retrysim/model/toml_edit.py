"""Scenario data as TOML text, written with tomlkit: fresh, or as edits to the file it came from.

``tomllib`` reads TOML but cannot write it, and a hand-written writer drifted from what TOML
allows. tomlkit is a maintained, round-tripping TOML library: it keeps a document's comments,
whitespace and key order, so a scenario loaded from a file and changed in the shell can be
saved as the same file with only the changed values touched (:func:`update`). A bundled or
shell-built scenario has no file of the user's to keep, and is written fresh (:func:`dumps`).

``None`` means "not set" everywhere in scenario data and is never written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping, MutableSequence
from typing import Any, TypeVar

import tomlkit
from tomlkit import TOMLDocument
from tomlkit.items import AoT, Array, InlineTable, Table

from retrysim.suggest import edits

T = TypeVar("T", Table, InlineTable)


def dumps(data: Mapping[str, Any]) -> str:
    """TOML text for ``data``: top-level scalars, one ``[table]`` per dict, ``[[faults]]``.

    Small nested dicts (a latency distribution, an arrival) are inline tables, as in the bundled
    files. Raises ``TypeError`` for a value TOML cannot hold (tomlkit's ``ConvertError`` is one).
    """
    document = tomlkit.document()
    tables = []
    for key, value in data.items():
        if value is None:
            continue
        if isinstance(value, Mapping) or _is_table_list(value):
            tables.append((key, value))  # after the scalars: TOML has no way back to the root
        else:
            document[key] = _value(value)
    for key, value in tables:
        document[key] = _table(value) if isinstance(value, Mapping) else _aot(value)
    return tomlkit.dumps(document)


def update(original: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """``original`` (the text ``old`` was loaded from) with ``new``'s differences from ``old``.

    Keys whose value did not change keep their text, comments and place; changed ones are
    rewritten in place; keys that became ``None`` or disappeared are removed; new ones are
    appended to their table. ``old`` and ``new`` are the same shape of data (a validated
    scenario's dump before and after edits), so defaults the file never spelled out stay out.
    """
    document = tomlkit.parse(original)
    _merge(document, old, new)
    return tomlkit.dumps(document)


def _merge(node: MutableMapping[str, Any], old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    for key in [*old, *(k for k in new if k not in old)]:
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        if after is None:
            node.pop(key, None)
        elif isinstance(before, Mapping) and isinstance(after, Mapping):
            if key not in node or not isinstance(node[key], Table | InlineTable):
                fresh = _changed(before, after)
                node[key] = _table(fresh) if isinstance(node, TOMLDocument) else _inline(fresh)
            else:
                _merge(node[key], before, after)
        elif _is_table_list(after) and isinstance(node.get(key), AoT | Array):
            _merge_list(node[key], before if isinstance(before, list) else [], after)
        elif isinstance(node, TOMLDocument) and (
            isinstance(after, Mapping) or _is_table_list(after)
        ):
            node[key] = _table(after) if isinstance(after, Mapping) else _aot(after)
        else:
            node[key] = _value(after)


def _merge_list(node: MutableSequence[Any], old: list[Any], new: list[Any]) -> None:
    """Edit an array of tables item by item, so an untouched fault keeps its comments.

    Items are matched as a diff matches lines: a removed fault is deleted, an added one
    inserted, a changed one edited key by key.
    """
    if len(node) != len(old):  # the file and the data disagree: no safe way to match items
        node[:] = list(_aot(new)) if isinstance(node, AoT) else [_inline(v) for v in new]
        return
    keys = [json.dumps(item, sort_keys=True, default=str) for item in old]
    steps = edits(keys, [json.dumps(i, sort_keys=True, default=str) for i in new])
    # Apply from the end, so the indices of earlier items stay valid.
    for tag, i1, i2, j1, j2 in reversed(steps):
        if tag == "equal":
            continue
        pairs = min(i2 - i1, j2 - j1)
        for offset in range(pairs):
            _merge(node[i1 + offset], old[i1 + offset], new[j1 + offset])
        del node[i1 + pairs : i2]
        for offset, item in enumerate(new[j1 + pairs : j2]):
            fresh = _table(item) if isinstance(node, AoT) else _inline(item)
            node.insert(i1 + pairs + offset, fresh)


def _changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """What ``new`` says that ``old`` did not: the keys to write into a table the file lacks."""
    return {k: v for k, v in new.items() if old.get(k) != v}


def _is_table_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


#: Keys written first in a fresh table, as the bundled files do: what a table is comes first.
_FIRST = ("kind", "dist")


def _ordered(data: Mapping[str, Any]) -> list[tuple[str, Any]]:
    return sorted(data.items(), key=lambda item: item[0] not in _FIRST)


def _filled(table: T, data: Mapping[str, Any]) -> T:
    """``table`` (a table or an inline one) given ``data``'s set keys, nested mappings inline."""
    for key, value in _ordered(data):
        if value is not None:
            table[key] = _inline(value) if isinstance(value, Mapping) else _value(value)
    return table


def _table(data: Mapping[str, Any]) -> Table:
    return _filled(tomlkit.table(), data)


def _aot(items: list[Any]) -> AoT:
    aot = tomlkit.aot()
    for item in items:
        aot.append(_table(item))
    return aot


def _inline(data: Mapping[str, Any]) -> InlineTable:
    return _filled(tomlkit.inline_table(), data)


def _value(value: Any) -> Any:
    """A scalar or an array as a tomlkit item; dicts inside arrays become inline tables."""
    if isinstance(value, list):
        array = tomlkit.array()
        for item in value:
            if item is not None:
                array.append(_inline(item) if isinstance(item, Mapping) else _value(item))
        return array
    if isinstance(value, Mapping):
        return _inline(value)
    return tomlkit.item(value)
