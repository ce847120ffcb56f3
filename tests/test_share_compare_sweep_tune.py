"""``--html FILE`` on compare, sweep and tune, through the CLI: the page is one self-contained
file (no script, nothing loaded from elsewhere) holding every table the terminal shows, each
variant, the figures with text alternatives that state their numbers, the lines to set, and a
Reproduce line that, pasted, makes the same bytes again; user text is escaped; a bad path is
refused in one line before any run.

Runs are small (lock-contention is a second's work; a one-worker executor keeps them in this
process), and expected values come from the runs themselves (the terminal report, ``--json``),
never from numbers written here.
"""

from __future__ import annotations

import json
import shlex
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from retrysim.cli.app import app
from retrysim.results import metric_table
from retrysim.runs.sweep import grid_variants
from retrysim.share.reproduce import seeds_text
from retrysim.share.variants import choose

WIDE = {"COLUMNS": "400"}  # the terminal's table titles on one line each
QUIET = ["--workers", "1", "-q"]
COMPARE = ["compare", "lock-contention", "--set", "policy.max_attempts=2,6", "--seeds", "2"]
SWEEP_TWO = [
    "sweep", "lock-contention", "--grid", "policy.max_attempts=2,4",
    "--grid", "policy.max_wait=1,2", "--set", "clients.count=50",
]  # fmt: skip
SWEEP_ONE = ["sweep", "lock-contention", "--grid", "policy.max_attempts=2,4,6"]
TUNE = ["tune", "lock-contention", "--search", "policy.max_attempts=2..4", "--seeds", "2"]
TUNE += ["--budget", "3"]
HOSTILE = """
name = "<script>alert(1)</script>"
description = "<b>bold</b> & \\"quoted\\" <img src=http://example.com/x.png>"
seed = 5
duration = 10

[policy]
operation = "worker"
max_attempts = 4

[clients]
count = 40
arrival = { kind = "burst", at = 0 }

[service]
kind = "occ"
latency = { dist = "lognormal", median = 0.005, p99 = 0.02 }
"""


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), env=WIDE)


