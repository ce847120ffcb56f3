"""Every CLI command through Typer's CliRunner, the shell through a pipe, the JSON shape."""

from __future__ import annotations

import csv
import io
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import retrysim
from retrysim.cli.app import app
from retrysim.cli.shell import run_shell
from retrysim.retry.options import TABLES

WIDE = {"COLUMNS": "160"}
SMALL = ["--set", "clients.count=300"]  # keeps thundering-herd quick in tests


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, list(args), env={**WIDE, **(env or {})})


# --- the result document -------------------------------------------------------------------------

NUMBER = (int, float)
OPTIONAL = (int, float, type(None))
SCHEMA: dict[str, Any] = {
    "schema_version": int,
    "scenario": str,
    "source": str,
    "description": str,
    "seed": int,
    "profile": str,
    "settings": {
        "operation": str,
        "profile": str,
        "max_attempts": int,
        "min_wait": NUMBER,
        "max_wait": NUMBER,
        "multiplier": OPTIONAL,
        "jitter": NUMBER,
        "max_delay": OPTIONAL,
        "respect_retry_after": bool,
        "attempt_timeout": OPTIONAL,
        "rate_limited": dict,
        "server_error": dict,
        "connection_error": dict,
        "timeout_error": dict,
        "breaker": dict,
        "budget": dict,
        "adaptive": dict,
        "hedge": dict,
        "overrides": list,
    },
    "calls": {
        "total": int,
        "succeeded": int,
        "failed": int,
        "unfinished": int,
        "success_rate": OPTIONAL,
    },
    "attempts": {
        "total": int,
        "retries": int,
        "retry_rate": OPTIONAL,
        "mean_per_call": OPTIONAL,
        "max_per_call": int,
        "sent": int,
        "refused": int,
    },
    "retry_success_rate": OPTIONAL,
    "latency": {
        "mean": OPTIONAL,
        "p50": OPTIONAL,
        "p95": OPTIONAL,
        "p99": OPTIONAL,
        "max": OPTIONAL,
    },
    "latency_quantiles": list,
    "latency_overhead": (dict, type(None)),
    "retry_wait": {"total": NUMBER, "mean_per_call": OPTIONAL},
    "failures_by_type": dict,
    "final_errors": dict,
    "load": {
        "peak_attempts_per_s": NUMBER,
        "amplification": OPTIONAL,
        "capacity": OPTIONAL,
        "peak_over_capacity": OPTIONAL,
    },
    "jitter_spread": {
        "retries": int,
        "peak_share_100ms": OPTIONAL,
        "first_retry_peak_share_100ms": OPTIONAL,
        "edges": list,
        "counts": list,
    },
    "duplicates": int,
    "wasted_work": int,
    "timeline": {
        "bin_width": NUMBER,
        "labels": list,
        "attempts_per_s": list,
        "goodput_per_s": list,
    },
    "faults": list,
    "arrival_windows": list,
    "clients": {
        "count": int,
        "calls_per_client": (int, type(None)),
        "arrival": str,
        "offered_rate": (float, type(None)),
        "spikes": list,
        "arrivals_end": NUMBER,
    },
    "policy_facts": {
        "retried_errors": list,
        "wait_ranges": list,
        "min_total_wait": NUMBER,
        "worst_case_total_wait": NUMBER,
    },
    "give_ups": {
        "not_retried": dict,
        "during_fault": int,
        "refused": {"budget": int, "breaker": int},
    },
    "recovery": (dict, type(None)),
    "outages": list,
    "diagnoses": list,
    "virtual_time": NUMBER,
    "wall_time": NUMBER,
    "events": int,
    "engine": str,
    "engine_note": (str, type(None)),
    "stopped": (str, type(None)),
    "sources": dict,
    "arguments": list,
}


def check_shape(doc: Any, schema: Any, where: str = "") -> None:
    if isinstance(schema, dict):
        assert isinstance(doc, dict), where
        assert set(doc) == set(schema), f"{where}: keys {sorted(set(doc) ^ set(schema))}"
        for key, sub in schema.items():
            check_shape(doc[key], sub, f"{where}.{key}")
    else:
        assert isinstance(doc, schema) and not (
            isinstance(doc, bool)
            and bool not in (schema if isinstance(schema, tuple) else (schema,))
        ), f"{where}: {doc!r}"


