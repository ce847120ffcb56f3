"""``retrysim sweep --html FILE``: the sweep as one page people can share.

The verdict (the best grid point and what decided it), the table the terminal prints (the
same ``rich.table.Table`` from :func:`retrysim.render.report.sweep_table`), the figures of a
sweep (a heat map of success, p99 latency and load over the first two grid keys, as
``retrysim plot --kind heatmap`` draws a saved sweep; a grid of one key gets a bar per point),
then the best point's settings and diagnoses, and the command that makes it again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from retrysim.results import metric_table
from retrysim.safe import visible
from retrysim.share.compare_page import bars_figure
from retrysim.share.figures import svg_markup
from retrysim.share.page import Block, Figure, Page, Paragraph, Section
from retrysim.share.reproduce import reproduce
from retrysim.share.tables import page_table
from retrysim.share.variants import KEY_METRICS, Comparison, choose, shared_sections, verdict

if TYPE_CHECKING:
    from retrysim.runs.sweep import VariantResult


def sweep_page(comparison: Comparison) -> Page:
    """The page of one ``retrysim sweep``."""
    from retrysim.render.report import sweep_table

    base, results = comparison.base, comparison.results
    choice = choose(results)
    table = sweep_table(base.name, comparison.seeds, results, comparison.names)
    seeds = len(comparison.seeds)
    intro = Paragraph(
        f"{len(results)} grid points, each run on the same {seeds} seed"
        f"{'s' if seeds != 1 else ''} (common random numbers), so a difference is the "
        "settings' doing. Each cell is the mean"
        + (" ±95% interval over the seeds." if seeds > 1 else ".")
    )
    sections = [
        Section("Sweep", [intro, page_table(table)]),
        Section("Figures", figures(comparison)),
        *shared_sections(comparison, choice),
    ]
    return Page(
        title=f"retrysim sweep: {visible(base.name)}",
        subtitle=visible(base.description),
        verdict=verdict(results, choice),
        sections=sections,
        reproduce=reproduce(comparison.words, comparison.seeds),
    )


def figures(comparison: Comparison) -> list[Block]:
    """A heat map per key metric over two grid keys; bars when the grid has one key (or a
    heat map cannot be drawn, said in a line)."""
    from retrysim.plots import grid_keys
    from retrysim.runs.sweep import table_rows

    results = comparison.results
    rows = table_rows(results, KEY_METRICS)
    keys = grid_keys(rows)
    if len(keys) < 2:
        return [bars_figure(results, KEY_METRICS)]
    blocks: list[Block] = []
    for metric in KEY_METRICS:
        try:
            blocks.append(heatmap_figure(rows, metric, len(comparison.seeds), comparison))
        except ValueError as error:  # a grid of too many panels, or no values for it
            blocks.append(Paragraph(visible(f"No heat map of {metric}: {error}."), "warn"))
    if not any(isinstance(block, Figure) for block in blocks):
        blocks.append(bars_figure(results, KEY_METRICS))
    return blocks


def heatmap_figure(
    rows: Sequence[Mapping[str, Any]], metric: str, seeds: int, comparison: Comparison
) -> Figure:
    """``metric`` over the first two grid keys (one panel per value of the others)."""
    from retrysim.plots import grid_keys, heatmap_rows

    about = metric_table.get(metric)
    figure = heatmap_rows(rows, metric=metric, seeds=seeds, title=comparison.base.name)
    keys = grid_keys(rows)
    alt = (
        f"Heat map of {about.title} over {_short(keys[0])} (across) and {_short(keys[1])} (up)"
        + (f", one panel per {', '.join(_short(k) for k in keys[2:])}" if keys[2:] else "")
        + f". {_extremes(comparison.results, metric)}"
    )
    return Figure(
        svg=svg_markup(figure, f"heat-{metric}", visible(alt)),
        alt=visible(alt),
        caption=f"{about.title} at each grid point (mean of {seeds} seed"
        f"{'s' if seeds != 1 else ''})",
    )


def _extremes(results: Sequence[VariantResult], metric: str) -> str:
    """``Best 99.10% at max_attempts=5, min_wait=1; worst 80.00% at ...``."""
    known = [(r.mean(metric), r) for r in results if r.mean(metric) is not None]
    if not known:
        return "No grid point has a value."
    better = metric_table.better(metric)
    ordered = sorted(known, key=lambda pair: pair[0] or 0.0, reverse=better == "higher")
    (top, best), (bottom, worst) = ordered[0], ordered[-1]
    if better == "neither":
        return (
            f"From {metric_table.show(metric, top)} at {best.variant.label} to "
            f"{metric_table.show(metric, bottom)} at {worst.variant.label}."
        )
    return (
        f"Best {metric_table.show(metric, top)} at {best.variant.label}; "
        f"worst {metric_table.show(metric, bottom)} at {worst.variant.label}."
    )


def _short(key: str) -> str:
    return key.removeprefix("policy.")
