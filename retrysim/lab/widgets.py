"""The lab's widgets: a knob per setting, the two charts, the metrics and the diagnoses.

Each reads the :class:`~retrysim.lab.model.LabModel` it is given and draws itself from it; the
app (:mod:`retrysim.lab.app`) tells them to refresh when a run finishes. Textual is imported
here and in the app only (``retrysim[lab]``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.widget import Widget

from retrysim.lab import charts
from retrysim.lab.model import COMPACT_METRICS, METRICS, Knob, LabModel, Outcome
from retrysim.safe import visible

#: Colours: the fault windows, a better and a worse change, a diagnosis by severity.
FAULT = "red"
BETTER, WORSE = "green", "red"
SEVERITY = {"high": "bold red", "warning": "yellow"}
LABEL_WIDTH = 17
#: Below this many rows the screen is short: fewer metrics, so the diagnoses stay in view.
COMPACT_HEIGHT = 30


def show_value(knob: Knob, value: Any) -> str:
    """A knob's value as the screen shows it: ``on``/``off``, ``8 s``, ``0.35 s``, ``3``."""
    if knob.kind == "bool":
        return "on" if value else "off"
    if knob.kind == "float":
        return f"{float(value):g}{' ' + knob.unit if knob.unit else ''}"
    return str(value)


class KnobView(Widget, can_focus=True):
    """One setting: ``label  ◀ value ▶``. Left/right step it (shift: ten steps), Enter types
    a value, a click on ◀ or ▶ steps it, the mouse wheel too; up/down move between knobs."""

    DEFAULT_CSS = """
    KnobView { height: 1; width: 1fr; }
    KnobView:focus { background: $accent 40%; }
    """
    BINDINGS = [  # noqa: RUF012 (Textual's own class attribute)
        Binding("left", "step(-1)", "step", show=False),
        Binding("right", "step(1)", "step", show=False),
        Binding("shift+left", "step(-10)", show=False),
        Binding("shift+right", "step(10)", show=False),
        Binding("enter", "edit", "type a value", show=False),
        Binding("up", "app.focus_previous", show=False),
        Binding("down", "app.focus_next", show=False),
    ]

    class Stepped(Message):
        """The user asked to step ``knob`` by ``steps``."""

        def __init__(self, knob: Knob, steps: int) -> None:
            super().__init__()
            self.knob = knob
            self.steps = steps

    class EditAsked(Message):
        """The user asked to type a value for ``knob``."""

        def __init__(self, knob: Knob) -> None:
            super().__init__()
            self.knob = knob

    def __init__(self, model: LabModel, knob: Knob) -> None:
        super().__init__(id="knob-" + knob.option.replace(".", "-").replace("_", "-"))
        self.model = model
        self.knob = knob

    def render(self) -> RenderableType:
        value = show_value(self.knob, self.model.value(self.knob))
        mark = "*" if self.model.source(self.knob) == "scenario" else " "
        text = Text(self.knob.name.ljust(LABEL_WIDTH)[:LABEL_WIDTH] + mark)
        text.append("◀ ", style="dim")
        text.append(value, style="bold")
        text.append(" ▶", style="dim")
        return text

    def action_step(self, steps: int) -> None:
        self.post_message(self.Stepped(self.knob, steps))

    def action_edit(self) -> None:
        self.post_message(self.EditAsked(self.knob))

    def on_click(self, event: events.Click) -> None:
        self.focus()
        start = LABEL_WIDTH + 1
        end = start + 4 + len(show_value(self.knob, self.model.value(self.knob)))
        if start <= event.x < start + 2:
            self.action_step(-1)
        elif end - 2 <= event.x < end:
            self.action_step(1)

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        event.stop()
        self.action_step(1)

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        event.stop()
        self.action_step(-1)


