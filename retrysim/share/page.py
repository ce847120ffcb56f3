"""The shape of a shared report: what a page holds, independent of how it is drawn.

Builders (one per command) fill a :class:`Page` from a result; :mod:`retrysim.share.html`
draws it. Keeping the two apart means a builder never writes markup (so it cannot forget to
escape user text) and the page can be checked as data in tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

Tone: TypeAlias = Literal["plain", "good", "warn", "bad"]


@dataclass(frozen=True)
class Paragraph:
    """A line or two of prose; ``tone`` colours a verdict or a warning (and is said in words
    too, never by colour alone)."""

    text: str
    tone: Tone = "plain"


@dataclass(frozen=True)
class Table:
    """A table as text cells. ``numeric`` marks the columns aligned right (figures). With no
    ``headers`` (a report's label/value/note table) the table has no header row; each row's
    first cell still heads its row."""

    caption: str
    headers: Sequence[str]
    rows: Sequence[Sequence[str]]
    numeric: Sequence[bool] = ()


@dataclass(frozen=True)
class Figure:
    """An inline SVG figure. ``alt`` is its text alternative: the key numbers it shows, said
    in words, for a screen reader and for whoever cannot see the colours."""

    svg: str
    alt: str
    caption: str


@dataclass(frozen=True)
class Code:
    """Lines to copy as they are: ``RETRY__*`` settings, a ``--set`` command, a rerun."""

    lines: Sequence[str]
    label: str = ""


@dataclass(frozen=True)
class Facts:
    """Name, value and where the value came from (a setting's source), as a small table."""

    caption: str
    items: Sequence[tuple[str, str, str]]


@dataclass(frozen=True)
class Heading:
    """A heading inside a section (an ``<h3>``): one diagnosis, one group of tables, so a
    screen reader's list of headings walks the page's outline."""

    text: str


Block: TypeAlias = Paragraph | Table | Figure | Code | Facts | Heading


@dataclass(frozen=True)
class Section:
    """A titled part of the page (an ``<h2>``); ``blocks`` in reading order."""

    heading: str
    blocks: Sequence[Block]


@dataclass(frozen=True)
class Reproduce:
    """How to get the same report again: the command, the seed(s) and retrysim's version."""

    command: str
    seed: str
    version: str
    #: What running it again gives, when not the same figures (a real run's timing varies).
    note: str = ""


@dataclass(frozen=True)
class Page:
    """One report: a title (the command and scenario), the verdict first, then sections."""

    title: str
    verdict: Paragraph
    sections: Sequence[Section]
    reproduce: Reproduce
    subtitle: str = ""
    notes: Sequence[str] = field(default_factory=tuple)
