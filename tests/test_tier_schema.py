"""Tiers and replicas at the command line: what ``validate`` says of a call graph, the lint's
warnings for tier and replica keys that do nothing, the reference's ``[tiers.NAME]``, a
``--policy`` per tier, ``--set`` into a tier (and a mistyped tier's name), and completion
from the loaded scenario's tier names."""

from __future__ import annotations

import io
import json
import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tenacity
from hypothesis import given, settings
from hypothesis import strategies as st
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from typer.testing import CliRunner

from retrysim.cli.app import app
from retrysim.cli.shell import Shell
from retrysim.cli.shell.completer import ShellCompleter
from retrysim.model.defaults import given_keys
from retrysim.model.lint import lint
from retrysim.model.reference import markdown, reference
from retrysim.model.scenario import Scenario, parse_scenario
from retrysim.model.tier_keys import (
    UnknownTierError,
    check_tier_keys,
    deadline_from,
    tier_of,
    within_tier,
)
from retrysim.runs.user_policy import PolicyImportError, split_targets
from retrysim.sim.engine import simulate

#: Three tiers, the database behind three replicas, one replica down for half the run.
THREE = """
name = "t3"
duration = 2
[policy]
operation = "api"
max_attempts = 3
[clients]
count = 10
timeout = 5
[tiers.gateway]
policy = { operation = "api", max_attempts = 3, min_wait = 0.1, max_wait = 0.2 }
service = { kind = "ideal", latency = 0.001 }
[tiers.service]
policy = { operation = "api", max_attempts = 3, min_wait = 0.1, max_wait = 0.2 }
service = { kind = "ideal", latency = 0.002 }
[tiers.database]
service = { kind = "queue", concurrency = 10, replicas = 3 }
[[tiers.database.faults]]
kind = "outage"
start = 0
end = 1
replicas = [2]
"""

#: Two tiers, the database refusing everything: every gateway attempt fails, so the gateway's
#: policy alone decides how many it makes, and each retry waits exactly 0.1 s.
TWO = """
name = "t2"
duration = 1
[policy]
operation = "api"
max_attempts = 1
[clients]
count = 10
[tiers.gateway]
policy = { operation = "api", max_attempts = 3, min_wait = 0.1, max_wait = 0.1 }
service = { kind = "ideal", latency = 0.001 }
[tiers.database]
service = { kind = "ideal", latency = 0.001 }
[[tiers.database.faults]]
kind = "outage"
end = 100
"""


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def write(tmp_path: Path, toml: str, name: str = "graph.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(toml), encoding="utf-8")
    return path


def scenario_of(toml: str) -> Scenario:
    import tomllib

    return parse_scenario(tomllib.loads(textwrap.dedent(toml)))


def findings(toml: str) -> dict[str, str]:
    """The lint's warnings for ``toml``: key -> rule."""
    scenario = scenario_of(toml)
    return {found.key: found.rule for found in lint(scenario, given_keys(scenario))}


# --- 1. validate's summary and the defaults in effect ------------------------------------------


def test_validate_names_the_call_graph_top_to_bottom(tmp_path: Path) -> None:
    path = write(tmp_path, THREE)
    result = invoke("validate", str(path))
    assert result.exit_code == 0, result.output
    assert (
        f"ok: {path}: 't3', 10 clients -> gateway (ideal) -> service (ideal) -> "
        "database (queue x3 replicas), 1 fault"
    ) in result.stdout


def test_defaults_in_effect_speak_of_the_tiers_services_never_of_an_unused_top(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, THREE)
    entry = json.loads(invoke("validate", "--json", str(path)).stdout)[0]
    keys = [default.partition(" = ")[0] for default in entry["defaults"]]
    # the database's latency is left unset (10 ms); the gateway's and service's are given
    assert "tiers.database.service.latency" in keys
    assert "tiers.gateway.service.latency" not in keys
    assert all(key.startswith("tiers.") for key in keys), keys  # no top-level service.*
    one_tier = json.loads(invoke("validate", "--json", "lock-contention").stdout)[0]
    assert "occ service" in one_tier["summary"] and " -> " not in one_tier["summary"]
    assert not any(d.startswith("tiers.") for d in one_tier["defaults"])


def test_a_one_tier_summary_counts_replicas_and_faults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'name = "r"\n[service]\nkind = "queue"\nconcurrency = 4\nreplicas = 5\n'
        '[[faults]]\nkind = "outage"\nend = 5\nreplicas = [2]\n',
    )
    result = invoke("validate", str(path))
    assert f"ok: {path}: 'r', 1 client, queue service x5 replicas, 1 fault" in result.stdout


