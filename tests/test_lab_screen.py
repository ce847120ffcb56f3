"""retrysim lab's screen, driven headless by Textual's pilot: a bundled scenario, a knob
changed, the metric and the figure updated, pin, save, .env, quit; text snapshots at 80x24
and 160x48 (tests/snapshots/; RETRYSIM_UPDATE_SNAPSHOTS=1 rewrites them).

Runs are waited for by the workers finishing (``app.workers.wait_for_complete``), never by
sleeping; the app runs without its key debounce, so a key press starts its run at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from textual.worker import WorkerCancelled, WorkerFailed

from retrysim.lab.app import LabApp, QuitScreen, TuneScreen
from retrysim.lab.model import BY_OPTION, LabModel, Outcome
from retrysim.lab.widgets import ChartView, KnobView
from retrysim.model.library import load_scenario
from retrysim.model.session import Loaded
from retrysim.model.session import load as load_session

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
Pilot = Any


def load(arg: str) -> Loaded:
    """The session a user gets by loading ``arg`` (a bundled name or a path)."""
    return load_session(arg, load_scenario(arg))


def screen_text(app: LabApp) -> str:
    """The screen as plain text (what a snapshot compares), as Textual's own SVG export
    renders it, without the colours."""
    width, height = app.size
    console = Console(
        width=width, height=height, file=io.StringIO(), record=True, color_system=None
    )
    console.print(
        app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    )
    return console.export_text()


async def settled(app: LabApp, pilot: Pilot) -> None:
    """Every worker done (a cancelled one too), and what their results scheduled drawn."""
    for worker in list(app.workers):
        with contextlib.suppress(WorkerCancelled, WorkerFailed):
            await worker.wait()
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


def drive(
    name: str,
    script: Callable[[LabApp, Pilot], Awaitable[None]],
    size: tuple[int, int] = (120, 40),
    **model: Any,
) -> LabApp:
    app = LabApp(LabModel(load(name), **model), debounce=0)

    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await settled(app, pilot)
            await script(app, pilot)

    asyncio.run(main())
    return app


async def focus(app: LabApp, pilot: Pilot, option: str) -> None:
    """Tab to the knob of ``option`` (the first knob has focus at start)."""
    for _ in range(len(BY_OPTION) + 1):
        focused = app.focused
        if isinstance(focused, KnobView) and focused.knob.option == option:
            return
        await pilot.press("tab")
    raise AssertionError(f"no knob {option}")


def metric(app: LabApp, name: str) -> str:
    return {row.name: row for row in app.model.metric_rows()}[name].value


def test_changing_max_wait_reruns_and_updates_the_metric_and_the_figure(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    async def script(app: LabApp, pilot: Pilot) -> None:
        timeline = app.query_one("#timeline", ChartView)
        seen["before"] = (metric(app, "wait_per_call"), timeline.chart)
        assert timeline.chart is not None and any(timeline.chart.marks)  # the outage is shaded
        await focus(app, pilot, "max_wait")
        await pilot.press("left", "left", "left", "left")  # 5 s -> 1 s
        await settled(app, pilot)
        seen["after"] = (metric(app, "wait_per_call"), timeline.chart)
        seen["status"] = str(app.query_one("#status").render())
        await pilot.press("p")
        seen["pinned"] = app.model.metric_rows()[0].change
        await pilot.press("s", "e")
        await pilot.pause()

    env, target = tmp_path / ".env", tmp_path / "race.toml"
    app = drive("startup-race", script, env_path=env, save_path=target)
    assert app.model.value(BY_OPTION["max_wait"]) == 1.0
    (wait_before, chart_before), (wait_after, chart_after) = seen["before"], seen["after"]
    assert wait_before == "9.503s" and wait_after != wait_before
    assert chart_before is not None and chart_after is not None
    assert chart_after.rows != chart_before.rows
    assert "unsaved" in seen["status"] and "ready" in seen["status"]
    assert seen["pinned"] == "±0"
    assert "max_wait = 1.0" in target.read_text(encoding="utf-8")
    assert env.read_text(encoding="utf-8").splitlines()[-1] == "RETRY__STORAGE_MAX_WAIT=1"
    assert not app.model.dirty


def test_a_refused_value_is_said_on_the_status_line_and_nothing_runs() -> None:
    seen: dict[str, Any] = {}

    async def script(app: LabApp, pilot: Pilot) -> None:
        await focus(app, pilot, "min_wait")
        started = app.runs_started
        for _ in range(5):
            await pilot.press("shift+right")  # 0.5 s -> 5.5 s: past max_wait's 5 s
        await settled(app, pilot)
        seen["status"] = str(app.query_one("#status").render())
        seen["runs"] = app.runs_started - started

    app = drive("startup-race", script)
    assert "min_wait" in seen["status"] and "max_wait" in seen["status"]
    assert app.model.value(BY_OPTION["min_wait"]) == 4.5  # the last step allowed
    assert seen["runs"] == 4


def test_a_stale_run_never_reaches_the_screen() -> None:
    finished: list[int] = []

    async def script(app: LabApp, pilot: Pilot) -> None:
        knob = BY_OPTION["max_attempts"]
        original = app.model.finished

        def finishing(outcome: Outcome) -> None:
            finished.append(outcome.document["settings"]["max_attempts"])
            original(outcome)

        app.model.finished = finishing  # type: ignore[method-assign]
        app.on_knob_view_stepped(KnobView.Stepped(knob, -1))  # 5 -> 4: made stale at once
        app.on_knob_view_stepped(KnobView.Stepped(knob, -1))  # 4 -> 3
        await settled(app, pilot)

    drive("startup-race", script)
    assert finished == [3]


def test_a_change_during_a_run_neither_waits_for_it_nor_deadlocks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run holds the engine's process-wide lock (tenacity's jitter is routed through it);
    the preview needs it too. A change made during a run must still reach the screen: the run
    notices it is stale at its next progress call and lets go. (Had the screen sampled the
    preview itself while the run waited on the screen, this test would hang, not fail.)"""
    import retrysim.lab.app
    from retrysim.lab.model import simulate as real
    from retrysim.sim.clock import routed_jitter

    started = threading.Event()
    calls: list[str] = []

    def slow_second_run(scenario: Any, seed: Any, settings: Any, progress: Any, **kw: Any) -> Any:
        calls.append("run")
        if len(calls) != 2:
            return real(scenario, seed, settings, progress, **kw)
        with routed_jitter():  # the lock, held as a long run holds it
            started.set()
            for done in range(10**8):  # until the change makes this run stale
                progress(done % 100, 100)  # reporting progress as a run does
        raise AssertionError("the stale run was never told to stop")

    monkeypatch.setattr(retrysim.lab.app, "simulate", slow_second_run)
    seen: dict[str, Any] = {}

    async def script(app: LabApp, pilot: Pilot) -> None:
        await settled(app, pilot)  # the first run is on the screen: a preview can be drawn
        # as key presses would, without the pilot's wait for an idle CPU (the run spins)
        app.on_knob_view_stepped(KnobView.Stepped(BY_OPTION["max_attempts"], 1))
        assert await asyncio.to_thread(started.wait, 30)
        seen["running"] = app.state
        app.on_knob_view_stepped(KnobView.Stepped(BY_OPTION["jitter"], 1))
        await asyncio.wait_for(settled(app, pilot), 60)
        seen["pending"] = app.query_one("#spread", ChartView).pending

    app = LabApp(LabModel(load("startup-race")), debounce=0)

    async def main() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await script(app, pilot)

    asyncio.run(main())
    assert seen["running"].startswith("running")
    assert calls == ["run", "run", "run"]
    assert app.model.current is not None
    assert app.model.current.document["settings"]["jitter"] == 1.1
    assert app.model.current.document["settings"]["max_attempts"] == 6
    assert seen["pending"] is False  # the run's spread replaced the preview


