"""What the resilience mechanisms did, from the records to the document, the report and the CLI.

Every number of the ``guards`` section is checked against the run's own records (the attempt
rows a breaker refused, the guard events), computed here a second, simpler way; the helpers are
checked on hand-made events, with hypothesis where a law holds. Runs are small (a few hundred
clients), so the module stays fast.
"""

from __future__ import annotations

import io
import itertools
import json
import math
import re
from collections.abc import Hashable
from typing import Any, cast

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console
from typer.testing import CliRunner

import retrysim
from retrysim.cli.app import app
from retrysim.render import report, resilience
from retrysim.results import guard_metrics as gm
from retrysim.results import metrics
from retrysim.results.document import ResultDocument
from retrysim.retry.guards import GuardEvent
from retrysim.sim import records as rec
from retrysim.sim.result import RunResult

Run = tuple[RunResult, ResultDocument]


def simulated(name: str, sets: dict[str, Any]) -> Run:
    """Bundled scenario ``name`` with ``sets`` applied, simulated: its records and document."""
    result = retrysim.simulate(retrysim.load_scenario(name).with_overrides(sets))
    return result, json.loads(json.dumps(metrics.summarize(result)))  # as result.json reads


@pytest.fixture(scope="module")
def fleet_breaker() -> Run:
    """300 workers through a 20 s outage, one breaker for the fleet, probing every 5 s."""
    return simulated(
        "thundering-herd",
        {
            "clients.count": 300,
            "policy.breaker.enabled": True,
            "policy.breaker.scope": "fleet",
            "policy.breaker.recovery_timeout": 5,
        },
    )


@pytest.fixture(scope="module")
def client_breakers() -> Run:
    """The same with a breaker per worker."""
    return simulated(
        "thundering-herd",
        {
            "clients.count": 300,
            "policy.breaker.enabled": True,
            "policy.breaker.recovery_timeout": 5,
        },
    )


@pytest.fixture(scope="module")
def budget() -> Run:
    """retry-storm with 200 clients and a token budget each."""
    return simulated(
        "retry-storm", {"clients.count": 200, "duration": 60, "policy.budget.enabled": True}
    )


@pytest.fixture(scope="module")
def limiter() -> Run:
    """300 agents in 3 s against a 50 req/s API, one send-rate limiter for the fleet."""
    return simulated(
        "api-rate-limit",
        {
            "clients.count": 300,
            "clients.arrival.end": 3,
            "policy.adaptive.limiter": True,
            "policy.adaptive.scope": "fleet",
        },
    )


def refused_rows(result: RunResult) -> np.ndarray:
    code = result.error_names.index("CircuitOpen")
    return np.asarray(result.attempts["error"] == code)


def expected_windows(result: RunResult) -> list[tuple[Hashable, float, float]]:
    """Open windows from the raw events, the documented way: from ``open`` to the instance's
    next state change or ``recovery_timeout`` later, whichever is first, or the run's end."""
    recovery = result.policy["breaker"]["recovery_timeout"]
    opened: dict[Hashable, float] = {}
    windows = []
    for event in result.guard_events:
        if event.kind != "breaker":
            continue
        if event.client in opened:
            start = opened.pop(event.client)
            windows.append((event.client, start, min(event.time, start + recovery)))
        if event.value == "open":
            opened[event.client] = event.time
    for client, start in opened.items():
        windows.append((client, start, min(result.end_time, start + recovery)))
    return windows


# --- the document against the records ----------------------------------------------------------


