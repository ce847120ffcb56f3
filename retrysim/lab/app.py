"""The lab's screen: the scenario, its faults and the knobs on the left; the timeline, the
first-retry wait spread, the metrics against the pinned run and the diagnoses on the right.

Every change re-runs the simulation in a thread worker, so the screen never waits for it; a
newer change cancels the run in progress (its ``progress`` callback raises as soon as the
worker is cancelled, so a stale run stops within a few thousand events instead of finishing
unseen), and the status line shows how far the current run is.
"""

from __future__ import annotations

import asyncio
import signal
from functools import partial
from typing import Any, ClassVar

from rich.text import Text
from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Footer, Input, Label, Static
from textual.worker import get_current_worker

from retrysim.errors import BadInputError
from retrysim.lab import tuning
from retrysim.lab.model import KNOBS, Knob, LabError, LabModel, Outcome, simulate
from retrysim.lab.widgets import (
    COMPACT_HEIGHT,
    ChartView,
    DiagnosesView,
    KnobView,
    MetricsView,
    draw_spread,
    draw_timeline,
    faults_text,
    show_value,
)
from retrysim.safe import visible
from retrysim.stop_signals import held_by_loop

#: Seconds a change waits for the next one before its run starts: a held arrow key starts one
#: run when it is let go, not one per repeat (each would cost a thread until it noticed).
DEBOUNCE = 0.15
#: The same for the preview of the spread, shorter (it should feel instant) but longer than a
#: key's repeat interval (about 33 ms), so a held key samples once it pauses, not per repeat.
PREVIEW_DEBOUNCE = 0.05


class _StaleError(Exception):
    """Raised inside a run's progress callback: a newer change made this run stale."""


class Pane(VerticalScroll, can_focus=False):
    """A scrolling column that tab passes over: tab goes from knob to knob."""


class EditScreen(ModalScreen[str | None]):
    """Type a knob's value; Enter sets it, Escape keeps the old one."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "cancel")]
    DEFAULT_CSS = """
    EditScreen { align: center middle; }
    EditScreen > Vertical { width: 60; height: auto; border: round $accent; padding: 0 1; }
    """

    def __init__(self, prompt: str, value: str) -> None:
        super().__init__()
        self.prompt = prompt
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(visible(self.prompt)))
            yield Input(value=self.value, id="value")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class QuitScreen(ModalScreen[str]):
    """Asked when quitting with unsaved changes: save and quit, quit, or stay."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "choose('save')", "save and quit"),
        Binding("q,y", "choose('quit')", "quit without saving"),
        Binding("escape,n", "choose('stay')", "stay"),
    ]
    DEFAULT_CSS = """
    QuitScreen { align: center middle; }
    QuitScreen > Label { width: 60; border: round $warning; padding: 0 1; }
    """

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target

    def compose(self) -> ComposeResult:
        yield Label(
            Text(
                "The scenario has unsaved changes.\n"
                f"s: save to {visible(self.target)} and quit   q: quit without saving   "
                "esc: stay"
            )
        )

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)