def test_the_spread_previews_a_change_before_its_run() -> None:
    seen: dict[str, Any] = {}

    async def script(app: LabApp, pilot: Pilot) -> None:
        app.debounce = 3600.0  # the run waits; the preview must not
        started = app.runs_started
        await focus(app, pilot, "jitter")
        await pilot.press("shift+right")  # 1 s -> 2 s
        spread = app.query_one("#spread", ChartView)
        seen["pending"] = spread.pending
        seen["title"] = screen_text(app)
        seen["runs"] = app.runs_started - started

    drive("startup-race", script)
    assert seen["pending"] and seen["runs"] == 0
    assert "preview: retry 1 waits" in seen["title"]


def test_a_run_that_breaks_says_so_on_the_status_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import retrysim.lab.app

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("engine on fire")

    monkeypatch.setattr(retrysim.lab.app, "simulate", broken)
    seen: dict[str, str] = {}

    async def script(app: LabApp, pilot: Pilot) -> None:
        seen["status"] = str(app.query_one("#status").render())

    drive("startup-race", script)
    assert "not run" in seen["status"]
    assert "a bug in retrysim (RuntimeError: engine on fire)" in seen["status"]


def test_faults_toggle_reruns_without_them() -> None:
    seen: dict[str, Any] = {}

    async def script(app: LabApp, pilot: Pilot) -> None:
        seen["with"] = metric(app, "success_rate")
        await pilot.press("f")
        await settled(app, pilot)
        seen["without"] = metric(app, "success_rate")
        seen["screen"] = screen_text(app)

    app = drive("startup-race", script)
    assert (seen["with"], seen["without"]) == ("67.50%", "100.00%")
    assert not app.model.faults_on
    assert "Faults (off: f)" in seen["screen"] and "faults off" in seen["screen"]


