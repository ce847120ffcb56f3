"""Writing ``RETRY__*`` lines into a user's ``.env`` file: merged as the user wrote it, atomically.

``retrysim tune --write-env`` and the lab's ``e`` key must not cost the user a byte of what
they had. The file is cut into bindings by python-dotenv's own parser, the one retrysim and
pydantic-settings read it with, so a line break is what that reader calls one (``\\n``,
``\\r\\n`` or a lone ``\\r``; never U+2028, U+0085 or a form feed, which ``str.splitlines``
would cut at) and a ``RETRY__X=...`` text inside a multi-line quoted value is part of that
value, not a variable. Then:

- every binding the merge does not change keeps every byte (its line ending, quoting, spacing,
  the blank lines and comments before it; a byte-order mark too);
- a variable the file sets already (matched case-insensitively, as the settings read names)
  gets its new value in place, on each line that sets it, so no stale duplicate is left to
  mislead: the ``export`` prefix, the name as written, the spacing around ``=``, a comment
  after the value and the line ending stay; only the value's text is replaced;
- new variables are appended under one comment saying where they came from, each line ended
  the way the file ends most of its lines (``\\n`` for a new or one-line file);
- values are written bare when they are plain (numbers, names) and single-quoted otherwise;
- before anything is written, the merged text is read back with the same parser (as is, and
  with the universal newlines a plain ``open()`` applies): every other variable must read as
  it did and each set one as its new value, or nothing is written.

Where the file lives is :func:`retrysim.output.check_target`'s business: a symlink is written
through atomically, a hard-linked, read-only or dangling file is refused, in one line naming
the file. :func:`check_env_target` runs all of that, and the UTF-8 and parse checks, before a
command spends any time (``tune`` checks its ``--write-env`` before tuning).
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from retrysim import output
from retrysim.errors import BadInputError, not_utf8

#: A binding's name part, as python-dotenv reads it: leading whitespace (blank lines too), an
#: optional ``export``, the name (bare or single-quoted), spaces, then ``=`` and its spaces.
_HEAD = re.compile(r"(\s*(?:export[^\S\r\n]+)?(?:'[^']+'|[^=#\s]+)[^\S\r\n]*)(=[^\S\r\n]*)?")
_LINE_END = re.compile(r"(?:\r\n|\n|\r)\Z")
_QUOTED = {
    "'": re.compile(r"'(?:\\.|[^'\\])*'", re.DOTALL),
    '"': re.compile(r'"(?:\\.|[^"\\])*"', re.DOTALL),
}
_COMMENT_START = re.compile(r"\s+#")
_BARE = re.compile(r"[A-Za-z0-9_.,:/+@%-]+")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class EnvFileError(BadInputError):
    """The .env file cannot be merged as asked (nothing was written)."""


def env_value(value: Any) -> str:
    """A setting's value as a ``.env`` line writes it: ``true``/``false``, floats in ``%.6g``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def check_env_target(path: Path, option: str = "--write-env") -> str:
    """The text of the ``.env`` at ``path`` ("" if it does not exist yet), after every check a
    merge needs: a writable target (:func:`retrysim.output.check_target`), UTF-8, and text the
    parser can cut into bindings. An :class:`EnvFileError` or
    :class:`~retrysim.output.OutputError` names the file in one line otherwise."""
    real = output.check_target(path, option)
    if not real.exists():
        return ""
    data = real.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise EnvFileError(
            f"{option} {path}: not UTF-8 text ({not_utf8(data, error)}); nothing was written"
        ) from None
    _bindings(text, f"{option} {path}")
    return text


def merge_env(
    path: Path, values: dict[str, str], note: str = "", option: str = "--write-env"
) -> list[str]:
    """Set each ``NAME=value`` in the file at ``path`` (created if missing); return what changed.

    The returned lines say, per variable, ``NAME: old -> new`` or ``NAME: added (new)``.
    """
    text = check_env_target(path, option)
    merged, changes = merge_text(text, values, note, where=f"{option} {path}")
    output.write_text(path, merged, option)
    return changes


def merge_text(
    text: str, values: dict[str, str], note: str = "", where: str = ".env"
) -> tuple[str, list[str]]:
    """``text`` with ``values`` set (see the module's rules), and what changed; pure.

    ``where`` names the file in an :class:`EnvFileError` (the merge could not keep how the
    other variables read).
    """
    for name, value in values.items():  # retrysim's own names and values: a bug if not plain
        if not _NAME.fullmatch(name) or "${" in value or "\r" in value or "\n" in value:
            raise ValueError(f"cannot write {name}={value!r} so that every reader reads it back")
    wanted = {name.lower(): name for name in values}
    lead, bindings = _bindings(text, where)
    parts = [lead]
    seen: dict[str, str] = {}
    for key, old, original in bindings:
        found = wanted.get(key.lower()) if key is not None else None
        if found is None:
            parts.append(original)
            continue
        seen.setdefault(found, "(no value)" if old is None else old or "(empty)")
        parts.append(_rewrite(original, _quote(values[found])))
    merged = "".join(parts)
    added = [name for name in values if name not in seen]
    if added:
        merged += _appended(merged, added, values, note, _line_ending(text))
    _check_reads(text, merged, values, where)
    _check_lines(text, merged, wanted, where)
    changes = [f"{name}: {seen[name]} -> {values[name]}" for name in values if name in seen]
    return merged, changes + [f"{name}: added ({values[name]})" for name in added]