@pytest.mark.parametrize("which", ["fleet_breaker", "client_breakers"])
def test_breaker_numbers_are_the_records(which: str, request: pytest.FixtureRequest) -> None:
    result, doc = request.getfixturevalue(which)
    breaker = doc["guards"]["breaker"]
    refused = refused_rows(result)
    assert breaker["refused"] == int(refused.sum()) == doc["attempts"]["refused"] > 0
    assert breaker["refused_retries"] == int(np.sum(refused & (result.attempts["attempt"] > 1)))
    # A refusal never ran: no time passed, nothing was executed, nothing follows it.
    rows = result.attempts[refused]
    assert np.all(rows["start"] == rows["end"]) and not rows["executed"].any()
    states = [e.value for e in result.guard_events if e.kind == "breaker"]
    assert breaker["opened"] == states.count("open") >= 1
    assert breaker["closed"] == states.count("closed")
    assert breaker["half_open"] == states.count("half_open")
    windows = expected_windows(result)
    assert breaker["open_seconds"] == pytest.approx(sum(end - start for _, start, end in windows))
    ended_on_refusal = (result.calls["outcome"] == rec.GAVE_UP) & (
        result.calls["error"] == result.error_names.index("CircuitOpen")
    )
    assert breaker["calls_refused"] == int(ended_on_refusal.sum())
    assert doc["give_ups"]["refused"]["breaker"] == breaker["calls_refused"]
    assert "CircuitOpen" not in doc["give_ups"]["not_retried"]  # a refusal is not a bad error


def test_a_fleet_breaker_lists_its_windows(fleet_breaker: Run) -> None:
    result, doc = fleet_breaker
    breaker = doc["guards"]["breaker"]
    assert breaker["scope"] == "fleet" and breaker["peak_open_clients"] is None
    merged = gm.union([(start, end) for _, start, end in expected_windows(result)])
    assert breaker["windows"] == [list(w) for w in merged]
    assert breaker["windows_total"] == len(merged) and not breaker["windows_truncated"]
    # Its share per bin is the time open in that bin: they add up to the time open.
    width = doc["timeline"]["bin_width"]
    assert sum(breaker["open_share"]) * width == pytest.approx(breaker["open_seconds"])


def test_client_breakers_count_clients_open_at_once(client_breakers: Run) -> None:
    result, doc = client_breakers
    breaker = doc["guards"]["breaker"]
    assert breaker["scope"] == "client"
    windows = expected_windows(result)
    # The peak: the most windows covering one instant, counted at every window's start.
    peak = max(sum(s <= t < e for _, s, e in windows) for _, t, _ in windows)
    assert breaker["peak_open_clients"] == peak > 1
    width, clients = doc["timeline"]["bin_width"], doc["clients"]["count"]
    assert sum(breaker["open_share"]) * width * clients == pytest.approx(breaker["open_seconds"])
    assert all(0.0 <= share <= 1.0 for share in breaker["open_share"])


@pytest.mark.parametrize("which", ["fleet_breaker", "client_breakers"])
def test_refused_attempts_are_not_load_on_the_dependency(
    which: str, request: pytest.FixtureRequest
) -> None:
    result, doc = request.getfixturevalue(which)
    refused = refused_rows(result)
    sent = result.attempts[~refused]
    assert doc["attempts"]["total"] == len(result.attempts)  # the calls' attempts, all of them
    assert doc["attempts"]["mean_per_call"] == result.calls["attempts"].mean()
    assert doc["attempts"]["sent"] == len(sent) == doc["attempts"]["total"] - int(refused.sum())
    assert doc["load"]["amplification"] == len(sent) / len(result.calls)
    busiest = np.unique(np.floor(sent["start"]), return_counts=True)[1].max()
    assert doc["load"]["peak_attempts_per_s"] == busiest
    width = doc["timeline"]["bin_width"]
    assert np.sum(doc["timeline"]["attempts_per_s"]) * width == pytest.approx(len(sent))
    assert sum(doc["guards"]["breaker"]["refused_per_s"]) * width == pytest.approx(refused.sum())
    assert doc["jitter_spread"]["retries"] == int(np.sum(sent["attempt"] > 1))
    assert metrics.metric(doc, "attempts_sent") == len(sent)


