"""User-supplied text never drives the terminal: no Rich markup, no control characters.

A scenario named ``[/x]`` once crashed ``compare`` and ``sweep`` with a MarkupError, and a name
holding escape sequences retitled and cleared the terminal when ``run`` printed it.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from typer.testing import CliRunner

from retrysim.cli.app import app
from retrysim.cli.shell import run_shell
from retrysim.safe import markup, visible

HOSTILE = "\u001b]0;PWNED\u0007\u001b[2J"


def _scenario(tmp_path: Path, name: str, description: str) -> Path:
    path = tmp_path / "s.toml"

    # TOML basic strings: \\uXXXX escapes keep the file itself plain text
    def toml(text: str) -> str:
        return "".join(
            c if c.isprintable() and c not in '"\\' else f"\\u{ord(c):04x}" for c in text
        )

    path.write_text(
        f'name = "{toml(name)}"\ndescription = "{toml(description)}"\n[clients]\ncount = 20\n',
        encoding="utf-8",
    )
    return path


def test_visible_shows_control_characters_and_keeps_newline_and_tab() -> None:
    assert visible(HOSTILE) == "\\x1b]0;PWNED\\x07\\x1b[2J"
    assert visible("a\tb\nc\r\x9b\x7f") == "a\tb\nc\\x0d\\x9b\\x7f"
    assert markup("[/x]") == "\\[/x]"


COMMANDS = [
    ["validate"],
    ["run"],
    ["compare", "--profile", "bindu,documented"],
    ["sweep", "--grid", "policy.max_attempts=2,3"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize(
    ("name", "shown"),
    [("[/x]", "[/x]"), (HOSTILE, "\\x1b]0;PWNED\\x07\\x1b[2J")],
    ids=["markup", "escapes"],
)
def test_user_text_is_printed_visible_and_inert(
    tmp_path: Path, command: list[str], name: str, shown: str
) -> None:
    path = _scenario(tmp_path, name, f"about {name}")
    result = CliRunner().invoke(app, [command[0], str(path), *command[1:]])
    assert result.exit_code == 0, result.output
    for raw in ("\x1b", "\x07"):
        assert raw not in result.output
    assert shown in result.output


def test_error_lines_show_control_characters(tmp_path: Path) -> None:
    bad = tmp_path / "bad\x1b[2J.toml"
    bad.write_text("[clients]\ncount = 'many'\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(bad)])
    assert result.exit_code == 2
    assert "\x1b" not in result.stderr
    assert "bad\\x1b[2J.toml" in result.stderr


def test_piped_shell_prints_markup_in_user_text_literally(tmp_path: Path) -> None:
    path = _scenario(tmp_path, HOSTILE, "[/y] described")
    out = io.StringIO()
    code = run_shell(io.StringIO(f'load [/x]\nload {path}\nset name="[/z]"\n'), out)
    text = out.getvalue()
    assert code == 2  # 'load [/x]' failed, as a missing file, not a MarkupError
    assert "error: [/x]:" in text
    assert "MarkupError" not in text and "internal error" not in text
    assert "\x1b" not in text and "\x07" not in text
    assert "loaded \\x1b]0;PWNED\\x07\\x1b[2J: [/y] described" in text
    assert "name = '[/z]'" in text
