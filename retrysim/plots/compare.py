"""Variants compared: one bar per variant for each metric, with intervals over seeds."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from retrysim.plots import palette
from retrysim.plots._common import _check_metric, _colour, _root_figure, _thousands, new_figure
from retrysim.results import metric_table
from retrysim.results.metric_table import DEFAULT_COMPARE_METRICS

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from retrysim.runs.sweep import VariantResult


def compare_metrics(
    variant_results: Sequence[VariantResult],
    metrics: Sequence[str] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """One bar per variant for each metric, with 95% intervals over seeds as error bars.

    Each metric gets its own panel because their units differ. Error bars appear when a variant
    ran with two or more seeds; with common random numbers (:func:`retrysim.compare`) the gap
    between two bars is the settings' doing, and an interval says how much of it could be luck.
    Bars are horizontal so variant labels such as ``profile=full_jitter, max_attempts=6`` stay
    readable. ``ax`` is accepted when exactly one metric is drawn.

    Numbers read as the terminal prints them: bar labels and value axes follow each metric's
    format in :mod:`retrysim.results.metric_table` (a success rate is 33.30% and its axis is in
    percent,
    never a bare 0.333), and each panel says which way is better, so a reader does not have to
    know whether a longer bar is good news.
    """
    names = list(metrics) if metrics is not None else list(DEFAULT_COMPARE_METRICS)
    if not names:
        raise ValueError("name at least one metric")
    for name in names:
        _check_metric(name)
    if not variant_results:
        raise ValueError("no variant results to compare")
    if ax is not None and len(names) != 1:
        raise ValueError("ax= draws one panel: pass exactly one metric, or no ax")
    labels = [vr.variant.label for vr in variant_results]
    if ax is None:
        cols = len(names) if len(names) <= 3 else 2 if len(names) == 4 else 3
        rows = math.ceil(len(names) / cols)
        label_width = min(4.0, 0.075 * max(len(label) for label in labels))
        fig = new_figure(label_width + 4.6 * cols, (0.38 * len(labels) + 1.3) * rows + 0.4)
        grid = fig.subplots(rows, cols, squeeze=False, sharey=True)
        axes = list(grid.ravel())
        for extra in axes[len(names) :]:
            extra.set_visible(False)
    else:
        fig, axes = _root_figure(ax), [ax]
    seeds = max(len(vr.documents) for vr in variant_results)
    colours = [_colour(label, i) for i, label in enumerate(labels)]
    y = np.arange(len(labels))
    for a, name in zip(axes, names, strict=False):
        means = np.asarray(
            [np.nan if (m := vr.mean(name)) is None else m for vr in variant_results]
        )
        err = np.zeros((2, len(labels)))
        has_err = False
        for j, vr in enumerate(variant_results):
            interval = vr.interval(name)
            if interval is not None and not np.isnan(means[j]):
                err[:, j] = (means[j] - interval[0], interval[1] - means[j])
                has_err = True
        bars = a.barh(
            y,
            np.nan_to_num(means),
            color=colours,
            xerr=err if has_err else None,
            capsize=3 if has_err else 0,
            ecolor=palette.DARK_GREY,
            gid=f"bars-{name}",
        )
        about = metric_table.get(name)
        a.bar_label(
            bars,
            labels=["n/a" if np.isnan(m) else about.show(float(m)) for m in means],
            padding=4,
            fontsize="x-small",
        )
        a.set_title(about.title)
        a.set_xlabel(_axis_label(about))
        _value_ticks(a, about)
        a.set_yticks(y, labels)
        a.grid(axis="x", alpha=0.3)
        a.margins(x=0.18)
    axes[0].set_ylim(len(labels) - 0.5, -0.5)  # first variant on top, as listed
    if ax is None:
        note = (
            f"mean of {seeds} seeds (common random numbers); error bars: 95% interval"
            if seeds > 1
            else "one seed: no interval"
        )
        fig.suptitle(f"Variants compared: {note}", fontsize="medium")
    return fig


def _axis_label(about: metric_table.Metric) -> str:
    """The panel's unit, and which way is better when one is (shown as a plain note)."""
    if about.better == "neither":
        return about.unit
    return f"{about.unit} ({about.better} is better)"


def _value_ticks(ax: Axes, about: metric_table.Metric) -> None:
    """Value-axis ticks in the metric's own format: 20%, 1.5s, 2x, 10,000."""
    from matplotlib.ticker import FuncFormatter

    if about.format == "percent":  # shares are stored as fractions: 0.333 is 33.3%
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{100 * v:.4g}%"))
    elif about.format == "seconds":
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}s"))
    elif about.format == "ratio":
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}x"))
    elif about.format == "count":
        ax.xaxis.set_major_formatter(FuncFormatter(_thousands))
