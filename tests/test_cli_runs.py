"""compare and sweep on the command line: executors, --out, sweep's --set and --profile.

(Ctrl-C, --resume and killed runs are in tests/test_interrupt.py.)
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from retrysim.cli.app import app
from retrysim.results.document import ResultDocument

needs_dask = pytest.mark.skipif(
    importlib.util.find_spec("distributed") is None, reason="needs the retrysim[dask] extra"
)
GRID = ["--grid", "policy.max_attempts=2,4"]


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "160"})


def test_compare_out_writes_its_document_and_a_checkpoint_per_run(tmp_path: Path) -> None:
    args = ["compare", "lock-contention", "--set", "policy.max_attempts=2,4", "--seeds", "2"]
    result = invoke(*args, "--out", str(tmp_path / "out"), "--json")
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "out" / "compare.json").read_text(encoding="utf-8"))
    assert saved == json.loads(result.stdout)
    assert len(list((tmp_path / "out" / "runs").glob("*.json"))) == 4
    table = invoke(*args, "--out", str(tmp_path / "out"))
    assert table.exit_code == 0 and "compare.json" in table.stdout  # says what it wrote


def test_compare_out_must_be_a_folder(tmp_path: Path) -> None:
    file = tmp_path / "file"
    file.write_text("x", encoding="utf-8")
    result = invoke("compare", "lock-contention", "--profile", "bindu", "--out", str(file))
    assert result.exit_code == 2
    assert "exists and is not a folder" in result.stderr


def test_sweep_set_applies_one_value_to_every_grid_point() -> None:
    result = invoke("sweep", "lock-contention", *GRID, "--set", "clients.count=40", "--json")
    assert result.exit_code == 0, result.output
    plain = invoke("sweep", "lock-contention", *GRID, "--json")
    rows, plain_rows = json.loads(result.stdout)["rows"], json.loads(plain.stdout)["rows"]
    assert [r["variant"] for r in rows] == ["max_attempts=2", "max_attempts=4"]
    assert rows != plain_rows  # the fleet is smaller at every point
    assert all("clients.count" not in row for row in rows)  # a fixed value is not a grid key


def test_sweep_profile_is_one_more_grid_key() -> None:
    result = invoke("sweep", "lock-contention", *GRID, "--profile", "bindu,full_jitter", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["rows"]
    assert [(r["policy.max_attempts"], r["policy.profile"]) for r in rows] == [
        (2, "bindu"),
        (2, "full_jitter"),
        (4, "bindu"),
        (4, "full_jitter"),
    ]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--set", "policy.max_attempts=3"], "--set policy.max_attempts: also varied by --grid"),
        (["--profile", "bindu", "--set", "policy.profile=bindu"], "also varied by --profile"),
        (["--set", "clients.cuont=3"], "did you mean 'count'"),
        (["--set", "clients.count"], "expected KEY=VALUE"),
        (["--profile", "bindu,nope"], "nope"),
    ],
)
def test_sweep_set_and_profile_mistakes_are_one_line_exit_2(extra: list[str], message: str) -> None:
    result = invoke("sweep", "lock-contention", *GRID, *extra)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("retrysim: error: "), result.stderr
    assert message in lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--executor", "ray"], "--executor 'ray': allowed: local, dask"),
        (["--address", "tcp://127.0.0.1:8786"], "--address is the dask scheduler to use"),
        (
            ["--executor", "dask", "--address", "tcp://127.0.0.1:8786", "--workers", "2"],
            "--workers has no effect with --address",
        ),
    ],
)
def test_executor_options_that_do_not_fit_are_refused(args: list[str], message: str) -> None:
    commands = [
        ["sweep", "lock-contention", *GRID],
        ["compare", "redis-blip", "--profile", "bindu"],
    ]
    for command in commands:
        result = invoke(*command, *args)
        assert result.exit_code == 2, result.output
        assert message in result.stderr


def test_a_missing_dask_is_one_line_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed
    result = invoke("sweep", "lock-contention", *GRID, "--executor", "dask")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "retrysim: error: --executor dask needs dask.distributed, which is not installed: "
        "pip install 'retrysim[dask]'"
    )


@needs_dask
def test_sweep_on_a_dask_cluster_prints_what_the_local_executor_prints(tmp_path: Path) -> None:
    """Through the command line: a LocalCluster of one worker process, started and stopped."""
    args = ["sweep", "lock-contention", *GRID, "--seeds", "2", "--json"]
    local = invoke(*args, "--workers", "2", "--out", str(tmp_path / "local"))
    dask = invoke(*args, "--executor", "dask", "--workers", "1", "--out", str(tmp_path / "dask"))
    assert local.exit_code == 0 and dask.exit_code == 0, local.output + dask.output
    assert json.loads(dask.stdout) == json.loads(local.stdout)
    local_runs = sorted(p.name for p in (tmp_path / "local" / "runs").iterdir())
    assert sorted(p.name for p in (tmp_path / "dask" / "runs").iterdir()) == local_runs
    for name in local_runs:  # every checkpoint, byte for byte
        assert (tmp_path / "dask" / "runs" / name).read_bytes() == (
            tmp_path / "local" / "runs" / name
        ).read_bytes()


TUNE = ["tune", "lock-contention", "--search", "policy.max_attempts=2..4", "--seeds", "2", "-q"]


def test_tune_on_a_dask_cluster_recommends_what_local_processes_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("distributed")
    from retrysim.runs import executors

    started: list[str] = []
    real_connect = executors.DaskExecutor._connect

    def counted(self: executors.DaskExecutor) -> Any:
        started.append("cluster")
        return real_connect(self)

    monkeypatch.setattr(executors.DaskExecutor, "_connect", counted)
    real_make = executors.make_executor

    def threaded(kind: str, workers: int | None = None, address: str | None = None) -> Any:
        if kind != "dask":
            return real_make(kind, workers, address)
        # threads of this process: the same cluster code, quicker to start
        return executors.DaskExecutor(address, 1, processes=False)

    monkeypatch.setattr(executors, "make_executor", threaded)
    local = invoke(*TUNE, "--json", "--workers", "2")
    dask = invoke(*TUNE, "--json", "--executor", "dask")
    assert local.exit_code == 0 and dask.exit_code == 0, local.output + dask.output
    assert json.loads(dask.stdout) == json.loads(local.stdout)
    assert started == ["cluster"]  # one cluster for the whole search, not one per stage


def test_ctrl_c_during_tune_says_how_to_go_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from retrysim.runs import executors

    calls = {"n": 0}
    real = executors.run_task

    def third_is_interrupted(task: executors.Task) -> ResultDocument:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(task)

    monkeypatch.setattr(executors, "run_task", third_is_interrupted)
    out = tmp_path / "out"
    result = invoke(*TUNE, "--workers", "1", "--out", str(out))
    assert result.exit_code == 130
    # the current settings' 2 runs, then what their diagnoses prescribe (2 more) were planned
    assert result.stderr.strip() == (
        f"retrysim: interrupted after 2 of 4 runs; those are saved in {out / 'runs'}: run the "
        "same command again (or with --resume) to go on from there"
    )
    assert len(list((out / "runs").glob("*.json"))) == 2
