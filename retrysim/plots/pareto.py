"""A Pareto plot: every candidate's success rate against its cost, the best trade-offs marked.

Candidates are rows of plain data, ``{"label": ..., metric: mean, ...}``: the rows of a saved
sweep or compare (``sweep.json``'s ``rows``, with ``variant`` as the label) or of a tuning
result. No candidate on the front can be bettered in one metric without losing in the other;
everything else is beaten by some point of the front on both, and is only drawn in grey.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from retrysim.plots._common import _check_metric, _figure_and_axes, _metric_ticks, _root_figure
from retrysim.results import metric_table

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Front points labelled one by one up to this many; past it, the labels would pile up, so the
#: front is still marked and the rest of the labels are left to the saved rows.
MAX_LABELS = 20
FRONT_COLOUR = "#c44e52"
OTHER_COLOUR = "#9a9a9a"


def _value(row: Mapping[str, Any], name: str) -> float | None:
    value = row.get(name)
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if math.isnan(value) else float(value)  # NaN counts as missing


def _points(rows: Sequence[Mapping[str, Any]], x: str, y: str) -> list[tuple[int, float, float]]:
    """(index, x value, y value) of each row that has both."""
    return [
        (i, vx, vy)
        for i, row in enumerate(rows)
        if (vx := _value(row, x)) is not None and (vy := _value(row, y)) is not None
    ]


def _direction(name: str) -> int:
    """+1 when higher is better, -1 when lower is; a metric with no better way cannot rank."""
    better = metric_table.get(name).better
    if better == "neither":
        raise ValueError(f"{name!r} is neither better high nor low, so it cannot rank a front")
    return 1 if better == "higher" else -1


def pareto_front(
    rows: Sequence[Mapping[str, Any]], x: str = "p99_latency", y: str = "success_rate"
) -> list[int]:
    """Indices of the rows no other row beats: at least as good in ``x`` and ``y`` and better
    in one (which way is better comes from :mod:`retrysim.results.metric_table`). Rows missing
    either
    value are on no front. Ties are all kept."""
    _check_metric(x)
    _check_metric(y)
    dx, dy = _direction(x), _direction(y)
    points = [(i, dx * vx, dy * vy) for i, vx, vy in _points(rows, x, y)]
    front = []
    for i, px, py in points:
        beaten = any(
            qx >= px and qy >= py and (qx > px or qy > py) for j, qx, qy in points if j != i
        )
        if not beaten:
            front.append(i)
    return front


def pareto_plot(
    rows: Sequence[Mapping[str, Any]],
    x: str = "p99_latency",
    y: str = "success_rate",
    *,
    label: str = "label",
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Each row as a point (``x`` across, ``y`` up), the non-dominated ones marked, joined in a
    line and labelled with ``row[label]``.

    Rows are ``{label: ..., metric: value, ...}``; a row without a value for ``x`` or ``y`` is
    left out, and the title counts it. The corner the front bends towards is where better lies;
    a note in the figure says which way that is.
    """
    _check_metric(x)
    _check_metric(y)
    if not rows:
        raise ValueError("no rows to plot")
    points = _points(rows, x, y)
    if not points:
        raise ValueError(f"no row has both {x} and {y}")
    on_front = set(pareto_front(rows, x, y))
    fig, ax = _figure_and_axes(ax, 8.5, 5.6)
    about_x, about_y = metric_table.get(x), metric_table.get(y)

    others = [p for p in points if p[0] not in on_front]
    if others:
        ax.scatter(
            [p[1] for p in others],
            [p[2] for p in others],
            s=28,
            color=OTHER_COLOUR,
            alpha=0.75,
            label=f"beaten on both ({len(others)})",
            gid="pareto-others",
            zorder=2,
        )
    front = sorted((p for p in points if p[0] in on_front), key=lambda p: (p[1], p[2]))
    xs, ys = [p[1] for p in front], [p[2] for p in front]
    ax.plot(xs, ys, color=FRONT_COLOUR, lw=1.2, alpha=0.6, gid="pareto-line", zorder=3)
    ax.scatter(
        xs,
        ys,
        s=70,
        color=FRONT_COLOUR,
        edgecolor="black",
        linewidth=0.8,
        label=f"best trade-offs ({len(front)})",
        gid="pareto-front",
        zorder=4,
    )
    _label_front(ax, rows, front, label, about_x, about_y)
    ax.set_xlabel(_axis_label(about_x))
    ax.set_ylabel(_axis_label(about_y))
    _metric_ticks(ax.xaxis, about_x)
    _metric_ticks(ax.yaxis, about_y)
    ax.grid(alpha=0.3)
    ax.margins(x=0.12, y=0.1)
    ax.legend(
        loc="lower right",
        fontsize="small",
        title=f"better: {_way(about_x, 'x')} and {_way(about_y, 'y')}",
        title_fontsize="x-small",
        framealpha=0.85,
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


def _label_front(
    ax: Axes,
    rows: Sequence[Mapping[str, Any]],
    front: list[tuple[int, float, float]],
    label: str,
    about_x: metric_table.Metric,
    about_y: metric_table.Metric,
) -> None:
    """Label each point of the front (one label for candidates with the same values), on the
    side towards better: nothing can be there, since nothing beats the front."""
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
            text += f" (+{len(members) - 1} tied)"
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
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.7},
            arrowprops={"arrowstyle": "-", "color": "#888888", "lw": 0.6, "shrinkB": 5},
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
