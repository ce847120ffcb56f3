"""retrysim: see what your retry settings do before production does.

The production mechanism lives in :mod:`retrysim.retry`; the simulator in :mod:`retrysim.sim`.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
