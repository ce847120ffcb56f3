"""Executors: the same documents in this process, in local worker processes and on dask.

The dask cluster here is a LocalCluster of one in-process worker on 127.0.0.1 (no dashboard),
which starts and stops in well under a second; tasks still cross a real TCP connection, so
they are pickled as they would be for a remote cluster.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from retrysim.model.scenario import parse_scenario
from retrysim.results.document import ResultDocument
from retrysim.runs import executors
from retrysim.runs.executors import (
    DaskExecutor,
    ExecutorError,
    LocalExecutor,
    MissingExtraError,
    Task,
    make_executor,
    run_task,
)
from retrysim.runs.sweep import compare, grid_variants, run_one

SMALL: dict[str, Any] = {
    "name": "small",
    "seed": 10,
    "duration": 20,
    "policy": {"operation": "worker", "max_attempts": 3},
    "clients": {"count": 30, "timeout": 1.0, "arrival": {"kind": "uniform", "start": 0, "end": 5}},
    "service": {"kind": "ideal", "latency": {"dist": "lognormal", "median": 0.2, "p99": 1.5}},
    "faults": [{"kind": "outage", "start": 1, "end": 3}, {"kind": "flaky", "probability": 0.2}],
}

needs_dask = pytest.mark.skipif(
    importlib.util.find_spec("distributed") is None, reason="needs the retrysim[dask] extra"
)


def _tasks() -> list[Task]:
    s = parse_scenario(SMALL)
    return [
        Task(s, {"policy.max_attempts": attempts}, seed)
        for attempts in (2, 4)
        for seed in (1, 2, 3)
    ]


def _collect(executor: executors.Executor, tasks: list[Task]) -> list[ResultDocument]:
    found: dict[int, ResultDocument] = {}

    def keep(index: int, doc: ResultDocument) -> None:
        assert index not in found  # each task reported once
        found[index] = doc

    executor.run(tasks, keep)
    assert sorted(found) == list(range(len(tasks)))
    return [found[i] for i in range(len(tasks))]


def test_run_task_is_run_one() -> None:
    s = parse_scenario(SMALL)
    task = Task(s, {"policy.max_attempts": 2}, 5)
    assert run_task(task) == run_one(s, {"policy.max_attempts": 2}, 5, None)


def _children() -> set[Any]:
    """This process's child processes not yet reaped (other tests' too: compare sets)."""
    return set(multiprocessing.active_children())


def _left_running(before: set[Any]) -> list[Any]:
    """Children started since ``before`` that have not exited within a bounded wait.

    Exited means the process's sentinel is ready. ``is_alive()`` is not the test here: the
    pool's own shutdown thread may be reaping a worker the executor already ended, and until
    it has, ``is_alive()`` can still say True of a process that is gone.
    """
    from multiprocessing.connection import wait

    new = _children() - before
    return [process for process in new if not wait([process.sentinel], timeout=10)]


def test_local_executor_gives_the_same_documents_with_one_or_two_workers() -> None:
    before = _children()
    tasks = _tasks()
    one = _collect(LocalExecutor(1), tasks)
    two = _collect(LocalExecutor(2), tasks)
    assert one == two
    assert [d["seed"] for d in one] == [1, 2, 3, 1, 2, 3]
    assert _left_running(before) == []  # the pool is gone


def test_local_executor_defaults_to_one_worker_per_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 7)
    assert LocalExecutor().workers == 7
    with pytest.raises(ExecutorError, match="at least 1"):
        LocalExecutor(0)


def test_an_interrupt_stops_the_pool_and_keeps_what_was_reported() -> None:
    reported: list[int] = []
    before = _children()

    def stop_after_first(index: int, doc: ResultDocument) -> None:
        reported.append(index)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        LocalExecutor(2).run(_tasks(), stop_after_first)
    assert len(reported) == 1
    assert _left_running(before) == []  # workers ended, not left running


def test_a_failing_task_stops_the_rest_and_raises_its_error() -> None:
    tasks = [*_tasks()[:2], Task(parse_scenario(SMALL), {}, 1, policy="no_such_module_x:policy")]
    before = _children()
    with pytest.raises(Exception, match="no_such_module_x"):
        LocalExecutor(2).run(tasks, lambda index, doc: None)
    assert _left_running(before) == []


@needs_dask
def test_dask_local_cluster_gives_the_same_documents_as_local_processes() -> None:
    tasks = _tasks()
    local = _collect(LocalExecutor(2), tasks)
    dask = _collect(DaskExecutor(workers=1, processes=False), tasks)
    assert dask == local


@needs_dask
def test_a_small_sweep_on_dask_equals_the_local_one(tmp_path: Path) -> None:
    s = parse_scenario(SMALL)
    variants = grid_variants([("policy.profile", ["bindu", "full_jitter"])])
    local = compare(s, variants, [1, 2], workers=1)
    progress: list[tuple[int, int]] = []
    dask = compare(
        s,
        variants,
        [1, 2],
        checkpoint=tmp_path / "runs",
        on_done=lambda d, t: progress.append((d, t)),
        executor=DaskExecutor(workers=1, processes=False),
    )
    assert [r.documents for r in dask] == [r.documents for r in local]
    assert progress == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]
    assert len(list((tmp_path / "runs").glob("*.json"))) == 4


@needs_dask
def test_an_unreachable_scheduler_is_bad_input_naming_the_address() -> None:
    executor = DaskExecutor("tcp://127.0.0.1:9", connect_timeout=0.5)
    with pytest.raises(
        ExecutorError, match=r"cannot reach a dask scheduler at tcp://127\.0\.0\.1:9"
    ):
        executor.run(_tasks()[:1], lambda index, doc: None)


def test_a_missing_dask_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed
    with pytest.raises(MissingExtraError, match=r"pip install 'retrysim\[dask\]'"):
        make_executor("dask")


def test_make_executor_names_the_kinds() -> None:
    assert isinstance(make_executor("local", 3), LocalExecutor)
    with pytest.raises(ExecutorError, match="allowed: local, dask"):
        make_executor("ray")
    with pytest.raises(ExecutorError, match="address"):
        make_executor("local", address="tcp://127.0.0.1:8786")