class TuneScreen(ModalScreen[bool]):
    """``retrysim tune``'s recommendation: ``a`` applies it to the knobs, Escape closes."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "close(True)", "apply"),
        Binding("escape,q", "close(False)", "close"),
    ]
    DEFAULT_CSS = """
    TuneScreen { align: center middle; }
    TuneScreen > Label { width: 90%; border: round $accent; padding: 0 1; }
    """

    def __init__(self, lines: list[str], can_apply: bool) -> None:
        super().__init__()
        self.lines = lines
        self.can_apply = can_apply

    def compose(self) -> ComposeResult:
        keys = "a: apply to the knobs   esc: close" if self.can_apply else "esc: close"
        yield Label(Text("\n".join([*map(visible, self.lines), "", keys])))

    def action_close(self, apply: bool) -> None:
        self.dismiss(apply and self.can_apply)


class LabApp(App[None]):
    """``retrysim lab``: see the module docstring; the keys are in the footer."""

    TITLE = "retrysim lab"
    CSS = """
    #main { height: 1fr; }
    #left { width: 38; height: 1fr; border-right: solid $panel; padding: 0 1; }
    #right { width: 1fr; height: 1fr; padding: 0 1; }
    #left, #right { scrollbar-gutter: stable; }
    #scenario { height: auto; max-height: 3; }
    #faults { height: auto; margin-bottom: 1; }
    #help { height: auto; margin-top: 1; color: $text-muted; }
    #timeline { height: 7; }
    #spread { height: 5; margin-top: 1; }
    #metrics { margin-top: 1; }
    #diagnoses { margin-top: 1; }
    #status { height: 1; background: $panel; padding: 0 1; }
    Pane { scrollbar-size-vertical: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("p", "pin", "pin"),
        Binding("f", "faults", "faults"),
        Binding("s", "save", "save"),
        Binding("e", "env", ".env"),
        Binding("t", "tune", "tune"),
        Binding("q", "quit_lab", "quit"),
    ]

    ENABLE_COMMAND_PALETTE = False

    class Progressed(Message):
        """How far run ``generation`` is (posted from its worker thread)."""

        def __init__(self, generation: int, percent: int) -> None:
            super().__init__()
            self.generation = generation
            self.percent = percent

    def __init__(self, model: LabModel, debounce: float = DEBOUNCE) -> None:
        super().__init__()
        self.model = model
        self.stopped_by: signal.Signals | None = None  # the stop signal that ended the lab
        self.debounce = debounce
        self.generation = 0  # changes made; a run's result or preview counts only if it is
        # of the latest one (the run in progress notices it is stale at its next progress)
        self.runs_started = 0
        self.shown = -1  # the generation whose run is on the screen
        self.tuning_active = False
        self.state = "starting"
        self.problem: str | None = None
        self._pending: Timer | None = None
        self._pending_preview: Timer | None = None

    # --- layout ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            with Pane(id="left"):
                yield Static(self._scenario_text(), id="scenario")
                yield Static(faults_text(self.model), id="faults")
                for knob in KNOBS:
                    yield KnobView(self.model, knob)
                yield Static("", id="help")
            with Pane(id="right"):
                yield ChartView(draw_timeline, id="timeline")
                yield ChartView(draw_spread, id="spread")
                yield MetricsView(self.model)
                yield DiagnosesView(self.model)
        yield Static("", id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.query(KnobView).first().focus()
        self._size_charts(self.size.height)
        self.start_run()

    def stop(self, number: signal.Signals) -> None:
        """End the lab for a stop signal (see :func:`run_lab`): the exit code will say which."""
        self.stopped_by = number
        self.exit()

    def on_resize(self, event: events.Resize) -> None:
        self._size_charts(event.size.height)

    def _size_charts(self, height: int) -> None:
        self.query_one("#timeline").styles.height = max(6, height // 4)
        self.query_one("#spread").styles.height = max(5, height // 6)
        compact = height < COMPACT_HEIGHT
        self.query_one("#scenario").styles.max_height = 1 if compact else 3
        self.query_one(MetricsView).refresh(layout=True)

    def _scenario_text(self) -> Text:
        text = Text(visible(self.model.name), style="bold")
        description = " ".join(str(self.model.loaded.data.get("description") or "").split())
        if description:
            text.append("\n" + visible(description), style="dim")
        return text

    # --- runs --------------------------------------------------------------------------------

    def start_run(self) -> None:
        """Run the scenario as the knobs have it, in a worker; a run in progress is cancelled."""
        self._pending = None
        try:
            scenario = self.model.scenario()
        except (BadInputError, ValueError) as error:
            self._failed(self.generation, str(error))
            return
        self.runs_started += 1  # one run per generation: each change makes the next one
        self.problem = None
        self._progress(self.generation, 0)
        work = partial(self._simulate, scenario, self.generation, self.model.faults_on)
        self.run_worker(work, group="sim", exclusive=True, thread=True, exit_on_error=False)

    def _simulate(self, scenario: Any, generation: int, faults_on: bool) -> None:
        worker = get_current_worker()
        shown = [-1]

        def progress(done: int, total: int) -> None:
            if worker.is_cancelled or generation != self.generation:
                raise _StaleError
            tenth = 10 * done // max(total, 1)
            if tenth != shown[0] and done < total:
                shown[0] = tenth
                # A message, not call_from_thread: this runs inside the simulation, which holds
                # the engine's process-wide lock, and must never wait on the screen's thread.
                self.post_message(self.Progressed(generation, tenth * 10))

        try:
            outcome = simulate(
                scenario, self.model.seed, self.model.settings, progress, faults_on=faults_on
            )
        except _StaleError:
            return
        except (BadInputError, ValueError) as error:
            self.call_from_thread(self._failed, generation, str(error))
            return
        except Exception as error:  # a bug: said on the status line, never a silent "running"
            self.call_from_thread(self._failed, generation, _bug(error))
            return
        self.call_from_thread(self._finished, generation, outcome)

    class Said(Message):
        """A state for the status line, posted from a worker thread."""

        def __init__(self, state: str) -> None:
            super().__init__()
            self.state = state

    def on_lab_app_said(self, message: LabApp.Said) -> None:
        if self.tuning_active:  # a late progress line must not cover the tuning's end
            self._tuning(message.state)

    def on_lab_app_progressed(self, message: LabApp.Progressed) -> None:
        self._progress(message.generation, message.percent)

    def _progress(self, generation: int, percent: int) -> None:
        if generation == self.generation:
            bar = "█" * (percent // 10) + "░" * (10 - percent // 10)
            self.state = f"running {bar} {percent}%"
            self._status()

    def _finished(self, generation: int, outcome: Outcome) -> None:
        if generation != self.generation:
            return
        self.shown = generation
        self.model.finished(outcome)
        self.state = "ready"
        for chart in self.query(ChartView):
            chart.show(outcome)
        self.query_one(MetricsView).refresh(layout=True)
        self.query_one(DiagnosesView).refresh(layout=True)
        self._status()

    def _failed(self, generation: int, message: str) -> None:
        if generation == self.generation:
            self.state = "not run"
            self.problem = message.splitlines()[0] if message else "failed"
            self._status()

    def _status(self) -> None:
        parts = [visible(self.model.name)]
        if self.model.seed is not None:
            parts.append(f"seed {self.model.seed}")
        parts.append("faults on" if self.model.faults_on else "faults off")
        parts.append(visible(self.state))
        if self.model.dirty:
            parts.append("unsaved")
        text = Text(" · ".join(parts))
        if self.problem:
            text.append(" · " + visible(self.problem), style="bold red")
        self.query_one("#status", Static).update(text)

    # --- the knobs ---------------------------------------------------------------------------

    def on_knob_view_stepped(self, message: KnobView.Stepped) -> None:
        try:
            self.model.step(message.knob, message.steps)
        except LabError as error:
            self.problem = str(error)
            self._status()
            return
        self._changed(message.knob)

    def on_knob_view_edit_asked(self, message: KnobView.EditAsked) -> None:
        knob = message.knob
        variable = self.model.variable(knob)
        prompt = knob.option + (f" ({variable})" if variable else "")
        if knob.choices:
            prompt += ": " + ", ".join(knob.choices)
        current = self.model.value(knob)
        shown = show_value(knob, current) if knob.kind == "bool" else str(current)
        self.push_screen(EditScreen(prompt, shown), partial(self._typed, knob))

    def _typed(self, knob: Knob, value: str | None) -> None:
        if value is None:
            return
        try:
            self.model.set(knob, value)
        except LabError as error:
            self.problem = str(error)
            self._status()
            return
        self._changed(knob)

    def _changed(self, knob: Knob | None) -> None:
        for view in self.query(KnobView):
            view.refresh()
        if knob is not None:
            self._help(knob)
        self._status()
        self.generation += 1  # a run in progress is stale from now on
        for timer in (self._pending, self._pending_preview):
            if timer is not None:
                timer.stop()
        self._pending = self._pending_preview = None
        if self.debounce <= 0:
            self._preview()
            self.start_run()
        else:
            self._pending_preview = self.set_timer(
                min(self.debounce, PREVIEW_DEBOUNCE), self._preview
            )
            self._pending = self.set_timer(self.debounce, self.start_run)

    def _preview(self) -> None:
        """The wait spread drawn from the policy (in milliseconds) until the run's is in.

        In a worker too: sampling the policy's waits takes the engine's process-wide lock,
        which a run in progress holds until it notices it is stale.
        """
        self._pending_preview = None
        if self.model.current is None:
            return
        work = partial(self._sample, self.generation, self.model.loaded.data)
        self.run_worker(work, group="preview", exclusive=True, thread=True, exit_on_error=False)

    def _sample(self, generation: int, data: dict[str, Any]) -> None:
        waits = self.model.preview_waits(data=data)
        if waits is not None and generation == self.generation:
            self.call_from_thread(self._show_preview, generation, waits)

    def _show_preview(self, generation: int, waits: list[float]) -> None:
        current = self.model.current
        if current is None or generation != self.generation or self.shown == generation:
            return  # a newer change, or this change's run already drawn
        preview = Outcome(current.document, waits, self.model.faults_on)
        self.query_one("#spread", ChartView).show(preview, pending=True)

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        if isinstance(event.widget, KnobView):
            self._help(event.widget.knob)

    def _help(self, knob: Knob) -> None:
        variable = self.model.variable(knob)
        setting = show_value(knob, self.model.setting(knob))
        if variable is None:
            text = f"{knob.option}: a scenario key (policy.{knob.option}); no RETRY__ variable"
        elif self.model.source(knob) == "scenario":
            here = show_value(knob, self.model.value(knob))
            text = f"{variable}: {setting} in the settings, {here} here (*)"
        else:
            text = f"{variable}: {setting} (the settings')"
        note = self.model.knob_note(knob)
        if note is not None:
            text += "\n" + note
        self.query_one("#help", Static).update(
            Text(visible(text) + "\n←/→ step, shift: ×10, enter: type", style="dim")
        )

    # --- keys --------------------------------------------------------------------------------

    def action_pin(self) -> None:
        if self.model.pin():
            self.query_one(MetricsView).refresh(layout=True)
            self.query_one(DiagnosesView).refresh(layout=True)
            self.notify("pinned this run as the baseline", markup=False)

    def action_faults(self) -> None:
        self.model.toggle_faults()
        self.query_one("#faults", Static).update(faults_text(self.model))
        self._changed(None)

    def action_save(self) -> bool:
        try:
            path = self.model.save()
        except (OSError, TypeError) as error:
            self.notify(visible(f"not saved: {error}"), severity="error", markup=False)
            return False
        self._status()
        self.notify(f"wrote {visible(str(path))}", markup=False)
        return True

    def action_env(self) -> None:
        lines = self.model.env_lines()
        if not lines:
            self.notify("nothing to write: every setting is the settings' own", markup=False)
            return
        try:
            changes = self.model.write_env()
        except (OSError, BadInputError) as error:
            self.notify(visible(f"not written: {error}"), severity="error", markup=False)
            return
        shown = "\n".join(f"{name}={value}" for name, value in lines.items())
        self.notify(
            f"wrote {visible(str(self.model.env_path))}:\n{visible(shown)}\n"
            + visible("; ".join(changes)),
            timeout=8,
            markup=False,
        )

    def action_tune(self) -> None:
        """Tune the scenario in a worker; ``t`` again while it runs stops it (after the run
        in progress: a tuning is stopped between runs)."""
        running = [w for w in self.workers if w.group == "tune" and w.is_running]
        if running:
            for worker in running:
                worker.cancel()
            self.tuning_active = False
            self.state = "tune stopped"
            self._status()
            return
        try:
            scenario = self.model.scenario(faults=True)  # tuning without the faults says nothing
        except (BadInputError, ValueError) as error:
            self._failed(self.generation, str(error))
            return
        self.tuning_active = True
        self.state = "tuning…"
        self._status()
        self.run_worker(
            partial(self._tune, scenario), group="tune", exclusive=True, thread=True,
            exit_on_error=False,
        )  # fmt: skip

    def _tune(self, scenario: Any) -> None:
        worker = get_current_worker()

        def on_done(done: int, total: int) -> None:
            if worker.is_cancelled:
                raise _StaleError
            self.post_message(self.Said(f"tuning: {done}/{total} runs"))

        try:
            doc = tuning.run_tune(self.model, scenario, on_done)
        except _StaleError:
            return
        except (BadInputError, ValueError) as error:
            self.call_from_thread(self._tuning, f"tune failed: {error}", False)
            return
        except Exception as error:
            self.call_from_thread(self._tuning, f"tune failed: {_bug(error)}", False)
            return
        self.call_from_thread(self._tuned, doc)

    def _tuning(self, state: str, active: bool = True) -> None:
        self.tuning_active = active
        self.state = state
        self._status()

    def _tuned(self, doc: dict[str, Any]) -> None:
        self.tuning_active = False
        self.state = "ready"
        self._status()
        best = tuning.recommendation(doc)
        self.push_screen(TuneScreen(tuning.summary(doc), bool(best)), partial(self._apply, doc))

    def _apply(self, doc: dict[str, Any], apply: bool | None) -> None:
        if not apply:
            return
        try:
            tuning.apply(self.model, doc)
        except LabError as error:
            self.problem = str(error)
            self._status()
            return
        self._changed(None)

    def action_quit_lab(self) -> None:
        if not self.model.dirty:
            self.exit()
            return
        self.push_screen(QuitScreen(str(self.model.save_path)), self._quit_choice)

    def _quit_choice(self, choice: str | None) -> None:
        if choice == "save":
            if self.action_save():  # a save that failed stays, with the error shown
                self.exit()
        elif choice == "quit":
            self.exit()


def _bug(error: Exception) -> str:
    return f"a bug in retrysim ({type(error).__name__}: {error}); please report it"


def run_lab(model: LabModel) -> signal.Signals | None:
    """Run the screen until the user quits; the stop signal that ended it, if one did.

    The lab's event loop takes SIGTERM and SIGHUP while the screen runs, so the app exits
    between two frames: raised from the CLI's plain handler, the stop would land in the middle
    of the compositor's refresh and print Textual's traceback.
    """
    app = LabApp(model)

    async def run() -> None:
        with held_by_loop(app.stop):
            await app.run_async()

    asyncio.run(run())
    return app.stopped_by