def test_budget_numbers_are_the_events(budget: Run) -> None:
    result, doc = budget
    section = doc["guards"]["budget"]
    times = [e.time for e in result.guard_events if e.kind == "budget_refused"]
    assert section["refused"] == len(times) > 0
    asked = int(np.sum(result.attempts["attempt"] > 1)) + len(times)
    assert section["retries_asked"] == asked
    assert section["refused_share"] == len(times) / asked
    assert (section["kind"], section["scope"]) == ("tokens", "client")
    width = doc["timeline"]["bin_width"]
    assert sum(section["refused_per_s"]) * width == pytest.approx(len(times))
    # Each refusal ended one call, at its instant, on its last attempt's error.
    assert doc["give_ups"]["refused"]["budget"] == len(times)
    ended = gm.budget_refused_calls(
        result.calls, result.guard_events, result.error_names, result.policy["max_attempts"]
    )
    calls = result.calls[ended]
    assert np.all(calls["outcome"] == rec.GAVE_UP)
    assert sorted(calls["end"].tolist()) == sorted(times)
    assert np.all(calls["attempts"] < result.policy["max_attempts"])


def test_limiter_numbers_are_the_events(limiter: Run) -> None:
    result, doc = limiter
    section = doc["guards"]["limiter"]
    delays = [float(e.value) for e in result.guard_events if e.kind == "limiter_delay"]
    rates = [float(e.value) for e in result.guard_events if e.kind == "limiter_rate"]
    assert section["delays"] == len(delays) > 0
    assert section["delayed_seconds"] == pytest.approx(sum(delays))
    assert section["mean_delay"] == pytest.approx(sum(delays) / len(delays))
    assert section["throttles"] == len(rates) and section["last_rate"] == rates[-1]
    assert doc["guards"]["mechanisms"] == ["limiter"]


def test_no_mechanism_no_guards_section_and_the_load_is_unchanged() -> None:
    result, doc = simulated("thundering-herd", {"clients.count": 300})
    assert "guards" not in doc
    assert doc["attempts"]["refused"] == 0 and doc["attempts"]["sent"] == len(result.attempts)
    assert doc["load"]["amplification"] == len(result.attempts) / len(result.calls)
    for name in ("breaker_opens", "budget_refused", "limiter_delays"):
        assert metrics.metric(doc, name) is None
    assert metrics.table_metrics(["success_rate"], [doc]) == ["success_rate"]


def test_tables_add_the_rows_that_say_something(budget: Run, fleet_breaker: Run) -> None:
    _, storm = budget
    _, herd = fleet_breaker
    rows = metrics.table_metrics(["success_rate"], [storm])
    assert rows == [
        "success_rate",
        "goodput_recovery",
        "budget_refused",
        "budget_refused_share",
    ]
    rows = metrics.table_metrics(["success_rate"], [herd])
    assert "attempts_sent" in rows and "breaker_opens" in rows and "budget_refused" not in rows


# --- the helpers on hand-made events -----------------------------------------------------------


def event(time: float, value: str, client: Hashable = None) -> GuardEvent:
    return GuardEvent(time, "breaker", "b", client, value)


def test_open_windows_end_at_the_next_change_the_recovery_timeout_or_the_run() -> None:
    events = [
        event(1.0, "open"),
        event(3.0, "half_open"),  # within 5 s of opening: the change ends it
        event(3.5, "open"),
        event(20.0, "half_open"),  # nobody probed for 16.5 s: it stopped refusing after 5
        event(21.0, "closed"),
        event(30.0, "open"),  # still open when the run ends at 32
    ]
    got = gm.breaker_windows(events, end_time=32.0, recovery_timeout=5.0)
    assert got == {("b", None): [(1.0, 3.0), (3.5, 8.5), (30.0, 32.0)]}
    assert gm.breaker_windows(events, end_time=32.0)[("b", None)][1] == (3.5, 20.0)


def test_each_clients_breaker_is_its_own_instance() -> None:
    events = [event(1.0, "open", 7), event(2.0, "open", 8), event(4.0, "half_open", 7)]
    got = gm.breaker_windows(events, end_time=10.0)
    assert got == {("b", 7): [(1.0, 4.0)], ("b", 8): [(2.0, 10.0)]}
    assert gm.peak_overlap([w for ws in got.values() for w in ws]) == 2


