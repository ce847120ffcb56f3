"""The shared run report as a file, without a browser: ``retrysim run --html`` and ``run_page``.

The HTML is parsed with the standard library's ``html.parser`` and checked for what makes it
safe and self-contained (no script, nothing loaded from anywhere), accessible (every figure an
image with a text alternative and a title, one ``h1`` with the sections under it), escaped
(user text never becomes markup), deterministic (the same run, the same bytes) and written
safely (a failure leaves the earlier file as it was). ``tests/test_html_browser.py`` opens the
same pages in Chromium.
"""

from __future__ import annotations

import copy
import errno
import itertools
import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, cast

import pytest
from typer.testing import CliRunner

from retrysim.cli.app import app
from retrysim.output import OutputError
from retrysim.results.document import ResultDocument
from retrysim.share.html import render_page
from retrysim.share.page import Page, Paragraph
from retrysim.share.run_alt import timeline
from retrysim.share.run_page import run_page
from retrysim.share.write import write_page

RUN = ["thundering-herd", "--set", "duration=20"]
HOSTILE = "<script>alert(1)</script> \"q\" 'a' --> & </style>"


class Parsed(HTMLParser):
    """Every start tag with its attributes, in order, and the text inside each tag."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.stack: list[str] = []
        self.texts: dict[str, list[str]] = {}
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {name: value or "" for name, value in attrs}))
        if tag not in ("meta", "br", "img", "link", "input", "hr"):
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {name: value or "" for name, value in attrs}))

    def handle_endtag(self, tag: str) -> None:
        if tag in self.stack:
            while self.stack.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        for tag in set(self.stack):
            self.texts.setdefault(tag, []).append(data)

    def named(self, tag: str) -> list[dict[str, str]]:
        return [attrs for name, attrs in self.tags if name == tag]

    def text(self, tag: str) -> str:
        return "".join(self.texts.get(tag, []))


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, ResultDocument]:
    """A real ``retrysim run thundering-herd --html`` page and the run's document (``--json``)."""
    folder = tmp_path_factory.mktemp("page")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        page = folder / "report.html"
        result = CliRunner().invoke(
            app, ["run", *RUN, "--html", str(page), "--json"], env={"COLUMNS": "160"}
        )
    assert result.exit_code == 0, result.output
    return page.read_text(encoding="utf-8"), cast(ResultDocument, json.loads(result.stdout))


def test_the_page_has_no_script_and_loads_nothing(report: tuple[str, ResultDocument]) -> None:
    text, _ = report
    parsed = Parsed(text)
    assert parsed.named("script") == [] and parsed.named("link") == []
    assert parsed.named("img") == [] and parsed.named("iframe") == []
    for _, attrs in parsed.tags:
        for name in ("href", "xlink:href", "src", "action", "srcset"):
            if name in attrs:
                assert attrs[name].startswith("#"), (name, attrs[name])  # a fragment only
    assert all(not name.startswith("on") for _, attrs in parsed.tags for name in attrs)
    assert re.findall(r"url\((?!#)", text) == []  # styles point at nothing outside
    assert "@import" not in text and "@font-face" not in text
    (style,) = re.findall(r"<style>(.*?)</style>", text, re.DOTALL)
    assert "&" not in style and '"Segoe UI"' in style  # CSS as written: entities break it


def test_every_figure_is_an_image_with_a_text_alternative_and_a_title(
    report: tuple[str, ResultDocument],
) -> None:
    text, document = report
    svgs = re.findall(r"<svg\b[^>]*>\s*<title>([^<]*)</title>", text)
    opened = Parsed(text).named("svg")
    assert len(opened) == 3 == len(svgs)  # timeline, spread, CDF: every svg titled
    assert all(svg["role"] == "img" and svg["aria-label"].strip() for svg in opened)
    assert [svg["aria-label"] for svg in opened] == svgs
    # The timeline's alternative says its key numbers: the success rate, the busiest second.
    assert svgs[0] == timeline(document)
    success = document["calls"]["success_rate"]
    assert success is not None and f"{100 * success:.1f}%" in svgs[0]


def test_the_headings_form_one_outline(report: tuple[str, ResultDocument]) -> None:
    parsed = Parsed(report[0])
    levels = [int(tag[1]) for tag, _ in parsed.tags if re.fullmatch(r"h[1-6]", tag)]
    assert levels[0] == 1 and levels.count(1) == 1
    assert all(b <= a + 1 for a, b in itertools.pairwise(levels))  # none skipped
    headings = parsed.text("h2")
    for section in ("Diagnoses", "Figures", "Tables", "Settings in effect", "Reproduce"):
        assert section in headings


def test_ids_on_the_page_are_unique(report: tuple[str, ResultDocument]) -> None:
    ids = [attrs["id"] for _, attrs in Parsed(report[0]).tags if "id" in attrs]
    assert len(ids) > 20 and len(ids) == len(set(ids))
    referenced = set(re.findall(r'(?:href="#|url\(#)([^")]+)', report[0]))
    assert referenced <= set(ids)  # every reference inside a figure finds its own target


