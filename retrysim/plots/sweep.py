"""A sweep's heat map: one metric's mean over a two-key grid of variants."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from retrysim.plots import palette
from retrysim.plots._common import (
    _check_metric,
    _figure_and_axes,
    _metric_ticks,
    _root_figure,
    new_figure,
)
from retrysim.results import metric_table

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from retrysim.runs.sweep import VariantResult


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
    image = _cells(ax, xs, ys, data, metric, x_key, y_key)
    seeds = max(len(vr.documents) for vr in variant_results)
    about = metric_table.get(metric)
    ax.set_title(f"{about.title} (mean of {seeds} seed{'s' if seeds != 1 else ''})")
    _colour_bar(_root_figure(ax).colorbar(image, ax=ax), about)
    return fig


def _cells(
    ax: Axes,
    xs: list[Any],
    ys: list[Any],
    data: np.ndarray[Any, Any],
    metric: str,
    x_key: str,
    y_key: str,
    limits: tuple[float, float] | None = None,
) -> Any:
    """One panel: the cells coloured and numbered, the keys' values on the axes. ``limits``
    fixes the colour scale (shared by the panels of one figure); returns the image."""
    about = metric_table.get(metric)
    # viridis runs from dark purple (low) to bright yellow (high); reversed when lower is better,
    # so the better end is always bright. Cell text turns white where the colours are dark.
    low_is_dark = about.better != "lower"
    cmap = "viridis" if low_is_dark else "viridis_r"
    vmin, vmax = limits if limits is not None else (None, None)
    image = ax.imshow(
        data, origin="lower", aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax,
        gid=f"heatmap-{metric}",
    )  # fmt: skip
    finite = data[np.isfinite(data)]
    if limits is not None:
        middle = (limits[0] + limits[1]) / 2
    else:
        middle = float(np.mean([finite.min(), finite.max()])) if len(finite) else 0.0
    for r in range(len(ys)):
        for c in range(len(xs)):
            value = data[r, c]
            text = "n/a" if np.isnan(value) else about.show(float(value))  # as tables print it
            dark = not np.isnan(value) and ((value < middle) == low_is_dark)
            ax.text(
                c, r, text, ha="center", va="center", fontsize="small",
                color=palette.WHITE if dark else palette.BLACK,
            )  # fmt: skip
    ax.set_xticks(range(len(xs)), [_tick(v) for v in xs])
    ax.set_yticks(range(len(ys)), [_tick(v) for v in ys])
    ax.set_xlabel(_axis_label(x_key))
    ax.set_ylabel(_axis_label(y_key))
    return image


def _colour_bar(bar: Any, about: metric_table.Metric) -> None:
    _metric_ticks(bar.ax.yaxis, about)
    if about.better == "neither":
        bar.set_label(about.unit)
    else:
        better = f"{about.better} is better"
        bar.set_label(f"{about.unit} ({better})" if about.unit else better)


def _tick(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _axis_label(key: str) -> str:
    short = _short(key)
    unit = " (s)" if short.endswith(("_wait", "jitter", "max_delay", "timeout")) else ""
    return f"{short}{unit}"


#: Columns of a sweep's rows that are not grid keys (the label, the seed count).
_NOT_KEYS = frozenset({"variant", "label", "seeds"})
#: A figure of more panels than this is a wall of numbers; the caller is asked to pick keys.
MAX_PANELS = 12


def grid_keys(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The grid keys of a saved sweep's rows (``sweep.json``): every column that is not the
    label, the seed count, a metric or a metric's interval, in the order the grid gave them."""
    keys: list[str] = []
    for row in rows:
        for key in row:
            if key in keys or key in _NOT_KEYS or key in metric_table.METRIC_NAMES:
                continue
            if key.endswith(("_ci_low", "_ci_high")):
                continue
            keys.append(key)
    return keys