def test_quit_asks_when_unsaved_and_escape_stays() -> None:
    seen: dict[str, Any] = {}

    async def script(app: LabApp, pilot: Pilot) -> None:
        await focus(app, pilot, "jitter")
        await pilot.press("right")
        await settled(app, pilot)
        await pilot.press("q")
        seen["asked"] = isinstance(app.screen, QuitScreen)
        await pilot.press("escape")
        seen["stayed"] = not isinstance(app.screen, QuitScreen) and app.is_running
        await pilot.press("q", "q")
        await pilot.pause()

    app = drive("startup-race", script)
    assert seen == {"asked": True, "stayed": True}
    assert app.return_code == 0 and not app.is_running and app.model.dirty


def test_quit_can_save_first(tmp_path: Path) -> None:
    async def script(app: LabApp, pilot: Pilot) -> None:
        await focus(app, pilot, "max_attempts")
        await pilot.press("right")
        await settled(app, pilot)
        await pilot.press("q", "s")
        await pilot.pause()

    target = tmp_path / "race.toml"
    app = drive("startup-race", script, save_path=target)
    assert not app.is_running and not app.model.dirty
    assert "max_attempts = 6" in target.read_text(encoding="utf-8")


def test_enter_types_a_value() -> None:
    async def script(app: LabApp, pilot: Pilot) -> None:
        await focus(app, pilot, "max_attempts")
        await pilot.press("enter", "8", "enter")  # the old value is selected: typing replaces it
        await settled(app, pilot)

    app = drive("startup-race", script)
    assert app.model.value(BY_OPTION["max_attempts"]) == 8
    assert app.model.current is not None
    assert app.model.current.document["settings"]["max_attempts"] == 8


def test_clicking_the_arrows_steps_a_knob() -> None:
    async def script(app: LabApp, pilot: Pilot) -> None:
        knob = app.query_one("#knob-max-attempts", KnobView)
        await pilot.click(knob, offset=(18, 0))  # ◀
        await settled(app, pilot)
        await pilot.click(knob, offset=(18, 0))
        await settled(app, pilot)
        await pilot.click(knob, offset=(22, 0))  # ▶ after "3"
        await settled(app, pilot)

    app = drive("startup-race", script)
    assert app.model.value(BY_OPTION["max_attempts"]) == 4  # 5 - 1 - 1 + 1


