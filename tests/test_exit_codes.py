"""Exit codes that say whose fault it was: 2 for the user's input or code, 1 for retrysim's
bugs, 3 for a worker the machine killed, 128 + the signal for SIGINT, SIGTERM and SIGHUP.

Each hostile case of issue 34 that used to print "this is a bug in retrysim" is here, run as
the user ran it (CliRunner, or a real process where a signal or a killed worker is the case),
with the one line and the exit code it gets now.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from typer.testing import CliRunner

from retrysim.chaos.http_service import HttpService
from retrysim.cli import exits
from retrysim.cli.app import app
from retrysim.model.library import load_scenario
from retrysim.retry.counters import CounterRegistry
from retrysim.retry.export import RetryCollector, encodable_text, render_prometheus
from retrysim.retry.guards import GuardStates
from retrysim.runs.executors import WorkerDiedError
from retrysim.runs.runner import run
from retrysim.runs.tune_search import proposer
from retrysim.runs.tune_space import (
    MAX_GRID,
    MAX_SEARCH_SEED,
    Dimension,
    Objective,
    TuneError,
    Tuning,
)
from retrysim.runs.user_policy import PolicyRaisedError, load_object, load_policy
from retrysim.sim.foreign import foreign_policy

BUG = "bug in retrysim"


def one_line(result: Any, code: int, *needles: str) -> str:
    """The one stderr line of ``result``, after checking its exit code and that no traceback
    and no "bug" message came with it."""
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output and BUG not in result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return str(lines[0])


# --- the user's own --policy code: exit 2, named as the user's ---------------------------------

# Each strategy works while probed (no time has passed in a probe's made-up calls) and fails
# once a simulated call has been retrying for a while: an error only a run can meet.
POLICIES = """
import sys
import tenacity

def _late(state):
    return (state.seconds_since_start or 0) > 0.5

def wait_fails(state):
    if _late(state):
        raise ValueError("wait went wrong")
    return 0.3

def stop_fails(state):
    if _late(state) and state.attempt_number > 2:
        raise RuntimeError("stop went wrong")
    return state.attempt_number >= 5

def retry_fails(state):
    if _late(state):
        raise LookupError("retry went wrong")
    return state.outcome.failed

def wait_says_none(state):
    return None if _late(state) else 0.3

def wait_exits(state):
    if _late(state):
        sys.exit(3)
    return 0.3

def fails_when_probed(state):
    raise ValueError("not even once")

