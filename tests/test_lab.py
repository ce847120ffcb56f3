"""retrysim lab without a screen: the model's steps, .env lines, saving, metrics against the
pinned run, the diagnoses' changes, the text charts, and the command's missing-extra line."""

from __future__ import annotations

import copy
import sys
import tomllib
from pathlib import Path
from typing import Any, cast

import pytest
from typer.testing import CliRunner

from retrysim.cli.app import app
from retrysim.cli.lab_cmd import MISSING_TEXTUAL
from retrysim.lab import charts
from retrysim.lab.model import BY_OPTION, LabError, LabModel, Outcome, simulate
from retrysim.model.library import load_scenario
from retrysim.model.session import Loaded
from retrysim.model.session import load as load_session
from retrysim.results.document import ResultDocument

MAX_WAIT = BY_OPTION["max_wait"]


def load(arg: str) -> Loaded:
    """The session a user gets by loading ``arg`` (a bundled name or a path)."""
    return load_session(arg, load_scenario(arg))


def model(name: str = "thundering-herd", **kwargs: Any) -> LabModel:
    return LabModel(load(name), **kwargs)


def test_max_wait_steps_from_the_settings_value_and_back_leaves_the_scenario_clean() -> None:
    lab = model()
    assert lab.value(MAX_WAIT) == 8.0  # RETRY__SCHEDULER_MAX_WAIT's default
    assert lab.source(MAX_WAIT) == "settings"
    assert lab.variable(MAX_WAIT) == "RETRY__SCHEDULER_MAX_WAIT"
    for _ in range(22):
        lab.step(MAX_WAIT, 1)
    assert lab.value(MAX_WAIT) == 30.0
    assert lab.dirty and lab.source(MAX_WAIT) == "scenario"
    assert lab.env_lines() == {"RETRY__SCHEDULER_MAX_WAIT": "30"}
    assert lab.scenario().policy.max_wait == 30.0
    lab.step(MAX_WAIT, -22)
    assert lab.value(MAX_WAIT) == 8.0
    assert not lab.dirty
    assert lab.env_lines() == {}
    assert lab.loaded.data["policy"]["max_wait"] is None  # "not set" again, not 8 written in


def test_max_wait_says_when_no_wait_reaches_it() -> None:
    lab = model()  # the herd: 3 attempts, waits 1-2 s then 2-3 s
    assert lab.knob_note(MAX_WAIT) == (
        "no wait reaches max_wait (8 s): the longest is 3 s (retry 2); more attempts or a "
        "larger min_wait make it matter"
    )
    lab.set(BY_OPTION["max_attempts"], 6)  # retry 4 waits 8-9 s: capped at 8
    assert lab.knob_note(MAX_WAIT) is None
    assert lab.knob_note(BY_OPTION["jitter"]) is None  # only max_wait has a note


def test_float_steps_do_not_drift_and_stay_in_bounds() -> None:
    lab = model()
    jitter = BY_OPTION["jitter"]
    for _ in range(7):
        lab.step(jitter, 1)
    assert lab.value(jitter) == 1.7
    lab.step(jitter, -100)
    assert lab.value(jitter) == 0.0


def test_switches_and_choices_cycle_and_name_their_variables() -> None:
    lab = model()
    lab.step(BY_OPTION["breaker.enabled"], 1)
    lab.step(BY_OPTION["profile"], 1)
    assert lab.value(BY_OPTION["breaker.enabled"]) is True
    assert lab.env_lines() == {
        "RETRY__PROFILE": "bindu",
        "RETRY__SCHEDULER_BREAKER_ENABLED": "true",
    }
    assert lab.scenario().policy.breaker.enabled is True


def test_a_value_the_policy_refuses_is_a_lab_error_and_changes_nothing() -> None:
    lab = model()
    before = lab.loaded.data
    with pytest.raises(LabError, match="min_wait"):
        lab.set(BY_OPTION["min_wait"], 100)  # above RETRY__SCHEDULER_MAX_WAIT's 8
    with pytest.raises(LabError, match="whole number"):
        lab.set(BY_OPTION["max_attempts"], "2.5")
    assert lab.loaded.data is before and not lab.dirty


def test_typed_values_are_parsed_as_the_knob_says() -> None:
    lab = model()
    lab.set(BY_OPTION["max_attempts"], "6")
    lab.set(BY_OPTION["budget.enabled"], "on")
    assert lab.value(BY_OPTION["max_attempts"]) == 6
    assert lab.value(BY_OPTION["budget.enabled"]) is True


