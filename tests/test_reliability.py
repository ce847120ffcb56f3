"""Reliability: bad input never crashes, runs are reproducible anywhere, no output is half-written.

The fuzz test mutates valid scenarios (types, keys, values, truncation, bytes) and feeds each to
the CLI; every answer must be exit 0 or 2 with no traceback. FUZZ_EXAMPLES is the per-run count
the README's reliability table reports.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import retrysim
from retrysim.cli.app import app
from retrysim.model.toml_edit import dumps as toml_dumps

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"
FUZZ_EXAMPLES = 600
RUN_FUZZ_EXAMPLES = 100
BASES = ["redis-blip", "thundering-herd", "api-rate-limit", "lock-contention", "retry-storm"]


def _raw(name: str) -> dict[str, Any]:
    with retrysim.bundled_scenarios()[name].open("rb") as handle:
        return tomllib.load(handle)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            found.append((*prefix, key))
            found.extend(_paths(value, (*prefix, key)))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found.append((*prefix, index))
            found.extend(_paths(value, (*prefix, index)))
    return found


def _parent(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        data = data[part]
    return data


JUNK = st.one_of(
    st.integers(min_value=-(10**15), max_value=10**15),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.booleans(),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(
        st.sampled_from(["kind", "dist", "x", "start"]), st.integers(-5, 5), max_size=2
    ),
    st.sampled_from([0, -1, 1e12, 10**12, "burst", "outage", "nope", "", "1e3", [], {}]),
)


@st.composite
def mutated_files(draw: st.DrawFn) -> bytes:
    """A valid bundled scenario, then one to three mutations of a kind a person makes."""
    data = _raw(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(data)
        action = draw(st.sampled_from(["set", "set", "delete", "unknown", "rename"]))
        path = draw(st.sampled_from(paths)) if paths else ("name",)
        parent = _parent(data, path)
        if action == "set":
            parent[path[-1]] = draw(JUNK)
        elif action == "delete" and isinstance(parent, dict):
            parent.pop(path[-1], None)
        elif action == "unknown" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["colour", "max_atempts", "kindd", "seeds"]))] = 1
        elif action == "rename" and isinstance(parent, dict) and isinstance(path[-1], str):
            parent[path[-1] + "x"] = parent.pop(path[-1])
    try:
        text = toml_dumps(data).encode()
    except TypeError:
        text = json.dumps(data, default=str).encode()  # not TOML: must be rejected cleanly
    damage = draw(st.sampled_from(["none", "none", "truncate", "bytes", "empty", "binary"]))
    if damage == "truncate":
        text = text[: draw(st.integers(0, len(text)))]
    elif damage == "bytes":
        at = draw(st.integers(0, max(0, len(text) - 1)))
        text = text[:at] + draw(st.binary(min_size=1, max_size=4)) + text[at + 1 :]
    elif damage == "empty":
        text = b""
    elif damage == "binary":
        text = draw(st.binary(min_size=1, max_size=64))
    return text


KINDS = {
    "kind": [
        "burst",
        "uniform",
        "poisson",
        "closed",
        "ideal",
        "queue",
        "load_latency",
        "occ",
        "processor_sharing",
        "lock",
        "outage",
        "flaky",
        "reset",
        "recovery_ramp",
    ],
    "dist": ["constant", "uniform", "exponential", "normal", "lognormal"],
    "profile": ["documented", "bindu", "full_jitter", "equal_jitter", "decorrelated"],
    "operation": ["worker", "storage", "scheduler", "api"],
}


@st.composite
def plausible_files(draw: st.DrawFn) -> bytes:
    """Gentler mutations (scale numbers, swap kinds and profiles): mostly still valid."""
    data = _raw(draw(st.sampled_from(["redis-blip", "lock-contention", "startup-race"])))
    data["clients"]["count"] = min(int(data["clients"]["count"]), 200)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(_paths(data)))
        parent = _parent(data, path)
        value = parent[path[-1]]
        if isinstance(value, bool):
            parent[path[-1]] = not value
        elif isinstance(value, int | float):
            parent[path[-1]] = type(value)(value * draw(st.sampled_from([0, 0.5, 2, 3])))
        elif isinstance(value, str) and path[-1] in KINDS:
            parent[path[-1]] = draw(st.sampled_from(KINDS[path[-1]]))
    return toml_dumps(data).encode()


def _assert_clean(result: Any, what: str) -> None:
    assert result.exit_code in (0, 2), f"{what}: exit {result.exit_code}\n{result.output}"
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{what}: raised {result.exception!r}"
    )
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        assert "retrysim: error:" in result.output


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(content=mutated_files())
def test_fuzzed_scenarios_never_crash_the_cli(content: bytes, tmp_path: Path) -> None:
    target = tmp_path / "fuzz.toml"
    target.write_bytes(content)
    runner = CliRunner()
    _assert_clean(runner.invoke(app, ["validate", str(target)]), "validate")


@settings(
    max_examples=RUN_FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(content=plausible_files())
def test_fuzzed_scenarios_that_validate_also_run_or_are_refused(
    content: bytes, tmp_path: Path
) -> None:
    from retrysim.model.files import load_scenario
    from retrysim.model.scenario import ScenarioError
    from retrysim.sim.arrivals import expected_calls

    target = tmp_path / "fuzz.toml"
    target.write_bytes(content)
    try:
        scenario = load_scenario(target)
    except ScenarioError:
        return  # the validate fuzz covers rejected files
    if expected_calls(scenario) > 3000 or scenario.duration > 600:
        scenario_too_big = CliRunner().invoke(app, ["validate", str(target)])
        _assert_clean(scenario_too_big, "validate")
        return
    _assert_clean(CliRunner().invoke(app, ["run", str(target), "--json"]), "run")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["run", "no-such-scenario"], "no such scenario"),
        (["run", "thundering-herd", "--set", "policy.max_atempts=5"], "max_attempts"),
        (["run", "thundering-herd", "--set", "clients.count=1000000000000"], "memory"),
        (["run", "thundering-herd", "--set", "faults.0.end=-1"], "faults.0.end"),
        (["run", "thundering-herd", "--set", "nonsense"], "KEY=VALUE"),
        (["run", "thundering-herd", "--fail-under", "succes_rate=0.9"], "success_rate"),
        (["run", "thundering-herd", "--profile", "fast"], "allowed"),
        (["run", "thundering-herd", "--plot", "out.gif"], ".png"),
        (["run", "."], "directory"),
        (["validate", "/nonexistent/x.toml"], "no such file"),
        (["compare", "redis-blip", "--set", "policy.max_attempts=3,x"], "max_attempts"),
        (["plot", "/nonexistent/result.json"], "no such file"),
        (["run", "redis-blip", "--fail-under", "success_rate=nan"], "finite"),
        (["compare", "redis-blip", "--set", "policy.max_attempts="], "--set policy.max_attempts"),
    ],
)
def test_bad_input_is_one_line_exit_2(args: list[str], fragment: str) -> None:
    result = CliRunner().invoke(app, args)
    _assert_clean(result, " ".join(args))
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("retrysim: error:")]
    assert len(errors) == 1, result.output
    assert fragment in errors[0]


@pytest.mark.parametrize(
    ("variable", "value"),
    [("RETRY__SCHEDULER_MIN_WAIT", "-3"), ("RETRY__SCHEDULER_MAX_ATTEMPTS", "100000")],
)
def test_invalid_retry_env_values_are_one_line_exit_2(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    result = CliRunner().invoke(app, ["run", "redis-blip"])
    _assert_clean(result, f"run with {variable}={value}")
    assert result.exit_code == 2
    assert variable in result.output


def test_a_policy_the_settings_cannot_hold_is_bad_input_not_a_bug() -> None:
    # redis-blip's operation (scheduler) waits at most 8 s by default: min_wait 50 cannot be
    result = CliRunner().invoke(app, ["run", "redis-blip", "--set", "policy.min_wait=50"])
    _assert_clean(result, "run --set policy.min_wait=50")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "retrysim: error: policy: min_wait (50.0) must be <= max_wait (8.0) "
        "(the scenario with the RETRY__* settings)"
    ]


@pytest.mark.parametrize("option", ["--out", "--plot"])
def test_an_unwritable_output_path_is_bad_input(tmp_path: Path, option: str) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    target = blocker / ("x.png" if option == "--plot" else "out")
    result = CliRunner().invoke(app, ["run", "redis-blip", option, str(target)])
    _assert_clean(result, f"run {option} under a file")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("retrysim: error: ")
    assert str(blocker) in lines[0] and ".tmp" not in lines[0]  # the user's path, not a temp


ENTRY = [sys.executable, "-m", "retrysim"]


def test_only_oserrors_on_the_users_paths_or_the_machine_count_as_bad_input(
    tmp_path: Path,
) -> None:
    import errno

    from retrysim.cli.exits import is_bad_input

    out = tmp_path / "results"
    denied = PermissionError(errno.EACCES, "Permission denied", str(out / "result.json"))
    assert is_bad_input(denied, [out])  # inside the folder the user named
    assert is_bad_input(FileNotFoundError(2, "No such file", str(tmp_path)), [out])  # a parent
    assert not is_bad_input(denied, [tmp_path / "elsewhere"])  # not a path the user gave
    assert not is_bad_input(FileNotFoundError(2, "No such file", "/usr/share/x"), [])
    assert is_bad_input(OSError(errno.ENOSPC, "No space left on device"), [])
    assert is_bad_input(retrysim.ScenarioError("x"), [])
    assert not is_bad_input(ValueError("x"), [])


BROKEN_RUN = """
import sys
import retrysim.results.metrics

