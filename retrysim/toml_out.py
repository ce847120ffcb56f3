"""A small TOML writer for scenario data (the standard library reads TOML but cannot write it).

It writes exactly the shapes a scenario has: scalars, tables, inline tables for small nested
values (latency distributions, arrivals), and arrays of tables (faults). ``None`` means "not
set" and is left out. Round-trips through ``tomllib``; a test checks that.
"""

from __future__ import annotations

import json
import math
from typing import Any


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_scalar(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        items = [f"{_key(k)} = {_scalar(v)}" for k, v in value.items() if v is not None]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _key(key: str) -> str:
    bare = key and all(c.isalnum() or c in "-_" for c in key)
    return key if bare else json.dumps(key)


def _is_table_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def dumps(data: dict[str, Any]) -> str:
    """TOML text for ``data``: top-level scalars, then one [table] per dict, [[list]] per list."""
    lines: list[str] = []
    for key, value in data.items():
        if value is None or isinstance(value, dict) or _is_table_list(value):
            continue
        lines.append(f"{_key(key)} = {_scalar(value)}")
    for key, value in data.items():
        if isinstance(value, dict):
            lines.extend(["", f"[{_key(key)}]"])
            lines.extend(f"{_key(k)} = {_scalar(v)}" for k, v in value.items() if v is not None)
    for key, value in data.items():
        if _is_table_list(value):
            for item in value:
                lines.extend(["", f"[[{_key(key)}]]"])
                lines.extend(f"{_key(k)} = {_scalar(v)}" for k, v in item.items() if v is not None)
    return "\n".join(lines).lstrip("\n") + "\n"