def test_write_env_merges_like_tune_and_keeps_the_other_lines(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("# mine\nOTHER=1\nRETRY__SCHEDULER_MAX_WAIT=8\n", encoding="utf-8")
    lab = model(env_path=env)
    lab.set(MAX_WAIT, 30)
    lab.set(BY_OPTION["max_attempts"], 6)
    changes = lab.write_env()
    text = env.read_text(encoding="utf-8")
    assert "# mine\nOTHER=1\nRETRY__SCHEDULER_MAX_WAIT=30\n" in text
    assert "# retrysim lab on thundering-herd\nRETRY__SCHEDULER_MAX_ATTEMPTS=6\n" in text
    assert changes == [
        "RETRY__SCHEDULER_MAX_WAIT: 8 -> 30",
        "RETRY__SCHEDULER_MAX_ATTEMPTS: added (6)",
    ]


def test_save_writes_the_edited_scenario_and_clears_dirty(tmp_path: Path) -> None:
    target = tmp_path / "herd.toml"
    lab = model(save_path=target)
    lab.set(MAX_WAIT, 30)
    assert lab.save() == target
    assert not lab.dirty
    saved = tomllib.loads(target.read_text(encoding="utf-8"))
    assert saved["policy"]["max_wait"] == 30.0
    assert saved["policy"]["operation"] == "scheduler"
    assert "max_attempts" not in saved["policy"]  # not set stays not set (None is never written)
    assert load(str(target)).base["policy"]["max_wait"] == 30.0


def test_save_keeps_a_loaded_files_comments(tmp_path: Path) -> None:
    source = tmp_path / "mine.toml"
    source.write_text(
        load("startup-race").toml().replace("[policy]", "# my comment\n[policy]"),
        encoding="utf-8",
    )
    lab = model(str(source))
    lab.set(MAX_WAIT, 2)
    assert lab.save() == source
    text = source.read_text(encoding="utf-8")
    assert "# my comment" in text and "max_wait = 2.0" in text


def _outcome(success: float, diagnoses: list[str]) -> Outcome:
    doc = {
        "calls": {"success_rate": success, "failed": 10, "unfinished": 0},
        "diagnoses": [
            {"id": d, "title": d.title(), "severity": "high", "suggestion": "do"} for d in diagnoses
        ],
    }
    return Outcome(cast(ResultDocument, doc), [], True)


def test_metrics_are_measured_against_the_pinned_run() -> None:
    lab = model()
    lab.finished(_outcome(0.5, ["herd"]))  # the first run is the baseline until one is pinned
    lab.finished(_outcome(0.75, ["exhausted"]))
    rows = {row.name: row for row in lab.metric_rows()}
    assert (rows["success_rate"].value, rows["success_rate"].pinned) == ("75.00%", "50.00%")
    assert rows["success_rate"].change == "+25.00 pp"
    assert rows["success_rate"].verdict == "better"
    assert rows["failed"].verdict == "same"
    assert "breaker_opens" not in rows  # a guard metric only when the run has guards
    diagnoses = [(d.id, d.status) for d in lab.diagnosis_rows()]
    assert diagnoses == [("exhausted", "new"), ("herd", "gone")]
    assert lab.pin()
    assert lab.metric_rows()[0].change == "±0"
    assert [d.status for d in lab.diagnosis_rows()] == [""]


def test_a_worse_change_is_worse() -> None:
    lab = model()
    lab.finished(_outcome(0.75, []))
    lab.finished(_outcome(0.5, []))
    assert lab.metric_rows()[0].verdict == "worse"


def test_faults_off_runs_the_scenario_without_them() -> None:
    lab = model("startup-race")
    assert lab.scenario().faults
    assert lab.toggle_faults() is False
    assert lab.scenario().faults == []
    assert not lab.dirty  # a view of the run, not an edit of the scenario
    outcome = simulate(lab.scenario(), None, lab.settings, faults_on=False)
    assert outcome.document["calls"]["success_rate"] == 1.0
    assert outcome.first_waits == []


def test_simulate_reports_each_retried_calls_first_wait() -> None:
    lab = model("startup-race")
    outcome = simulate(lab.scenario(), None, lab.settings)
    rate = outcome.document["attempts"]["retry_rate"]
    assert rate is not None
    retried = outcome.document["calls"]["total"] * rate
    assert len(outcome.first_waits) == round(retried)
    # documented profile, min_wait 0.5, jitter 1: the first wait is 0.5 + U(0, 1)
    assert all(0.5 <= w <= 1.5 for w in outcome.first_waits)


def test_the_preview_draws_first_waits_from_the_policy_the_knobs_make() -> None:
    lab = model()
    lab.set(BY_OPTION["jitter"], 0.0)
    assert set(lab.preview_waits() or []) == {1.0}  # min_wait, no jitter
    lab.set(BY_OPTION["jitter"], 2.0)
    lab.set(BY_OPTION["min_wait"], 0.5)
    waits = lab.preview_waits()
    assert waits is not None and len(waits) == 1000
    assert 0.5 <= min(waits) < 0.6 and 2.4 < max(waits) <= 2.5
    lab.set(BY_OPTION["max_attempts"], 1)
    assert lab.preview_waits() == []  # no retry, no wait
    lab.loaded.data["policy"]["multiplier"] = 2.0  # no setting holds it: no honest preview
    assert lab.preview_waits() is None


# --- charts ----------------------------------------------------------------------------------


def test_bar_rows_scale_to_the_peak_in_eighths() -> None:
    assert charts.bar_rows([0, 1, 2, 4], 2) == ["   █", " ▄██"]
    assert charts.bar_rows([0, 1, 2, 4], 1, top=8) == [" ▁▂▄"]
    assert charts.bar_rows([0.001, 100], 1) == ["▁█"]  # a small value is never invisible
    assert charts.bar_rows([], 3) == ["", "", ""]


def test_resample_keeps_peaks_and_stretches_short_series() -> None:
    assert charts.resample([1, 9, 2, 3, 8, 1], 3) == [9, 3, 8]
    assert charts.resample([1, 2], 5) == [1, 1, 2, 2]


def test_timeline_marks_the_fault_windows() -> None:
    doc = {
        "timeline": {"bin_width": 1.0, "attempts_per_s": [[10, 0, 0, 5], [0, 10, 0, 0]]},
        "faults": [{"start": 1.0, "end": 2.0}],
    }
    chart = charts.timeline(cast(ResultDocument, doc), 8, 2)
    assert chart.marks == [False, False, True, True, False, False, False, False]
    assert chart.rows == ["████    ", "████  ██"]  # 10, 10, 0, 5 per second, 2 columns each
    assert chart.axis.startswith("0s") and "4s" in chart.axis
    assert chart.peak == 10


def test_histogram_bins_waits_in_100_ms_and_shows_the_busiest_share() -> None:
    tight = charts.histogram([1.0] * 9 + [1.25], 10, 1)
    assert tight.bin_width == pytest.approx(0.1)
    assert tight.rows == ["███   ▁▁▁ "]  # 9, 0 and 1 in three 100 ms bins, 3 columns each
    assert tight.peak == 9
    assert tight.title == "retry 1 waits, 100 ms bins, peak 90.0%"
    wide = charts.histogram([i * 0.01 for i in range(1000)], 20, 1)
    assert wide.bin_width == pytest.approx(0.5)  # 10 s in 20 columns
    assert "peak 5.0%" in wide.title
    assert charts.histogram([], 5, 2).rows == ["     ", "     "]


# --- the command -----------------------------------------------------------------------------


def test_lab_without_textual_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "textual", None)  # import textual now raises ImportError
    for loaded in ("retrysim.lab.app", "retrysim.lab.widgets"):  # as in a fresh process
        monkeypatch.delitem(sys.modules, loaded, raising=False)
    result = CliRunner().invoke(app, ["lab", "startup-race"])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"retrysim: error: {MISSING_TEXTUAL}"


def test_lab_refuses_an_unknown_scenario() -> None:
    pytest.importorskip("textual")
    result = CliRunner().invoke(app, ["lab", "no-such-scenario"])
    assert result.exit_code == 2
    assert "no-such-scenario" in result.stderr


def test_a_recommendation_is_applied_whole_or_not_at_all() -> None:
    from retrysim.lab import tuning

    lab = model()
    good = {"groups": [{"best": {"settings": {"policy.max_attempts": 6, "policy.jitter": 2.0}}}]}
    assert tuning.apply(lab, good) == ["max_attempts", "jitter"]
    assert lab.value(BY_OPTION["max_attempts"]) == 6 and lab.value(BY_OPTION["jitter"]) == 2.0
    before = copy.deepcopy(lab.loaded.data)
    # the first value is fine, the second refused (min_wait above max_wait): nothing changes
    bad = {"groups": [{"best": {"settings": {"policy.max_attempts": 4, "policy.min_wait": 99}}}]}
    with pytest.raises(LabError):
        tuning.apply(lab, bad)
    assert lab.loaded.data == before