def broken(*args, **kwargs):
    raise {error}

retrysim.results.metrics.summarize = broken
sys.argv = ["retrysim", *{args!r}]
from retrysim.cli.app import main
main()
"""


def _run_broken(error: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    """The real entry point, with a library function that ``retrysim run`` calls made to fail."""
    script = BROKEN_RUN.format(error=error, args=args)
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, cwd=ROOT
    )


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        ("ZeroDivisionError('division by zero')", "ZeroDivisionError: division by zero"),
        # a plain ValueError from inside retrysim is a bug too, not the user's bad input
        ("ValueError('bins must be positive')", "ValueError: bins must be positive"),
    ],
)
def test_an_internal_error_says_it_is_a_bug_in_one_line_exit_1(error: str, shown: str) -> None:
    done = _run_broken(error, ["run", "redis-blip"])
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert not lines[0].startswith("retrysim: error:")  # not dressed up as bad input
    assert shown in lines[0]
    assert "bug in retrysim" in lines[0]
    assert "please report it with the command you ran" in lines[0]
    assert "retrysim --debug COMMAND" in lines[0]


def test_debug_shows_the_traceback_of_an_internal_error() -> None:
    done = _run_broken("ZeroDivisionError('division by zero')", ["--debug", "run", "redis-blip"])
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stderr
    assert "in broken" in done.stderr and "ZeroDivisionError: division by zero" in done.stderr
    assert "bug in retrysim" not in done.stderr


def test_internal_errors_are_exit_1_through_the_test_runner_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import retrysim.runs.runner

    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("timeline")

    # where the run step looks it up (a KeyError is also what a mistyped key raises: it must
    # still be reported as a bug when it comes from inside retrysim)
    monkeypatch.setattr(retrysim.runs.runner, "summarize", broken)
    result = CliRunner().invoke(app, ["run", "redis-blip"])
    assert result.exit_code == 1
    assert "KeyError: 'timeline'" in result.stderr and "bug in retrysim" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["run", "redis-blip", "--seed", "-1"], "--seed"),
        (["run", "redis-blip", "--seed", str(2**64)], "--seed"),
        (["run", "redis-blip", "--bogus"], "--bogus"),
        (["run"], "Missing argument"),
        (["scenarios", "show"], "Missing argument"),
    ],
)
def test_argument_errors_through_the_real_entry_point_are_one_line(
    args: list[str], fragment: str
) -> None:
    """Click's own usage errors go through main(), which CliRunner does not exercise."""
    done = subprocess.run([*ENTRY, *args], capture_output=True, text=True, check=False)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("retrysim: error:"), done.stderr
    assert fragment in lines[0]
    assert "Traceback" not in done.stderr