wait = tenacity.Retrying(stop=tenacity.stop_after_attempt(5), wait=wait_fails)
stop = tenacity.Retrying(stop=stop_fails, wait=tenacity.wait_fixed(0.3))
retry = tenacity.Retrying(
    stop=tenacity.stop_after_attempt(5), wait=tenacity.wait_fixed(0.3), retry=retry_fails
)
none = tenacity.Retrying(stop=tenacity.stop_after_attempt(5), wait=wait_says_none)
exits = tenacity.Retrying(stop=tenacity.stop_after_attempt(5), wait=wait_exits)
probed = tenacity.Retrying(stop=tenacity.stop_after_attempt(5), wait=fails_when_probed)
fine = tenacity.Retrying(
    stop=tenacity.stop_after_attempt(4), wait=tenacity.wait_exponential(multiplier=0.2, max=2)
)
"""


def users_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefix: str, source: str) -> str:
    """``source`` as the user's module ``<prefix>_<pid>`` in the current folder (forgotten
    by the import system afterwards, so each test imports its own)."""
    name = f"{prefix}_{os.getpid()}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    return name


@pytest.fixture
def policies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = users_module(tmp_path, monkeypatch, "exit_policies", POLICIES)
    yield name
    sys.modules.pop(name, None)


@pytest.mark.parametrize(
    ("attribute", "what"),
    [
        ("wait", "raised ValueError: wait went wrong (in its wait, at attempt "),
        ("stop", "raised RuntimeError: stop went wrong (in its stop, at attempt "),
        ("retry", "raised LookupError: retry went wrong (in its retry, at attempt "),
        ("exits", "raised SystemExit (sys.exit(3)) (in its wait, at attempt "),
        ("none", "its wait returned None at attempt "),
    ],
)
def test_an_error_in_your_policy_while_it_runs_exits_2_naming_your_code(
    policies: str, attribute: str, what: str
) -> None:
    spec = f"{policies}:{attribute}"
    result = CliRunner().invoke(app, ["run", "redis-blip", "--policy", spec, "-q"])
    line = one_line(result, 2, f"retrysim: error: your policy {spec}", what)
    assert "internal error" not in line


def test_a_local_worker_reports_your_policy_s_error_the_same_way(policies: str) -> None:
    spec = f"{policies}:wait"
    args = ["compare", "redis-blip", "--policy", spec, "--policy", f"{policies}:fine"]
    result = CliRunner().invoke(app, [*args, "--seeds", "2", "--workers", "2", "-q"])
    one_line(result, 2, f"your policy {spec} raised ValueError: wait went wrong (in its wait")


def test_an_error_while_probing_your_policy_is_yours_too(policies: str) -> None:
    spec = f"{policies}:probed"
    result = CliRunner().invoke(app, ["run", "redis-blip", "--policy", spec, "-q"])
    one_line(result, 2, f"your policy {spec} raised when retrysim probed it", "not even once")


def test_debug_shows_the_traceback_through_your_code(policies: str) -> None:
    spec = f"{policies}:wait"
    result = CliRunner().invoke(app, ["--debug", "run", "redis-blip", "--policy", spec, "-q"])
    assert isinstance(result.exception, PolicyRaisedError)
    cause = result.exception.__cause__
    assert isinstance(cause, ValueError) and cause.__traceback__ is not None
    frames = [frame.filename for frame in traceback.extract_tb(cause.__traceback__)]
    assert frames[-1].endswith(f"{policies}.py")  # it ends in the user's own function


def test_guarding_your_policy_changes_no_result(policies: str) -> None:
    """The guards call the user's objects as tenacity would: same records, bit for bit."""
    scenario = load_scenario("redis-blip")
    spec = f"{policies}:fine"
    guarded = run(scenario, seed=3, retrying=load_policy(spec)).document
    plain = run(scenario, seed=3, retrying=foreign_policy(load_object(spec), spec)).document
    assert {**guarded, "wall_time": 0.0} == {**plain, "wall_time": 0.0}  # only the clock differs


def test_a_policy_module_that_exits_at_import_exits_2_saying_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = users_module(tmp_path, monkeypatch, "exits_at_import", "import sys\nsys.exit(0)\n")
    try:
        result = CliRunner().invoke(app, ["run", "redis-blip", "--policy", f"{name}:p", "-q"])
    finally:
        sys.modules.pop(name, None)
    one_line(result, 2, f"your policy module {name} exited during import (sys.exit(0))")


# --- the shell: a typo is one line, and the session goes on ------------------------------------


def test_shell_typos_are_one_line_errors_and_the_session_goes_on() -> None:
    session = "\n".join(
        [
            "load redis-blip",
            "fault add outage end='2",
            "compare nope=1,2",
            "compare policy.max_attempts=0,2",
            "set policy.max_attempts=2",
        ]
    )
    result = CliRunner().invoke(app, ["shell"], input=session + "\n")
    assert result.exit_code == 2  # a piped session with failed commands
    errors = [line for line in result.stdout.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: fault add outage end='2: no closing quotation",
        "error: compare: nope: unknown key (allowed: clients, description, duration, faults, "
        "limits, name, network, policy, seed, service, tiers)",
        "error: compare: policy.max_attempts: Input should be greater than or equal to 1",
    ]
    assert "policy.max_attempts = 2" in result.stdout  # the session went on after them
    assert BUG not in result.output and "internal error" not in result.output


# --- tune: a huge --search-seed, a huge range -------------------------------------------------


def test_a_huge_search_seed_is_one_line_with_the_allowed_range() -> None:
    args = ["tune", "redis-blip", "--search", "policy.max_attempts=2..4", "--seeds", "1", "-q"]
    result = CliRunner().invoke(app, [*args, "--search-seed", str(10**23)])
    one_line(result, 2, f"--search-seed {10**23}: allowed 0 to 4,294,967,295")


def test_the_largest_search_seed_every_strategy_takes_is_accepted() -> None:
    objective = Objective.of("success_rate")
    dims = [Dimension("policy.max_attempts", 2, 9, integer=True)]
    tuning = Tuning(dims, objective, search="random", search_seed=MAX_SEARCH_SEED)
    assert len(proposer("random", tuning).propose()) > 0
    with pytest.raises(TuneError, match="allowed 0 to"):
        Tuning(dims, objective, search_seed=MAX_SEARCH_SEED + 1)


