"""The two sides of ``retrysim check``: the settings before and after a change.

Each side is a ``.env`` file, or for "before" the ``.env`` at a git revision of the current
repository (``git:REV``, read with ``git show REV:PATH``). Both sides are read from their files
alone: a ``RETRY__*`` variable exported in the process environment would otherwise apply to
both and hide the change under review (or apply to one only, in a CI job that sets it), so it
is ignored, and :func:`environment_variables` names it for the command to warn about.

A file that does not exist at ``REV`` (the change adds the ``.env``) is not an error: "before"
is then the documented defaults, and :attr:`Side.note` says so, for the report to show.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from retrysim.errors import BadInputError
from retrysim.retry.settings import (
    ENV_PREFIX,
    EnvFile,
    RetrySettings,
    SettingsError,
    load_settings,
    read_env_file,
    unknown_variables,
)

GIT_PREFIX = "git:"
#: How long one git command may take: reading one blob is instant, a hung git is a fault.
GIT_TIMEOUT = 60


class CheckInputError(BadInputError):
    """A side of the check cannot be read as given: one line naming the option and why."""


@dataclass(frozen=True)
class Side:
    """One side of the check: what it was read from, its ``RETRY__*`` lines and settings."""

    label: str  # "before" or "after"
    origin: str  # ".env.main", "git:3f2a1c0:.env", ...
    lines: Mapping[str, str]  # variable (upper case) -> value, the RETRY__* lines of the file
    settings: RetrySettings
    note: str = ""  # why the side is the defaults, when it is
    warnings: tuple[str, ...] = ()  # unparsable lines, variables that name no setting


def environment_variables() -> list[str]:
    """The ``RETRY__*`` variables set in this process's environment (which check ignores)."""
    return sorted(key for key in os.environ if key.upper().startswith(ENV_PREFIX))


def read_side(label: str, spec: str, option: str, *, must_exist: bool) -> Side:
    """The side the ``.env`` file ``spec`` holds (``git:REV`` is :func:`read_git_side`'s).

    ``must_exist``: a missing file is an error (it was named explicitly); otherwise the side
    is the defaults, with a note.
    """
    path = Path(spec)
    if not path.exists():
        if must_exist:
            raise CheckInputError(f"{option} {spec}: no such file")
        note = f"{spec} does not exist: {label} is the documented defaults"
        return Side(label, spec, {}, _settings(None, option, spec), note)
    return _side(label, spec, read_env_file_as(path, spec, option), option)


def read_git_side(label: str, revision: str, env: Path, option: str) -> Side:
    """The ``.env`` at ``env``'s place in its repository as of ``revision``.

    One line for each way it cannot be read: git missing, not a repository, an unknown
    revision, a path outside the repository. A file absent at ``revision`` gives the defaults,
    with a note.
    """
    spec = f"{option} {GIT_PREFIX}{revision}"
    if not revision.strip():
        raise CheckInputError(f"{spec}: give a revision after git:, e.g. git:origin/main")
    folder = env.parent.resolve()
    if not folder.is_dir():
        raise CheckInputError(f"{spec}: {env.parent}: no such folder")
    top = _git(["rev-parse", "--show-toplevel"], folder, spec)
    if top is None:
        raise CheckInputError(f"{spec}: {folder} is not inside a git repository")
    root = Path(top.decode("utf-8", "replace").strip())
    try:
        inside = (folder / env.name).relative_to(root.resolve()).as_posix()
    except ValueError:
        raise CheckInputError(f"{spec}: {env} is outside the repository at {root}") from None
    commit = _git(["rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"], root, spec)
    if commit is None:
        raise CheckInputError(f"{spec}: unknown revision {revision!r} in {root}")
    full = commit.decode().strip()
    short = full[:12]
    origin = f"{GIT_PREFIX}{revision}:{inside}"
    blob = _git(["show", f"{full}:{inside}"], root, spec)
    if blob is None:
        note = f"{inside} did not exist at {revision} ({short}): {label} is the documented defaults"
        return Side(label, origin, {}, _settings(None, option, origin), note)
    with tempfile.TemporaryDirectory(prefix="retrysim-check-") as scratch:
        copy = Path(scratch) / ".env"
        copy.write_bytes(blob)
        contents = read_env_file_as(copy, origin, option)
    return _side(label, origin, contents, option)


def read_env_file_as(path: Path, origin: str, option: str) -> EnvFile:
    """``path`` read as a ``.env`` file whose messages name ``origin`` (the option's value)."""
    try:
        contents = read_env_file(path)
    except SettingsError as error:
        raise CheckInputError(f"{option}: {str(error).replace(str(path), origin)}") from None
    return dataclasses.replace(contents, path=origin)


def _side(label: str, origin: str, contents: EnvFile, option: str) -> Side:
    lines = {
        key.upper(): value or ""
        for key, value in contents.values.items()
        if key.upper().startswith(ENV_PREFIX)
    }
    unknown = [v.message() for v in unknown_variables(contents) if v.origin == origin]
    warnings = (*contents.warnings(), *unknown)
    return Side(label, origin, lines, _settings(contents, option, origin), "", warnings)


def _settings(contents: EnvFile | None, option: str, origin: str) -> RetrySettings:
    try:
        return load_settings(contents, warn=False, environment=False)
    except SettingsError as error:
        message = str(error)
        prefix = f"{origin}: "
        raise CheckInputError(
            f"{option}: {message if message.startswith(prefix) else prefix + message}"
        ) from None


def _git(arguments: list[str], folder: Path, spec: str) -> bytes | None:
    """git's output, or None when it fails (the callers know what that means)."""
    try:
        done = subprocess.run(
            ["git", *arguments],
            cwd=folder,
            capture_output=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise CheckInputError(f"{spec}: git is not installed (it reads the revision)") from None
    except subprocess.TimeoutExpired:
        raise CheckInputError(f"{spec}: git did not answer in {GIT_TIMEOUT} s") from None
    return done.stdout if done.returncode == 0 else None


def settings_diff(before: Side, after: Side) -> list[tuple[str, str | None, str | None]]:
    """Each ``RETRY__*`` variable whose line differs: (name, before's value, after's), None
    where a side does not set it; sorted by name."""
    names = sorted(set(before.lines) | set(after.lines))
    return [
        (name, before.lines.get(name), after.lines.get(name))
        for name in names
        if before.lines.get(name) != after.lines.get(name)
    ]
