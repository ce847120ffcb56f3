"""``retrysim check`` end to end: the issue's done-when cases through the CLI, both sides read
from their files alone, git revisions, the paired interval, the JUnit structure CI reads, and
the same check giving the same JSON."""

from __future__ import annotations

import json
import math
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from retrysim.cli.app import app
from retrysim.render.junit import WORSE_CASE
from retrysim.runs.check import paired_interval
from retrysim.runs.sweep import t95

#: thundering-herd made small: 1,000 workers for 20 s (about 0.1 s a run). Its scheduler calls
#: meet a 20 s outage, so RETRY__SCHEDULER_MAX_ATTEMPTS 3 -> 10 doubles the load.
CONFIG = """\
scenarios = ["thundering-herd"]
seeds = 3

[gates]
amplification = "<= before * 1.1"
success_rate = ">= 0.2"

[scenario.thundering-herd]
set = { duration = 20, "clients.count" = 1000 }
"""
#: No gates: only a watched metric worse beyond its interval can fail it.
NO_GATES = """\
scenarios = ["thundering-herd"]
seeds = 3
watch = ["amplification"]

[scenario.thundering-herd]
set = { duration = 20, "clients.count" = 1000 }
"""
#: A second scenario, whose scheduler calls meet no outage this short.
TWO_SCENARIOS = (
    CONFIG.replace('["thundering-herd"]', '["thundering-herd", "redis-blip"]')
    + '\n[scenario.redis-blip]\nset = { duration = 10, "clients.count" = 50 }\n'
)
MAIN = "RETRY__SCHEDULER_MAX_ATTEMPTS=3\n"
RAISED = "RETRY__SCHEDULER_MAX_ATTEMPTS=10\n"
#: Harmless: a line retrysim does not read and a setting at its documented default.
HARMLESS = "LOG_LEVEL=debug\nRETRY__SCHEDULER_MAX_ATTEMPTS=3\nRETRY__SCHEDULER_MAX_WAIT=8\n"


