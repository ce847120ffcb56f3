"""The scenario reference is the models: README's block is the generator's output, every key of
every model is in it, and a model added to the schema appears without touching the generator."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any, Literal

import pytest
from pydantic import Field
from typer.testing import CliRunner

from retrysim.cli.app import app
from retrysim.model.base import Model, NonNeg, Rate
from retrysim.model.reference import NO_UNIT, Section, as_data, markdown, reference, undocumented
from retrysim.model.scenario import Ideal, Queue, Scenario

ROOT = Path(__file__).resolve().parents[1]


def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "scenario_reference_script", ROOT / "scripts" / "scenario_reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_block_is_the_generated_reference() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    generator = script()
    assert generator.current(readme) == generator.block(), (
        "README's scenario reference is stale: run python scripts/scenario_reference.py"
    )
    assert markdown() in readme


def test_check_fails_on_a_stale_readme_and_a_rewrite_makes_it_current(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generator = script()
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{generator.START}\nold\n{generator.END}\n\n## after\n")
    monkeypatch.setattr(generator, "README", readme)
    assert generator.main(["--check"]) == 1
    assert "old" in readme.read_text()
    assert generator.main([]) == 0
    text = readme.read_text()
    assert text.startswith("# x\n\n") and text.endswith(f"{generator.END}\n\n## after\n")
    assert generator.current(text) == generator.block()
    assert generator.main(["--check"]) == 0
    readme.write_text("no markers\n")
    assert generator.main(["--check"]) == 2


# --- every field of every model, found by walking the JSON schema, not the generator's way ----


def _schema_unit(prop: dict[str, Any]) -> str | None:
    """A property's unit: its own, or that of the non-null member of its anyOf."""
    if "unit" in prop:
        return str(prop["unit"])
    for member in prop.get("anyOf", []):
        if "unit" in member:
            return str(member["unit"])
    return None


def _schema_models(root: type[Model]) -> dict[str, dict[str, Any]]:
    """Every object schema, the root's included, by title."""
    schema = root.model_json_schema()
    models: dict[str, dict[str, Any]] = dict(schema.get("$defs", {}))
    models[schema["title"]] = schema
    return {name: model for name, model in models.items() if "properties" in model}


def _section_for(sections: list[Section], model: dict[str, Any]) -> Section:
    keys = set(model["properties"])
    tag = {k: str(p["const"]) for k, p in model["properties"].items() if "const" in p}
    for section in sections:
        if {row.key for row in section.rows} != keys:
            continue
        if not section.variant or section.variant == tag:
            return section
    raise AssertionError(f"{model['title']}: no table with keys {sorted(keys)} and tag {tag}")


def _check_every_model(root: type[Model]) -> list[Section]:
    sections = reference(root)
    for name, model in _schema_models(root).items():
        section = _section_for(sections, model)
        rows = {row.key: row for row in section.rows}
        required = set(model.get("required", []))
        for key, prop in model["properties"].items():
            row = rows[key]
            assert row.unit == _schema_unit(prop), (name, key, row.unit, prop)
            assert (row.default == "required") == (key in required), (name, key, row.default)
            if "enum" in prop or "const" in prop:
                for value in prop.get("enum", [prop.get("const")]):
                    assert json.dumps(value) in row.type, (name, key, value, row.type)
    return sections


def test_every_field_of_every_model_in_the_schema_is_in_the_reference() -> None:
    sections = _check_every_model(Scenario)
    titles = [section.title for section in sections]
    assert len(titles) == len(set(titles)), "each table once"


