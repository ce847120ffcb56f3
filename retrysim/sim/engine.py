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
from collections.abc import Callable, Mapping, Sequence
from heapq import heappush
from typing import Any

import numpy as np

from retrysim.model.scenario import Poisson, Scenario
from retrysim.model.tier_keys import check_callers
from retrysim.retry.guards import GuardEvent, GuardSpec, GuardStates
from retrysim.retry.hedge import hedging_of
from retrysim.retry.settings import RetrySettings
from retrysim.sim import records as rec
from retrysim.sim.arrivals import expected_calls, first_calls, follow_up_calls, time_limit
from retrysim.sim.attempt import BLACKHOLE, PASS
from retrysim.sim.call import CALL_KEY_SHIFT as CALL_KEY_SHIFT
from retrysim.sim.call import Call, ReferenceCall
from retrysim.sim.clock import current_stream, routed_jitter, tenacity_virtual_time
from retrysim.sim.connected import ConnectedPath
from retrysim.sim.connections import Connections, Pool
from retrysim.sim.decide import GAVE_UP_NOW, SUCCEEDED_NOW, decider_for
from retrysim.sim.failures import ANSWER_BASE, TIMEOUT, Answers, code_of, make_error
from retrysim.sim.graph import TierLinks
from retrysim.sim.hedging import Hedges
from retrysim.sim.kernel import Kernel, give_back_memory, quiet_collector
from retrysim.sim.limits import ScenarioTooLargeError as ScenarioTooLargeError
from retrysim.sim.limits import attempt_limit, attempts_stopped, check_memory, event_limit
from retrysim.sim.policy import client_timeout
from retrysim.sim.policy import policy_for as policy_for
from retrysim.sim.result import RunResult as RunResult
from retrysim.sim.routing import ReplicaRouting
from retrysim.sim.streams import JITTER, SERVER_DRAW, Stream, stream_key, unit
from retrysim.sim.tiers import tier_seed, tier_view

OPEN, OK, FAILED = rec.OPEN, rec.OK, rec.FAILED
#: ``progress(done, total)``: calls ended so far, calls the run is expected to make.
Progress = Callable[[int, int], None]
NAN = math.nan


