"""Dotted keys into nested data: ``policy.max_attempts``, ``faults.0.end``.

``--set``, ``--grid``, the shell's ``set`` and ``Scenario.with_overrides`` all edit a scenario's
plain-data form through this one function; it knows nothing of what the keys mean.
"""

from __future__ import annotations

from typing import Any


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``data[a][b][0]`` for ``a.b.0``; raises KeyError with the path on a missing step."""
    parts = dotted.split(".")
    node: Any = data
    for depth, part in enumerate(parts[:-1]):
        node = _step(node, part, parts[: depth + 1])
    last = parts[-1]
    if isinstance(node, list):
        index = _index(node, last, parts)
        node[index] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise KeyError(".".join(parts))


def _step(node: Any, part: str, path: list[str]) -> Any:
    if isinstance(node, list):
        return node[_index(node, part, path)]
    if isinstance(node, dict):
        if part not in node or node[part] is None:
            node[part] = {}
        return node[part]
    raise KeyError(".".join(path))


def _index(node: list[Any], part: str, path: list[str]) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise KeyError(".".join(path))
    return int(part)
