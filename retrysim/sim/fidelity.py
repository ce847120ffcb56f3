"""Fidelity mode: run a scenario through the real production decorators on a virtual-time loop.

Every client is an asyncio task calling a function decorated with ``retrysim.retry``'s own
decorator for the scenario's operation; the "server" is a coroutine that sleeps for the drawn
latency and raises the faults' errors. Nothing here steps tenacity by hand: tenacity's
``AsyncRetrying`` sleeps through the virtual loop. The records come out in the engine's format,
so the two can be compared call by call: that comparison is the proof that the engine simulates
what ships.

Supported: the ``ideal`` service, every fault kind but capacity loss (a fault's ``answer`` is
returned by the operation, as the engine hands it to tenacity), client timeouts, attempt
guards, and every arrival kind but Poisson. The client timeout (``clients.timeout``, the
policy's ``attempt_timeout`` or its setting: one timeout) is the decorator's own
``attempt_timeout`` here, ``asyncio.timeout`` around each attempt; a policy of your own has
none, so its requests time out by themselves. Shared-state servers (queue, occ, ...), the
network and connection pools are the engine's alone.

**Tiers** (``[tiers.NAME]``) run as one runner per tier, as the engine runs one engine per
tier: each tier's callers call through the real decorator built from that tier's policy, and
the server of a tier with a tier below (:mod:`retrysim.sim.fidelity_tiers`) is a task of its
own that spends the tier's service time and then makes the call below, awaited by the attempt
through ``asyncio.shield``: a caller that gives up leaves that work running, as a service
does. With ``propagate_deadline`` the call below runs under ``asyncio.timeout_at`` of the
caller's deadline (gRPC's: the request carries it), so the caller giving up cancels it there
and then. **Replicas** are picked by the engine's own
:class:`~retrysim.sim.balance.Balancer` on the same stream, each with its faults.

**Hedging** (``[policy.hedge]``) is the decorator's own (:mod:`retrysim.retry.hedge`): it
calls the operation once per send, each in a task of its own. A send is an attempt row here as
in the engine: the attempt number of its group, its index in the group (``hedge``), its own
draws (the engine's draw index) and a replica its siblings did not go to; a send cancelled by a
sibling's answer is ``CANCELLED``. A call's sends between two of tenacity's sleeps are one
group, and the send the policy heard (``last``) carries the wait.
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np
from tenacity import retry_if_exception_type

from retrysim.model.scenario import Ideal, Poisson, Scenario
from retrysim.model.tier_keys import check_callers
from retrysim.retry.decorators import OperationDecorator
from retrysim.retry.guards import AttemptGuard, GuardChain, GuardEvent, GuardSpec, GuardStates
from retrysim.retry.policy import RetryPolicy
from retrysim.retry.settings import RetrySettings, get_settings, use_settings
from retrysim.sim import records as rec
from retrysim.sim.aio import answer_after
from retrysim.sim.arrivals import first_calls, follow_up_calls, time_limit
from retrysim.sim.attempt import BLACKHOLE, AttemptPhases
from retrysim.sim.clock import current_stream, routed_jitter
from retrysim.sim.engine import CALL_KEY_SHIFT, policy_for
from retrysim.sim.failures import ANSWER_BASE, ERROR_CLASSES, TIMEOUT, Answers, code_of, make_error
from retrysim.sim.fidelity_tiers import Replicas, TierLink, tier_runs
from retrysim.sim.hedging import HEDGE_SHIFT
from retrysim.sim.policy import client_timeout
from retrysim.sim.result import RunResult
from retrysim.sim.streams import JITTER, Stream, stream_key
from retrysim.sim.tiers import tier_seed, tier_view


class _ServerError(Exception):
    """Carries an error code out of the fake server so the attempt can record it."""


class _ClientTimeoutError(Exception):
    """The client stopped waiting (its per-attempt timeout passed)."""


def run_with_decorators(
    scenario: Scenario,
    seed: int | None = None,
    settings: RetrySettings | None = None,
    guards: Sequence[GuardSpec] = (),
    retrying: Any = None,
    retryings: Mapping[str, Any] | None = None,
) -> RunResult:
    """Run ``scenario`` through ``retrysim.retry``'s real decorator on a virtual-time loop.

    ``guards`` go to the decorator as its ``guards`` option; each simulated client keeps its
    own guard state, as in the engine. ``retrying`` (your own tenacity policy, as for
    :func:`retrysim.simulate`) replaces the decorator: each call then runs under a tenacity
    ``AsyncRetrying`` with that policy's own stop, wait and retry; ``retryings`` does so for
    a tier's calls (``{"gateway": Retrying(...)}``: tier gateway's calls to the next tier).
    """
    from retrysim.sim.aio import run_virtual

    _check_supported(scenario)
    if retryings:
        check_callers(scenario, retryings, "retryings")
    seed = scenario.seed if seed is None else seed
    runner = _Runner(scenario, seed, settings, guards, retrying, retryings=retryings)
    previous = get_settings()
    use_settings(runner.settings)
    wall = time.perf_counter()
    try:
        with routed_jitter():
            run_virtual(runner.main())
    finally:
        use_settings(previous)
    return runner.result(time.perf_counter() - wall)


def _check_supported(scenario: Scenario) -> None:
    """Refuse what fidelity mode cannot run, naming it (each tier's service and faults)."""
    if isinstance(scenario.clients.arrival, Poisson):
        raise ValueError("fidelity mode does not run Poisson arrivals")
    if scenario.models_connections:
        raise ValueError("fidelity mode does not model connections (network, pools, client CPU)")
    for level, name in enumerate(scenario.tier_names or ("",)):
        view = tier_view(scenario, level)
        where = f" (tiers.{name})" if name else ""
        if not isinstance(view.service, Ideal):
            raise ValueError(f"fidelity mode runs the 'ideal' service only{where}")
        if any(f.kind == "capacity_loss" for f in view.faults):
            raise ValueError(f"fidelity mode does not run capacity_loss faults{where}")


class _RecordRefusals:
    """First in every call's guard chain: records attempts a later guard refused.

    A refused attempt never reaches the decorated function, which records every attempt that
    runs; the guard chain tells guards ahead of a refusal what happened, so this one sees it.
    """

    def __init__(self, runner: _Runner, client: int, index: int) -> None:
        self.runner = runner
        self.client = client
        self.index = index
        self.ran = False

    def before_attempt(self, now: float, attempt: int) -> BaseException | None:
        self.ran = False  # the decorated function sets it when the attempt gets that far
        return None

    def after_outcome(self, now: float, error: BaseException | None) -> None:
        if not self.ran and error is not None:
            self.runner.refused(self.client, self.index, now, error)


class _RunnerGuards(GuardStates):
    """This run's guard state, with the refusal recorder put first in each call's chain."""

    def __init__(self, runner: _Runner) -> None:
        super().__init__([runner.guard_events.append])
        self.runner = runner

    def chain(
        self,
        specs: Sequence[GuardSpec],
        client: Hashable = None,
        extra: Sequence[AttemptGuard] = (),
    ) -> GuardChain:
        assert isinstance(client, tuple)
        recorder = _RecordRefusals(self.runner, *client)
        self.runner.recorders[client] = recorder
        inner = super().chain(specs, client[0], extra)
        return GuardChain([recorder, *inner.guards])


class _Runner:
    """One tier's callers and what they call (the scenario's clients and service, without
    tiers). With tiers, the top runner is built by the caller and builds the ones below, as
    the engine does (``above``: the runner of the tier above)."""

    level: int
    scenario: Scenario
    settings: RetrySettings
    policy: RetryPolicy
    answers: Answers
    timeout: float | None
    tiers: TierLink

    def __init__(
        self,
        scenario: Scenario,
        seed: int,
        settings: RetrySettings | None,
        guards: Sequence[GuardSpec],
        retrying: Any = None,
        *,
        above: _Runner | None = None,
        retryings: Mapping[str, Any] | None = None,
    ) -> None:
        self.level = 0 if above is None else above.level + 1
        if retryings and above is not None:  # the user's policy for the calls of the tier above
            retrying = retryings.get(scenario.tier_names[self.level - 1])
        self.scenario = view = tier_view(scenario, self.level)
        self.seed = tier_seed(seed, self.level)
        self.settings = settings if settings is not None else RetrySettings.defaults()
        self.policy = policy_for(view, self.settings, guards, retrying)
        self.foreign = retrying is not None
        self.replicas = Replicas(view, self.seed)
        self.jitter_key = stream_key(self.seed, JITTER)
        # one table of answers for every tier, so an answer passed up keeps its code
        self.answers = Answers(scenario.answers) if above is None else above.answers
        self.timeout = client_timeout(view, self.policy)
        # The decorator enforces the timeout (its attempt_timeout, on the loop's clock); your
        # own tenacity policy has none, so the request enforces it then, as a client would.
        self.request_timeout = self.timeout if self.foreign else None
        self.stopping = False  # the run's end cancels what still runs: no timeout, that
        self.attempts: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []
        self.mine: dict[tuple[int, int], list[dict[str, Any]]] = {}
        self.records: dict[tuple[int, int], dict[str, Any]] = {}
        self.recorders: dict[tuple[int, int], _RecordRefusals] = {}
        self.guard_events: list[GuardEvent] = []
        self.guard_states = _RunnerGuards(self)
        spec = view.policy
        # The scenario's explicit policy options, passed to the decorator as keywords.
        self.options: dict[str, Any] = {name: getattr(spec, name) for name in spec.given()}
        if spec.retry_on is not None:
            self.options["retry"] = retry_if_exception_type(
                tuple(ERROR_CLASSES[name] for name in spec.retry_on)
            )
        if guards:
            self.options["guards"] = tuple(guards)
        if self.timeout is not None:
            self.options["attempt_timeout"] = self.timeout
        self.decorator = OperationDecorator(spec.operation)
        self.end_time = 0.0
        self.server_busy_until = 0.0
        # The tiers: how this runner links to the one above and builds the one below.
        self.tiers = TierLink(self, scenario, above)
        if self.tiers.has_below:
            below = _Runner(scenario, seed, self.settings, (), above=self, retryings=retryings)
            self.tiers.below = below

    def chain(self) -> list[_Runner]:
        """This runner and the tiers' below it, top first."""
        runners = [self]
        while (below := runners[-1].tiers.below) is not None:
            assert isinstance(below, _Runner)
            runners.append(below)
        return runners

    def stop(self) -> None:
        """The run's end: what still runs at every tier is cancelled, not timed out."""
        for runner in self.chain():
            runner.stopping = True

    def code_of(self, error: BaseException) -> int:
        """The record code of an error a call or attempt failed with."""
        return code_of(error)

    def outcome_of(self, error: BaseException) -> int:
        """The attempt outcome of an error the request raised itself (a real client's)."""
        return rec.FAILED

    def max_time(self) -> float:
        return time_limit(self.scenario)

    async def main(self) -> None:
        firsts, clients = first_calls(self.scenario, self.seed)
        max_time = self.max_time()
        tasks = [
            asyncio.ensure_future(self.client(int(client), float(t)))
            for client, t in zip(clients, firsts, strict=True)
        ]
        pending: set[asyncio.Task[Any]] = set()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=max_time)
        if not pending:  # the calls below that callers gave up on run on, as in the engine
            await self.tiers.let_servers_finish(max_time)
        pending |= self.tiers.servers
        self.stop()
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
        # Let the server finish work its clients gave up on, as the engine does.
        chain = self.chain()
        loop = asyncio.get_running_loop()
        finish = min(max(runner.server_busy_until for runner in chain), max_time)
        if finish > loop.time():  # a deadline, not a delay: now + (finish - now) may not be finish
            woken = loop.create_future()
            loop.call_at(finish, woken.set_result, None)  # after the work due then (FIFO ties)
            await woken
        self.end_time = max(
            [c["end"] for r in chain for c in r.calls if not math.isnan(c["end"])], default=0.0
        )

    async def client(self, client: int, first: float) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(first - loop.time())
        clients = self.scenario.clients
        limit = follow_up_calls(self.scenario)
        index = 0
        while True:
            await self.call(client, index)
            index += 1
            start = loop.time() + clients.think_time
            if index >= limit or start >= self.scenario.duration:
                return
            await asyncio.sleep(clients.think_time)

    async def call(
        self,
        client: int,
        index: int,
        parent: dict[str, Any] | None = None,
        deadline: float = math.inf,
    ) -> dict[str, Any]:
        """Call ``index`` of ``client`` through the decorator; its record, ended (below the
        top: made for the request ``parent`` above, by ``deadline`` when one is passed down)."""
        loop = asyncio.get_running_loop()
        key = (client << CALL_KEY_SHIFT) | index
        current_stream.set(Stream(self.jitter_key, key))  # this task's jitter stream
        record, mine = self.new_call(client, index, loop.time(), parent, deadline)

        async def sleep(seconds: float) -> None:
            # Two kinds of sleep come here: tenacity's wait after a failed attempt (the
            # attempt's ``wait``) and a send-rate limiter holding the next send back (first
            # attempts included), which the records show only as a later start, as the
            # engine's do. tenacity's comes first after a failure; any other is pacing.
            # (A hedged attempt's wait follows the send the policy heard: its ``last``.)
            last = record.get("last")
            if last is not None and math.isnan(last["wait"]):
                last["wait"] = seconds
                self.rejected(last)  # an attempt that returned was retried
            record["fresh"] = True  # the next send is the next attempt's first
            await asyncio.sleep(seconds)

        async def operation() -> Any:
            if (client, index) in self.recorders:
                self.recorders[(client, index)].ran = True
            attempt = self.new_attempt(record, mine, loop.time(), hedge=not record["fresh"])
            record["fresh"] = False  # a hedge of this attempt, if another send comes now
            draw = attempt["attempt"] + (attempt["hedge"] << HEDGE_SHIFT)  # a hedge's own draws
            try:
                code = await self.request(key, draw, attempt, record) or 0
            except asyncio.CancelledError:
                if not self.stopping:  # its timeout, the deadline, or a hedge's answer
                    self.cancelled(attempt, record, loop.time())
                raise
            except _ServerError as failure:
                code, hint = failure.args
                attempt.update(end=loop.time(), outcome=rec.FAILED, error=code)
                raise make_error(code, hint) from None
            except _ClientTimeoutError:
                attempt.update(end=loop.time(), outcome=rec.TIMED_OUT, error=TIMEOUT)
                raise TimeoutError(f"no answer within {self.timeout}s") from None
            except Exception as error:  # a real client's own error (retrysim.chaos.run)
                attempt.update(end=loop.time(), outcome=self.outcome_of(error))
                attempt["error"] = self.code_of(error)
                raise
            else:  # It returned: None when served, or an answer's value (under its code).
                attempt.update(end=loop.time(), outcome=rec.OK, error=code)
                return self.answers.value(code)
            finally:  # what the policy hears of this attempt (a hedge's answer, when hedged)
                if attempt["outcome"] not in (rec.OPEN, rec.CANCELLED):
                    record["last"] = attempt

        decorated: Callable[[], Awaitable[Any]]
        if self.foreign:  # your own policy, under tenacity's own async loop
            retrying = self.policy.async_retrying(sleep=sleep)
            decorated = functools.partial(retrying, operation)
        else:
            decorated = self.decorator(
                sleep=sleep,
                clock=loop.time,
                guard_states=self.guard_states,
                guard_client=(client, index),
                **self.options,
            )(operation)
        await self.run_call(decorated, record)
        return record

    async def run_call(
        self, decorated: Callable[[], Awaitable[Any]], record: dict[str, Any]
    ) -> None:
        """Run the decorated call to its end, and record how it ended."""
        loop = asyncio.get_running_loop()
        try:
            await decorated()
        except asyncio.CancelledError:
            if not self.stopping:  # the deadline passed down ran out: gRPC's DEADLINE_EXCEEDED
                record.update(end=loop.time(), outcome=rec.GAVE_UP, error=TIMEOUT)
            raise
        except Exception as error:
            # Attempts ran out on a value the policy's retry rejects (tenacity's RetryError):
            # the call failed on that answer; otherwise on the error it raised.
            last = record.get("last")
            code = (
                self.rejected(last) if last and last["outcome"] == rec.OK else self.code_of(error)
            )
            record.update(end=loop.time(), outcome=rec.GAVE_UP, error=code)
        else:
            record.update(end=loop.time(), outcome=rec.SUCCEEDED)

    def new_call(
        self,
        client: int,
        index: int,
        now: float,
        parent: dict[str, Any] | None = None,
        deadline: float = math.inf,
    ) -> tuple[dict[str, Any], list[Any]]:
        """A call's record, unfinished, and the list its attempts' records go into (below the
        top, with the request above it serves and the deadline passed down, if any)."""
        record: dict[str, Any] = {
            "client": client,
            "index": index,
            "start": now,
            "end": math.nan,
            "outcome": rec.UNFINISHED,
            "error": 0,
            "executions": 0,
            "attempts": 0,
            "fresh": True,  # its next send is an attempt's first (not a hedge)
        }
        if parent is not None:
            record["parent"] = parent
        if deadline < math.inf:
            record["deadline"] = deadline
        self.calls.append(record)
        mine: list[dict[str, Any]] = []
        self.mine[(client, index)] = mine
        self.records[(client, index)] = record
        return record, mine

    def new_attempt(
        self, record: dict[str, Any], mine: list[dict[str, Any]], now: float, hedge: bool = False
    ) -> dict[str, Any]:
        """The record of the call's next attempt, open, sent now (``hedge``: another send of
        its latest attempt, which the decorator's hedging makes; the call's ``group`` holds
        the sends of its latest attempt)."""
        group = record.setdefault("group", [])
        sends = len(group) if hedge and group else 0
        attempt = {
            "client": record["client"],
            "index": record["index"],
            "attempt": (mine[-1]["attempt"] if mine else 0) + (0 if sends else 1),
            "start": now,
            "end": math.nan,
            "wait": math.nan,
            "outcome": rec.OPEN,
            "error": 0,
            "executed": 0,
            "replica": 0,
            "hedge": sends,
        }
        record["group"] = [*group, attempt] if sends else [attempt]
        mine.append(attempt)
        self.attempts.append(attempt)
        record["attempts"] = attempt["attempt"]
        return attempt

    def cancelled(self, attempt: dict[str, Any], record: dict[str, Any], now: float) -> None:
        """Attempt (or send) ``attempt`` was cancelled before its end: by its timeout, or the
        deadline passed down (it timed out), or, a send of a hedged attempt sooner, by the
        answer that decided the attempt (cancelled, as the engine records it)."""
        timeout = math.inf if self.timeout is None else self.timeout
        ends = min(attempt["start"] + timeout, record.get("deadline", math.inf))
        if len(record["group"]) > 1 and now < ends:
            attempt.update(end=now, outcome=rec.CANCELLED, error=0)
        else:
            attempt.update(end=now, outcome=rec.TIMED_OUT, error=TIMEOUT)

    async def request(
        self, key: int, n: int, attempt: dict[str, Any], record: dict[str, Any]
    ) -> int | None:
        """One attempt as the client sees it: faults, the drawn latency, a reset, its timeout;
        what it returns, as a record code (0 or None: served; else an answer's code).

        The same draws as the engine. What happens first is decided once, with the engine's
        order for events due at the same instant (reset, then the answer, then the timeout),
        rather than by racing asyncio timers that are due together. The decorator's
        ``attempt_timeout`` is a timer of its own: it is due when the engine's timeout is.
        """
        replicas = self.replicas
        if replicas.balancer is None:
            return await self.reach(replicas.phases[0], key, n, attempt, record)
        phases = replicas.route(key, n, attempt, record)
        try:
            return await self.reach(phases, key, n, attempt, record)
        finally:
            if not self.stopping:  # answered, failed or given up on: no longer outstanding
                replicas.balancer.answered(attempt["replica"])

    async def reach(
        self,
        phases: AttemptPhases,
        key: int,
        n: int,
        attempt: dict[str, Any],
        record: dict[str, Any],
    ) -> int | None:
        """The attempt at its replica (``phases``): what :meth:`request` says."""
        loop = asyncio.get_running_loop()
        t = loop.time()
        verdict = phases.door(t, key, n)
        if verdict >= ANSWER_BASE:
            return verdict  # a gate that answers: the attempt returns its value at once
        if verdict > 0:
            raise _ServerError(verdict, phases.hint(t, key, n))
        timeout = self.request_timeout
        if verdict == BLACKHOLE:
            if timeout is None:
                await loop.create_future()  # no answer: the client waits, to a timeout or for ever
            else:
                await asyncio.sleep(timeout)
            raise _ClientTimeoutError
        service_time = phases.service_time(t, key, n)
        if self.tiers.below is not None:  # this tier's work, then its call to the next tier
            try:  # (your own policy's requests time out by themselves)
                async with asyncio.timeout_at(None if timeout is None else t + timeout):
                    code = await self.tiers.pass_down(
                        phases, t, key, n, service_time, attempt, record
                    )
            except TimeoutError:
                raise _ClientTimeoutError from None
            if 0 < code < ANSWER_BASE:
                raise _ServerError(code, None)  # what the call below gave up with
            return code
        # The server finishes the work whatever happens to the client or the connection.
        # (the timer's own deadline: the run waits for exactly it, not a sum that may round
        # a last bit lower and end the run just before the work is done)
        done = loop.call_later(service_time, _executed, attempt, record)
        self.server_busy_until = max(self.server_busy_until, done.when())
        first: list[tuple[float, int, str, int]] = [(service_time, 1, "answer", 0)]
        reset = phases.reset(t, key, n)
        if reset is not None:
            first.append((reset[0] * service_time, 0, "reset", reset[1]))
        if timeout is not None and service_time > timeout:
            first.append((timeout, 2, "timeout", 0))
        delay, _, what, code = min(first)
        await answer_after(delay)  # heard before the decorator's timeout due then too
        if what == "reset":
            raise _ServerError(code, None)
        if what == "timeout":
            raise _ClientTimeoutError
        return 0

    def rejected(self, attempt: dict[str, Any]) -> int:
        """An attempt that returned, whose value the policy's retry rejected (retried, or the
        last of a call that gave up): a failure, under its answer's code (``result:None`` for
        a served request's None), as the engine records it. Returns the code."""
        if attempt["outcome"] == rec.OK:
            attempt.update(outcome=rec.FAILED, error=attempt["error"] or self.answers.none_code)
        return int(attempt["error"])

    def refused(self, client: int, index: int, now: float, error: BaseException) -> None:
        """A guard refused an attempt of this call: it is recorded, as the engine records it."""
        mine, record = self.mine[(client, index)], self.records[(client, index)]
        attempt = self.new_attempt(record, mine, now)
        attempt.update(end=now, outcome=rec.FAILED, error=self.code_of(error))
        record["last"] = attempt

    def record_arrays(self) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """This tier's attempt and call records, and the order its calls' rows are in."""
        attempts = rec.empty_attempts(len(self.attempts))
        order = sorted(
            range(len(self.calls)),
            key=lambda i: (self.calls[i]["start"], self.calls[i]["client"], self.calls[i]["index"]),
        )
        call_id = {
            (self.calls[i]["client"], self.calls[i]["index"]): cid for cid, i in enumerate(order)
        }
        names = ("client", "attempt", "start", "end", "wait", "outcome", "error", "executed")
        for name in (*names, "replica", "hedge"):
            attempts[name] = [a[name] for a in self.attempts]
        attempts["call"] = [call_id[(a["client"], a["index"])] for a in self.attempts]
        calls = rec.calls_from(len(order), lambda name: [self.calls[i][name] for i in order])
        return attempts, calls, order

    def result(self, wall: float) -> RunResult:
        attempts, calls, _ = self.record_arrays()
        return RunResult(
            scenario=self.scenario,
            seed=self.seed,
            policy=self.policy.describe(),
            attempts=attempts,
            calls=calls,
            end_time=self.end_time,
            events=0,
            wall_time=wall,
            capacity=None,
            guard_events=self.guard_events,
            error_names=self.answers.names,
            engine="decorators",  # the production decorators themselves, on a virtual loop
            tiers=tier_runs(self, attempts, calls),
        )


def _executed(attempt: dict[str, Any], record: dict[str, Any]) -> None:
    attempt["executed"] = 1
    record["executions"] += 1
