"""Where the runs of a compare or sweep happen: this process, local worker processes, or dask.

A :class:`Task` is one run: a scenario, its dotted-key overrides, a seed, the ``RETRY__*``
settings and optionally your own policy's ``module:attribute``. It is plain data (tasks ship
scenarios, never engines or tenacity objects), and :func:`run_task` is a pure function of it:
the same task gives the same document on any executor, in any process, in any order.

An :class:`Executor` runs a list of tasks and hands each finished one to ``on_result(index,
document)`` in the calling process and thread, as it finishes (in any order), so the caller can
show progress and write a checkpoint per run. If anything goes wrong, a Ctrl-C included, the
executor stops what has not started, stops its workers and lets the exception through; every
result it reported before that stays reported.

- :class:`LocalExecutor`: ``workers`` processes on this machine (default: one per core); with
  one worker, or one task, it runs them in this process.
- :class:`DaskExecutor`: a dask.distributed cluster, either an existing scheduler
  (``address="tcp://host:8786"``) or a ``LocalCluster`` it starts and stops on loopback. Needs
  the ``retrysim[dask]`` extra; without it, :class:`MissingExtraError` says so.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, Protocol

from retrysim import names
from retrysim.errors import BadInputError
from retrysim.model.scenario import Scenario
from retrysim.results.document import ResultDocument
from retrysim.retry.settings import RetrySettings

#: ``on_result(index, document)``: task ``index`` of the list finished with ``document``.
OnResult = Callable[[int, ResultDocument], None]

#: What ``--executor`` accepts (defined in retrysim.names, which --help can import cheaply).
EXECUTOR_KINDS = names.EXECUTOR_KINDS

#: The extra that brings dask.distributed, named in the error when it is missing.
DASK_EXTRA = "retrysim[dask]"


class MissingExtraError(BadInputError):
    """An optional dependency is not installed; the message names the extra to install."""


class ExecutorError(BadInputError):
    """The executor cannot be used as asked (an unreachable scheduler, a bad address)."""


class WorkerDiedError(Exception):
    """A worker process died mid-run (the system killed it: out of memory, a kill -9): a local
    pool's, or each dask worker that took the same run (dask's ``KilledWorker``).

    Neither the user's input nor a bug in retrysim: the CLI says so and exits 3, with how to
    go on from the runs already saved. Every run reported before it stays reported.
    """


@dataclass(frozen=True)
class Task:
    """One run of a compare or sweep: a pure function of these fields (see :func:`run_task`)."""

    scenario: Scenario
    sets: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    settings: RetrySettings | None = None
    #: Your own tenacity policy as ``module:attribute``; imported where the task runs.
    policy: str | None = None


def run_task(task: Task) -> ResultDocument:
    """Simulate one task (and its no-fault baseline when needed); return its document.

    Through the run step, so tasks that differ only in faults share one baseline run within a
    process. The timeline is left out (bulky, and not compared) and ``wall_time`` is 0, so the
    document is the same whichever machine or executor ran it.
    """
    from retrysim.runs.runner import run

    variant = task.scenario.with_overrides(task.sets) if task.sets else task.scenario
    retrying, retryings = None, None
    if task.policy is not None:  # MODULE:ATTR, the clients'; NAME=MODULE:ATTR, tier NAME's
        from retrysim.runs.user_policy import load_policies, load_policy, split_target

        tier, target = split_target(task.policy)
        if tier is None:
            retrying = load_policy(target, variant.policy.operation)
        else:
            retryings = load_policies(variant, {tier: target})
    doc = run(
        variant, seed=task.seed, settings=task.settings, retrying=retrying, retryings=retryings
    ).document
    doc.pop("timeline", None)
    doc["wall_time"] = 0.0
    return doc


class Executor(Protocol):
    """Runs tasks and reports each finished one as it comes."""

    def run(self, tasks: Sequence[Task], on_result: OnResult) -> None:
        """Run every task; call ``on_result(index, document)`` here as each one finishes.

        Returns when all are done. On an exception (a failing task, a Ctrl-C), stops the rest
        and re-raises; results already reported stay reported.
        """
        ...


def default_workers() -> int:
    """The number of local workers when none is given: one per core."""
    return os.cpu_count() or 1


class LocalExecutor:
    """Worker processes on this machine; one worker (or one task) runs in this process."""

    def __init__(self, workers: int | None = None) -> None:
        if workers is not None and workers < 1:
            raise ExecutorError(f"workers must be at least 1, not {workers}")
        self.workers = default_workers() if workers is None else workers

    def run(self, tasks: Sequence[Task], on_result: OnResult) -> None:
        # More processes than cores only adds switching: the runs are CPU-bound.
        workers = min(self.workers, len(tasks), os.cpu_count() or 1)
        if workers <= 1:
            for index, task in enumerate(tasks):
                on_result(index, run_task(task))
            return
        before = set(multiprocessing.active_children())
        pool = ProcessPoolExecutor(
            max_workers=workers, initializer=_start_worker, initargs=(os.getpid(),)
        )
        try:
            futures = {pool.submit(run_task, task): index for index, task in enumerate(tasks)}
            for future in as_completed(futures):
                on_result(futures[future], future.result())
        except BrokenProcessPool as error:
            _stop_pool(pool, before)
            raise WorkerDiedError(f"a worker process died: {error}") from None
        except BaseException:
            _stop_pool(pool, before)
            raise
        pool.shutdown()


def _start_worker(parent: int) -> None:
    """In a worker: leave Ctrl-C to the parent, which stops the pool (no traceback per worker),
    and die with the parent: a SIGKILL of retrysim runs no clean-up, and a pool's worker waits
    on its queue for ever (``retrysim.runs.children``)."""
    from retrysim.runs.children import die_with_parent

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(parent)


#: Seconds to wait for a stopped pool's manager thread (it ends at once once its workers have).
MANAGER_STOP_TIMEOUT = 10.0


def _stop_pool(pool: ProcessPoolExecutor, before: set[Any] | None = None) -> None:
    """Cancel what has not started and end the workers now, rather than wait for their runs.

    ``before``: this process's children before the pool started. Every child started since is
    the pool's too: a worker forked when a Ctrl-C or SIGTERM stopped the pool's start is not in
    its table yet, and left running it would keep the exit (which joins children) waiting.
    """
    # The pool's processes are private to it; Python 3.14 has terminate_workers() for this.
    workers = list((getattr(pool, "_processes", None) or {}).values())
    if before is not None:
        workers += [p for p in multiprocessing.active_children() if p not in before]
    pool.shutdown(wait=False, cancel_futures=True)
    for process in workers:
        if process.is_alive():
            process.terminate()
    for process in workers:
        process.join()
    # Let the pool's manager thread finish closing its wake-up pipe now: Python 3.11's exit
    # hook wakes it without a lock, and a close racing it printed "Bad file descriptor".
    manager = getattr(pool, "_executor_manager_thread", None)
    if manager is not None:
        manager.join(MANAGER_STOP_TIMEOUT)


class DaskExecutor:
    """A dask.distributed cluster: the scheduler at ``address``, or a ``LocalCluster``.

    The local cluster listens on 127.0.0.1 only, has no dashboard, and runs ``workers`` workers
    of one thread each: separate processes by default (the runs are CPU-bound Python), or
    threads of this process with ``processes=False`` (quick to start; runs then take turns).
    With ``address``, the cluster's own workers run the tasks; they need retrysim installed
    (and your ``--policy`` module importable, if you use one).
    """

    def __init__(
        self,
        address: str | None = None,
        workers: int | None = None,
        *,
        processes: bool = True,
        connect_timeout: float = 10.0,
    ) -> None:
        require_dask()
        if workers is not None and workers < 1:
            raise ExecutorError(f"workers must be at least 1, not {workers}")
        self.address = address
        self.workers = default_workers() if workers is None else workers
        self.processes = processes
        self.connect_timeout = connect_timeout
        self._open: contextlib.ExitStack | None = None
        self._client_open: Any = None

    def __enter__(self) -> DaskExecutor:
        """Keep one cluster (and client) for every run() until the block ends; without a
        ``with``, each run() starts and stops its own."""
        stack = contextlib.ExitStack()
        try:
            self._client_open = stack.enter_context(self._connect())
        except BaseException:
            stack.close()
            raise
        self._open = stack
        return self

    def __exit__(self, *exc: object) -> None:
        stack, self._open, self._client_open = self._open, None, None
        if stack is not None:
            stack.close()

    def run(self, tasks: Sequence[Task], on_result: OnResult) -> None:
        if not tasks:
            return
        distributed = _distributed()
        logger = logging.getLogger("distributed")
        level = logger.level
        try:
            with self._client() as client:
                futures = client.map(run_task, list(tasks), pure=False)
                index = {future.key: i for i, future in enumerate(futures)}
                try:
                    for future, document in distributed.as_completed(futures, with_results=True):
                        on_result(index[future.key], document)
                except distributed.KilledWorker as error:
                    # dask retried the run on a fresh worker and each one died under it.
                    logger.setLevel(logging.CRITICAL)
                    client.cancel(futures)
                    raise WorkerDiedError(f"a dask worker process died: {error}") from None
                except BaseException:
                    # Stopping early makes the cluster log the runs it had to drop (and the
                    # results it could no longer send): expected now, so not shown.
                    logger.setLevel(logging.CRITICAL)
                    client.cancel(futures)
                    raise
        finally:
            logger.setLevel(level)

    @contextlib.contextmanager
    def _client(self) -> Iterator[Any]:
        """The open client inside a ``with``; else a new one, closed afterwards."""
        if self._client_open is not None:
            yield self._client_open
            return
        with self._connect() as client:
            yield client

    @contextlib.contextmanager
    def _connect(self) -> Iterator[Any]:
        distributed = _distributed()
        with contextlib.ExitStack() as stack:
            if self.address is None:
                # Worker processes run dask_setup below, so a Ctrl-C in the terminal (sent to
                # every process in the group) reaches only this one, which stops the cluster.
                preload = [__name__] if self.processes else []
                cluster = stack.enter_context(
                    distributed.LocalCluster(
                        n_workers=self.workers,
                        threads_per_worker=1,
                        processes=self.processes,
                        host="127.0.0.1",
                        protocol="tcp://",
                        dashboard_address=None,
                        silence_logs=logging.CRITICAL,
                        preload=preload,
                    )
                )
                client = stack.enter_context(distributed.Client(cluster))
            else:
                try:
                    client = distributed.Client(self.address, timeout=self.connect_timeout)
                except Exception as error:  # OSError, TimeoutError, ValueError: all the same here
                    detail = " ".join(str(error).split()) or type(error).__name__
                    raise ExecutorError(
                        f"cannot reach a dask scheduler at {self.address}: {detail}"
                    ) from None
                stack.enter_context(client)
            yield client


def dask_setup(worker: Any) -> None:
    """dask's preload hook, run in each local cluster's worker process as it starts: leave
    Ctrl-C to the process that started the cluster (no traceback from every worker)."""
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _distributed() -> Any:
    """The dask.distributed module (untyped: its API is used through ``Any``)."""
    import distributed

    return distributed


def require_dask() -> None:
    """A :class:`MissingExtraError` naming the extra unless dask.distributed can be imported."""
    try:
        _distributed()
    except ImportError:
        raise MissingExtraError(
            f"the dask executor needs dask.distributed, which is not installed: "
            f"pip install '{DASK_EXTRA}'"
        ) from None


@contextlib.contextmanager
def session(executor: Executor) -> Iterator[Executor]:
    """``executor``, kept open (one dask cluster for every run) for the block when it can be."""
    if isinstance(executor, contextlib.AbstractContextManager):
        with executor:
            yield executor
    else:
        yield executor


def make_executor(kind: str, workers: int | None = None, address: str | None = None) -> Executor:
    """The executor ``--executor KIND`` names (``local`` or ``dask``), ready to run."""
    if kind == "local":
        if address is not None:
            raise ExecutorError("an address is for the dask executor; the local one has none")
        return LocalExecutor(workers)
    if kind == "dask":
        return DaskExecutor(address, workers)
    raise ExecutorError(f"unknown executor {kind!r}; allowed: {', '.join(EXECUTOR_KINDS)}")
