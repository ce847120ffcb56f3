"""Writing results: always to a temporary file in the target folder, then an atomic rename.

A reader (or a crash) never sees a half-written file: either the old file or the new one.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success rename it over ``target``.

    The folder must exist: a typo in a path is an error, not a new directory tree. Commands
    whose option names a folder (``--out``) create it themselves.
    """
    target = Path(target)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as error:  # name the file asked for, not the temporary one beside it
        raise type(error)(error.errno, error.strerror, str(target)) from None
    os.close(fd)
    os.chmod(tmp, _mode_for(target))  # mkstemp makes 0600; a result file is an ordinary file
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _mode_for(target: Path) -> int:
    """The replaced file's permissions, or what a plain ``open()`` would give under the umask."""
    try:
        return target.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_text(target: str | Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def json_safe(value: Any) -> Any:
    """NaN and infinities become null; numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps(document: Any) -> str:
    return json.dumps(json_safe(document), indent=2, allow_nan=False) + "\n"


def write_json(target: str | Path, document: Any) -> None:
    write_text(target, dumps(document))


def records_csv(
    records: np.ndarray,
    names: tuple[str, ...] | None = None,
    leading: dict[str, list[Any]] | None = None,
) -> str:
    """A record array as CSV; the ``error`` column is written as the error's name.

    ``leading``: more columns, written first (a call graph's ``tier``), one value per record.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    first = leading or {}
    fields = list(records.dtype.names or ())
    writer.writerow([*first, *fields])
    columns = [records[f].tolist() for f in fields]
    if names is not None and "error" in fields:
        i = fields.index("error")
        columns[i] = [names[c] for c in columns[i]]
    columns = [*first.values(), *columns]
    for row in zip(*columns, strict=True):
        writer.writerow(["" if isinstance(v, float) and math.isnan(v) else v for v in row])
    return out.getvalue()