# --- 2. the lint: tier and replica keys that do nothing ------------------------------------------

#: Each trap: TOML, the key its warning names, words the warning says (what to do included).
TRAPS = [
    (
        '[tiers.gateway]\npolicy = { max_attempts = 2 }\nservice = { kind = "ideal", '
        'balance = "power_of_two" }\n[tiers.db]\nservice = { kind = "ideal" }\n',
        "tiers.gateway.service.balance",
        "set tiers.gateway.service.replicas above 1, or drop balance",
    ),
    (
        "[tiers.gateway]\npolicy = { max_attempts = 2, retry_other_host = true }\n"
        '[tiers.db]\nservice = { kind = "ideal" }\n',
        "tiers.gateway.policy.retry_other_host",
        "go to tiers.db.service, which has one replica",
    ),
    (
        "[policy]\nretry_other_host = true\n[tiers.gateway]\npolicy = { max_attempts = 2 }\n"
        '[tiers.db]\nservice = { kind = "ideal", replicas = 3 }\n',
        "policy.retry_other_host",
        "go to tiers.gateway.service, which has one replica",
    ),
    (
        "[tiers.gateway]\npolicy = { max_attempts = 2 }\npropagate_deadline = true\n[tiers.db]\n",
        "tiers.gateway.propagate_deadline",
        "set clients.timeout, or drop propagate_deadline",
    ),
    (
        "[tiers.gateway]\npolicy = { max_attempts = 2 }\n[tiers.db]\n"
        'service = { kind = "ideal", replicas = 2 }\n'
        '[[tiers.db.faults]]\nkind = "outage"\nend = 5\nreplicas = [0, 1]\n',
        "tiers.db.faults.0.replicas",
        "the same as leaving it out",
    ),
]


@pytest.mark.parametrize(("toml", "key", "words"), TRAPS)
def test_each_trap_warns_naming_the_key_and_what_to_do(
    tmp_path: Path, toml: str, key: str, words: str
) -> None:
    path = write(tmp_path, toml)
    result = invoke("validate", str(path))
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if f"{path}: {key}: " in line]
    assert len(lines) == 1, result.stderr
    assert words in lines[0]
    strict = invoke("validate", "--strict", str(path))
    assert strict.exit_code == 2
    assert f"retrysim: error: {path}: {key}: " in strict.stderr


def test_the_same_keys_where_they_do_something_get_no_warning() -> None:
    quiet = [
        # balance and retry_other_host with replicas to pick from, at the top and below
        '[policy]\nretry_other_host = true\n[service]\nkind = "ideal"\nreplicas = 2\n'
        'balance = "least_outstanding"\n',
        "[tiers.gateway]\npolicy = { max_attempts = 2, retry_other_host = true }\n"
        '[tiers.db]\nservice = { kind = "ideal", replicas = 2, balance = "random" }\n',
        # a deadline to propagate: the clients' timeout, and passed on by the gateway
        "[clients]\ntimeout = 2\n[tiers.gateway]\npolicy = { max_attempts = 2 }\n"
        "propagate_deadline = true\n[tiers.service]\npolicy = { max_attempts = 2 }\n"
        "propagate_deadline = true\n[tiers.db]\n",
        # a fault on some replicas, not all
        '[service]\nkind = "ideal"\nreplicas = 3\n'
        '[[faults]]\nkind = "outage"\nend = 5\nreplicas = [0, 2]\n',
        # the gateway's own timeout is a deadline for the tier below it to pass on
        "[tiers.gateway]\npolicy = { max_attempts = 2 }\ntimeout = 1\n"
        "[tiers.service]\npolicy = { max_attempts = 2 }\npropagate_deadline = true\n"
        "[tiers.db]\n",
    ]
    for toml in quiet:
        assert findings(toml) == {}, toml


