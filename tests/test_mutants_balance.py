"""Tests written for mutants of ``retrysim/sim/balance.py`` that its own tests let survive
(a full mutation run, ``python scripts/mutate.py --module balance``): each pins a behaviour of
the replica balancer that a plausible wrong edit would change while every earlier test passed.
"""

from __future__ import annotations

from retrysim.sim.balance import Balancer
from retrysim.sim.streams import BALANCE, stream_key, unit


def test_an_answered_request_no_longer_counts_against_its_replica() -> None:
    """Least outstanding: once replica 1's request is answered it is the lightest and takes
    the next request; when every request is answered no replica holds any."""
    balancer = Balancer(3, "least_outstanding", key=1)
    for call in range(3):  # one request each, in turn: 0, 1, 2
        balancer.sent(balancer.pick(call, 1))
    balancer.answered(1)
    assert balancer.pick(3, 1) == 1  # not 0, next in turn among three equally loaded
    balancer.sent(1)
    for replica in (0, 1, 2):
        balancer.answered(replica)
    assert balancer.outstanding == [0, 0, 0]


def test_with_equal_loads_power_of_two_picks_what_random_picks() -> None:
    """A tie between the two choices goes to the first, which is the random rule's pick: on an
    evenly loaded fleet, switching from ``random`` to ``power_of_two`` moves no request."""
    for replicas in (2, 3, 5):
        two = Balancer(replicas, "power_of_two", key=7)
        rand = Balancer(replicas, "random", key=7)
        two.outstanding[:] = [3] * replicas
        for call in range(200):
            for attempt in (1, 2, 3):
                assert two.pick(call, attempt) == rand.pick(call, attempt), (call, attempt)


def test_a_retrys_power_of_two_pick_is_independent_of_the_attempt_before() -> None:
    """Ten replicas with loads 0..9: each pick is the lighter (lower-numbered) of two distinct
    uniform choices, replica r with probability p_r = 2(9 - r)/90. Two attempts of a call
    drawn independently land on the same replica with probability sum p_r^2 = 0.1407; an
    attempt whose draw reuses one of the previous attempt's makes that far likelier."""
    replicas = 10
    balancer = Balancer(replicas, "power_of_two", key=12345)
    balancer.outstanding[:] = list(range(replicas))
    calls = 3000
    same = sum(balancer.pick(call, 1) == balancer.pick(call, 2) for call in range(calls))
    expected = sum((2 * (replicas - 1 - r) / (replicas * (replicas - 1))) ** 2 for r in range(10))
    # sd of the share: sqrt(0.14 * 0.86 / 3000) = 0.006
    assert abs(same / calls - expected) < 0.03, same / calls


def test_power_of_two_draws_its_choices_from_the_calls_own_balance_draws() -> None:
    """The seeded-run contract (retrysim/sim/streams.py): attempt ``a`` of a call picks its
    first replica with the call's draw ``2a`` of the run's BALANCE stream, uniform over the
    replicas, and its second with draw ``2a + 1``, uniform over the others; the lighter one
    wins. Another numbering of the draws would move the replicas of every seeded run."""
    replicas = 5
    key = stream_key(3, BALANCE)
    balancer = Balancer(replicas, "power_of_two", key)
    balancer.outstanding[:] = [4, 3, 2, 1, 0]  # the higher-numbered replica is the lighter
    for call_key in range(0, 10_000, 37):
        for attempt in (1, 2, 3):
            first = int(unit(key, call_key, 2 * attempt) * replicas)
            others = [r for r in range(replicas) if r != first]
            second = others[int(unit(key, call_key, 2 * attempt + 1) * len(others))]
            assert balancer.pick(call_key, attempt) == max(first, second), (call_key, attempt)
