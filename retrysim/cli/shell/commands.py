"""The shell's commands: what each one does to the session, and how a failing one is reported.

The same :class:`Shell` serves a terminal (through :mod:`retrysim.cli.shell.interactive`) and a
pipe (line by line), so a scripted session behaves exactly like a typed one. Each command is a
method registered with :func:`command`; the table :data:`COMMANDS` also tells the completer
what each command's arguments are. A failing command prints one line and the session goes on.
"""

from __future__ import annotations

import contextlib
import copy
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from rich.console import Console
from rich.text import Text

from retrysim.cli import common
from retrysim.cli.exits import UsageError, is_bad_input, one_line
from retrysim.model import session
from retrysim.model.session import Loaded
from retrysim.results.metric_table import DEFAULT_TABLE_METRICS, METRIC_NAMES
from retrysim.safe import markup
from retrysim.suggest import closest, hint, unknown_key

if TYPE_CHECKING:
    from rich.status import Status

    from retrysim.results.document import ResultDocument

#: What a command's arguments are, for completion: nothing, a scenario (name or .toml file), a
#: .toml file, dotted keys (``key`` or ``key=value``), metric names, or a fault subcommand.
Args = Literal["none", "scenario", "file", "key", "assignment", "metrics", "fault", "command"]

Handler = Callable[["Shell", str], bool | None]


@dataclass(frozen=True)
class Command:
    """One shell command: its name, usage line, help text and argument kind."""

    name: str
    usage: str
    help: str
    args: Args
    handler: Handler


COMMANDS: dict[str, Command] = {}


def command(name: str, usage: str, args: Args = "none") -> Callable[[Handler], Handler]:
    """Register a method as the shell command ``name``; its docstring is its help."""

    def register(handler: Handler) -> Handler:
        text = " ".join((handler.__doc__ or "").split())
        COMMANDS[name] = Command(name, usage, text, args, handler)
        return handler

    return register


#: Commands that run simulations: Ctrl-C during one says "run cancelled".
RUNS = frozenset({"run", "compare"})
_HINT = "(Ctrl-C cancels)"