windows_strategy = st.lists(
    st.tuples(st.floats(0, 50, allow_nan=False), st.floats(0, 20, allow_nan=False)).map(
        lambda p: (p[0], p[0] + p[1])
    ),
    max_size=12,
)


@given(windows_strategy, st.integers(1, 5), st.sampled_from([0.5, 1.0, 3.0]))
def test_open_share_integrates_to_the_time_open(
    windows: list[tuple[float, float]], instances: int, width: float
) -> None:
    """The law behind the shaded share: summed over bins, share x width x instances is the total
    open time inside the bins (each window clipped to the timeline)."""
    n_bins = math.ceil(60 / width)
    share = gm.open_share(windows, instances, width, n_bins)
    assert len(share) == n_bins
    inside = sum(min(end, n_bins * width) - min(start, n_bins * width) for start, end in windows)
    if gm.peak_overlap(windows) <= instances:  # never more open than there are breakers
        assert sum(share) * width * instances == pytest.approx(inside, abs=1e-6)
    assert all(0.0 <= s <= 1.0 for s in share)


@given(windows_strategy)
def test_union_and_peak_agree_with_brute_force(windows: list[tuple[float, float]]) -> None:
    merged = gm.union(windows)
    assert all(a[1] < b[0] for a, b in itertools.pairwise(merged))  # disjoint
    points = [t for w in windows for t in w] + [t + 1e-9 for w in windows for t in w]
    for t in points:
        covered = any(s <= t < e for s, e in windows)
        assert covered == any(s <= t < e for s, e in merged)
    if windows:
        brute = max(sum(s <= t < e for s, e in windows) for t in points)
        assert gm.peak_overlap(windows) == brute


def test_budget_refusals_are_matched_to_the_calls_they_ended() -> None:
    names = ("", "ConnectionError", "CircuitOpen")
    calls = rec.empty_calls(4)
    calls["client"] = [1, 1, 2, 2]
    calls["end"] = [5.0, 5.0, 5.0, 9.0]
    calls["outcome"] = rec.GAVE_UP
    calls["error"] = [1, 1, 2, 1]
    calls["attempts"] = [4, 2, 1, 2]  # call 0 used its last attempt; call 2 was a breaker's
    events = [
        GuardEvent(5.0, "budget_refused", "budget", 1, 4.0),  # client 1 at 5 s: call 1, not 0
        GuardEvent(9.0, "budget_refused", "budget", None, 4.0),  # a fleet budget: call 3
    ]
    mask = gm.budget_refused_calls(calls, events, names, max_attempts=4)
    assert mask.tolist() == [False, True, False, True]


def test_mechanisms_on_reads_the_resolved_settings() -> None:
    off = {"breaker": {"enabled": False}, "budget": {"enabled": False}, "adaptive": {}}
    assert gm.mechanisms_on(off) == []
    on = {
        "breaker": {"enabled": True},
        "budget": {"enabled": False, "max_total_time": 30.0},
        "adaptive": {"enabled": True, "limiter": True},
    }
    assert gm.mechanisms_on(on) == ["breaker", "budget", "adaptive", "limiter"]


# --- the report ---------------------------------------------------------------------------------


def text(renderable: Any, width: int = 200) -> str:
    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None).print(renderable)
    return buffer.getvalue()


def test_the_resilience_table_gives_the_documents_numbers(
    client_breakers: Run, budget: Run
) -> None:
    _, doc = client_breakers
    table = resilience.resilience_table(doc)
    assert table is not None
    shown = text(table)
    breaker = doc["guards"]["breaker"]
    assert re.search(rf"breaker opened\s+{breaker['opened']:,}\s+times", shown)
    assert f"{breaker['open_seconds']:,.1f}s" in shown
    assert f"at most {breaker['peak_open_clients']:,} clients' open at once" in shown
    assert f"{breaker['refused']:,}" in shown and "never sent (CircuitOpen)" in shown
    _, storm = budget
    shown = text(resilience.resilience_table(storm))
    section = storm["guards"]["budget"]
    share = section["refused_share"]
    assert f"{section['refused']:,}" in shown and share is not None
    assert f"{100 * share:.1f}% of {section['retries_asked']:,} asked" in shown
    no_guards = cast(ResultDocument, {"calls": {}})
    assert resilience.resilience_table(no_guards) is None  # no guards: no table


