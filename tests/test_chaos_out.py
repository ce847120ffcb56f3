"""A real run as data: ``retrysim chaos --out DIR`` saves what ``run --out`` saves, ``retrysim
plot DIR`` draws it, ``--fail-under/--fail-over`` gate it, and a fleet one process cannot drive
is refused before anything starts.

The real runs are small (20 clients for 2.5 s of a bundled scenario, through ``--set``)
against a private redis-server each ``--start-redis`` starts and stops; the refusals need no
server at all (PATH is emptied, so a server that started would fail differently).
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.image
import numpy as np
import pytest
from matplotlib.patches import StepPatch
from typer.testing import CliRunner

from retrysim import plots
from retrysim.chaos.fleet import MAX_REAL_CLIENTS, check_fleet
from retrysim.chaos.run import real_run
from retrysim.chaos.toxics import ChaosError
from retrysim.cli.app import app
from retrysim.cli.run_files import RUN_FILES
from retrysim.model.scenario import Scenario
from retrysim.plots import palette
from retrysim.results.document import from_json
from retrysim.sim import records as rec

#: real-redis-blip cut down: 20 clients, 2.5 s, its refusal from 1 s to 1.5 s.
SMALL = [
    "--set",
    "clients.count=20",
    "--set",
    "duration=2.5",
    "--set",
    "faults.0.start=1",
    "--set",
    "faults.0.end=1.5",
]
THRESHOLD_LINE = re.compile(r"^retrysim: threshold missed: (\w+) = \S+ is (below|above) \S+$")


def chaos(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, ["chaos", "real-redis-blip", *args], env=env)


@pytest.fixture(scope="module")
def saved(
    tmp_path_factory: pytest.TempPathFactory, redis_server: str
) -> Iterator[tuple[Path, Any]]:
    """One real run saved with --out (and a gate it passes), as the issue's command runs it
    (``redis_server``: skipped without one, failed under .ci/run: conftest)."""
    out = tmp_path_factory.mktemp("real") / "out" / "real"  # a folder that does not exist yet
    result = chaos(
        "--start-redis", *SMALL, "--out", str(out), "--json", "--fail-under", "success_rate=0.5"
    )
    assert result.exit_code == 0, result.output + result.stderr
    yield out, result


def test_out_saves_the_real_runs_records_in_the_simulators_files(saved: tuple[Path, Any]) -> None:
    out, result = saved
    assert sorted(p.name for p in out.iterdir()) == sorted(RUN_FILES)
    doc = json.loads((out / "result.json").read_text(encoding="utf-8"))
    assert doc == json.loads(result.stdout) and doc["mode"] == "real"
    assert doc["clients"]["count"] == 20 and doc["scenario"] == "real-redis-blip"
    # the saved document is a valid result document (what a notebook loads)
    assert from_json((out / "result.json").read_text(encoding="utf-8"))["mode"] == "real"
    with (out / "attempts.csv").open(encoding="utf-8") as handle:
        attempts = list(csv.DictReader(handle))
    with (out / "calls.csv").open(encoding="utf-8") as handle:
        calls = list(csv.DictReader(handle))
    assert len(attempts) == doc["attempts"]["total"] and len(calls) == doc["calls"]["total"]
    failed = [a for a in attempts if int(a["outcome"]) == rec.FAILED]
    assert failed and {a["error"] for a in failed} == {"redis.exceptions.ConnectionError"}
    # when the real first attempts started, readable without internals: from 0 s, in the run
    firsts = [float(a["start"]) for a in attempts if a["attempt"] == "1"]
    assert min(firsts) >= 0.0 and max(firsts) < 2.5
    # every failure in (or just after) the 1.0-1.5 s refusal, on the run's own clock
    assert all(0.9 <= float(a["start"]) < 2.2 for a in failed)


def test_plot_draws_the_saved_real_run(saved: tuple[Path, Any], tmp_path: Path) -> None:
    out, _ = saved
    for kind in ("timeline", "spread", "cdf"):
        target = tmp_path / f"{kind}.png"
        drawn = CliRunner().invoke(app, ["plot", str(out), "--kind", kind, "--out", str(target)])
        assert drawn.exit_code == 0, drawn.output + drawn.stderr
        pixels = matplotlib.image.imread(str(target))[..., :3]
        assert pixels.std() > 0.05, kind  # not a blank canvas
    # the timeline's bars are there: pixels of the first-try blue and the retry-1 orange
    pixels = matplotlib.image.imread(str(tmp_path / "timeline.png"))[..., :3]
    for colour in palette.SERIES[:2]:
        alpha = palette.SERIES_ALPHA  # as drawn: the series over the white canvas
        rgb = alpha * np.array(matplotlib.colors.to_rgb(colour)) + (1 - alpha)
        near = np.abs(pixels - rgb).max(axis=-1) < 0.08
        assert near.sum() > 500, colour
    copy = shutil.copytree(out, tmp_path / "copy")  # the saved folder stays as --out left it
    default = CliRunner().invoke(app, ["plot", str(copy)])
    assert default.exit_code == 0 and (copy / "timeline.png").stat().st_size > 0


def test_the_timeline_of_a_real_run_counts_every_attempt_on_a_real_time_axis(
    saved: tuple[Path, Any],
) -> None:
    out, _ = saved
    doc = json.loads((out / "result.json").read_text(encoding="utf-8"))
    ax = plots.herd_timeline(doc).axes[0]
    bars = [p for p in ax.patches if (p.get_gid() or "").startswith("attempts-")]
    top = bars[-1]  # each series is drawn on the ones below it: the last one tops the stack
    assert isinstance(top, StepPatch)
    stacked_top, _edges, _baseline = top.get_data()
    width = doc["timeline"]["bin_width"]
    assert stacked_top.sum() * width == pytest.approx(doc["attempts"]["total"])
    assert ax.get_xlabel() == "real time (s since the start)"
    spread = plots.jitter_spread(doc).axes[0]
    assert spread.get_xlabel().startswith("real time")


def test_gates_hold_a_real_run_as_they_hold_a_simulation(redis_server: str) -> None:
    # the refusal makes retries, and every call gets through: one gate missed, one held
    result = chaos(
        "--start-redis",
        *SMALL,
        "--json",
        "--fail-over",
        "retry_rate=0",
        "--fail-under",
        "success_rate=0.5",
    )
    assert result.exit_code == 1, result.output + result.stderr
    doc = json.loads(result.stdout)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    match = THRESHOLD_LINE.match(lines[0])
    assert match is not None and match.groups() == ("retry_rate", "above"), lines[0]
    assert doc["attempts"]["retries"] > 0 and doc["calls"]["success_rate"] >= 0.5
    # the same gate on a simulation prints the same form of line, with the same exit code
    simulated = CliRunner().invoke(
        app, ["run", "real-redis-blip", *SMALL, "--fail-over", "retry_rate=0"]
    )
    assert simulated.exit_code == 1
    (line,) = simulated.stderr.strip().splitlines()
    assert THRESHOLD_LINE.match(line) is not None


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--fail-under", "sucess_rate=0.9"], "--fail-under sucess_rate: unknown metric"),
        (["--fail-over", "p99_latency=inf"], "the threshold must be a finite number"),
        (["--out", "{file}"], "exists and is not a folder"),
    ],
)
def test_bad_gates_and_out_paths_are_refused_before_the_run(
    args: list[str], said: str, tmp_path: Path
) -> None:
    file = tmp_path / "a-file"
    file.write_text("x", encoding="utf-8")
    given = [a.replace("{file}", str(file)) for a in args]
    # no redis-server on PATH: a check made after the start would say that instead
    result = chaos("--start-redis", *given, env={"PATH": str(tmp_path / "empty")})
    assert result.exit_code == 2, result.output + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and said in lines[0], result.stderr


@pytest.mark.parametrize("start", ["--start-redis", "--start-http"])
def test_a_fleet_past_the_limit_is_refused_up_front_in_one_line(start: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["chaos", "thundering-herd", start], env={"PATH": str(tmp_path)}
    )
    assert result.exit_code == 2, result.output + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "clients.count = 10,000" in lines[0] and f"at most {MAX_REAL_CLIENTS:,}" in lines[0]
    assert f"--set clients.count={MAX_REAL_CLIENTS}" in lines[0] and "--force" in lines[0]


def _fleet(count: int, **changes: Any) -> Scenario:
    data: dict[str, Any] = {
        "name": "fleet",
        "duration": 0.5,
        "policy": {"operation": "storage", "max_attempts": 2, "min_wait": 0.1},
        "clients": {
            "count": count,
            "calls_per_client": 1,
            "timeout": 2.0,
            "arrival": {"kind": "uniform", "end": 0.5},
        },
    }
    data.update(changes)
    return Scenario.model_validate(data)


def test_the_limit_is_a_bound_and_force_lifts_it() -> None:
    check_fleet(_fleet(MAX_REAL_CLIENTS))
    with pytest.raises(ChaosError, match=f"clients.count = {MAX_REAL_CLIENTS + 1:,}"):
        check_fleet(_fleet(MAX_REAL_CLIENTS + 1))
    check_fleet(_fleet(MAX_REAL_CLIENTS + 1), force=True)


def test_the_library_refuses_as_the_command_does() -> None:
    """Refused in ``check``, before anything connects (nothing listens on port 1)."""
    with pytest.raises(ChaosError, match="--force"):
        real_run(_fleet(MAX_REAL_CLIENTS + 1), ("127.0.0.1", 1))


def test_a_forced_fleet_past_the_limit_runs_and_says_what_it_measures(redis_server: str) -> None:
    """Forced, the fleet runs (one call per client over half a second: a size the loop still
    drives), after one warning line saying what its timings measure."""
    count = MAX_REAL_CLIENTS + 1
    result = chaos(
        "--start-redis",
        "--set",
        f"clients.count={count}",
        "--set",
        "duration=0.5",
        "--set",
        "faults=[]",
        "--force",
        "--json",
    )
    assert result.exit_code == 0, result.output + result.stderr
    assert json.loads(result.stdout)["calls"]["total"] == count
    said = f"retrysim: warning: clients.count = {count:,} is past the {MAX_REAL_CLIENTS:,}"
    lines = [line for line in result.stderr.splitlines() if "clients.count" in line]
    assert len(lines) == 1 and lines[0].startswith(said), result.stderr