def test_a_deadline_reaches_down_only_through_tiers_that_pass_it_on() -> None:
    chain = (
        "[clients]\ntimeout = 2\n[tiers.gateway]\npolicy = { max_attempts = 2 }\n"
        "propagate_deadline = {gw}\n[tiers.service]\npolicy = {{ max_attempts = 2 }}\n"
        "propagate_deadline = true\n[tiers.db]\n"
    )
    passed = scenario_of(chain.replace("{gw}", "true").replace("{{", "{").replace("}}", "}"))
    stopped = scenario_of(chain.replace("{gw}", "false").replace("{{", "{").replace("}}", "}"))
    assert deadline_from(passed, "service") == 2.0
    assert deadline_from(stopped, "service") is None
    assert "tiers.service.propagate_deadline" in findings(
        chain.replace("{gw}", "false").replace("{{", "{").replace("}}", "}")
    )


def test_a_tiers_service_key_is_judged_by_the_timeout_of_the_layer_calling_it() -> None:
    untimed = (
        "[clients]\ntimeout = 1\n[tiers.gateway]\npolicy = { max_attempts = 2 }\n"
        '[tiers.db]\nservice = { kind = "queue", concurrency = 2, drop_abandoned = true }\n'
    )
    found = lint(scenario_of(untimed), given_keys(scenario_of(untimed)))
    texts = [f.text for f in found if f.key == "tiers.db.service.drop_abandoned"]
    assert len(texts) == 1 and "tiers.gateway.timeout" in texts[0]
    timed = untimed.replace("max_attempts = 2 }\n", "max_attempts = 2 }\ntimeout = 0.5\n")
    assert "tiers.db.service.drop_abandoned" not in findings(timed)
    deadline = untimed.replace(
        "max_attempts = 2 }\n", "max_attempts = 2 }\npropagate_deadline = true\n"
    )
    assert "tiers.db.service.drop_abandoned" not in findings(deadline)


# --- 3. the reference ---------------------------------------------------------------------------


def test_the_reference_documents_tiers_replicas_balance_and_other_hosts() -> None:
    text = markdown()
    assert "### `[tiers.NAME]`" in text
    sections = {section.title: section for section in reference()}
    tier = sections["`[tiers.NAME]`"]
    assert tier.table == "tiers.NAME"
    rows = {row.key: row for row in tier.rows}
    assert {"callers", "policy", "timeout", "propagate_deadline", "service", "faults"} <= set(rows)
    assert rows["policy"].about.endswith("the keys of `[policy]`")
    assert rows["faults"].about.endswith("the keys of `[[faults]]`")
    keys = {(s.table, row.key) for s in reference() for row in s.rows}
    assert ("policy", "retry_other_host") in keys
    assert ("service", "replicas") in keys and ("service", "balance") in keys
    assert ("faults", "replicas") in keys
    titles = [section.title for section in reference()]
    assert len(titles) == len(set(titles))  # each table once, a tier's policy not again


# --- 4. --policy per tier -----------------------------------------------------------------------


@pytest.fixture
def policies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A module of the user's own with two tenacity policies, in the current folder."""
    name = f"tier_policies_{os.getpid()}"
    (tmp_path / f"{name}.py").write_text(
        "import tenacity\n"
        "once = tenacity.Retrying(stop=tenacity.stop_after_attempt(1))\n"
        "five = tenacity.Retrying(stop=tenacity.stop_after_attempt(5), "
        "wait=tenacity.wait_fixed(0.1))\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def run_json(*args: str) -> dict[str, Any]:
    result = invoke("run", *args, "--json", "-q")
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_a_tiers_policy_replaces_that_tiers_retries_alone(tmp_path: Path, policies: str) -> None:
    path = write(tmp_path, TWO)
    # the scenario's gateway: 3 attempts, 2 waits of 0.1 s before every call fails
    assert run_json(str(path))["latency"]["mean"] == pytest.approx(0.201)
    once = run_json(str(path), "--policy", f"gateway={policies}:once")
    assert once["latency"]["mean"] == pytest.approx(0.001)  # no retry at the gateway
    five = run_json(str(path), "--policy", f"gateway={policies}:five")
    assert five["latency"]["mean"] == pytest.approx(0.401)  # 4 waits of 0.1 s
    assert five["arguments"] == ["--policy", f"gateway={policies}:five"]
    # the clients' policy and a tier's, together: the clients' 5 attempts each wait on top
    both = run_json(
        str(path), "--policy", f"{policies}:five", "--policy", f"gateway={policies}:once"
    )
    assert both["latency"]["mean"] == pytest.approx(5 * 0.001 + 4 * 0.1)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--policy", "gatewy={m}:once"], "no tier 'gatewy'; did you mean 'gateway'?"),
        (["--policy", "database={m}:once"], "tier 'database' is the last and calls no one"),
        (["--policy", "gateway={m}:once", "--policy", "gateway={m}:five"], "has a policy"),
        (["--policy", "gateway={m}:nope"], "--policy gateway={m}:nope: "),
        (
            ["--policy", "gateway={m}:once", "--set", "tiers.gateway.policy.max_attempts=2"],
            "--set tiers.gateway.policy.max_attempts has no effect with --policy gateway=",
        ),
    ],
)
def test_a_bad_tier_policy_is_one_line_and_exit_2(
    tmp_path: Path, policies: str, args: list[str], words: str
) -> None:
    path = write(tmp_path, TWO)
    result = invoke("run", str(path), *[a.format(m=policies) for a in args], "-q")
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("retrysim: error: ")
    assert words.format(m=policies) in lines[0]
    if "gatewy" in words:
        assert "(its tiers: gateway, database)" in lines[0]


