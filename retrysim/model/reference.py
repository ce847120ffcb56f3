"""The scenario reference: every key a scenario file can hold, read from the scenario models.

The walk starts at :class:`retrysim.model.scenario.Scenario` (or any model given) and follows the
fields' types: a nested model is a table of its own, a discriminated union
(``Field(discriminator=...)``) is one table per member, and a model or union that keys of
several models share (the latency distributions) is documented once, after the rest. A table
of tables under names the user picks (``tiers``) is one heading with ``NAME`` for the name
(``[tiers.NAME]``), and what its tables hold that a key outside it holds too (a tier's
``policy``, ``service``, ``faults``) is documented there once, its row pointing to it. Each
key's row gives its type (a Literal's values, the bounds of its Field constraints), its unit
(the ``"unit"`` of its JSON schema, which the bounded types of ``retrysim.model.base``
carry), its default (marked ``adds time`` or ``adds capacity`` when it shapes every run that
leaves it unset: :class:`~retrysim.model.marks.InEffect`) and what it models (its
description; for a table without one, its model's docstring).

Nothing here names a key, a model or a kind: a field, model or union member added to the
scenario models is in the reference as it is. README's "Scenario reference" is this module's
Markdown (``python scripts/scenario_reference.py`` rewrites it, ``--check`` says whether it is
stale) and ``retrysim scenarios reference`` prints it.
"""

from __future__ import annotations

import inspect
import json
import re
import types
import typing
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any, Literal, Union

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from retrysim.model.marks import InEffect, UsedWhen
from retrysim.retry.options import FromSettings

#: What a Markdown row shows for a value without a unit: a count, a name, a choice, a table.
NO_UNIT = "—"
#: The Markdown heading level of a table; the members of a shared union go one deeper.
HEADING = 3
#: What the row of a union member's discriminator says (``kind = "queue"``).
TAG_ROW = "picks this table"


@dataclass(frozen=True)
class Row:
    """One key of a table. Text is Markdown (code in backticks), not yet escaped for a cell;
    ``unit`` is None for a value without one."""

    key: str
    type: str
    unit: str | None
    default: str
    about: str


@dataclass(frozen=True)
class Section:
    """One table of a scenario file, or the heading over the tables several keys share.

    ``table`` is the table's dotted key (``""`` the top level, ``clients.arrival``), None for a
    shared one, whose keys ``used_by`` lists. ``variant`` is a union member's discriminator and
    tag (``{"kind": "queue"}``); ``array``: the key holds a list of such tables (``[[faults]]``).
    """

    title: str
    about: str
    rows: tuple[Row, ...]
    table: str | None
    variant: dict[str, str] = field(default_factory=dict)
    array: bool = False
    used_by: tuple[str, ...] = ()
    level: int = HEADING


# --- types -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Union:
    """A union of models and the key that tells them apart (None: not discriminated)."""

    models: tuple[type[BaseModel], ...]
    discriminator: str | None


_Node = type[BaseModel] | _Union


@dataclass
class _Type:
    """A field's type as the reference shows it, and the tables it leads to."""

    text: str
    unit: str | None = None
    nodes: list[tuple[_Node, bool]] = field(default_factory=list)  # (node, in a list)


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


def _expand(metadata: list[Any]) -> list[Any]:
    """Metadata with each FieldInfo followed by its constraints."""
    found: list[Any] = []
    for item in metadata:
        found.append(item)
        if isinstance(item, FieldInfo):
            found.extend(item.metadata)
    return found


def _unit(metadata: list[Any]) -> str | None:
    """The first ``json_schema_extra={"unit": ...}`` in the metadata (a field's own first)."""
    for item in metadata:
        extra = getattr(item, "json_schema_extra", None)
        if isinstance(extra, dict) and isinstance(extra.get("unit"), str):
            return str(extra["unit"])
    return None


def _discriminator(metadata: list[Any]) -> str | None:
    for item in metadata:
        found = getattr(item, "discriminator", None)
        if isinstance(found, str):
            return found
    return None


def tags(model: type[BaseModel], discriminator: str) -> tuple[str, ...]:
    """A union member's discriminator values (the arguments of its Literal)."""
    info = model.model_fields.get(discriminator)
    if info is None or typing.get_origin(info.annotation) is not Literal:
        return ()
    return tuple(str(value) for value in typing.get_args(info.annotation))


