"""scipy, imported in this one place and only when a fit runs.

scipy ships no type information (the separate ``scipy-stubs`` package would give it), so its
modules are handed out as ``Any`` from here rather than with an ignore at every import; and
importing it costs a second or more, which ``retrysim --help`` and the layers below must not
pay.
"""

from __future__ import annotations

from typing import Any


def stats() -> Any:
    """``scipy.stats``."""
    from scipy import stats as module  # type: ignore[import-untyped,unused-ignore]

    return module


def optimize() -> Any:
    """``scipy.optimize``."""
    from scipy import optimize as module  # type: ignore[import-untyped,unused-ignore]

    return module
