"""What every retrysim figure shares: figure creation, colours, input sniffing, fault shading.

Every figure is a :class:`matplotlib.figure.Figure` built directly (never through ``pyplot``),
so drawing leaves no global figure state behind and works on any backend, Agg included.
matplotlib is imported inside the functions that draw, never at import time: importing
:mod:`retrysim.plots` stays cheap, and a missing matplotlib is reported, with the install hint,
when :func:`new_figure` is first called.

Inputs are plain data: a result document or a :class:`retrysim.RunResult` (summarised on the fly
where only the document is needed); the helpers here tell them apart, so each figure module
does not have to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from retrysim.plots import palette
from retrysim.results import metric_table

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from retrysim.results.document import ResultDocument
    from retrysim.results.sections import ArrivalWindow, FaultWindow
    from retrysim.sim.result import RunResult

#: A result document (dict) or a run's records; records are summarised when needed.
ResultLike: TypeAlias = "ResultDocument | RunResult"


# Every colour is Okabe and Ito's (retrysim.plots.palette, chosen for colour-blind readers).
_SERIES_COLOURS = palette.SERIES
_CYCLE = palette.CYCLE
_FAULT_COLOURS = palette.FAULT_COLOURS
_ARRIVAL_COLOUR = palette.ARRIVAL


def new_figure(width: float = 10.0, height: float = 5.0) -> Figure:
    """A pyplot-free figure (inches, constrained layout) to compose panels with ``ax=``.

    Nothing global is registered, so nothing needs closing, and it renders on any backend.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "retrysim.plots needs matplotlib: pip install 'retrysim[plots]'"
        ) from error
    return Figure(figsize=(width, height), layout="constrained")


def _figure_and_axes(ax: Axes | None, width: float, height: float) -> tuple[Figure, Axes]:
    """Draw into the caller's ``ax`` (and return its root figure) or into a new figure."""
    if ax is None:
        fig = new_figure(width, height)
        return fig, fig.add_subplot()
    return _root_figure(ax), ax


def _root_figure(ax: Axes) -> Figure:
    from matplotlib.figure import Figure

    node: Any = ax.figure
    while not isinstance(node, Figure):  # a SubFigure: climb to the figure that owns it
        node = node.figure
    return node


def _document(result: ResultLike) -> ResultDocument:
    """The result document of ``result``; a RunResult is summarised (no baseline)."""
    if isinstance(result, Mapping):
        return result
    from retrysim.results.metrics import summarize

    return summarize(result)


def _is_run_result(value: object) -> bool:
    from retrysim.sim.result import RunResult

    return isinstance(value, RunResult)


def _is_variant_result(value: object) -> bool:
    from retrysim.runs.sweep import VariantResult

    return isinstance(value, VariantResult)


def _label_of(result: ResultLike) -> str:
    if isinstance(result, Mapping):
        return str(result.get("profile") or result.get("scenario") or "result")
    return str(result.policy.get("profile", "result"))


def _is_real(result: ResultLike) -> bool:
    """Whether ``result`` is a real run's document (``retrysim chaos``): its times are
    wall-clock seconds since the run started, not virtual time."""
    return isinstance(result, Mapping) and result.get("mode") == "real"


def _scenario_of(result: ResultLike) -> str:
    if isinstance(result, Mapping):
        return str(result.get("scenario", "run"))
    return str(result.scenario.name)


def _colour(label: str, index: int) -> str:
    """A profile's own colour (so it looks the same in every figure), else the next in cycle."""
    from retrysim.retry.profiles import profile_colour

    return profile_colour(label, _CYCLE[index % len(_CYCLE)])


def _is_document(value: object) -> bool:
    return isinstance(value, Mapping) and {"scenario", "profile", "calls"} <= value.keys()


def _as_labelled(results: Any) -> dict[str, Any]:
    """``{label: result}`` from a dict of results, or from one result (labelled by profile)."""
    if _is_run_result(results) or _is_document(results):
        return {_label_of(results): results}
    if isinstance(results, Mapping):
        if not results:
            raise ValueError("no results to plot")
        return {str(k): v for k, v in results.items()}
    raise TypeError(
        "expected a result document, a RunResult, or a dict of them keyed by label; "
        f"got {type(results).__name__}"
    )


def _fault_windows(result: ResultLike) -> list[FaultWindow]:
    """Each fault's kind, start and end (``None``: until the run ends)."""
    if isinstance(result, Mapping):
        return list(result.get("faults") or [])
    from retrysim.model.scenario import fault_windows

    return cast("list[FaultWindow]", [dict(w) for w in fault_windows(result.scenario)])