@pytest.mark.slow
def test_tune_shows_its_recommendation_and_applies_it() -> None:
    seen: dict[str, Any] = {}

    async def script(app: LabApp, pilot: Pilot) -> None:
        await pilot.press("t")
        await app.workers.wait_for_complete()
        await pilot.pause()
        seen["screen"] = isinstance(app.screen, TuneScreen)
        seen["text"] = screen_text(app)
        await pilot.press("a")
        await settled(app, pilot)

    app = drive("startup-race", script)
    assert seen["screen"], seen["text"]
    assert "recommended: max_attempts=" in seen["text"]
    assert "RETRY__STORAGE_MAX_ATTEMPTS=" in seen["text"]
    assert app.model.source(BY_OPTION["max_attempts"]) == "scenario"


@pytest.mark.slow
def test_thundering_herd_walk_through() -> None:
    """The issue's walk-through on the bundled herd, as the engine answers it today. With 3
    attempts no wait reaches RETRY__SCHEDULER_MAX_WAIT (they are 1-2 s and 2-3 s), so 8 -> 30
    changes no metric; 6 attempts outlast the 20 s outage; more jitter is what spreads the
    spike of first retries (in the metric and in the wait histogram's busiest bin)."""
    seen: dict[str, Any] = {}

    async def script(app: LabApp, pilot: Pilot) -> None:
        spread = app.query_one("#spread", ChartView)
        seen["start"] = (metric(app, "success_rate"), metric(app, "first_retry_peak_share"))
        await focus(app, pilot, "max_wait")
        before = app.runs_started
        await pilot.press("enter", "3", "0", "enter")
        await settled(app, pilot)
        seen["reran"] = app.runs_started - before
        seen["max_wait"] = (metric(app, "success_rate"), metric(app, "first_retry_peak_share"))
        await focus(app, pilot, "max_attempts")
        await pilot.press("enter", "6", "enter")
        await settled(app, pilot)
        seen["attempts"] = (metric(app, "success_rate"), metric(app, "first_retry_peak_share"))
        assert spread.chart is not None
        seen["bin"] = spread.chart.peak
        await focus(app, pilot, "jitter")
        await pilot.press("shift+right")  # 1 s -> 2 s
        await settled(app, pilot)
        seen["jitter"] = (metric(app, "success_rate"), metric(app, "first_retry_peak_share"))
        assert spread.chart is not None
        seen["bin_after"] = spread.chart.peak
        seen["env"] = app.model.env_lines()

    drive("thundering-herd", script)
    assert seen["reran"] == 1  # the change ran the scenario again (once)
    assert seen["start"] == ("33.30%", "3.61%")
    assert seen["max_wait"] == seen["start"]
    assert seen["attempts"] == ("100.00%", "10.82%")
    assert seen["jitter"] == ("100.00%", "5.57%")
    assert seen["bin_after"] < 0.6 * seen["bin"]
    assert seen["env"] == {
        "RETRY__SCHEDULER_MAX_ATTEMPTS": "6",
        "RETRY__SCHEDULER_MAX_WAIT": "30",
        "RETRY__JITTER": "2",  # a global setting
    }


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_screen_snapshot(size: tuple[int, int]) -> None:
    seen: dict[str, str] = {}

    async def script(app: LabApp, pilot: Pilot) -> None:
        seen["text"] = screen_text(app)

    drive("startup-race", script, size=size)
    path = SNAPSHOTS / f"lab_startup-race_{size[0]}x{size[1]}.txt"
    if os.environ.get("RETRYSIM_UPDATE_SNAPSHOTS"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(seen["text"], encoding="utf-8")
    assert seen["text"] == path.read_text(encoding="utf-8")
