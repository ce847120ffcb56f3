"""The shared run report in a real browser: headless Chromium opens ``retrysim run --html``.

Each report is made by the real command on a bundled scenario, shortened with ``--set
duration`` (one with a call graph, one with replicas and a breaker), then opened from
``file://``. The page must render with no console error, draw every figure with a real size,
carry the verdict, each diagnosis's ``RETRY__*`` line and ``--set`` command as text, make no
request at all (and render the same offline), fit a phone's width, keep its figures in print,
and look like something in a screenshot. A hostile scenario name shows as text, never as markup.

The browser is Debian's chromium (``tests/conftest.py``: ``browser``): without it these tests
skip naming the install line; CI (``.ci/run``) installs it and fails them if it is missing.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from typer.testing import CliRunner

from retrysim.cli.app import app
from retrysim.render.rerun import run_command
from retrysim.results.document import ResultDocument
from tests import browser as chrome
from tests.conftest import need_program

#: name -> the command's arguments after ``retrysim run``: a call graph, replicas with a breaker.
RUNS = {
    "tiers": ["three-tier-storm", "--set", "duration=15"],
    "replicas": [
        "replica-down",
        "--set",
        "duration=20",
        "--set",
        "policy.breaker.enabled=true",
    ],
}
#: A scenario whose name and description try to break out of the page's markup.
HOSTILE_NAME = "<script>alert(1)</script> \"quoted\" 'single' -->"
HOSTILE_TOML = """name = {name}
description = {description}
seed = 3
duration = 8

[policy]
operation = "scheduler"

[clients]
count = 200
timeout = 2.0
arrival = {{ kind = "poisson", rate = 50 }}

[service]
kind = "queue"
concurrency = 20
latency = {{ dist = "lognormal", median = 0.002, p99 = 0.02 }}

[[faults]]
kind = "outage"
start = 2
end = 4
error = "ConnectionResetError"
"""
PHONE = 375
#: real-redis-blip cut down to a couple of seconds of real time.
REAL_SETS = [
    "--set",
    "clients.count=20",
    "--set",
    "duration=2.5",
    "--set",
    "faults.0.start=1",
    "--set",
    "faults.0.end=1.5",
]


def make_report(folder: Path, name: str, arguments: list[str]) -> tuple[Path, ResultDocument]:
    """``retrysim run ARGUMENTS --html FOLDER/NAME.html --json``: the page and its document."""
    page = folder / f"{name}.html"
    result = CliRunner().invoke(
        app, ["run", *arguments, "--html", str(page), "--json"], env={"COLUMNS": "160"}
    )
    assert result.exit_code == 0, result.output
    document = cast(ResultDocument, json.loads(result.stdout))
    return page, document


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, ResultDocument]]:
    """Each of :data:`RUNS` as a real report, made in an empty folder (no stray ``.env``)."""
    folder = tmp_path_factory.mktemp("reports")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        return {name: make_report(folder, name, arguments) for name, arguments in RUNS.items()}


@pytest.fixture
def opened(browser: Any) -> Iterator[Any]:
    """The module's browser, its logs drained and any emulation cleared after each test."""
    chrome.console_errors(browser)
    chrome.requests_made(browser)
    yield browser
    chrome.cdp(browser, "Emulation.clearDeviceMetricsOverride")
    chrome.cdp(browser, "Emulation.setEmulatedMedia", media="")


@pytest.mark.parametrize("name", list(RUNS))
def test_the_report_renders_with_no_console_error_and_no_request(
    opened: Any, reports: dict[str, tuple[Path, ResultDocument]], name: str
) -> None:
    page, _ = reports[name]
    url = chrome.open_file(opened, page)
    assert chrome.console_errors(opened) == []
    requests = chrome.requests_made(opened)
    assert url in requests  # the log is on: the page's own load is in it
    assert [request for request in requests if request != url] == []


@pytest.mark.parametrize("name", list(RUNS))
def test_every_figure_has_a_real_size(
    opened: Any, reports: dict[str, tuple[Path, ResultDocument]], name: str
) -> None:
    page, document = reports[name]
    chrome.open_file(opened, page)
    boxes = chrome.figure_boxes(opened)
    expected = 3 + (2 if document.get("tiers") else 0) + (1 if document.get("replicas") else 0)
    assert len(boxes) == expected
    assert all(box["width"] > 200 and box["height"] > 100 for box in boxes), boxes


@pytest.mark.parametrize("name", list(RUNS))
def test_the_verdict_and_every_diagnosis_line_are_text(
    opened: Any, reports: dict[str, tuple[Path, ResultDocument]], name: str
) -> None:
    from retrysim.render.verdict import verdict

    page, document = reports[name]
    chrome.open_file(opened, page)
    text = chrome.body_text(opened)
    assert verdict(document) in text
    assert document["diagnoses"], "the scenario is meant to have something to diagnose"
    env_lines = 0
    for item in document["diagnoses"]:
        assert item["title"] in text
        assert item["evidence"] in text
        groups = cast(list[list[str]], item["figures"].get("together") or [])
        grouped = {str(change) for group in groups for change in group}
        for setting in item["settings"]:
            if setting["env"] is not None:
                assert setting["env"] in text
                env_lines += 1
            assert f"--set {shlex.quote(setting['set'])}" in text
            if setting["set"] not in grouped:  # a command of its own, whole, on one line
                assert f"\n{run_command(document, setting['set'])}\n" in f"\n{text}\n"
    assert env_lines > 0  # at least one RETRY__ line was checked
    assert "RETRY__" in text and "--set" in text


