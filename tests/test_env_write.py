"""Merging ``RETRY__*`` lines into a user's ``.env``: the user's bytes, links and refusals.

The merge's law over generated files is in ``test_env_write_property.py``; here each rule has
a case a reader can check by eye, and the file-system rules (symlinks, hard links, read-only,
non-UTF-8, a missing folder) run against real files and through ``retrysim tune``.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from dotenv import dotenv_values
from typer.testing import CliRunner

from retrysim.cli import tune_cmd
from retrysim.cli.app import app
from retrysim.env_write import EnvFileError, check_env_target, merge_env, merge_text
from retrysim.lab.model import BY_OPTION, LabModel
from retrysim.model.library import load_scenario
from retrysim.model.session import load
from retrysim.output import OutputError

SET = {"RETRY__WORKER_MAX_ATTEMPTS": "6"}
NEW = {"RETRY__WORKER_MAX_WAIT": "20"}


def reads(text: str) -> dict[str, str | None]:
    return dict(dotenv_values(stream=io.StringIO(text), interpolate=False))


# --- line endings and line breaks ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (  # CRLF stays CRLF, new lines too
            "A=1\r\nRETRY__WORKER_MAX_ATTEMPTS=3\r\n",
            "A=1\r\nRETRY__WORKER_MAX_ATTEMPTS=6\r\n\r\n# t\r\nRETRY__WORKER_MAX_WAIT=20\r\n",
        ),
        (  # a file of lone CRs (classic Mac) is written in lone CRs
            "A=1\rRETRY__WORKER_MAX_ATTEMPTS=3\r",
            "A=1\rRETRY__WORKER_MAX_ATTEMPTS=6\r\r# t\rRETRY__WORKER_MAX_WAIT=20\r",
        ),
        (  # mixed: each old line keeps its own; new ones take the most used (two CRLFs here)
            "A=1\r\nB=2\nC=3\r\nRETRY__WORKER_MAX_ATTEMPTS=3\r",
            "A=1\r\nB=2\nC=3\r\nRETRY__WORKER_MAX_ATTEMPTS=6\r"
            "\r\n# t\r\nRETRY__WORKER_MAX_WAIT=20\r\n",
        ),
        (  # no line ending at the end: one is added before the new lines, in the file's style
            "A=1\r\nRETRY__WORKER_MAX_ATTEMPTS=3",
            "A=1\r\nRETRY__WORKER_MAX_ATTEMPTS=6\r\n\r\n# t\r\nRETRY__WORKER_MAX_WAIT=20\r\n",
        ),
        ("", "# t\nRETRY__WORKER_MAX_ATTEMPTS=6\nRETRY__WORKER_MAX_WAIT=20\n"),  # new file: \n
    ],
)
def test_line_endings_are_the_files_own(text: str, expected: str) -> None:
    merged, _ = merge_text(text, {**SET, **NEW}, "t")
    assert merged == expected


@pytest.mark.parametrize("breaker", ["\u2028", "\u2029", "\x85", "\x0c", "\x0b", "\x1c", "\x1e"])
def test_characters_splitlines_cuts_at_are_not_line_breaks(breaker: str) -> None:
    text = (
        f"A=left{breaker}RETRY__WORKER_MAX_ATTEMPTS=1\n"
        f"B='quoted{breaker}RETRY__WORKER_MAX_ATTEMPTS=2'\n"
        f"RETRY__WORKER_MAX_ATTEMPTS=3 # right{breaker}here\n"
    )
    merged, changes = merge_text(text, SET)
    assert merged == text.replace("=3 #", "=6 #")
    assert reads(merged) == {**reads(text), "RETRY__WORKER_MAX_ATTEMPTS": "6"}
    assert reads(merged)["A"] == f"left{breaker}RETRY__WORKER_MAX_ATTEMPTS=1"
    assert changes == ["RETRY__WORKER_MAX_ATTEMPTS: 3 -> 6"]


def test_a_variable_line_inside_a_multi_line_quoted_value_is_part_of_the_value() -> None:
    text = (
        'CERT="-----BEGIN-----\nRETRY__WORKER_MAX_ATTEMPTS=1\n-----END-----"\n'
        "NOTE='two\r\nRETRY__WORKER_MAX_WAIT=5'\n"
    )
    merged, changes = merge_text(text, {**SET, **NEW})
    assert merged.startswith(text)  # nothing in the values touched: both are added
    assert changes == [
        "RETRY__WORKER_MAX_ATTEMPTS: added (6)",
        "RETRY__WORKER_MAX_WAIT: added (20)",
    ]
    assert reads(merged)["CERT"] == reads(text)["CERT"]


# --- replacing in place -------------------------------------------------------------------------


def test_an_existing_line_keeps_everything_but_its_value() -> None:
    text = (
        "\ufeff# top\n"
        "export  RETRY__WORKER_MAX_ATTEMPTS = '3'   # tuned by hand\n"
        "'RETRY__WORKER_MAX_ATTEMPTS'=\"4\"\n"
        "retry__worker_max_attempts=5\n"  # the settings read names case-insensitively
        "RETRY__WORKER_MAX_ATTEMPTS\n"  # a name alone
        "RETRY__WORKER_MAX_ATTEMPTS= # empty, with a comment\n"
        "RETRY__WORKER_MAX_ATTEMPTS_X=9\n"  # another name that starts the same
    )
    merged, changes = merge_text(text, SET)
    assert merged == (
        "\ufeff# top\n"
        "export  RETRY__WORKER_MAX_ATTEMPTS = 6   # tuned by hand\n"
        "'RETRY__WORKER_MAX_ATTEMPTS'=6\n"
        "retry__worker_max_attempts=6\n"
        "RETRY__WORKER_MAX_ATTEMPTS=6\n"
        "RETRY__WORKER_MAX_ATTEMPTS= 6 # empty, with a comment\n"
        "RETRY__WORKER_MAX_ATTEMPTS_X=9\n"
    )
    assert changes == ["RETRY__WORKER_MAX_ATTEMPTS: 3 -> 6"]  # the first value the file had


def test_values_that_are_not_plain_are_quoted_so_they_read_back() -> None:
    values = {"RETRY__PROFILE": "it's a \\ # $x", "RETRY__WORKER_MAX_WAIT": "1e-05"}
    merged, _ = merge_text("RETRY__PROFILE=old\n", values)
    assert merged == ("RETRY__PROFILE='it\\'s a \\\\ # $x'\n\nRETRY__WORKER_MAX_WAIT=1e-05\n")
    assert {k: reads(merged)[k] for k in values} == values


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "${HOME}"])
def test_a_value_no_reader_would_read_back_is_a_bug_not_a_write(value: str) -> None:
    with pytest.raises(ValueError, match="reads it back"):
        merge_text("", {"RETRY__PROFILE": value})


def test_a_merge_that_would_change_another_variable_is_refused() -> None:
    # the unclosed quote would run on into the appended value's quote: A would change
    with pytest.raises(EnvFileError, match="nothing was written"):
        merge_text("A='open\n", {"RETRY__PROFILE": "a b"}, where="--write-env .env")


# --- the file: links, permissions, encodings ----------------------------------------------------


def test_a_symlinked_env_is_written_through_atomically(tmp_path: Path) -> None:
    real_dir, link_dir = tmp_path / "shared", tmp_path / "project"
    real_dir.mkdir()
    link_dir.mkdir()
    target = real_dir / "app.env"
    target.write_bytes(b"A=1\r\nRETRY__WORKER_MAX_ATTEMPTS=3\r\n")
    target.chmod(0o640)
    before = target.stat().st_ino
    link = link_dir / ".env"
    link.symlink_to(Path("..") / "shared" / "app.env")
    merge_env(link, SET)
    assert link.is_symlink() and os.readlink(link) == str(Path("..") / "shared" / "app.env")
    assert target.read_bytes() == b"A=1\r\nRETRY__WORKER_MAX_ATTEMPTS=6\r\n"
    assert target.stat().st_ino != before  # a new file renamed over the old: atomic
    assert target.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in real_dir.iterdir()) == ["app.env"]  # no temporary left
    assert sorted(p.name for p in link_dir.iterdir()) == [".env"]


def test_a_hard_linked_env_is_refused_and_both_names_keep_their_text(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("RETRY__WORKER_MAX_ATTEMPTS=3\n", encoding="utf-8")
    other = tmp_path / "copy.env"
    os.link(env, other)
    with pytest.raises(OutputError) as caught:
        merge_env(env, SET)
    message = str(caught.value)
    assert message.startswith(f"--write-env {env}: has 2 hard links")
    assert "\n" not in message and "nothing was written" in message
    assert env.read_text(encoding="utf-8") == other.read_text(encoding="utf-8")
    assert env.stat().st_ino == other.stat().st_ino
    assert env.read_text(encoding="utf-8") == "RETRY__WORKER_MAX_ATTEMPTS=3\n"


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("read-only", "read-only (mode 444); nothing was written"),
        ("dangling", "which does not exist; nothing was written"),
        ("not-utf8", "not UTF-8 text (byte 0xff at offset 2, line 1)"),
        ("folder", "is a folder"),
        ("missing-folder", "no such folder"),
    ],
)
def test_what_cannot_be_merged_is_refused_in_one_line_naming_the_file(
    tmp_path: Path, setup: str, message: str
) -> None:
    env = tmp_path / ".env"
    if setup == "read-only":
        env.write_text("A=1\n", encoding="utf-8")
        env.chmod(0o444)  # refused even for root, who could replace it
    elif setup == "dangling":
        env.symlink_to(tmp_path / "gone.env")
    elif setup == "not-utf8":
        env.write_bytes(b"A=\xff\n")
    elif setup == "folder":
        env.mkdir()
    else:
        env = tmp_path / "nowhere" / ".env"
    before = sorted(tmp_path.rglob("*"))
    for call in (lambda: check_env_target(env), lambda: merge_env(env, SET)):
        with pytest.raises((EnvFileError, OutputError)) as caught:
            call()
        assert str(caught.value).startswith(f"--write-env {env}: ")
        assert message in str(caught.value) and "\n" not in str(caught.value)
    assert sorted(tmp_path.rglob("*")) == before
    if setup in ("read-only", "not-utf8"):
        assert env.read_bytes() in (b"A=1\n", b"A=\xff\n")


# --- through retrysim tune ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("read-only", "read-only"),
        ("not-utf8", "not UTF-8"),
        ("missing-folder", "no such folder"),
        ("hard-link", "hard links"),
        ("dangling", "does not exist"),
    ],
)
def test_tune_refuses_its_write_env_before_it_tunes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setup: str, message: str
) -> None:
    env = tmp_path / ".env"
    if setup == "read-only":
        env.write_text("A=1\n", encoding="utf-8")
        env.chmod(0o444)
    elif setup == "not-utf8":
        env.write_bytes(b"A=\xff\n")
    elif setup == "hard-link":
        env.write_text("A=1\n", encoding="utf-8")
        os.link(env, tmp_path / "other.env")
    elif setup == "dangling":
        env.symlink_to(tmp_path / "gone.env")
    else:
        env = tmp_path / "nowhere" / ".env"
    ran: list[bool] = []
    monkeypatch.setattr(tune_cmd, "_run", lambda *args, **kwargs: ran.append(True))
    result = CliRunner().invoke(
        app,
        [
            "tune",
            "thundering-herd",
            "--search",
            "policy.max_attempts=2..4",
            "--write-env",
            str(env),
        ],
    )
    assert result.exit_code == 2, result.output
    assert ran == []  # refused before a single run
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"retrysim: error: --write-env {env}: ")
    assert message in lines[0]


# --- through the lab's e key --------------------------------------------------------------------


def test_the_labs_e_key_merges_the_same_way_and_refuses_the_same_files(tmp_path: Path) -> None:
    real = tmp_path / "shared.env"
    real.write_bytes(b"KEEP='a\xe2\x80\xa8b'\r\nRETRY__SCHEDULER_MAX_WAIT=8  # mine\r\n")
    env = tmp_path / ".env"
    env.symlink_to(real)
    lab = LabModel(load("thundering-herd", load_scenario("thundering-herd")), env_path=env)
    lab.set(BY_OPTION["max_wait"], 30)
    assert lab.write_env() == ["RETRY__SCHEDULER_MAX_WAIT: 8 -> 30"]
    assert env.is_symlink()
    assert real.read_bytes() == b"KEEP='a\xe2\x80\xa8b'\r\nRETRY__SCHEDULER_MAX_WAIT=30  # mine\r\n"
    real.chmod(0o444)
    lab.set(BY_OPTION["max_wait"], 40)
    with pytest.raises(OutputError, match=f"^--write-env {env}: read-only"):
        lab.write_env()
    assert b"=30  # mine" in real.read_bytes()


def test_a_value_an_unreadable_line_would_swallow_is_refused() -> None:
    """A lone quote on a line python-dotenv cannot read pairs with the next quote it meets:
    writing ``RETRY__PROFILE=''`` after it would fold that line into the broken one. The
    variables would read the same, but the file would no longer be the user's lines with one
    changed, so the merge says which line to fix and writes nothing."""
    text = "RETRY__PROFILE=\n'\nRETRY__PROFILE=\n"
    with pytest.raises(EnvFileError, match=r"\.env: line 2 is not one python-dotenv can read"):
        merge_text(text, {"RETRY__PROFILE": ""})
    # the same line is harmless when nothing quoted is written after it
    merged, _ = merge_text(text, {"RETRY__WORKER_MAX_ATTEMPTS": "6"})
    assert merged.startswith(text)