def test_the_header_says_which_mechanisms_are_on_and_where_from(budget: Run) -> None:
    _, doc = budget
    sources = {"budget.enabled": "--set", "budget.kind": "default", "budget.scope": ".env"}
    shown = text(report.header(doc, sources))
    assert "resilience: budget on (--set): kind=tokens (default)" in shown
    assert "scope=client (.env)" in shown
    assert "{'enabled'" not in shown  # knobs as words, never a dict
    plain = cast(
        ResultDocument, dict(doc, settings={**doc["settings"], "budget": {"enabled": False}})
    )
    assert "breaker, budget and adaptive backoff off" in text(report.header(plain))


def test_the_verdict_and_terminal_timeline_mark_the_breakers(fleet_breaker: Run) -> None:
    _, doc = fleet_breaker
    breaker = doc["guards"]["breaker"]
    assert f"breakers opened {breaker['opened']} times" in report.verdict(doc)
    chart = text(report.timeline_chart(doc, rows=1000, width=20)).splitlines()
    assert "⊘ breaker open" in chart[0]
    rows = chart[1:]
    assert len(rows) == len(breaker["open_share"])
    for row, share in zip(rows, breaker["open_share"], strict=True):
        mark = "⊘" if share >= 0.5 else "◔" if share > 0 else " "
        assert row[13] == mark, row  # right after the span and the fault column
    refusing = [i for i, r in enumerate(breaker["refused_per_s"]) if r]
    assert refusing and all("breaker ✗" in rows[i] for i in refusing)


def test_budget_refusals_are_noted_in_the_terminal_timeline(budget: Run) -> None:
    _, doc = budget
    rows = text(report.timeline_chart(doc, rows=1000, width=20)).splitlines()[1:]
    per_s = doc["guards"]["budget"]["refused_per_s"]
    for row, refused in zip(rows, per_s, strict=True):
        assert ("budget ✗" in row) == bool(refused), row
        if refused:
            assert f"budget ✗{refused:,.0f}/s" in row
    assert not any(c in "".join(rows) for c in "⊘◔")  # no breaker: no breaker column


# --- the CLI ------------------------------------------------------------------------------------


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "160", **(env or {})})


