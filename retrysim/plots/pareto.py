"""A Pareto plot: every candidate's success rate against its cost, the best trade-offs marked.

Candidates are rows of plain data, ``{"label": ..., metric: mean, ...}``: the rows of a saved
sweep or compare (``sweep.json``'s ``rows``, with ``variant`` as the label) or of a tuning
result. No candidate on the front can be bettered in one metric without losing in another;
everything else is beaten by some point of the front on every metric, and is only drawn in grey.

A tuning's front is over three metrics (success, p99 latency and load), and a flat picture of
two of them would draw a front member as beaten when only the third keeps it there: with
``colour=`` the third metric colours every point (a colour bar says which way is better) and
the front is judged on all three. ``recommended=`` marks the row the tuner recommends with a
star, on the front or not.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from retrysim.plots import palette
from retrysim.plots._common import _check_metric, _figure_and_axes, _metric_ticks, _root_figure
from retrysim.results import metric_table

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Front points labelled one by one up to this many; past it, the labels would pile up, so the
#: front is still marked and the rest of the labels are left to the saved rows.
MAX_LABELS = 20
FRONT_COLOUR = palette.FRONT
OTHER_COLOUR = palette.GREY
RECOMMENDED_COLOUR = palette.RECOMMENDED  # apart from every colour of the map
#: The third metric's colours (dark to light as it grows); readable in grey and by the
#: colour-blind.
COLOUR_MAP = "viridis"


def _value(row: Mapping[str, Any], name: str) -> float | None:
    value = row.get(name)
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if math.isnan(value) else float(value)  # NaN counts as missing


def _direction(name: str) -> int:
    """+1 when higher is better, -1 when lower is; a metric with no better way cannot rank."""
    better = metric_table.get(name).better
    if better == "neither":
        raise ValueError(f"{name!r} is neither better high nor low, so it cannot rank a front")
    return 1 if better == "higher" else -1


def pareto_front(
    rows: Sequence[Mapping[str, Any]],
    x: str = "p99_latency",
    y: str = "success_rate",
    also: Sequence[str] = (),
) -> list[int]:
    """Indices of the rows no other row beats: at least as good in ``x``, ``y`` and each of
    ``also``, and better in one (which way is better comes from
    :mod:`retrysim.results.metric_table`). Rows missing any value are on no front. Ties are
    all kept."""
    names = [x, y, *also]
    for name in names:
        _check_metric(name)
    ways = [_direction(name) for name in names]
    points = [
        (i, [way * v for way, v in zip(ways, values, strict=True)])
        for i, values in _values(rows, names)
    ]
    front = []
    for i, p in points:
        beaten = any(
            all(qk >= pk for qk, pk in zip(q, p, strict=True)) and q != p
            for j, q in points
            if j != i
        )
        if not beaten:
            front.append(i)
    return front


def _values(
    rows: Sequence[Mapping[str, Any]], names: Sequence[str]
) -> list[tuple[int, list[float]]]:
    """(index, values of ``names``) of each row that has them all."""
    found = []
    for i, row in enumerate(rows):
        values = [_value(row, name) for name in names]
        if all(v is not None for v in values):
            found.append((i, [float(v) for v in values if v is not None]))
    return found


def pareto_plot(
    rows: Sequence[Mapping[str, Any]],
    x: str = "p99_latency",
    y: str = "success_rate",
    *,
    colour: str | None = None,
    recommended: int | None = None,
    label: str = "label",
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Each row as a point (``x`` across, ``y`` up), the non-dominated ones marked and
    labelled with ``row[label]`` (joined in a line when the front is over ``x`` and ``y``
    alone).

    ``colour``: a third metric, shown as each point's colour (a colour bar says which way is
    better) and weighed in the front. ``recommended``: the index of the row to mark with a
    star (the tuner's recommendation). Rows are ``{label: ..., metric: value, ...}``; a row
    without a value for a metric drawn is left out, and the title counts it. The corner the
    front bends towards is where better lies; the legend says which way that is.
    """
    names = [x, y] + ([colour] if colour is not None else [])
    for name in names:
        _check_metric(name)
    if not rows:
        raise ValueError("no rows to plot")
    found = _values(rows, names)
    if not found:
        raise ValueError(f"no row has both {x} and {y}" + (f" and {colour}" if colour else ""))
    points = [(i, values[0], values[1]) for i, values in found]
    shade = {i: values[2] for i, values in found} if colour is not None else {}
    on_front = set(pareto_front(rows, x, y, [colour] if colour is not None else []))
    fig, ax = _figure_and_axes(ax, 8.5, 5.6)
    about_x, about_y = metric_table.get(x), metric_table.get(y)
    norm = _norm(list(shade.values())) if colour is not None else None

    def style(chosen: list[tuple[int, float, float]], fallback: str) -> dict[str, Any]:
        if norm is None:
            return {"color": fallback}
        return {"c": [shade[p[0]] for p in chosen], "cmap": COLOUR_MAP, "norm": norm}

    beaten = "beaten on all three" if colour is not None else "beaten on both"
    others = [p for p in points if p[0] not in on_front]
    if others:
        ax.scatter(
            [p[1] for p in others],
            [p[2] for p in others],
            s=28,
            alpha=0.75,
            label=f"{beaten} ({len(others)})",
            gid="pareto-others",
            zorder=2,
            **style(others, OTHER_COLOUR),
        )
    front = sorted((p for p in points if p[0] in on_front), key=lambda p: (p[1], p[2]))
    xs, ys = [p[1] for p in front], [p[2] for p in front]
    if colour is None:  # a front over three metrics is no line in two of them
        ax.plot(xs, ys, color=FRONT_COLOUR, lw=1.2, alpha=0.6, gid="pareto-line", zorder=3)
    marks = ax.scatter(
        xs,
        ys,
        s=70,
        edgecolor=palette.BLACK,
        linewidth=0.8,
        label=f"best trade-offs ({len(front)})",
        gid="pareto-front",
        zorder=4,
        **style(front, FRONT_COLOUR),
    )
    labelled = list(front)
    if recommended is not None:
        chosen = [p for p in points if p[0] == recommended]
        for p in chosen:
            _mark_recommended(ax, p, str(rows[p[0]].get(label, f"#{p[0] + 1}")))
        if chosen and chosen[0][0] not in on_front:
            labelled.append(chosen[0])
    _label_front(ax, rows, labelled, label, about_x, about_y, "tied" if colour is None else "here")
    ax.set_xlabel(_axis_label(about_x))
    ax.set_ylabel(_axis_label(about_y))
    _metric_ticks(ax.xaxis, about_x)
    _metric_ticks(ax.yaxis, about_y)
    if colour is not None:
        _colour_bar(_root_figure(ax).colorbar(marks, ax=ax), metric_table.get(colour))
    ax.grid(alpha=0.3)
    ax.margins(x=0.12, y=0.1)
    ax.legend(
        loc="lower right" if colour is None else "best",  # "best": clear of the points
        fontsize="small",
        title=f"better: {_way(about_x, 'x')} and {_way(about_y, 'y')}",
        title_fontsize="x-small",
        framealpha=0.85,
        markerscale=0.7 if recommended is not None else 1.0,
    )
    left_out = len(rows) - len(points)
    head = title or f"{about_y.title.capitalize()} against {about_x.title}"
    note = f"{len(points)} candidates"
    if left_out:
        note += f"; {left_out} without a value left out"
    ax.set_title(f"{head}\n{note}", fontsize="medium")
    labels = [t for t in ax.texts if str(t.get_gid()).startswith("pareto-label")]
    _declutter(_root_figure(ax), ax, labels)
    return fig


