"""``retrysim fit --html``: the fit as a page, to keep beside the scenario it wrote.

The verdict first (values fitted, defaults, the held-out check's count), then the terminal
report's tables (read back by :func:`retrysim.share.tables.page_table`, so both show the same
rows), each fitted quantity's figure with a text alternative saying its key numbers, the
held-out check, the scenario file itself, and the command that wrote it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from retrysim.fit.holdout import HeldOutCheck
from retrysim.fit.result import FitResult
from retrysim.plots.fit import arrival_rate, error_share, latency_over_time, latency_qq
from retrysim.render.fit_report import (
    arrival_line,
    defaults_table,
    fitted_table,
    held_out_table,
    latency_table,
    number,
    windows_table,
)
from retrysim.share.figures import svg_markup
from retrysim.share.page import Block, Code, Figure, Page, Paragraph, Section, Tone
from retrysim.share.reproduce import reproduce
from retrysim.share.tables import page_table

if TYPE_CHECKING:
    from matplotlib.figure import Figure as PlotFigure


def fit_page(
    result: FitResult,
    held_out: HeldOutCheck | str | None,
    text: str,
    words: Sequence[str],
) -> Page:
    """The page of ``result``: ``held_out`` the check (a line when it could not run, None
    with ``--no-check``), ``text`` the scenario written, ``words`` the command line."""
    names = ", ".join(source.describe() for source in result.sources)
    sections = [_values(result), *_arrivals(result), *_latency(result), *_errors(result)]
    if held_out is not None:
        sections.append(_held_out(held_out))
    sections.append(Section("The scenario written", [Code(text.splitlines(), "scenario TOML")]))
    seeds = held_out.seeds if isinstance(held_out, HeldOutCheck) else ()
    return Page(
        title="retrysim fit",
        subtitle=f"from {names}",
        verdict=Paragraph(*verdict(result, held_out)),
        sections=sections,
        reproduce=reproduce(words, list(seeds)),
        notes=list(result.notes),
    )


def verdict(result: FitResult, held_out: HeldOutCheck | str | None) -> tuple[str, Tone]:
    """One line: how many values were fitted, how many are defaults, and the held-out count;
    ``bad`` when a held-out metric falls outside its interval, ``warn`` with defaults."""
    fitted = sum(item.default is None for item in result.values)
    defaults = len(result.values) - fitted
    line = f"{fitted} values fitted, {defaults} defaults"
    tone: Tone = "warn" if defaults else "good"
    if isinstance(held_out, HeldOutCheck):
        line += f"; held-out check: {held_out.inside} of {len(held_out.metrics)} metrics inside"
        if held_out.inside < len(held_out.metrics):
            tone = "bad"
    elif isinstance(held_out, str):
        line += "; held-out check not run"
    return line, tone


def _values(result: FitResult) -> Section:
    blocks: list[Block] = [page_table(fitted_table(result))]
    if any(item.default is not None for item in result.values):
        blocks.append(page_table(defaults_table(result)))
    blocks += [Paragraph(f"missing: {line}", "warn") for line in result.missing]
    return Section("Fitted values", blocks)


def _arrivals(result: FitResult) -> list[Section]:
    found = result.arrivals
    if found is None:
        return []
    alt = (
        f"Calls per second in {number(found.bin_width)} s bins from {number(found.start)} to "
        f"{number(found.end)} s, against the fitted rate {number(found.rate)} per second"
        f"{f' with {len(found.schedule)} steps' if found.schedule else ''}: {found.verdict}."
    )
    figure = _figure(arrival_rate(result), "arrivals", alt, "Arrival rate over time")
    return [Section("Arrivals", [Paragraph(arrival_line(result)), figure])]


def _latency(result: FitResult) -> list[Section]:
    sections = []
    for index, (tier, found) in enumerate(result.latency.items()):
        where = f" ({tier})" if tier else ""
        chosen = found.distance(found.family)
        alt = (
            f"Held-out latency quantiles against the {found.family} fit: "
            f"KS distance {chosen.d:.3g} on {found.n_test:,} held-out requests; "
            f"median {found.candidate.quantile(0.5) * 1000:.3g} ms, "
            f"p99 {found.candidate.quantile(0.99) * 1000:.3g} ms."
        )
        blocks: list[Block] = [
            page_table(latency_table(tier, found)),
            _figure(latency_qq(result, tier), f"qq{index}", alt, f"Latency Q-Q{where}"),
        ]
        if tier in result.latency_over_time:
            series = result.latency_over_time[tier]
            alt = (
                f"Median and p99 latency of successful requests in {len(series['p50'])} bins"
                f"{_windows_text(result, tier)}."
            )
            blocks.append(
                _figure(
                    latency_over_time(result, tier),
                    f"latency{index}",
                    alt,
                    f"Latency over time{where}",
                )
            )
        sections.append(Section(f"Latency{where}", blocks))
    return sections


def _errors(result: FitResult) -> list[Section]:
    if not result.errors:
        return []
    blocks: list[Block] = []
    if any(found.windows for found in result.errors.values()):
        blocks.append(page_table(windows_table(result)))
    else:
        blocks.append(Paragraph("No fault window found: the failed share stays level."))
    for index, (tier, found) in enumerate(result.errors.items()):
        if not len(found.bin_starts):
            continue
        where = f" ({tier})" if tier else ""
        alt = (
            f"Failed share of {found.requests:,} requests over time, {found.failed:,} failed"
            f"{_windows_text(result, tier)}."
        )
        blocks.append(
            _figure(error_share(result, tier), f"errors{index}", alt, f"Failed share{where}")
        )
    return [Section("Errors and fault windows", blocks)]


def _held_out(held_out: HeldOutCheck | str) -> Section:
    if isinstance(held_out, str):
        return Section("Held-out check", [Paragraph(f"not run: {held_out}", "warn")])
    tone: Tone = "good" if held_out.inside == len(held_out.metrics) else "bad"
    line = f"{held_out.inside} of {len(held_out.metrics)} metrics inside their 95% interval"
    return Section("Held-out check", [Paragraph(line, tone), page_table(held_out_table(held_out))])


def _windows_text(result: FitResult, tier: str) -> str:
    found = result.errors.get(tier)
    if found is None or not found.windows:
        return "; no fault window found"
    spans = ", ".join(f"{w.kind} {w.start:.3g} to {w.end:.3g} s" for w in found.windows)
    return f"; windows found: {spans}"


def _figure(figure: PlotFigure, key: str, alt: str, caption: str) -> Figure:
    return Figure(svg=svg_markup(figure, key, alt), alt=alt, caption=caption)
