"""A live call: the one object the engine keeps for a call while it runs (records are columns).

On the fast path the call is also its own tenacity call state and jitter stream (the slots it
inherits from :class:`~retrysim.sim.decide.FastCallState`), so a live call is one object. The
reference path keeps a real ``RetryCallState``, its ``Retrying`` and a stream beside it, in
the three slots :class:`ReferenceCall` adds: a million live calls on the fast path do not
carry them (24 MB).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from retrysim.sim.decide import FastCallState

if TYPE_CHECKING:
    from retrysim.retry.guards import GuardChain
    from retrysim.sim.streams import Stream

CALL_KEY_SHIFT = 24  # a call's stream key: client << 24 | its index among the client's calls


class Call(FastCallState):
    """A live call as the fast path needs it (see the module docstring)."""

    __slots__ = ("guards", "id", "index", "key", "strategies")

    def __init__(self, call_id: int, client: int, index: int) -> None:
        self.id = call_id
        self.index = index
        self.key = (client << CALL_KEY_SHIFT) | index
        self.guards: GuardChain | None = None  # its client's attempt guards, if the policy has any
        self.attempt_number = 1  # the attempt it sends next (its deciders keep it)
        self.strategies: Any  # the fast decider's: its stop, wait and retry

    @property
    def client(self) -> int:
        """Its client (kept in its key only: a million live calls, 36 MB less)."""
        return self.key >> CALL_KEY_SHIFT


class ReferenceCall(Call):
    """A live call on the reference path: its ``RetryCallState``, ``Retrying`` and stream too."""

    __slots__ = ("retry_state", "retrying", "stream")

    def __init__(self, call_id: int, client: int, index: int) -> None:
        super().__init__(call_id, client, index)
        self.retry_state: Any
        self.retrying: Any
        self.stream: Stream