def test_the_report_renders_offline(reports: dict[str, tuple[Path, ResultDocument]]) -> None:
    """A fresh browser with its network emulated offline still draws every figure."""
    binary, driver = need_program("chromium"), need_program("chromedriver")
    page, _ = reports["tiers"]
    with chrome.chromium(binary, driver) as offline:
        chrome.cdp(offline, "Network.enable")
        chrome.cdp(
            offline,
            "Network.emulateNetworkConditions",
            offline=True,
            latency=0,
            downloadThroughput=0,
            uploadThroughput=0,
        )
        chrome.open_file(offline, page)
        boxes = chrome.figure_boxes(offline)
        assert len(boxes) == 5 and all(box["width"] > 200 for box in boxes)
        assert chrome.console_errors(offline) == []
        assert "Reproduce" in chrome.body_text(offline)


@pytest.mark.parametrize("name", list(RUNS))
def test_nothing_overflows_a_phone_width(
    opened: Any, reports: dict[str, tuple[Path, ResultDocument]], name: str
) -> None:
    page, _ = reports[name]
    chrome.open_file(opened, page)
    chrome.set_width(opened, PHONE)
    width = chrome.js(opened, "return window.innerWidth;")
    assert width == PHONE
    assert chrome.js(opened, "return document.documentElement.scrollWidth;") <= width
    # A wide table scrolls inside its own box: the box fits, the table may not.
    boxes = chrome.js(
        opened,
        "return [...document.querySelectorAll('div.scroll')].map(d => ({box: d.clientWidth,"
        " table: d.scrollWidth, overflow: getComputedStyle(d).overflowX}));",
    )
    assert boxes and all(box["box"] <= width for box in boxes)
    assert all(box["overflow"] == "auto" for box in boxes if box["table"] > box["box"])
    figures = chrome.figure_boxes(opened)
    assert all(0 < box["width"] <= width for box in figures)


def test_print_keeps_every_figure(
    opened: Any, reports: dict[str, tuple[Path, ResultDocument]]
) -> None:
    page, _ = reports["replicas"]
    chrome.open_file(opened, page)
    chrome.cdp(opened, "Emulation.setEmulatedMedia", media="print")
    assert chrome.js(opened, "return matchMedia('print').matches;") is True
    boxes = chrome.figure_boxes(opened)
    assert len(boxes) == 4 and all(box["width"] > 200 and box["height"] > 100 for box in boxes)


def test_a_screenshot_is_not_blank(
    opened: Any, reports: dict[str, tuple[Path, ResultDocument]]
) -> None:
    page, _ = reports["tiers"]
    chrome.open_file(opened, page)
    boxes = chrome.figure_boxes(opened)
    image = chrome.pixels(chrome.full_page_png(opened))
    assert image.width == chrome.WIDTH and image.height > 2000
    assert chrome.distinct_colours(image) > 200  # text, rules, figures: far from one flat colour
    for box in boxes:
        area = image.crop(
            (
                int(box["left"]),
                int(box["top"]),
                int(box["left"] + box["width"]),
                int(box["top"] + box["height"]),
            )
        )
        assert chrome.inked_share(area) > 0.05  # drawn, not an empty frame
        assert chrome.distinct_colours(area) > 20  # in several colours


def test_a_hostile_scenario_name_is_text_not_markup(opened: Any, tmp_path: Path) -> None:
    scenario = tmp_path / "hostile.toml"
    scenario.write_text(
        HOSTILE_TOML.format(
            name=json.dumps(HOSTILE_NAME),
            description=json.dumps(f"desc {HOSTILE_NAME} & <b>bold</b>"),
        ),
        encoding="utf-8",
    )
    page, document = make_report(tmp_path, "hostile", [str(scenario)])
    assert document["scenario"] == HOSTILE_NAME
    chrome.open_file(opened, page)
    text = chrome.body_text(opened)
    assert HOSTILE_NAME in text and f"desc {HOSTILE_NAME} & <b>bold</b>" in text
    assert chrome.js(opened, "return document.querySelectorAll('script').length;") == 0
    assert chrome.js(opened, "return document.querySelectorAll('b').length;") == 0
    assert chrome.js(opened, "return document.title;").startswith("retrysim run: <script>")
    assert chrome.console_errors(opened) == []


def test_a_real_runs_page_shows_real_against_simulated(
    opened: Any, redis_server: str, tmp_path: Path
) -> None:
    """``retrysim chaos --vs-sim --html``: a real run's page, with the versus table and the
    command that repeats the experiment."""
    page = tmp_path / "chaos.html"
    arguments = ["real-redis-blip", "--start-redis", "--vs-sim", "--seeds", "2", *REAL_SETS]
    result = CliRunner().invoke(app, ["chaos", *arguments, "--html", str(page)])
    assert result.exit_code == 0, result.output
    assert f"wrote {page}" in result.output.replace("\n", "")
    chrome.open_file(opened, page)
    assert chrome.console_errors(opened) == []
    text = chrome.body_text(opened)
    assert "real against simulated (2 seeds, 95% prediction interval)" in text
    assert "simulated mean" in text and "p99 latency" in text
    assert shlex.join(["retrysim", "chaos", *arguments]) in text
    assert "repeats the experiment" in text
    boxes = chrome.figure_boxes(opened)
    assert len(boxes) == 3 and all(box["width"] > 200 for box in boxes)