def test_bare_command_shows_help_and_exits_0() -> None:
    done = subprocess.run(ENTRY, capture_output=True, text=True, check=False)
    assert done.returncode == 0
    assert "Usage" in done.stdout and "run" in done.stdout


# --- determinism -------------------------------------------------------------------------------

DIGEST = """
import hashlib, json, sys
import retrysim
from retrysim import output
from retrysim.runs.sweep import run_one
scenario = retrysim.load_scenario(sys.argv[1])
doc = run_one(scenario, {}, scenario.seed, None)
print(hashlib.sha256(output.dumps(doc).encode()).hexdigest())
"""


def _digest_in_new_process(name: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", DIGEST, name],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "random"},
    )
    return done.stdout.strip()


def _digest_here(name: str) -> str:
    from retrysim import output
    from retrysim.runs.sweep import run_one

    scenario = retrysim.load_scenario(name)
    return hashlib.sha256(
        output.dumps(run_one(scenario, {}, scenario.seed, None)).encode()
    ).hexdigest()


def _document_in_pool_worker(name: str) -> str:
    return _digest_here(name)


@pytest.mark.slow
def test_every_bundled_scenario_is_identical_in_every_process_and_executor() -> None:
    """This process, two fresh interpreters (random hash seeds), and a process-pool worker."""
    from concurrent.futures import ProcessPoolExecutor

    names = sorted(retrysim.bundled_scenarios())
    with ProcessPoolExecutor(max_workers=2) as pool:
        pooled = dict(zip(names, pool.map(_document_in_pool_worker, names), strict=True))
    for name in names:
        here = _digest_here(name)
        assert _digest_in_new_process(name) == here, name
        assert _digest_in_new_process(name) == here, name
        assert pooled[name] == here, name


