"""The backoff schedule: sampled waits before each retry, per profile, as box plots."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from retrysim.plots import palette
from retrysim.plots._common import _colour, _figure_and_axes
from retrysim.sim.wait_samples import sample_waits

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from retrysim.retry.settings import Operation, RetrySettings


def backoff_schedule(
    operation: Operation,
    profiles: Sequence[str] | None = None,
    settings: RetrySettings | None = None,
    samples: int = 2000,
    seed: int = 0,
    max_retries: int | None = 10,
    ax: Axes | None = None,
) -> Figure:
    """Per profile, the distribution of the wait before each retry n, as box plots.

    Formulas like ``U(min_wait, clamp(2^(n-1), ...))`` are easy to misread; sampled waits are
    not. Boxes span the middle half, whiskers the full sampled range, so a profile whose first
    wait is a single value (bindu: U(1, 1)) shows as a flat line: every client waits the same.
    ``profiles`` defaults to the settings' profile; ``max_retries`` caps long schedules.
    """
    from matplotlib.patches import Patch

    from retrysim.retry.policy import build_policy

    fig, ax = _figure_and_axes(ax, 9, 4.5)
    names: list[str] = list(profiles) if profiles else [build_policy(operation, settings).profile]
    handles = []
    most = 0
    width = 0.8 / len(names)
    for k, name in enumerate(names):
        policy = build_policy(operation, settings, profile=name)
        waits = sample_waits(operation, name, settings, samples, seed, max_retries)
        n_retries = waits.shape[1]
        most = max(most, n_retries)
        colour = _colour(name, k)
        if n_retries:
            positions = np.arange(1, n_retries + 1) + (k - (len(names) - 1) / 2) * width
            _boxes(ax, waits, positions, width * 0.85, colour, name)
        label = (
            f"{name} ({policy.max_attempts} attempts, {policy.min_wait:g}-{policy.max_wait:g} s)"
        )
        if not n_retries:
            label += ": no retries"
        handles.append(Patch(facecolor=colour, alpha=0.75, label=label))
    ax.set_xticks(range(1, most + 1))
    ax.set_xlim(0.4, most + 0.6)
    ax.set_ylim(bottom=0.0)
    ax.set_xlabel("retry n (the wait before the n-th retry)")
    ax.set_ylabel("wait (s)")
    ax.set_title(f"Backoff schedule: {operation} ({samples:,} sampled calls)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(handles=handles, loc="upper left", fontsize="small")
    return fig


def _boxes(
    ax: Axes, waits: np.ndarray, positions: np.ndarray, width: float, colour: str, name: str
) -> None:
    """Box (quartiles), whisker (full sampled range) and median per column of ``waits``.

    Drawn from primitives rather than ``Axes.boxplot``, which reads every rcParam and thereby
    imports pyplot when no backend was chosen yet: this module never touches pyplot.
    """
    from matplotlib.patches import Rectangle

    q = np.percentile(waits, [0, 25, 50, 75, 100], axis=0)
    half = width / 2
    ax.vlines(positions, q[0], q[4], color=colour, lw=1.3, gid=f"range-{name}")
    ax.hlines(q[[0, 4]].ravel(), np.tile(positions - half / 2, 2), np.tile(positions + half / 2, 2),
              color=colour, lw=1.3)  # fmt: skip
    for x, lo, hi in zip(positions, q[1], q[3], strict=True):
        ax.add_patch(
            Rectangle(
                (x - half, lo), width, hi - lo, facecolor=colour, edgecolor=colour, alpha=0.75,
                gid=f"box-{name}",
            )
        )  # fmt: skip
    flat = q[3] - q[1] <= 1e-9 * np.maximum(1.0, q[2])
    if flat.any():  # every sample the same: a thick bar in the profile's colour, not a hairline
        ax.hlines(q[2][flat], positions[flat] - half, positions[flat] + half, color=colour, lw=6)
    ax.hlines(
        q[2], positions - half, positions + half, color=palette.BLACK, lw=1.5, gid=f"median-{name}"
    )
