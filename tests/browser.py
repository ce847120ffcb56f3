"""Headless Chromium for the shared-report tests (tests/test_html_browser.py), via Selenium.

One place for starting the browser and asking it things, so each test says only what it
checks: the console's errors, the network requests the page made (Chromium's performance log),
the bounding boxes of elements, CDP commands (offline, print media, the window's width) and a
screenshot decoded with Pillow.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

#: Where Debian's chromium and chromium-driver put their programs (PATH is tried first).
CHROMIUM = ("chromium", "/usr/bin/chromium")
CHROMEDRIVER = ("chromedriver", "/usr/bin/chromedriver")
#: The line that installs both (named when the tests skip or fail without them).
INSTALL = "apt-get install chromium chromium-driver"
WIDTH, HEIGHT = 1280, 900


def find(names: tuple[str, str]) -> str | None:
    """The program on PATH, or at Debian's path, or None."""
    found = shutil.which(names[0])
    if found is not None:
        return found
    return names[1] if Path(names[1]).exists() else None


def options(binary: str) -> webdriver.ChromeOptions:
    """Headless, no sandbox (CI runs as root in a container), no GPU, a fixed window, and the
    browser and performance logs on (console errors; network requests)."""
    chosen = webdriver.ChromeOptions()
    chosen.binary_location = binary
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={WIDTH},{HEIGHT}",
        "--hide-scrollbars",
    ):
        chosen.add_argument(argument)
    chosen.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return chosen


@contextmanager
def chromium(binary: str, driver: str) -> Iterator[webdriver.Chrome]:
    """A headless Chromium, quit on the way out whatever happened."""
    browser = webdriver.Chrome(service=Service(driver), options=options(binary))
    try:
        browser.set_page_load_timeout(30)
        yield browser
    finally:
        browser.quit()


def open_file(browser: webdriver.Chrome, path: Path) -> str:
    """Open ``path`` from ``file://`` and wait for it to load; its URL."""
    url = path.resolve().as_uri()
    browser.get(url)
    return url


def console_errors(browser: webdriver.Chrome) -> list[str]:
    """The console's SEVERE entries since the log was last read."""
    return [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def requests_made(browser: webdriver.Chrome) -> list[str]:
    """The URL of every request the page made since the log was last read (the
    ``Network.requestWillBeSent`` events of Chromium's performance log)."""
    urls = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(str(message["params"]["request"]["url"]))
    return urls


def cdp(browser: webdriver.Chrome, command: str, **params: Any) -> Any:
    """A Chrome DevTools Protocol command (``Network.enable``, ``Emulation.setEmulatedMedia``)."""
    return browser.execute_cdp_cmd(command, params)


def js(browser: webdriver.Chrome, script: str, *args: Any) -> Any:
    """``script``'s return value, run in the page."""
    return browser.execute_script(script, *args)


def figure_boxes(browser: webdriver.Chrome) -> list[dict[str, float]]:
    """Each ``<figure>``'s SVG bounding box (width, height, top, left) in CSS pixels."""
    boxes: list[dict[str, float]] = js(
        browser,
        "return [...document.querySelectorAll('figure')].map(f => {"
        " const s = f.querySelector('svg');"
        " if (!s) return {width: 0, height: 0, top: 0, left: 0};"
        " const r = s.getBoundingClientRect();"
        " return {width: r.width, height: r.height, top: r.top + window.scrollY,"
        " left: r.left + window.scrollX}; });",
    )
    return boxes


def body_text(browser: webdriver.Chrome) -> str:
    text: str = js(browser, "return document.body.innerText;")
    return text


def set_width(
    browser: webdriver.Chrome, width: int, height: int = HEIGHT, mobile: bool = True
) -> None:
    """The page's viewport ``width`` CSS pixels wide, as a phone's (``mobile``) or a laptop's
    (device metrics, so the media queries and ``window.innerWidth`` see it)."""
    cdp(
        browser,
        "Emulation.setDeviceMetricsOverride",
        width=width,
        height=height,
        deviceScaleFactor=1,
        mobile=mobile,
    )


def full_page_png(browser: webdriver.Chrome) -> bytes:
    """A screenshot of the whole page (not only the window), as PNG bytes."""
    import base64

    height = int(js(browser, "return document.documentElement.scrollHeight;"))
    shot = cdp(
        browser,
        "Page.captureScreenshot",
        format="png",
        captureBeyondViewport=True,
        clip={"x": 0, "y": 0, "width": WIDTH, "height": height, "scale": 1},
    )
    return base64.b64decode(shot["data"])


def pixels(png: bytes) -> Any:
    """The PNG decoded to an RGB Pillow image."""
    from PIL import Image

    return Image.open(io.BytesIO(png)).convert("RGB")


def distinct_colours(image: Any) -> int:
    """How many different RGB colours ``image`` holds."""
    colours: list[Any] = image.getcolors(maxcolors=image.width * image.height)
    return len(colours)


def inked_share(image: Any) -> float:
    """The share of ``image``'s pixels that are not white."""
    white: int = sum(
        count
        for count, colour in image.getcolors(image.width * image.height)
        if colour == (255, 255, 255)
    )
    size: int = image.width * image.height
    return 1.0 - white / size
