"""The GitHub Actions job of ``retrysim check`` (docs/ci/retrysim-check.yml), run here.

The YAML is read as GitHub reads it, and each ``run:`` step's commands run with bash -e (as
GitHub runs them) in a scratch git repository holding a retrysim.toml and two commits of a
.env: the base of the pull request and its head. GitHub's expression for the base commit is
replaced by that repository's base commit; any other expression fails the test (it would have
no local value). The install step is the one not run: retrysim is installed here already, and
the test checks that step installs it with the workbench.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

WORKFLOW = Path(__file__).resolve().parent.parent / "docs" / "ci" / "retrysim-check.yml"
BASE_SHA = "${{ github.event.pull_request.base.sha }}"
INSTALL = "python -m pip install 'retrysim[workbench]'"

CONFIG = """\
scenarios = ["thundering-herd"]
seeds = 3

[gates]
amplification = "<= before * 1.1"

[scenario.thundering-herd]
set = { duration = 20, "clients.count" = 1000 }
"""
MAIN = "RETRY__SCHEDULER_MAX_ATTEMPTS=3\n"


def load() -> dict[Any, Any]:
    data = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def steps() -> list[dict[str, Any]]:
    (job,) = load()["jobs"].values()
    found: list[dict[str, Any]] = job["steps"]
    return found


def test_it_runs_on_pull_requests_with_the_history_and_uploads_even_on_failure() -> None:
    data = load()
    on = data.get("on", data.get(True))  # YAML 1.1 reads a bare `on` key as true
    assert isinstance(on, dict) and "pull_request" in on
    by_action = {step["uses"].split("@")[0]: step for step in steps() if "uses" in step}
    assert by_action["actions/checkout"]["with"]["fetch-depth"] == 0
    assert "python-version" in by_action["actions/setup-python"]["with"]
    upload = by_action["actions/upload-artifact"]
    assert upload["if"] == "always()"
    assert upload["with"]["path"] == "out/"
    names = [step.get("name", step.get("uses")) for step in steps()]
    assert names.index("Upload the report") == len(names) - 1  # after the check


def git(folder: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def pull_request(folder: Path, head_env: str) -> str:
    """A repository whose base commit has the main .env and whose head has ``head_env``;
    returns the base commit."""
    git(folder, "init", "-q")
    (folder / "retrysim.toml").write_text(CONFIG)
    (folder / ".env").write_text(MAIN)
    git(folder, "add", "retrysim.toml", ".env")
    git(folder, "commit", "-qm", "base")
    base = git(folder, "rev-parse", "HEAD")
    (folder / ".env").write_text(head_env)
    git(folder, "commit", "-qam", "the change")
    return base


def run_steps(folder: Path, base: str) -> list[int]:
    """Each ``run:`` step as GitHub would run it here; its exit codes, in order."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "CI": "true",
    }
    codes = []
    ran_install = False
    for step in steps():
        script = step.get("run")
        if script is None:
            continue
        if script.strip() == INSTALL:
            ran_install = True  # installed already: this venv is retrysim's own
            continue
        assert BASE_SHA in script or "${{" not in script
        script = script.replace(BASE_SHA, base)
        leftover = re.findall(r"\$\{\{.*?\}\}", script)
        assert not leftover, f"an expression with no local value: {leftover}"
        done = subprocess.run(
            ["bash", "-e", "-c", script],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        codes.append(done.returncode)
    assert ran_install, f"no step runs {INSTALL!r}"
    return codes


@pytest.mark.parametrize(
    ("head_env", "code"),
    [
        ("RETRY__SCHEDULER_MAX_ATTEMPTS=10\n", 1),  # doubles the load: the gate breaks
        ("RETRY__SCHEDULER_MAX_ATTEMPTS=3\nLOG_LEVEL=debug\n", 0),  # harmless
    ],
)
def test_the_steps_fail_a_bad_change_pass_a_harmless_one_and_leave_the_report(
    tmp_path: Path, head_env: str, code: int
) -> None:
    base = pull_request(tmp_path, head_env)
    assert run_steps(tmp_path, base) == [code]
    out = tmp_path / "out"
    doc = json.loads((out / "check.json").read_text())
    assert doc["passed"] is (code == 0)
    assert doc["before"]["origin"] == f"git:{base}:.env"
    cases = {c.get("name"): c for c in ET.parse(out / "junit.xml").getroot().iter("testcase")}
    gate = cases["gate amplification <= before * 1.1"]
    assert (gate.find("failure") is not None) is (code == 1)
    page = (out / "check.html").read_text(encoding="utf-8")
    assert "RETRY__SCHEDULER_MAX_ATTEMPTS" in page and "check " in page
