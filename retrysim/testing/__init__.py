"""Testing retrying code without waiting for it: virtual time and scheduled faults.

The pytest plugin (``retrysim.pytest_plugin``, loaded by pytest through retrysim's entry point)
is the usual way in: ``@pytest.mark.retrysim`` or the ``virtual_time`` and ``faults`` fixtures.
Everything here also works without pytest::

    from retrysim.testing import VirtualTime, outage, wrap

    with VirtualTime(seed=7) as vt:
        fetch = wrap(real_fetch, outage(end=2.5))
        retried_fetch()                      # whose retries wait 2.8 s: returns at once
        assert vt.now >= 2.5 and vt.attempts == 3

This package never imports pytest.
"""

from __future__ import annotations

from retrysim.testing.faults import (
    ErrorSpec,
    Fault,
    FaultCall,
    Faults,
    Faulty,
    Flaky,
    Latency,
    Outage,
    calls_of,
    flaky,
    latency,
    outage,
    wrap,
)
from retrysim.testing.loops import UnsupportedLoopError
from retrysim.testing.virtual import VirtualTime, active

__all__ = [
    "ErrorSpec",
    "Fault",
    "FaultCall",
    "Faults",
    "Faulty",
    "Flaky",
    "Latency",
    "Outage",
    "UnsupportedLoopError",
    "VirtualTime",
    "active",
    "calls_of",
    "flaky",
    "latency",
    "outage",
    "wrap",
]
