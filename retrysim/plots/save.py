"""Writing figures to files, and the figures the CLI's ``--plot`` options save."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from retrysim.names import FIGURE_FORMATS
from retrysim.plots._common import _document, new_figure
from retrysim.plots.backoff import backoff_schedule
from retrysim.plots.compare import compare_metrics
from retrysim.plots.replicas import replica_timeline
from retrysim.plots.spread import jitter_spread
from retrysim.plots.tiers import tier_amplification
from retrysim.plots.timeline import herd_timeline

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from retrysim.results.document import ResultDocument
    from retrysim.retry.settings import RetrySettings
    from retrysim.runs.sweep import VariantResult
    from retrysim.sim.result import RunResult

#: File formats :func:`save_figure` writes, chosen by the file's extension (``retrysim.names``).
FORMATS = FIGURE_FORMATS


def save_figure(fig: Figure, path: str | Path) -> None:
    """Write ``fig`` to ``path`` atomically, in the format its extension names (png/svg/pdf).

    Readers never see a half-written image, and a failed render leaves the old file alone.
    Dates and SVG ids are pinned, so regenerating an unchanged figure gives identical bytes
    (figures in git only change when the picture does).
    """
    import matplotlib

    from retrysim.output import atomic_path

    target = Path(path)
    fmt = target.suffix.lower().removeprefix(".")
    if fmt not in FORMATS:
        raise ValueError(
            f"{target}: unsupported figure format {target.suffix or '(none)'!r}; "
            f"use one of: {', '.join('.' + f for f in FORMATS)}"
        )
    metadata: dict[str, Any] = {
        "png": {"Software": None},
        "svg": {"Date": None},
        "pdf": {"CreationDate": None, "ModDate": None},
    }[fmt]
    with matplotlib.rc_context({"svg.hashsalt": "retrysim"}), atomic_path(target) as tmp:
        fig.savefig(tmp, format=fmt, dpi=120, metadata=metadata)


def run_figure(doc: ResultDocument | RunResult) -> Figure:
    """What ``retrysim run --plot FILE`` draws: herd timeline above jitter spread, one run.

    A run of a call graph adds the amplification by tier below them, and a run with replicas
    the requests per second by replica (one panel per replicated tier, on the same time axis):
    the figures a reader of that run needs first. A run with neither draws what it always did.
    """
    document = _document(doc)
    tiers = bool(cast("Mapping[str, Any]", document).get("tiers"))
    rows = cast("Mapping[str, Any]", document).get("replicas") or []
    replicated = len({row.get("tier") for row in rows}) if _per_second(rows) else 0
    fig = new_figure(11, 8.5 + 4.0 * (tiers + replicated))
    top, bottom, *more = fig.subplots(2 + tiers + replicated, 1)
    herd_timeline(document, ax=top)
    jitter_spread(document, ax=bottom)
    timed = [top, bottom]
    if tiers:
        tier_amplification(document, ax=more.pop(0))
    if replicated:
        replica_timeline(doc, axes=more)  # a RunResult's faults name their replicas
        timed += more
    lo = top.get_xlim()[0]  # the timeline starts at 0; so do the retries
    hi = max(ax.get_xlim()[1] for ax in timed)
    for ax in timed:  # one time axis for every panel, so waves line up vertically
        ax.set_xlim(lo, hi)
    return fig


def _per_second(rows: Sequence[Mapping[str, Any]]) -> bool:
    """Whether replica rows carry their timeline (compare and sweep documents drop it)."""
    return bool(rows) and all("attempts_per_s" in row for row in rows)


def save_run_figure(doc: ResultDocument | RunResult, path: str | Path) -> None:
    """What ``retrysim run --plot FILE`` saves: :func:`run_figure`, to ``path``."""
    save_figure(run_figure(doc), path)


def save_compare_figure(
    variant_results: Sequence[VariantResult],
    path: str | Path,
    metrics: Sequence[str] | None = None,
) -> None:
    """What ``retrysim compare --plot FILE`` saves: :func:`compare_metrics` of the variants."""
    save_figure(compare_metrics(variant_results, metrics), path)


def settings_figure(
    settings: RetrySettings | None = None, profiles: str | Sequence[str] | None = None
) -> Figure:
    """The backoff schedule of all four operations, one panel each, profiles overlaid.

    What ``retrysim settings --plot FILE`` draws (and the README's picture, drawn by the same
    function): the operations are what a ``RETRY__*`` file configures, so one figure shows
    everything those settings mean; several profiles side by side in each panel show what
    switching ``RETRY__PROFILE`` would change. ``settings=None`` reads the process settings
    (``RETRY__*`` / ``.env``); ``profiles`` is one name or several (default: the configured
    profile; an unknown name is a ValueError).
    """
    from retrysim.retry.policy import build_policy
    from retrysim.retry.profiles import check_profile
    from retrysim.retry.settings import OPERATIONS

    names = [profiles] if isinstance(profiles, str) else list(profiles or [])
    chosen = [check_profile(name) for name in names] or None
    shown = names or [build_policy("worker", settings).profile]
    fig = new_figure(13, 8.5)
    axes = fig.subplots(2, 2).ravel()
    what = f"profile {shown[0]}" if len(shown) == 1 else f"profiles {', '.join(shown)}"
    fig.suptitle(f"Wait before each retry, per operation ({what})")
    for a, operation in zip(axes, OPERATIONS, strict=True):
        backoff_schedule(operation, chosen, settings, samples=1000, ax=a)
    return fig


def save_settings_figure(
    path: str | Path,
    settings: RetrySettings | None = None,
    profile: str | Sequence[str] | None = None,
) -> None:
    """What ``retrysim settings --plot FILE`` saves: :func:`settings_figure`, to ``path``."""
    save_figure(settings_figure(settings, profile), path)