def test_run_json_has_the_documented_keys_and_types() -> None:
    result = invoke("run", "thundering-herd", *SMALL, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    check_shape(doc, SCHEMA)
    assert doc["calls"]["total"] == 900  # 300 workers x 3 calls each
    assert doc["latency_overhead"] is not None  # the scenario has faults: baseline was run
    assert len(doc["latency_quantiles"]) == 101
    assert doc["sources"]["max_attempts"] == "default"


def test_run_report_has_every_section() -> None:
    result = invoke("run", "thundering-herd", *SMALL)
    assert result.exit_code == 0, result.output
    for section in (
        "thundering-herd",
        "Outcome",
        "Load",
        "Latency per call",
        "Jitter spread",
        "Attempts per second over time",
        "⚡",
    ):
        assert section in result.stdout, section


def test_run_same_seed_same_document_different_seed_different() -> None:
    def doc(*extra: str) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(invoke("run", "network-timeouts", "--json", *extra).stdout)
        out.pop("wall_time")
        return out

    assert doc("--seed", "5") == doc("--seed", "5")
    assert doc("--seed", "5") != doc("--seed", "6")


def test_set_profile_and_env_change_the_effective_policy(tmp_path: Path) -> None:
    env_file = tmp_path / "retry.env"
    env_file.write_text("RETRY__SCHEDULER_MAX_ATTEMPTS=7\n", encoding="utf-8")
    result = invoke(
        "run",
        "redis-blip",
        "--json",
        "--env-file",
        str(env_file),
        "--set",
        "policy.min_wait=0.25",
        "--profile",
        "full_jitter",
    )
    doc = json.loads(result.stdout)
    assert doc["settings"]["max_attempts"] == 7
    assert doc["settings"]["min_wait"] == 0.25
    assert doc["profile"] == "full_jitter"
    assert doc["sources"] == {
        "max_attempts": ".env",
        "min_wait": "--set",
        "max_wait": "default",
        "multiplier": "default",
        "jitter": "default",
        "profile": "--profile",
        "max_delay": "default",
        "respect_retry_after": "default",
        "attempt_timeout": "default",
        **{
            f"{m}.{knob}": "default"
            for m, model in TABLES.items()  # the error families' and the mechanisms'
            for knob in model.model_fields
        },
    }
    env = invoke("run", "redis-blip", "--json", env={"RETRY__SCHEDULER_MAX_ATTEMPTS": "2"})
    assert json.loads(env.stdout)["sources"]["max_attempts"] == "env"


def test_out_writes_json_and_csv_that_agree(tmp_path: Path) -> None:
    result = invoke("run", "duplicate-writes", "--out", str(tmp_path / "o"))
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "o" / "result.json").read_text(encoding="utf-8"))
    with (tmp_path / "o" / "calls.csv").open(encoding="utf-8") as handle:
        calls = list(csv.DictReader(handle))
    assert len(calls) == doc["calls"]["total"]
    duplicates = sum(max(0, int(c["executions"]) - 1) for c in calls)
    assert duplicates == doc["duplicates"] > 0
    with (tmp_path / "o" / "attempts.csv").open(encoding="utf-8") as handle:
        errors = {row["error"] for row in csv.DictReader(handle)}
    assert "TimeoutError" in errors  # error codes are written as names


@pytest.mark.parametrize(
    ("option", "value", "code"),
    [
        ("--fail-under", "success_rate=0.99", 1),  # thundering-herd fails most calls
        ("--fail-under", "success_rate=0.1", 0),
        ("--fail-over", "p99_latency=1", 1),
        ("--fail-over", "p99_latency=1000", 0),
    ],
)
def test_thresholds_exit_1_and_name_the_metric(option: str, value: str, code: int) -> None:
    result = invoke("run", "thundering-herd", *SMALL, "--json", option, value)
    assert result.exit_code == code, result.output
    if code:
        assert "threshold missed" in result.stderr
        assert value.split("=", maxsplit=1)[0] in result.stderr