def _norm(values: list[float]) -> Any:
    """The colour scale of the third metric: its range over the points drawn."""
    from matplotlib.colors import Normalize

    low, high = min(values), max(values)
    if low == high:  # one value: a scale around it, so the colour bar still has a range
        pad = abs(low) * 0.05 or 0.05
        low, high = low - pad, high + pad
    return Normalize(vmin=low, vmax=high)


def _colour_bar(bar: Any, about: metric_table.Metric) -> None:
    _metric_ticks(bar.ax.yaxis, about)
    bar.set_label(f"{about.title} ({about.unit}, {about.better} is better)")
    bar.ax.set_gid("pareto-colour-bar")


def _mark_recommended(ax: Axes, point: tuple[int, float, float], name: str) -> None:
    """A hollow star around the recommended point, over its own marker, in the legend."""
    ax.scatter(
        [point[1]],
        [point[2]],
        s=330,
        marker="*",
        facecolor="none",
        edgecolor=RECOMMENDED_COLOUR,
        linewidth=1.6,
        label=f"recommended: {name}",
        gid="pareto-recommended",
        zorder=6,
    )


def _label_front(
    ax: Axes,
    rows: Sequence[Mapping[str, Any]],
    front: list[tuple[int, float, float]],
    label: str,
    about_x: metric_table.Metric,
    about_y: metric_table.Metric,
    together: str = "tied",
) -> None:
    """Label each point of the front (one label for candidates at the same place: ``tied``,
    or ``here`` when a colour still tells them apart), on the side towards better: nothing
    can be there, since nothing beats the front."""
    groups: dict[tuple[float, float], list[int]] = {}
    for i, vx, vy in front:
        groups.setdefault((vx, vy), []).append(i)
    side_x = 1 if about_x.better == "higher" else -1
    side_y = 1 if about_y.better == "higher" else -1
    for n, ((vx, vy), members) in enumerate(groups.items()):
        if n == MAX_LABELS:
            break
        text = str(rows[members[0]].get(label, f"#{members[0] + 1}"))
        if len(members) > 1:
            text += f" (+{len(members) - 1} {together})"
        ax.annotate(
            text,
            (vx, vy),
            xytext=(8 * side_x, 6 * side_y),
            textcoords="offset points",
            ha="left" if side_x > 0 else "right",
            va="bottom" if side_y > 0 else "top",
            fontsize="x-small",
            gid=f"pareto-label-{members[0]}",
            zorder=5,
            bbox={"boxstyle": "round,pad=0.15", "fc": palette.WHITE, "ec": "none", "alpha": 0.7},
            arrowprops={"arrowstyle": "-", "color": palette.GREY, "lw": 0.6, "shrinkB": 5},
        )