class ChartView(Widget):
    """A chart of the current run, drawn to the widget's size by a function of
    :mod:`retrysim.lab.charts`: a title row, the bars, the fault row (timeline), the axis."""

    DEFAULT_CSS = "ChartView { height: 7; }"

    def __init__(self, draw: Callable[[Outcome, int, int], charts.Chart], *, id: str) -> None:
        super().__init__(id=id)
        self.draw = draw
        self.outcome: Outcome | None = None
        self.chart: charts.Chart | None = None
        self.pending = False

    def show(self, outcome: Outcome | None, *, pending: bool = False) -> None:
        """Draw ``outcome``; ``pending``: a preview drawn from the policy while its run goes."""
        self.outcome = outcome
        self.pending = pending
        self.refresh()

    def render(self) -> RenderableType:
        width, height = self.size.width, self.size.height
        if self.outcome is None or width < 4 or height < 3:
            self.chart = None
            return Text("waiting for the first run…", style="dim")
        marked = self.id == "timeline"
        bars = max(1, height - 2 - (1 if marked else 0))
        chart = self.draw(self.outcome, width, bars)
        self.chart = chart
        title = ("preview: " if self.pending else "") + chart.title
        lines = [Text(title[:width], style="bold yellow" if self.pending else "bold")]
        for row in chart.rows:
            line = Text()
            for column, cell in enumerate(row):
                inside = column < len(chart.marks) and chart.marks[column]
                line.append(cell, style=f"{FAULT} on grey15" if inside else "cyan")
            lines.append(line)
        if marked:
            fault_row = "".join(charts.FAULT_MARK if m else " " for m in chart.marks)
            if not self.outcome.faults_on:
                fault_row = "faults off".ljust(width)
            lines.append(Text(fault_row[:width], style=FAULT))
        lines.append(Text(chart.axis[:width], style="dim"))
        return Group(*lines)


def draw_timeline(outcome: Outcome, width: int, height: int) -> charts.Chart:
    return charts.timeline(outcome.document, width, height)


def draw_spread(outcome: Outcome, width: int, height: int) -> charts.Chart:
    return charts.histogram(outcome.first_waits, width, height)


class MetricsView(Widget):
    """The key metrics now, pinned and the change (green better, red worse); on a narrow
    screen without the pinned column."""

    DEFAULT_CSS = "MetricsView { height: auto; }"

    def __init__(self, model: LabModel) -> None:
        super().__init__(id="metrics")
        self.model = model

    def render(self) -> RenderableType:
        compact = self.app.size.height < COMPACT_HEIGHT
        rows = self.model.metric_rows(COMPACT_METRICS if compact else METRICS)
        if not rows:
            return Text("")
        width = self.size.width
        wide = width >= 64
        numbers = 3 if wide else 2
        label_width = max(8, min(34, width - numbers * 11))
        table = Table(box=None, padding=(0, 1, 0, 0), show_edge=False, expand=False)
        table.add_column("metric", no_wrap=True, overflow="ellipsis", width=label_width)
        table.add_column("now", justify="right", no_wrap=True, min_width=9)
        if wide:
            table.add_column("pinned", justify="right", no_wrap=True, style="dim", min_width=9)
        table.add_column("vs pinned", justify="right", no_wrap=True, min_width=9)
        for row in rows:
            style = {"better": BETTER, "worse": WORSE}.get(row.verdict, "dim")
            cells = [row.label, row.value] + ([row.pinned] if wide else [])
            table.add_row(*cells, Text(row.change, style=style))
        return table


class DiagnosesView(Widget):
    """The current run's diagnoses, marked new against the pinned run; and those gone."""

    DEFAULT_CSS = "DiagnosesView { height: auto; }"

    def __init__(self, model: LabModel) -> None:
        super().__init__(id="diagnoses")
        self.model = model

    def render(self) -> RenderableType:
        if self.model.current is None:
            return Text("")
        rows = self.model.diagnosis_rows()
        text = Text("Diagnoses", style="bold")
        if not rows:
            text.append("\nnone: nothing matches a known retry problem", style="dim")
        wide = self.size.width >= 90
        for row in rows:
            text.append("\n")
            if row.status == "gone":
                text.append(f"✓ gone: {visible(row.title)}", style="green")
                continue
            text.append("● ", style=SEVERITY.get(row.severity, ""))
            text.append(visible(row.title))
            if row.status == "new":
                text.append(" (new)", style="bold magenta")
            if wide:
                text.append(f"\n  {visible(row.suggestion)}", style="dim")
        return text


def faults_text(model: LabModel) -> Text:
    """The scenario's faults, one a line (dimmed when the run leaves them out)."""
    faults = model.faults()
    style = "" if model.faults_on else "dim strike"
    text = Text("Faults" + ("" if model.faults_on else " (off: f)"), style="bold")
    if not faults:
        text.append("\nnone", style="dim")
    for fault in faults:
        end = fault.get("end")
        window = f"{fault.get('start', 0):g}-{'end' if end is None else format(end, 'g')} s"
        error = fault.get("error")
        line = f"{fault.get('kind')} {window}" + (f" {error}" if error else "")
        text.append("\n" + visible(line), style=style or FAULT)
    return text
