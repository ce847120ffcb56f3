"""The tuner: it finds a known optimum, honours constraints, says what binds when nothing is
feasible, tunes each operation's settings on its own scenarios, races, and writes .env safely.

The analytic case: every attempt fails independently with probability p, so a call with k
attempts succeeds with probability 1 - p^k and costs sum_{i<k} p^i attempts on average.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, cast

import pytest
from typer.testing import CliRunner

from retrysim.cli.app import app
from retrysim.env_write import EnvFileError, merge_env
from retrysim.model.scenario import Scenario, parse_scenario
from retrysim.render.tune_report import document
from retrysim.results.document import ResultDocument
from retrysim.runs import executors
from retrysim.runs.sweep import Variant, VariantResult
from retrysim.runs.tune import (
    Candidate,
    Constraint,
    Dimension,
    Group,
    Objective,
    TuneError,
    Tuning,
    check,
    pareto_front,
    score_of,
    tune,
)

P = 0.5
CLIENTS = 4000


def independent(name: str = "coin", operation: str = "worker") -> Scenario:
    """Each attempt fails with probability P, whatever else happens; waits are negligible."""
    return parse_scenario(
        {
            "name": name,
            "seed": 1,
            "duration": 10,
            "policy": {
                "operation": operation,
                "profile": "exponential",
                "min_wait": 0.001,
                "max_wait": 0.001,
            },
            "clients": {"count": CLIENTS},
            "service": {"kind": "ideal", "latency": 0.001},
            "faults": [{"kind": "flaky", "start": 0, "probability": P}],
        }
    )


ATTEMPTS = Dimension("policy.max_attempts", 1, 6, integer=True)


def test_the_known_optimum_is_found_under_a_load_constraint() -> None:
    # amplification(k) = 2 (1 - 0.5^k): 1, 1.5, 1.75, 1.875 ... so <= 1.8 allows k <= 3.
    tuning = Tuning(
        [ATTEMPTS],
        Objective.of("success_rate"),
        [Constraint("amplification", "<=", 1.8)],
        seeds=2,
    )
    result = tune([independent()], tuning)
    (group,) = result.groups
    assert group.search == "grid" and len(group.candidates) == 6
    assert group.best is not None and group.best.sets == {"policy.max_attempts": 3}
    k = 3
    success = group.best.mean("coin", "success_rate")
    amplification = group.best.mean("coin", "amplification")
    sd = math.sqrt(P**k * (1 - P**k) / CLIENTS)
    assert success == pytest.approx(1 - P**k, abs=4 * sd)
    assert amplification == pytest.approx(sum(P**i for i in range(k)), abs=0.03)
    doc = document(result)
    assert doc["env"] == {"RETRY__WORKER_MAX_ATTEMPTS": "3"}


def test_when_nothing_is_feasible_it_names_the_binding_constraint_and_the_closest() -> None:
    tuning = Tuning(
        [ATTEMPTS],
        Objective.of("success_rate"),
        [Constraint("amplification", "<=", 0.9), Constraint("success_rate", ">=", 0.1)],
        seeds=1,
    )
    (group,) = tune([independent()], tuning).groups
    assert group.best is None
    assert group.binding == "amplification<=0.9"
    assert group.closest is not None and group.closest.sets == {"policy.max_attempts": 1}


def test_racing_drops_the_clearly_worse_and_the_winner_has_every_seed() -> None:
    tuning = Tuning([ATTEMPTS], Objective.of("success_rate"), seeds=4)
    (group,) = tune([independent()], tuning).groups
    dropped = [c for c in group.candidates if c.dropped]
    assert any("clearly worse" in (c.dropped or "") for c in dropped)
    assert all(c.seeds() < 4 for c in dropped)  # the seeds after its drop were never run
    assert group.best is not None and group.best.seeds() == 4
    assert group.best.sets == {"policy.max_attempts": 6}


def test_each_operation_is_tuned_on_its_own_scenarios() -> None:
    scenarios = [independent("a", "worker"), independent("b", "storage")]
    tuning = Tuning(
        [Dimension("policy.max_attempts", 2, 3, integer=True)],
        Objective.of("success_rate"),
        seeds=1,
    )
    result = tune(scenarios, tuning)
    assert [g.operations for g in result.groups] == [["worker"], ["storage"]]
    # Storage calls default to 5 attempts: the current settings are always tried, and here
    # they beat every searched value, so storage keeps them.
    assert document(result)["env"] == {
        "RETRY__WORKER_MAX_ATTEMPTS": "3",
        "RETRY__STORAGE_MAX_ATTEMPTS": "5",
    }
    storage = result.groups[1]
    assert storage.current == {"policy.max_attempts": 5}
    assert storage.explanation[0].unchanged is not None
    # A global setting is one for every operation: one group, one line.
    tuning = Tuning(
        [Dimension("policy.profile", values=("exponential", "full_jitter"))],
        Objective.of("success_rate"),
        seeds=1,
    )
    result = tune(scenarios, tuning)
    assert len(result.groups) == 1 and "RETRY__PROFILE" in document(result)["env"]


def _fake(values: dict[str, list[float]]) -> Candidate:
    """A candidate whose runs had these success rates per scenario (one document per seed)."""
    cand = Candidate({}, "fake")
    for name, rates in values.items():
        docs = [cast(ResultDocument, {"calls": {"success_rate": r}}) for r in rates]
        cand.results[name] = VariantResult(Variant("fake", {}), docs)
    return cand


def test_worst_case_and_weighted_mean_aggregate_as_they_say() -> None:
    group = Group("worker", [independent("a"), independent("b")])
    cand = _fake({"a": [0.9, 0.9], "b": [0.5, 0.7]})
    worst = Tuning([ATTEMPTS], Objective.of("success_rate"))
    assert score_of(cand, group, worst).objective == pytest.approx(0.6)
    mean = Tuning([ATTEMPTS], Objective.of("success_rate"), how="mean", weights={"a": 3})
    assert score_of(cand, group, mean).objective == pytest.approx((3 * 0.9 + 0.6) / 4)


def test_the_pareto_front_keeps_only_the_undominated() -> None:
    group = Group("worker", [independent("a")])

    def point(label: str, success: float, p99: float, amp: float) -> Candidate:
        cand = Candidate({}, label)
        doc = {
            "calls": {"success_rate": success},
            "latency": {"p99": p99},
            "load": {"amplification": amp},
        }
        cand.results["a"] = VariantResult(Variant(label, {}), [cast(ResultDocument, doc)])
        return cand

    group.candidates = [
        point("fast", 0.9, 1.0, 1.1),
        point("sure", 1.0, 5.0, 1.5),
        point("worse", 0.8, 6.0, 2.0),  # beaten by both
        point("same-as-fast", 0.9, 1.0, 1.1),
    ]
    assert [c.label for c in pareto_front(group)] == ["fast", "sure"]


def test_random_and_optuna_searches_repeat_for_the_same_seed_and_budget() -> None:
    pytest.importorskip("optuna", reason="Optuna is the retrysim[tune] extra")
    space = [ATTEMPTS, Dimension("policy.max_wait", 0.001, 0.01)]
    small = independent()
    small = small.model_copy(update={"clients": small.clients.model_copy(update={"count": 200})})
    for strategy in ("random", "optuna"):
        tuning = Tuning(space, Objective.of("success_rate"), seeds=1, budget=10, search=strategy)
        first = document(tune([small], tuning))
        assert first == document(tune([small], tuning)), strategy
        tried = [c["label"] for c in first["groups"][0]["pareto"]]
        # the 10 proposed, and the current settings and defaults tried besides them
        assert first["groups"][0]["candidates"] >= 10 and tried, strategy
        other = Tuning(**{**tuning.__dict__, "search_seed": 5})
        (group,) = tune([small], other).groups
        assert [c.label for c in group.candidates] != tried, strategy


def test_candidates_that_make_no_policy_are_set_aside_not_run() -> None:
    space = [
        Dimension("policy.min_wait", values=(0.5, 5.0)),
        Dimension("policy.max_wait", values=(1.0,)),
    ]
    (group,) = tune([independent()], Tuning(space, Objective.of("success_rate"), seeds=1)).groups
    assert [c.label for c in group.invalid] == ["min_wait=5, max_wait=1"]
    assert "min_wait=0.5, max_wait=1" in [c.label for c in group.candidates]
    assert all(c.results for c in group.candidates) and not group.invalid[0].results


def test_what_cannot_be_tuned_is_refused_before_any_run() -> None:
    scenario = [independent()]
    with pytest.raises(TuneError, match="only policy settings"):
        check(
            Tuning([Dimension("clients.count", 1, 5, integer=True)], Objective.of("success_rate")),
            scenario,
        )
    with pytest.raises(TuneError, match="no RETRY__ variable"):
        check(
            Tuning([Dimension("policy.multiplier", 1, 2)], Objective.of("success_rate")), scenario
        )
    with pytest.raises(TuneError, match="--maximize or --minimize"):
        Objective.of("breaker_opens")


# --- .env ----------------------------------------------------------------------------------


def test_env_merge_keeps_every_other_line_and_comment(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(
        "# my service\nDATABASE_URL=postgres://x\n\nexport RETRY__WORKER_MAX_ATTEMPTS=3\n"
        "RETRY__WORKER_MAX_ATTEMPTS=4  # dup\n# end\n"
    )
    changes = merge_env(
        path, {"RETRY__WORKER_MAX_ATTEMPTS": "6", "RETRY__WORKER_MAX_WAIT": "20"}, "retrysim tune"
    )
    assert path.read_text() == (
        "# my service\nDATABASE_URL=postgres://x\n\nexport RETRY__WORKER_MAX_ATTEMPTS=6\n"
        "RETRY__WORKER_MAX_ATTEMPTS=6  # dup\n# end\n\n# retrysim tune\nRETRY__WORKER_MAX_WAIT=20\n"
    )  # the comment after a replaced value stays (env_write's rules)
    assert changes == [
        "RETRY__WORKER_MAX_ATTEMPTS: 3 -> 6",
        "RETRY__WORKER_MAX_WAIT: added (20)",
    ]


def test_env_merge_is_atomic_and_refuses_what_is_not_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / ".env"
    path.write_text("KEEP=1\n")
    import os

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        merge_env(path, {"RETRY__WORKER_MAX_ATTEMPTS": "6"})
    monkeypatch.undo()
    assert path.read_text() == "KEEP=1\n"
    assert [p.name for p in tmp_path.iterdir()] == [".env"]  # no temporary file left behind
    path.write_bytes(b"A=\xff\n")
    with pytest.raises(EnvFileError, match="not UTF-8"):
        merge_env(path, {"B": "1"})


# --- the command ---------------------------------------------------------------------------


def _scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "coin.toml"
    path.write_text(
        """
