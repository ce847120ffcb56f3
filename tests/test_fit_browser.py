"""``retrysim fit --html`` in a real browser: the page of a fit of a log simulated from
``redis-blip``, opened in headless Chromium (``tests/conftest.py``: ``browser``). It must
render with no console error and no request but its own, say the verdict, the chosen family
and the window found as text, draw its four figures at a real size, fit a phone's width and
not be blank.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from retrysim.cli.app import app
from retrysim.model.library import load_scenario
from tests import browser as chrome
from tests.fit_data import saved_run

PHONE = 375


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = saved_run(load_scenario("redis-blip"), tmp_path_factory.mktemp("fit"))
    target = folder / "fit.html"
    result = CliRunner().invoke(
        app,
        [
            "fit",
            str(folder / "attempts.csv"),
            "--out",
            str(folder / "fitted.toml"),
            "-q",
            "--seeds",
            "2",
            "--html",
            str(target),
        ],
    )
    assert result.exit_code == 0, result.output
    return target


def test_the_fit_page_renders_says_what_was_fitted_and_makes_no_request(
    browser: Any, page: Path
) -> None:
    chrome.console_errors(browser)
    chrome.requests_made(browser)
    url = chrome.open_file(browser, page)
    assert chrome.console_errors(browser) == []
    assert [request for request in chrome.requests_made(browser) if request != url] == []
    text = chrome.body_text(browser)
    assert "values fitted" in text and "held-out check:" in text
    assert "lognormal chosen on" in text
    assert "ConnectionResetError" in text
    assert 'dist = "lognormal"' in text  # the scenario written, as text
    boxes = chrome.figure_boxes(browser)
    assert len(boxes) == 4
    assert all(box["width"] > 100 and box["height"] > 100 for box in boxes)


def test_the_fit_page_fits_a_phone_and_is_not_blank(browser: Any, page: Path) -> None:
    chrome.open_file(browser, page)
    try:
        chrome.set_width(browser, PHONE)
        assert chrome.js(browser, "return document.documentElement.scrollWidth;") <= PHONE
    finally:
        chrome.cdp(browser, "Emulation.clearDeviceMetricsOverride")
    image = chrome.pixels(chrome.full_page_png(browser))
    assert chrome.inked_share(image) > 0.02
    assert chrome.distinct_colours(image) > 50