def _shade_faults(ax: Axes, faults: Sequence[FaultWindow], x_end: float) -> None:
    """Shade each fault window; open-ended windows run to ``x_end`` (the end of the axis).

    Each kind has its tint and its hatch (:mod:`retrysim.plots.palette`): two pale tints are
    hard to tell apart for anyone, and a hatch does not depend on seeing colour at all."""
    seen: set[str] = set()
    for i, fault in enumerate(faults):
        start = float(fault["start"])
        until = fault.get("end")
        end = x_end if until is None else float(until)
        kind = str(fault.get("kind", "fault"))
        name = f"fault: {kind}{_replicas_hit(fault)}"
        label = name if name not in seen else "_nolegend_"
        seen.add(name)
        colour = _FAULT_COLOURS.get(kind, palette.FAULT_COLOUR)
        ax.axvspan(
            start,
            end,
            facecolor=palette.rgba(colour, palette.FAULT_ALPHA),
            edgecolor=palette.rgba(colour, palette.FAULT_HATCH_ALPHA),
            hatch=palette.FAULT_HATCHES.get(kind) or None,
            lw=0,
            zorder=0,
            label=label,
            gid=f"fault-{fault.get('index', i)}",
        )


def _replicas_hit(fault: FaultWindow) -> str:
    """`` on replica 2`` when the fault hits only some replicas (the key is absent otherwise)."""
    replicas = cast("Mapping[str, Any]", fault).get("replicas")
    if not replicas:
        return ""
    return f" on replica{'s' if len(replicas) > 1 else ''} {', '.join(map(str, replicas))}"


def _tier_faults(result: ResultLike) -> dict[str | None, list[FaultWindow]]:
    """Each tier's fault windows, by tier name (``None``: a scenario without tiers).

    A window may carry ``replicas``, the replicas it hits (absent: every one). A window that
    names no ``tier`` is the top tier's when the run has tiers: the run's own faults are those
    of the tier its clients call (a ``RunResult``'s scenario is the top tier's view). A
    document's windows of lower tiers name their tier; so do a full scenario's tiers.
    """
    found: dict[str | None, list[FaultWindow]] = {}
    if not isinstance(result, Mapping):
        top = result.tiers[0].name if result.tiers else None
        shown_faults = _fault_windows(result)
    else:
        tiers = cast("Mapping[str, Any]", result).get("tiers") or []
        top = str(tiers[0]["name"]) if tiers else None
        shown_faults = list(result.get("faults") or [])
    for shown in shown_faults:
        tier = cast("Mapping[str, Any]", shown).get("tier")
        found.setdefault(top if tier is None else str(tier), []).append(shown)
    return found


def _arrival_windows(result: ResultLike) -> list[ArrivalWindow]:
    """Each Poisson schedule step's window and rates (none in documents older than the key)."""
    if isinstance(result, Mapping):
        return list(result.get("arrival_windows") or [])
    from retrysim.model.scenario import arrival_windows

    windows = [dict(w) for w in arrival_windows(result.scenario.clients.arrival)]
    return cast("list[ArrivalWindow]", windows)


def _shade_arrivals(ax: Axes, windows: Sequence[ArrivalWindow]) -> None:
    """Hatch each window where the arrival rate changes, with its rates in the legend.

    Hatched outlines rather than a tint, so a traffic spike that overlaps a fault window stays
    readable as both, and a reader never takes a spike for a fault.
    """
    seen: set[str] = set()
    for i, window in enumerate(windows):
        rate, base = float(window["rate"]), float(window["base_rate"])
        more = "more" if rate > base else "less"
        label = f"{more} traffic: {_number(rate)} calls/s (else {_number(base)}/s)"
        ax.axvspan(
            float(window["start"]),
            float(window["end"]),
            facecolor="none",
            edgecolor=_ARRIVAL_COLOUR,
            hatch="//",
            lw=0,
            zorder=0.5,
            label=label if label not in seen else "_nolegend_",
            gid=f"arrival-{i}",
        )
        seen.add(label)


def _finite_fault_ends(faults: Sequence[FaultWindow]) -> list[float]:
    return [float(end) for f in faults if (end := f.get("end")) is not None]


def _number(value: float) -> str:
    """Short, exact-looking numbers for labels: 0.997, 2.68, 1,350 (never 1.35e+03)."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _thousands(value: float, _pos: object = None) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:g}"


def _thousands_ticks(ax: Axes) -> None:
    """Y tick labels like 10,000 rather than 10000 (or 1e4)."""
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(_thousands))


def _legend_if_labelled(ax: Axes, **kwargs: Any) -> None:
    """A legend only when something is labelled (a run without retries has nothing to name)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kwargs)


def _check_metric(name: str) -> None:
    """A typo in a metric name fails before any drawing, naming the metrics there are."""
    names = metric_table.METRIC_NAMES
    if name not in names:
        raise ValueError(f"unknown metric {name!r}; allowed: {', '.join(names)}")


def _metric_ticks(axis: Any, about: metric_table.Metric) -> None:
    """An axis's ticks in the metric's own format: 95%, 1.5s, 2x, 10,000."""
    from matplotlib.ticker import FuncFormatter

    formats = {
        "percent": lambda v, _pos: f"{100 * v:.4g}%",  # shares are fractions: 0.333 is 33.3%
        "seconds": lambda v, _pos: f"{v:g}s",
        "ratio": lambda v, _pos: f"{v:g}x",
        "count": _thousands,
    }
    if about.format in formats:
        axis.set_major_formatter(FuncFormatter(formats[about.format]))
