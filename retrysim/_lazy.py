"""Lazy exports for a package's ``__init__``: a name's module is imported on first use.

``import retrysim`` or ``import retrysim.retry.options`` then costs nothing beyond what is
used, which keeps ``retrysim --help`` instant and the scenario loader free of
pydantic-settings. Only fixed names map to fixed modules: nothing here imports by user input.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str], namespace: dict[str, Any], names: list[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of ``package``.

    ``exports`` maps each public name to the module that defines it; a loaded name is stored
    in ``namespace`` (the package's globals), so later lookups skip this path.
    """

    def getattr_(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted(names)

    return getattr_, dir_
