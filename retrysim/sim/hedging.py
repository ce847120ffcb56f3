"""Hedged requests in the engine: several sends per retry attempt, the first answer wins.

With a policy's ``hedge`` on (:mod:`retrysim.retry.hedge`, as gRPC's and Polly's hedging
policies), a retry attempt is a *group* of sends: the first goes at once; while none has
answered, another goes ``delay`` later, up to ``max_attempts`` sends; a send that fails sends
the next one at once. A send fails when the policy's retry would retry its outcome (an error
it retries, a result it rejects); the first outcome it would not retry (a success, an accepted
result, an error it does not retry) ends the group and the others are cancelled, as the
library's hedging (:mod:`retrysim.retry.hedge`) decides. When every send failed, the attempt
fails with the last failure and tenacity decides what follows, exactly as without hedging.
No send goes once a deadline passed down from above has passed: the sends already out decide
the attempt (and the deadline then ends the call, as without hedging).
Guards and the decider see one attempt per group, as the library's guards do around a hedged
attempt.

Each send is an attempt row (its ``hedge`` column: 0 for the first, 1, 2, ... for hedges), so
the records count the load hedging adds; a cancelled send's outcome is ``CANCELLED``. A hedge
draws its own latency and fault verdicts (its draw index is ``attempt + (hedge << 16)``) and,
behind a balancer, goes to a replica its siblings did not go to while there is one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from retrysim.retry.hedge import Hedging
from retrysim.sim import records as rec
from retrysim.sim.call import Call


class HedgeHost(Protocol):
    """What hedging needs of the engine (:class:`~retrysim.sim.engine.Engine`)."""

    attempts: rec.AttemptColumns
    decider: Any
    timeout: float | None
    _deadlines: dict[int, float] | None
    at: Callable[..., Any]

    @property
    def now(self) -> float: ...
    def _new_row(self, call: Call, n: int, t: float) -> int: ...
    def _within_deadline(self, call: Call, t: float, timeout: float | None) -> float | None: ...
    def _send(
        self, call: Call, a: int = -1, t: float = 0.0, n: int = 0, timeout: float | None = None
    ) -> None: ...
    def _close_send(self, call: Call, a: int, code: int, outcome: int | None) -> None: ...


#: A hedge's draws are keyed by its attempt number plus its index shifted past every attempt
#: number (attempt numbers fit in 16 bits): no hedge shares a draw with another send.
HEDGE_SHIFT = 16


class HedgeGroup:
    """The sends of one retry attempt."""

    __slots__ = ("attempt", "open", "rows", "sent")

    def __init__(self, attempt: int, row: int) -> None:
        self.attempt = attempt
        self.rows = [row]  # every send's attempt row, in order
        self.open = 1  # sends not yet answered
        self.sent = 1  # sends made (the first included)


class Hedges:
    """An engine's hedged attempts: one group per live call."""

    __slots__ = ("_engine", "_groups", "delay", "max_attempts")

    def __init__(self, engine: HedgeHost, hedging: Hedging) -> None:
        self._engine = engine
        self.max_attempts = hedging.max_attempts
        self.delay = hedging.delay
        self._groups: dict[int, HedgeGroup] = {}

    def open_group(self, call: Call, a: int, t: float) -> None:
        """Row ``a`` is the first send of ``call``'s attempt: its first hedge is due later."""
        group = HedgeGroup(self._engine.attempts.attempt[a], a)
        self._groups[call.id] = group
        self._engine.at(t + self.delay, self._due, (call, group.attempt, 1))

    def _due(self, item: tuple[Call, int, int]) -> None:
        """A hedge's delay is over: it goes, unless its attempt was answered, or a failure
        already sent it."""
        call, attempt, index = item
        group = self._groups.get(call.id)
        if group is not None and group.attempt == attempt and group.sent == index:
            self._send(call, group)

    def _send(self, call: Call, group: HedgeGroup) -> None:
        engine = self._engine
        t = engine.now
        timeout = engine.timeout
        if engine._deadlines is not None:
            timeout = engine._within_deadline(call, t, timeout)
            if timeout is not None and timeout <= 0:
                return  # the caller has given up: no hedge (the sends out decide the attempt)
        a = engine._new_row(call, group.attempt, t)
        engine.attempts.hedge[a] = group.sent
        group.rows.append(a)
        group.sent += 1
        group.open += 1
        if group.sent < self.max_attempts:
            engine.at(t + self.delay, self._due, (call, group.attempt, group.sent))
        # The send itself goes once what else happens at this instant has: in the library a
        # hedge is a new task, whose first step (where the balancer picks its replica) runs
        # after the sends timing out now have let go of theirs.
        engine.at(t, self._dispatch, (call, a, timeout))

    def _dispatch(self, item: tuple[Call, int, float | None]) -> None:
        """A hedge's send starts, unless its attempt was answered in the meantime (then it
        was cancelled before it reached anything, as the library's unstarted task is)."""
        call, a, timeout = item
        engine = self._engine
        if engine.attempts.outcome[a] == rec.OPEN:
            engine._send(call, a, engine.now, self.draw_index(a), timeout)

    def settle(self, call: Call, a: int, code: int, outcome: int | None) -> bool:
        """Send ``a`` of ``call`` was answered with ``code``: whether its attempt is decided
        now (True: the engine hears it as the attempt's outcome). A failure with sends still
        to make or still open is only recorded."""
        group = self._groups.get(call.id)
        if group is None or a not in group.rows:  # not a hedged attempt's send
            return True
        group.open -= 1
        engine = self._engine
        # (the others are cancelled)
        if not self._retries(call, code):  # an outcome the retry takes: it wins
            del self._groups[call.id]
            for row in group.rows:
                if row != a and engine.attempts.outcome[row] == rec.OPEN:
                    engine._close_send(call, row, 0, rec.CANCELLED)
            return True
        if group.sent < self.max_attempts and self._time_left(call):
            # a failure sends the next hedge at once (unless the caller's deadline has passed)
            engine._close_send(call, a, code, outcome)
            # (as a new event at this instant, after those already due now: the library's
            # race hears the failure and starts the next send a few loop steps later)
            engine.at(engine.now, self._due, (call, group.attempt, group.sent))
            return False
        if group.open > 0:  # the others may still answer
            engine._close_send(call, a, code, outcome)
            return False
        del self._groups[call.id]
        return True

    def _time_left(self, call: Call) -> bool:
        """Whether the deadline ``call`` carries from above, if any, leaves time for another
        send now (none left: the group has made its last send)."""
        engine = self._engine
        if engine._deadlines is None:
            return True
        timeout = engine._within_deadline(call, engine.now, engine.timeout)
        return timeout is None or timeout > 0

    def _retries(self, call: Call, code: int) -> bool:
        """Whether the policy's retry would retry ``code``: a failed send (an error it
        retries, a result it rejects); anything else ends the group, as in the library."""
        return bool(self._engine.decider.retries(call, code))

    def forget(self, call: Call) -> None:
        """``call`` ended: its group, if any, is done with."""
        self._groups.pop(call.id, None)

    def replicas_of(self, call: Call) -> int:
        """The replicas the earlier sends of ``call``'s attempt went to, as a bit mask."""
        group = self._groups.get(call.id)
        if group is None:
            return 0
        replicas = self._engine.attempts.replica
        mask = 0
        for row in group.rows[:-1]:
            mask |= 1 << replicas[row]
        return mask

    def draw_index(self, a: int) -> int:
        """The attempt number row ``a``'s draws are keyed by (a hedge's is its own)."""
        attempts = self._engine.attempts
        return attempts.attempt[a] + (attempts.hedge[a] << HEDGE_SHIFT)