@pytest.mark.slow
def test_results_do_not_depend_on_the_executor() -> None:
    from retrysim.runs.sweep import compare, grid_variants

    scenario = retrysim.load_scenario("lock-contention")
    variants = grid_variants([("policy.profile", ["bindu", "full_jitter"])])
    seeds = [1, 2]
    serial = compare(scenario, variants, seeds, workers=1)
    parallel = compare(scenario, variants, seeds, workers=2)
    assert [r.documents for r in serial] == [r.documents for r in parallel]


@pytest.mark.parametrize(
    "name", ["redis-blip", "lock-contention", "startup-race", "three-tier-storm"]
)
def test_golden_results_still_match(name: str) -> None:
    """A mismatch means behaviour changed: if intended, run scripts/update_golden.py and review."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:  # a script, not a package module: imported by name once scripts/ is on the path
        golden_document = importlib.import_module("update_golden").golden_document
    finally:
        sys.path.pop(0)
    expected = json.loads((GOLDEN / f"{name}.json").read_text(encoding="utf-8"))
    assert golden_document(name) == expected


# --- no lost or half-written output --------------------------------------------------------------

KILLED_SWEEP = """
import os, signal, sys
from pathlib import Path
import retrysim
from retrysim.runs.sweep import compare, grid_variants
scenario = retrysim.load_scenario("lock-contention")
grid = [("policy.max_attempts", [4, 6, 8]), ("policy.profile", ["bindu", "full_jitter"])]
variants = grid_variants(grid)
def die_after_two(done, total):
    if done == 2:
        os.kill(os.getpid(), signal.SIGKILL)   # no clean-up, like a crash or kill -9
