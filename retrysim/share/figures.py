"""A matplotlib figure as SVG markup to put inline in a shared page.

Text is drawn as paths (``svg.fonttype = path``), so a figure needs no font on the reader's
machine, and the SVG's comments (where matplotlib repeats each text) and metadata are dropped:
user text reaches the page only as escaped text in the figure's ``<title>`` and ``aria-label``. The
fixed size is taken off (the page scales the figure to its column by the ``viewBox``), and
every id is prefixed with the figure's own key, so two figures on one page never share an id
(a clip path of one would otherwise cut the other). The hash salt and the absent date make the
same figure give the same bytes on every run.
"""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_PROLOGUE = re.compile(r"^.*?(?=<svg\b)", re.DOTALL)
_COMMENT = re.compile(r"<!--.*?-->|<metadata>.*?</metadata>", re.DOTALL)
_ROOT = re.compile(r"<svg\b[^>]*>")
_SIZE = re.compile(r'\s(?:width|height)="[^"]*"')
_ID = re.compile(r'\bid="([^"]+)"')


def svg_markup(figure: Figure, key: str, alt: str) -> str:
    """``figure`` as an ``<svg>`` element: ids prefixed with ``key`` (a short name unique on
    the page), labelled ``alt`` for assistive technology."""
    from markupsafe import escape
    from matplotlib import rc_context

    buffer = io.StringIO()
    with rc_context({"svg.fonttype": "path", "svg.hashsalt": "retrysim"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = _COMMENT.sub("", _PROLOGUE.sub("", buffer.getvalue(), count=1))
    text = _prefixed(text, re.sub(r"[^A-Za-z0-9_-]", "-", key))
    root = _ROOT.search(text)
    if root is None:  # pragma: no cover - matplotlib always writes one
        raise ValueError("matplotlib wrote no <svg> element")
    label = escape(alt)
    opening = _SIZE.sub("", root.group(0))[:-1] + f' role="img" aria-label="{label}">'
    return (text[: root.start()] + opening + f"<title>{label}</title>" + text[root.end() :]).strip()


def _prefixed(text: str, key: str) -> str:
    """Every id and every reference to it (``#id`` in ``href`` and ``url()``) made unique."""
    for name in sorted(set(_ID.findall(text)), key=len, reverse=True):
        new = f"{key}-{name}"
        text = text.replace(f'id="{name}"', f'id="{new}"')
        text = text.replace(f'href="#{name}"', f'href="#{new}"')
        text = text.replace(f"url(#{name})", f"url(#{new})")
    return text
