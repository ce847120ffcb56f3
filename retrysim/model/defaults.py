"""The defaults in effect: each one that adds time or capacity, left unset, used by the model.

A scenario says what it sets; what it leaves unset still shapes the run (an OCC service
spends 10 ms on its read and 10 ms on its write, a connect costs one more round trip, a queue
holds 1,000), and someone modelling a system without those costs must know which keys to zero.
:func:`in_effect` lists them, read from the models' :class:`~retrysim.model.marks.InEffect`
marks, never from a hand-made list: a field so marked that the user did not set and this
scenario's model uses. ``retrysim validate`` prints the list and the run report's header
shows it.

What the user set is :func:`given_keys`: the dotted keys of the file (pydantic's
``model_fields_set``, table by table) and of any ``--set``; ``Scenario.with_overrides``
re-validates a whole dump, after which every field looks set, so the keys are taken before it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from retrysim.model.base import Constant
from retrysim.model.marks import InEffect, UsedWhen

if TYPE_CHECKING:
    from retrysim.model.scenario import Scenario

M = TypeVar("M")

#: The top-level keys a scenario with tiers does not read: each tier has its own.
TIERED_AWAY = frozenset({"service", "faults"})


@dataclass(frozen=True)
class Default:
    """One default in effect: the key that changes it, its value with its unit, whether it adds
    ``time`` or ``capacity``, and what it applies to here (``note``, "" for nothing)."""

    key: str
    value: str
    adds: str
    note: str = ""

    def text(self) -> str:
        """``service.latency = 10 ms (OCC read and write each)``."""
        return f"{self.key} = {self.value}" + (f" ({self.note})" if self.note else "")


def mark(info: FieldInfo, kind: type[M]) -> M | None:
    """The field's mark of ``kind`` (an :class:`InEffect` or a :class:`UsedWhen`), if any."""
    return next((item for item in info.metadata if isinstance(item, kind)), None)


@dataclass(frozen=True)
class Key:
    """A field as the walk meets it: its dotted key, the table holding it, its name there."""

    key: str
    table: BaseModel
    name: str
    info: FieldInfo

    @property
    def value(self) -> Any:
        return getattr(self.table, self.name)


def walk(model: BaseModel, descend: Callable[[Key], bool] | None = None) -> Iterator[Key]:
    """Every field of ``model`` and of the tables it holds (lists of tables and tables of
    tables by name, ``tiers.NAME``, included), depth first; a field's own tables are walked
    when ``descend(field)`` says so (default: all)."""
    stack: list[tuple[str, BaseModel]] = [("", model)]
    while stack:
        path, table = stack.pop()
        children: list[tuple[str, BaseModel]] = []
        for name, info in type(table).model_fields.items():
            field = Key(f"{path}{name}", table, name, info)
            yield field
            if descend is not None and not descend(field):
                continue
            value = field.value
            items: Iterable[tuple[str, Any]]
            if isinstance(value, list):
                items = ((f"{field.key}.{index}", item) for index, item in enumerate(value))
            elif isinstance(value, dict):
                items = ((f"{field.key}.{key}", item) for key, item in value.items())
            else:
                items = [(field.key, value)]
            children += [(f"{at}.", item) for at, item in items if isinstance(item, BaseModel)]
        stack.extend(reversed(children))


def given_keys(
    model: BaseModel, sets: Mapping[str, Any] | None = None, applied: BaseModel | None = None
) -> frozenset[str]:
    """The dotted keys the user set: ``model``'s fields set (as loaded from its file, before any
    ``with_overrides``), table by table, and the keys of ``sets`` with those their values hold
    (``--set service={kind = "occ"}`` sets ``service`` and ``service.kind``, and what the file
    set inside ``service`` no longer counts: the value replaces the table).

    A set value that is no table but becomes one (``--set service.latency=0.02``, a constant
    distribution) sets every key of that table: ``applied``, the scenario with ``sets``
    applied, says which those are.
    """
    found: set[str] = set()
    for field in walk(model):
        if field.name in field.table.model_fields_set:
            found.add(field.key)
    whole = [key for key, value in (sets or {}).items() if not isinstance(value, dict | list)]
    for key, value in (sets or {}).items():
        found = {k for k in found if not k.startswith(f"{key}.")}  # a set replaces the table
        found.update(_keys_in(key, value))
    if applied is not None and whole:
        found.update(
            field.key
            for field in walk(applied)
            if any(field.key.startswith(f"{key}.") for key in whole)
        )
    return frozenset(found)