class Shell:
    """One session: the loaded scenario and its edits, the last two runs, the error count."""

    def __init__(self, stdout: IO[str], interactive: bool = False) -> None:
        self.stdout = stdout
        self.interactive = interactive
        self.console = Console(
            file=stdout, force_terminal=interactive, width=None if interactive else 100
        )
        self.loaded: Loaded | None = None
        self.last: ResultDocument | None = None
        self.previous: ResultDocument | None = None
        self._settings: Any = None
        self.errors = 0

    # -- dispatch -------------------------------------------------------------------------------

    def execute(self, line: str) -> bool:
        """Run one command line; True when it asks to leave. Errors are printed, not raised.

        KeyboardInterrupt is not caught here: the caller decides what Ctrl-C means (cancel a
        command at a terminal, end a piped session).
        """
        verb, _, arg = line.strip().partition(" ")
        if not verb or verb.startswith("#"):
            return False
        try:
            found = COMMANDS.get(verb)
            if found is None:
                close = closest(verb, COMMANDS)
                tip = f"; did you mean '{close}'?" if close else "; type 'help'"
                raise UsageError(f"unknown command {verb!r}{tip}")
            return bool(found.handler(self, arg.strip()))
        except Exception as error:  # a bug must not end the session either; say which it is
            if isinstance(error, KeyError) and error.args:
                self.error(str(error.args[0]))  # an unknown key, named by the lookup
            elif is_bad_input(error, _paths_of(arg)):
                self.error(one_line(error))
            else:
                self.error(
                    f"internal error: {type(error).__name__}: {one_line(error)} -- this is a bug "
                    "in retrysim, not in your input; please report it with the commands you ran"
                )
        return False

    def cancelled(self, line: str) -> None:
        """Say that Ctrl-C stopped ``line``; nothing it would have changed was changed."""
        verb = line.strip().partition(" ")[0]
        self.console.print()  # the interrupted output may have stopped mid-line
        self.console.print("run cancelled" if verb in RUNS else "cancelled", style="yellow")

    def error(self, message: str) -> None:
        self.errors += 1
        for part in message.splitlines():
            # soft_wrap: one error is one line, however long, so scripts can grep it
            self.console.print(f"[red]error:[/] {markup(part)}", highlight=False, soft_wrap=True)

    def need(self) -> Loaded:
        if self.loaded is None:
            raise UsageError("no scenario loaded; use 'load NAME' or 'load FILE' first")
        return self.loaded

    def _validated(self, data: dict[str, Any]) -> Any:
        from pydantic import ValidationError

        from retrysim.model.scenario import Scenario, format_validation_error

        try:
            return Scenario.model_validate(data)
        except ValidationError as error:
            raise UsageError(format_validation_error(error, "")) from None

    def _change(self, data: dict[str, Any]) -> None:
        """Validate edited data and make it the scenario (as the model normalizes it)."""
        self.need().data = self._validated(data).model_dump(mode="python")

    @contextlib.contextmanager
    def _busy(self, what: str) -> Iterator[Status | None]:
        """A live status line while a simulation runs at a terminal, saying how to cancel it.

        Yields None in a pipe: scripted output stays exactly the results.
        """
        if not self.interactive:
            yield None
            return
        with self.console.status(f"{what} {_HINT}") as status:
            yield status

    def _settings_now(self) -> Any:
        if self._settings is None:
            self._settings, _ = common.settings(None)
        return self._settings

    # -- commands -------------------------------------------------------------------------------

    @command("help", "help [COMMAND]", "command")
    def cmd_help(self, arg: str) -> None:
        """List the commands, or show one command's help."""
        if arg:
            found = COMMANDS.get(arg)
            if found is None:
                raise UsageError(f"help {arg}: no such command" + hint(arg, COMMANDS))
            self.console.print(f"[bold]{found.usage}[/]\n  {found.help}", highlight=False)
            return
        self.console.print("Commands (help NAME for details):")
        for found in COMMANDS.values():
            self.console.print(f"  [bold]{found.usage:<36}[/] {_first_sentence(found.help)}")

    @command("load", "load NAME|FILE", "scenario")
    def cmd_load(self, arg: str) -> None:
        """Load a bundled scenario or a TOML file; replaces the current one and its edits."""
        if not arg:
            raise UsageError("load needs a bundled scenario name or a file")
        self.loaded = session.load(arg, common.load(arg, {}))
        self.last = self.previous = None
        description = " ".join(str(self.loaded.base.get("description", "")).split())
        self.console.print(f"loaded [bold]{markup(self.loaded.name)}[/]: {markup(description)}")

    @command("show", "show")
    def cmd_show(self, arg: str) -> None:
        """Print the current scenario, with your edits, as the TOML 'save' would write."""
        self.stdout.write(self.need().toml())  # raw: wrapping would break the TOML

    @command("set", "set KEY=VALUE", "assignment")
    def cmd_set(self, arg: str) -> None:
        """Change a dotted key: set policy.max_attempts=5, set faults.0.end=40."""
        from retrysim.model.scenario import set_dotted
        from retrysim.model.tier_keys import check_tier_keys

        key, text = common.parse_assignment(arg, "set")
        value = common.parse_value(text)
        data = copy.deepcopy(self.need().data)
        check_tier_keys(self._validated(data), [key], "set")  # a typo would add a tier
        try:
            set_dotted(data, key, value)
        except KeyError:
            raise UsageError(unknown_key(key, data)) from None
        self._change(data)
        self.console.print(markup(f"{key} = {value!r}"), highlight=False)

    @command("unset", "unset KEY", "key")
    def cmd_unset(self, arg: str) -> None:
        """Put a key back to its value in the loaded scenario."""
        from retrysim.model.scenario import set_dotted

        if not arg:
            raise UsageError("unset needs a key, e.g. unset policy.max_attempts")
        loaded = self.need()
        data = copy.deepcopy(loaded.data)
        original = _get(loaded.base, arg)
        try:
            set_dotted(data, arg, original)
        except KeyError:
            raise UsageError(unknown_key(arg, data)) from None
        self._change(data)
        self.console.print(markup(f"{arg} = {original!r} (as loaded)"), highlight=False)

    @command("fault", "fault add KIND k=v ... | rm N | list", "fault")
    def cmd_fault(self, arg: str) -> None:
        """Add, remove or list faults: fault add outage start=10 end=40 error=TimeoutError."""
        words = _words(arg, "fault")
        loaded = self.need()
        data = copy.deepcopy(loaded.data)
        faults: list[dict[str, Any]] = data["faults"]
        if not words or words[0] == "list":
            for i, item in enumerate(faults):
                fields = ", ".join(
                    f"{k}={v}" for k, v in item.items() if v is not None and k != "kind"
                )
                self.console.print(markup(f"{i}: {item['kind']} {fields}"), highlight=False)
            if not faults:
                self.console.print("no faults")
            return
        if words[0] == "add" and len(words) >= 2:
            fault: dict[str, Any] = {"kind": words[1]}
            for word in words[2:]:
                key, value = common.parse_assignment(word, "fault add")
                fault[key] = common.parse_value(value)
            faults.append(fault)
            self._change(data)
            self.console.print(f"added fault {len(faults) - 1}: {markup(words[1])}")
            return
        if words[0] == "rm" and len(words) == 2:
            if not words[1].isdigit() or int(words[1]) >= len(faults):
                raise UsageError(f"fault rm {words[1]}: no such fault (there are {len(faults)})")
            removed = faults.pop(int(words[1]))
            loaded.data = data
            self.console.print(f"removed fault {words[1]}: {markup(removed['kind'])}")
            return
        raise UsageError("usage: fault add KIND key=value ... | fault rm N | fault list")

    @command("run", "run [SEED]")
    def cmd_run(self, arg: str) -> None:
        """Simulate the current scenario and print the summary. Ctrl-C cancels it."""
        from retrysim.render.report import (
            diagnoses_section,
            latency_table,
            load_table,
            outcome_table,
            verdict,
        )
        from retrysim.runs.runner import run

        scenario = self._validated(self.need().data)
        # Edits that touch only faults, or a repeated run, reuse the cached fault-free baseline.
        settings = self._settings_now()
        with self._busy(f"running {scenario.name}") as status:
            progress = None
            if status is not None:

                def progress(done: int, total: int) -> None:
                    status.update(f"running {scenario.name}: {done:,} of {total:,} calls {_HINT}")

            doc = run(scenario, seed=_seed(arg), settings=settings, progress=progress).document
        self.previous, self.last = self.last, doc  # only a finished run replaces a result
        self.console.print(Text(verdict(doc), style="bold"))
        self.console.print(outcome_table(doc))
        self.console.print(load_table(doc))
        self.console.print(latency_table(doc))
        from retrysim.render.resilience import resilience_table

        resilience = resilience_table(doc)
        if resilience is not None:
            self.console.print(resilience)
        # A setting to try is this shell's own `set` (the scenario may have unsaved edits).
        self.console.print(diagnoses_section(doc, lambda change: f"set {change}"), crop=False)
        share = doc["jitter_spread"]["peak_share_100ms"]
        if share is not None:
            self.console.print(
                f"jitter spread: {100 * share:.2f}% of retries in the busiest 100 ms"
            )

    @command("compare", "compare KEY=V1,V2,...", "assignment")
    def cmd_compare(self, arg: str) -> None:
        """Run the current scenario once per value, side by side. Ctrl-C cancels it."""
        from retrysim.cli.compare_cmd import split_values
        from retrysim.render.report import compare_table
        from retrysim.runs.sweep import compare, grid_variants

        key, values = common.parse_assignment(arg, "compare")
        from retrysim.model.tier_keys import check_tier_keys

        scenario = self._validated(self.need().data)
        check_tier_keys(scenario, [key], "compare")
        variants = grid_variants([(key, [common.parse_value(v) for v in split_values(values)])])
        for variant in variants:  # an unknown key or a bad value: one line, before any run
            common.apply(scenario, variant.sets, "compare")
        settings = self._settings_now()
        with self._busy(f"comparing {len(variants)} variants"):
            results = compare(scenario, variants, [scenario.seed], settings=settings)
        from retrysim.cli.tables import print_table
        from retrysim.results.metrics import table_metrics

        shown = table_metrics(DEFAULT_TABLE_METRICS, (d for r in results for d in r.documents))
        table = compare_table(scenario.name, [scenario.seed], results, shown)
        print_table(self.console, table, rows_label="variant")

    @command("diff", "diff [METRIC ...]", "metrics")
    def cmd_diff(self, arg: str) -> None:
        """This run against the previous one, metric by metric, formatted as compare does."""
        from rich.table import Table

        from retrysim.results import metric_table
        from retrysim.results.metrics import metric, table_metrics

        names = arg.split()
        for name in names:
            if name not in METRIC_NAMES:
                raise UsageError(f"diff {name}: unknown metric" + hint(name, METRIC_NAMES))
        if self.last is None or self.previous is None:
            raise UsageError("diff needs two runs: 'run', change something, 'run' again")
        names = names or table_metrics(DEFAULT_TABLE_METRICS, (self.previous, self.last))
        table = Table(title="this run vs previous", title_justify="left")
        for column in ("metric", "previous", "now", "change"):
            table.add_column(column, justify="left" if column == "metric" else "right")
        for name in names:
            before, now = metric(self.previous, name), metric(self.last, name)
            change = (
                "–"
                if before is None or now is None
                else metric_table.show_change(name, now - before)
            )
            table.add_row(
                metric_table.label(name),
                metric_table.show(name, before),
                metric_table.show(name, now),
                change,
            )
        self.console.print(table)

    @command("hist", "hist")
    def cmd_hist(self, arg: str) -> None:
        """The jitter-spread histogram of the last run."""
        from retrysim.render.report import spread_histogram

        self.console.print(spread_histogram(self._last()))

    @command("timeline", "timeline")
    def cmd_timeline(self, arg: str) -> None:
        """Attempts per second over time in the last run."""
        from retrysim.render.report import timeline_chart

        self.console.print(timeline_chart(self._last()))

    def _last(self) -> ResultDocument:
        if self.last is None:
            raise UsageError("nothing has run yet; type 'run'")
        return self.last

    @command("save", "save [FILE]", "file")
    def cmd_save(self, arg: str) -> None:
        """Write the scenario as TOML, atomically. A loaded file keeps its comments and layout;
        without FILE, save writes back to the file it was loaded from."""
        loaded = self.need()
        if not arg and loaded.path is None:
            raise UsageError("save needs a file name, e.g. save my-scenario.toml")
        target = Path(arg) if arg else loaded.default_target()
        self._validated(loaded.data)
        loaded.save(target)
        self.console.print(f"saved {markup(target)}")

    @command("quit", "quit")
    def cmd_quit(self, arg: str) -> bool:
        """Leave the shell (also: exit, Ctrl-D); asks to save unsaved changes at a terminal."""
        return True

    @command("exit", "exit")
    def cmd_exit(self, arg: str) -> bool:
        """Leave the shell, as quit does."""
        return True


def _first_sentence(text: str) -> str:
    head, dot, _ = text.partition(". ")
    return head + ("." if dot else "")


def _words(arg: str, verb: str) -> list[str]:
    """``arg`` split as a shell splits it, or a UsageError naming the unbalanced quote."""
    try:
        return shlex.split(arg)
    except ValueError as error:  # "No closing quotation", "No escaped character"
        raise UsageError(f"{verb} {arg}: {str(error).lower()}") from None


def _paths_of(arg: str) -> list[Path]:
    """Every word of a command's arguments as a path: a file error about one is the user's."""
    try:
        return [Path(word) for word in shlex.split(arg)]
    except ValueError:  # unbalanced quotes: no paths to speak of
        return []


def _seed(arg: str) -> int | None:
    if not arg:
        return None
    if not arg.isdigit():
        raise UsageError(f"run {arg}: the seed must be a whole number >= 0")
    return int(arg)


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