def test_compare_runs_every_combination_with_common_seeds() -> None:
    result = invoke(
        "compare",
        "lock-contention",
        "--set",
        "policy.max_attempts=4,8",
        "--profile",
        "bindu,full_jitter",
        "--seeds",
        "2",
        "--json",
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["seeds"] == [23, 24]
    labels = [row["variant"] for row in doc["rows"]]
    assert labels == [
        "max_attempts=4, profile=bindu",
        "max_attempts=4, profile=full_jitter",
        "max_attempts=8, profile=bindu",
        "max_attempts=8, profile=full_jitter",
    ]
    for row in doc["rows"]:
        assert row["seeds"] == 2
        low, high = row["success_rate_ci_low"], row["success_rate_ci_high"]
        assert low <= row["success_rate"] <= high


def test_compare_table_marks_changes_against_the_first_variant() -> None:
    result = invoke("compare", "retry-storm", "--set", "policy.max_attempts=1,4")
    assert result.exit_code == 0, result.output
    assert "max_attempts=1" in result.stdout and "max_attempts=4" in result.stdout
    assert " pp)" in result.stdout  # success rate change in percentage points


def test_compare_needs_something_to_vary() -> None:
    result = invoke("compare", "redis-blip")
    assert result.exit_code == 2
    assert "--set" in result.stderr


def test_sweep_writes_csv_and_does_not_depend_on_workers(tmp_path: Path) -> None:
    args = [
        "sweep",
        "startup-race",
        "--grid",
        "policy.max_attempts=3,6",
        "--grid",
        "policy.profile=bindu,documented",
        "--seeds",
        "2",
        "--json",
    ]
    one = invoke(*args, "--workers", "1", "--out", str(tmp_path / "a"))
    two = invoke(*args, "--workers", "2", "--out", str(tmp_path / "b"))
    assert one.exit_code == 0 and two.exit_code == 0, one.output + two.output
    assert json.loads(one.stdout) == json.loads(two.stdout)
    rows = list(csv.DictReader(io.StringIO((tmp_path / "a" / "sweep.csv").read_text("utf-8"))))
    assert len(rows) == 4
    assert len(list((tmp_path / "a" / "runs").glob("*.json"))) == 8  # 4 points x 2 seeds


@pytest.mark.parametrize(
    "damage",
    ["{half a file", '{"document": 5}', '{"variant": "x", "seed": 42}', "[]", "\xff\xfe"],
    ids=["corrupt", "document-not-a-dict", "missing-document", "not-an-object", "not-utf8"],
)
def test_sweep_reruns_a_damaged_checkpoint_and_names_it(tmp_path: Path, damage: str) -> None:
    args = ["sweep", "redis-blip", "--grid", "policy.max_attempts=2,3", "--json"]
    fresh = invoke(*args, "--out", str(tmp_path / "fresh"))
    assert fresh.exit_code == 0, fresh.output
    out = tmp_path / "out"
    assert invoke(*args, "--out", str(out)).exit_code == 0
    damaged = sorted((out / "runs").glob("*.json"))[0]
    good = damaged.read_bytes()
    damaged.write_bytes(damage.encode("latin-1"))
    result = invoke(*args, "--out", str(out))
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1, result.stderr
    assert warnings[0].startswith(f"retrysim: warning: {damaged}: damaged checkpoint")
    assert json.loads(result.stdout) == json.loads(fresh.stdout)
    assert damaged.read_bytes() == good  # recomputed and written again
    again = invoke(*args, "--out", str(out))  # and now trusted: no more warnings
    assert "warning" not in again.stderr


def test_scenarios_list_and_show() -> None:
    listed = invoke("scenarios")
    assert listed.exit_code == 0
    for name in retrysim.bundled_scenarios():
        assert name in listed.stdout
    shown = invoke("scenarios", "show", "redis-blip")
    assert tomllib.loads(shown.stdout)["name"] == "redis-blip"
    missing = invoke("scenarios", "show", "redis-blp")
    assert missing.exit_code == 2 and "redis-blip" in missing.stderr  # suggestion


def test_validate_reports_each_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[clients]\ncount = "many"\n[service]\nkind = "qeue"\n', encoding="utf-8")
    good = retrysim.bundled_scenarios()["redis-blip"]
    result = invoke("validate", str(good), str(bad))
    assert result.exit_code == 2
    assert "ok: " in result.stdout
    errors = [line for line in result.stderr.splitlines() if "bad.toml" in line]
    assert any("clients.count" in line for line in errors)
    assert any("service" in line and "queue" in line for line in errors)  # allowed kinds named


def test_validate_suggests_an_arrival_key_not_a_latency_one(tmp_path: Path) -> None:
    bad = tmp_path / "arrival.toml"
    bad.write_text('[clients]\narrival = { kind = "uniform", ende = 5 }\n', encoding="utf-8")
    result = invoke("validate", str(bad))
    assert result.exit_code == 2
    assert "clients.arrival.ende: unknown key (did you mean 'end'?)" in result.stderr
    assert "allowed: dist" not in result.stderr


def test_invalid_toml_names_line_and_column(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text('name = "x"\n[clients\ncount = 3\n', encoding="utf-8")
    result = invoke("validate", str(broken))
    assert result.exit_code == 2
    assert "line 2" in result.stderr and "column" in result.stderr


def test_settings_plot_and_completion_script(monkeypatch: pytest.MonkeyPatch) -> None:
    # Otherwise Typer looks for the shell in the process tree, which a test runner's worker
    # may not show (then "bash" is an extra argument and the shell is ""): the test names it.
    monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")
    shown = invoke("--show-completion", "bash")
    assert shown.exit_code == 0, (shown.output, shown.exception)
    assert "complete" in shown.stdout and "retrysim" in shown.stdout.lower()


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0 and retrysim.__version__ in result.stdout


# --- the shell, driven through a pipe ----------------------------------------------------------


def shell(commands: str, expected_exit: int = 0) -> str:
    """Run a piped session; it exits 0, or 2 when any command failed."""
    out = io.StringIO()
    assert run_shell(io.StringIO(commands), out) == expected_exit, out.getvalue()
    return out.getvalue()


def test_shell_session_edit_run_diff_save(tmp_path: Path) -> None:
    saved = tmp_path / "edited.toml"
    output = shell(
        "load redis-blip\n"
        "run\n"
        "set policy.max_attempts=1\n"
        "run\n"
        "diff\n"
        "fault add outage start=40 end=45 error=ConnectionResetError\n"
        "fault list\n"
        f"save {saved}\n"
        "quit\n"
    )
    assert "loaded redis-blip" in output
    assert "this run vs previous" in output
    assert "1: outage" in output
    data = tomllib.loads(saved.read_text(encoding="utf-8"))
    assert data["policy"]["max_attempts"] == 1
    assert [f["start"] for f in data["faults"]] == [20.0, 40]
    reloaded = retrysim.load_scenario(saved)
    assert reloaded.policy.max_attempts == 1


def test_shell_errors_keep_the_session_alive() -> None:
    output = shell(
        "run\n"
        "load no-such-thing\n"
        "load lock-contention\n"
        "set policy.max_atempts=3\n"
        "set policy.min_wait=5\n"  # > max_wait 2.0: rejected, nothing changes
        "fault rm 3\n"
        "bogus\n"
        "unset policy.max_attempts\n"
        "compare policy.profile=bindu,full_jitter\n"
        "hist\n"
        "timeline\n",
        expected_exit=2,
    )
    # run, load, max_atempts, min_wait, fault rm, bogus, hist, timeline: eight errors
    assert output.count("error:") == 8
    assert "did you mean 'max_attempts'" in output.replace('"', "'")
    assert "min_wait" in output
    assert "profile=full_jitter" in output  # compare still ran after the errors
    assert "nothing has run yet" in output


def test_shell_says_a_bug_is_a_bug_and_keeps_the_session(monkeypatch: pytest.MonkeyPatch) -> None:
    import retrysim.runs.runner

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("a bug in the run step")

    monkeypatch.setattr(retrysim.runs.runner, "run", broken)
    output = shell("load redis-blip\nrun\nshow\n", expected_exit=2)
    assert "internal error: ZeroDivisionError: a bug in the run step" in output
    assert "this is a bug in retrysim" in output
    assert "redis-blip" in output.split("internal error")[1]  # show still ran afterwards


def test_set_and_shell_answer_a_missing_list_item_alike() -> None:
    result = invoke("run", "redis-blip", "--set", "faults.3.end=1")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "--set faults.3: no such key in the scenario (did you mean 'faults.0'?)" in (
        result.stderr
    )
    output = shell("load redis-blip\nset faults.3.end=1\n", expected_exit=2)
    assert "faults.3.end: no such key in the scenario (did you mean 'faults.0.end'?)" in output


def test_shell_unset_restores_the_loaded_value() -> None:
    output = shell("load startup-race\nset clients.count=5\nunset clients.count\nshow\n")
    shown = output.split("(as loaded)", 1)[1]
    assert tomllib.loads(shown)["clients"]["count"] == 40


def test_shell_completes_keys_and_names() -> None:
    from prompt_toolkit.completion import CompleteEvent
    from prompt_toolkit.document import Document

    from retrysim.cli.shell import Shell
    from retrysim.cli.shell.completer import ShellCompleter

    session = Shell(io.StringIO())
    completer = ShellCompleter(session)

    def texts(line: str) -> list[str]:
        return [c.text for c in completer.get_completions(Document(line), CompleteEvent())]

    assert "thundering-herd" in texts("load thun")
    session.execute("load redis-blip")
    assert "policy.max_attempts=" in texts("set policy.max")
    assert texts("fa") == ["fault "]


# --- figures from the command line ---------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n"


def test_run_plot_and_plot_command_write_real_figures(tmp_path: Path) -> None:
    out = tmp_path / "o"
    ran = invoke("run", "startup-race", "--out", str(out), "--plot", str(tmp_path / "run.png"))
    assert ran.exit_code == 0, ran.output
    assert (tmp_path / "run.png").read_bytes().startswith(PNG)
    for kind, name in (("timeline", "timeline.png"), ("spread", "s.svg"), ("cdf", "c.pdf")):
        target = tmp_path / name
        drawn = invoke("plot", str(out), "--kind", kind, "--out", str(target))
        assert drawn.exit_code == 0, drawn.output
        head = target.read_bytes()[:5]
        assert head == {"png": PNG[:5], "svg": b"<?xml", "pdf": b"%PDF-"}[name.split(".")[1]]
    default = invoke("plot", str(out / "result.json"))
    assert default.exit_code == 0 and (out / "timeline.png").read_bytes().startswith(PNG)


def test_compare_and_settings_plots(tmp_path: Path) -> None:
    compared = invoke(
        "compare",
        "lock-contention",
        "--profile",
        "bindu,full_jitter",
        "--plot",
        str(tmp_path / "c.png"),
    )
    assert compared.exit_code == 0, compared.output
    assert (tmp_path / "c.png").read_bytes().startswith(PNG)
    settings = invoke("settings", "--plot", str(tmp_path / "s.png"))
    assert settings.exit_code == 0, settings.output
    assert (tmp_path / "s.png").read_bytes().startswith(PNG)


def test_plot_rejects_what_is_not_a_result(tmp_path: Path) -> None:
    not_json = tmp_path / "x.json"
    not_json.write_text("{oops", encoding="utf-8")
    wrong = tmp_path / "y.json"
    wrong.write_text('{"a": 1}', encoding="utf-8")
    for path, fragment in ((not_json, "invalid JSON at line 1"), (wrong, "not a retrysim result")):
        result = invoke("plot", str(path))
        assert result.exit_code == 2 and fragment in result.stderr
    assert invoke("plot", str(wrong), "--kind", "pie").exit_code == 2
    assert invoke("settings", "--plot", str(tmp_path / "s.gif")).exit_code == 2


def test_plot_of_a_document_without_a_timeline_is_bad_input(tmp_path: Path) -> None:
    doc: dict[str, Any] = {
        "scenario": "x",
        "timeline": None,
        "jitter_spread": {},
        "latency_quantiles": {},
    }
    path = tmp_path / "no-timeline.json"
    path.write_text(json.dumps({**doc, "faults": []}), encoding="utf-8")
    result = invoke("plot", str(path))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"retrysim: error: {path}: this result document has no")
    assert result.stderr.count("\n") == 1


def test_shell_save_into_a_missing_folder_is_an_error_not_a_new_tree(tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "dir" / "x.toml"
    output = shell(f"load redis-blip\nsave {target}\n", expected_exit=2)
    assert "error:" in output
    assert not (tmp_path / "no").exists()


def test_run_out_creates_its_folder(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b"
    assert invoke("run", "startup-race", "--out", str(out), "--json").exit_code == 0
    assert (out / "result.json").is_file()


def test_plotting_a_run_without_retries_warns_nothing(tmp_path: Path) -> None:
    import warnings

    out = tmp_path / "o"
    assert (
        invoke(
            "run", "redis-blip", "--set", "policy.max_attempts=1", "--out", str(out), "--json"
        ).exit_code
        == 0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        drawn = invoke("plot", str(out), "--kind", "spread")
    assert drawn.exit_code == 0, drawn.output
    assert "Warning" not in drawn.output
