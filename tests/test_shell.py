"""The shell without a terminal: completion on prompt_toolkit Documents, the toolbar, the save
question on leaving, diff's formatting, one-line errors, and saving a loaded file."""

from __future__ import annotations

import io
import tomllib
from pathlib import Path

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from retrysim.cli.shell import Shell, run_shell
from retrysim.cli.shell.completer import ShellCompleter, fault_fields
from retrysim.cli.shell.interactive import Ask, leave, toolbar
from retrysim.names import PROFILES


def session(*commands: str) -> Shell:
    shell = Shell(io.StringIO())
    for line in commands:
        shell.execute(line)
    return shell


def output(shell: Shell) -> str:
    stream = shell.stdout
    assert isinstance(stream, io.StringIO)
    return stream.getvalue()


def complete(shell: Shell, line: str) -> list[str]:
    found = ShellCompleter(shell).get_completions(Document(line), CompleteEvent())
    return [c.text for c in found]


# --- completion ----------------------------------------------------------------------------------


def test_a_command_completes_with_the_space_after_it() -> None:
    assert complete(session(), "lo") == ["load "]
    assert complete(session(), "  ru") == ["run "]
    assert "compare " in complete(session(), "")


def test_load_completes_scenario_names_and_toml_files_not_any_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "mine.toml").write_text("", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("", encoding="utf-8")
    (tmp_path / "more").mkdir()
    monkeypatch.chdir(tmp_path)
    shell = session()
    assert complete(shell, "load thun") == ["thundering-herd"]
    assert complete(shell, "load m") == ["mine.toml", "more/"]
    assert complete(shell, "load no") == []  # notes.txt is not a scenario
    assert complete(shell, "save ") == ["mine.toml", "more/"]
    assert complete(shell, f"save {tmp_path}/mi") == [f"{tmp_path}/mine.toml"]


def test_keys_complete_one_level_at_a_time() -> None:
    shell = session("load redis-blip")
    assert complete(shell, "set pol") == ["policy."]
    assert "policy.max_attempts=" in complete(shell, "set policy.max")
    assert complete(shell, "set faults.") == ["faults.0."]
    assert "faults.0.end=" in complete(shell, "set faults.0.e")
    assert "policy.max_attempts" in complete(shell, "unset policy.m")  # unset takes no value
    assert complete(shell, "set policy.max_attempts=3 ") == []  # one assignment per set


def test_values_complete_where_they_are_a_known_set() -> None:
    shell = session("load redis-blip")
    assert complete(shell, "set policy.profile=") == list(PROFILES)
    assert complete(shell, "set policy.profile=bi") == ["bindu"]
    assert complete(shell, "set faults.0.error=ConnectionRes") == ["ConnectionResetError"]
    # compare takes several values: complete the one being typed, skip those already given
    later = complete(shell, "compare policy.profile=bindu,")
    assert "bindu" not in later and "documented" in later


def test_service_kind_and_its_fixed_set_fields_complete() -> None:
    shell = session("load redis-blip")
    kinds = complete(shell, "set service.kind=")
    assert {"queue", "processor_sharing", "lock"} <= set(kinds)
    assert complete(shell, "set service.kind=proc") == ["processor_sharing"]
    assert complete(shell, "set service.on_busy=") == ["wait", "fail"]
    assert complete(shell, "set service.busy_error=Conf") == ["Conflict"]
    assert complete(shell, "set service.cancel_abandoned=t") == ["true"]
    assert complete(shell, "set service.concurrency=") == []  # a number is the user's to type


def test_nothing_to_complete_before_a_scenario_is_loaded() -> None:
    assert complete(session(), "set pol") == []


def test_metrics_and_fault_kinds_complete() -> None:
    shell = session("load redis-blip")
    assert complete(shell, "diff p99_") == ["p99_latency", "p99_overhead"]
    assert "p99_latency" not in complete(shell, "diff p99_latency p99")
    assert complete(shell, "fault ") == ["add", "rm", "list"]
    assert set(complete(shell, "fault add ")) == set(fault_fields())
    assert "outage" in fault_fields() and "mode" in fault_fields()["outage"]
    assert complete(shell, "fault add outage start=1 mo") == ["mode="]
    assert complete(shell, "fault add outage mode=b") == ["blackhole"]
    assert complete(shell, "fault rm ") == ["0"]
    assert complete(shell, "help fa") == ["fault"]


# --- what the shell says ----------------------------------------------------------------------


def test_an_error_names_the_key_once() -> None:
    shell = session("load redis-blip", "set policy.max_atempts=3")
    line = output(shell).splitlines()[-1].replace('"', "'")
    assert line == "error: policy.max_atempts: unknown key (did you mean 'max_attempts'?)"
    assert shell.errors == 1


def test_diff_formats_changes_as_the_compare_table_does() -> None:
    shell = session("load redis-blip", "run", "set policy.max_attempts=1", "run", "diff")
    table = output(shell).split("this run vs previous", 1)[1]
    success = next(line for line in table.splitlines() if "success rate" in line)
    assert "100.00%" in success and "94.92%" in success and "-5.08 pp" in success
    p99 = next(line for line in table.splitlines() if "p99 latency" in line)
    assert "-3.995s" in p99 and "pp" not in p99  # seconds, as the values are written


def test_diff_takes_metric_names_and_rejects_unknown_ones() -> None:
    shell = session("load redis-blip", "diff p99_latncy")
    assert "p99_latncy: unknown metric (did you mean 'p99_latency'?)" in output(shell).replace(
        '"', "'"
    )


# --- unsaved changes, the toolbar, the question on leaving -----------------------------------


def test_the_toolbar_says_what_is_loaded_and_whether_it_is_saved(tmp_path: Path) -> None:
    def text(shell: Shell) -> str:
        return "".join(part[1] for part in toolbar(shell))

    shell = session()
    assert "no scenario loaded" in text(shell)
    shell.execute("load redis-blip")
    assert "redis-blip (bundled)" in text(shell) and "unsaved" not in text(shell)
    shell.execute("set clients.count=7")
    assert "unsaved changes" in text(shell)
    shell.execute("unset clients.count")
    assert "unsaved" not in text(shell)  # back to what was loaded: nothing to save
    shell.execute("set clients.count=7")
    shell.execute(f"save {tmp_path / 'x.toml'}")
    assert "unsaved" not in text(shell)


def asker(*answers: str | None) -> tuple[list[str], Ask]:
    asked: list[str] = []
    queue = list(answers)

    def ask(message: str, default: str) -> str | None:
        asked.append(f"{message}|{default}")
        return queue.pop(0)

    return asked, ask


def test_leaving_asks_only_when_there_are_unsaved_changes(tmp_path: Path) -> None:
    asked, ask = asker()
    assert leave(session("load redis-blip"), ask)
    assert asked == []
    shell = session("load redis-blip", "set clients.count=7")
    asked, ask = asker("maybe", "c")
    assert not leave(shell, ask)
    assert len(asked) == 2  # an unclear answer is asked again
    asked, ask = asker(None)  # Ctrl-C or Ctrl-D at the question: stay
    assert not leave(shell, ask)
    asked, ask = asker("n")
    assert leave(shell, ask)


def test_answering_yes_saves_to_the_file_named(tmp_path: Path) -> None:
    shell = session("load redis-blip", "set clients.count=7")
    target = tmp_path / "kept.toml"
    asked, ask = asker("y", str(target))
    assert leave(shell, ask)
    assert asked[1] == "Save to [redis-blip.toml]: |"  # the default shown, not pre-typed
    assert tomllib.loads(target.read_text(encoding="utf-8"))["clients"]["count"] == 7


def test_enter_at_the_file_question_saves_to_the_offered_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    shell = session("load redis-blip", "set clients.count=7")
    _, ask = asker("y", "")
    assert leave(shell, ask)
    saved = tomllib.loads((tmp_path / "redis-blip.toml").read_text(encoding="utf-8"))
    assert saved["clients"]["count"] == 7


def test_a_failed_save_keeps_the_session(tmp_path: Path) -> None:
    shell = session("load redis-blip", "set clients.count=7")
    _, ask = asker("y", str(tmp_path / "no" / "such" / "x.toml"))
    assert not leave(shell, ask)
    assert "error:" in output(shell)


# --- saving a file the user loaded --------------------------------------------------------------

COMMENTED = """\
# our staging blip, agreed with the SRE team
name = "staging-blip"
description = "Redis blips in staging."
duration = 60            # one minute of traffic

[policy]
operation = "scheduler"  # enqueueing tasks

[clients]
count = 500              # the staging fleet
arrival = { kind = "poisson", rate = 200 }

[service]
kind = "ideal"

[[faults]]               # the failover we saw on Tuesday
kind = "outage"
start = 20
end = 23
"""


def test_save_keeps_the_comments_of_a_loaded_file(tmp_path: Path) -> None:
    source = tmp_path / "staging.toml"
    source.write_text(COMMENTED, encoding="utf-8")
    target = tmp_path / "edited.toml"
    out = io.StringIO()
    commands = f"load {source}\nset policy.max_attempts=6\nset faults.0.end=40\nsave {target}\n"
    assert run_shell(io.StringIO(commands), out) == 0, out.getvalue()
    text = target.read_text(encoding="utf-8")
    assert text == (
        COMMENTED.replace('"scheduler"  # enqueueing tasks\n', '"scheduler"  # enqueueing tasks\n'
                          "max_attempts = 6\n").replace("end = 23", "end = 40.0")
    )  # fmt: skip


def test_save_without_a_name_writes_back_to_the_loaded_file(tmp_path: Path) -> None:
    source = tmp_path / "staging.toml"
    source.write_text(COMMENTED, encoding="utf-8")
    shell = session(f"load {source}", "set clients.count=9", "save")
    assert shell.errors == 0, output(shell)
    text = source.read_text(encoding="utf-8")
    assert "count = 9              # the staging fleet" in text
    assert text.startswith("# our staging blip")


def test_a_bundled_scenario_is_saved_fresh_and_never_written_back() -> None:
    shell = session("load redis-blip", "save")
    assert "save needs a file name" in output(shell)