def _keys_in(key: str, value: Any) -> Iterator[str]:
    yield key
    if isinstance(value, dict):
        for name, item in value.items():
            yield from _keys_in(f"{key}.{name}", item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _keys_in(f"{key}.{index}", item)


def in_effect(scenario: BaseModel, given: frozenset[str]) -> list[Default]:
    """Every default in effect that adds time or capacity, in the order of the scenario's keys.

    A field marked :class:`InEffect` counts when its key is not in ``given``, its mark's
    ``used`` holds for this scenario and, if it is also marked :class:`UsedWhen`, the engine
    reads it here. A table left unset (``[clients]`` omitted) is walked for its own defaults; a
    marked field left unset is one line, not one per key inside it.
    """
    found: list[Default] = []

    def descend(field: Key) -> bool:
        return field.key in given or mark(field.info, InEffect) is None

    for field in walk(scenario, descend):
        marked = mark(field.info, InEffect)
        if marked is None or field.key in given or not is_used(field, scenario, marked):
            continue
        note = marked.note(field.table) if marked.note is not None else ""
        value = describe(field.value, unit(field.info), marked)
        found.append(Default(field.key, value, marked.adds, note))
    return found


def is_used(field: Key, scenario: BaseModel, marked: InEffect | None = None) -> bool:
    """Whether this scenario's model reads ``field`` (its marks' ``used``; unmarked: yes).

    With tiers, the top-level ``service`` and ``faults`` are read by no one (each tier has its
    own), and a key inside ``tiers.NAME`` is judged against the one-tier scenario that serves
    that tier (:func:`retrysim.model.tier_keys.judged_view`): its callers' timeout, or a
    deadline passed down to them, decides whether its service ever sees an abandoned request,
    as the clients' timeout does for a one-tier scenario's."""
    from retrysim.model.tier_keys import judged_view, tier_of

    tiers = getattr(scenario, "tiers", None)
    if tiers:
        if field.key.partition(".")[0] in TIERED_AWAY:
            return False
        name = tier_of(field.key)
        if name is not None and name in tiers:
            scenario = judged_view(cast("Scenario", scenario), name)
    when = mark(field.info, UsedWhen)
    if when is not None and not when.used(field.table, scenario):
        return False
    return marked is None or marked.used(field.table, scenario)


def unit(info: FieldInfo) -> str | None:
    """The field's unit, the ``"unit"`` its type's JSON schema carries (None: a count)."""
    for item in (info, *info.metadata):
        extra = getattr(item, "json_schema_extra", None)
        if isinstance(extra, dict) and isinstance(extra.get("unit"), str):
            return str(extra["unit"])
    return None


def seconds(value: float) -> str:
    """A time as a person reads it: ``10 ms``, ``1 s``, ``1.5 s``."""
    if 0 < value < 1:
        return f"{value * 1000:.6g} ms"
    return f"{value:.6g} s"


def describe(value: Any, unit: str | None, marked: InEffect) -> str:
    """A default's value with its unit: ``10 ms``, ``1,000``, ``1 cores``, or its words."""
    if value is None:
        return marked.means or "none"
    if isinstance(value, Constant):
        return seconds(value.value)
    if isinstance(value, BaseModel):
        return ", ".join(f"{k} = {v}" for k, v in value.model_dump(mode="json").items())
    if unit == "s":
        return seconds(float(value))
    text = f"{value:,}" if isinstance(value, int) else f"{value:.6g}"
    if unit and value == 1 and unit.endswith("s") and unit != "s":
        unit = unit[:-1]  # 1 core
    return f"{text} {unit}" if unit else text


def line(defaults: list[Default]) -> str:
    """``defaults in effect: a = 1; b = 2`` ("" when there are none)."""
    if not defaults:
        return ""
    return "defaults in effect: " + "; ".join(default.text() for default in defaults)
