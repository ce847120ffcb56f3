"""``retrysim fit``'s report as Rich tables: what was fitted, from what, and how well.

One builder per table, each a pure function of the :class:`~retrysim.fit.result.FitResult`
(and the held-out check), so the terminal report and the shared page
(:mod:`retrysim.share.fit_page`, through :func:`retrysim.share.tables.page_table`) show the
same rows. Defaults are a table of their own: a value the data could not give is never mixed
in with the fitted ones, and its one-line reason is always beside it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from rich.table import Table

from retrysim.fit.result import FitResult, Fitted
from retrysim.safe import markup

if TYPE_CHECKING:
    from retrysim.fit.holdout import HeldOutCheck
    from retrysim.fit.latency import LatencyFit


def number(value: float | None) -> str:
    """A figure as the report shows it: three significant digits, thousands separated."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if value == 0 or 1e-3 <= abs(value) < 1e5:
        return f"{value:.3g}" if abs(value) < 1 else f"{value:,.4g}"
    return f"{value:.2e}"


def value_text(value: Any) -> str:
    """A scenario value in one short line (a table as ``key=value`` pairs; long lists cut)."""
    if isinstance(value, Mapping):
        return " ".join(f"{k}={value_text(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        if len(value) > 4:
            return f"[{', '.join(value_text(v) for v in value[:2])}, ... {len(value)} items]"
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    if isinstance(value, float):
        return number(value)
    return str(value)


def seconds(value: float) -> str:
    """A duration in the unit that reads best (ms below a second)."""
    if not math.isfinite(value):
        return "–"
    return f"{value * 1000:.3g} ms" if abs(value) < 1 else f"{value:.3g} s"


def fitted_table(result: FitResult) -> Table:
    """Every fitted value: the scenario key, what is written, the method, n and goodness,
    and the input it came from."""
    table = Table(title="fitted values", title_justify="left")
    for name in ("key", "value", "n", "goodness", "method", "source"):
        table.add_column(name, justify="right" if name == "n" else "left")
    for item in _fitted(result):
        goodness = ", ".join(f"{name} {number(value)}" for name, value in item.goodness)
        table.add_row(
            markup(item.key),
            markup(value_text(item.value)),
            f"{item.n:,}",
            goodness or "–",
            markup(item.method),
            markup(item.source) or "–",
        )
    return table


def defaults_table(result: FitResult) -> Table:
    """Every value the data could not give: what is written instead (or ``left out``) and
    why, in one line."""
    table = Table(title="defaults (not in the data)", title_justify="left")
    for name in ("key", "value", "why"):
        table.add_column(name)
    for item in result.values:
        if item.default is None:
            continue
        shown = "left out" if item.value is None else value_text(item.value)
        table.add_row(markup(item.key), markup(shown), markup(item.default))
    return table


def latency_table(tier: str, found: LatencyFit) -> Table:
    """Every candidate family's held-out distance; the chosen one marked, the rule as caption."""
    where = f" ({tier})" if tier else ""
    title = (
        f"latency{where}: {found.family} chosen on {found.n_test:,} held-out requests "
        f"(fitted on {found.n:,})"
    )
    table = Table(title=markup(title), title_justify="left", caption=markup(found.rule))
    table.caption_justify = "left"
    for name in ("family", "held-out KS D", "p", "log-likelihood", ""):
        table.add_column(name, justify="left" if name in ("family", "") else "right")
    for distance in found.distances:
        chosen = "[bold]chosen[/]" if distance.family == found.family else ""
        p = distance.p if distance.p is not None else distance.chi2_p
        table.add_row(
            distance.family, number(distance.d), number(p), number(distance.loglik), chosen
        )
    return table


def windows_table(result: FitResult) -> Table:
    """Every fault window the change points found: when it started and ended (and how
    sharply: the gap between the requests either side), its error and failed share."""
    table = Table(title="fault windows found (change points)", title_justify="left")
    tiers = len(result.errors) > 1 or any(result.errors)
    columns = (["tier"] if tiers else []) + ["start", "end", "kind", "error", "failed", "requests"]
    for name in columns:
        table.add_column(name, justify="left" if name in ("tier", "kind", "error") else "right")
    for tier, found in result.errors.items():
        for window in found.windows:
            cells = [markup(tier)] if tiers else []
            cells += [
                f"{window.start:.3f} s ±{window.start_gap:.2g}",
                f"{window.end:.3f} s ±{window.end_gap:.2g}",
                window.kind,
                markup(window.dominant),
                f"{window.share:.1%}",
                f"{window.requests:,}",
            ]
            table.add_row(*cells)
    return table


def held_out_table(check: HeldOutCheck) -> Table:
    """The held-out check, metric by metric: the held-out half's value, the simulated mean
    and the 95% prediction interval, ``outside`` where the real value falls out of it (the
    layout of ``chaos --vs-sim``'s real-against-simulated table)."""
    fitted, held = check.calls
    table = Table(
        title=(
            f"held-out check: fitted on {fitted:,} calls, simulated with {len(check.seeds)} "
            f"seeds, against the other {held:,} (95% prediction interval): "
            f"{check.inside} of {len(check.metrics)} inside"
        ),
        title_justify="left",
    )
    for column in ("metric", "held-out", "simulated mean", "95% interval", ""):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for metric in check.metrics:
        show = seconds if metric.unit == "s" else number
        finite = [v for v in metric.simulated if math.isfinite(v)]
        mean = sum(finite) / len(finite) if finite else math.nan
        span = "–" if math.isnan(metric.low) else f"{show(metric.low)} .. {show(metric.high)}"
        flag = "" if metric.inside else "[bold red]outside[/]"
        table.add_row(metric.name, show(metric.real), show(mean), span, flag)
    return table


def arrival_line(result: FitResult) -> str:
    """The arrival process in a line: the rate, the schedule's steps and the Poisson verdict."""
    found = result.arrivals
    if found is None:
        return "arrivals: not fitted (see the defaults)"
    steps = f", {len(found.schedule)} rate steps" if found.schedule else ""
    return (
        f"arrivals: {number(found.rate)} calls/s over {number(found.end - found.start)} s"
        f"{steps}; {found.verdict} (dispersion {number(found.dispersion)}, p {number(found.p)})"
    )


def report_lines(result: FitResult) -> Iterator[Any]:
    """The whole report in order: sources, fitted values, defaults, missing, arrivals,
    latency, windows, notes (each a string of Rich markup or a table)."""
    names = ", ".join(source.describe() for source in result.sources)
    yield f"[bold]retrysim fit[/] from {markup(names)}"
    yield fitted_table(result)
    if any(item.default is not None for item in result.values):
        yield defaults_table(result)
    for line in result.missing:
        yield f"[yellow]missing:[/] {markup(line)}"
    yield markup(arrival_line(result))
    for tier, found in result.latency.items():
        yield latency_table(tier, found)
    if any(found.windows for found in result.errors.values()):
        yield windows_table(result)
    elif result.errors:
        yield "fault windows: none found (the failed share stays level)"
    for note in result.notes:
        yield f"[dim]note: {markup(note)}[/]"


def _fitted(result: FitResult) -> Iterator[Fitted]:
    return (item for item in result.values if item.default is None)
