"""Tab completion for the shell, as a prompt_toolkit ``Completer``.

What a word can be depends on the command and the position: a command name (completed with the
space that follows it), a bundled scenario name or a ``.toml`` path, a dotted key completed one
level at a time (``policy.`` then ``policy.max_attempts=``), a value where the values are a
known set (profiles after ``policy.profile=``, error names, operations), a metric name, or a
fault kind and its fields. Every candidate comes from the data it names (the command table, the
loaded scenario, the scenario models, the metric table), so completion cannot drift from what
the commands accept.

This module imports prompt_toolkit, so only the interactive shell imports it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from retrysim.cli.shell.commands import COMMANDS, Shell
from retrysim.names import ERROR_NAMES, OPERATIONS, PROFILES
from retrysim.results.metric_table import BY_NAME

#: Values a dotted key can take, where they are a fixed set worth offering.
KEY_VALUES: dict[str, tuple[str, ...]] = {
    "policy.profile": PROFILES,
    "policy.operation": OPERATIONS,
}
FAULT_VERBS = ("add", "rm", "list")


class ShellCompleter(Completer):
    """Completes a shell line from the session's current state (the loaded scenario)."""

    def __init__(self, shell: Shell) -> None:
        self.shell = shell

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterator[Completion]:
        text = document.text_before_cursor.lstrip()
        if " " not in text:
            yield from _commands(text)
            return
        verb, _, rest = text.partition(" ")
        found = COMMANDS.get(verb)
        if found is None:
            return
        words = rest.split()
        current = "" if not rest or rest[-1].isspace() else words.pop()
        data = self.shell.loaded.data if self.shell.loaded is not None else None
        kind = found.args
        if kind == "command" and not words:
            yield from _commands(current, space=False)
        elif kind == "scenario" and not words:
            yield from _scenarios(current)
            yield from _paths(current)
        elif kind == "file" and not words:
            yield from _paths(current)
        elif kind == "key" and not words and data is not None:
            yield from _keys(current, data, assign=False)
        elif kind == "assignment" and not words and data is not None:
            yield from _assignment(current, data, several=verb == "compare")
        elif kind == "metrics":
            yield from _metrics(current, taken=words)
        elif kind == "fault":
            yield from _fault(current, words, data)


def _commands(word: str, space: bool = True) -> Iterator[Completion]:
    for name, found in COMMANDS.items():
        if name.startswith(word):
            yield Completion(
                name + (" " if space else ""),
                start_position=-len(word),
                display=name,
                display_meta=found.usage,
            )


def _scenarios(word: str) -> Iterator[Completion]:
    from retrysim.model.library import describe_bundled

    for name, description in describe_bundled():
        if name.startswith(word):
            meta = " ".join(description.split())
            yield Completion(name, -len(word), display_meta=meta[:60])


def _paths(word: str) -> Iterator[Completion]:
    """Folders (ending in /) and .toml files under the folder ``word`` points into."""
    folder = word[: word.rindex("/") + 1] if "/" in word else ""
    partial = word[len(folder) :]
    try:
        entries = sorted(Path(folder or ".").expanduser().iterdir())
    except OSError:
        return
    for entry in entries:
        name = entry.name
        if not name.startswith(partial) or (name.startswith(".") and not partial):
            continue
        if entry.is_dir():
            yield Completion(folder + name + "/", -len(word), display=name + "/")
        elif name.endswith(".toml"):
            yield Completion(folder + name, -len(word), display=name)


def _children(node: Any) -> Iterable[tuple[str, Any]]:
    if isinstance(node, dict):
        return ((str(k), v) for k, v in node.items())
    if isinstance(node, list):
        return ((str(i), v) for i, v in enumerate(node))
    return ()


def _keys(word: str, data: Any, assign: bool) -> Iterator[Completion]:
    """The next level of a dotted key: ``pol`` -> ``policy.``, ``policy.m`` -> ``policy.max_…``.

    A key holding a table or a list ends in ``.`` (there is more to type); a value ends in
    ``=`` when the command assigns one.
    """
    parent, _, partial = word.rpartition(".")
    node = data
    for part in parent.split(".") if parent else ():
        node = dict(_children(node)).get(part)
    prefix = parent + "." if parent else ""
    for name, value in _children(node):
        if not name.startswith(partial) or _idle(data, parent, name):
            continue
        if isinstance(value, dict) or (isinstance(value, list) and value):
            yield Completion(prefix + name + ".", -len(word), display=name + ".")
        else:
            meta = "not set" if value is None else repr(value)
            suffix = "=" if assign else ""
            yield Completion(prefix + name + suffix, -len(word), display=name, display_meta=meta)