name = "coin"
seed = 1
duration = 10
[policy]
profile = "exponential"
min_wait = 0.001
max_wait = 0.001
[clients]
count = 500
[service]
kind = "ideal"
latency = 0.001
[[faults]]
kind = "flaky"
start = 0
probability = 0.5
"""
    )
    return path


def test_the_command_recommends_writes_env_and_settings_reads_it_back(tmp_path: Path) -> None:
    scenario = _scenario_file(tmp_path)
    env = tmp_path / ".env"
    env.write_text("# keep me\nOTHER=1\n")
    runner = CliRunner()
    args = ["tune", str(scenario), "--search", "policy.max_attempts=1..4", "--seeds", "1"]
    result = runner.invoke(
        app, [*args, "--constraint", "amplification<=1.8", "--write-env", str(env), "-q"]
    )
    assert result.exit_code == 0, result.output
    assert "RETRY__WORKER_MAX_ATTEMPTS=3" in result.output
    assert env.read_text().startswith("# keep me\nOTHER=1\n")
    shown = runner.invoke(app, ["settings", "--env-file", str(env), "--json"])
    assert shown.exit_code == 0, shown.output
    setting = json.loads(shown.output)["operations"]["worker"]["max_attempts"]
    assert setting["value"] == 3 and setting["source"] == ".env"
    as_json = runner.invoke(app, [*args, "--json", "-q"])
    doc = json.loads(as_json.output)
    assert doc["groups"][0]["best"]["settings"] == {"policy.max_attempts": 4}


def test_the_command_resumes_from_its_checkpoints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = _scenario_file(tmp_path)
    out = tmp_path / "out"
    args = ["tune", str(scenario), "--search", "policy.max_attempts=1..3", "--out", str(out), "-q"]
    runner = CliRunner()
    assert runner.invoke(app, args).exit_code == 0
    first = (out / "tune.json").read_text()
    runs: list[Any] = []
    real = executors.run_task

    def counting(*args: Any, **kwargs: Any) -> Any:
        runs.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(executors, "run_task", counting)
    assert runner.invoke(app, [*args, "--resume"]).exit_code == 0
    assert runs == []  # every run came from its checkpoint
    assert (out / "tune.json").read_text() == first
    empty = runner.invoke(app, [*args[:-3], "--out", str(tmp_path / "empty"), "--resume", "-q"])
    assert empty.exit_code == 2 and "nothing to resume" in empty.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--search", "clients.count=1..3"], "only policy settings"),
        (["--search", "policy.max_attempts=5..2"], "LOW must be a number below HIGH"),
        (["--search", "policy.max_attempts=2..8", "--constraint", "p99<=3"], "unknown metric"),
        (["--search", "policy.max_attemps=2..8"], "--search"),
        (["--search", "policy.max_attempts=2..8", "--aggregate", "median"], "allowed: worst, mean"),
    ],
)
def test_bad_tune_input_is_one_line_and_exit_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(app, ["tune", str(_scenario_file(tmp_path)), *args, "-q"])
    assert result.exit_code == 2, result.output
    assert message in result.output
