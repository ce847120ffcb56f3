"""A sweep's heat map: one metric's mean over a two-key grid of variants."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from retrysim import metric_table
from retrysim.plots._common import _check_metric, _figure_and_axes, _number, _root_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from retrysim.sweep import VariantResult


def _grid_value(variant_result: VariantResult, key: str) -> Any:
    sets = variant_result.variant.sets
    for candidate in (key, f"policy.{key}"):
        if candidate in sets:
            return sets[candidate]
    raise ValueError(
        f"variant {variant_result.variant.label!r} does not set {key!r} (it sets: "
        f"{', '.join(sets) or 'nothing'})"
    )


def _axis_values(values: list[Any]) -> list[Any]:
    unique = list(dict.fromkeys(values))
    try:
        return sorted(unique)
    except TypeError:
        return unique  # mixed types: keep the grid's own order


def sweep_heatmap(
    variant_results: Sequence[VariantResult],
    x_key: str,
    y_key: str,
    metric: str,
    ax: Axes | None = None,
) -> Figure:
    """A metric's mean over a two-key grid of variants (from :func:`grid_variants`).

    Tuning is a search for the region where every constraint holds; a heat map shows that region
    and how sharp its edges are, which a ranked table hides. Keys are dotted scenario keys as
    given to the grid (``policy.max_attempts``; the ``policy.`` prefix may be left off). Cells
    no variant covers stay blank; two variants on one cell is an error.
    """
    _check_metric(metric)
    if not variant_results:
        raise ValueError("no variant results to plot")
    xs = _axis_values([_grid_value(vr, x_key) for vr in variant_results])
    ys = _axis_values([_grid_value(vr, y_key) for vr in variant_results])
    data = np.full((len(ys), len(xs)), np.nan)
    filled = np.zeros(data.shape, dtype=bool)
    for vr in variant_results:
        r, c = ys.index(_grid_value(vr, y_key)), xs.index(_grid_value(vr, x_key))
        if filled[r, c]:
            raise ValueError(
                f"two variants share the cell {x_key}={xs[c]}, {y_key}={ys[r]}: "
                "the grid has more than two keys"
            )
        filled[r, c] = True
        mean = vr.mean(metric)
        data[r, c] = np.nan if mean is None else mean
    fig, ax = _figure_and_axes(ax, max(5.5, 1.1 * len(xs) + 3), max(3.8, 0.7 * len(ys) + 2.2))
    about = metric_table.get(metric)
    # viridis runs from dark purple (low) to bright yellow (high); reversed when lower is better,
    # so the better end is always bright. Cell text turns white where the colours are dark.
    low_is_dark = about.better != "lower"
    cmap = "viridis" if low_is_dark else "viridis_r"
    image = ax.imshow(data, origin="lower", aspect="auto", cmap=cmap, gid=f"heatmap-{metric}")
    finite = data[np.isfinite(data)]
    middle = float(np.mean([finite.min(), finite.max()])) if len(finite) else 0.0
    for r in range(len(ys)):
        for c in range(len(xs)):
            value = data[r, c]
            text = "n/a" if np.isnan(value) else _number(value)
            dark = not np.isnan(value) and ((value < middle) == low_is_dark)
            ax.text(
                c, r, text, ha="center", va="center", fontsize="small",
                color="white" if dark else "black",
            )  # fmt: skip
    ax.set_xticks(range(len(xs)), [_tick(v) for v in xs])
    ax.set_yticks(range(len(ys)), [_tick(v) for v in ys])
    ax.set_xlabel(_axis_label(x_key))
    ax.set_ylabel(_axis_label(y_key))
    seeds = max(len(vr.documents) for vr in variant_results)
    ax.set_title(f"{about.title} (mean of {seeds} seed{'s' if seeds != 1 else ''})")
    bar = _root_figure(ax).colorbar(image, ax=ax)
    if about.better == "neither":
        bar.set_label(about.unit)
    else:
        better = f"{about.better} is better"
        bar.set_label(f"{about.unit} ({better})" if about.unit else better)
    return fig


def _tick(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _axis_label(key: str) -> str:
    short = key.removeprefix("policy.")
    unit = " (s)" if short.endswith(("_wait", "jitter", "max_delay", "timeout")) else ""
    return f"{short}{unit}"
