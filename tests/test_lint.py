"""The scenario lint: each trap, written as a scenario file, gets its one warning line naming the
file and the key, from every command that loads a scenario; ``validate --strict`` makes it an
error; a bundled scenario never has one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import retrysim
from retrysim.cli.app import app
from retrysim.model import lint as lint_module
from retrysim.model.base import Constant, Exponential, Lognormal, Normal, UniformLatency
from retrysim.model.defaults import given_keys, walk
from retrysim.model.lint import (
    BUDGET_KIND_KNOBS,
    RULES,
    SWITCH_FREE,
    SWITCHES,
    lint,
    mean_at_least,
)
from retrysim.model.marks import UsedWhen
from retrysim.model.scenario import Scenario, parse_scenario
from retrysim.retry.budget import BudgetKind, BudgetOptions
from retrysim.retry.mechanisms import MECHANISMS
from retrysim.sim.latency import mean_of


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


#: Each trap as a scenario file: (rule, TOML, the key its warning names, words it must say).
TRAPS: list[tuple[str, str, str, str]] = [
    (
        "occ-without-network",
        '[service]\nkind = "occ"\nprotocol = "read_then_write"\n',
        "service.protocol",
        "no [network]",
    ),
    (
        "budget-kind-knobs",
        '[policy.budget]\nenabled = true\nkind = "ratio"\nmax_tokens = 5\n',
        "policy.budget.max_tokens",
        'kind = "ratio" ignores it',
    ),
    (
        "budget-kind-knobs",
        '[policy.budget]\nenabled = true\nkind = "tokens"\npercent = 0.5\n',
        "policy.budget.percent",
        'kind = "tokens" ignores it',
    ),
    (
        "budget-kind-knobs",
        "[policy.budget]\nenabled = true\nwindow = 30\n",
        "policy.budget.window",
        "RETRY__WORKER_BUDGET_KIND",
    ),
    (
        "breaker-probes-at-once",
        "[policy.breaker]\nenabled = true\nrecovery_timeout = 0\n",
        "policy.breaker.recovery_timeout",
        "never refuses a retry that does not wait",
    ),
    (
        "budget-kind-knobs",
        '[policy.budget]\nenabled = true\nkind = "ratio"\nretry_cost = 2\n',
        "policy.budget.retry_cost",
        'a quota budget\'s knob, and kind = "ratio" ignores it',
    ),
    (
        "budget-kind-knobs",
        '[policy.budget]\nenabled = true\nkind = "quota"\ninitial_allowance = 5\n',
        "policy.budget.initial_allowance",
        'a ratio budget\'s knob, and kind = "quota" ignores it',
    ),
    (
        "breaker-rate-knobs",
        "[policy.breaker]\nenabled = true\nfailure_rate = 0\nminimum_calls = 20\n",
        "policy.breaker.minimum_calls",
        "failure_rate = 0 judges none",
    ),
    (
        "breaker-rate-knobs",
        "[policy.breaker]\nenabled = true\nwindow_seconds = 30\n",
        "policy.breaker.window_seconds",
        "RETRY__WORKER_BREAKER_FAILURE_RATE's (default 0)",
    ),
    (
        "nothing-to-gate",
        '[policy]\nmax_attempts = 1\n[policy.breaker]\nenabled = true\nmode = "retries"\n',
        "policy.breaker.mode",
        "it never refuses an attempt",
    ),
    (
        "nothing-to-gate",
        '[policy]\nmax_attempts = 1\n[policy.budget]\nenabled = true\nkind = "quota"\n',
        "policy.budget.enabled",
        "max_attempts = 1 makes none",
    ),
    (
        "switched-off",
        "[policy.breaker]\nfailure_threshold = 3\n",
        "policy.breaker.enabled",
        "RETRY__WORKER_BREAKER_ENABLED=true",
    ),
    (
        "switched-off",
        "[policy.adaptive]\nenabled = true\nlimiter_beta = 0.5\n",
        "policy.adaptive.limiter",
        "limiter_beta is set",
    ),
    (
        "cpu-queue-over-timeout",
        "[clients]\ncount = 1000\ntimeout = 1.0\ncpus = 1\ncpu_per_attempt = 0.01\n",
        "clients.cpu_per_attempt",
        "the last waits 10 s for the CPU",
    ),
    (
        "cpu-queue-over-timeout",
        "[clients]\ncount = 2\ntimeout = 0.5\ncpu_per_attempt = 0.5\n",
        "clients.cpu_per_attempt",
        "every attempt times out",
    ),
    (
        "cpu-queue-over-timeout",
        "[clients]\ncount = 100\ntimeout = 1.0\nthink_time = 1.0\ncpus = 1\n"
        'cpu_per_attempt = 0.05\narrival = { kind = "closed" }\n',
        "clients.cpu_per_attempt",
        "more than think_time + clients.timeout (2 s)",
    ),
    (
        "cpu-queue-over-timeout",
        "[clients]\ncount = 100\ntimeout = 1.0\ncpus = 1\ncpu_per_attempt = 0.05\n"
        'arrival = { kind = "poisson", rate = 30 }\n',
        "clients.cpu_per_attempt",
        "150% busy",
    ),
    (
        "cpu-queue-over-timeout",
        "[clients]\ncount = 600\ntimeout = 1.0\ncpus = 2\ncpu_per_attempt = 0.1\n"
        'arrival = { kind = "uniform", start = 0, end = 10 }\n',
        "clients.cpu_per_attempt",
        "300% busy",
    ),
    (
        "blackhole-without-timeout",
        '[[faults]]\nkind = "outage"\nmode = "blackhole"\nend = 5\n',
        "faults.0.mode",
        "set clients.timeout",
    ),
    (
        "capacity-loss-adds",
        '[service]\nkind = "queue"\nconcurrency = 5\n\n'
        '[[faults]]\nkind = "capacity_loss"\nend = 5\nslots = 8\n',
        "faults.0.slots",
        "adds slots",
    ),
    (
        "step-after-arrivals",
        "duration = 30\n[clients]\narrival = { kind = 'poisson', rate = 5, schedule = "
        "[{ start = 40, end = 50, rate = 9 }] }\n",
        "clients.arrival.schedule.0",
        "no call arrives in it",
    ),
    (
        "unused-key",
        '[service]\nkind = "occ"\nread_latency = 0.02\n',
        "service.read_latency",
        'read only with protocol = "read_then_write"',
    ),
    (
        "unused-key",
        "[network]\nrtt = 0.001\nsyn_retry = 3\n",
        "network.syn_retry",
        "read only with accept_backlog",
    ),
    (
        "unused-key",
        '[service]\nkind = "processor_sharing"\nqueue_limit = 5\n',
        "service.queue_limit",
        "read only with a concurrency cap",
    ),
    (
        "unused-key",
        '[service]\nkind = "lock"\non_busy = "fail"\nwait_timeout = 1.0\n',
        "service.wait_timeout",
        'read only with on_busy = "wait"',
    ),
    (
        "unused-key",
        '[service]\nkind = "queue"\nconcurrency = 3\ndrop_abandoned = true\n',
        "service.drop_abandoned",
        "read only with clients.timeout or a reset fault",
    ),
    (
        "unused-key",
        '[service]\nkind = "processor_sharing"\ncancel_abandoned = true\n',
        "service.cancel_abandoned",
        "read only with clients.timeout",
    ),
    (
        "unused-key",
        "[clients]\ncount = 4\ncpus = 2\n",
        "clients.cpus",
        "read only with cpu_per_attempt or cpu_per_connect",
    ),
    (
        "unused-key",
        '[clients]\ncount = 4\ncpu_discipline = "processor_sharing"\n',
        "clients.cpu_discipline",
        "read only with cpu_per_attempt or cpu_per_connect",
    ),
    (
        "unused-key",
        '[clients]\ncalls_per_client = 3\narrival = { kind = "poisson", rate = 5 }\n',
        "clients.calls_per_client",
        "without a Poisson arrival",
    ),
    (
        "unused-key",
        "[clients]\nthink_time = 2.0\n",
        "clients.think_time",
        "a client's later calls",
    ),
    (
        "unused-key",
        "[clients]\ntimeout = 1.0\n\n"
        '[[faults]]\nkind = "outage"\nmode = "blackhole"\nend = 5\nerror = "TimeoutError"\n',
        "faults.0.error",
        'read only with mode = "refuse"',
    ),
    # tiers and replicas (tests/test_tier_schema.py has their quiet counterparts)
    (
        "balance-one-replica",
        '[service]\nkind = "ideal"\nbalance = "random"\n',
        "service.balance",
        "nothing to balance",
    ),
    (
        "other-host-one-replica",
        "[policy]\nretry_other_host = true\n",
        "policy.retry_other_host",
        "no other host to retry on",
    ),
    (
        "deadline-without-timeout",
        "[tiers.gateway]\npropagate_deadline = true\npolicy = { max_attempts = 2 }\n"
        '[tiers.db]\nservice = { kind = "ideal" }\n',
        "tiers.gateway.propagate_deadline",
        "nothing to propagate; set clients.timeout",
    ),
    (
        "fault-every-replica",
        '[service]\nkind = "ideal"\nreplicas = 2\n'
        '[[faults]]\nkind = "outage"\nend = 5\nreplicas = [1, 0]\n',
        "faults.0.replicas",
        "the same as leaving it out",
    ),
    (
        "callers-of-the-last-tier",
        "[tiers.gateway]\npolicy = { max_attempts = 2 }\n[tiers.db]\ncallers = 4\n",
        "tiers.db.callers",
        "calls no one",
    ),
]


def write(tmp_path: Path, toml: str, name: str = "trap.toml") -> Path:
    path = tmp_path / name
    path.write_text(toml, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("rule", "toml", "key", "words"), TRAPS, ids=[f"{t[0]}:{t[2]}" for t in TRAPS]
)
def test_validate_prints_each_traps_warning_naming_file_and_key(
    tmp_path: Path, rule: str, toml: str, key: str, words: str
) -> None:
    path = write(tmp_path, toml)
    result = invoke("validate", str(path))
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line]
    prefix = f"retrysim: warning: {path}: {key}: "
    assert [line for line in warnings if line.startswith(prefix)], result.stderr
    assert any(words in line for line in warnings), (words, result.stderr)
    assert all(line.startswith("retrysim: warning: ") for line in warnings)
    assert f"ok: {path}" in result.stdout
    found = lint(parse_scenario(_toml(toml)), given_keys(parse_scenario(_toml(toml))))
    assert rule in {finding.rule for finding in found}


@pytest.mark.parametrize(("rule", "toml", "key", "words"), TRAPS[:1] + TRAPS[-1:])
def test_strict_makes_a_warning_an_error(
    tmp_path: Path, rule: str, toml: str, key: str, words: str
) -> None:
    path = write(tmp_path, toml)
    result = invoke("validate", "--strict", str(path), "redis-blip")
    assert result.exit_code == 2
    assert f"retrysim: error: {path}: {key}: " in result.stderr
    assert "retrysim: warning:" not in result.stderr
    assert f"ok: {path}" not in result.stdout and "ok: redis-blip" in result.stdout
    as_json = json.loads(invoke("validate", "--strict", "--json", str(path)).stdout)
    assert as_json[0]["ok"] is False and as_json[0]["warnings"] == []
    assert any(line.startswith(f"{path}: {key}: ") for line in as_json[0]["errors"])


def test_validate_json_carries_the_warnings_of_each_file(tmp_path: Path) -> None:
    trap = write(tmp_path, TRAPS[0][1])
    result = invoke("validate", "--json", str(trap), "lock-contention")
    assert result.exit_code == 0 and result.stderr == ""
    trapped, clean = json.loads(result.stdout)
    assert trapped["ok"] is True and trapped["errors"] == []
    assert [w.split(": ")[:2] for w in trapped["warnings"]] == [[str(trap), "service.protocol"]]
    assert clean["warnings"] == [] and clean["ok"] is True


def test_every_rule_has_a_trap_here() -> None:
    assert {rule.id for rule in RULES} == {trap[0] for trap in TRAPS}
    assert len({rule.id for rule in RULES}) == len(RULES)


def test_no_bundled_scenario_has_a_warning() -> None:
    names = list(retrysim.bundled_scenarios())
    result = invoke("validate", "--strict", *names)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    for name in names:
        scenario = retrysim.load_scenario(name)
        assert lint(scenario, given_keys(scenario)) == [], name


def test_a_key_set_to_its_default_or_where_it_is_read_gets_no_warning(tmp_path: Path) -> None:
    quiet = [
        '[service]\nkind = "occ"\nprotocol = "read_then_write"\nread_latency = 0.02\n'
        "[network]\nrtt = 0.001\n",
        "[network]\nrtt = 0.001\nsyn_retry = 1.0\n",  # the default: changes nothing either way
        "[network]\nrtt = 0.001\naccept_backlog = 10\nsyn_retry = 3\n",
        '[service]\nkind = "lock"\non_busy = "wait"\nwait_timeout = 1.0\n',
        '[policy.budget]\nenabled = true\nkind = "ratio"\npercent = 0.5\n',
        "[policy.budget]\nmax_total_time = 5\n",  # a per-call limit: needs no switch
        "[policy.breaker]\nenabled = false\nfailure_threshold = 3\n",  # off on purpose
        "[policy.breaker]\nenabled = true\nfailure_rate = 0.5\nminimum_calls = 20\n",
        '[policy]\nmax_attempts = 3\n[policy.breaker]\nenabled = true\nmode = "retries"\n',
        '[policy]\nmax_attempts = 1\n[policy.breaker]\nenabled = true\nmode = "calls"\n',
        '[policy.budget]\nenabled = true\nkind = "quota"\nretry_cost = 2\n',
        "[clients]\ncount = 10\ntimeout = 1.0\ncpus = 1\ncpu_per_attempt = 0.05\n",
        '[clients]\ncalls_per_client = 3\nthink_time = 2.0\narrival = { kind = "closed" }\n',
    ]
    for toml in quiet:
        scenario = parse_scenario(_toml(toml))
        assert lint(scenario, given_keys(scenario)) == [], toml


def test_a_set_key_counts_as_given_and_can_fix_a_trap(tmp_path: Path) -> None:
    trap = write(tmp_path, TRAPS[0][1])
    fixed = invoke("run", str(trap), "--set", "network.rtt=0.001", "--json")
    assert fixed.exit_code == 0 and "warning" not in fixed.stderr
    made = invoke(
        "run",
        "lock-contention",
        "--set",
        "policy.budget.max_tokens=5",
        "--set",
        'policy.budget.kind="ratio"',
        "--json",
    )
    assert made.exit_code == 0
    assert "lock-contention.toml: policy.budget.max_tokens: a tokens budget's knob" in made.stderr


def test_every_command_that_loads_a_scenario_warns(tmp_path: Path) -> None:
    trap = write(
        tmp_path,
        'name = "trap"\nduration = 5\n[clients]\ncount = 20\n'
        '[service]\nkind = "occ"\nprotocol = "read_then_write"\n',
    )
    line = f"retrysim: warning: {trap}: service.protocol: "
    commands = [
        ["run", str(trap), "--json"],
        ["compare", str(trap), "--set", "policy.max_attempts=2,3", "--json"],
        ["sweep", str(trap), "--grid", "policy.max_attempts=2,3", "--json"],
        ["tune", str(trap), "--search", "policy.max_attempts=2..3", "--seeds", "1", "-q"],
    ]
    for command in commands:
        result = invoke(*command, "--workers", "1") if command[0] != "run" else invoke(*command)
        assert result.exit_code == 0, (command, result.output)
        assert result.stderr.count(line) == 1, (command, result.stderr)


# --- the tables the rules read -----------------------------------------------------------------


def test_every_budget_kind_has_its_knobs_listed_and_each_is_a_knob() -> None:
    assert set(BUDGET_KIND_KNOBS) == set(get_args(BudgetKind)), (
        "add the new kind's knobs to BUDGET_KIND_KNOBS in retrysim/model/lint.py"
    )
    knobs = set(BudgetOptions.model_fields)
    for kind, used in BUDGET_KIND_KNOBS.items():
        assert used <= knobs, (kind, used - knobs)


def test_every_switch_and_knob_the_switches_name_exists() -> None:
    for mechanism, switches in SWITCHES.items():
        knobs = set(MECHANISMS[mechanism].model_fields)
        for switch, governed in switches.items():
            assert switch in knobs and (governed or set()) <= knobs, (mechanism, switch)
        assert SWITCH_FREE.get(mechanism, frozenset()) <= knobs


def test_every_used_when_mark_is_on_a_field_with_a_default() -> None:
    """A required key is always read; a mark on it would be a mistake."""
    for field in walk(_everything()):
        if any(isinstance(item, UsedWhen) for item in field.info.metadata):
            assert not field.info.is_required(), field.key


def _everything() -> Scenario:
    """A scenario holding one of each table the marks sit in."""
    return parse_scenario(
        _toml(
            '[clients]\ntimeout = 1.0\n[service]\nkind = "occ"\n[network]\nrtt = 0.001\n'
            '[[faults]]\nkind = "outage"\nend = 3\n'
        )
    )


# --- the CPU criterion's mean: a bound from below, by the model alone --------------------------

positive = st.floats(min_value=1e-6, max_value=10.0, allow_nan=False)


@st.composite
def distributions(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["constant", "uniform", "exponential", "normal", "lognormal"]))
    a, b = sorted((draw(positive), draw(positive)))
    if kind == "constant":
        return Constant(value=a)
    if kind == "uniform":
        return UniformLatency(dist="uniform", low=a, high=b)
    if kind == "exponential":
        return Exponential(dist="exponential", mean=a)
    if kind == "normal":
        negative = draw(st.sampled_from(["clip", "reflect"]))
        return Normal(dist="normal", mean=a, std=b, negative=negative)
    return Lognormal(dist="lognormal", median=a, p99=min(b, a * 1e6))


@settings(max_examples=200, deadline=None)
@given(dist=distributions())
def test_the_lints_mean_never_exceeds_the_engines(dist: Any) -> None:
    bound, mean = mean_at_least(dist), mean_of(dist)
    assert bound <= mean * (1 + 1e-9)
    if not isinstance(dist, Normal):
        assert bound == pytest.approx(mean, rel=1e-9)


def test_rules_are_pure_functions_of_the_scenario_and_the_keys() -> None:
    scenario = parse_scenario(_toml(TRAPS[0][1]))
    keys = given_keys(scenario)
    assert lint(scenario, keys) == lint(scenario, keys)
    assert lint_module.lint(scenario, frozenset()) == [
        f for f in lint(scenario, keys) if f.rule == "occ-without-network"
    ]


def _toml(text: str) -> dict[str, Any]:
    import tomllib

    return tomllib.loads(text)
