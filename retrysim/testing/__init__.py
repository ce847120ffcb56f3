"""Testing retrying code without waiting for it: virtual time and scheduled faults.

The pytest plugin (``retrysim.testing.pytest_plugin``, loaded by pytest through retrysim's entry
point)
is the usual way in: ``@pytest.mark.retrysim`` or the ``virtual_time`` and ``faults`` fixtures.
Everything here also works without pytest::

    from retrysim.retry import retry_storage_operation
    from retrysim.testing import VirtualTime, outage, wrap

    load = retry_storage_operation(max_attempts=5, min_wait=0.4, profile="exponential")(
        wrap(real_load, outage(end=2.5))         # the dependency is down for 2.5 s
    )
    with VirtualTime(seed=7) as vt:
        load("task:1")                           # 2.8 s of waits, returned at once
        assert vt.sleeps == [0.4, 0.8, 1.6] and vt.attempts == 4

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
from retrysim.testing.virtual import (
    DEFAULT_MAX_STEPS,
    DEFAULT_MAX_TIME,
    VirtualLimitError,
    VirtualTime,
    active,
)

__all__ = [
    "DEFAULT_MAX_STEPS",
    "DEFAULT_MAX_TIME",
    "ErrorSpec",
    "Fault",
    "FaultCall",
    "Faults",
    "Faulty",
    "Flaky",
    "Latency",
    "Outage",
    "UnsupportedLoopError",
    "VirtualLimitError",
    "VirtualTime",
    "active",
    "calls_of",
    "flaky",
    "latency",
    "outage",
    "wrap",
]
