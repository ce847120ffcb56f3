"""The engine's links in a call graph: a tier's calls are the requests of the tier above.

A scenario with ``[tiers.NAME]`` tables runs as one engine per tier on one kernel, each on
its tier's view of the scenario (:mod:`retrysim.sim.tiers`). The top engine builds the one
below it (:meth:`TierLinks._build_tiers`), which builds the next. When a tier's server has
done its own work for a request, the request goes down as a call of the engine below
(:meth:`TierLinks.call_down`, made by the caller a hash of the request picks), with that
tier's retries; when that call ends, its result answers the request above
(:meth:`TierLinks._answer_up`), unless the caller there has stopped waiting (the work below
was wasted). With ``propagate_deadline`` a call carries the time its caller gives up on the
request it serves: no attempt starts after it, and none outlasts it (gRPC's deadlines).

A mixin of :class:`~retrysim.sim.engine.Engine`: the state it keeps is the engine's (in its
slots), declared below for type checkers.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from retrysim.model.scenario import Scenario
from retrysim.retry.settings import RetrySettings
from retrysim.sim import records as rec
from retrysim.sim.call import Call
from retrysim.sim.failures import TIMEOUT
from retrysim.sim.result import TierRun
from retrysim.sim.tiers import caller_of

OPEN = rec.OPEN


class TierLinks:
    """The engine's place in a call graph (see the module docstring)."""

    if TYPE_CHECKING:
        attempts: rec.AttemptColumns
        calls: rec.CallColumns
        scenario: Scenario
        full: Scenario
        level: int
        timeout: float | None
        below: Any
        _above: Any
        _calls_per_client: float
        _parents: dict[int, tuple[Call, int]]
        _parent_rows: array[int]
        _deadlines: dict[int, float] | None
        _issued: list[int]
        _retry_later: Callable[[Call], None]
        at: Callable[..., Any]

        @property
        def capacity(self) -> float | None: ...
        def _new_call(
            self, client: int, index: int, parent: tuple[Call, int] | None = None
        ) -> None: ...
        def respond(self, call: Call, a: int, code: int, hint: float | None = None) -> None: ...
        def _end_call(self, call: Call, outcome: int, error: int, answer: int = 0) -> None: ...

    def _build_tiers(
        self,
        scenario: Scenario,
        seed: int | None,
        settings: RetrySettings | None,
        engine: str,
        retryings: Mapping[str, Any] | None = None,
    ) -> None:
        """The engine of the tier below, if there is one, and what links this one to above."""
        level, names = self.level, scenario.tier_names
        self.below = None
        self._parents: dict[int, tuple[Call, int]] = {}  # live call -> the request it serves
        self._parent_rows = array("q")  # call -> the row of the request above it served
        self._deadlines: dict[int, float] | None = None  # call -> when its caller gave it up
        self._issued: list[int] = []  # calls each caller of a tier below has made so far
        if self._above is not None:
            self._calls_per_client = 0  # a tier's calls are its callers' requests: no others
            self._issued = [0] * self.scenario.clients.count
            if scenario.tiers[names[level - 1]].propagate_deadline:
                self._deadlines = {}
        if level + 1 < len(names):
            engine_class: Any = type(self)  # the Engine: a tier below is one more
            self.below = engine_class(
                scenario, seed, settings, None, (), None, engine, above=self, retryings=retryings
            )

    def chain(self) -> list[Any]:
        """This engine and the tiers' below it, top first."""
        engines = [self]
        while engines[-1].below is not None:
            engines.append(engines[-1].below)
        return engines

    def call_down(self, parent: Call, a: int) -> None:
        """The tier above served its request ``a`` (of ``parent``): that request is a call here
        now, made by the caller :func:`~retrysim.sim.tiers.caller_of` picks, with this tier's
        retries."""
        above = self._above
        assert above is not None
        client = caller_of(parent.client, parent.index, above._draw_index(a), len(self._issued))
        index = self._issued[client]
        self._issued[client] = index + 1
        self._new_call(client, index, (parent, a))

    def _link_down(self, call: Call, parent: Call, a: int) -> None:
        """``call`` serves request ``a`` of ``parent`` above; with deadline propagation it
        carries the time its caller gives up on that request."""
        self._parents[call.id] = (parent, a)
        self._parent_rows.append(a)  # (its calls are all made here: call ids run in order)
        if self._deadlines is not None:
            deadline = self._above.deadline_of(parent, a)
            if deadline < math.inf:
                self._deadlines[call.id] = deadline

    def _past_deadline(self, call: Call, t: float) -> bool:
        """Whether the deadline ``call`` carries from above has passed at ``t`` (a retry due
        then would start after its caller gave up: gRPC does not retry past a deadline)."""
        assert self._deadlines is not None
        return t >= self._deadlines.get(call.id, math.inf)

    def _wait_for_deadline(self, call: Call, a: int) -> None:
        """``call``'s next attempt would start after its deadline: it waits, as the library's
        decorators do (they know no deadline), until the deadline cancels the wait, and ends
        then with TimeoutError (gRPC's DEADLINE_EXCEEDED). Attempt ``a`` stays its last."""
        assert self._deadlines is not None
        call.attempt_number -= 1  # the attempt it waits for never goes
        self.at(self._deadlines[call.id], self._deadline_passed, call)

    def _deadline_passed(self, call: Call) -> None:
        self._end_call(call, rec.GAVE_UP, TIMEOUT)

    def deadline_of(self, call: Call, a: int) -> float:
        """When the caller of attempt ``a`` stops waiting for it: its timeout, or sooner the
        deadline its own call carries from above (infinity: never)."""
        timeout = self.timeout
        deadline = math.inf if timeout is None else self.attempts.start[a] + timeout
        if self._deadlines is not None:
            deadline = min(deadline, self._deadlines.get(call.id, math.inf))
        return deadline

    def _answer_up(self, call: Call, code: int) -> None:
        """A call made for the tier above ended: the request it served is answered with its
        result (``code``: 0 or the answer it took, else the error it gave up with)."""
        parent, a = self._parents.pop(call.id)
        if self._deadlines is not None:
            self._deadlines.pop(call.id, None)
        above = self._above
        assert above is not None
        if above.attempts.outcome[a] == OPEN:  # else its caller gave up on it: wasted work
            above.respond(parent, a, code)

    def _within_deadline(self, call: Call, t: float, timeout: float | None) -> float | None:
        """The timeout of an attempt sent at ``t``, cut to what is left of the deadline its
        caller passed down (0 or less: none is left)."""
        assert self._deadlines is not None
        deadline = self._deadlines.get(call.id, math.inf)
        if timeout is None or deadline - t < timeout:
            return deadline - t if deadline < math.inf else timeout
        return timeout

    def _tier_runs(self, attempts: np.ndarray, calls: np.ndarray) -> list[TierRun]:
        """Each tier's records, top first (the top's are the run's own); none without tiers."""
        names = self.full.tier_names
        if not names:
            return []
        runs = []
        for engine, name in zip(self.chain(), names, strict=True):
            if engine is not self:
                attempts, calls = rec.records_of(engine.attempts, engine.calls)
            runs.append(
                TierRun(
                    name=name,
                    attempts=attempts,
                    calls=calls,
                    parents=engine.parent_rows(len(calls)),
                    capacity=engine.capacity,
                    replicas=engine.scenario.service.replicas,
                    timeout=engine.timeout,
                    policy=engine.policy.describe(),
                    engine=engine.decider.name,
                    propagates_deadline=engine._deadlines is not None,
                    retry_other_host=engine.scenario.policy.retry_other_host,
                )
            )
        return runs

    def parent_rows(self, made: int) -> np.ndarray:
        """For each call this engine made, the row of the request above it served (-1: the
        top, whose calls are the clients' own)."""
        if self._above is None:
            return np.full(made, -1, dtype=np.int64)
        return np.frombuffer(self._parent_rows, dtype=np.int64, count=made).copy()