@pytest.mark.parametrize(
    ("search", "needle"),
    [
        ("policy.max_attempts=1..1e18", "policy.max_attempts: Input should be less than or equal"),
        ("policy.max_attempts=1..1000000000000000000", "whole-number range ends must lie within"),
        ("policy.min_wait=0..1e18", "policy.min_wait: Input should be less than or equal"),
    ],
)
@pytest.mark.parametrize("strategy", ["auto", "grid", "random"])
def test_a_huge_search_range_is_one_line_and_no_memory_error(
    search: str, needle: str, strategy: str
) -> None:
    args = ["tune", "redis-blip", "--search", search, "--strategy", strategy, "--seeds", "1"]
    one_line(CliRunner().invoke(app, [*args, "-q"]), 2, needle)


def test_a_grid_too_big_to_propose_is_refused_before_it_is_built() -> None:
    objective = Objective.of("success_rate")
    huge = [Dimension(f"policy.k{i}", 1, 10**6, integer=True) for i in range(3)]  # 10^18 points
    with pytest.raises(TuneError, match=f"1,000,000,000,000,000,000 candidates.*{MAX_GRID:,}"):
        Tuning(huge, objective, search="grid")
    budgeted = Tuning(huge, objective, search="grid", budget=5)  # its first 5: fine
    assert proposer("grid", budgeted).propose()[-1] == {
        "policy.k0": 1,
        "policy.k1": 1,
        "policy.k2": 5,
    }


@hypothesis_settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 4), min_size=1, max_size=4),
    listed=st.booleans(),
    budget=st.none() | st.integers(1, 300),
)
def test_the_grid_proposes_itertools_product_s_points_in_its_order(
    sizes: list[int], listed: bool, budget: int | None
) -> None:
    """Decoding each point from its index is the same as building the product."""
    dims = [
        Dimension(f"policy.d{i}", values=tuple(f"v{j}" for j in range(n)))
        if listed
        else Dimension(f"policy.d{i}", -1, n - 2, integer=True)
        for i, n in enumerate(sizes)
    ]
    tuning = Tuning(dims, Objective.of("success_rate"), search="grid", budget=budget)
    combos = itertools.product(*([dim.at(k) for k in range(dim.size)] for dim in dims))
    every = [dict(zip((d.key for d in dims), combo, strict=True)) for combo in combos]
    assert proposer("grid", tuning).propose() == every[:budget]


# --- settings: refused at load, naming the variable and the range ------------------------------


def test_a_wait_past_the_limit_is_refused_at_load_naming_variable_and_range() -> None:
    result = CliRunner().invoke(
        app, ["run", "redis-blip", "-q"], env={"RETRY__WORKER_MAX_WAIT": "2e9"}
    )
    one_line(result, 2, "RETRY__WORKER_MAX_WAIT", "(got '2e9')", "allowed: 0 to 1,000,000,000")


# --- reports_errors: a dead worker is the machine's, not retrysim's ---------------------------


def test_a_dead_worker_is_exit_3_where_no_command_says_more() -> None:
    @exits.reports_errors
    def command() -> None:
        raise WorkerDiedError("a worker process died: the pool is broken")

    with pytest.raises(typer.Exit) as ended:
        command()
    assert ended.value.exit_code == exits.EXIT_ENVIRONMENT == 3


# --- real processes: a killed worker, SIGTERM, SIGHUP ------------------------------------------

# The command's progress callback acts once ``after`` runs have finished: it kills a worker
# (``kill``) or sends this process a signal (``SIGTERM``...), and writes the workers' pids down.
AFTER = """
import multiprocessing, os, signal, sys
from pathlib import Path
from retrysim.cli import app as app_module, progress
real_update = progress.WorkProgress.update
def update(self, done, total):
    real_update(self, done, total)
    if done == {after} and not getattr(update, "done", False):
        update.done = True
        workers = [child.pid for child in multiprocessing.active_children()]
        Path({pids!r}).write_text(" ".join(map(str, workers)))
        if {what!r} == "kill":
            os.kill(workers[0], signal.SIGKILL)
        else:
            os.kill(os.getpid(), getattr(signal, {what!r}))
progress.WorkProgress.update = update
sys.argv = ["retrysim", *sys.argv[1:]]
app_module.main()
"""
SWEEP = ["sweep", "lock-contention", "--grid", "policy.max_attempts=2,3,4", "--seeds", "2"]
# 16 runs: when a worker is killed after the first, most are still to run (and fail with it).
LONG_SWEEP = [
    "sweep",
    "lock-contention",
    "--grid",
    "policy.max_attempts=2,3,4,5,6,7,8,9",
    "--seeds",
    "2",
]


