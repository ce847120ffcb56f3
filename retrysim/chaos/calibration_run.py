"""``retrysim chaos --calibrate``'s short run: the same fleet, one attempt a call, no faults.

Before the real run, the scenario's own fleet (its clients, think time, arrival, pools and
timeout: what loads the loop) runs against the same service through the same fault proxy for
at most :data:`CALIBRATION_SECONDS`, with ``policy.max_attempts = 1`` and no fault, so every
attempt is a healthy request and nothing but the machine sets its time. A :class:`Meter` (a
thread of its own) samples, every :data:`STEP` seconds, the loop's clock, the process's CPU
clock, the loop thread's time run and waited runnable (the kernel's schedstat) and the
proxy's count of accepted connections; :mod:`retrysim.chaos.calibrate` fits the client model
from those samples and the attempt records. The run is bounded: calls still open
:data:`CALIBRATION_GRACE` seconds after its end are cut off (not the real run's 30 s).
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from retrysim.chaos.calibrate import Calibration, Samples, calibrate
from retrysim.chaos.http_run import _HttpRunner, _warm_up, check_http
from retrysim.chaos.run import RealFleet, _RealRunner, check, drive

if TYPE_CHECKING:
    from retrysim.chaos.http_target import HttpTarget
    from retrysim.chaos.proxy import FaultProxy
    from retrysim.model.scenario import Scenario
    from retrysim.retry.settings import RetrySettings

#: The calibration's length in the fleet's seconds (its scenario's duration; shorter when the
#: scenario is shorter): three rounds of a closed loop with a 1 s think time.
CALIBRATION_SECONDS = 3.0
#: Calls still open this long after the calibration's end are cut off as unfinished.
CALIBRATION_GRACE = 5.0
#: Seconds between two samples of the meter.
STEP = 0.1


def calibration_scenario(scenario: Scenario) -> Scenario:
    """``scenario``'s fleet with one attempt per call, no fault, at most
    :data:`CALIBRATION_SECONDS` long."""
    return scenario.with_overrides(
        {
            "policy.max_attempts": 1,
            "faults": [],
            "duration": min(scenario.duration, CALIBRATION_SECONDS),
        }
    )


def _schedstat(thread: int) -> Path | None:
    """The kernel's schedstat of thread ``thread`` (a native id; Linux), or None."""
    path = Path(f"/proc/self/task/{thread}/schedstat")
    try:
        path.read_text(encoding="ascii")
    except OSError:
        return None
    return path


class Meter:
    """Samples of the fleet's loop (see the module): rows of (the loop's clock, the process's
    CPU clock, the loop thread's time run and waited, connections the proxy accepted), read by
    :meth:`Samples.from_rows`.

    A thread of its own takes them, every :data:`STEP` seconds of wall time: a task on the
    loop would be served as late as the loop is behind, and a calibration on a busy machine is
    when the loop is behind.
    """

    def __init__(self) -> None:
        self.rows: list[tuple[float, float, float, float, int]] = []
        self._stat: Path | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._source: tuple[asyncio.AbstractEventLoop, FaultProxy] | None = None

    def start(self, proxy: FaultProxy) -> None:
        """Sample the running loop (called on its thread) and ``proxy`` until :meth:`stop`."""
        self._source = (asyncio.get_running_loop(), proxy)
        self._stat = _schedstat(threading.get_native_id())
        self.take()
        self._thread = threading.Thread(target=self._run, name="retrysim-meter", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling, with one last sample."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.take()

    def _run(self) -> None:
        while not self._stop.wait(STEP):
            self.take()

    def take(self) -> None:
        assert self._source is not None
        loop, proxy = self._source
        run = wait = float("nan")
        if self._stat is not None:
            try:
                fields = self._stat.read_text(encoding="ascii").split()
                run, wait = int(fields[0]) / 1e9, int(fields[1]) / 1e9
            except (OSError, ValueError, IndexError):
                self._stat = None  # gone mid-run: the slowdown is then not measured
        # the loop's clock is the monotonic clock less its origin: read from any thread
        self.rows.append((loop.time(), time.process_time(), run, wait, proxy.stats.connections))


class _Metered(RealFleet):
    """A real fleet whose loop a :class:`Meter` samples while it runs, bounded as a
    calibration (see the module)."""

    meter: Meter

    def max_time(self) -> float:
        return self.scenario.duration + CALIBRATION_GRACE

    async def run_fleet(self, proxy: FaultProxy) -> None:
        self.meter.start(proxy)
        try:
            await super().run_fleet(proxy)
        finally:
            self.meter.stop()


class _MeteredRedis(_Metered, _RealRunner):
    pass


class _MeteredHttp(_Metered, _HttpRunner):
    pass


def _finish(runner: _MeteredRedis | _MeteredHttp, at: datetime, started: float) -> Calibration:
    result = drive(runner, runner.real_main)
    samples = Samples.from_rows(runner.meter.rows)
    seconds = time.perf_counter() - started
    found = calibrate(samples, result.attempts, runner.scenario, at=at, seconds=seconds)
    if runner.incomplete is not None:
        found.notes.append(f"the calibration is incomplete: {runner.incomplete}")
    return found


def calibrate_redis(
    scenario: Scenario,
    upstream: tuple[str, int],
    seed: int | None = None,
    settings: RetrySettings | None = None,
    *,
    force: bool = False,
) -> Calibration:
    """Calibrate ``scenario``'s Redis fleet against the Redis at ``upstream`` (loopback)."""
    at, started = datetime.now(UTC), time.perf_counter()
    short = calibration_scenario(scenario)
    check(short, force=force)
    runner = _MeteredRedis(short, upstream, scenario.seed if seed is None else seed, settings)
    runner.meter = Meter()
    return _finish(runner, at, started)


def calibrate_http(
    scenario: Scenario,
    target: HttpTarget | None = None,
    seed: int | None = None,
    settings: RetrySettings | None = None,
    *,
    force: bool = False,
) -> Calibration:
    """Calibrate ``scenario``'s HTTP fleet against ``target`` (None: retrysim's own service,
    started for the calibration, as ``--start-http`` starts one for the run)."""
    at, started = datetime.now(UTC), time.perf_counter()
    short = calibration_scenario(scenario)
    check_http(short, target, force=force)
    _warm_up()
    runner = _MeteredHttp(short, target, scenario.seed if seed is None else seed, settings)
    runner.meter = Meter()
    return _finish(runner, at, started)
