"""Shell completion of option values, through the same machinery the installed hook calls."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from retrysim.cli.app import app


def complete(line: str) -> list[str]:
    """What bash would offer for ``line`` (a trailing space: complete a new, empty word)."""
    words = line.split()
    cword = len(words) if line.endswith(" ") else len(words) - 1
    result = CliRunner().invoke(
        app,
        [],
        prog_name="retrysim",
        env={
            "_RETRYSIM_COMPLETE": "complete_bash",
            "COMP_WORDS": line,
            "COMP_CWORD": str(cword),
        },
    )
    assert result.exit_code == 0, result.output
    return result.stdout.split()


def test_scenario_argument_completes_bundled_names_and_toml_files(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text("", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("", encoding="utf-8")
    (tmp_path / "more").mkdir()
    offered = complete("retrysim run ")
    assert {"thundering-herd", "redis-blip", "mine.toml", "more/"} <= set(offered)
    assert "notes.txt" not in offered
    assert complete("retrysim run thu") == ["thundering-herd"]
    assert complete("retrysim run th") == ["three-tier-storm", "thundering-herd"]
    assert complete("retrysim validate mi") == ["mine.toml"]
    assert "redis-blip" in complete("retrysim scenarios show re")


@pytest.mark.parametrize("command", ["run redis-blip", "settings", "compare redis-blip"])
def test_profile_completes_profile_names(command: str) -> None:
    assert complete(f"retrysim {command} --profile ") == [
        "documented",
        "bindu",
        "full_jitter",
        "equal_jitter",
        "decorrelated",
        "exponential",
    ]


def test_a_profile_list_completes_its_next_item() -> None:
    assert complete("retrysim compare redis-blip --profile bindu,d") == [
        "bindu,documented",
        "bindu,decorrelated",
    ]


def test_metric_options_complete_metric_names() -> None:
    from retrysim.results.metric_table import METRIC_NAMES

    assert complete("retrysim sweep redis-blip --metrics ") == list(METRIC_NAMES)
    listed = complete("retrysim compare redis-blip --metrics success_rate,p9")
    assert {"success_rate,p95_latency", "success_rate,p99_latency"} <= set(listed)
    assert all(item.startswith("success_rate,p9") for item in listed)
    assert complete("retrysim run redis-blip --fail-under succ") == ["success_rate="]
    assert "p99_latency=" in complete("retrysim run redis-blip --fail-over p")


def test_set_and_grid_complete_dotted_keys() -> None:
    offered = complete("retrysim run redis-blip --set policy.m")
    assert {"policy.max_attempts=", "policy.min_wait=", "policy.max_wait="} <= set(offered)
    assert all(key.startswith("policy.m") and key.endswith("=") for key in offered)
    assert "faults.0.end=" in complete("retrysim sweep redis-blip --grid faults.0.")
    assert "clients.count=" in complete("retrysim compare redis-blip --set clients.c")
    assert complete("retrysim run redis-blip --set policy.max_attempts=") == []


def test_set_keys_follow_the_scenario_being_run(tmp_path: Path) -> None:
    mine = tmp_path / "mine.toml"
    mine.write_text(
        'name = "mine"\nduration = 10\n[policy]\noperation = "api"\n'
        '[clients]\ncount = 5\narrival = { kind = "burst" }\n[service]\nkind = "ideal"\n'
        '[[faults]]\nkind = "outage"\nstart = 1\nend = 2\n'
        '[[faults]]\nkind = "outage"\nstart = 3\nend = 4\n',
        encoding="utf-8",
    )
    assert "faults.1.start=" in complete(f"retrysim run {mine} --set faults.1.")


def test_completion_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert "retrysim --install-completion" in readme


def test_set_completes_every_resilience_knob_from_the_models() -> None:
    from retrysim.retry.mechanisms import MECHANISMS

    offered = complete("retrysim run redis-blip --set policy.b")
    for mechanism in ("breaker", "budget"):
        expected = {f"policy.{mechanism}.{knob}=" for knob in MECHANISMS[mechanism].model_fields}
        assert expected <= set(offered), mechanism
    assert "policy.breaker=" not in offered  # the table itself: its knobs are offered
    assert "policy.adaptive.limiter=" in complete("retrysim sweep retry-storm --grid policy.ad")


def test_set_completes_the_values_of_switches_and_literal_knobs() -> None:
    assert complete("retrysim run redis-blip --set policy.breaker.scope=") == [
        "policy.breaker.scope=client",
        "policy.breaker.scope=fleet",
    ]
    assert complete("retrysim run redis-blip --set policy.budget.kind=r") == [
        "policy.budget.kind=ratio"
    ]
    assert complete("retrysim compare retry-storm --set policy.budget.enabled=false,") == [
        "policy.budget.enabled=false,true"
    ]
    assert complete("retrysim compare retry-storm --set policy.budget.kind=ratio,") == [
        "policy.budget.kind=ratio,tokens",
        "policy.budget.kind=ratio,quota",
    ]
    assert complete("retrysim run redis-blip --set policy.breaker.mode=") == [
        "policy.breaker.mode=calls",
        "policy.breaker.mode=retries",
    ]
    assert complete("retrysim run redis-blip --set policy.adaptive.limiter=t") == [
        "policy.adaptive.limiter=true"
    ]
    # A number is the user's to type.
    assert complete("retrysim run redis-blip --set policy.breaker.recovery_timeout=") == []


def test_set_completes_service_kinds_and_fixed_set_service_fields() -> None:
    assert complete("retrysim run redis-blip --set service.kind=l") == [
        "service.kind=load_latency",
        "service.kind=lock",
    ]
    assert complete("retrysim compare redis-blip --set service.on_busy=wait,") == [
        "service.on_busy=wait,fail"
    ]