def _process(script: str, args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        **kwargs,
    )


def _gone(pids: str) -> bool:
    for pid in map(int, pids.split()):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        return False
    return True


def test_a_killed_worker_says_a_worker_died_and_how_to_resume(tmp_path: Path) -> None:
    out, pids = tmp_path / "out", tmp_path / "pids"
    script = AFTER.format(after=1, pids=str(pids), what="kill")
    done = _process(script, [*LONG_SWEEP, "--json", "--workers", "2", "--out", str(out), "-q"])
    assert done.returncode == 3, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr and BUG not in done.stderr
    assert lines[0].startswith("retrysim: error: a worker process died (killed by the system?")
    assert f"saved in {out / 'runs'}: run the same command again (or with --resume)" in lines[0]
    assert _gone(pids.read_text())  # the other worker was stopped too
    assert 1 <= len(list((out / "runs").iterdir())) < 16
    args = [*LONG_SWEEP, "--json", "-q"]
    resumed = CliRunner().invoke(app, [*args, "--out", str(out), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    fresh = CliRunner().invoke(app, args)
    assert json.loads(resumed.stdout) == json.loads(fresh.stdout)


# Each of dask's worker processes is killed once the first run is in: with no retries allowed
# (as after a run killed its workers again and again), dask gives up with KilledWorker.
DASK_KILL = """
import multiprocessing, os, signal, sys
from pathlib import Path
from retrysim.cli import app as app_module, progress
real_update = progress.WorkProgress.update
def update(self, done, total):
    real_update(self, done, total)
    if done == 1 and not getattr(update, "done", False):
        update.done = True
        workers = [c for c in multiprocessing.active_children() if "tracker" not in c.name]
        Path({pids!r}).write_text(" ".join(str(worker.pid) for worker in workers))
        for worker in workers:
            os.kill(worker.pid, signal.SIGKILL)
progress.WorkProgress.update = update
sys.argv = ["retrysim", *sys.argv[1:]]
app_module.main()
"""


def test_a_killed_dask_worker_says_a_worker_died_and_how_to_resume(tmp_path: Path) -> None:
    pytest.importorskip("distributed", reason="pip install 'retrysim[dask]'")
    out, pids = tmp_path / "out", tmp_path / "pids"
    args = [*LONG_SWEEP, "--executor", "dask", "--workers", "2", "--out", str(out), "-q"]
    env = {**os.environ, "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}
    done = _process(DASK_KILL.format(pids=str(pids)), args, env=env)
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr and BUG not in done.stderr
    said = [line for line in done.stderr.splitlines() if line.startswith("retrysim:")]
    assert len(said) == 1, done.stderr
    assert said[0].startswith("retrysim: error: a worker process died (killed by the system?")
    assert f"saved in {out / 'runs'}: run the same command again (or with --resume)" in said[0]
    assert pids.read_text().split()  # there were workers to kill


@pytest.mark.parametrize(("name", "code"), [("SIGTERM", 143), ("SIGHUP", 129)])
def test_sigterm_and_sighup_stop_a_sweep_as_ctrl_c_does(
    tmp_path: Path, name: str, code: int
) -> None:
    out, pids = tmp_path / "out", tmp_path / "pids"
    script = AFTER.format(after=2, pids=str(pids), what=name)
    done = _process(script, [*SWEEP, "--workers", "2", "--out", str(out), "-q"])
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"retrysim: stopped by {name} after 2 of 6 runs; those are saved in {out / 'runs'}: "
        "run the same command again (or with --resume) to go on from there"
    ]
    assert _gone(pids.read_text())  # its workers were stopped, not left running
    assert len(list((out / "runs").iterdir())) == 2


# A run (or the shell's run) that gets SIGTERM midway: the patched runner sends it.
TERM_MIDWAY = """
import os, signal, sys
import retrysim.runs.runner as runner
real = runner.run
def run(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGTERM)
    return real(*args, **kwargs)
runner.run = run
from retrysim.cli import app as app_module
sys.argv = ["retrysim", *sys.argv[1:]]
app_module.main()
"""


def test_sigterm_during_a_run_exits_143_with_one_line() -> None:
    done = _process(TERM_MIDWAY, ["run", "redis-blip", "-q"])
    assert done.returncode == 143, done.stderr
    assert done.stderr.strip() == "retrysim: stopped by SIGTERM"
    assert done.stdout == ""


def test_sigterm_ends_a_shell_session_rather_than_cancelling_one_command() -> None:
    session = "load redis-blip\nrun\nset policy.max_attempts=2\n"
    done = _process(TERM_MIDWAY, ["shell"], input=session)
    assert done.returncode == 143, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "retrysim: stopped by SIGTERM"
    assert "policy.max_attempts = 2" not in done.stdout  # the session ended there


def test_signal_handlers_leave_ignored_signals_alone_and_are_put_back() -> None:
    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    try:
        term = signal.getsignal(signal.SIGTERM)
        with exits.stop_on_signals():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert callable(signal.getsignal(signal.SIGTERM)) == (term is signal.SIG_DFL)
        assert signal.getsignal(signal.SIGTERM) is term
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, before)


def _wait_for(connection: Any) -> None:
    connection.recv()


def test_a_forked_worker_dies_of_sigterm_as_if_no_handler_were_set() -> None:
    """A local worker inherits the handler with the fork; stopping it must stay a SIGTERM
    (raising a KeyboardInterrupt there would leave it to its pool's clean-up, or running)."""
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        pytest.fail("this test needs SIGTERM at its default action in the test process")
    parent, child = multiprocessing.get_context("fork").Pipe()
    with exits.stop_on_signals():
        worker = multiprocessing.get_context("fork").Process(target=_wait_for, args=(child,))
        worker.start()
        worker.terminate()
        worker.join(60)
    parent.close()
    assert worker.exitcode == -signal.SIGTERM


# --- Prometheus: one bad name does not take the exposition down --------------------------------


def test_a_lone_surrogate_in_an_operation_name_is_replaced_not_fatal() -> None:
    registry = CounterRegistry()
    registry.call_started("billing.charge\udcff", "api")
    registry.call_started("billing.refund", "api")
    text = render_prometheus(registry, GuardStates())
    encoded = text.encode("utf-8")  # the whole exposition, served as UTF-8
    assert b'retry_calls_total{operation="billing.refund",kind="api"} 1' in encoded
    assert 'retry_calls_total{operation="billing.charge\ufffd",kind="api"} 1' in text
    collected = CollectorRegistry()
    collected.register(RetryCollector(registry, GuardStates()))
    assert "billing.charge\ufffd".encode() in generate_latest(collected)


@hypothesis_settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(categories=["Cs"]) | st.characters(), max_size=20))
def test_any_name_becomes_encodable_text_and_good_names_stay_as_they_are(name: str) -> None:
    shown = encodable_text(name)
    shown.encode("utf-8")  # never raises
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        assert "\ufffd" in shown or len(shown) < len(name)  # replaced, or a pair joined
    else:
        assert shown == name


