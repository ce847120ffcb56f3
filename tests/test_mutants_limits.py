"""Behaviour of ``retrysim/sim/limits.py`` that its mutation run found untested.

Each test pins what a caller of the up-front guards sees: which scenarios the memory guard
refuses and the line it refuses them with, the events and attempts budgets a run gets, and
how much memory the module reads as available from what the operating system reports (faked
here, so the answers do not depend on the machine). None reads the module's source.
"""

from __future__ import annotations

import io
import os
import resource
from typing import Any

import pytest

from retrysim.model.scenario import Scenario, parse_scenario
from retrysim.sim import limits
from retrysim.sim.arrivals import expected_calls

GIB = 1 << 30


def _burst(count: int, **extra: Any) -> Scenario:
    """``count`` clients making one call each: ``count`` expected calls."""
    scenario = parse_scenario({"clients": {"count": count}, **extra})
    assert expected_calls(scenario) == count
    return scenario


def _available(monkeypatch: pytest.MonkeyPatch, value: float) -> None:
    monkeypatch.setattr(limits, "available_memory", lambda: value)


def _fake_files(monkeypatch: pytest.MonkeyPatch, files: dict[str, str]) -> None:
    """``limits`` reads these paths with these contents; any other path cannot be opened."""

    def fake_open(path: str, *_: object, **__: object) -> io.StringIO:
        if path not in files:
            raise OSError(f"no {path} here")
        return io.StringIO(files[path])

    monkeypatch.setattr(limits, "open", fake_open, raising=False)


# -- the memory guard ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("max_attempts", "need"),
    [(1, 1_520_000), (2, 1_840_000), (3, 2_160_000), (4, 2_160_000), (10, 2_160_000)],
)
def test_the_guard_counts_1200_bytes_a_call_and_320_for_each_of_up_to_three_attempts(
    monkeypatch: pytest.MonkeyPatch, max_attempts: int, need: int
) -> None:
    """1,000 calls need 1,000 x (1,200 + 320 per attempt, at most three attempts counted)
    bytes; the guard lets the scenario run while that fits in 80% of what is available, and
    refuses it 0.02% below that."""
    scenario = _burst(1000)
    _available(monkeypatch, need / 0.8 * 1.0002)
    limits.check_memory(scenario, max_attempts)  # fits
    _available(monkeypatch, need / 0.8 * 0.9998)
    with pytest.raises(limits.ScenarioTooLargeError):
        limits.check_memory(scenario, max_attempts)


