"""``retrysim shell``: load a scenario, change it, run it, compare runs, save it.

Built on the standard library's ``cmd``: tab completion of commands and dotted keys and a
history file when interactive; plain line-by-line reading from a pipe, so sessions can be
scripted and tested. A failing command prints one line and the session goes on.
"""

from __future__ import annotations

import cmd
import contextlib
import copy
import difflib
import shlex
import sys
from pathlib import Path
from typing import IO, Any

from rich.console import Console

from retrysim.cli import common
from retrysim.cli.errors import UsageError, is_bad_input, one_line
from retrysim.names import DEFAULT_TABLE_METRICS
from retrysim.suggest import unknown_key

HISTORY = Path.home() / ".retrysim_history"


class Shell(cmd.Cmd):
    """The interactive session. Commands are the ``do_*`` methods; ``help NAME`` shows each."""

    intro = (
        "retrysim shell. 'load thundering-herd' to start, 'help' for commands, 'quit' to leave.\n"
        "Tab completes commands, scenario names and keys."
    )
    doc_header = "Commands (help NAME for details):"

    def __init__(self, stdin: IO[str], stdout: IO[str], interactive: bool) -> None:
        super().__init__(stdin=stdin, stdout=stdout)
        self.use_rawinput = interactive
        self.prompt = "retrysim> " if interactive else ""
        if not interactive:
            self.intro = ""
        self.console = Console(
            file=stdout, force_terminal=interactive, width=None if interactive else 100
        )
        self.source = ""
        self.base: dict[str, Any] | None = None
        self.data: dict[str, Any] | None = None
        self.last: dict[str, Any] | None = None
        self.previous: dict[str, Any] | None = None
        self._settings: Any = None
        self.errors = 0

    # -- plumbing -------------------------------------------------------------------------------

    def onecmd(self, line: str) -> bool:
        try:
            return super().onecmd(line)
        except Exception as error:  # a bug must not end the session either; say which it is
            if isinstance(error, KeyError) and error.args:
                self._error(str(error.args[0]))  # an unknown key, named by the lookup
            elif is_bad_input(error, _paths_of(line)):
                self._error(one_line(error))
            else:
                self._error(
                    f"internal error: {type(error).__name__}: {error} -- this is a bug in "
                    "retrysim, not in your input; please report it with the commands you ran"
                )
        return False

    def _error(self, message: str) -> None:
        self.errors += 1
        for part in message.splitlines():
            # soft_wrap: one error is one line, however long, so scripts can grep it
            self.console.print(f"[red]error:[/] {part}", highlight=False, soft_wrap=True)

    def emptyline(self) -> bool:
        return False  # an empty line does nothing (cmd's default repeats the last command)

    def default(self, line: str) -> None:
        word = line.split(maxsplit=1)[0]
        close = difflib.get_close_matches(word, self.get_names_plain(), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else "; type 'help'"
        raise UsageError(f"unknown command {word!r}{hint}")

    def get_names(self) -> list[str]:
        return [name for name in super().get_names() if name != "do_EOF"]  # not a command

    def get_names_plain(self) -> list[str]:
        return [name[3:] for name in self.get_names() if name.startswith("do_")]

    def _need(self) -> dict[str, Any]:
        if self.data is None:
            raise UsageError("no scenario loaded; use 'load NAME' or 'load FILE' first")
        return self.data

    def _validated(self, data: dict[str, Any], what: str) -> Any:
        from pydantic import ValidationError

        from retrysim.scenario import Scenario, format_validation_error

        try:
            return Scenario.model_validate(data)
        except ValidationError as error:
            raise UsageError(format_validation_error(error, what)) from None

    def _settings_now(self) -> Any:
        if self._settings is None:
            self._settings, _ = common.settings(None)
        return self._settings

    # -- commands -------------------------------------------------------------------------------

    def do_load(self, arg: str) -> None:
        """load NAME|FILE: load a bundled scenario or a TOML file (replaces any edits)."""
        if not arg.strip():
            raise UsageError("load needs a bundled scenario name or a file")
        scenario = common.load(arg.strip(), {})
        self.source = arg.strip()
        self.base = scenario.model_dump(mode="python")
        self.data = copy.deepcopy(self.base)
        self.last = self.previous = None
        self.console.print(
            f"loaded [bold]{scenario.name}[/]: {' '.join(scenario.description.split())}"
        )

    def complete_load(self, text: str, *_: Any) -> list[str]:
        from retrysim.library import bundled_scenarios

        return [name for name in bundled_scenarios() if name.startswith(text)]

    def do_show(self, arg: str) -> None:
        """show: print the current scenario (with your edits) as TOML."""
        from retrysim.toml_out import dumps

        self.stdout.write(dumps(self._need()))  # raw: wrapping would break the TOML

    def do_set(self, arg: str) -> None:
        """set KEY=VALUE: change a dotted key (set policy.max_attempts=5, set faults.0.end=40)."""
        from retrysim.scenario import set_dotted

        key, value = common.parse_assignment(arg.strip(), "set")
        data = copy.deepcopy(self._need())
        try:
            set_dotted(data, key, common.parse_value(value))
        except KeyError:
            raise UsageError(_unknown(key, data)) from None
        self.data = self._validated(data, f"set {key}").model_dump(mode="python")
        self.console.print(f"{key} = {common.parse_value(value)!r}", highlight=False)

    def complete_set(self, text: str, *_: Any) -> list[str]:
        if self.data is None:
            return []
        return [k for k in common.dotted_keys(self.data) if k.startswith(text)]

    complete_unset = complete_set

    def do_unset(self, arg: str) -> None:
        """unset KEY: put a key back to its value in the loaded scenario."""
        from retrysim.scenario import set_dotted

        key = arg.strip()
        if not key:
            raise UsageError("unset needs a key, e.g. unset policy.max_attempts")
        data = copy.deepcopy(self._need())
        original = _get(self.base, key)
        try:
            set_dotted(data, key, original)
        except KeyError:
            raise UsageError(_unknown(key, data)) from None
        self.data = self._validated(data, f"unset {key}").model_dump(mode="python")
        self.console.print(f"{key} = {original!r} (as loaded)", highlight=False)

    def do_fault(self, arg: str) -> None:
        """fault add KIND key=value ... | fault rm N | fault list

        e.g. fault add outage start=10 end=40 error=ConnectionResetError
        """
        words = shlex.split(arg)
        data = copy.deepcopy(self._need())
        if not words or words[0] == "list":
            for i, item in enumerate(data["faults"]):
                fields = ", ".join(
                    f"{k}={v}" for k, v in item.items() if v is not None and k != "kind"
                )
                self.console.print(f"{i}: {item['kind']} {fields}", highlight=False)
            if not data["faults"]:
                self.console.print("no faults")
            return
        if words[0] == "add" and len(words) >= 2:
            fault: dict[str, Any] = {"kind": words[1]}
            for word in words[2:]:
                key, value = common.parse_assignment(word, "fault add")
                fault[key] = common.parse_value(value)
            data["faults"].append(fault)
            self.data = self._validated(data, f"fault add {words[1]}").model_dump(mode="python")
            self.console.print(f"added fault {len(data['faults']) - 1}: {words[1]}")
            return
        if words[0] == "rm" and len(words) == 2:
            if not words[1].isdigit() or int(words[1]) >= len(data["faults"]):
                raise UsageError(
                    f"fault rm {words[1]}: no such fault (there are {len(data['faults'])})"
                )
            removed = data["faults"].pop(int(words[1]))
            self.data = data
            self.console.print(f"removed fault {words[1]}: {removed['kind']}")
            return
        raise UsageError("usage: fault add KIND key=value ... | fault rm N | fault list")

    def do_run(self, arg: str) -> None:
        """run [SEED]: simulate the current scenario and print the summary."""
        from retrysim.report import latency_table, load_table, outcome_table
        from retrysim.runner import run

        scenario = self._validated(self._need(), "scenario")
        # Edits that touch only faults, or a repeated run, reuse the cached fault-free baseline.
        doc = run(scenario, seed=_seed(arg), settings=self._settings_now()).document
        self.previous, self.last = self.last, doc
        self.console.print(outcome_table(doc))
        self.console.print(load_table(doc))
        self.console.print(latency_table(doc))
        share = doc["jitter_spread"]["peak_share_100ms"]
        if share is not None:
            self.console.print(
                f"jitter spread: {100 * share:.2f}% of retries in the busiest 100 ms"
            )

    def do_compare(self, arg: str) -> None:
        """compare KEY=V1,V2,...: run the current scenario once per value, side by side."""
        from retrysim.cli.compare_cmd import split_values
        from retrysim.report import compare_table
        from retrysim.sweep import compare, grid_variants

        key, values = common.parse_assignment(arg.strip(), "compare")
        scenario = self._validated(self._need(), "scenario")
        variants = grid_variants([(key, [common.parse_value(v) for v in split_values(values)])])
        for variant in variants:
            try:
                scenario.with_overrides(variant.sets)
            except KeyError:
                raise UsageError(_unknown(key, self._need())) from None
        results = compare(scenario, variants, [scenario.seed], settings=self._settings_now())
        self.console.print(
            compare_table(scenario.name, [scenario.seed], results, list(DEFAULT_TABLE_METRICS))
        )

    complete_compare = complete_set

    def do_diff(self, arg: str) -> None:
        """diff: this run against the previous one, metric by metric."""
        from rich.table import Table

        from retrysim.metrics import metric
        from retrysim.report import METRIC_LABELS, fmt_metric

        if self.last is None or self.previous is None:
            raise UsageError("diff needs two runs: 'run', change something, 'run' again")
        table = Table(title="this run vs previous", title_justify="left")
        for column in ("metric", "previous", "now", "change"):
            table.add_column(column, justify="left" if column == "metric" else "right")
        for name in DEFAULT_TABLE_METRICS:
            before, now = metric(self.previous, name), metric(self.last, name)
            change = "–" if before is None or now is None else f"{now - before:+.4g}"
            table.add_row(
                METRIC_LABELS[name][0], fmt_metric(name, before), fmt_metric(name, now), change
            )
        self.console.print(table)

    def do_hist(self, arg: str) -> None:
        """hist: the jitter-spread histogram of the last run."""
        from retrysim.report import spread_histogram

        self.console.print(spread_histogram(self._last()))

    def do_timeline(self, arg: str) -> None:
        """timeline: attempts per second over time in the last run."""
        from retrysim.report import timeline_chart

        self.console.print(timeline_chart(self._last()))

    def _last(self) -> dict[str, Any]:
        if self.last is None:
            raise UsageError("nothing has run yet; type 'run'")
        return self.last

    def do_save(self, arg: str) -> None:
        """save FILE: write the current scenario (with your edits) as TOML, atomically."""
        from retrysim.output import write_text
        from retrysim.toml_out import dumps

        if not arg.strip():
            raise UsageError("save needs a file name, e.g. save my-scenario.toml")
        data = self._need()
        self._validated(data, "scenario")
        write_text(Path(arg.strip()), dumps(data))
        self.console.print(f"saved {arg.strip()}")

    def do_quit(self, arg: str) -> bool:
        """quit: leave the shell (also: exit, Ctrl-D)."""
        return True

    do_exit = do_quit

    def do_EOF(self, arg: str) -> bool:  # noqa: N802 - the name cmd gives end of input
        """Ctrl-D: leave the shell."""
        if self.use_rawinput:
            self.console.print()
        return True


def _paths_of(line: str) -> list[Path]:
    """Every word of a shell command as a path: a file error about one of them is the user's."""
    try:
        return [Path(word) for word in shlex.split(line)[1:]]
    except ValueError:  # unbalanced quotes: no paths to speak of
        return []


def _seed(arg: str) -> int | None:
    text = arg.strip()
    if not text:
        return None
    if not text.isdigit():
        raise UsageError(f"run {text}: the seed must be a whole number >= 0")
    return int(text)


def _get(data: Any, key: str) -> Any:
    node = data
    for part in key.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return None
    return node


def _unknown(key: str, data: dict[str, Any]) -> str:
    return unknown_key(key, data)  # the same answer as --set and scenario files give


def run_shell(stdin: IO[str] | None = None, stdout: IO[str] | None = None) -> int:
    """Run a session on the given streams (default: the terminal, or a pipe)."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    interactive = stdin.isatty() and stdout.isatty()
    shell = Shell(stdin, stdout, interactive)
    if interactive:
        _readline_on(shell)
    try:
        shell.cmdloop()
    except KeyboardInterrupt:
        stdout.write("\n")
    finally:
        if interactive:
            _readline_off()
    # A scripted session (a pipe) reports failure like any command: exit 2 if a command failed.
    return 2 if shell.errors and not interactive else 0


def _readline_on(shell: Shell) -> None:
    try:
        import readline
    except ImportError:  # pragma: no cover - readline exists on Linux and macOS
        return
    readline.set_completer_delims(" \t\n")
    with contextlib.suppress(OSError):
        readline.read_history_file(HISTORY)
    shell.completekey = "tab"


def _readline_off() -> None:
    try:
        import readline

        readline.set_history_length(1000)
        readline.write_history_file(HISTORY)
    except (ImportError, OSError):
        pass
