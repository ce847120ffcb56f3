"""Writing a page: rendered in full first, then put in place atomically, so a failure while
drawing never leaves a half-written report (or a damaged earlier one) at the user's path."""

from __future__ import annotations

from pathlib import Path

from retrysim.share.page import Page


def write_page(page: Page, path: Path, option: str = "--html") -> None:
    from retrysim import output
    from retrysim.share.html import render_page

    output.write_text(path, render_page(page), option)