def test_the_refusal_says_in_gib_what_the_scenario_needs_and_what_the_machine_has(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A million calls need 2,160,000,000 bytes (2.0 GiB); with 1 GiB available the one-line
    refusal names the field, both amounts in GiB, the calls, and what to do."""
    _available(monkeypatch, 1.0 * GIB)
    with pytest.raises(limits.ScenarioTooLargeError) as refused:
        limits.check_memory(_burst(1_000_000), 3)
    assert str(refused.value) == (
        "clients.count: this scenario needs at least 2.0 GiB of memory (~1,000,000 calls); "
        "this machine has 1.0 GiB available. Use fewer clients or calls."
    )


def test_an_open_loop_too_large_is_refused_naming_its_rate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Poisson arrivals set the number of calls by their rate and the duration: the refusal
    names ``clients.arrival.rate`` and says to lower it or shorten the run."""
    scenario = parse_scenario(
        {"duration": 10, "clients": {"arrival": {"kind": "poisson", "rate": 1e6}}}
    )
    _available(monkeypatch, 1.0 * GIB)
    with pytest.raises(limits.ScenarioTooLargeError) as refused:
        limits.check_memory(scenario, 3)
    message = str(refused.value)
    assert message.startswith("clients.arrival.rate: this scenario needs at least ")
    assert message.endswith("Use a lower rate or a shorter duration.")


# -- the events budget --------------------------------------------------------------------------


def test_the_events_budget_is_60_percent_of_memory_at_250_bytes_an_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With 1,250,000 bytes available a run may take 0.6 x 1,250,000 / 250 = 3,000 events, and
    the reason says the memory limit set it."""
    _available(monkeypatch, 1_250_000.0)
    budget, why = limits.event_limit(_burst(10))
    assert budget == 3000
    assert why.startswith("the memory limit: 3,000 events fit in 60% of the ")


def test_when_memory_allows_exactly_max_events_the_scenarios_limit_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A tie between the memory budget and ``limits.max_events`` is the scenario's own limit:
    its name is what a stopped run reports."""
    _available(monkeypatch, 1_250_000.0)  # 3,000 events
    assert limits.event_limit(_burst(10, limits={"max_events": 3000})) == (
        3000,
        "limits.max_events",
    )
    assert limits.event_limit(_burst(10, limits={"max_events": 2999})) == (
        2999,
        "limits.max_events",
    )


def test_with_ample_memory_the_events_budget_is_limits_max_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A machine with room for more events than ``limits.max_events`` runs to that limit."""
    _available(monkeypatch, 1e15)
    assert limits.event_limit(_burst(10)) == (200_000_000, "limits.max_events")


# -- the attempts budget ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("calls", "budget"),
    [(1, 1_000_000), (1000, 1_000_000), (20_000, 1_000_000), (30_000, 1_500_000),
     (100_000, 5_000_000)],
)  # fmt: skip
def test_the_attempts_budget_is_50_per_expected_call_and_at_least_a_million(
    calls: int, budget: int
) -> None:
    """A run may make 50 attempts per expected call, and never fewer than 1,000,000."""
    assert limits.attempt_limit(_burst(calls)) == budget


def test_the_attempts_budget_line_says_what_stopped_the_run() -> None:
    """The stopped run's line gives the number of attempts and how the budget is set."""
    assert limits.attempts_stopped(1_500_000) == (
        "stopped after 1,500,000 attempts (the attempts budget: 50 per expected call, at least "
        "1,000,000; a retry storm with no wait?); calls still running are reported unfinished"
    )


# -- memory available ---------------------------------------------------------------------------


def test_memory_available_is_linux_memavailable_in_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """/proc/meminfo gives MemAvailable in kB (1,024 bytes); with no address-space limit to
    read, that is all the memory available."""

    def no_limits(_: int) -> tuple[int, int]:
        raise OSError("no limits here")

    monkeypatch.setattr(resource, "getrlimit", no_limits)
    _fake_files(
        monkeypatch,
        {"/proc/meminfo": "MemTotal:  9999999 kB\nMemFree:  5555 kB\nMemAvailable:  4096 kB\n"},
    )
    assert limits.available_memory() == 4096 * 1024


def test_without_proc_meminfo_available_memory_is_free_pages_times_page_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where /proc/meminfo cannot be read, the estimate is the available physical pages times
    the page size."""
    sizes = {"SC_PAGE_SIZE": 4096, "SC_AVPHYS_PAGES": 1000}
    _fake_files(monkeypatch, {})
    monkeypatch.setattr(os, "sysconf", lambda name: sizes[name])
    monkeypatch.setattr(resource, "getrlimit", lambda _: (resource.RLIM_INFINITY,) * 2)
    assert limits.available_memory() == 4_096_000


def test_with_neither_proc_nor_sysconf_8_gib_are_assumed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where neither /proc/meminfo nor the page counts can be read, 8 GiB are assumed."""

    def no_sysconf(name: str) -> int:
        raise ValueError(f"unknown {name}")

    _fake_files(monkeypatch, {})
    monkeypatch.setattr(os, "sysconf", no_sysconf)
    monkeypatch.setattr(resource, "getrlimit", lambda _: (resource.RLIM_INFINITY,) * 2)
    assert limits.available_memory() == 8 * GIB


def test_under_ulimit_v_the_room_left_is_the_limit_less_the_processs_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With an address-space limit, what is left is the soft limit less the process's size
    (the first field of /proc/self/statm, in pages), when that is below MemAvailable."""
    page = os.sysconf("SC_PAGE_SIZE")
    soft = 3 * GIB
    monkeypatch.setattr(resource, "getrlimit", lambda _: (soft, 4 * GIB))
    _fake_files(
        monkeypatch,
        {
            "/proc/self/statm": "1000 200 50 10 0 300 0\n",
            "/proc/meminfo": f"MemAvailable:  {8 * GIB // 1024} kB\n",
        },
    )
    assert limits.available_memory() == soft - 1000 * page


def test_a_process_already_past_its_ulimit_v_has_no_room_left(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A process already larger than its address-space limit has 0 bytes left, not a negative
    amount and not a byte."""
    page = os.sysconf("SC_PAGE_SIZE")
    monkeypatch.setattr(resource, "getrlimit", lambda _: (999 * page, 999 * page))
    _fake_files(
        monkeypatch,
        {"/proc/self/statm": "1000 200 50 10 0 300 0\n", "/proc/meminfo": "MemAvailable: 4 kB\n"},
    )
    assert limits.available_memory() == 0.0