def _idle(data: Any, parent: str, name: str) -> bool:
    """Whether ``parent.name`` is a key the scenario refuses or ignores where it is: the last
    tier's caller keys (``tiers.database.policy``), not offered."""
    from retrysim.model.tier_keys import CALLER_KEYS

    tiers = data.get("tiers") if isinstance(data, dict) else None
    if not tiers or name not in CALLER_KEYS:
        return False
    return parent == f"tiers.{list(tiers)[-1]}"


def _assignment(word: str, data: Any, several: bool) -> Iterator[Completion]:
    """``KEY=VALUE`` (or ``KEY=V1,V2`` for compare): the key, then a value from a known set."""
    if "=" not in word:
        yield from _keys(word, data, assign=True)
        return
    key, _, value = word.partition("=")
    choices = _values_of(key)
    done, _, partial = value.rpartition(",") if several else ("", "", value)
    typed = set(done.split(",")) if done else set()
    for choice in choices:
        if choice.startswith(partial) and choice not in typed:
            yield Completion(choice, -len(partial))


def _values_of(key: str) -> tuple[str, ...]:
    """The values ``key`` takes when they are a known set; a tier's key
    (``tiers.gateway.policy.profile``) takes those of the same key at the top."""
    from retrysim.model.tier_keys import within_tier

    key = within_tier(key)
    if key in KEY_VALUES:
        return KEY_VALUES[key]
    last = key.rpartition(".")[2]
    if last in ("error", "reject_error"):
        return ERROR_NAMES
    if key.startswith("faults.") and last == "mode":
        return ("refuse", "blackhole")
    if last in ("dist", "negative"):  # a latency distribution's name, a normal's clip/reflect
        from retrysim.model.base import latency_choices

        return latency_choices(last)
    if key.startswith("service.") and key.count(".") == 1:
        from retrysim.model.service import service_choices

        return service_choices().get(last, ())
    return ()


def _metrics(word: str, taken: list[str]) -> Iterator[Completion]:
    for name, metric in BY_NAME.items():
        if name.startswith(word) and name not in taken:
            yield Completion(name, -len(word), display_meta=metric.label)


def _fault(word: str, words: list[str], data: Any) -> Iterator[Completion]:
    """``fault add KIND field=value ...``, ``fault rm N``, ``fault list``."""
    if not words:
        yield from (Completion(v, -len(word)) for v in FAULT_VERBS if v.startswith(word))
    elif words[0] == "add" and len(words) == 1:
        yield from (Completion(k, -len(word)) for k in fault_fields() if k.startswith(word))
    elif words[0] == "add" and words[1] in fault_fields():
        fields = fault_fields()[words[1]]
        if "=" in word:
            key, _, partial = word.partition("=")
            for value in fields.get(key, ()):
                if value.startswith(partial):
                    yield Completion(value, -len(partial))
            return
        given = {w.partition("=")[0] for w in words[2:]}
        for name in fields:
            if name.startswith(word) and name not in given:
                yield Completion(name + "=", -len(word), display=name)
    elif words[0] == "rm" and len(words) == 1 and data is not None:
        for i, item in enumerate(data.get("faults", [])):
            if str(i).startswith(word):
                yield Completion(str(i), -len(word), display_meta=str(item.get("kind")))


@functools.cache
def fault_fields() -> dict[str, dict[str, tuple[str, ...]]]:
    """Each fault kind, its fields, and each field's allowed values when they are a fixed set.

    Read from the scenario's ``Fault`` union, so a new kind of fault completes without an edit
    here.
    """
    from retrysim.model.scenario import Fault

    union = get_args(Fault)[0]
    kinds: dict[str, dict[str, tuple[str, ...]]] = {}
    for model in get_args(union):
        fields = model.model_fields
        kind = get_args(fields["kind"].annotation)[0]
        kinds[kind] = {
            name: _literal_values(field.annotation)
            for name, field in fields.items()
            if name != "kind"
        }
    return kinds


def _literal_values(annotation: Any) -> tuple[str, ...]:
    if get_origin(annotation) is Literal:
        return tuple(str(v) for v in get_args(annotation))
    return ()