def check(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(
        app, ["check", "--workers", "1", "-q", *args], env={"COLUMNS": "200", **(env or {})}
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "retrysim.toml").write_text(CONFIG)
    (tmp_path / ".env.main").write_text(MAIN)
    (tmp_path / "out").mkdir()
    return tmp_path


# --- done when ----------------------------------------------------------------------------------


def test_a_change_that_raises_load_beyond_its_gate_exits_1_naming_the_gate(folder: Path) -> None:
    (folder / ".env").write_text(RAISED)
    result = check(
        "--before", ".env.main", "--after", ".env", "--junit", "out/junit.xml",
        "--html", "out/check.html",
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    verdict = result.stdout.strip().splitlines()[-3]  # then "wrote out/junit.xml", the page
    assert verdict.startswith("check failed: thundering-herd: gate(s) broken: amplification")
    assert "<= before * 1.1" in verdict
    assert "RETRY__SCHEDULER_MAX_ATTEMPTS: 3 -> 10" in result.stdout
    suite = ET.parse(folder / "out" / "junit.xml").getroot()
    failures = {case.get("name"): case.find("failure") for case in suite.iter("testcase")}
    broken = failures["gate amplification <= before * 1.1"]
    assert broken is not None
    assert "limit" in broken.get("message", "") and "before 2.92x" in broken.get("message", "")
    assert failures["gate success_rate >= 0.2"] is None  # more attempts: more calls succeed
    page = (folder / "out" / "check.html").read_text(encoding="utf-8")
    # the page's verdict: its tone word, then the line without its "check failed: "
    assert "Fail: " + verdict.removeprefix("check failed: ").replace("<", "&lt;") in page
    assert "RETRY__SCHEDULER_MAX_ATTEMPTS=3" in page and "RETRY__SCHEDULER_MAX_ATTEMPTS=10" in page
    assert "retrysim check --before .env.main --after .env" in page  # how to run it again
    # before against after, drawn: the metrics' bars and the latency CDFs, each labelled with
    # both sides' figures
    labels = re.findall(r'<svg[^>]*role="img" aria-label="([^"]*)"', page)
    assert len(labels) == 2
    assert all("before:" in label and "after:" in label for label in labels)
    assert "load 6.00x" in labels[0]  # the raised side's amplification, as the table says


def test_a_harmless_change_exits_0(folder: Path) -> None:
    (folder / ".env").write_text(HARMLESS)
    result = check(
        "--before", ".env.main", "--after", ".env", "--junit", "out/junit.xml",
        "--html", "out/check.html",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-3].startswith("check passed: 1 scenario(s), 2 gate")
    assert "Pass: 1 scenario(s), 2 gate" in (folder / "out" / "check.html").read_text(
        encoding="utf-8"
    )
    suite = ET.parse(folder / "out" / "junit.xml").getroot()
    assert suite.get("failures") == "0" and suite.get("tests") == "3"


def test_a_watched_metric_worse_beyond_its_interval_fails_with_no_gate(folder: Path) -> None:
    (folder / "retrysim.toml").write_text(NO_GATES)
    (folder / ".env").write_text(RAISED)
    result = check("--before", ".env.main", "--json")
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    (scenario,) = doc["scenarios"]
    assert scenario["gates"] == []
    rows = {row["name"]: row for row in scenario["metrics"]}
    low, high = rows["amplification"]["interval"]
    assert 0 < low <= rows["amplification"]["change"] <= high
    assert rows["amplification"]["worse"] and rows["amplification"]["watched"]
    # Worse too, but not watched: shown, and it fails nothing.
    assert rows["p99_latency"]["worse"] and not rows["p99_latency"]["watched"]
    assert doc["verdict"] == (
        "check failed: thundering-herd: worse beyond the interval: amplification"
    )


# --- the sides: files alone, git revisions ---------------------------------------------------


def test_an_exported_setting_cannot_hide_the_change(folder: Path) -> None:
    """Read through the environment, RETRY__SCHEDULER_MAX_ATTEMPTS=3 would make both sides 3
    and the check pass; each side is its file alone, so the change is still judged."""
    (folder / ".env").write_text(RAISED)
    result = check("--before", ".env.main", "--json", env={"RETRY__SCHEDULER_MAX_ATTEMPTS": "3"})
    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout)["ignored_environment"] == ["RETRY__SCHEDULER_MAX_ATTEMPTS"]
    assert (
        "retrysim: warning: RETRY__SCHEDULER_MAX_ATTEMPTS set in the environment: ignored by "
        "check" in result.stderr
    )


def git(folder: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def repo(folder: Path) -> Path:
    """A repository whose first commit has no .env, the second the main one, the third the
    raised one."""
    git(folder, "init", "-q")
    git(folder, "add", "retrysim.toml")
    git(folder, "commit", "-qm", "config")
    (folder / ".env").write_text(MAIN)
    git(folder, "add", ".env")
    git(folder, "commit", "-qm", "main settings")
    (folder / ".env").write_text(RAISED)
    git(folder, "commit", "-qam", "raise attempts")
    return folder


def test_before_at_a_git_revision_reads_the_env_as_it_was(repo: Path) -> None:
    earlier = check("--before", "git:HEAD~1", "--json")
    assert earlier.exit_code == 1, earlier.output
    doc = json.loads(earlier.stdout)
    assert doc["before"] == {
        "origin": "git:HEAD~1:.env",
        "note": "",
        "lines": {"RETRY__SCHEDULER_MAX_ATTEMPTS": "3"},
    }
    assert doc["settings_diff"] == [
        {"variable": "RETRY__SCHEDULER_MAX_ATTEMPTS", "before": "3", "after": "10"}
    ]
    same = check("--json")  # --before git:HEAD, the default: nothing changed since
    assert same.exit_code == 0, same.output
    assert json.loads(same.stdout)["settings_diff"] == []


def test_an_env_absent_at_the_revision_is_the_defaults_said_in_the_report(repo: Path) -> None:
    result = check("--before", "git:HEAD~2", "--json")
    doc = json.loads(result.stdout)
    assert doc["before"]["lines"] == {}
    assert doc["before"]["note"].startswith(".env did not exist at HEAD~2 (")
    assert doc["before"]["note"].endswith("before is the documented defaults")
    assert result.exit_code == 1  # the defaults' 3 attempts against 10
    shown = check("--before", "git:HEAD~2")
    assert ".env did not exist at HEAD~2" in shown.stdout


@pytest.mark.parametrize(
    ("before", "says"),
    [
        ("git:no-such-branch", "--before git:no-such-branch: unknown revision 'no-such-branch'"),
        ("git:", "--before git:: give a revision after git:"),
    ],
)
def test_a_bad_revision_is_one_line_and_exit_2(repo: Path, before: str, says: str) -> None:
    result = check("--before", before)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == f"retrysim: error: {says}" or says in result.stderr


# --- the interval ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("df", "t"), [(1, 12.706), (2, 4.303), (4, 2.776), (10, 2.228), (29, 2.045), (30, 2.042)]
)
def test_t_matches_the_published_table(df: int, t: float) -> None:
    assert t95(df) == t


def test_t_is_the_normal_value_beyond_30_degrees_of_freedom() -> None:
    assert t95(31) == t95(1000) == 1.96


def test_the_paired_interval_is_mean_plus_minus_t_sd_over_root_n() -> None:
    interval = paired_interval([1.0, 2.0, 3.0])  # mean 2, sd 1, n 3
    assert interval is not None
    low, high = interval
    half = 4.303 / math.sqrt(3)
    assert (low, high) == pytest.approx((2 - half, 2 + half))
    assert paired_interval([0.5, 0.5, 0.5]) == (0.5, 0.5)  # same change every seed: a point
    assert paired_interval([0.5]) is None  # one seed: no interval


# --- JUnit and JSON ---------------------------------------------------------------------------


def test_junit_has_the_structure_ci_reporters_read(folder: Path) -> None:
    (folder / ".env").write_text(RAISED)
    (folder / "retrysim.toml").write_text(TWO_SCENARIOS)
    result = check("--before", ".env.main", "--junit", "out/junit.xml")
    assert result.exit_code == 1, result.output
    root = ET.parse(folder / "out" / "junit.xml").getroot()
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [
        "retrysim.check.thundering-herd",
        "retrysim.check.redis-blip",
    ]
    for suite in suites:
        cases = suite.findall("testcase")
        assert int(suite.get("tests", "-1")) == len(cases) == 3  # two gates, and "no worse"
        failed = [c for c in cases if c.find("failure") is not None]
        assert int(suite.get("failures", "-1")) == len(failed)
        for case in cases:
            assert case.get("classname") == suite.get("name")
            assert case.get("name") and float(case.get("time", "x")) == 0
        assert cases[-1].get("name") == WORSE_CASE
        for case in failed:
            failure = case.find("failure")
            assert failure is not None and failure.get("message")
    assert int(root.get("tests", "-1")) == 6
    assert int(root.get("failures", "-1")) == sum(int(s.get("failures", "0")) for s in suites)
    herd = suites[0].findall("testcase")
    message = herd[-1].find("failure").get("message", "")  # type: ignore[union-attr]
    assert "amplification: 2.92x -> 6.00x" in message and "95% interval" in message
    # redis-blip's scheduler calls are not in a 20 s outage here: raising attempts is harmless.
    assert all(c.find("failure") is None for c in suites[1].findall("testcase"))


def test_the_same_check_gives_the_same_json_on_any_number_of_workers(folder: Path) -> None:
    (folder / ".env").write_text(RAISED)
    first = check("--before", ".env.main", "--json")
    again = CliRunner().invoke(
        app, ["check", "--workers", "2", "-q", "--before", ".env.main", "--json"]
    )
    assert first.exit_code == again.exit_code == 1
    assert first.stdout == again.stdout
    doc = json.loads(first.stdout)
    assert doc["schema_version"] == 1
    assert doc["scenarios"][0]["seeds"] == [42, 43, 44]  # the scenario's seed onwards


def test_seeds_and_scenario_options_narrow_the_check(folder: Path) -> None:
    (folder / ".env").write_text(HARMLESS)
    result = check(
        "--before", ".env.main", "--seeds", "2", "--scenario", "thundering-herd", "--json"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["scenarios"][0]["seeds"] == [42, 43]


def test_the_page_escapes_what_the_user_named(tmp_path: Path) -> None:
    (tmp_path / "ops").mkdir()
    (tmp_path / "ops" / "a<b>&.toml").write_text(
        'name = "<i>x</i>"\nduration = 5\n[clients]\ncount = 10\n[service]\nkind = "ideal"\n'
    )
    (tmp_path / "retrysim.toml").write_text('scenarios = ["ops/a<b>&.toml"]\nseeds = 2\n')
    (tmp_path / ".env").write_text("RETRY__API_MAX_ATTEMPTS=5\n")
    (tmp_path / "before.env").write_text("RETRY__API_MAX_ATTEMPTS=<4>\n")  # refused: not a number
    refused = check("--before", "before.env", "--html", "check.html")
    assert refused.exit_code == 2 and "RETRY__API_MAX_ATTEMPTS" in refused.stderr
    (tmp_path / "before.env").write_text("RETRY__API_MAX_ATTEMPTS=4 # <b>\n")
    result = check("--before", "before.env", "--html", "check.html")
    assert result.exit_code == 0, result.output
    page = (tmp_path / "check.html").read_text(encoding="utf-8")
    assert "ops/a&lt;b&gt;&amp;.toml" in page and "a<b>" not in page


def test_settings_read_from_a_file_alone_ignore_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from retrysim.retry.settings import load_settings

    monkeypatch.setenv("RETRY__API_MAX_ATTEMPTS", "7")
    monkeypatch.setenv("RETRY__API_MIN_WAIT", "2")
    (tmp_path / "x.env").write_text("RETRY__API_MAX_ATTEMPTS=5\n")
    alone = load_settings(tmp_path / "x.env", warn=False, environment=False)
    assert (alone.api_max_attempts, alone.api_min_wait) == (5, 1.0)  # the file's, the default
    both = load_settings(tmp_path / "x.env", warn=False)
    assert (both.api_max_attempts, both.api_min_wait) == (7, 2.0)  # the environment wins


# --- a call graph's tiers -----------------------------------------------------------------------

TIERS = """\
scenarios = ["three-tier-storm"]
seeds = 2

[scenario.three-tier-storm]
set = { duration = 15 }

[scenario.three-tier-storm.gates.tiers.database]
attempts_per_call = "<= 2"

[gates]
"tiers.service.success_rate" = ">= 0.5"
"""


def test_a_gate_on_a_tier_reads_that_tiers_figure(tmp_path: Path) -> None:
    (tmp_path / "retrysim.toml").write_text(TIERS)
    (tmp_path / ".env").write_text("")
    result = check("--before", ".env", "--json")
    assert result.exit_code == 1, result.output
    (scenario,) = json.loads(result.stdout)["scenarios"]
    rows = {row["name"]: row for row in scenario["metrics"]}
    database = rows["tiers.database.attempts_per_call"]
    # The bottom tier's figure is the graph's own bottom_requests_per_call.
    assert database["after"] == rows["bottom_requests_per_call"]["after"] > 2
    gates = {gate["metric"]: gate for gate in scenario["gates"]}
    assert gates["tiers.service.success_rate"]["holds"] is True
    assert gates["tiers.database.attempts_per_call"]["holds"] is False
    shown = f"{database['after']:.3f}"
    assert gates["tiers.database.attempts_per_call"]["message"] == (
        f"tiers.database.attempts_per_call = {shown}, limit 2.000 (<= 2.0): broken"
    )


@pytest.mark.parametrize(
    ("gate", "says"),
    [
        (
            '"tiers.databse.attempts_per_call" = "<= 2"',
            "gates.tiers.databse.attempts_per_call: scenario three-tier-storm has no tier "
            "'databse' (did you mean 'database'?) (its tiers: gateway, service, database)",
        ),
        (
            '"tiers.database.attempts" = "<= 2"',
            "gates.tiers.database.attempts: a tier's figure is tiers.NAME.FIELD, FIELD one of",
        ),
    ],
)
def test_a_gate_on_a_tier_the_scenario_lacks_is_one_line(
    tmp_path: Path, gate: str, says: str
) -> None:
    (tmp_path / "retrysim.toml").write_text(
        'scenarios = ["three-tier-storm"]\n[gates]\n' + gate + "\n"
    )
    (tmp_path / ".env").write_text("")
    result = check("--before", ".env")
    assert result.exit_code == 2, result.output
    assert f"retrysim: error: retrysim.toml: {says}" in result.stderr


def test_a_missing_env_after_is_the_defaults_said_in_the_report(tmp_path: Path) -> None:
    (tmp_path / "retrysim.toml").write_text(
        'scenarios = ["redis-blip"]\nseeds = 2\n[scenario.redis-blip]\nset = { duration = 10 }\n'
    )
    (tmp_path / "before.env").write_text("RETRY__SCHEDULER_MAX_ATTEMPTS=3\n")  # the default
    result = check("--before", "before.env", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["after"]["note"] == ".env does not exist: after is the documented defaults"
    assert doc["settings_diff"] == [
        {"variable": "RETRY__SCHEDULER_MAX_ATTEMPTS", "before": "3", "after": None}
    ]
    # --after names the file: missing is an error, not the defaults.
    assert check("--before", "before.env", "--after", ".env").exit_code == 2