class Parsed(HTMLParser):
    """What the tests read of a page: every tag, the links, captions, code and figures."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.links: list[str] = []  # every src= and href= value
        self.captions: list[str] = []
        self.code: list[str] = []
        self.svgs: list[dict[str, str | None]] = []
        self.figures = 0
        self.figure_svgs: list[int] = []
        self.text: list[str] = []
        self.rows: list[list[str]] = []  # every table row's cells, as text
        self._cell: list[str] | None = None
        self._open: list[str] = []
        self._buffer: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = dict(attrs)
        self.links += [v or "" for k, v in attrs if k in ("src", "href", "xlink:href")]
        if tag == "svg":
            self.svgs.append(values)
            if self.figure_svgs:
                self.figure_svgs[-1] += 1
        if tag == "figure":
            self.figures += 1
            self.figure_svgs.append(0)
        if tag in ("caption", "code"):
            self._open.append(tag)
            self._buffer = []
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None
        if self._open and tag == self._open[-1]:
            self._open.pop()
            text = "".join(self._buffer)
            (self.captions if tag == "caption" else self.code).append(text)

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)
        if self._open:
            self._buffer.append(data)

    @property
    def code_lines(self) -> list[str]:
        return [line for block in self.code for line in block.splitlines()]

    @property
    def all_text(self) -> str:
        return "".join(self.text)


def page(path: Path) -> Parsed:
    return Parsed(path.read_text(encoding="utf-8"))


def _words(text: str) -> str:
    return " ".join(text.split())


def assert_self_contained(parsed: Parsed) -> None:
    """No script, no style sheet, image or frame from elsewhere, nothing linked from outside."""
    assert "script" not in parsed.tags
    assert not {"link", "img", "iframe", "object", "embed"} & set(parsed.tags)
    # a link inside the page (an SVG's #id) or data in it (a heat map's cells as data:image)
    assert all(link.startswith(("#", "data:")) for link in parsed.links), parsed.links


def assert_figures_labelled(parsed: Parsed, count: int) -> list[str]:
    """``count`` figures, each one ``<svg role="img">`` with a non-empty aria-label."""
    assert parsed.figures == count
    assert parsed.figure_svgs == [1] * count
    labels = [svg.get("aria-label") or "" for svg in parsed.svgs if svg.get("role") == "img"]
    assert len(labels) == count
    assert all(label.strip() for label in labels)
    return labels


def assert_terminal_tables_shown(stdout: str, parsed: Parsed) -> None:
    """Every table the terminal printed is a table of the page, under its title."""
    terminal = stdout.count("┏")
    assert terminal >= 1
    shown = [c for c in parsed.captions if c.strip() and _words(c) in _words(stdout)]
    assert len(shown) == terminal, (parsed.captions, stdout)


def labels_of(grid: list[tuple[str, list[Any]]]) -> list[str]:
    return [variant.label for variant in grid_variants(grid)]


# --- compare ---------------------------------------------------------------------------------


def test_compare_page_has_its_tables_variants_figures_and_lines(tmp_path: Path) -> None:
    target = tmp_path / "compare.html"
    result = invoke(*COMPARE, *QUIET, "--html", str(target))
    assert result.exit_code == 0, result.output
    assert f"wrote {target}" in _words(result.stdout)
    parsed = page(target)
    assert_self_contained(parsed)
    assert_terminal_tables_shown(result.stdout, parsed)
    for label in labels_of([("policy.max_attempts", [2, 6])]):
        assert label in parsed.all_text
    assert_figures_labelled(parsed, 2)  # the bars --plot saves, the latency CDFs
    best = [line for line in parsed.code_lines if line.startswith("RETRY__WORKER_MAX_ATTEMPTS=")]
    assert len(best) == 1
    value = best[0].partition("=")[2]
    assert f"retrysim run lock-contention --set policy.max_attempts={value}" in parsed.code_lines
    assert "Best: max_attempts=" + value in parsed.all_text
    facts = [c for c in parsed.captions if "where each value came from" in c]
    assert facts and "--set" in parsed.all_text


def test_compare_page_with_json_states_each_variants_numbers(tmp_path: Path) -> None:
    target = tmp_path / "compare.html"
    result = invoke(*COMPARE, *QUIET, "--json", "--html", str(target))
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)  # standard output is the document alone
    labels = assert_figures_labelled(page(target), 2)
    bars = labels[0]
    for row in doc["rows"]:
        assert row["variant"] in bars
        for name in ("success_rate", "p99_latency", "amplification"):
            assert metric_table.show(name, row[name]) in bars


POLICY_MODULE = """
import tenacity

