"""Output paths (``--out DIR``, ``--plot FILE``) checked before a run, not after it.

A simulation can take seconds to minutes; a typo in where to put its results must not cost
that time, nor the finished report. Commands call these before they simulate. A file target
gets :func:`retrysim.output.check_target`'s rules (symlinks written through, dangling ones,
read-only and hard-linked files refused, one line naming the user's path); so does each file
an existing ``--out`` folder already holds under a name the command will write.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from retrysim.cli.exits import UsageError
from retrysim.names import FIGURE_FORMATS
from retrysim.output import check_target

#: Extensions a figure path may end in: the formats retrysim.plots.save_figure writes, taken from
#: retrysim.names so checking a path does not import matplotlib.
FORMATS = tuple(f".{fmt}" for fmt in FIGURE_FORMATS)


def check_figure_path(path: Path, option: str) -> None:
    """A UsageError unless ``path`` names a figure file that can be written where it points.

    The extension picks the format; the folder must exist already (figures are written
    atomically beside their target, so nothing creates it on the way).
    """
    if path.suffix.lower() not in FORMATS:
        allowed = f"{', '.join(FORMATS[:-1])} or {FORMATS[-1]}"
        raise UsageError(f"{option} {path}: the file must end in {allowed}")
    check_target(path, option)


def check_html_path(path: Path | None, option: str = "--html") -> None:
    """A UsageError unless ``path`` (when given) names an .html file that can be written where
    it points: checked before the run, so a typo costs no run."""
    if path is None:
        return
    if path.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"{option} {path}: the file must end in .html or .htm")
    check_target(path, option)


def check_out_dir(path: Path, option: str = "--out", files: Iterable[str] = ()) -> None:
    """A UsageError unless ``path`` is a folder, or one that can be created, and is writable;
    and each of ``files`` already in it one :func:`check_target` accepts."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path}: exists and is not a folder")
    for name in files:
        if os.path.lexists(path / name):
            check_target(path / name, option)
    existing = path
    while not existing.exists():
        if existing.is_symlink():  # mkdir would fail on it after the run
            raise UsageError(
                f"{option} {path}: {existing} is a symlink to "
                f"{os.path.realpath(existing)}, which does not exist"
            )
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{option} {path}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: {existing}: not writable")
