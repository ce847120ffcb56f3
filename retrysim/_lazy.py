"""Lazy exports for a package's ``__init__``, and moved modules' old paths as aliases.

``lazy_exports``: a name's module is imported on first use, so ``import retrysim`` or
``import retrysim.retry.options`` costs nothing beyond what is used, which keeps
``retrysim --help`` instant and the scenario loader free of pydantic-settings.

``alias_moved_modules``: a module that moved keeps its old import path for one release, as
the same module object (so ``isinstance`` checks, monkeypatching and old pickles keep
working) with a ``DeprecationWarning`` naming the new path.

Only fixed names map to fixed modules: nothing here imports by user input.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import importlib.abc


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


class MovedModules:
    """A ``sys.meta_path`` finder and loader for old module paths (importlib's protocols).

    It is appended after the standard finders, so it is asked only about a module no other
    finder found: every import that exists on disk never reaches it, and any other missing
    one costs a dict lookup. (Not subclassing ``importlib.abc``, which costs ~20 ms to
    import, for the same two methods.)
    """

    def __init__(self, package: str, moved: Mapping[str, str], removed_in: str) -> None:
        self.package = package
        self.removed_in = removed_in
        self.targets = {f"{package}.{old}": f"{package}.{new}" for old, new in moved.items()}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.targets:
            return None
        # The loader protocol (create_module, exec_module), without importlib.abc's base class.
        return importlib.machinery.ModuleSpec(fullname, cast("importlib.abc.Loader", self))

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None  # the import system makes a placeholder; exec_module swaps it out

    def exec_module(self, module: ModuleType) -> None:
        """Import the new module and put it in ``sys.modules`` under the old name.

        The import system returns what ``sys.modules`` holds after this, and binds it as the
        parent package's attribute: the old path then names the new module object itself.
        """
        import warnings

        old = module.__name__
        new = self.targets[old]
        # stacklevel 2 is the importing line: the warnings machinery skips importlib's frames.
        warnings.warn(
            f"{old} moved to {new}; import it from there ({old} goes away in "
            f"{self.package} {self.removed_in})",
            DeprecationWarning,
            stacklevel=2,
        )
        sys.modules[old] = importlib.import_module(new)


def alias_moved_modules(package: str, moved: Mapping[str, str], removed_in: str) -> MovedModules:
    """Make ``package.OLD`` import ``package.NEW`` for each ``OLD: NEW`` of ``moved``.

    Installed once per package (a reloaded package replaces its finder), last on
    ``sys.meta_path``.
    """
    finder = MovedModules(package, moved, removed_in)
    sys.meta_path[:] = [
        f
        for f in sys.meta_path
        if not (type(f).__name__ == "MovedModules" and getattr(f, "package", None) == package)
    ]
    sys.meta_path.append(finder)
    return finder