policy = tenacity.Retrying(
    stop=tenacity.stop_after_attempt(4), wait=tenacity.wait_fixed(0.1), reraise=True
)
"""


def test_a_variant_of_the_users_own_policy_is_changed_in_its_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "own_policy.py").write_text(POLICY_MODULE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    target = tmp_path / "compare.html"
    result = invoke(
        "compare", "lock-contention", "--policy", "own_policy:policy", *QUIET, "--html",
        str(target),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    parsed = page(target)
    assert "Best: policy=own_policy:policy (the only variant)" in parsed.all_text
    assert "runs your own policy, own_policy:policy" in parsed.all_text
    assert "retrysim run lock-contention --policy own_policy:policy" in parsed.code_lines
    assert not [line for line in parsed.code_lines if line.startswith("RETRY__")]
    assert not [c for c in parsed.captions if "where each value came from" in c]


def test_the_settings_name_the_option_that_set_them(tmp_path: Path) -> None:
    """A profile varied by --profile says --profile; a key varied by --set says --set; the
    rest say the scenario or the default, as the run header does."""
    target = tmp_path / "compare.html"
    args = ["--profile", "bindu,full_jitter", "--set", "policy.max_wait=1,2"]
    result = invoke("compare", "lock-contention", *args, *QUIET, "--html", str(target))
    assert result.exit_code == 0, result.output
    sources = {row[0]: row[2] for row in page(target).rows if len(row) == 3}
    assert sources["profile"] == "--profile"
    assert sources["max_wait"] == "--set"
    assert sources["max_attempts"] == "scenario"  # lock-contention's [policy] sets it
    assert sources["multiplier"] == "default"


# --- sweep -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "grid", "figures"),
    [
        (SWEEP_TWO, [("policy.max_attempts", [2, 4]), ("policy.max_wait", [1, 2])], 3),
        (SWEEP_ONE, [("policy.max_attempts", [2, 4, 6])], 1),
    ],
)
def test_sweep_page_has_its_table_points_and_figures(
    tmp_path: Path, args: list[str], grid: list[tuple[str, list[Any]]], figures: int
) -> None:
    """Two grid keys: a heat map each of success, p99 latency and load; one key: bars."""
    target = tmp_path / "sweep.html"
    result = invoke(*args, *QUIET, "--html", str(target))
    assert result.exit_code == 0, result.output
    assert f"wrote {target}" in _words(result.stdout)
    parsed = page(target)
    assert_self_contained(parsed)
    assert_terminal_tables_shown(result.stdout, parsed)
    for label in labels_of(grid):
        assert label in parsed.all_text
    alts = assert_figures_labelled(parsed, figures)
    if figures == 3:
        assert [alt.split(" over ")[0] for alt in alts] == [
            f"Heat map of {metric_table.get(name).title}"
            for name in ("success_rate", "p99_latency", "amplification")
        ]
    assert any(line.startswith("RETRY__WORKER_MAX_ATTEMPTS=") for line in parsed.code_lines)


# --- tune ------------------------------------------------------------------------------------


def test_tune_page_has_the_recommendation_its_lines_and_figures(tmp_path: Path) -> None:
    target = tmp_path / "tune.html"
    shown = invoke(*TUNE, *QUIET, "--html", str(target))
    assert shown.exit_code == 0, shown.output
    assert f"wrote {target}" in _words(shown.stdout)
    parsed = page(target)
    assert_self_contained(parsed)
    assert_terminal_tables_shown(shown.stdout, parsed)
    # the front, then the recommendation against the obvious candidates: bars and CDFs
    alts = assert_figures_labelled(parsed, 3)
    assert "recommended" in alts[0]

    as_json = tmp_path / "tune-json.html"
    result = invoke(*TUNE, *QUIET, "--json", "--html", str(as_json))
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["env"]
    lines = page(as_json).code_lines
    for name, value in doc["env"].items():
        assert f"{name}={value}" in lines
    best = doc["groups"][0]["best"]
    sets = " ".join(f"--set {key}={value}" for key, value in best["settings"].items())
    assert f"retrysim run lock-contention {sets}".strip() in lines


# --- the same page again ---------------------------------------------------------------------


@pytest.mark.parametrize("args", [COMPARE, SWEEP_TWO, TUNE], ids=["compare", "sweep", "tune"])
def test_the_reproduce_line_makes_the_same_bytes(tmp_path: Path, args: list[str]) -> None:
    """The page's Reproduce line, pasted, gives a byte-identical page: nothing in it depends
    on the clock, the path written to, the terminal or --json."""
    first = tmp_path / "first.html"
    result = invoke(*args, "--workers", "1", "--html", str(first))
    assert result.exit_code == 0, result.output
    (command,) = [c for c in page(first).code if c.startswith(f"retrysim {args[0]} ")]
    assert "--html" not in command and "--workers" not in command
    again = tmp_path / "again.html"
    repeat = invoke(*shlex.split(command)[1:], *QUIET, "--json", "--html", str(again))
    assert repeat.exit_code == 0, repeat.output
    assert again.read_bytes() == first.read_bytes()


# --- user text -------------------------------------------------------------------------------


def test_user_text_is_escaped(tmp_path: Path) -> None:
    scenario = tmp_path / "hostile.toml"
    scenario.write_text(HOSTILE, encoding="utf-8")
    compared = tmp_path / "compare.html"
    result = invoke(
        "compare", str(scenario), "--set", "name=<b>x</b>,<i>y</i>", *QUIET, "--html",
        str(compared),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    tuned = tmp_path / "tune.html"
    result = invoke(
        "tune", str(scenario), "--search", "policy.max_attempts=2,3", "--seeds", "2", *QUIET,
        "--html", str(tuned),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for target in (compared, tuned):
        raw = target.read_text(encoding="utf-8")
        for tag in ("<script", "<b>", "<i>", "<img"):
            assert tag not in raw
        parsed = page(target)
        assert_self_contained(parsed)
        assert "<script>alert(1)</script>" in parsed.all_text  # shown as the characters
    assert "name=<b>x</b>" in page(compared).all_text
    assert '<b>bold</b> & "quoted"' in page(compared).all_text


# --- a bad path ------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [COMPARE, SWEEP_ONE, TUNE], ids=["compare", "sweep", "tune"])
@pytest.mark.parametrize("bad", ["report.txt", "missing/report.html"])
def test_a_bad_html_path_is_one_line_before_any_run(
    tmp_path: Path, args: list[str], bad: str
) -> None:
    out = tmp_path / "out"
    result = invoke(*args, *QUIET, "--out", str(out), "--html", str(tmp_path / bad))
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--html" in lines[0] and bad.partition("/")[0] in lines[0]
    assert result.stdout == ""
    assert not out.exists()  # --out is made once the runs are done: none ran
    assert not (tmp_path / bad).exists()


# --- the rules behind the words --------------------------------------------------------------


class _Variant:
    def __init__(self, label: str) -> None:
        self.label = label
        self.sets: dict[str, Any] = {}
        self.policy = None


class _Result:
    """What :func:`choose` reads of a VariantResult: means and intervals by metric."""

    def __init__(self, label: str, means: dict[str, float], half: float = 0.0) -> None:
        self.variant = _Variant(label)
        self.means = means
        self.half = half

    def mean(self, name: str) -> float | None:
        return self.means.get(name)

    def interval(self, name: str) -> tuple[float, float] | None:
        value = self.means.get(name)
        if value is None or not self.half:
            return None
        return value - self.half, value + self.half


def _choose(*results: _Result) -> Any:
    return choose(results)  # type: ignore[arg-type]


def test_best_is_the_highest_success_then_the_lowest_p99_then_the_lowest_load() -> None:
    a = _Result("a", {"success_rate": 0.9, "p99_latency": 1.0, "amplification": 1.0})
    b = _Result("b", {"success_rate": 0.95, "p99_latency": 9.0, "amplification": 3.0})
    assert _choose(a, b).best is b
    assert "highest success" in _choose(a, b).reason
    c = _Result("c", {"success_rate": 0.95, "p99_latency": 2.0, "amplification": 3.0})
    assert _choose(a, b, c).best is c and "p99 latency is the lowest" in _choose(a, b, c).reason
    d = _Result("d", {"success_rate": 0.95, "p99_latency": 2.0, "amplification": 2.0})
    assert _choose(c, d).best is d and "load" in _choose(c, d).reason
    assert _choose(d, d).best is d and "tie" in _choose(d, d).reason


def test_success_rates_within_the_noise_are_tied() -> None:
    """Intervals that overlap make a tie; the lower p99 then wins over a higher success."""
    high = _Result("high", {"success_rate": 0.96, "p99_latency": 5.0}, half=0.02)
    low = _Result("low", {"success_rate": 0.95, "p99_latency": 1.0}, half=0.02)
    assert _choose(high, low).best is low
    assert "within the noise" in _choose(high, low).reason
    apart = _Result("apart", {"success_rate": 0.90, "p99_latency": 1.0}, half=0.02)
    assert _choose(high, apart).best is high


@pytest.mark.parametrize(
    ("seeds", "text"),
    [([7], "7"), ([3, 4, 5], "3, 4, 5"), ([1, 5, 9, 10], "1, 5, 9, 10"), ([], "none")],
)
def test_seeds_are_listed_and_long_runs_shortened(seeds: list[int], text: str) -> None:
    assert seeds_text(seeds) == text
    assert seeds_text(list(range(20, 50))) == "20..49 (30 seeds)"