def test_run_json_has_the_guards_and_the_knobs_sources() -> None:
    result = invoke(
        "run", "thundering-herd", "--json", "--set", "clients.count=300",
        "--set", "policy.breaker.enabled=true",
        env={"RETRY__SCHEDULER_BREAKER_RECOVERY_TIMEOUT": "5"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["settings"]["breaker"]["recovery_timeout"] == 5.0
    assert doc["sources"]["breaker.enabled"] == "--set"
    assert doc["sources"]["breaker.recovery_timeout"] == "env"
    assert doc["sources"]["breaker.failure_threshold"] == "default"
    assert doc["sources"]["budget.enabled"] == "default"
    assert doc["guards"]["mechanisms"] == ["breaker"]
    assert doc["guards"]["breaker"]["refused"] == doc["attempts"]["refused"] > 0


def test_a_scenario_files_knob_is_sourced_to_the_scenario(tmp_path: Any) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        'name = "mine"\nduration = 5\n[policy]\noperation = "api"\n'
        '[policy.budget]\nenabled = true\nkind = "ratio"\n'
        '[clients]\ncount = 20\narrival = { kind = "burst" }\n[service]\nkind = "ideal"\n',
        encoding="utf-8",
    )
    result = invoke("run", str(path), "--json", "--set", "policy.budget.kind=tokens")
    assert result.exit_code == 0, result.output
    sources = json.loads(result.stdout)["sources"]
    assert sources["budget.enabled"] == "scenario"
    assert sources["budget.kind"] == "--set"
    assert sources["budget.max_tokens"] == "default"


def test_run_report_shows_the_resilience_block_and_header_line() -> None:
    result = invoke(
        "run", "thundering-herd", "--set", "clients.count=300",
        "--set", "policy.breaker.enabled=true", "--set", "policy.breaker.scope=fleet",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "resilience: breaker on (--set)" in out and "scope=fleet (--set)" in out
    assert "Resilience" in out and "refused by breaker" in out and "⊘ breaker open" in out
    assert "refused by a breaker, never sent" in out  # CircuitOpen among failed attempts
    plain = invoke("run", "thundering-herd", "--set", "clients.count=300").stdout
    assert "Resilience\n" not in plain and "⊘" not in plain and "refused by breaker" not in plain
    assert "breaker, budget and adaptive backoff off" in plain


def test_compare_budget_off_and_on_shows_readable_labels_and_guard_rows() -> None:
    result = invoke(
        "compare", "retry-storm", "--set", "policy.budget.enabled=false,true",
        "--set", "clients.count=200", "--set", "duration=60", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["rows"]
    assert [r["variant"] for r in rows] == [
        "budget.enabled=false, clients.count=200, duration=60",
        "budget.enabled=true, clients.count=200, duration=60",
    ]
    assert [r["policy.budget.enabled"] for r in rows] == [False, True]  # booleans, not strings
    off, on = rows
    assert off["budget_refused"] is None and on["budget_refused"] > 0
    assert on["goodput_recovery"] > off["goodput_recovery"]  # the budget lets goodput recover
    table = invoke(
        "compare", "retry-storm", "--set", "policy.budget.enabled=false,true",
        "--set", "clients.count=200", "--set", "duration=60",
    ).stdout  # fmt: skip
    assert "budget.enabled=true" in table and "refused by budget" in table
    assert "goodput recovered" in table


def test_settings_lists_the_mechanisms_with_sources(tmp_path: Any) -> None:
    env_file = tmp_path / "retry.env"
    env_file.write_text("RETRY__API_BREAKER_FAILURE_THRESHOLD=3\n", encoding="utf-8")
    env = {"RETRY__API_BREAKER_ENABLED": "true", "NO_COLOR": "1"}
    doc = json.loads(invoke("settings", "--json", "--env-file", str(env_file), env=env).stdout)
    breaker = doc["mechanisms"]["api"]["breaker"]
    assert breaker["enabled"] == {
        "value": True,
        "source": "env",
        "variable": "RETRY__API_BREAKER_ENABLED",
    }
    assert breaker["failure_threshold"]["value"] == 3
    assert breaker["failure_threshold"]["source"] == ".env"
    assert doc["mechanisms"]["worker"]["budget"]["kind"]["source"] == "default"
    shown = invoke("settings", "--env-file", str(env_file), env=env).stdout
    assert "Resilience mechanisms" in shown and "on (env)" in shown
    assert "RETRY__API_BREAKER_FAILURE_THRESHOLD" in shown and "RETRY__API_BUDGET_KIND" not in shown
    narrow = invoke("settings", "--env-file", str(env_file), env={**env, "COLUMNS": "100"})
    assert all(len(line) <= 100 for line in narrow.stdout.splitlines())
    quiet = invoke("settings", env={"NO_COLOR": "1"}).stdout
    assert "off for every operation" in quiet and "Resilience knobs set" not in quiet


def test_the_shell_shows_the_resilience_block() -> None:
    from retrysim.cli.shell import run_shell

    out = io.StringIO()
    commands = (
        "load thundering-herd\nset clients.count=300\nset policy.budget.enabled=true\n"
        "set policy.budget.scope=fleet\nrun\n"
    )
    code = run_shell(io.StringIO(commands), out)
    assert code == 0, out.getvalue()
    assert "Resilience" in out.getvalue() and "refused by budget" in out.getvalue()
