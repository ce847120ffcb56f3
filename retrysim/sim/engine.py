"""The discrete-event engine: a heap of (time, sequence) events driving tenacity's decisions.

After every attempt the engine asks the call's decider (:mod:`retrysim.sim.decide`) what
follows: on the reference path a real ``RetryCallState`` of the policy's real ``Retrying``
stepped with ``iter()``; on the fast path the same stop, wait and retry objects called
directly. A wait schedules the next attempt at ``now + wait`` (the only thing replaced is the
sleep); success or giving up ends the call. tenacity reads the virtual clock and draws jitter
from the call's own counter-based stream for the length of the run. Both paths schedule the
same events in the same order, so their records are identical, bit for bit.

Records are written into typed columns as the run goes
(:class:`~retrysim.sim.records.AttemptColumns`): an attempt is an index into them, never an
object of its own.
"""

from __future__ import annotations

import math
import time
from array import array
from collections.abc import Callable, Sequence
from heapq import heappush
from typing import Any

import numpy as np

from retrysim.model.scenario import Poisson, Scenario
from retrysim.retry.guards import GuardEvent, GuardSpec, GuardStates
from retrysim.retry.settings import RetrySettings
from retrysim.sim import records as rec
from retrysim.sim.arrivals import expected_calls, first_calls, follow_up_calls, time_limit
from retrysim.sim.attempt import BLACKHOLE, PASS, AttemptPhases
from retrysim.sim.call import CALL_KEY_SHIFT as CALL_KEY_SHIFT
from retrysim.sim.call import Call, ReferenceCall
from retrysim.sim.clock import current_stream, routed_jitter, tenacity_virtual_time
from retrysim.sim.connections import CLOSES_CONNECTION, FAILS_CONNECT, Connections, Pool
from retrysim.sim.connections import OPEN as CONNECTION_OPEN
from retrysim.sim.decide import GAVE_UP_NOW, SUCCEEDED_NOW, decider_for
from retrysim.sim.failures import ANSWER_BASE, TIMEOUT, Answers, code_of, make_error
from retrysim.sim.faults import compile_faults
from retrysim.sim.kernel import Kernel, give_back_memory, quiet_collector
from retrysim.sim.limits import ScenarioTooLargeError as ScenarioTooLargeError
from retrysim.sim.limits import attempt_limit, attempts_stopped, check_memory, event_limit
from retrysim.sim.policy import client_timeout
from retrysim.sim.policy import policy_for as policy_for
from retrysim.sim.result import RunResult as RunResult
from retrysim.sim.service import make_server, service_latency
from retrysim.sim.streams import JITTER, SERVER_DRAW, Stream, stream_key, unit

OPEN, OK, FAILED = rec.OPEN, rec.OK, rec.FAILED
#: ``progress(done, total)``: calls ended so far, calls the run is expected to make.
Progress = Callable[[int, int], None]
NAN = math.nan