def _declutter(fig: Figure, ax: Axes, labels: list[Any]) -> None:
    """Move labels that would leave the axes to the other side of their point, and labels that
    would cover a marker or an earlier label up or down (or across) until they do not; a thin
    line keeps each label tied to its point."""
    if not labels:
        return
    from matplotlib.transforms import Bbox

    fig.draw_without_rendering()  # lay the figure out, so extents are where they will be
    frame = ax.get_window_extent()
    radius = 6 * fig.dpi / 72  # a front marker's radius, in pixels
    placed: list[Any] = []
    for text in labels:
        px, py = ax.transData.transform(text.xy)
        placed.append(Bbox.from_extents(px - radius, py - radius, px + radius, py + radius))
    for text in labels:
        box = _extent(text)
        if box.x0 < frame.x0 or box.x1 > frame.x1:
            _mirror(text)
        home = (text.xyann, text.get_ha())
        height = _extent(text).height * 72 / fig.dpi
        for k in (0, 1, -1, 2, -2, 3, -3):
            for mirrored in (False, True):
                text.xyann, _ = home
                text.set_ha(home[1])
                if mirrored:
                    _mirror(text)
                text.xyann = (text.xyann[0], home[0][1] + k * 1.1 * height)
                box = _extent(text)
                inside = frame.x0 <= box.x0 and box.x1 <= frame.x1
                if inside and not any(box.overlaps(other) for other in placed):
                    break
            else:
                continue
            break
        else:  # nowhere free nearby: the preferred place, overlapping as little as it can
            text.xyann, _ = home
            text.set_ha(home[1])
            box = _extent(text)
        placed.append(box)


def _extent(text: Any) -> Any:
    """The label's own box, without the line to its point (which Annotation would include)."""
    from matplotlib.text import Text

    return Text.get_window_extent(text).padded(2)  # and its white backing


def _mirror(text: Any) -> None:
    """Put an annotation on the other side of its point, aligned to match."""
    dx, dy = text.xyann
    text.xyann = (-dx, dy)
    text.set_ha("left" if text.get_ha() == "right" else "right")


def _way(about: metric_table.Metric, axis: str) -> str:
    if axis == "x":
        return "right" if about.better == "higher" else "left"
    return "up" if about.better == "higher" else "down"


def _axis_label(about: metric_table.Metric) -> str:
    return f"{about.title} ({about.unit}, {about.better} is better)"
