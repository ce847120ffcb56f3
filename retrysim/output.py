"""Writing files: always to a temporary file beside the real target, then an atomic rename.

A reader (or a crash) never sees a half-written file: either the old file or the new one.
Every file retrysim writes goes through :func:`atomic_path`, and every command checks the
files it will write with :func:`check_target` before it simulates, so a target that cannot be
written costs neither the run nor the report. The rules, once:

- a symlink is written through: the temporary file goes beside the file it points to and is
  renamed over that file, so the link stays a link (a dangling symlink or a loop is refused:
  writing would create a file somewhere the user did not name);
- a file with more than one hard link is refused: a rename would split the links (the other
  names keep the old text) and writing in place would leave every name half-written after a
  crash or a full disk, which is the damage the rename exists to prevent;
- a read-only file (no write permission bit, or not writable by this user) is refused, even
  for root, who could replace it: read-only is the owner saying "leave it";
- the new file gets the old one's permission bits (a new file gets what ``open()`` would give);
- errors name the path the user gave, never the hidden temporary file.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrysim.errors import BadInputError

if TYPE_CHECKING:  # numpy only when writing results: checking a path stays light (--help)
    import numpy as np


class OutputError(BadInputError):
    """A file retrysim was asked to write cannot be written as asked (nothing was written)."""


def check_target(target: str | Path, option: str = "") -> Path:
    """The file to write for ``target`` (itself, or what its symlink points to); OutputError
    unless it can be replaced atomically without breaking what the user has.

    ``option`` (``--plot``) starts the one-line message, followed by the user's path. The
    folder must exist: a typo in a path is an error, not a new directory tree; commands whose
    option names a folder (``--out``) create it themselves.
    """
    target = Path(target)
    label = f"{option} {target}" if option else str(target)
    real = Path(os.path.realpath(target)) if target.is_symlink() else target
    try:
        info = os.stat(real)
    except FileNotFoundError:
        if real != target:
            raise OutputError(
                f"{label}: a symlink to {real}, which does not exist; nothing was written"
            ) from None
        info = None
    except OSError as error:  # a symlink loop, a name too long, a folder we may not search
        raise OutputError(f"{label}: {error.strerror or error}; nothing was written") from None
    if info is not None:
        _check_existing(label, real, info)
    folder = real.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "no such folder"
        raise OutputError(f"{label}: {folder}: {what}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{label}: {folder}: not writable")
    return real


def _check_existing(label: str, real: Path, info: os.stat_result) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise OutputError(f"{label}: is a folder; give a file name")
    if not stat.S_ISREG(info.st_mode):
        raise OutputError(f"{label}: not a regular file; nothing was written")
    if not info.st_mode & 0o222 or not os.access(real, os.W_OK):
        raise OutputError(
            f"{label}: read-only (mode {info.st_mode & 0o777:o}); nothing was written "
            "(make it writable or choose another file)"
        )
    if info.st_nlink > 1:
        raise OutputError(
            f"{label}: has {info.st_nlink} hard links; replacing it would split them and "
            "writing in place could leave it half-written, so nothing was written (write to "
            "another file and copy it over)"
        )


@contextlib.contextmanager
def atomic_path(target: str | Path, option: str = "") -> Iterator[Path]:
    """Yield a temporary path beside the file ``target`` names; on success rename it over.

    :func:`check_target` decides what that file is and refuses what must not be replaced
    (``option`` names the flag in its message). The temporary file is flushed to disk before
    the rename, so a crash after it leaves the new file whole.
    """
    target = Path(target)
    real = check_target(target, option)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{real.name}.", suffix=".tmp", dir=real.parent)
    except OSError as error:  # name the file asked for, not the temporary one beside it
        raise _naming(error, target) from None
    os.close(fd)
    tmp = Path(name)
    try:
        _take_over(tmp, real)
        yield tmp
        _flush(tmp)
        os.replace(tmp, real)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(error, OSError) and name in (error.filename, error.filename2):
            raise _naming(error, target) from None
        raise


def _naming(error: OSError, target: Path) -> OSError:
    """``error`` again, about ``target`` (the user's path) instead of a temporary file."""
    return type(error)(error.errno, error.strerror or str(error), str(target))


def _flush(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _take_over(tmp: Path, real: Path) -> None:
    """Give ``tmp`` the replaced file's permission bits and, where allowed, its owner (root
    rewriting a user's file must not leave it root's); a new file gets what ``open()`` would.

    mkstemp makes 0600. Only the 0o777 bits are copied: a set-uid bit on a file whose owner
    could not be kept would hand the writer's identity to whoever runs it.
    """
    try:
        info = real.stat()
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        return
    mine = os.stat(tmp)
    if (mine.st_uid, mine.st_gid) != (info.st_uid, info.st_gid):
        with contextlib.suppress(PermissionError):
            os.chown(tmp, info.st_uid, info.st_gid)
    os.chmod(tmp, info.st_mode & 0o777)


def write_bytes(target: str | Path, data: bytes, option: str = "") -> None:
    """Write ``data`` to ``target`` atomically, exactly as given."""
    with atomic_path(target, option) as tmp:
        tmp.write_bytes(data)


def write_text(target: str | Path, text: str, option: str = "") -> None:
    """Write ``text`` to ``target`` atomically as UTF-8, its line endings as they are."""
    write_bytes(target, text.encode("utf-8"), option)


def json_safe(value: Any) -> Any:
    """NaN and infinities become null; numpy scalars become Python numbers."""
    import numpy as np

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
