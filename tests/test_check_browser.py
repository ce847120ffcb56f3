"""``retrysim check --html`` in a real browser: the done-when page, opened in headless Chromium.

The page is made by the real command on the issue's case (a change that raises the load
beyond its gate): it must render with no console error and no request but its own, say the
verdict, the broken gate's figures and both sides' ``RETRY__*`` lines as text, fit a phone's
width, and not be blank. The browser is Debian's chromium (``tests/conftest.py``: ``browser``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from retrysim.cli.app import app
from tests import browser as chrome

CONFIG = """\
scenarios = ["thundering-herd"]
seeds = 3

[gates]
amplification = "<= before * 1.1"

[scenario.thundering-herd]
set = { duration = 20, "clients.count" = 1000 }
"""
PHONE = 375


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("check")
    (folder / "retrysim.toml").write_text(CONFIG)
    (folder / ".env.main").write_text("RETRY__SCHEDULER_MAX_ATTEMPTS=3\n")
    (folder / ".env").write_text("RETRY__SCHEDULER_MAX_ATTEMPTS=10\n")
    (folder / "out").mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        result = CliRunner().invoke(
            app,
            [
                *("check", "--workers", "1", "-q", "--before", ".env.main", "--after", ".env"),
                *("--junit", "out/junit.xml", "--html", "out/check.html"),
            ],
        )
    assert result.exit_code == 1, result.output
    return folder / "out" / "check.html"


def test_the_check_page_renders_says_what_broke_and_makes_no_request(
    browser: Any, page: Path
) -> None:
    chrome.console_errors(browser)
    chrome.requests_made(browser)
    url = chrome.open_file(browser, page)
    assert chrome.console_errors(browser) == []
    assert [request for request in chrome.requests_made(browser) if request != url] == []
    text = chrome.body_text(browser)
    assert "Fail: thundering-herd: gate(s) broken: amplification <= before * 1.1" in text
    assert "amplification = 6.00x, limit 3.21x (<= before * 1.1, before 2.92x): broken" in text
    assert "RETRY__SCHEDULER_MAX_ATTEMPTS=3" in text
    assert "RETRY__SCHEDULER_MAX_ATTEMPTS=10" in text
    assert "retrysim check --before .env.main --after .env" in text
    boxes = chrome.figure_boxes(browser)  # before against after: the bars and the CDFs
    assert len(boxes) == 2
    assert all(box["width"] > 100 and box["height"] > 100 for box in boxes)


def test_the_check_page_fits_a_phone_and_is_not_blank(browser: Any, page: Path) -> None:
    chrome.open_file(browser, page)
    try:
        chrome.set_width(browser, PHONE)
        assert chrome.js(browser, "return document.documentElement.scrollWidth;") <= PHONE
    finally:
        chrome.cdp(browser, "Emulation.clearDeviceMetricsOverride")
    image = chrome.pixels(chrome.full_page_png(browser))
    assert chrome.inked_share(image) > 0.02
    assert chrome.distinct_colours(image) > 50
