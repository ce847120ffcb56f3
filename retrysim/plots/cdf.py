"""Per-call latency CDFs, one line per variant."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from retrysim.plots import palette
from retrysim.plots._common import (
    ResultLike,
    _as_labelled,
    _colour,
    _document,
    _figure_and_axes,
    _is_variant_result,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from retrysim.results.document import ResultDocument
    from retrysim.runs.sweep import VariantResult
    from retrysim.sim.result import RunResult

#: What :func:`latency_cdf` can draw one line for (a VariantResult averages its seeds).
CdfSource: TypeAlias = "ResultDocument | RunResult | VariantResult"


def _quantiles(source: Any) -> np.ndarray:
    """101 latency quantiles; a VariantResult averages its seeds' quantile functions."""
    if _is_variant_result(source):
        rows = [d["latency_quantiles"] for d in source.documents if d.get("latency_quantiles")]
        return np.mean(np.asarray(rows, dtype=np.float64), axis=0) if rows else np.asarray([])
    return np.asarray(_document(source).get("latency_quantiles") or [], dtype=np.float64)


def latency_cdf(
    results: Mapping[str, CdfSource] | Sequence[VariantResult] | ResultLike,
    log_x: bool = False,
    ax: Axes | None = None,
) -> Figure:
    """Per-call latency CDFs, one line per variant, from the documents' 101 quantiles.

    Means and p99s hide the shape: a CDF shows which share of calls finished within any time,
    so "most calls are fast but a tail waits through three backoffs" is visible as steps.
    ``results`` is ``{label: document | RunResult | VariantResult}``, a list of VariantResults
    (from :func:`retrysim.compare`; seeds are combined by averaging their quantile functions),
    or one result. ``log_x`` spreads out latencies spanning milliseconds to tens of seconds.
    """
    if isinstance(results, Sequence) and not isinstance(results, str | Mapping):
        if not all(_is_variant_result(vr) for vr in results):
            raise TypeError("a list passed to latency_cdf must hold VariantResults; label others")
        labelled: dict[str, Any] = {vr.variant.label: vr for vr in results}
    else:
        labelled = _as_labelled(results)
    fig, ax = _figure_and_axes(ax, 8, 4.8)
    share = np.arange(101) / 100.0
    drawn = 0
    for i, (label, source) in enumerate(labelled.items()):
        q = _quantiles(source)
        if not len(q):
            continue
        ax.plot(
            q,
            share,
            color=_colour(label, i),
            ls=palette.line_style(i),  # dashed once the colours start over
            lw=1.8,
            label=label,
            gid=f"cdf-{label}",
        )
        drawn += 1
    if not drawn:
        ax.text(0.5, 0.5, "no finished calls", transform=ax.transAxes, ha="center")
    if log_x:
        ax.set_xscale("log")
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("call latency (s): first attempt to success or giving up")
    ax.set_ylabel("share of calls finished within")
    ax.set_title("Per-call latency CDF")
    ax.grid(alpha=0.3, which="both" if log_x else "major")
    if drawn:
        ax.legend(loc="lower right", fontsize="small")
    return fig
