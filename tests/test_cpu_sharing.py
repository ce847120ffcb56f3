"""Processor sharing (retrysim.sim.sharing), and the client CPU that uses it
(``clients.cpu_discipline = "processor_sharing"``): an event loop runs all its ready tasks
turn by turn, so a burst's attempts leave together, where a FIFO CPU lets them out one by one.

Exact cases use binary fractions, so the sums are exact and compared with ``==``; the queueing
laws are checked against M/G/1-PS theory, whose mean time in system is E[S] / (1 - rho) for
any distribution of the work.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from retrysim.model.scenario import ScenarioError, parse_scenario
from retrysim.sim import records as rec
from retrysim.sim.connections import Cpu
from retrysim.sim.engine import simulate
from retrysim.sim.kernel import Kernel
from retrysim.sim.latency import mean_of
from retrysim.sim.sharing import Sharing
from tests.test_client_cpu import C, L, P, Q, R, durations, run
from tests.test_network import one_process_queue, steady_mean_response

SHARED = {"cpu_discipline": "processor_sharing"}


def share(jobs: list[tuple[float, float]], cores: float = 1.0) -> dict[int, float]:
    """Run ``jobs`` (arrival, work) through a :class:`Sharing` on a real kernel: job -> end."""
    kernel = Kernel()
    ends: dict[int, float] = {}
    sharing = Sharing(kernel, cores, lambda job: ends.__setitem__(job, kernel.now))
    for job, (arrival, _) in enumerate(jobs):
        kernel.at(arrival, lambda job: sharing.add(kernel.now, jobs[job][1], job), job)
    kernel.run(math.inf, 10**6)
    return ends


def test_a_job_that_arrives_mid_way_halves_the_rate_of_the_first() -> None:
    # The first has 0.5 s alone, then 0.5 s of work left at half speed: done at 1.5; the
    # second then has 0.5 left alone: 2. First come first served would end them at 1 and 2.
    assert share([(0.0, 1.0), (0.5, 1.0)]) == {0: 1.5, 1: 2.0}
    # The shorter of two that arrive together ends first, at twice its work.
    assert share([(0.0, 1.0), (0.0, 0.25)]) == {1: 0.5, 0: 1.25}
    # Two cores: two jobs each run at full speed; a third makes it 2/3 each.
    assert share([(0.0, 1.0), (0.0, 1.0)], cores=2) == {0: 1.0, 1: 1.0}


def test_a_removed_job_never_ends_and_gives_its_share_back() -> None:
    kernel, ends = Kernel(), dict[str, float]()
    sharing = Sharing(kernel, 1.0, lambda job: ends.__setitem__(job, kernel.now))
    sharing.add(0.0, 1.0, "kept", key=1)
    sharing.add(0.0, 1.0, "removed", key=2)

    def take_out(_: None) -> None:
        assert sharing.remove(kernel.now, 2)  # each had 0.25 s of work by then

    kernel.at(0.5, take_out, None)
    kernel.run(math.inf, 10**6)
    assert ends == {"kept": 1.25} and not sharing
    assert sharing.remove(2.0, 2) is False  # gone already


@given(
    st.lists(
        st.tuples(
            st.integers(0, 64).map(lambda k: k / 8), st.integers(1, 32).map(lambda k: k / 16)
        ),
        min_size=1,
        max_size=30,
    )
)
def test_sharing_does_the_same_work_in_the_same_busy_periods_as_fifo(
    jobs: list[tuple[float, float]],
) -> None:
    """Both disciplines are work-conserving on one core, so the last job ends at the same time;
    no job ends before its arrival plus its work; among jobs that arrive together, the smaller
    ends no later."""
    ends = share(jobs)
    assert len(ends) == len(jobs)
    cpu = Cpu()
    fifo_last = max(cpu.run(t, w) for t, w in sorted(jobs))
    assert max(ends.values()) == pytest.approx(fifo_last, rel=1e-12, abs=1e-12)
    for job, (arrival, work) in enumerate(jobs):
        assert ends[job] >= arrival + work - 1e-12
    for i, (ti, wi) in enumerate(jobs):
        for j, (tj, wj) in enumerate(jobs):
            if ti == tj and wi < wj:
                assert ends[i] <= ends[j] + 1e-12


def test_a_burst_on_a_shared_cpu_leaves_together() -> None:
    # Four clients at 0 in one process: the four attempts' work shares the CPU and all leave at
    # 4P; their four connects' work then shares it: all connected at 4P + 4Q.
    shared = run({"count": 4, "cpu_per_connect": Q, **SHARED})
    assert durations(shared) == [4 * P + 4 * Q + C + R + L] * 4
    # First come first served, the same work lets them out one by one.
    fifo = run({"count": 4, "cpu_per_connect": Q})
    assert len(set(durations(fifo))) == 4 and max(durations(fifo)) == durations(shared)[0]


def test_an_attempt_timed_out_on_a_shared_cpu_still_has_its_work_done() -> None:
    # Three attempts of 0.5 s work share the CPU: all would leave at 1.5, after a 1.25 timeout.
    result = run(
        {"count": 3, "cpu_per_attempt": 0.5, "timeout": 1.25, **SHARED}, policy={"max_attempts": 1}
    )
    a = result.attempts
    assert a["outcome"].tolist() == [rec.TIMED_OUT] * 3
    assert durations(result) == [1.25] * 3
    assert a["executed"].tolist() == [0, 0, 0]  # none took a connection
    assert result.connections is not None and result.connections["connects"] == 0


def test_a_connect_whose_cpu_share_outlasts_its_timeout_times_out_as_the_share_ends() -> None:
    result = run(
        {"count": 2, "cpu_per_connect": 0.5, "connect_timeout": 0.625, **SHARED},
        policy={"max_attempts": 1},
    )
    # Attempts leave at 2P; the two connects' work ends at 2P + 1 > 2P + 0.625.
    assert durations(result) == [2 * P + 1.0] * 2
    assert result.connections is not None and result.connections["connect_timeouts"] == 2


def shared_queue(rate: float, work: Any, seed: int) -> float:
    result = one_process_queue(rate, seed, cpu_per_attempt=work, cpu_discipline="processor_sharing")
    return steady_mean_response(result)


def test_a_shared_cpu_with_constant_work_is_an_m_d_1_ps_queue() -> None:
    # M/D/1-PS: W = S / (1 - rho) = 2 at rho 0.5, S 1 (a FIFO gives 1.5: test_client_cpu).
    # Over seeds 0-9 the relative error's standard deviation was 1.9%: three of those.
    assert shared_queue(rate=0.5, work=1.0, seed=5) == pytest.approx(2.0, rel=0.06)


def test_a_shared_cpu_s_mean_does_not_depend_on_the_work_s_spread() -> None:
    # Insensitivity: exponential work (sd 1.6% over ten seeds) and a heavy lognormal (p99 ten
    # times the median, sd 1.4%) give E[S] / (1 - rho), as constant work does.
    assert shared_queue(0.6, {"dist": "exponential", "mean": 1.0}, seed=11) == pytest.approx(
        1 / 0.4, rel=0.05
    )
    heavy = {"dist": "lognormal", "median": 1.0, "p99": 10.0}
    drawn = parse_scenario({"clients": {"cpu_per_attempt": heavy}}).clients.cpu_per_attempt
    assert drawn is not None
    mean = mean_of(drawn)
    assert shared_queue(0.5 / mean, heavy, seed=3) == pytest.approx(mean / 0.5, rel=0.045)


def test_shared_cpu_runs_are_deterministic() -> None:
    work = {"dist": "exponential", "mean": 0.01}
    one, two = (run({"count": 50, "cpu_per_attempt": work, "timeout": 2, **SHARED}) for _ in "ab")
    for field in ("start", "end", "outcome"):
        assert np.array_equal(one.attempts[field], two.attempts[field], equal_nan=True)


def test_an_unknown_discipline_is_refused_naming_the_field_and_the_choices() -> None:
    with pytest.raises(ScenarioError, match=r"clients\.cpu_discipline.*'fifo'.*processor_sharing"):
        parse_scenario({"clients": {"cpu_per_attempt": 0.01, "cpu_discipline": "lifo"}})


def test_the_default_discipline_is_first_come_first_served() -> None:
    explicit = simulate(
        parse_scenario({"clients": {"count": 3, "cpu_per_attempt": P, "cpu_discipline": "fifo"}})
    )
    default = simulate(parse_scenario({"clients": {"count": 3, "cpu_per_attempt": P}}))
    assert np.array_equal(explicit.attempts["end"], default.attempts["end"])
