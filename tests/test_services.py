"""The real-service tests on a machine without the service: skipped naming the install line on a
developer's machine, failed under ``.ci/run`` (RETRYSIM_REQUIRE_SERVICES=1) or CI=true.

The README's test command must pass on a fresh machine, where redis-server is not installed;
CI must not pass by skipping what it is there to run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REQUIRE_SERVICES, need_program

ROOT = Path(__file__).resolve().parents[1]
INSTALL_LINE = "apt-get install redis-server"
#: One test that uses the ``redis_server`` fixture (through ``redis_port``).
REAL_REDIS_TEST = "tests/test_chaos_run.py::test_a_real_run_through_the_proxy_makes_valid_records"


@pytest.fixture
def no_redis_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """PATH holds one empty folder, and neither switch is set."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv(REQUIRE_SERVICES, raising=False)
    monkeypatch.delenv("CI", raising=False)


@pytest.mark.usefixtures("no_redis_server")
@pytest.mark.parametrize("ci", [None, "", "0", "false", "no"])
def test_a_missing_service_skips_naming_the_install_line(
    monkeypatch: pytest.MonkeyPatch, ci: str | None
) -> None:
    if ci is not None:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception, match=INSTALL_LINE):
        need_program("redis-server")


@pytest.mark.usefixtures("no_redis_server")
@pytest.mark.parametrize(("name", "value"), [(REQUIRE_SERVICES, "1"), ("CI", "true")])
def test_a_missing_service_fails_when_services_are_required(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(pytest.fail.Exception, match=f"{INSTALL_LINE}.*{REQUIRE_SERVICES}"):
        need_program("redis-server")


def test_a_service_on_path_is_found(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    program = tmp_path / "redis-server"
    program.write_text("#!/bin/sh\n", encoding="utf-8")
    program.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv(REQUIRE_SERVICES, "1")
    assert need_program("redis-server") == str(program)


def test_ci_requires_the_services_it_installs() -> None:
    """.ci/run sets the switch before the README's test command runs."""
    lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    switch = lines.index(f"export {REQUIRE_SERVICES}=1")
    command = next(i for i, line in enumerate(lines) if line.startswith("pip install -e"))
    assert switch < command


def _pytest_without_redis_server(
    tmp_path: Path, **switches: str
) -> subprocess.CompletedProcess[str]:
    """A real-Redis test in a fresh pytest whose PATH holds no redis-server."""
    empty = tmp_path / "empty-bin"
    empty.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in (REQUIRE_SERVICES, "CI")}
    env.update(PATH=str(empty), **switches)
    args = [sys.executable, "-m", "pytest", "-n", "0", "-p", "no:cacheprovider", "-rs", "-q"]
    return subprocess.run(
        [*args, REAL_REDIS_TEST],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_the_real_redis_tests_skip_on_a_fresh_machine_and_fail_under_ci(tmp_path: Path) -> None:
    fresh = _pytest_without_redis_server(tmp_path)
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert "1 skipped" in fresh.stdout and INSTALL_LINE in fresh.stdout, fresh.stdout
    ci = _pytest_without_redis_server(tmp_path, **{REQUIRE_SERVICES: "1"})
    assert ci.returncode == 1, ci.stdout + ci.stderr
    assert "1 error" in ci.stdout and "1 skipped" not in ci.stdout, ci.stdout
    assert INSTALL_LINE in ci.stdout and REQUIRE_SERVICES in ci.stdout, ci.stdout
