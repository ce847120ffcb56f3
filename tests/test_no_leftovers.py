"""Nothing left running: every child and port a command starts goes when retrysim goes.

``retrysim chaos real-redis-blip --start-redis`` runs as a real process; once its private
redis-server is serving the fleet's INCRs, retrysim is sent SIGINT, SIGTERM, SIGHUP or SIGKILL.
Afterwards no redis-server child may remain and nothing may listen on its port: the first three
by retrysim's own clean-up (with exit 130, 143 and 129 and one line, no traceback), SIGKILL by
the kernel (``retrysim.runs.children``: the server is tied to retrysim's life). A local worker
pool's processes are checked the same way under SIGKILL. Processes are read from ``/proc``
(psutil is not a dependency), ports by connecting to them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from retrysim.runs import children
from tests.conftest import missing

pytestmark = pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs Linux's /proc")

#: How long anything here may take before the test fails instead of hanging.
DEADLINE = 60.0


def child_pids(pid: int) -> list[int]:
    """The live children of process ``pid`` (from every thread's ``children`` list)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def command_line(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting to be reaped is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def redis_keys(port: int) -> int:
    """DBSIZE of the Redis on ``port`` (raw RESP), -1 if it does not answer."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(b"*1\r\n$6\r\nDBSIZE\r\n")
            reply = sock.recv(64)
    except OSError:
        return -1
    return int(reply[1:].split(b"\r\n")[0]) if reply.startswith(b":") else -1


def wait_for(
    condition: Callable[[], bool],
    what: str,
    timeout: float = DEADLINE,
    process: subprocess.Popen[str] | None = None,
    why: Callable[[], str] | None = None,
) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` (saying ``why()``, if given),
    or once ``process`` ended."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            pytest.fail(f"retrysim ended (exit {process.returncode}) before {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}" + (f": {why()}" if why else ""))
        time.sleep(0.02)


def retrysim(*args: str) -> subprocess.Popen[str]:
    """``retrysim ARGS`` as a real process, in a session of its own (signals go to it alone)."""
    return subprocess.Popen(
        [sys.executable, "-X", "faulthandler", "-m", "retrysim", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def finish(process: subprocess.Popen[str]) -> tuple[str, str]:
    """``process``'s output once it ends; a failure with every thread's stack (faulthandler,
    on SIGABRT) if it does not end within :data:`DEADLINE`."""
    try:
        return process.communicate(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)
        _, stderr = process.communicate(timeout=DEADLINE)
        pytest.fail(f"retrysim did not end within {DEADLINE} s:\n{stderr[-6000:]}")


@contextmanager
def reaped(process: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """``process``, killed (and its children found meanwhile) if the test fails midway."""
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=DEADLINE)


def redis_child(process: subprocess.Popen[str]) -> tuple[int, int]:
    """(pid, port) of the redis-server ``process`` started, once it holds the fleet's keys."""
    pid = process.pid
    found: list[tuple[int, int]] = []

    def started() -> bool:
        for child in child_pids(pid):
            line = command_line(child)
            if not line or not Path(line[0].split()[0]).name.startswith("redis-server"):
                continue
            if "--port" in line:  # as started
                found[:] = [(child, int(line[line.index("--port") + 1]))]
                return True
            title = " ".join(line).split()  # as redis-server retitles itself: "... HOST:PORT"
            if len(title) > 1 and title[1].rpartition(":")[2].isdigit():
                found[:] = [(child, int(title[1].rpartition(":")[2]))]
                return True
        return False

    wait_for(started, "retrysim to start redis-server", process=process)
    port = found[0][1]
    # mid-run, for sure: the fleet's first INCRs are in
    wait_for(lambda: redis_keys(port) > 0, "the fleet's first INCRs", process=process)
    return found[0]


EXPECTED = {
    signal.SIGINT: (130, "retrysim: interrupted"),
    signal.SIGTERM: (143, "retrysim: stopped by SIGTERM"),
    signal.SIGHUP: (129, "retrysim: stopped by SIGHUP"),
    signal.SIGKILL: (-signal.SIGKILL, None),
}


@pytest.mark.slow
@pytest.mark.parametrize("number", list(EXPECTED), ids=lambda n: signal.Signals(n).name)
@pytest.mark.usefixtures("redis_server")  # skips naming the install line, fails in CI
def test_a_signal_leaves_no_redis_server_and_no_port(number: signal.Signals) -> None:
    if number == signal.SIGKILL and not children.supported():
        missing("a child tied to its parent's life needs Linux's prctl")
    with reaped(retrysim("chaos", "real-redis-blip", "--start-redis")) as process:
        server, port = redis_child(process)
        assert running(server) and listening(port)
        process.send_signal(number)
        _, stderr = finish(process)
    code, line = EXPECTED[number]
    assert process.returncode == code, stderr
    if line is not None:
        assert stderr.strip().splitlines()[-1].startswith(line), stderr
        assert "Traceback" not in stderr and "never retrieved" not in stderr, stderr
    # a dying process shows as a zombie while its other threads still hold its sockets: both
    # the process and its port must go, within a bound
    wait_for(lambda: not running(server), f"redis-server {server} to end", timeout=10)
    wait_for(
        lambda: not listening(port),
        f"port {port} to close",
        timeout=10,
        why=lambda: listeners(port),
    )


def listeners(port: int) -> str:
    """Who listens on ``port`` (for a failure's message): the pids holding its socket."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rpartition(":")[2], 16) == port and fields[3] == "0A":
                inodes.add(fields[9])
    holders = []
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            pid = int(fd.parts[2])
            holders.append(f"{pid} {' '.join(command_line(pid))}")
    return f"listened on by {holders or inodes or 'nobody found'}"


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children, their children, ...)."""
    found = []
    for child in child_pids(pid):
        found += [child, *descendants(child)]
    return found


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["local", "dask"])
@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGKILL], ids=lambda n: n.name)
def test_a_stopped_sweep_leaves_no_worker_process(executor: str, number: signal.Signals) -> None:
    """A local pool's workers and a dask local cluster's go with the sweep: on SIGTERM by its
    clean-up; on SIGKILL, which runs none, by the kernel for the pool (a pool's worker would
    otherwise wait on its queue for ever) and by dask's own watch on its parent."""
    if executor == "dask":
        pytest.importorskip("distributed")
    if number == signal.SIGKILL and not children.supported():
        missing("a child tied to its parent's life needs Linux's prctl")
    grid = ["--grid", "policy.max_attempts=2,3,4,5,6,7,8,9", "--seeds", "8"]
    args = ["sweep", "thundering-herd", *grid, "--workers", "2", "--executor", executor, "--yes"]
    workers: list[int] = []
    with reaped(retrysim(*args)) as process:

        def started() -> bool:
            workers[:] = descendants(process.pid)
            return len(workers) >= (3 if executor == "dask" else 2)  # dask: + its tracker

        wait_for(started, "the sweep's worker processes", process=process)
        process.send_signal(number)
        finish(process)
    assert process.returncode == (143 if number == signal.SIGTERM else -signal.SIGKILL)
    for worker in workers:
        wait_for(lambda w=worker: not running(w), f"worker {worker} to end", timeout=10)  # type: ignore[misc]


def test_a_tied_child_is_killed_when_its_parent_is() -> None:
    """The mechanism itself: a grandchild tied to its parent dies with it (SIGKILL), and one
    not tied lives on (so the check can fail)."""
    if not children.supported():
        missing("a child tied to its parent's life needs Linux's prctl")
    script = (
        "import subprocess, sys\n"
        "from retrysim.runs.children import tied_to_this_process\n"
        "tie = tied_to_this_process() if sys.argv[1] == 'tied' else None\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'],"
        " preexec_fn=tie)\n"
        "print(child.pid, flush=True)\n"
        "sys.stdin.read()\n"
    )
    grandchildren = {}
    for kind in ("tied", "loose"):
        parent = subprocess.Popen(
            [sys.executable, "-c", script, kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert parent.stdout is not None
        grandchildren[kind] = int(parent.stdout.readline())
        parent.kill()
        parent.wait(DEADLINE)
    try:
        wait_for(lambda: not running(grandchildren["tied"]), "the tied child to end", timeout=10)
        assert running(grandchildren["loose"])
    finally:
        os.kill(grandchildren["loose"], signal.SIGKILL)
