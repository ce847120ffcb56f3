"""A bare tenacity loop with every call alive at once: the reference path's honest yardstick.

:func:`benchmarks.engine.bare_loop` replays a run's outcomes one call at a time, so one
``RetryCallState`` is hot in the cache while it runs; a simulation holds every live call's
state at once and visits them in time order. This loop does the same as the simulation, minus
the simulation: it creates each call's ``RetryCallState`` when the call starts (recorded
start), and visits calls through one heap at each attempt's recorded start and end, stepping
tenacity's own ``Retrying.iter()`` with the call's own jitter stream and the recorded error.
There is no server, no fault, no record keeping: what is left is tenacity with every call alive.
The collector is tuned as the reference path tunes it (``quiet_collector``), so neither side
pays for garbage collection the other does not.
"""

from __future__ import annotations

import heapq
import time

import numpy as np
from tenacity import DoAttempt, DoSleep, RetryCallState

from retrysim.model.scenario import Scenario
from retrysim.sim.clock import current_stream, routed_jitter, tenacity_virtual_time
from retrysim.sim.engine import CALL_KEY_SHIFT, RunResult, policy_for
from retrysim.sim.failures import make_error
from retrysim.sim.kernel import quiet_collector
from retrysim.sim.streams import JITTER, Stream, stream_key

_START, _SEND, _HEAR = 0, 1, 2


def bare_loop_alive(scenario: Scenario, result: RunResult) -> float:  # noqa: PLR0915 (one loop)
    """Replay ``result``'s outcomes through tenacity, all calls interleaved; CPU seconds.

    Only the loop is timed (``time.process_time``), not building its inputs from the records.
    Raises AssertionError when tenacity ends a call before its recorded attempts are replayed.
    """
    retrying = policy_for(scenario).retrying()
    jitter_key = stream_key(result.seed, JITTER)
    attempts, calls = result.attempts, result.calls
    order = np.lexsort((attempts["attempt"], attempts["call"]))
    errors = attempts["error"][order].tolist()
    starts = attempts["start"][order].tolist()
    ends = attempts["end"][order].tolist()
    # Call c's attempts are rows first[c] .. first[c] + its count - 1 of the sorted columns.
    counts = np.bincount(attempts["call"], minlength=len(calls))
    ends_at = np.cumsum(counts)
    first, stop = (ends_at - counts).tolist(), ends_at.tolist()
    keys = ((calls["client"].astype(np.int64) << CALL_KEY_SHIFT) | calls["index"]).tolist()
    heap = [(t, c, _START, c) for c, t in enumerate(calls["start"].tolist()) if counts[c]]
    heapq.heapify(heap)
    push, pop = heapq.heappush, heapq.heappop
    states: list[RetryCallState | None] = [None] * len(calls)
    streams: list[Stream | None] = [None] * len(calls)
    position = first  # the row of each call's next attempt
    clock = [0.0]
    seq = len(heap)
    t0 = time.process_time()
    with quiet_collector(True), tenacity_virtual_time(lambda: clock[0]), routed_jitter():
        retrying.begin()
        while heap:
            now, _, kind, c = pop(heap)
            clock[0] = now
            if kind == _HEAR:
                state = states[c]
            else:  # the call starts, or its wait is over: tenacity says attempt
                if kind == _START:
                    state = states[c] = RetryCallState(retrying, None, (), {})
                    streams[c] = Stream(jitter_key, keys[c])
                else:
                    state = states[c]
                    assert state is not None
                    state.prepare_for_next_attempt()
                if not isinstance(retrying.iter(state), DoAttempt):
                    raise AssertionError("a call starts, and goes on after a wait, by attempting")
                end = ends[position[c]]
                if end != now:  # answered later; an attempt refused at once is heard now
                    push(heap, (end, seq, _HEAR, c))
                    seq += 1
                    continue
            assert state is not None
            row = position[c]
            position[c] = row + 1
            code = errors[row]
            if code:
                error = make_error(code)
                state.set_exception((type(error), error, None))
                stream = streams[c]
                assert stream is not None
                current_stream.set(stream)  # only a failure draws a jitter
            else:
                state.set_result(None)
            try:
                do = retrying.iter(state)
            except Exception as raised:  # tenacity gave up (RetryError or the error re-raised)
                # As any loop that keeps running should: drop the traceback, or the error ->
                # frame -> state cycle keeps the call alive until the collector finds it.
                raised.__traceback__ = None
                do = None
            if isinstance(do, DoSleep) and row + 1 < stop[c]:  # (a run cut short: no more)
                push(heap, (starts[row + 1], seq, _SEND, c))
                seq += 1
            else:  # the call ended: its state goes, as a simulation's does
                states[c] = streams[c] = None
    seconds = time.process_time() - t0
    if position != stop:  # tenacity ended a call before its recorded attempts ran out
        raise AssertionError("the replay and the run disagree on a call's attempts")
    return seconds
