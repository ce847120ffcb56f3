"""Regenerate the figures the README shows, in docs/ (review them before committing).

    python scripts/make_docs_figures.py

Every figure is drawn by retrysim.plots from a real run of a bundled scenario with the
documented default settings (RETRY__* variables in the environment are ignored), so the
pictures cannot drift from what the library does. Files are written atomically and
byte-for-byte reproducibly: rerunning on an unchanged library leaves git with no diff.

:data:`COMMANDS` names, per figure, the retrysim command that draws that kind of figure; the
README quotes it beside the picture (tests/test_readme.py checks both), so a reader who runs
it gets the picture they were shown, not a different one.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from matplotlib.figure import Figure

import retrysim
from retrysim import plots
from retrysim.retry import RetrySettings

ROOT = Path(__file__).resolve().parent.parent
DEFAULTS = RetrySettings.defaults()  # the documented defaults, not this shell's RETRY__*
#: The backoff picture's profiles: the shipped one, the default, and two common alternatives.
SCHEDULE_PROFILES = ("bindu", "documented", "full_jitter", "decorrelated")

#: Per README picture, the command quoted beside it that draws that kind of figure: the
#: backoff figure exactly (with no RETRY__* set); for the two-run comparisons, one run's panel
#: from a result saved by `retrysim run thundering-herd --profile bindu --out out/bindu`.
COMMANDS: dict[str, str] = {
    "herd-timeline.png": "retrysim plot out/bindu --kind timeline",
    "jitter-spread.png": "retrysim plot out/bindu --kind spread",
    "backoff-schedule.png": "retrysim settings --profile "
    + ",".join(SCHEDULE_PROFILES)
    + " --plot backoff.png",
}


def herd_runs() -> dict[str, retrysim.RunResult]:
    """thundering-herd (10,000 workers) with the shipped profile and the documented one."""
    scenario = retrysim.load_scenario("thundering-herd")
    return {
        profile: retrysim.simulate(
            scenario.with_overrides({"policy.profile": profile}), settings=DEFAULTS
        )
        for profile in ("bindu", "documented")
    }


def herd_timeline_figure(runs: dict[str, retrysim.RunResult]) -> Figure:
    """The herd over time, bindu above documented, on one time axis."""
    fig = plots.new_figure(11, 8)
    axes = fig.subplots(len(runs), 1, sharex=True)
    for ax, run in zip(axes, runs.values(), strict=True):
        plots.herd_timeline(run, ax=ax)
        ax.label_outer()  # one time axis label, at the bottom
    return fig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="folder (default: docs/)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    runs = herd_runs()
    figures = {
        "herd-timeline.png": herd_timeline_figure(runs),
        "jitter-spread.png": plots.jitter_spread(runs),
        # exactly what `retrysim settings --profile ... --plot FILE` draws (COMMANDS)
        "backoff-schedule.png": plots.settings_figure(DEFAULTS, SCHEDULE_PROFILES),
    }
    for name, figure in figures.items():
        path = args.out / name
        plots.save_figure(figure, path)
        print(f"wrote {path}")
    print(f"done in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
