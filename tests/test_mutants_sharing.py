"""Processor sharing (``retrysim/sim/sharing.py``): behaviour its mutation run found untested.

Each test runs a real :class:`~retrysim.sim.kernel.Kernel` and reads what a server or a client
CPU built on :class:`Sharing` would see: which job finishes when, in which order.
"""

from __future__ import annotations

import pytest

from retrysim.sim.kernel import Kernel
from retrysim.sim.sharing import Sharing

#: Seconds of idle time or work large enough that a microsecond is below their precision
#: (a float near 2**40 steps by 2**-12 s).
LONG = 2.0**40
MICROSECOND = 1e-6


def run(kernel: Kernel) -> None:
    kernel.run(max_time=float("inf"), max_events=1_000)


@pytest.mark.parametrize("before", ["idle from the start", "after a long busy period"])
def test_a_busy_period_keeps_a_microsecond_of_work_after_a_long_time(before: str) -> None:
    """Each busy period counts work from zero, so a job a microsecond shorter than another
    still finishes first, however long the processor was idle or busy before: counted on
    from 2**40 s, the microsecond would be rounded away and the two would tie (and finish in
    arrival order)."""
    kernel, order = Kernel(), list[str]()
    sharing = Sharing(kernel, 1.0, order.append)
    if before == "after a long busy period":
        sharing.add(0.0, LONG, "long job")
    start = LONG + 1.0
    kernel.at(start, lambda _: sharing.add(start, 1.0 + MICROSECOND, "longer"), None)
    kernel.at(start, lambda _: sharing.add(start, 1.0, "shorter"), None)
    run(kernel)
    assert order[-2:] == ["shorter", "longer"]


def test_jobs_of_equal_work_that_arrive_together_finish_in_arrival_order() -> None:
    """Equal work, one instant: they finish at the same instant, first come first done (the
    order a server's records and a client's resumed attempts follow)."""
    kernel, order, ends = Kernel(), list[str](), list[float]()

    def done(job: str) -> None:
        order.append(job)
        ends.append(kernel.now)

    sharing = Sharing(kernel, 1.0, done)
    with sharing.settled():
        for job in ("a", "b", "c", "d"):
            sharing.add(0.0, 0.5, job)
    run(kernel)
    assert order == ["a", "b", "c", "d"]
    assert ends == [2.0] * 4
