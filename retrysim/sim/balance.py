"""A client-side balancer over a service's replicas: which replica each attempt goes to.

The four rules are the ones load balancers ship (Envoy's, gRPC's, nginx's): ``round_robin``
(in turn, fleet-wide), ``random``, ``least_outstanding`` (the replica with the fewest requests
sent and not yet answered, ties taken in turn) and ``power_of_two`` (two distinct
replicas drawn at random, the one with fewer outstanding; Mitzenmacher's "power of two
choices"). ``avoid`` is a set of replicas a call has tried already (Envoy's previous-hosts
retry predicate): they are skipped while an untried replica is left.

Random picks draw from the run's counter-based streams, keyed by the call and its attempt, so
a run stays the same whatever else changes around it.
"""

from __future__ import annotations

from retrysim.sim.streams import unit

#: The rules, as a scenario names them (``service.balance``).
RULES = ("round_robin", "random", "least_outstanding", "power_of_two")


class Balancer:
    """Picks replicas by ``rule`` and counts each one's outstanding requests."""

    __slots__ = ("_key", "_next", "outstanding", "replicas", "rule")

    def __init__(self, replicas: int, rule: str, key: int) -> None:
        if rule not in RULES:
            raise ValueError(f"unknown balance rule {rule!r}; allowed: {', '.join(RULES)}")
        self.replicas = replicas
        self.rule = rule
        self._key = key
        self._next = 0  # round robin's turn
        self.outstanding = [0] * replicas  # sent and not yet answered, per replica

    def pick(self, call_key: int, attempt: int, avoid: int = 0) -> int:
        """The replica attempt ``attempt`` of the call keyed ``call_key`` goes to.

        ``avoid`` is a bit mask of replicas to skip while another is left (0: none).
        """
        candidates = self._candidates(avoid)
        rule = self.rule
        if rule == "round_robin":
            return self._in_turn(candidates)
        if rule == "least_outstanding":  # ties in turn, so light load still spreads
            fewest = min(self.outstanding[r] for r in candidates)
            return self._in_turn([r for r in candidates if self.outstanding[r] == fewest])
        first = candidates[int(unit(self._key, call_key, 2 * attempt) * len(candidates))]
        if rule == "random" or len(candidates) == 1:
            return first
        others = [r for r in candidates if r != first]
        second = others[int(unit(self._key, call_key, 2 * attempt + 1) * len(others))]
        outstanding = self.outstanding
        # A tie goes to the first pick, itself uniform: light load spreads evenly.
        return second if outstanding[second] < outstanding[first] else first

    def _candidates(self, avoid: int) -> list[int]:
        every = range(self.replicas)
        if not avoid:
            return list(every)
        untried = [r for r in every if not avoid >> r & 1]
        return untried or list(every)

    def _in_turn(self, candidates: list[int]) -> int:
        """The next replica in turn among ``candidates`` (the turn moves past it)."""
        n = self.replicas
        for step in range(n):
            replica = (self._next + step) % n
            if replica in candidates:
                self._next = (replica + 1) % n
                return replica
        raise AssertionError("no candidate replica")  # candidates is never empty

    def sent(self, replica: int) -> None:
        self.outstanding[replica] += 1

    def answered(self, replica: int) -> None:
        self.outstanding[replica] -= 1