compare(scenario, variants, [1], checkpoint=Path(sys.argv[1]), on_done=die_after_two)
"""


def test_a_killed_sweep_leaves_only_complete_files_and_resumes(tmp_path: Path) -> None:
    from retrysim.runs.sweep import compare, grid_variants

    runs = tmp_path / "runs"
    killed = subprocess.run([sys.executable, "-c", KILLED_SWEEP, str(runs)], check=False)
    assert killed.returncode == -signal.SIGKILL
    files = sorted(runs.iterdir())
    assert len(files) == 2  # exactly the runs finished before the kill, nothing partial
    for file in files:
        assert not file.name.startswith(".")  # no temporary file left visible as a result
        json.loads(file.read_text(encoding="utf-8"))  # complete, parseable JSON

    scenario = retrysim.load_scenario("lock-contention")
    variants = grid_variants(
        [("policy.max_attempts", [4, 6, 8]), ("policy.profile", ["bindu", "full_jitter"])]
    )
    progress: list[tuple[int, int]] = []
    resumed = compare(
        scenario, variants, [1], checkpoint=runs, on_done=lambda d, t: progress.append((d, t))
    )
    assert progress[0] == (2, 6)  # the two finished runs were reused, not redone
    assert progress[-1] == (6, 6)
    fresh = compare(scenario, variants, [1])
    assert [r.documents for r in resumed] == [r.documents for r in fresh]


def test_run_out_writes_complete_files_with_normal_permissions(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", "startup-race", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == ["attempts.csv", "calls.csv", "result.json"]
    doc = json.loads((out / "result.json").read_text(encoding="utf-8"))
    assert doc == json.loads(result.stdout)
    attempts = (out / "attempts.csv").read_text(encoding="utf-8").splitlines()
    assert len(attempts) == doc["attempts"]["total"] + 1
    umask = os.umask(0)
    os.umask(umask)
    for path in out.iterdir():
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path.name


def test_a_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    from retrysim.output import atomic_path

    target = tmp_path / "result.json"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half", encoding="utf-8")
        raise RuntimeError("crash while writing")
    assert target.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


# --- safety -------------------------------------------------------------------------------------


def test_no_module_evaluates_or_unpickles() -> None:
    banned_calls = {"eval", "exec", "compile", "__import__"}
    banned_modules = {"pickle", "marshal", "shelve", "importlib"}
    package = Path(retrysim.__file__).resolve().parent
    # lazy exports of fixed names only; and --policy MODULE:ATTR, the one place retrysim
    # imports code that is not its own, only when the user names it (never from a scenario)
    allowed_importlib = {
        package / "_lazy.py",
        package / "runs" / "user_policy.py",
        package / "cli" / "entry.py",  # find_spec only: is the workbench installed?
    }
    for path in sorted(Path(retrysim.__file__).resolve().parent.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in banned_calls, f"{path.name} calls {node.func.id}"
            if isinstance(node, ast.Import | ast.ImportFrom) and path not in allowed_importlib:
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                )
                for name in names:
                    assert name.split(".")[0] not in banned_modules, f"{path.name} imports {name}"


def test_a_scenario_with_code_in_it_is_only_data(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = f"__import__('pathlib').Path({str(marker)!r}).write_text('x')"
    target = tmp_path / "evil.toml"
    target.write_text(
        textwrap.dedent(f"""
        name = {json.dumps(payload)}
        description = {json.dumps(payload)}
        [clients]
        count = 3
        [service]
        kind = "ideal"
        """),
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["run", str(target), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["scenario"] == payload
    assert not marker.exists()


def test_simulating_every_scenario_opens_no_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[tuple[Any, ...]] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        opened.append(args)
        raise AssertionError("retrysim tried to open a network socket")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    for name in ["redis-blip", "startup-race", "lock-contention", "api-rate-limit"]:
        result = CliRunner().invoke(app, ["run", name, "--json"])
        assert result.exit_code == 0, result.output
    assert opened == []


def test_golden_files_are_the_documented_four() -> None:
    assert sorted(p.stem for p in GOLDEN.glob("*.json")) == [
        "lock-contention",
        "redis-blip",
        "startup-race",
        "three-tier-storm",
    ]


def test_an_unreadable_scenario_file_is_one_line_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """chmod 000 does not stop root (CI runs as root), so the read itself is made to fail."""
    target = tmp_path / "locked.toml"
    target.write_text("[clients]\ncount = 1\n", encoding="utf-8")
    real_open = Path.open

    def denied(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self.name == "locked.toml":
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", denied)
    result = CliRunner().invoke(app, ["run", str(target)])
    _assert_clean(result, "run locked.toml")
    assert result.exit_code == 2
    assert "locked.toml: cannot read: Permission denied" in result.output
