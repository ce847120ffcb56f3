"""``retrysim compare --html FILE``: the comparison as one page people can share.

The verdict (the best variant and what decided it), the table the terminal prints (the same
``rich.table.Table`` from :func:`retrysim.render.report.compare_table`, read back as text), the
figures ``--plot`` saves (:func:`retrysim.plots.compare_metrics`) and the latency CDF of every
variant, then the best variant's settings and diagnoses, and the command that makes it again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from retrysim.results import metric_table
from retrysim.safe import visible
from retrysim.share.figures import svg_markup
from retrysim.share.page import Figure, Page, Paragraph, Section
from retrysim.share.reproduce import reproduce
from retrysim.share.tables import page_table
from retrysim.share.variants import Comparison, choose, figures_text, shared_sections, verdict

if TYPE_CHECKING:
    from retrysim.runs.sweep import VariantResult

#: Variants a figure's text alternative names one by one; past them it says how many more.
ALT_VARIANTS = 8


def compare_page(comparison: Comparison) -> Page:
    """The page of one ``retrysim compare``."""
    from retrysim.render.report import compare_table

    base, results = comparison.base, comparison.results
    choice = choose(results)
    table = compare_table(base.name, comparison.seeds, results, comparison.names)
    seeds = len(comparison.seeds)
    intro = Paragraph(
        f"{len(results)} variants, each run on the same {seeds} seed{'s' if seeds != 1 else ''} "
        "(common random numbers: the same arrivals and faults), so a difference is the "
        "settings' doing. Each cell is the mean"
        + (" ±95% interval over the seeds" if seeds > 1 else "")
        + "; in brackets, the change against the first variant."
    )
    sections = [
        Section("Comparison", [intro, page_table(table)]),
        Section("Figures", [bars_figure(results, comparison.names), cdf_figure(results)]),
        *shared_sections(comparison, choice),
    ]
    return Page(
        title=f"retrysim compare: {visible(base.name)}",
        subtitle=visible(base.description),
        verdict=verdict(results, choice),
        sections=sections,
        reproduce=reproduce(comparison.words, comparison.seeds),
    )


def variants_text(results: Sequence[VariantResult], say: str) -> str:
    """``label: numbers; label: numbers; and 3 more`` for a figure's text alternative; ``say``
    names what each variant's numbers are (``figures``, ``latency``)."""
    parts = []
    for result in results[:ALT_VARIANTS]:
        numbers = figures_text(result) if say == "figures" else latency_text(result)
        parts.append(f"{result.variant.label}: {numbers}")
    if len(results) > ALT_VARIANTS:
        parts.append(f"and {len(results) - ALT_VARIANTS} more (in the table)")
    return visible("; ".join(parts))


def latency_text(result: VariantResult) -> str:
    """``median 0.210s, p99 2.733s``: where a variant's CDF crosses a half and 0.99."""
    return ", ".join(
        f"{word} {metric_table.show(name, result.mean(name))}"
        for word, name in (("median", "p50_latency"), ("p99", "p99_latency"))
    )


def bars_figure(
    results: Sequence[VariantResult], names: Sequence[str], key: str = "bars"
) -> Figure:
    """What ``compare --plot`` saves: one bar per variant for each metric shown (``key``: the
    figure's ids' prefix, unique on its page)."""
    from retrysim.plots import compare_metrics

    titles = ", ".join(metric_table.get(name).title for name in names)
    alt = f"Bar charts of {titles}, one bar per variant. {variants_text(results, 'figures')}."
    return Figure(
        svg=svg_markup(compare_metrics(results, names), key, alt),
        alt=alt,
        caption="The metrics per variant (error bars: 95% interval over the seeds)",
    )


def cdf_figure(results: Sequence[VariantResult], key: str = "cdf") -> Figure:
    """The latency CDF of every variant (seeds' quantile functions averaged)."""
    from retrysim.plots import latency_cdf

    alt = (
        "Share of calls finished within each latency, one line per variant. "
        f"{variants_text(results, 'latency')}."
    )
    return Figure(
        svg=svg_markup(latency_cdf(list(results)), key, alt),
        alt=alt,
        caption="Per-call latency CDF per variant",
    )
