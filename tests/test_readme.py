"""The README's Quick start is what CI runs, and its examples name real things."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from retrysim.cli.app import app
from retrysim.results.metric_table import METRIC_NAMES

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def quick_start() -> list[str]:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None, "the Quick start has a bash block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_quick_start_is_exactly_two_commands() -> None:
    commands = quick_start()
    assert len(commands) == 2
    assert commands[0].endswith("retrysim run thundering-herd")


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    test_command = quick_start()[1]
    lines = [line.strip() for line in ci.splitlines() if not line.lstrip().startswith("#")]
    assert test_command in lines


def test_every_command_in_the_table_exists() -> None:
    table = README.split("## Commands", 1)[1].split("### ", 1)[0]
    names = set(re.findall(r"`retrysim (\w+)", table))
    assert names
    for name in names:
        result = CliRunner().invoke(app, [name, "--help"])
        assert result.exit_code == 0, f"retrysim {name} --help: {result.output}"


def test_every_metric_name_is_documented() -> None:
    for name in METRIC_NAMES:
        assert f"`{name}`" in README, name


def test_every_bundled_scenario_is_documented() -> None:
    import retrysim

    for name in retrysim.bundled_scenarios():
        assert f"`{name}`" in README, name


# --- the README's pictures: each exists, and its caption quotes commands that exist ------------


def pictures() -> list[tuple[str, str]]:
    """(path, caption) per picture; the caption is the prose since the previous picture."""
    section = README.split("## Pictures", 1)[1].split("\n## ", 1)[0]
    found = []
    for match in re.finditer(r"!\[[^\]]*\]\(([^)]+)\)", section):
        found.append(match.group(1))
    captions = re.split(r"!\[[^\]]*\]\([^)]+\)", section)
    return list(zip(found, captions[: len(found)], strict=True))


def quoted_commands(text: str) -> list[str]:
    """Inline code spans that are retrysim commands (line breaks inside a span are spaces)."""
    spans = re.findall(r"`([^`]+)`", text)
    return [" ".join(span.split()) for span in spans if span.startswith("retrysim ")]


def docs_commands() -> dict[str, str]:
    """COMMANDS from scripts/make_docs_figures.py: the command each picture's caption quotes."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "make_docs_figures", ROOT / "scripts" / "make_docs_figures.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    commands: dict[str, str] = module.COMMANDS
    return commands


def test_every_readme_picture_exists_and_every_docs_picture_is_shown() -> None:
    shown = [path for path, _ in pictures()]
    assert shown, "the Pictures section shows pictures"
    for path in shown:
        assert (ROOT / path).is_file(), path
    on_disk = {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.png")}
    assert on_disk == set(shown) | set(SCREENSHOTS)
    assert set(docs_commands()) == {Path(path).name for path in shown}


#: Pictures of a page rather than figures (scripts/make_report_screenshot.py takes them in
#: headless Chromium): each is shown in its own section, which quotes the command it shows.
SCREENSHOTS = {"docs/report-screenshot.png": "### Sharing a report"}


def test_every_screenshot_is_shown_where_its_command_is_quoted() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "make_report_screenshot", ROOT / "scripts" / "make_report_screenshot.py"
    )
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    for path, heading in SCREENSHOTS.items():
        assert (ROOT / path).stat().st_size < 300_000, path  # a README picture stays light
        section = README.split(heading + "\n", 1)[1].split("\n### ", 1)[0]
        assert f"]({path})" in section
        assert script.COMMAND in section  # the command whose page the picture shows


def test_every_picture_caption_quotes_real_commands_and_options() -> None:
    import typer.main

    group = typer.main.get_command(app)
    commands = group.commands  # type: ignore[attr-defined]
    for path, caption in pictures():
        quoted = quoted_commands(caption)
        assert quoted, f"{path}: its caption quotes no retrysim command"
        for command in quoted:
            words = command.split()
            assert words[1] in commands, f"{path}: {command}: no command {words[1]!r}"
            options = {opt for p in commands[words[1]].params for opt in p.opts + p.secondary_opts}
            for word in words[2:]:
                if word.startswith("--"):
                    assert word in options, f"{path}: {command}: no option {word}"


def test_each_caption_quotes_the_command_that_draws_its_kind_of_figure() -> None:
    expected = docs_commands()
    for path, caption in pictures():
        assert expected[Path(path).name] in quoted_commands(caption), path