def test_every_union_member_is_a_table_of_its_own() -> None:
    schema = Scenario.model_json_schema()
    found: list[tuple[str, str]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            discriminator = node.get("discriminator")
            if discriminator:
                for tag in discriminator["mapping"]:
                    found.append((discriminator["propertyName"], tag))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    variants = [section.variant for section in reference()]
    assert found
    for key, tag in set(found):
        assert {key: tag} in variants, (key, tag)


def test_every_key_says_what_it_models() -> None:
    assert undocumented() == [], "give these a description= in the scenario models"


def test_units_come_from_the_bounded_types() -> None:
    rows = {(s.title, r.key): r for s in reference() for r in s.rows}
    assert rows["`[clients]`", "timeout"].unit == "s"
    assert rows["`[clients]`", "count"].unit is None
    assert rows['`[clients.arrival]` with `kind = "poisson"`', "rate"].unit == "1/s"
    assert rows['`[[faults]]` with `kind = "flaky"`', "probability"].unit == "probability"
    assert rows["`[policy]`", "max_wait"].unit == "s"
    assert rows["`[policy.breaker]`", "recovery_timeout"].unit == "s"
    assert rows["`[policy]`", "max_attempts"].default == "from `RETRY__<OPERATION>_MAX_ATTEMPTS`"
    assert rows["`[clients]`", "count"].type == "integer >= 1"
    assert "| `count` | integer >= 1 | — |" in markdown()
    assert NO_UNIT == "—"


# --- a model added on the fly is documented with no change to the generator -------------------


class Teleport(Model):
    """Answers before it is asked."""

    kind: Literal["teleport"]
    lead: NonNeg = Field(0.5, description="how early the answer comes")
    direction: Literal["forward", "back"] = Field("forward", description="which way in time")


class Mirror(Model):
    """A second opinion on every answer."""

    kind: Literal["mirror"]
    echoes: Annotated[int, Field(ge=2, le=9)] = Field(3, description="copies of each answer")


class Gateway(Model):
    """What stands before the service."""

    rate: Rate = Field(description="requests let through per second")


WiderService = Annotated[Ideal | Queue | Teleport, Field(discriminator="kind")]


class WiderScenario(Scenario):
    """A scenario with a new server kind, a new union and a new table."""

    # A throwaway schema: the override changes the field's type, which mypy cannot allow.
    service: WiderService = Field(  # type: ignore[assignment]
        default_factory=lambda: Ideal(kind="ideal"), description="what answers the requests"
    )
    gateway: Gateway | None = Field(None, description="a gate before the service")
    helpers: list[Annotated[Mirror | Teleport, Field(discriminator="kind")]] = Field(
        default_factory=list, description="side services"
    )


def test_a_model_added_on_the_fly_appears() -> None:
    sections = _check_every_model(WiderScenario)
    by_title = {section.title: section for section in sections}
    teleport = by_title['`[service]` with `kind = "teleport"`']
    assert teleport.about == "Answers before it is asked."
    rows = {row.key: row for row in teleport.rows}
    assert teleport.rows[0].key == "kind"
    assert rows["lead"].unit == "s" and rows["lead"].default == "`0.5`"
    assert rows["direction"].type == '`"forward"` / `"back"`'
    assert by_title["`[gateway]`"].rows[0].unit == "1/s"
    mirror = by_title['`[[helpers]]` with `kind = "mirror"`']
    assert mirror.array and mirror.rows[1].type == "integer >= 2, <= 9"
    top = {row.key: row for row in by_title["Top level"].rows}
    assert top["gateway"].default == "unset" and top["gateway"].type == "table"
    assert top["helpers"].type == 'list of tables by `kind`: `"mirror"`, `"teleport"`'
    assert '`[[helpers]]` with `kind = "teleport"`' in markdown(sections)
    assert '`[service]` with `kind = "occ"`' not in by_title  # the override replaced it


# --- the command -------------------------------------------------------------------------------


def test_the_command_prints_the_reference_and_its_data() -> None:
    shown = CliRunner().invoke(app, ["scenarios", "reference"])
    assert shown.exit_code == 0, shown.output
    assert shown.stdout == markdown()
    data = CliRunner().invoke(app, ["scenarios", "reference", "--json"])
    assert data.exit_code == 0, data.output
    assert json.loads(data.stdout) == json.loads(json.dumps(as_data()))


def test_a_marked_default_says_what_it_adds_and_a_marked_key_when_it_is_read() -> None:
    from retrysim.model.marks import InEffect, UsedWhen, always

    class Marked(Model):
        """A table with marks."""

        a: Annotated[NonNeg, InEffect("time")] = Field(0.5, description="x")
        b: Annotated[int | None, InEffect("capacity", "one per client")] = Field(
            None, description="y"
        )
        c: Annotated[int, UsedWhen(always, "only with a")] = Field(1, description="z")
        d: int | None = Field(None, description="w")

    rows = {row.key: row for row in reference(Marked)[0].rows}
    assert rows["a"].default == "`0.5` (adds time)"
    assert rows["b"].default == "one per client (adds capacity)"
    assert rows["c"].about == "z; read only with a" and rows["c"].default == "`1`"
    assert rows["d"].default == "unset"
    network = next(s for s in reference() if s.title == "`[network]`")
    connect = next(row for row in network.rows if row.key == "connect")
    assert connect.default == "one more rtt draw (adds time)" and connect.unit == "s"
