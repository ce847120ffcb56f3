"""How large a real fleet one Python process can drive with meaningful timing; larger is refused.

A real run puts every client, the fault proxy and (HTTP) the service on one asyncio loop in
one process. Past what that loop can serve, the run measures the loop, not the service: each
attempt's timing carries the loop's lag, attempts time out against a healthy Redis, and calls
still running when the run ends are cut off as unfinished. ``retrysim chaos thundering-herd
--start-redis`` (10,000 clients) ran two minutes to report 0% success and 8,057 unfinished
calls. So a fleet past :data:`MAX_REAL_CLIENTS` is refused before anything starts, unless the
caller forces it (``--force``).

**Measured** on this machine (2 cores shared with other jobs, load average 1.6 to 2.4) with
``scripts/measure_fleet.py``, which runs the real fleet (this package's code) against a private
redis-server through the proxy, with a probe on the fleet's loop recording how late a 10 ms
sleep wakes (the loop's lag):

- ``python scripts/measure_fleet.py real-redis-blip --counts 300,500,700,1000,2000 --set
  'faults=[]'`` (closed loop, 1 s think time, 1 s client timeout, no fault: every timeout is
  the loop's own): 300 clients, 0 attempts timed out, attempt latency p50 18 ms, p99 104 ms,
  loop lag p99 22 ms; **500**: 0 timed out, p99 412 ms, lag p99 80 ms (8% of the timeout), max
  231 ms; 700: 334 of 4,314 attempts timed out, lag p99 253 ms, max 649 ms; 1,000: 1,141 of
  5,177 timed out, lag p99 513 ms; 2,000: 9,210 of 11,040 timed out, 91.5% success against a
  Redis that never failed. The loop serves about 500 attempts a second, whatever the count.
- The same with its 2 s refusal (``--counts 200,500,1000``): 200 clients, 0 timed out, lag p99
  11 ms; 500: 38 timed out, lag p99 105 ms; 1,000: 1,820 of 6,379 timed out, lag p99 300 ms.
- ``thundering-herd`` (a burst, 5 s think time, 2 s timeout; ``--set duration=15 --set
  faults.0.end=4``): 500 clients, 0 timed out, lag p99 5 ms; 1,000: 0 timed out, lag p99 52
  ms, max 1.1 s; 2,000: 3,186 of 6,573 timed out, lag p99 432 ms, max 2.8 s.
- The HTTP fleet against retrysim's own service (``real-http-rate-limit --http --counts
  100,200,300,500 --set 'faults=[]'``, 1 s think time, 2 s timeout): 300 clients, lag p99 27
  ms; 500: 0 timed out but latency p99 639 ms, lag p99 138 ms.

Past about 500 clients calling once a second, the lag reaches a tenth of a one-second timeout
and the first attempts time out on a healthy service: that is the limit. A burst with longer
think times gets further (1,000 still held), a faster loop less far. ``--force`` runs any size
after one warning line (:func:`forced_note`); ``retrysim chaos thundering-herd --start-redis
--force`` ran 79 s and timed out 59,904 of its 60,000 attempts, every call failing against a
Redis that was back after 20 s. A run that ends with calls unfinished says so in its
diagnoses (``unfinished_calls``).
"""

from __future__ import annotations

from retrysim.chaos.toxics import ChaosError
from retrysim.model.scenario import Scenario

#: The most clients one process drives for real with meaningful timing (measured above).
MAX_REAL_CLIENTS = 500


def check_fleet(scenario: Scenario, *, force: bool = False) -> None:
    """A ChaosError (one line: the count, the limit, how to lower it) for a fleet past
    :data:`MAX_REAL_CLIENTS`, unless ``force``."""
    count = scenario.clients.count
    if count > MAX_REAL_CLIENTS and not force:
        raise ChaosError(
            f"clients.count = {count:,}: one process drives at most {MAX_REAL_CLIENTS:,} real "
            f"clients with meaningful timing; lower it with --set clients.count="
            f"{MAX_REAL_CLIENTS}, or run it anyway with --force"
        )


def forced_note(scenario: Scenario) -> str | None:
    """What a forced run past the limit measures, in one line (None within the limit): the
    report that follows reads like any other, so the reader is told before it."""
    count = scenario.clients.count
    if count <= MAX_REAL_CLIENTS:
        return None
    return (
        f"clients.count = {count:,} is past the {MAX_REAL_CLIENTS:,} clients one process drives "
        "with meaningful timing (--force): timeouts and latencies measure this process's event "
        "loop as much as the service"
    )
