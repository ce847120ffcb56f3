"""Regenerate the README's screenshot of a shared report, docs/report-screenshot.png.

    python scripts/make_report_screenshot.py

Runs :data:`COMMAND` (a real ``retrysim run --html``), opens the page in Debian's headless
chromium (the browser tests' own helpers, tests/browser.py) at a width a laptop reader has,
and keeps the top of the page: the verdict, the run, the diagnoses with their lines to copy
and the first figure. The image is reduced to 256 colours, which keeps it small and loses
nothing of a page of flat colours. Review it before committing.
"""

from __future__ import annotations

import argparse
import io
import os
import shlex
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: What the screenshot shows (the README quotes it).
COMMAND = "retrysim run thundering-herd --html report.html"
#: The page's width in CSS pixels, and how much of its top is kept.
WIDTH, HEIGHT = 1000, 1750


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "report-screenshot.png")
    args = parser.parse_args(argv)

    from PIL import Image
    from typer.testing import CliRunner

    from retrysim.cli.app import app
    from tests import browser as chrome

    binary, driver = chrome.find(chrome.CHROMIUM), chrome.find(chrome.CHROMEDRIVER)
    if binary is None or driver is None:
        print(f"needs Debian's chromium: {chrome.INSTALL}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as folder:
        page = Path(folder) / "report.html"
        words = shlex.split(COMMAND)[1:]
        words[words.index("--html") + 1] = str(page)
        here = os.getcwd()
        os.chdir(folder)  # no .env of this checkout: the documented defaults
        try:
            result = CliRunner().invoke(app, words)
        finally:
            os.chdir(here)
        if result.exit_code != 0:
            print(result.output, file=sys.stderr)
            return 1
        with chrome.chromium(binary, driver) as browser:
            chrome.open_file(browser, page)
            chrome.set_width(browser, WIDTH, HEIGHT, mobile=False)
            shot = chrome.cdp(
                browser,
                "Page.captureScreenshot",
                format="png",
                captureBeyondViewport=True,
                clip={"x": 0, "y": 0, "width": WIDTH, "height": HEIGHT, "scale": 1},
            )
    import base64

    image = Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("RGB")
    small = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    from retrysim.output import atomic_path

    with atomic_path(args.out) as tmp:
        small.save(tmp, format="png", optimize=True)
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
