"""The base class of every bad-input error, so callers can tell bad input from a bug.

A scenario that does not validate, a ``RETRY__*`` variable out of range, a command-line option
that makes no sense, a run too large for this machine: each of these is the user's to fix, and
each derives from :class:`BadInputError`. Anything else escaping the library is a bug in
retrysim. The CLI relies on that split to say which one the user is looking at.

Standard library only: ``retrysim --help`` imports this, and must stay instant.
"""

from __future__ import annotations


class BadInputError(ValueError):
    """The input is wrong, and the message says where and what is allowed.

    A ``ValueError`` so that code which caught ``ValueError`` from retrysim still does.
    """


def not_utf8(data: bytes, error: UnicodeDecodeError) -> str:
    """Where ``data`` stops being UTF-8, as a user can find it in an editor: the byte, its
    offset and its line (``byte 0xff at offset 12, line 2``)."""
    line = data.count(b"\n", 0, error.start) + 1
    return f"byte 0x{data[error.start]:02x} at offset {error.start}, line {line}"