class Engine:
    """One run of one scenario with one seed. Build, then call :meth:`run` once.

    The engine is the client side of the model on a scheduling :class:`Kernel`: it starts calls,
    steps tenacity, takes each attempt through its phases (:mod:`retrysim.sim.attempt`) and
    hands what reaches the server to a server model, which answers through the small
    ``ServerHost`` interface (``now``, ``at``, ``respond``, ``schedule_done``, ``server_done``,
    ``is_open``).
    """

    # Slots: read on every attempt, 30-odd attributes in a __dict__ cost 3% of a fast run.
    # fmt: off
    __slots__ = (
        "_attempt_limit",
        "_call_class", "_calls_per_client", "_decide", "_duration", "_ended", "_expected",
        "_first_clients", "_firsts", "_gate", "_guard_events", "_guard_states", "_holding",
        "_jitter_key", "_open_loop", "_pending_done", "_retry_later", "_server_key",
        "_think_time", "answers", "at", "attempts", "calls", "cancel", "connections", "decider",
        "kernel", "phases", "plan", "policy", "progress", "scenario", "seed", "server", "timeout",
    )
    # fmt: on

    def __init__(
        self,
        scenario: Scenario,
        seed: int | None = None,
        settings: RetrySettings | None = None,
        progress: Progress | None = None,
        guards: Sequence[GuardSpec] = (),
        retrying: Any = None,
        engine: str = "auto",
    ) -> None:
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else seed
        self.policy = policy_for(scenario, settings, guards, retrying)
        self._jitter_key = stream_key(self.seed, JITTER)
        self.answers = Answers(scenario.answers)  # what attempts return instead of raising
        self.decider = decider_for(self.policy, engine, self._clock, self._jitter_key, self.answers)
        self.progress = progress
        self.kernel = Kernel()
        self.at = self.kernel.at
        self.cancel = self.kernel.cancel
        self.plan = compile_faults(scenario.faults, self.seed)
        self.phases = AttemptPhases(self.plan, service_latency(scenario.service), self.seed)
        # A lone gate (one outage, say) is asked directly; several, through the plan's loop.
        gates = self.plan.gates
        self._gate = None if not gates else gates[0] if len(gates) == 1 else self.plan.gate
        self.server = make_server(self, scenario.service)
        self.timeout = client_timeout(scenario, self.policy)  # or the policy's attempt_timeout
        # Pools and the network, when the scenario models them; None: the direct path.
        self.connections = Connections(scenario, self.seed) if scenario.models_connections else None
        self._holding: dict[int, Pool] = {}  # attempt -> the pool whose connection it holds
        self._server_key = stream_key(self.seed, SERVER_DRAW)
        # This run's guard state (per client, or fleet-wide) and what the guards did.
        self._guard_events: list[GuardEvent] = []
        self._guard_states = GuardStates([self._guard_events.append])
        # An attempt's client is its call's (filled in at the end); a wait for a pooled
        # connection is only ever written when pools are modelled.
        unwritten = ("client",) if self.connections is not None else ("client", "pool_wait")
        self.attempts = rec.AttemptColumns(left_out=unwritten)
        self.calls = rec.CallColumns(left_out=("call",))  # a call's row number: records_of's
        self._ended = 0  # calls that have ended, for progress
        self._expected: int | None = None  # calls the run will make, when known up front
        self._pending_done: float | None = None  # completion time a server announced, if any
        # The retry push is the hottest: one bound method for all of them, not one each. The
        # fast path attempts again without asking (its decider always would), and with no
        # guards there is no pacer to ask either: straight to the send. A call's first attempt
        # goes the same way (the reference decider asks iter() first, as for a retry).
        self._retry_later = self._retry
        self._decide = self.decider.decide
        self._call_class = Call if self.decider.name == "fast" else ReferenceCall
        if self.decider.name == "fast":
            self._retry_later = self._attempt if self.policy.guards else self._send

    @property
    def now(self) -> float:
        """The virtual clock."""
        return self.kernel.now

    def is_open(self, a: int) -> bool:
        """Whether the client of attempt ``a`` is still waiting for an answer."""
        return self.attempts.outcome[a] == OPEN

    def round_trip(self, call: Call, a: int) -> float:
        """Attempt ``a``'s read-then-write window on the network: its read's answer travelling
        back and its write travelling out (``[network] draws`` says whether they are drawn
        with the attempt's other legs or each on its own)."""
        connections = self.connections
        if connections is None:
            return 0.0
        return connections.read_to_write(call.key, self.attempts.attempt[a])

    def server_unit(self, call: Call, a: int) -> float:
        """A server model's own uniform draw for attempt ``a``."""
        return unit(self._server_key, call.key, self.attempts.attempt[a])

    def answer_code(self, value: int | str) -> int:
        """The record code of an answer a server returns (``reject_answer``)."""
        return self.answers.code(value)

    # -- the run ------------------------------------------------------------------------------

    def run(self) -> RunResult:
        """Run to the end (or to a limit) and return the records; call once per Engine."""
        scenario = self.scenario
        check_memory(scenario, self.policy.max_attempts)
        times, clients_in_order = first_calls(scenario, self.seed)
        # Typed arrays, not lists: a million arrivals are 16 MB, not 70 MB of Python objects.
        self._firsts = array("d", times.tobytes())
        self._first_clients = array("q", clients_in_order.astype(np.int64).tobytes())
        self._open_loop = isinstance(scenario.clients.arrival, Poisson)
        self._calls_per_client = follow_up_calls(scenario)
        self._think_time, self._duration = scenario.clients.think_time, scenario.duration
        if self._open_loop:
            self._expected = len(self._firsts)  # every arrival is drawn already: exact
        elif math.isfinite(self._calls_per_client):
            self._expected = round(expected_calls(scenario))  # at most this many
        if self._expected is not None:  # room for them all now: no growing, no unused room
            self.calls.grow(max(0, self._expected - self.calls.capacity))
        # Capacity windows first: a request arriving exactly at a window's start sees it.
        for start, end, slots in self.plan.capacity_windows:
            self.at(start, self.server.capacity_change, slots)
            if math.isfinite(end):
                self.at(end, self.server.capacity_change, None)
        if self._firsts:
            self.at(self._firsts[0], self._arrive, 0)
        wall = time.perf_counter()
        outer_stream = current_stream.set(Stream(self._jitter_key, 0))
        kernel = self.kernel
        with quiet_collector(self.decider.makes_cycles):
            try:
                with tenacity_virtual_time(lambda: kernel.now), routed_jitter():
                    self.decider.start()
                    max_events, events_limit = event_limit(scenario)
                    self._attempt_limit = attempt_limit(scenario)
                    events, stopped = kernel.run(
                        time_limit(scenario),
                        max_events,
                        None if self.progress is None else self._report,
                        events_limit,
                    )
            finally:
                current_stream.reset(outer_stream)  # leave the caller's context as it was
            give_back_memory(events)
            wall = time.perf_counter() - wall
            if self.progress is not None:
                made = self.calls.size
                self.progress(made, made)  # all the work there was, whatever was estimated
            return self._result(events, wall, stopped)

    def _report(self) -> None:
        """Tell ``progress`` how many calls have ended out of how many are expected.

        A closed loop without ``calls_per_client`` makes as many calls as fit in the duration:
        the calls started so far, extrapolated over the duration, estimate it.
        """
        assert self.progress is not None
        ended, total = self._ended, self._expected
        if total is None:
            started, now, duration = self.calls.size, self.kernel.now, self.scenario.duration
            total = started if now >= duration or now <= 0 else round(started * duration / now)
        self.progress(ended, max(total, ended))

    # -- calls --------------------------------------------------------------------------------

    def _arrive(self, i: int) -> None:
        """Start arrival ``i`` and every later one due at the same instant (a burst: one event)."""
        count = self.scenario.clients.count
        firsts, now, total = self._firsts, self.now, len(self._firsts)
        while True:
            if self._open_loop:
                self._new_call(i % count, i // count)
            else:
                self._new_call(self._first_clients[i], 0)
            i += 1
            if i >= total:  # the arrivals are all in: their times are done with
                self._firsts, self._first_clients = array("d"), array("q")
                return
            if firsts[i] != now:
                self.at(float(firsts[i]), self._arrive, i)
                return

    def _new_call(self, client: int, index: int) -> None:
        calls = self.calls
        call_id = calls.size
        if call_id == calls.capacity:
            calls.grow()
        calls.size = call_id + 1
        calls.client[call_id] = client
        calls.index[call_id] = index
        calls.start[call_id] = self.kernel.now
        call = self._call_class(call_id, client, index)
        chain = None
        if self.policy.guards:
            call.guards = chain = self._guard_states.chain(self.policy.guards, client)
        self.decider.begin(call, chain)
        self._retry_later(call)  # a first attempt goes the way every later one goes

    def _next_call(self, item: tuple[int, int]) -> None:
        self._new_call(*item)

    def _retry(self, call: Call) -> None:
        """The call's wait is over: its next attempt goes now."""
        if self.decider.again(call):
            self._attempt(call)

    def _end_call(self, call: Call, outcome: int, error: int) -> None:
        calls, call_id = self.calls, call.id
        calls.end[call_id] = self.kernel.now
        calls.outcome[call_id] = outcome
        calls.error[call_id] = error
        calls.attempts[call_id] = call.attempt_number  # its latest attempt's
        self._ended += 1
        self.decider.end(call)  # the records keep what matters
        limit = self._calls_per_client
        if limit == 0 or call.index + 1 >= limit:
            return
        start = self.kernel.now + self._think_time
        if start < self._duration:
            self.at(start, self._next_call, (call.client, call.index + 1))

    # -- attempts -----------------------------------------------------------------------------

    def _clock(self) -> float:
        return self.kernel.now

    def _attempt(self, call: Call) -> None:
        """Send the call's next attempt now, or when a send-rate limiter lets it go."""
        guards = call.guards
        if guards is not None and guards.pacers:
            delay = guards.pace(self.now)
            if delay > 0:
                self.at(self.now + delay, self._send, call)
                return
        self._send(call)

    def _send(self, call: Call) -> None:
        """Take one attempt through its phases (see :mod:`retrysim.sim.attempt`)."""
        t = self.kernel.now
        n = call.attempt_number
        columns = self.attempts
        a = columns.size
        if a >= self._attempt_limit:  # a retry storm: the attempts budget (sim/limits.py)
            self.kernel.halt(attempts_stopped(a))
            return
        if a == columns.capacity:
            columns.grow()
        columns.size = a + 1
        columns.call[a] = call.id
        columns.attempt[a] = n
        columns.start[a] = t
        key = call.key
        if call.guards is not None:
            refusal = call.guards.before_attempt(t, n)
            if refusal is not None:
                self._hear(call, a, code_of(refusal), refusal=refusal)
                return
        if self.connections is not None:
            self._send_connected(call, a)
            return
        gate = self._gate  # phases.door, written out
        verdict = PASS if gate is None else gate(t, key, n)
        if verdict > 0:
            plan = self.plan
            self._hear(call, a, verdict, plan.hint(t, key, n) if plan.hinted else None)
            return
        phases = self.phases
        if verdict == BLACKHOLE:
            if self.timeout is not None:
                self.at(t + self.timeout, self._timed_out, (call, a))
            return
        service_time = phases.service_time(t, key, n)
        reset = phases.reset(t, key, n)
        if reset is not None:
            self.at(t + reset[0] * service_time, self._reset, (call, a, reset[1]))
        self._pending_done = None
        self.server.submit(call, a, t, service_time)
        timeout = self.timeout
        if timeout is not None and columns.outcome[a] == OPEN:
            done = self._pending_done
            if done is None or done > t + timeout:
                self.at(t + timeout, self._timed_out, (call, a))

    def schedule_done(self, t: float, call: Call, a: int, code: int) -> None:
        """A server that knows when it will finish says so here (saves a timeout event)."""
        self._pending_done = t
        self.at(t, self._done_event, (call, a, code))

    def _done_event(self, item: tuple[Call, int, int]) -> None:
        self.server_done(*item)

    def server_done(self, call: Call, a: int, code: int, hint: float | None = None) -> None:
        """The server finished attempt ``a``'s request with ``code`` (0 = the work was done)."""
        attempts = self.attempts
        if code == 0:
            attempts.executed[a] = 1
            self.calls.executions[call.id] += 1
        if attempts.outcome[a] == OPEN:
            self.respond(call, a, code, hint)

    def _timed_out(self, item: tuple[Call, int]) -> None:
        call, a = item
        if self.attempts.outcome[a] == OPEN:
            self._hear(call, a, TIMEOUT, outcome=rec.TIMED_OUT)
            self.server.abandon(call, a)  # a server that can cancel the work may do so now

    def _reset(self, item: tuple[Call, int, int]) -> None:
        call, a, code = item
        if self.attempts.outcome[a] == OPEN:
            self._hear(call, a, code)

    def respond(self, call: Call, a: int, code: int, hint: float | None = None) -> None:
        """The server answers attempt ``a`` now; the client hears it after the trip back."""
        connections = self.connections
        if connections is not None:
            back = connections.back(call.key, self.attempts.attempt[a])
            if back > 0:
                self.at(self.now + back, self._delivered, (call, a, code, hint))
                return
        self._hear(call, a, code, hint)

    def _delivered(self, item: tuple[Call, int, int, float | None]) -> None:
        call, a, code, hint = item
        if self.attempts.outcome[a] == OPEN:
            self._hear(call, a, code, hint)

    def _hear(
        self,
        call: Call,
        a: int,
        code: int,
        hint: float | None = None,
        outcome: int | None = None,
        refusal: BaseException | None = None,
    ) -> None:
        """The client hears the answer to attempt ``a`` now (or its guards' ``refusal``, sent
        nowhere), the attempt is recorded, and the decider says what the call does next."""
        kernel = self.kernel
        now = kernel.now
        error: BaseException | None = refusal
        if refusal is None:
            if self._holding:
                self._release(a, code)
            if call.guards is not None:  # guards read the error; otherwise the decider makes it
                # (an answer is a returned value, no error: guards see it as the decorators do)
                error = None if code == 0 or code >= ANSWER_BASE else make_error(code, hint)
                call.guards.after_outcome(now, error)
        attempts = self.attempts
        attempts.end[a] = now
        attempts.error[a] = code
        attempts.outcome[a] = OK if code == 0 else (outcome or FAILED)
        wait = self._decide(call, code, hint, error, now)
        if wait >= 0:
            if code == 0:  # a served request's None, which the policy's retry rejected
                attempts.error[a], attempts.outcome[a] = self.answers.none_code, FAILED
            attempts.wait[a] = wait
            heappush(kernel.heap, (now + wait, kernel.seq, self._retry_later, call))
            kernel.seq += 1
        elif wait == SUCCEEDED_NOW:
            if code >= ANSWER_BASE:  # an answer the policy took as the call's result
                attempts.outcome[a] = OK
            self._end_call(call, rec.SUCCEEDED, 0)
        else:
            assert wait == GAVE_UP_NOW
            if code == 0:  # attempts ran out on a None the policy's retry rejects
                attempts.error[a] = code = self.answers.none_code
                attempts.outcome[a] = FAILED
            self._end_call(call, rec.GAVE_UP, code)

    # -- over connections (a pool, a network) -------------------------------------------------
    #
    # send -> [the process's CPU] -> [wait for a pooled connection] -> [connect] -> request out
    # -> server -> answer back (each leg half an rtt draw: the attempt's one, or its own with
    # [network] draws = "per_leg"). The client's timeout counts from the send. What an error
    # does to the connection is its family's (retrysim.sim.connections.WIRE).

    def _send_connected(self, call: Call, a: int) -> None:
        assert self.connections is not None
        if self.timeout is not None:
            self.at(self.now + self.timeout, self._timeout_due, (call, a, False))
        sent = self.connections.sent_at(call.client, self.now, call.key, self.attempts.attempt[a])
        if sent is None:
            self._to_pool((call, a))
        else:  # its process's CPU had the work to do first
            self.at(sent, self._to_pool, (call, a))

    def _to_pool(self, item: tuple[Call, int]) -> None:
        call, a = item
        if self.attempts.outcome[a] != OPEN or self.connections is None:
            return  # it timed out on the CPU
        pool = self.connections.pool_of(call.client)
        # None: it queues, first come first served, with the time it came to the pool
        got = self.connections.take_in_turn(pool, (call, a, self.now))
        if got is not None:
            self._connection(call, a, pool, got, self.now)

    def _connection(self, call: Call, a: int, pool: Pool, got: int, arrived: float) -> None:
        """Attempt ``a``, at ``pool`` since ``arrived``, has a connection from it now: open, or
        to be opened first. (One that timed out in the queue never had one: no pool wait.)"""
        connections = self.connections
        assert connections is not None
        t = self.kernel.now
        self.attempts.pool_wait[a] = t - arrived
        self._holding[a] = pool
        n = self.attempts.attempt[a]
        verdict = self.phases.door(t, call.key, n)  # faults judge the attempt as it is sent
        hint = self.phases.hint(t, call.key, n) if verdict > 0 else None  # its Retry-After
        if got == CONNECTION_OPEN:
            self._transmit((call, a, verdict, hint))
            return
        stats = connections.stats
        stats.connects += 1
        seconds = connections.connect_time(call.client, t, call.key, n)
        limit = connections.connect_timeout
        if limit is not None and (verdict == BLACKHOLE or seconds > limit):
            self.at(t + limit, self._connect_timed_out, (call, a))
        elif verdict in FAILS_CONNECT:  # refused: the handshake's answer says so
            stats.connect_failures += 1
            self.at(t + seconds, self._answer_if_open, (call, a, verdict, hint))
        elif verdict != BLACKHOLE:  # a black hole never answers the handshake
            self.at(t + seconds, self._transmit, (call, a, verdict, hint))

    def _transmit(self, item: tuple[Call, int, int, float | None]) -> None:
        """Send the request over an open connection; ``verdict`` is what the faults decided
        (and ``hint`` the Retry-After its error carries)."""
        call, a, verdict, hint = item
        if self.attempts.outcome[a] != OPEN:
            return  # the client gave up while connecting
        connections, n = self.connections, self.attempts.attempt[a]
        assert connections is not None
        if verdict > 0:  # the error comes back after the round trip
            trip = connections.round_trip(call.key, n)
            self.at(self.now + trip, self._answer_if_open, (call, a, verdict, hint))
        elif verdict != BLACKHOLE:
            self.at(self.now + connections.out(call.key, n), self._reach_server, (call, a))

    def _reach_server(self, item: tuple[Call, int]) -> None:
        call, a = item
        t, n, phases = self.now, self.attempts.attempt[a], self.phases
        service_time = phases.service_time(t, call.key, n)
        reset = phases.reset(t, call.key, n)
        if reset is not None:  # the reset, then its news travelling back to the client
            assert self.connections is not None
            back = self.connections.back(call.key, n)
            self.at(t + reset[0] * service_time + back, self._reset, (call, a, reset[1]))
        self.server.submit(call, a, t, service_time)

    def _answer_if_open(self, item: tuple[Call, int, int, float | None]) -> None:
        call, a, code, hint = item
        if self.attempts.outcome[a] == OPEN:
            self._hear(call, a, code, hint)

    def _connect_timed_out(self, item: tuple[Call, int]) -> None:
        call, a = item
        if self.attempts.outcome[a] == OPEN:
            assert self.connections is not None
            self.connections.stats.connect_timeouts += 1
            self._hear(call, a, TIMEOUT)  # the client library's error, not the caller's timeout

    def _timeout_due(self, item: tuple[Call, int, bool]) -> None:
        """The client's timeout; an answer due at the same instant is heard first."""
        call, a, again = item
        heap = self.kernel.heap
        if not again and heap and heap[0][0] == self.now:
            self.at(self.now, self._timeout_due, (call, a, True))
            return
        self._timed_out((call, a))

    def _release(self, a: int, code: int) -> None:
        """Attempt ``a`` is answered: its connection goes back, to the first attempt waiting."""
        pool = self._holding.pop(a, None)
        if pool is None:
            return
        pool.give_back(code not in CLOSES_CONNECTION)
        outcomes = self.attempts.outcome
        while pool.waiting:
            call, waiting, arrived = pool.waiting[0]
            if outcomes[waiting] != OPEN:  # it timed out in the queue
                pool.waiting.popleft()
                continue
            got = pool.take()
            if got is None:
                return
            pool.waiting.popleft()
            self._connection(call, waiting, pool, got, arrived)

    # -- results ------------------------------------------------------------------------------

    def _result(self, events: int, wall: float, stopped: str | None) -> RunResult:
        del self._firsts, self._first_clients  # the arrivals, done with: room for the records
        attempts, calls = rec.records_of(self.attempts, self.calls)
        result = RunResult(
            scenario=self.scenario,
            seed=self.seed,
            policy=self.policy.describe(),
            attempts=attempts,
            calls=calls,
            end_time=self.now,
            events=events,
            wall_time=wall,
            capacity=self.server.capacity,
            stopped=stopped,
            guard_events=self._guard_events,
            connections=None if self.connections is None else self.connections.stats.as_dict(),
            engine=self.decider.name,
            engine_note=self.decider.why,
            error_names=self.answers.names,
        )
        from retrysim.sim.invariants import assert_invariants

        assert_invariants(result)
        return result


def simulate(
    scenario: Scenario,
    seed: int | None = None,
    settings: RetrySettings | None = None,
    progress: Progress | None = None,
    guards: Sequence[GuardSpec] = (),
    retrying: Any = None,
    engine: str = "auto",
) -> RunResult:
    """Run ``scenario`` once (``seed`` defaults to the scenario's) and return its records.

    ``guards`` are attempt guards (breakers, budgets...) declared through the Python API; each
    keeps its state per simulated client or fleet-wide, as its ``GuardSpec`` declares.
    ``retrying`` simulates your own tenacity policy instead of the scenario's (a ``Retrying``,
    an ``AsyncRetrying`` or a function decorated with ``@tenacity.retry``): its own stop, wait
    and retry are stepped (:mod:`retrysim.sim.foreign`).
    ``progress(done, total)`` is called every few thousand events with the calls ended so far
    and the calls expected, and once at the end with both equal to the calls made.
    ``engine`` is ``"auto"`` (the fast path whenever the policy's strategies allow it),
    ``"fast"`` (refused with :class:`~retrysim.sim.decide.EngineChoiceError` when they do not)
    or ``"reference"`` (tenacity's own ``iter()``); the records are identical either way.
    """
    return Engine(scenario, seed, settings, progress, guards, retrying, engine).run()