Binding = tuple[str | None, str | None, str]


def _bindings(text: str, where: str) -> tuple[str, list[Binding]]:
    """What the parser reads ``text`` as: (key or None, value or None, its exact text) per
    binding, after ``lead`` (a byte-order mark the parser skipped, or "")."""
    from dotenv.parser import parse_stream

    bindings = [(b.key, b.value, b.original.string) for b in parse_stream(io.StringIO(text))]
    body = "".join(original for _, _, original in bindings)
    lead = text[: len(text) - len(body)]
    if not text.endswith(body) or lead not in ("", "\ufeff"):  # a parser that dropped text
        raise EnvFileError(f"{where}: cannot be read back byte for byte; nothing was written")
    return lead, bindings


def _rewrite(original: str, value: str) -> str:
    """``original`` (one binding's text) with its value's text replaced by ``value``."""
    head = _HEAD.match(original)
    if head is None:  # the parser found a key, so this cannot happen; refuse rather than guess
        raise EnvFileError(f"cannot find the value in {original!r}")
    ending = _LINE_END.search(original)
    end = ending.start() if ending else len(original)
    rest, line_end = original[head.end() : end], original[end:]
    equals = head.group(2)
    if equals is None:  # NAME alone on its line: give it a value
        return head.group(1) + "=" + value + _spaced(rest) + line_end
    quoted = _QUOTED.get(rest[:1])
    if quoted is not None and (match := quoted.match(rest)):
        tail = rest[match.end() :]
    elif len(equals) > 1 and rest.startswith("#"):  # ``NAME= # comment``: an empty value
        tail = " " + rest
    else:
        comment = _COMMENT_START.search(rest)
        bare = rest[: comment.start() if comment else len(rest)].rstrip()
        tail = rest[len(bare) :]
    return head.group(0) + value + _spaced(tail) + line_end


def _spaced(tail: str) -> str:
    """A comment right after a new value needs a space before its ``#`` to stay a comment."""
    return " " + tail if tail.startswith("#") else tail


def _quote(value: str) -> str:
    """``value`` as the parser reads it back exactly: bare when plain, else single-quoted."""
    if _BARE.fullmatch(value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _line_ending(text: str) -> str:
    """The line ending ``text`` uses most (``\\n`` on a tie or when it has none)."""
    crlf = text.count("\r\n")
    counts = {"\n": text.count("\n") - crlf, "\r\n": crlf, "\r": text.count("\r") - crlf}
    return max(counts, key=lambda ending: counts[ending])


def _appended(merged: str, added: list[str], values: dict[str, str], note: str, ending: str) -> str:
    """The lines to add at the end of ``merged``: a blank line, the note, the new variables."""
    block = ""
    if merged and not merged.endswith(("\n", "\r")):
        block += ending
    last = re.split(r"\r\n|\r|\n", merged + block)[-2] if merged else ""
    if last.strip():
        block += ending
    if note:
        block += "# " + re.sub(r"[\r\n]+", " ", note) + ending
    return block + "".join(f"{name}={_quote(values[name])}{ending}" for name in added)


def _reads(text: str) -> dict[str, str | None]:
    """The variables ``text`` sets, as read (the last of duplicates; no ``${...}`` expansion)."""
    from dotenv.parser import parse_stream

    return {b.key: b.value for b in parse_stream(io.StringIO(text)) if b.key is not None}


def _check_reads(before: str, after: str, values: dict[str, str], where: str) -> None:
    """EnvFileError unless ``after`` reads as ``before`` but for ``values``, newly set, both as
    the text is and as a plain ``open()`` reads it (``\\r\\n`` and ``\\r`` become ``\\n``)."""
    wanted = {name.lower(): value for name, value in values.items()}
    for old_text, new_text in ((before, after), (_universal(before), _universal(after))):
        old, new = _reads(old_text), _reads(new_text)
        kept = {k: v for k, v in old.items() if k.lower() not in wanted}
        now = {k: v for k, v in new.items() if k.lower() not in wanted}
        found = {k.lower() for k in new}
        set_right = wanted.keys() <= found and all(
            v == wanted[k.lower()] for k, v in new.items() if k.lower() in wanted
        )
        if kept != now or not set_right:
            raise EnvFileError(
                f"{where}: the merged file would not read as intended (an unclosed quote?); "
                "nothing was written"
            )


def _check_lines(before: str, after: str, wanted: dict[str, str], where: str) -> None:
    """EnvFileError unless every line of ``before`` the merge left alone still reads as a line
    of its own in ``after``. A line python-dotenv cannot read (a lone quote) can swallow a
    quoted value written after it: the variables would read the same, but the file would no
    longer be the user's lines with ours changed."""
    from dotenv.parser import parse_stream

    old = list(parse_stream(io.StringIO(before)))
    new = list(parse_stream(io.StringIO(after)))
    for index, was in enumerate(old[:-1]):  # the last may run on into the lines appended
        now = new[index] if index < len(new) else None
        rewritten = was.key is not None and was.key.lower() in wanted
        if now is None or (not rewritten and now.original.string != was.original.string):
            raise EnvFileError(
                f"{where}: line {was.original.line} is not one python-dotenv can read (an "
                "unclosed quote?), and a value written after it would be read into it; fix "
                "that line first; nothing was written"
            )


def _universal(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")