def test_the_page_holds_the_report(report: tuple[str, ResultDocument]) -> None:
    """The verdict, each diagnosis's RETRY__ lines and commands, the tables, the settings with
    their sources and how to reproduce the run, all as text."""
    from retrysim.render.rerun import run_command
    from retrysim.render.verdict import verdict

    text, document = report
    page = Parsed(text)
    body = page.text("body")
    assert verdict(document) in page.text("p")
    assert document["diagnoses"]
    for item in document["diagnoses"]:
        assert item["title"] in page.text("h3")
        for setting in item["settings"]:
            if setting["env"] is not None:
                assert setting["env"] in page.text("code")
            assert run_command(document, setting["set"]) in page.text("code")
    captions = page.text("caption")
    for caption in ("Outcome (calls)", "Load (attempts)", "Latency per call", "The policy of"):
        assert caption in captions
    assert "max_attempts" in body and "default" in page.text("td")  # a value and its source
    assert run_command(document) in page.text("pre")  # the command that made it
    assert f"Seed: {document['seed']}" in body


def test_the_same_run_gives_the_same_bytes(tmp_path: Path) -> None:
    pages = []
    for name in ("a.html", "b.html"):
        page = tmp_path / name
        result = CliRunner().invoke(app, ["run", *RUN, "--html", str(page)])
        assert result.exit_code == 0, result.output
        assert f"wrote {page}" in result.output.replace("\n", "")
        pages.append(page.read_bytes())
    assert pages[0] == pages[1]


def test_user_text_is_escaped(report: tuple[str, ResultDocument]) -> None:
    """A scenario named like markup (and a description, an error name) shows as its text."""
    _, document = report
    hostile = copy.deepcopy(document)
    hostile["scenario"] = HOSTILE
    hostile["description"] = f"about {HOSTILE}"
    hostile["failures_by_type"] = {HOSTILE: 3}
    text = render_page(run_page(hostile))
    parsed = Parsed(text)
    assert parsed.named("script") == []
    assert HOSTILE in parsed.text("h1") and HOSTILE in parsed.text("title")
    assert f"about {HOSTILE}" in parsed.text("p")
    assert HOSTILE in parsed.text("table")  # the error name in the load table
    assert "<script>" not in text  # never unescaped anywhere, figures' titles included


def test_html_path_is_checked_before_the_run(tmp_path: Path) -> None:
    for target, said in (
        (tmp_path / "report.txt", "must end in .html or .htm"),
        (tmp_path / "missing" / "report.html", "no such folder"),
    ):
        result = CliRunner().invoke(app, ["run", *RUN, "--html", str(target)])
        assert result.exit_code == 2
        assert said in result.output and "Outcome" not in result.output  # no run happened


def test_a_failed_write_keeps_the_earlier_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, report: tuple[str, ResultDocument]
) -> None:
    _, document = report
    target = tmp_path / "report.html"
    write_page(run_page(document), target)
    before = target.read_bytes()

    def full_disk(source: Any, destination: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(source))

    monkeypatch.setattr(os, "replace", full_disk)
    changed = copy.deepcopy(document)
    changed["scenario"] = "another"
    with pytest.raises(OSError, match="No space left"):
        write_page(run_page(changed), target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]  # no temporary left


def test_a_page_that_fails_to_draw_writes_nothing(tmp_path: Path) -> None:
    from retrysim.share.page import Reproduce, Section

    target = tmp_path / "report.html"
    target.write_text("earlier", encoding="utf-8")
    broken = Page(
        title="t",
        verdict=Paragraph("v"),
        sections=[Section("s", [cast(Any, object())])],  # no template draws this block
        reproduce=Reproduce("retrysim run x", "1", "0"),
    )
    with pytest.raises(KeyError):
        write_page(broken, target)
    assert target.read_text(encoding="utf-8") == "earlier"


def test_a_read_only_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_text("earlier", encoding="utf-8")
    target.chmod(0o444)
    result = CliRunner().invoke(app, ["run", *RUN, "--html", str(target)])
    assert result.exit_code == 2 and "read-only" in result.output
    assert target.read_text(encoding="utf-8") == "earlier"
    with pytest.raises(OutputError):
        write_page(Page("t", Paragraph("v"), [], _reproduce()), target)


def test_a_write_failing_after_the_report_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from retrysim import output

    def full_disk(target: Any, data: bytes, option: str = "") -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(target))

    monkeypatch.setattr(output, "write_bytes", full_disk)
    target = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["run", *RUN, "--html", str(target)])
    assert result.exit_code == 2
    assert "Outcome (calls)" in result.output  # the report came first
    errors = [line for line in result.output.splitlines() if line.startswith("retrysim: error")]
    assert len(errors) == 1 and "No space left" in errors[0]


def _reproduce() -> Any:
    from retrysim.share.page import Reproduce

    return Reproduce("retrysim run x", "1", "0")
