"""One progress bar for every long command: work done against work expected, rate and ETA.

``run`` counts calls ended (the fault-free baseline's too, on the same bar); ``compare`` and
``sweep`` count finished runs. The bar goes to stderr, appears only once the work has taken
``delay`` seconds (a quick run stays quiet), and never appears when stderr is not a terminal
or when ``--quiet`` is given (before the command, or on it). Use it as::

    with WorkProgress("simulating", "calls", quiet=quiet) as bar:
        step = retrysim.runs.runner.run(scenario, progress=bar.update)

Rich is imported only when the bar first shows, so importing this module costs nothing.
"""

from __future__ import annotations

import time
from typing import Any

#: ``retrysim --quiet COMMAND`` sets this; a command's own ``--quiet`` works the same.
quiet_mode = {"on": False}

#: Seconds of work before the bar appears.
DELAY = 1.0


class WorkProgress:
    """A transient bar on stderr fed with ``update(done, total)``; a context manager.

    ``console`` is for tests (a Rich console to draw on); by default it is stderr, and the bar
    stays off unless stderr is a terminal.
    """

    def __init__(
        self,
        label: str,
        unit: str,
        *,
        quiet: bool = False,
        delay: float = DELAY,
        console: Any = None,
    ) -> None:
        self.label = label
        self.unit = unit
        self.quiet = quiet or quiet_mode["on"]
        self.delay = delay
        self.console = console
        self.started = time.perf_counter()
        self.bar: Any = None
        self.task: Any = None
        self.off = self.quiet

    def __enter__(self) -> WorkProgress:
        self.started = time.perf_counter()
        return self

    def update(self, done: int, total: int) -> None:
        """``done`` units of ``total`` are finished (``total`` may be revised as work goes)."""
        if self.off:
            return
        if self.bar is None and (
            time.perf_counter() - self.started < self.delay or not self._start()
        ):
            return
        self.bar.update(self.task, completed=done, total=max(total, done, 1))

    def _start(self) -> bool:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        console = self.console if self.console is not None else Console(stderr=True)
        if not console.is_terminal:
            self.off = True  # piped or redirected: a bar would only be noise in a log
            return False
        self.bar = Progress(
            TextColumn(self.label),
            BarColumn(),
            TextColumn("{task.completed:,.0f}/{task.total:,.0f} " + self.unit),
            _rate_column(self.unit),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("elapsed"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.bar.start()
        self.task = self.bar.add_task(self.label, total=1)
        return True

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def _rate_text(speed: float | None, unit: str) -> str:
    """``12,345 calls/s``, or ``- calls/s`` before there is a rate to show."""
    if not speed:
        return f"- {unit}/s"
    return f"{speed:,.0f} {unit}/s" if speed >= 10 else f"{speed:.2g} {unit}/s"


def _rate_column(unit: str) -> Any:
    """A Rich column: units finished per second of wall time, as Rich estimates it."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            return Text(_rate_text(task.speed, unit), style="progress.data.speed")

    return RateColumn()