def test_a_tiers_policy_leaves_the_clients_set_and_profile_free(
    tmp_path: Path, policies: str
) -> None:
    path = write(tmp_path, TWO)
    result = invoke(
        "run", str(path), "--policy", f"gateway={policies}:once", "--profile", "bindu",
        "--set", "policy.max_attempts=2", "--json", "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.output


def test_compare_takes_a_tiers_policy_as_a_variant(tmp_path: Path, policies: str) -> None:
    path = write(tmp_path, TWO)
    result = invoke(
        "compare", str(path), "--policy", f"gateway={policies}:once",
        "--policy", f"gateway={policies}:five", "--json", "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["rows"]
    assert [row["p50_latency"] for row in rows] == pytest.approx([0.001, 0.401])


@settings(max_examples=12, deadline=None)
@given(top=st.integers(1, 4), gateway=st.integers(1, 4))
def test_amplification_is_the_product_of_the_attempts_of_each_caller(
    top: int, gateway: int
) -> None:
    """Under total failure, every layer makes all its attempts: the database receives
    clients x top x gateway requests, the gateway's count set by the user's own Retrying."""
    scenario = scenario_of(TWO).with_overrides({"policy.max_attempts": top})
    mine = tenacity.Retrying(stop=tenacity.stop_after_attempt(gateway))
    result = simulate(scenario, retryings={"gateway": mine})
    gateway_run, database = result.tiers
    assert len(gateway_run.attempts) == 10 * top
    assert len(database.attempts) == 10 * top * gateway


def test_the_engine_refuses_a_policy_for_a_tier_it_does_not_have() -> None:
    with pytest.raises(UnknownTierError, match="did you mean 'gateway'"):
        simulate(scenario_of(TWO), retryings={"gatewai": tenacity.Retrying()})


def test_policy_targets_split_into_the_clients_and_each_tiers() -> None:
    assert split_targets(["m:a", "gateway=m:b", "db = m:c"]) == (
        "m:a",
        {"gateway": "m:b", "db": "m:c"},
    )
    with pytest.raises(PolicyImportError, match="given twice"):
        split_targets(["m:a", "m:b"])


# --- 5. --set into a tier ------------------------------------------------------------------------


def test_set_a_tiers_policy_through_run_compare_and_sweep(tmp_path: Path) -> None:
    path = write(tmp_path, TWO)
    once = run_json(str(path), "--set", "tiers.gateway.policy.max_attempts=1")
    assert once["latency"]["mean"] == pytest.approx(0.001)
    for command, option in (("compare", "--set"), ("sweep", "--grid")):
        result = invoke(
            command, str(path), option, "tiers.gateway.policy.max_attempts=1,3", "--json", "-q"
        )
        assert result.exit_code == 0, result.output
        rows = json.loads(result.stdout)["rows"]
        assert [row["tiers.gateway.policy.max_attempts"] for row in rows] == [1, 3]
        assert [row["p50_latency"] for row in rows] == pytest.approx([0.001, 0.201])


@pytest.mark.parametrize(
    ("command", "option"), [("run", "--set"), ("compare", "--set"), ("sweep", "--grid")]
)
def test_a_mistyped_tier_in_set_suggests_the_closest(
    tmp_path: Path, command: str, option: str
) -> None:
    path = write(tmp_path, THREE)
    result = invoke(command, str(path), option, "tiers.gatewy.policy.max_attempts=1,3", "-q")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"retrysim: error: {option} tiers.gatewy.policy.max_attempts: no tier 'gatewy'; "
        "did you mean 'gateway'? (its tiers: gateway, service, database)"
    )


def test_a_tier_key_on_a_scenario_without_tiers_says_so() -> None:
    result = invoke("run", "redis-blip", "--set", "tiers.db.service.replicas=2", "-q")
    assert result.exit_code == 2
    assert "scenario 'redis-blip' has no tiers" in result.stderr


def test_replacing_the_whole_graph_names_no_tier_and_passes() -> None:
    scenario = scenario_of(THREE)
    check_tier_keys(scenario, ["tiers", "policy.max_attempts", "tiers.service.timeout"])
    with pytest.raises(UnknownTierError):
        check_tier_keys(scenario, ["tiers.servce.timeout"])
    assert tier_of("tiers.db.service") == "db" and tier_of("tiers") is None
    assert within_tier("tiers.db.service.kind") == "service.kind"
    assert within_tier("policy.profile") == "policy.profile"


# --- completion ----------------------------------------------------------------------------------


def shell_with(path: Path) -> Shell:
    shell = Shell(io.StringIO())
    shell.execute(f"load {path}")
    return shell


def complete(shell: Shell, line: str) -> list[str]:
    found = ShellCompleter(shell).get_completions(Document(line), CompleteEvent())
    return [c.text for c in found]


def test_the_shell_completes_tier_names_and_their_keys(tmp_path: Path) -> None:
    shell = shell_with(write(tmp_path, THREE))
    assert complete(shell, "set tiers.") == [
        "tiers.gateway.",
        "tiers.service.",
        "tiers.database.",
    ]
    assert "tiers.gateway.policy.max_attempts=" in complete(shell, "set tiers.gateway.policy.m")
    assert complete(shell, "set tiers.gateway.policy.profile=bi") == ["bindu"]
    assert complete(shell, "set tiers.database.service.balance=p") == ["power_of_two"]
    assert complete(shell, "compare tiers.gateway.policy.operation=a") == ["api"]
    # the last tier calls no one: no policy, timeout or deadline of its calls to offer
    assert complete(shell, "set tiers.database.") == [
        "tiers.database.service.",
        "tiers.database.faults.",
    ]


def test_the_shells_set_refuses_a_mistyped_tier(tmp_path: Path) -> None:
    shell = shell_with(write(tmp_path, THREE))
    shell.execute("set tiers.gatewy.policy.max_attempts=1")
    assert isinstance(shell.stdout, io.StringIO)
    out = shell.stdout.getvalue()
    assert "no tier 'gatewy'; did you mean 'gateway'?" in out
    assert shell.loaded is not None and "gatewy" not in shell.loaded.data["tiers"]


def bash_complete(line: str) -> list[str]:
    words = line.split()
    cword = len(words) if line.endswith(" ") else len(words) - 1
    result = CliRunner().invoke(
        app,
        [],
        prog_name="retrysim",
        env={"_RETRYSIM_COMPLETE": "complete_bash", "COMP_WORDS": line, "COMP_CWORD": str(cword)},
    )
    return result.output.split()


def test_set_completes_each_calling_tiers_policy_knobs(tmp_path: Path) -> None:
    path = write(tmp_path, THREE)
    offered = bash_complete(f"retrysim run {path} --set tiers.gateway.policy.b")
    assert "tiers.gateway.policy.budget.kind=" in offered
    assert "tiers.gateway.policy.breaker.enabled=" in offered
    assert bash_complete(f"retrysim run {path} --set tiers.service.policy.budget.kind=r") == [
        "tiers.service.policy.budget.kind=ratio"
    ]
    assert bash_complete(f"retrysim run {path} --set tiers.database.policy") == []
    assert "tiers.database.service.replicas=" in bash_complete(
        f"retrysim run {path} --set tiers.database.service.r"
    )
