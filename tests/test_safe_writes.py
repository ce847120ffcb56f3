"""Every file retrysim writes: atomic, through symlinks, never over what the user protected.

``retrysim.output.atomic_path`` is the one writer and ``check_target`` its rules; each command
checks its targets before it simulates. A refusal is one line naming the user's path, never
the hidden temporary file beside it, and leaves every file as it was.
"""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from retrysim.cli.app import app
from retrysim.cli.shell import Shell
from retrysim.output import OutputError, atomic_path, check_target, write_text


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "160"})


def files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# --- the writer ---------------------------------------------------------------------------------


def test_a_symlink_is_written_through_and_stays_a_link(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "fig.svg"
    target.write_text("old", encoding="utf-8")
    link = tmp_path / "fig.svg"
    link.symlink_to(target)
    with atomic_path(link) as tmp:
        assert tmp.parent == target.parent  # the rename stays on the target's file system
        tmp.write_text("new", encoding="utf-8")
    assert link.is_symlink() and target.read_text(encoding="utf-8") == "new"
    assert files(tmp_path) == ["fig.svg", "real", "real/fig.svg"]


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o755])
def test_the_replaced_files_permissions_are_kept(tmp_path: Path, mode: int) -> None:
    target = tmp_path / "result.json"
    target.write_text("{}", encoding="utf-8")
    target.chmod(mode)
    write_text(target, "[]")
    assert target.stat().st_mode & 0o777 == mode
    assert target.read_text(encoding="utf-8") == "[]"


def test_text_is_written_with_its_own_line_endings(tmp_path: Path) -> None:
    target = tmp_path / "x.toml"
    write_text(target, "a = 1\r\nb = '\u2028'\r")
    assert target.read_bytes() == "a = 1\r\nb = '\u2028'\r".encode()


def test_a_failure_while_writing_names_the_users_path_not_the_temporary(tmp_path: Path) -> None:
    target = tmp_path / "plot.png"
    with pytest.raises(OSError) as caught, atomic_path(target, "--plot") as tmp:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp))
    assert caught.value.filename == str(target)
    assert ".tmp" not in str(caught.value)
    assert files(tmp_path) == []


def _make(kind: str, path: Path) -> None:
    if kind == "read-only":
        path.write_text("mine", encoding="utf-8")
        path.chmod(0o444)
    elif kind == "dangling":
        path.symlink_to(path.parent / "gone")
    elif kind == "loop":
        path.symlink_to(path)
    elif kind == "hard-link":
        path.write_text("mine", encoding="utf-8")
        os.link(path, path.parent / "twin")
    elif kind == "fifo":
        os.mkfifo(path)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("read-only", "read-only (mode 444); nothing was written"),
        ("dangling", "a symlink to {gone}, which does not exist"),
        ("loop", "Too many levels of symbolic links"),
        ("hard-link", "has 2 hard links"),
        ("fifo", "not a regular file"),
    ],
)
def test_what_must_not_be_replaced_is_refused_in_one_line(
    tmp_path: Path, kind: str, message: str
) -> None:
    target = tmp_path / "out.png"
    _make(kind, target)
    before = {p.name: (p.lstat().st_ino, p.lstat().st_mode) for p in tmp_path.iterdir()}
    for attempt in (lambda: check_target(target, "--plot"), lambda: write_text(target, "x")):
        with pytest.raises(OutputError) as caught:
            attempt()
        text = str(caught.value)
        assert text.startswith((f"--plot {target}: ", f"{target}: ")), text
        assert message.format(gone=tmp_path / "gone") in text
        assert "\n" not in text and ".tmp" not in text
    assert {p.name: (p.lstat().st_ino, p.lstat().st_mode) for p in tmp_path.iterdir()} == before


# --- the commands, before they simulate ---------------------------------------------------------


TWO = ["--profile", "bindu,standard"]
GRID = ["--grid", "policy.max_attempts=1,2"]
SEARCH = ["--search", "policy.max_attempts=1..3"]