def _describe(annotation: Any, metadata: list[Any], in_list: bool = False) -> _Type:
    """One annotation: Annotated, Optional and other unions, lists, Literals, models, scalars."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        inner, *extra = typing.get_args(annotation)
        return _describe(inner, [*metadata, *_expand(extra)], in_list)
    if origin is Union or origin is types.UnionType:
        members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(members) == 1:  # Optional: None means "not given", the default column says so
            return _describe(members[0], metadata, in_list)
        if all(_is_model(member) for member in members):
            node = _Union(tuple(members), _discriminator(metadata))
            return _Type(_union_text(node), _unit(metadata), [(node, in_list)])
        parts = [_describe(member, metadata, in_list) for member in members]
        return _Type(
            " or ".join(part.text for part in parts),
            next((part.unit for part in parts if part.unit), None),
            [node for part in parts for node in part.nodes],
        )
    if origin in (list, tuple, set, frozenset):
        item = _describe(typing.get_args(annotation)[0], [], in_list=True)
        text = "list of " + (
            "tables" + item.text.removeprefix("table") if item.nodes else item.text
        )
        return _Type(text + _lengths(metadata), _unit(metadata) or item.unit, item.nodes)
    if origin is dict:
        value = _describe(typing.get_args(annotation)[1], [], in_list)
        text = "tables, one per name" if value.nodes else f"table of keys to {value.text}"
        return _Type(text, _unit(metadata) or value.unit, value.nodes)
    if origin is Literal:
        return _Type(" / ".join(f"`{_toml(v)}`" for v in typing.get_args(annotation)))
    if _is_model(annotation):
        return _Type("table", _unit(metadata), [(annotation, in_list)])
    if annotation is str:
        return _Type("string" + _lengths(metadata), _unit(metadata))
    names = {bool: "`true` / `false`", int: "integer", float: "number"}
    text = names.get(annotation, getattr(annotation, "__name__", str(annotation)))
    return _Type(text + _bounds(metadata), _unit(metadata))


def _union_text(node: _Union) -> str:
    if node.discriminator is None:
        return "table: " + " or ".join(f"`{model.__name__}`" for model in node.models)
    values = [f'`"{tag}"`' for model in node.models for tag in tags(model, node.discriminator)]
    return f"table by `{node.discriminator}`: " + ", ".join(values)


_BOUNDS = (
    (annotated_types.Gt, "gt", ">"),
    (annotated_types.Ge, "ge", ">="),
    (annotated_types.Lt, "lt", "<"),
    (annotated_types.Le, "le", "<="),
)


def _bounds(metadata: list[Any]) -> str:
    """`` >= 0, <= 1e9``: the Field constraints, the innermost of each kind."""
    parts: list[str] = []
    for kind, attribute, sign in _BOUNDS:
        found = [getattr(item, attribute) for item in metadata if isinstance(item, kind)]
        if found:
            parts.append(f"{sign} {_number(found[-1])}")
    return " " + ", ".join(parts) if parts else ""


def _lengths(metadata: list[Any]) -> str:
    parts: list[str] = []
    for item in metadata:
        if isinstance(item, annotated_types.MinLen) and item.min_length > 0:
            parts.append(f"at least {item.min_length} long")
        if isinstance(item, annotated_types.MaxLen):
            parts.append(f"at most {item.max_length} long")
    return ", " + ", ".join(parts) if parts else ""


# --- values ----------------------------------------------------------------------------------


def _number(value: float) -> str:
    """A number as a person writes it: 60, 0.01, 1e-9, 1e9, 200_000_000, 2^63."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        if value >= 2**20 and value & (value - 1) == 0:
            return f"2^{value.bit_length() - 1}"
        return f"{value:_}" if abs(value) >= 10_000 else str(value)
    if value.is_integer() and abs(value) < 1e15:
        digits = str(abs(int(value)))
        mantissa = digits.rstrip("0")
        if abs(value) >= 1e6 and len(mantissa) <= 2:
            sign = "-" if value < 0 else ""
            return f"{sign}{mantissa}e{len(digits) - len(mantissa)}"
        return _number(int(value))
    text = repr(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        return f"{mantissa.removesuffix('.0')}e{int(exponent)}"
    return text


def _toml(value: Any) -> str:
    """A value as written inline in TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        items = [f"{key} = {_toml(item)}" for key, item in value.items() if item is not None]
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return str(value)


def _default(info: FieldInfo, key: str, described: _Type) -> str:
    """``required``, ``unset``, where an unset policy option comes from, or the value; for a
    default marked :class:`~retrysim.model.marks.InEffect`, what it adds (``adds time``), since
    it shapes every run that leaves the key unset (``retrysim validate`` lists those)."""
    text = _default_value(info, key, described)
    marked = next((item for item in info.metadata if isinstance(item, InEffect)), None)
    if marked is None:
        return text
    if text == "unset" and marked.means:
        text = marked.means
    return f"{text} (adds {marked.adds})"


def _default_value(info: FieldInfo, key: str, described: _Type) -> str:
    value = info.get_default(call_default_factory=True, validated_data={})
    if value is PydanticUndefined:
        return "required"
    if value is None:
        # A policy option marked FromSettings falls back to its RETRY__ variable.
        if any(isinstance(item, FromSettings) for item in info.metadata):
            from retrysim.retry.variables import option_variable

            variable = option_variable(key, "<operation>")
            if variable is not None:
                return f"from `{variable}`"
        return "unset"
    if isinstance(value, BaseModel):
        # One member of a union: all of it, which member and its values. A table of its own:
        # what differs from its keys' defaults (usually nothing, `{}`), its rows say the rest.
        union = any(isinstance(node, _Union) for node, _ in described.nodes)
        return f"`{_toml(value.model_dump(mode='json', exclude_defaults=not union))}`"
    return f"`{_toml(value)}`"


def _text(text: str | None) -> str:
    """One line, reStructuredText's ``code`` as Markdown's `code`."""
    return " ".join((text or "").replace("``", "`").split())


def docstring(model: type[BaseModel]) -> str:
    """A model's own docstring (never an inherited one) up to its first blank line."""
    doc = model.__dict__.get("__doc__")
    return _text(inspect.cleandoc(doc).split("\n\n")[0]) if isinstance(doc, str) else ""


# --- the walk --------------------------------------------------------------------------------


def _fields(model: type[BaseModel], first: str | None = None) -> Iterator[tuple[str, FieldInfo]]:
    """A model's fields by key, the discriminator ``first`` (a union member's tag) first."""
    items = [(info.alias or name, info) for name, info in model.model_fields.items()]
    yield from sorted(items, key=lambda item: item[0] != first)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


#: What a table of tables keyed by the user's names shows for the name (``[tiers.NAME]``).
NAME = "NAME"


def _keyed(annotation: Any) -> bool:
    """Whether a field holds tables under names the user picks (``tiers: dict[str, Tier]``)."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _keyed(typing.get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return any(_keyed(arg) for arg in typing.get_args(annotation) if arg is not type(None))
    return origin is dict


def _child(path: str, key: str, info: FieldInfo) -> str:
    """The dotted path of the tables a field leads to: ``tiers.NAME`` for a table of them."""
    return _join(_join(path, key), NAME) if _keyed(info.annotation) else _join(path, key)


def _field_type(info: FieldInfo) -> _Type:
    return _describe(info.annotation, [info, *info.metadata])


def _members(node: _Node) -> tuple[type[BaseModel], ...]:
    return node.models if isinstance(node, _Union) else (node,)


def _named(path: str) -> bool:
    """Whether ``path`` is inside a table of tables by name (``tiers.NAME.policy``)."""
    return NAME in path.split(".")


def _shared(root: type[BaseModel]) -> dict[_Node, list[str]]:
    """The tables that fields of more than one model lead to, with the keys that hold them.

    A table that a named table holds (``tiers.NAME.policy``) and a key outside one holds too
    (``policy``) is documented there, once, and is not shared on that account: the named
    table's row points to it (``[tiers.NAME]``'s ``policy`` has the keys of ``[policy]``)."""
    keys: dict[_Node, list[str]] = {}
    owners: dict[_Node, set[tuple[type[BaseModel], str, bool]]] = {}
    seen: set[type[BaseModel]] = set()

    def visit(model: type[BaseModel], path: str) -> None:
        if model in seen:
            return
        seen.add(model)
        for key, info in _fields(model):
            child = _child(path, key, info)
            for node, _ in _field_type(info).nodes:
                owners.setdefault(node, set()).add((model, key, _named(child)))
                held = keys.setdefault(node, [])
                if child not in held:
                    held.append(child)
                for member in _members(node):
                    visit(member, child)

    visit(root, "")
    shared: dict[_Node, list[str]] = {}
    for node, held in keys.items():
        plain = {owner for owner in owners[node] if not owner[2]}
        if len(plain) > 1 or (not plain and len(owners[node]) > 1):
            shared[node] = [key for key in held if not _named(key)] or held
    return shared


class _Walk:
    """Emits the sections: each table, then the tables its keys lead to (depth first)."""

    def __init__(self, root: type[BaseModel]) -> None:
        self.shared = _shared(root)
        self.sections: list[Section] = []
        self.done: set[tuple[type[BaseModel], str]] = set()
        self.placed: dict[_Node, str] = {}  # a table's first heading (`[policy]`)

    def model(
        self,
        model: type[BaseModel],
        path: str,
        title: str,
        *,
        table: str | None,
        variant: dict[str, str],
        array: bool = False,
        level: int = HEADING,
    ) -> None:
        if (model, path) in self.done:
            return
        self.done.add((model, path))
        rows: list[Row] = []
        children: list[tuple[_Node, bool, str]] = []
        for key, info in _fields(model, first=next(iter(variant), None)):
            described = _field_type(info)
            about = _text(info.description)
            tables = [node for node, _ in described.nodes if not isinstance(node, _Union)]
            if not about and len(tables) == 1:
                about = docstring(tables[0]).split(". ")[0]
            if not about and key in variant:
                about = TAG_ROW
            when = next((item for item in info.metadata if isinstance(item, UsedWhen)), None)
            if when is not None:  # when the engine reads the key at all (the lint says it too)
                about = f"{about}; read {when.why}" if about else f"read {when.why}"
            default = _default(info, key, described)
            child = _child(path, key, info)
            placed = [self.placed[node] for node, _ in described.nodes if node in self.placed]
            if _named(child) and placed:  # documented once, where it is not named
                about = f"{about}; the keys of {placed[0]}" if about else f"as {placed[0]}"
            rows.append(Row(key, described.text, described.unit, default, about))
            children += [
                (node, inside, child)
                for node, inside in described.nodes
                if not (_named(child) and node in self.placed)
            ]
        self.sections.append(
            Section(title, docstring(model), tuple(rows), table, variant, array, level=level)
        )
        for node, inside, child in children:
            if node not in self.shared:
                self.node(node, child, inside, table=child, level=level)

    def node(
        self, node: _Node, path: str, array: bool, *, table: str | None, level: int = HEADING
    ) -> None:
        header = f"`[[{path}]]`" if array else f"`[{path}]`"
        if table is not None:
            self.placed.setdefault(node, header)
        for member in _members(node):
            variant: dict[str, str] = {}
            title = header if table is not None else f"`{member.__name__}`"
            if isinstance(node, _Union) and node.discriminator is not None:
                values = tags(member, node.discriminator)
                variant = {node.discriminator: " / ".join(values)}
                choice = " or ".join(f'`{node.discriminator} = "{value}"`' for value in values)
                title = f"{header} with {choice}" if table is not None else choice
            self.model(member, path, title, table=table, variant=variant, array=array, level=level)

    def shared_tables(self) -> None:
        tagged = [n.discriminator for n in self.shared if isinstance(n, _Union)]
        for node, keys in self.shared.items():
            if isinstance(node, _Union) and node.discriminator is not None:
                title = f"Tables by `{node.discriminator}`"
                if tagged.count(node.discriminator) > 1:  # service kinds, fault kinds
                    title += f" of `{keys[0]}`"
            else:
                title = " or ".join(f"`{model.__name__}`" for model in _members(node)) + " tables"
            listed = ", ".join(f"`{key}`" for key in keys)
            self.sections.append(
                Section(title, f"The value of {listed}.", (), None, used_by=tuple(keys))
            )
            self.node(node, keys[0], False, table=None, level=HEADING + 1)


def reference(root: type[BaseModel] | None = None) -> list[Section]:
    """Every table of a scenario file, in the order of its keys (``root``: default Scenario)."""
    if root is None:
        from retrysim.model.scenario import Scenario

        root = Scenario
    walk = _Walk(root)
    walk.model(root, "", "Top level", table="", variant={})
    walk.shared_tables()
    return walk.sections


def undocumented(root: type[BaseModel] | None = None) -> list[str]:
    """``title: key`` of every row that says nothing of what it models."""
    return [
        f"{section.title}: {row.key}"
        for section in reference(root)
        for row in section.rows
        if not row.about
    ]


# --- output ----------------------------------------------------------------------------------


def _cell(text: str) -> str:
    """Text made safe for a Markdown table cell: pipes escaped everywhere, and outside code
    spans what would start an HTML tag (``<OPERATION>``) or emphasis."""
    parts = text.replace("|", "\\|").split("`")
    for index in range(0, len(parts), 2):  # outside code spans
        parts[index] = re.sub(r"<(?=[A-Za-z/!?])", "&lt;", parts[index]).replace("*", "\\*")
    return "`".join(parts)


def markdown(sections: list[Section] | None = None) -> str:
    """The reference as Markdown: a heading, a line on what the table is, and its keys."""
    lines: list[str] = []
    for section in reference() if sections is None else sections:
        lines += ["", "#" * section.level + " " + section.title]
        if section.about:
            lines += ["", _cell(section.about)]
        if section.rows:
            lines += ["", "| key | type | unit | default | what it models |"]
            lines.append("| --- | --- | --- | --- | --- |")
            for row in section.rows:
                cells = (f"`{row.key}`", row.type, row.unit or NO_UNIT, row.default, row.about)
                lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return "\n".join(lines[1:]) + "\n"


def as_data(sections: list[Section] | None = None) -> list[dict[str, Any]]:
    """The reference as JSON-ready data: one dict per section, its rows as dicts."""
    return [asdict(section) for section in (reference() if sections is None else sections)]
