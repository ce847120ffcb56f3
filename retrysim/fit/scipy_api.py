"""scipy, imported in this one place and only when a fit runs.

scipy ships no type information (the separate ``scipy-stubs`` package would give it), so its
modules are handed out as ``Any`` from here rather than with an ignore at every import; and
importing it costs a second or more, which ``retrysim --help`` and the layers below must not
pay.
"""

from __future__ import annotations

from typing import Any

from retrysim.sim.latency import FIT_EXTRA, MissingScipyError


def stats() -> Any:
    """``scipy.stats``."""
    try:
        from scipy import stats as module  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        raise _missing() from None
    return module


def optimize() -> Any:
    """``scipy.optimize``."""
    try:
        from scipy import optimize as module  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        raise _missing() from None
    return module


def _missing() -> MissingScipyError:
    """Without the extra a fit is the user's install to complete, not a bug: exit 2, one line."""
    return MissingScipyError(
        f"retrysim fit needs scipy, which is not installed: pip install '{FIT_EXTRA}'"
    )