@pytest.mark.usefixtures("no_simulation")
@pytest.mark.parametrize("kind", ["read-only", "dangling", "hard-link"])
@pytest.mark.parametrize(
    ("args", "target"),
    [
        (["run", "redis-blip", "--plot", "{t}"], "x.png"),
        (["run", "redis-blip", "--out", "{d}"], "out/result.json"),
        (["run", "redis-blip", "--out", "{d}"], "out/attempts.csv"),
        (["compare", "redis-blip", *TWO, "--plot", "{t}"], "c.svg"),
        (["compare", "redis-blip", *TWO, "--out", "{d}"], "out/compare.json"),
        (["sweep", "redis-blip", *GRID, "--out", "{d}"], "out/sweep.csv"),
        (["sweep", "redis-blip", *GRID, "--out", "{d}"], "out/sweep.json"),
        (["tune", "redis-blip", *SEARCH, "--out", "{d}"], "out/tune.json"),
        (["settings", "--plot", "{t}"], "s.pdf"),
        (["schema", "result", "--out", "{t}"], "schema.json"),
        (["chaos", "redis-blip", "--target", "redis://127.0.0.1:1", "--out", "{d}"], "o/calls.csv"),
        (["check", "--junit", "{t}"], "junit.xml"),
        (["check", "--html", "{t}"], "check.html"),
    ],
)  # fmt: skip
def test_every_output_target_is_refused_before_the_run(
    tmp_path: Path, args: list[str], target: str, kind: str
) -> None:
    path = tmp_path / target
    path.parent.mkdir(exist_ok=True)
    _make(kind, path)
    before = {p.name: p.lstat().st_ino for p in path.parent.iterdir()}
    result = invoke(*(a.format(t=path, d=path.parent) for a in args))
    assert result.exit_code == 2, result.output
    assert result.stdout == ""  # no report: refused before anything ran
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("retrysim: error: --") and f"{path}: " in lines[0]
    assert ".tmp" not in lines[0]
    assert {p.name: p.lstat().st_ino for p in path.parent.iterdir()} == before


@pytest.mark.parametrize("kind", ["read-only", "dangling"])
def test_plot_refuses_its_figure_before_drawing(tmp_path: Path, kind: str) -> None:
    out = tmp_path / "out"
    assert (
        invoke("run", "redis-blip", "--set", "clients.count=50", "--out", str(out)).exit_code == 0
    )
    _make(kind, out / "timeline.png")  # where plot draws by default
    result = invoke("plot", str(out), "--kind", "timeline")
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"retrysim: error: --out {out / 'timeline.png'}: ")
    assert ".tmp" not in result.stderr and len(result.stderr.splitlines()) == 1


@pytest.mark.usefixtures("no_simulation")
def test_a_dangling_symlink_out_folder_is_refused_before_the_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.symlink_to(tmp_path / "gone")
    result = invoke("run", "redis-blip", "--out", str(out))
    assert result.exit_code == 2, result.output
    assert f"--out {out}: {out} is a symlink to {tmp_path / 'gone'}, which does not exist" in (
        result.stderr
    )


def test_a_symlinked_out_folder_and_plot_are_written_through(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "out").symlink_to(tmp_path / "real")
    figure = tmp_path / "real" / "fig.png"
    figure.write_bytes(b"old")
    (tmp_path / "fig.png").symlink_to(figure)
    args = ["run", "redis-blip", "--set", "clients.count=50", "--out", str(tmp_path / "out")]
    result = invoke(*args, "--plot", str(tmp_path / "fig.png"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out").is_symlink() and (tmp_path / "fig.png").is_symlink()
    assert figure.read_bytes().startswith(b"\x89PNG")
    assert files(tmp_path / "real") == ["attempts.csv", "calls.csv", "fig.png", "result.json"]


# --- the shell's save ---------------------------------------------------------------------------


def test_shell_save_refuses_a_read_only_file_naming_it(tmp_path: Path) -> None:
    target = tmp_path / "mine.toml"
    target.write_text("# keep\n", encoding="utf-8")
    target.chmod(0o444)
    shell = Shell(io.StringIO())
    for line in ("load redis-blip", "set clients.count=7", f"save {target}"):
        shell.execute(line)
    said = shell.stdout.getvalue() if isinstance(shell.stdout, io.StringIO) else ""
    assert f"{target}: read-only (mode 444); nothing was written" in said
    assert ".tmp" not in said
    assert target.read_text(encoding="utf-8") == "# keep\n"
    assert shell.errors == 1


def test_shell_save_keeps_a_crlf_files_line_endings(tmp_path: Path) -> None:
    source = tmp_path / "crlf.toml"
    source.write_bytes(
        b'# ours\r\nname = "crlf"\r\nduration = 10\r\n\r\n[policy]\r\noperation = "worker"\r\n'
        b'\r\n[clients]\r\ncount = 50  # small\r\n\r\n[service]\r\nkind = "ideal"\r\n'
    )
    shell = Shell(io.StringIO())
    for line in (f"load {source}", "set clients.count=60", "set policy.max_attempts=4", "save"):
        shell.execute(line)
    assert shell.errors == 0
    data = source.read_bytes()
    assert b"count = 60  # small\r\n" in data and b"max_attempts = 4\r\n" in data
    assert b"\n" not in data.replace(b"\r\n", b"")  # every line still CRLF
