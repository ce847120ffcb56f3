"""The native engine: when it runs, and its run turned into a :class:`RunResult`.

``simulate`` builds the Python :class:`~retrysim.sim.engine.Engine` as always (the scenario
is read, the policy and fault plan compiled, by the one code that does it), then asks here:
if the compiled core (``retrysim.sim._native``, built from ``native/`` by ``pip install``)
models everything the run uses, the core runs it and the result says ``engine: native``;
otherwise the Python engine runs and the result says why not (``engine: fast (the native
core has no tiers)``). The records are the same either way, byte for byte:
``tests/test_native.py`` proves it against tenacity's own ``iter()``.

``RETRYSIM_NATIVE=0`` in the environment turns the core off (the suite runs its proof of the
fast path that way too).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import fields
from types import ModuleType
from typing import Any

import numpy as np

from retrysim.model.scenario import Poisson
from retrysim.sim import kernel
from retrysim.sim import records as rec
from retrysim.sim.arrivals import expected_calls, first_calls, follow_up_calls, time_limit
from retrysim.sim.connections import CLOSES_CONNECTION, FAILS_CONNECT, ConnectionStats
from retrysim.sim.decide import EngineChoiceError
from retrysim.sim.failures import ANSWER_BASE, RATE_LIMITED, TIMEOUT
from retrysim.sim.limits import attempt_limit, attempts_stopped, check_memory, event_limit
from retrysim.sim.result import RunResult

#: The environment variable that turns the native core off ("0").
SWITCH = "RETRYSIM_NATIVE"
#: What the core counts of the connections, in its order (ConnectionStats' fields).
STATS = tuple(field.name for field in fields(ConnectionStats))
#: How the core's run stopped early (native/run.h's STOP_*).
STOP_TIME, STOP_EVENTS, STOP_ATTEMPTS = 1, 2, 3


def _load() -> ModuleType | str:
    """The compiled core, or why it is not there (turned off, or not built)."""
    if os.environ.get(SWITCH, "1") == "0":
        return f"the native core is turned off ({SWITCH}=0)"
    try:
        from retrysim.sim import _native  # type: ignore[attr-defined]
    except ImportError as error:
        return f"the native core is not built ({error}); reinstall with pip install -e ."
    module: ModuleType = _native
    return module


def core() -> ModuleType | None:
    """The compiled core, or None (turned off, or not built: :func:`absent` says which)."""
    loaded = _load()
    return None if isinstance(loaded, str) else loaded


def absent() -> str | None:
    """Why :func:`core` gives None (None: it does not)."""
    loaded = _load()
    return loaded if isinstance(loaded, str) else None


def run(engine: Any, choice: str) -> RunResult:
    """Run ``engine`` (an :class:`~retrysim.sim.engine.Engine`, built) natively when the core
    models it, else on its own path, saying why.

    ``choice`` is the ``--engine`` asked for: ``auto`` falls back; ``native`` refuses, in one
    line, a run the core cannot take.
    """
    from retrysim.sim.native_lower import Refused, lower, refusal

    loaded = _load()
    module = None if isinstance(loaded, str) else loaded
    reason = loaded if isinstance(loaded, str) else refusal(engine)
    if reason is None and engine.full.tier_names:  # (one tier: the run has its TierRun)
        reason = "the native core has no tiers"
    lowered = None
    if reason is None:
        try:
            lowered = lower(engine)
        except Refused as refused:
            reason = str(refused)
    if lowered is None or module is None:
        if choice == "native":
            raise EngineChoiceError(
                f"--engine native: {reason}; use --engine auto, fast or reference"
            )
        result: RunResult = engine.run()
        if result.engine == "fast":  # (the reference path's note says why not fast)
            result.engine_note = reason
        return result
    return _run(engine, module, lowered)


def _run(engine: Any, module: ModuleType, lowered: Any) -> RunResult:
    """Engine.run's work, the loop in the core: arrivals, limits, progress, records, result."""
    from retrysim.sim.native_lower import code_set

    scenario = engine.scenario
    check_memory(scenario, engine.policy.max_attempts)
    times, clients_in_order = first_calls(scenario, engine.seed)
    open_loop = isinstance(scenario.clients.arrival, Poisson)
    per_client = follow_up_calls(scenario)
    expected: int | None = None
    if open_loop:
        expected = len(times)
    elif math.isfinite(per_client):
        expected = round(expected_calls(scenario))
    max_events, events_limit = event_limit(scenario)
    max_time = time_limit(scenario)
    progress = engine.progress
    engine._expected = expected

    def report(ended: int, started: int, now: float) -> None:
        """The core's progress, told by Engine._report (its rule, once): the engine's own
        counters, idle while the core runs, are set to the core's first."""
        engine._ended, engine.calls.size, engine.kernel.now = ended, started, now
        engine._report()

    tables = lowered.tables
    timeout = engine.timeout
    wall = time.perf_counter()
    attempt_rows, call_rows, events, end_time, stop, stop_arg, counts = module.run(
        np.ascontiguousarray(times, dtype=np.float64),
        np.ascontiguousarray(clients_in_order, dtype=np.int64),
        open_loop,
        scenario.clients.count,
        per_client,
        scenario.clients.think_time,
        scenario.duration,
        max_time,
        max_events,
        float(attempt_limit(scenario)),
        math.nan if timeout is None else timeout,
        engine._jitter_key,
        engine.phases._latency_key,
        b"".join(tables.samplers),
        b"".join(tables.faults),
        lowered.plans,
        lowered.members,
        tables.keys,
        tables.doubles,
        b"".join(tables.nodes),
        tables.children,
        lowered.stop_root,
        lowered.wait_root,
        lowered.remembers,
        lowered.verdicts,
        lowered.served_judged,
        engine.answers.none_code,
        ANSWER_BASE,
        TIMEOUT,
        RATE_LIMITED,
        lowered.server,
        lowered.network,
        code_set(CLOSES_CONNECTION),
        code_set(FAILS_CONNECT),
        lowered.windows,
        lowered.hinted,
        lowered.replicas,
        lowered.balance_rule,
        lowered.balance_key,
        lowered.retry_other_host,
        lowered.hedge_max,
        lowered.hedge_delay,
        expected or 0,
        kernel.REPORT_EVERY,  # read now: a test may report more often
        None if progress is None else report,
    )
    wall = time.perf_counter() - wall
    kernel.give_back_memory(events)  # as after a Python run: the freed arrivals, the lowering
    attempts = np.frombuffer(attempt_rows, dtype=rec.ATTEMPT_DTYPE)
    calls = np.frombuffer(call_rows, dtype=rec.CALL_DTYPE)
    attempts, calls = rec.records_of(_Written(attempts), _Written(calls))  # type: ignore[arg-type]
    if progress is not None:
        progress(len(calls), len(calls))
    stopped = None
    if stop == STOP_TIME:
        stopped = (
            f"stopped at the time limit: virtual time would pass {max_time:g}s "
            "(limits.max_time); calls still running are reported unfinished"
        )
    elif stop == STOP_EVENTS:
        stopped = (
            f"stopped after {events:,} events ({events_limit}); "
            "calls still running are reported unfinished"
        )
    elif stop == STOP_ATTEMPTS:
        stopped = attempts_stopped(stop_arg)
    result = RunResult(
        scenario=engine.full,
        seed=engine.seed,
        policy=engine.policy.describe(),
        attempts=attempts,
        calls=calls,
        end_time=end_time,
        events=events,
        wall_time=wall,
        capacity=engine.capacity,
        stopped=stopped,
        guard_events=[],
        connections=None if engine.connections is None else dict(zip(STATS, counts, strict=True)),
        engine="native",
        engine_note=None,
        error_names=engine.answers.names,
        tiers=[],
    )
    from retrysim.sim.invariants import assert_invariants

    assert_invariants(result)
    return result


class _Written:
    """Records the core wrote, as :func:`records.records_of` takes columns: every field is
    written (the client too), so it fills in only what a call still running lacks."""

    fields = tuple(rec.ATTEMPT_DTYPE.names or ())

    def __init__(self, rows: np.ndarray) -> None:
        self.rows = rows

    def to_array(self) -> np.ndarray:
        return self.rows