def heatmap_rows(
    rows: Sequence[Mapping[str, Any]],
    x: str | None = None,
    y: str | None = None,
    metric: str = "success_rate",
    *,
    seeds: int | None = None,
    title: str | None = None,
) -> Figure:
    """A saved sweep's heat map: ``metric`` over grid keys ``x`` (across) and ``y`` (up).

    ``rows`` are a sweep's (``sweep.json``'s ``rows``: the grid keys' values and each metric's
    mean). ``x`` and ``y`` default to the first two grid keys (``policy.`` may be left off).
    With more keys than two, there is one panel per combination of the others, on one colour
    scale, so panels compare at a glance. ``seeds`` (how many each mean is over) and ``title``
    (a scenario's name, say) go into the title.
    """
    _check_metric(metric)
    if not rows:
        raise ValueError("no rows to plot")
    if any(metric not in row for row in rows):
        have = [name for name in metric_table.METRIC_NAMES if name in rows[0]]
        raise ValueError(f"these rows have no {metric!r} (they have: {', '.join(have)})")
    keys = grid_keys(rows)
    if len(keys) < 2:
        raise ValueError(
            f"a heat map needs two grid keys; these rows vary {len(keys)}"
            + (f" ({keys[0]})" if keys else "")
        )
    x_key = _resolve(x, keys) if x is not None else next(k for k in keys if k != y)
    y_key = _resolve(y, keys) if y is not None else next(k for k in keys if k != x_key)
    if x_key == y_key:
        raise ValueError(f"x and y are both {x_key!r}: pick two different grid keys")
    rest = [k for k in keys if k not in (x_key, y_key)]
    xs, ys, groups = _panels(rows, x_key, y_key, rest, metric)
    if len(groups) > MAX_PANELS:
        raise ValueError(
            f"{len(groups)} panels (one per combination of {', '.join(rest)}) are too many to "
            f"read; pick as x and y the two keys with the most values"
        )
    values = np.concatenate([d[np.isfinite(d)] for d in groups.values()])
    limits = (float(values.min()), float(values.max())) if len(values) else None
    cols = min(3, len(groups))
    panel_rows = math.ceil(len(groups) / cols)
    width = max(5.5, 1.1 * len(xs) + 2.2) * cols + 1.2
    height = max(3.4, 0.7 * len(ys) + 1.8) * panel_rows + 0.6
    fig = new_figure(width, height)
    grid = fig.subplots(panel_rows, cols, squeeze=False)
    axes = list(grid.ravel())
    image = None
    for ax, (group, data) in zip(axes, groups.items(), strict=False):
        image = _cells(ax, xs, ys, data, metric, x_key, y_key, limits)
        if rest:
            pairs = zip(rest, group, strict=True)
            ax.set_title(", ".join(f"{_short(k)}={_tick(v)}" for k, v in pairs))
    for extra in axes[len(groups) :]:
        extra.set_visible(False)
    about = metric_table.get(metric)
    count = f" (mean of {seeds} seed{'s' if seeds != 1 else ''})" if seeds else ""
    heading = f"{title}: {about.title}{count}" if title else f"{about.title}{count}"
    if rest:
        fig.suptitle(heading, fontsize="medium")
    else:
        axes[0].set_title(heading)
    assert image is not None  # at least one group: there is at least one row
    _colour_bar(fig.colorbar(image, ax=axes[: len(groups)]), about)
    return fig


def _panels(
    rows: Sequence[Mapping[str, Any]], x_key: str, y_key: str, rest: list[str], metric: str
) -> tuple[list[Any], list[Any], dict[tuple[Any, ...], np.ndarray[Any, Any]]]:
    """The axes' values and, per combination of the ``rest`` keys, the panel's cells."""
    xs = _axis_values([row.get(x_key) for row in rows])
    ys = _axis_values([row.get(y_key) for row in rows])
    groups: dict[tuple[Any, ...], np.ndarray[Any, Any]] = {}
    filled: set[tuple[Any, ...]] = set()
    for row in rows:
        group = tuple(row.get(k) for k in rest)
        data = groups.setdefault(group, np.full((len(ys), len(xs)), np.nan))
        r, c = ys.index(row.get(y_key)), xs.index(row.get(x_key))
        if (*group, r, c) in filled:
            raise ValueError(f"two rows share the cell {x_key}={xs[c]}, {y_key}={ys[r]}")
        filled.add((*group, r, c))
        value = row.get(metric)
        data[r, c] = np.nan if value is None else float(value)
    return xs, ys, groups


def _resolve(key: str, keys: Sequence[str]) -> str:
    for candidate in (key, f"policy.{key}"):
        if candidate in keys:
            return candidate
    raise ValueError(f"no grid key {key!r} in these rows; they vary: {', '.join(keys)}")


def _short(key: str) -> str:
    return key.removeprefix("policy.")