class Engine(TierLinks, ReplicaRouting, ConnectedPath):
    """One run of one scenario with one seed. Build, then call :meth:`run` once.

    The engine is the client side of the model on a scheduling :class:`Kernel`: it starts calls,
    steps tenacity, takes each attempt through its phases (:mod:`retrysim.sim.attempt`) and
    hands what reaches the server to a server model, which answers through the small
    ``ServerHost`` interface (``now``, ``at``, ``respond``, ``schedule_done``, ``server_done``,
    ``is_open``).

    A scenario with tiers runs as a chain of engines on one kernel, one per tier
    (:mod:`retrysim.sim.tiers`): the top one is built by the caller and builds the ones below.
    A request a tier has served goes down as a call of the engine ``below`` (:meth:`call_down`),
    and the end of that call answers it (:meth:`_answer_up`). A service with replicas sends
    each attempt to the replica its :class:`~retrysim.sim.balance.Balancer` picks, each
    replica with its own server and its own faults (:meth:`_route`).
    """

    # Slots: read on every attempt, 30-odd attributes in a __dict__ cost 3% of a fast run.
    # fmt: off
    __slots__ = (
        "_above", "_attempt_limit", "_call_class", "_calls_per_client", "_deadlines", "_decide",
        "_duration", "_ended", "_expected", "_first_clients", "_firsts", "_gate", "_gates",
        "_guard_events", "_guard_states", "_hedges", "_holding", "_issued", "_jitter_key",
        "_open_loop", "_parent_rows", "_parents", "_pending_done", "_phases", "_plans", "_replicas",
        "_retry_later", "_server_key", "_servers", "_think_time", "_tried", "answers", "at",
        "attempts", "below", "calls", "cancel", "connections", "decider", "full", "kernel", "level",
        "phases", "plan", "policy", "progress", "scenario", "seed", "server", "timeout",
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
        *,
        above: Engine | None = None,
        retryings: Mapping[str, Any] | None = None,
    ) -> None:
        # A tier's engine below another (``above``) runs that tier's view of the scenario
        # with streams of its own; the top engine is the scenario's first (or only) tier.
        self._above = above
        self.level = level = 0 if above is None else above.level + 1
        self.full = scenario
        self.scenario = view = tier_view(scenario, level)
        self.seed = tier_seed(scenario.seed if seed is None else seed, level)
        if retryings and above is not None:  # the user's policy for the calls of the tier above
            retrying = retryings.get(scenario.tier_names[level - 1])
        self.policy = policy_for(view, settings, guards, retrying)
        self._jitter_key = stream_key(self.seed, JITTER)
        # What attempts return instead of raising: one table for every tier, so an answer
        # passed up a tier keeps its code.
        self.answers: Answers = Answers(scenario.answers) if above is None else above.answers
        self.decider = decider_for(self.policy, engine, self._clock, self._jitter_key, self.answers)
        self.progress = progress
        self.kernel = Kernel() if above is None else above.kernel
        self.at = self.kernel.at
        self.cancel = self.kernel.cancel
        self._build_replicas(view)
        self.timeout = client_timeout(view, self.policy)  # or the policy's attempt_timeout
        # Pools and the network, when the scenario models them; None: the direct path.
        self.connections = (
            Connections(view, self.seed, self.kernel) if view.models_connections else None
        )
        self._holding: dict[int, Pool] = {}  # attempt -> the pool whose connection it holds
        self._server_key = stream_key(self.seed, SERVER_DRAW)
        # This run's guard state (per client, or fleet-wide) and what the guards did.
        self._guard_events: list[GuardEvent] = []
        self._guard_states = GuardStates([self._guard_events.append])
        # An attempt's client is its call's (filled in at the end); a wait for a pooled
        # connection is only ever written when pools are modelled.
        unwritten: tuple[str, ...] = (
            ("client",) if self.connections is not None else ("client", "pool_wait")
        )
        if self._replicas is None:
            unwritten += ("replica",)
        hedging = hedging_of(self.policy)
        if hedging is None:
            unwritten += ("hedge",)
        self.attempts = rec.AttemptColumns(left_out=unwritten)
        self._hedges = None if hedging is None else Hedges(self, hedging)
        self.calls = rec.CallColumns(left_out=("call",))  # a call's row number: records_of's
        self._ended = 0  # calls that have ended, for progress
        self._expected: int | None = None  # calls the run will make, when known up front
        self._pending_done: float | None = None  # completion time a server announced, if any
        self._attempt_limit = math.inf  # the attempts budget: set when the run starts
        # The retry push is the hottest: one bound method for all of them, not one each. The
        # fast path attempts again without asking (its decider always would), and with no
        # guards there is no pacer to ask either: straight to the send. A call's first attempt
        # goes the same way (the reference decider asks iter() first, as for a retry).
        self._retry_later = self._retry
        self._decide = self.decider.decide
        self._call_class = Call if self.decider.name == "fast" else ReferenceCall
        if self.decider.name == "fast":
            self._retry_later = self._attempt if self.policy.guards else self._send
        self._build_tiers(scenario, seed, settings, engine, retryings)

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
        return connections.read_to_write(call.key, self._draw_index(a))

    def server_unit(self, call: Call, a: int) -> float:
        """A server model's own uniform draw for attempt ``a``."""
        return unit(self._server_key, call.key, self._draw_index(a))

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
        chain = self.chain()
        for engine in chain:
            engine._schedule_capacity()
        if self._firsts:
            self.at(self._firsts[0], self._arrive, 0)
        wall = time.perf_counter()
        outer_stream = current_stream.set(Stream(self._jitter_key, 0))
        kernel = self.kernel
        with quiet_collector(any(engine.decider.makes_cycles for engine in chain)):
            try:
                with tenacity_virtual_time(lambda: kernel.now), routed_jitter():
                    for engine in chain:
                        engine.decider.start()
                        engine._attempt_limit = attempt_limit(scenario)  # each tier's
                    max_events, events_limit = event_limit(scenario)
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

    def _new_call(self, client: int, index: int, parent: tuple[Call, int] | None = None) -> None:
        """Call ``index`` of ``client`` starts now (``parent``: the request above it serves,
        in a tier below); its first attempt goes the way every later one goes."""
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
        if parent is not None:
            self._link_down(call, *parent)
        self._retry_later(call)

    def _next_call(self, item: tuple[int, int]) -> None:
        self._new_call(*item)

    def _retry(self, call: Call) -> None:
        """The call's wait is over: its next attempt goes now."""
        if self.decider.again(call):
            self._attempt(call)

    def _end_call(self, call: Call, outcome: int, error: int, answer: int = 0) -> None:
        """The call ends with ``outcome`` (``error``: what it gave up with; ``answer``: the
        answer it took as its result, if any)."""
        calls, call_id = self.calls, call.id
        calls.end[call_id] = self.kernel.now
        calls.outcome[call_id] = outcome
        calls.error[call_id] = error
        calls.attempts[call_id] = call.attempt_number  # its latest attempt's
        self._ended += 1
        self.decider.end(call)  # the records keep what matters
        if self._tried is not None:
            self._tried.pop(call_id, None)
        if self._hedges is not None:
            self._hedges.forget(call)
        if self._above is not None:
            self._answer_up(call, error or answer)
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

    def _send(
        self, call: Call, a: int = -1, t: float = 0.0, n: int = 0, timeout: float | None = None
    ) -> None:
        """Take one attempt through its phases (see :mod:`retrysim.sim.attempt`).

        A hedge (:mod:`retrysim.sim.hedging`) comes with its row ``a`` made already, sent at
        ``t``, its draws keyed ``n`` and its ``timeout``: it starts at the dispatch. One method
        for both: a call more per attempt is 3% of a fast run.
        """
        columns = self.attempts
        if a < 0:
            t = self.kernel.now
            timeout = self.timeout
            if self._deadlines is not None:  # the caller's deadline, passed down, bounds it
                timeout = self._within_deadline(call, t, timeout)
                if timeout is not None and timeout <= 0:  # its caller has given up: no attempt
                    call.attempt_number -= 1  # (none was sent: gRPC's DEADLINE_EXCEEDED)
                    self._end_call(call, rec.GAVE_UP, TIMEOUT)
                    return
            n = call.attempt_number
            a = columns.size  # a new row (as _new_row makes a hedge's), written out
            if a >= self._attempt_limit:  # a retry storm: the attempts budget (sim/limits.py)
                self.kernel.halt(attempts_stopped(a))
                return
            if a == columns.capacity:
                columns.grow()
            columns.size = a + 1
            columns.call[a] = call.id
            columns.attempt[a] = n
            columns.start[a] = t
            if call.guards is not None:
                refusal = call.guards.before_attempt(t, n)
                if refusal is not None:
                    self._hear(call, a, code_of(refusal), refusal=refusal)
                    return
            if self._hedges is not None:
                self._hedges.open_group(call, a, t)
        # the dispatch: to its replica, over connections or straight to the door
        if self._replicas is not None:
            self._route(call, a)
        if self.connections is not None:
            self._send_connected(call, a)
            return
        key = call.key
        gate = self._gate  # phases.door, written out
        verdict = PASS if gate is None else gate(t, key, n)
        if verdict > 0:
            plan = self.plan
            self._hear(call, a, verdict, plan.hint(t, key, n) if plan.hinted else None)
            return
        phases = self.phases
        if verdict == BLACKHOLE:
            if timeout is not None:
                self.at(t + timeout, self._timed_out, (call, a))
            return
        service_time = phases.service_time(t, key, n)
        reset = phases.reset(t, key, n)
        if reset is not None:
            self.at(t + reset[0] * service_time, self._reset, (call, a, reset[1]))
        self._pending_done = None
        self.server.submit(call, a, t, service_time)
        if timeout is not None and columns.outcome[a] == OPEN:
            done = self._pending_done
            if done is None or done > t + timeout:
                self.at(t + timeout, self._timed_out, (call, a))

    def _new_row(self, call: Call, n: int, t: float) -> int:
        """A new attempt row: attempt ``n`` of ``call``, sent at ``t`` (a hedge's)."""
        columns = self.attempts
        a = columns.size
        if a == columns.capacity:
            columns.grow()
        columns.size = a + 1
        columns.call[a] = call.id
        columns.attempt[a] = n
        columns.start[a] = t
        return a

    def schedule_done(self, t: float, call: Call, a: int, code: int) -> None:
        """A server that knows when it will finish says so here (saves a timeout event, unless
        the request then goes on to the tier below)."""
        if self.below is None:
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
            if self.below is not None:  # this tier's work is done: its call down goes now
                self.below.call_down(call, a)
                return
        if attempts.outcome[a] == OPEN:
            self.respond(call, a, code, hint)

    def _timed_out(self, item: tuple[Call, int]) -> None:
        call, a = item
        if self.attempts.outcome[a] == OPEN:
            self._hear(call, a, TIMEOUT, outcome=rec.TIMED_OUT)
            # a server that can cancel the work may do so now
            self._servers[self.attempts.replica[a] if self._replicas else 0].abandon(call, a)

    def _reset(self, item: tuple[Call, int, int]) -> None:
        call, a, code = item
        if self.attempts.outcome[a] == OPEN:
            self._hear(call, a, code)

    def respond(self, call: Call, a: int, code: int, hint: float | None = None) -> None:
        """The server answers attempt ``a`` now; the client hears it after the trip back."""
        connections = self.connections
        if connections is not None:
            back = connections.back(call.key, self._draw_index(a))
            if back > 0:
                self.at(self.now + back, self._delivered, (call, a, code, hint))
                return
        if self.attempts.outcome[a] == OPEN:  # a refusal of a request its client gave up on
            self._hear(call, a, code, hint)  # (it timed out, or its hedge won) is heard by no one

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
        nowhere), the attempt is recorded, and the decider says what the call does next.
        A hedged attempt's send is only recorded while its siblings may still answer."""
        hedges = self._hedges
        if hedges is not None and refusal is None and not hedges.settle(call, a, code, outcome):
            return
        kernel = self.kernel
        now = kernel.now
        error: BaseException | None = refusal
        if refusal is None:
            if self._holding:
                self._release(a, code)
            if self._replicas is not None:
                self._replicas.answered(self.attempts.replica[a])
            if call.guards is not None:  # guards read the error; otherwise the decider makes it
                # (an answer is a returned value, no error: guards see it as the decorators do)
                error = None if code == 0 or code >= ANSWER_BASE else make_error(code, hint)
                call.guards.after_outcome(now, error)
        attempts = self.attempts
        attempts.end[a] = now
        attempts.error[a] = code
        attempts.outcome[a] = OK if code == 0 else (outcome or FAILED)
        wait = self._decide(call, code, hint, error, now)
        if wait >= 0 and self._deadlines is not None and self._past_deadline(call, now + wait):
            if not self._past_deadline(call, now):  # (at it, the deadline cut the attempt)
                attempts.wait[a] = wait  # the wait it starts, which the deadline cuts short
            self._wait_for_deadline(call, a)
            return
        if wait >= 0:
            if code == 0:  # a served request's None, which the policy's retry rejected
                attempts.error[a], attempts.outcome[a] = self.answers.none_code, FAILED
            attempts.wait[a] = wait
            heappush(kernel.heap, (now + wait, kernel.seq, self._retry_later, call))
            kernel.seq += 1
        elif wait == SUCCEEDED_NOW:
            if code >= ANSWER_BASE:  # an answer the policy took as the call's result
                attempts.outcome[a] = OK
                self._end_call(call, rec.SUCCEEDED, 0, code)
            else:
                self._end_call(call, rec.SUCCEEDED, 0)
        else:
            assert wait == GAVE_UP_NOW
            if code == 0:  # attempts ran out on a None the policy's retry rejects
                attempts.error[a] = code = self.answers.none_code
                attempts.outcome[a] = FAILED
            self._end_call(call, rec.GAVE_UP, code)

    # -- results ------------------------------------------------------------------------------

    def _result(self, events: int, wall: float, stopped: str | None) -> RunResult:
        del self._firsts, self._first_clients  # the arrivals, done with: room for the records
        attempts, calls = rec.records_of(self.attempts, self.calls)
        result = RunResult(
            scenario=self.full,
            seed=self.seed,
            policy=self.policy.describe(),
            attempts=attempts,
            calls=calls,
            end_time=self.now,
            events=events,
            wall_time=wall,
            capacity=self.capacity,
            stopped=stopped,
            guard_events=self._guard_events,
            connections=None if self.connections is None else self.connections.stats.as_dict(),
            engine=self.decider.name,
            engine_note=self.decider.why,
            error_names=self.answers.names,
            tiers=self._tier_runs(attempts, calls),
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
    retryings: Mapping[str, Any] | None = None,
) -> RunResult:
    """Run ``scenario`` once (``seed`` defaults to the scenario's) and return its records.

    ``guards`` are attempt guards (breakers, budgets...) declared through the Python API; each
    keeps its state per simulated client or fleet-wide, as its ``GuardSpec`` declares.
    ``retrying`` simulates your own tenacity policy instead of the scenario's (a ``Retrying``,
    an ``AsyncRetrying`` or a function decorated with ``@tenacity.retry``): its own stop, wait
    and retry are stepped (:mod:`retrysim.sim.foreign`); ``retryings`` does so for a tier's
    calls (``{"gateway": Retrying(...)}``: tier gateway's calls to the next tier).
    ``progress(done, total)`` is called every few thousand events with the calls ended so far
    and the calls expected, and once at the end with both equal to the calls made.
    ``engine`` is ``"auto"`` (the native core when it models the run, else the fast path
    whenever the policy's strategies allow it: :mod:`retrysim.sim.native`), ``"native"`` or
    ``"fast"`` (each refused with :class:`~retrysim.sim.decide.EngineChoiceError` when it
    cannot run it) or ``"reference"`` (tenacity's own ``iter()``); the records are identical
    whichever runs.
    """
    if retryings:
        check_callers(scenario, retryings, "retryings")
    built = Engine(
        scenario, seed, settings, progress, guards, retrying, engine, retryings=retryings
    )
    if engine in ("auto", "native"):  # the compiled core, when it models the whole run
        from retrysim.sim import native

        return native.run(built, engine)
    return built.run()