# --- the chaos HTTP service: a non-ASCII header is a 400, not a dead connection task ------------


@pytest.mark.parametrize(
    "header",
    [
        b"Content-Length: \xb2",  # "²" in latin-1: str.isdigit() says yes, int() says no
        b"Content-Length: \xc2\xb2",  # "²" in UTF-8
        b"X-Retrysim-Call: \xb2",
        b"X-Caf\xc3\xa9: 1",
    ],
)
def test_a_non_ascii_header_is_answered_400_and_the_service_goes_on(header: bytes) -> None:
    async def main() -> tuple[bytes, bytes, int, list[dict[str, Any]]]:
        errors: list[dict[str, Any]] = []
        asyncio.get_running_loop().set_exception_handler(lambda _, context: errors.append(context))
        async with HttpService() as service:
            reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
            writer.write(b"POST / HTTP/1.1\r\nHost: x\r\n" + header + b"\r\n\r\n")
            bad = await reader.read()  # answered, then closed
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
            writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            good = await reader.read()
            writer.close()
            return bad, good, service.stats.bad_requests, errors

    bad, good, bad_requests, errors = asyncio.run(asyncio.wait_for(main(), 10))
    assert bad.startswith(b"HTTP/1.1 400 Bad Request") and bad_requests == 1
    assert good.startswith(b"HTTP/1.1 200 OK")
    assert errors == []  # nothing raised inside a connection's task
