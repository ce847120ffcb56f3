"""The result document's types, version and published schema agree with what retrysim writes.

Every bundled scenario's document (and documents with every optional section: resilience
mechanisms, connections, a user's own policy, a compare run, a real run's) is validated, as
saved, against ``docs/result.schema.json`` with a real JSON Schema validator, and in memory with
the TypeAdapter in strict mode (no numpy scalar or tuple slips in). The schema file must be what
``retrysim schema result`` prints; saved documents round-trip; a document from before
``schema_version`` loads, and one of an unknown version is refused in one line wherever a saved
document is read back (``retrysim plot``, sweep checkpoints).
"""

from __future__ import annotations

import copy
import importlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, get_args, get_type_hints

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tenacity import Retrying, stop_after_attempt, wait_fixed
from typer.testing import CliRunner

import retrysim
from retrysim.chaos.http_service import ServiceStats
from retrysim.chaos.proxy_stats import ProxyStats
from retrysim.chaos.run import real_document
from retrysim.cli.app import app
from retrysim.model.library import bundled_scenarios
from retrysim.model.scenario import parse_scenario
from retrysim.results import document as rd
from retrysim.results import sections
from retrysim.results.document import (
    SCHEMA_VERSION,
    DocumentError,
    ResultDocument,
    SchemaVersionError,
    from_data,
    from_json,
    to_json,
)
from retrysim.retry.adaptive import AdaptiveOptions
from retrysim.retry.breaker import BreakerOptions
from retrysim.retry.budget import BudgetOptions
from retrysim.retry.hedge import HedgeOptions
from retrysim.retry.mechanisms import MECHANISM_NAMES
from retrysim.retry.options import ERROR_POLICY_NAMES, OPTION_NAMES, ErrorPolicy
from retrysim.runs.executors import Task, run_task
from retrysim.runs.runner import run
from tests.test_metric_table import GUARDED

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "docs" / "result.schema.json"
# jsonschema ships no type hints (its stubs are not a dev dependency); the dev extra installs it
# through nbformat. Imported by name, so mypy reads it as a plain module.
jsonschema: Any = importlib.import_module("jsonschema")


def _bundled() -> dict[str, ResultDocument]:
    """Each bundled scenario's full document (the fault-free baseline included)."""
    return {
        name: run(retrysim.load_scenario(name)).document for name in sorted(bundled_scenarios())
    }


def _with_every_optional_section() -> dict[str, ResultDocument]:
    guarded = run(parse_scenario(GUARDED)).document
    small = retrysim.load_scenario("redis-blip").with_overrides({"clients.count": 60})
    custom = run(
        small, retrying=Retrying(stop=stop_after_attempt(3), wait=wait_fixed(0.2))
    ).document
    compared = run_task(Task(small, {"policy.max_attempts": 2}, 1))  # no timeline
    result = run(small, baseline=False).result
    real = real_document(
        result, 0.0, "redis://127.0.0.1:6379", ProxyStats().as_dict(), None, vs_sim=2
    )
    real["service"] = ServiceStats().as_dict()
    return {"guarded": guarded, "custom": custom, "compared": compared, "real": real}


@pytest.fixture(scope="module")
def documents() -> dict[str, ResultDocument]:
    return {**_bundled(), **_with_every_optional_section()}


@pytest.fixture(scope="module")
def validator() -> Any:
    schema = json.loads(PUBLISHED.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _problems(validator: Any, data: Any) -> list[str]:
    return [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(data)
    ]


# --- the published schema ----------------------------------------------------------------------


def test_the_schema_file_is_what_the_command_prints() -> None:
    printed = CliRunner().invoke(app, ["schema", "result"])
    assert printed.exit_code == 0, printed.output
    assert printed.stdout == PUBLISHED.read_text(encoding="utf-8"), (
        "docs/result.schema.json is stale: retrysim schema result --out docs/result.schema.json"
    )
    schema = json.loads(printed.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == rd.SCHEMA_ID and str(SCHEMA_VERSION) in schema["title"]
    assert schema["properties"]["schema_version"]["const"] == SCHEMA_VERSION
    assert schema["additionalProperties"] is False  # an undeclared key is a schema change


def test_schema_out_writes_the_same_text_atomically(tmp_path: Path) -> None:
    target = tmp_path / "result.schema.json"
    target.write_text("old", encoding="utf-8")
    done = CliRunner().invoke(app, ["schema", "result", "--out", str(target)])
    assert done.exit_code == 0, done.output
    assert target.read_text(encoding="utf-8") == PUBLISHED.read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]  # no temporary left
    folder = CliRunner().invoke(app, ["schema", "result", "--out", str(tmp_path)])
    assert folder.exit_code == 2 and "is a folder" in folder.stderr
    missing = CliRunner().invoke(app, ["schema", "result", "--out", str(tmp_path / "no" / "x")])
    assert missing.exit_code == 2 and missing.stderr.count("\n") == 1


# --- every document retrysim writes fits it ------------------------------------------------------


def test_every_bundled_scenario_and_optional_section_validates_as_saved(
    documents: dict[str, ResultDocument], validator: Any
) -> None:
    sections_seen: set[str] = set()
    for name, doc in documents.items():
        saved = json.loads(to_json(doc))
        assert saved["schema_version"] == SCHEMA_VERSION, name
        assert _problems(validator, saved) == [], name
        rd._adapter().validate_python(doc, strict=True)  # in memory: plain Python values only
        sections_seen |= set(doc)
    every_optional = {"connections", "guards", "mode", "target", "proxy", "versus", "service"}
    assert every_optional <= sections_seen  # each optional section was checked somewhere
    guards = documents["guarded"]["guards"]
    assert {"breaker", "budget", "limiter"} <= set(guards)
    assert "custom" in documents["custom"]["settings"] and "timeline" not in documents["compared"]
    assert {d["recovery"] is None for d in documents.values()} == {True, False}
    assert {d["latency_overhead"] is None for d in documents.values()} == {True, False}


def test_run_json_carries_the_version_and_validates(validator: Any) -> None:
    done = CliRunner().invoke(app, ["run", "startup-race", "--json"])
    assert done.exit_code == 0, done.output
    printed = json.loads(done.stdout)
    assert next(iter(printed)) == "schema_version" and printed["schema_version"] == SCHEMA_VERSION
    assert _problems(validator, printed) == []  # `sources`, which run adds, included
    assert printed["sources"]["max_attempts"] == "default"


def test_an_undeclared_or_mistyped_key_is_a_validation_error(
    documents: dict[str, ResultDocument], validator: Any
) -> None:
    """The schema is strict where it matters: a new key, a missing one or a wrong type in any
    section fails, so the types and what summarize writes cannot drift apart."""
    saved = json.loads(to_json(documents["redis-blip"]))
    extra = copy.deepcopy(saved)
    extra["latency"]["p999"] = 1.0
    missing = copy.deepcopy(saved)
    del missing["load"]
    mistyped = copy.deepcopy(saved)
    mistyped["calls"]["total"] = "many"
    for bad, where in ((extra, "latency"), (missing, ""), (mistyped, "calls.total")):
        problems = _problems(validator, bad)
        assert problems and problems[0].startswith(where), problems
        with pytest.raises(DocumentError):
            from_data(copy.deepcopy(bad))


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    attempts=st.integers(1, 6),
    start=st.floats(0, 3),
    length=st.floats(0.1, 3),
    breaker=st.booleans(),
)
def test_any_run_writes_a_document_that_validates_and_round_trips(
    seed: int, attempts: int, start: float, length: float, breaker: bool
) -> None:
    scenario = parse_scenario(
        {
            "seed": seed,
            "duration": 6,
            "policy": {"max_attempts": attempts, "breaker": {"enabled": breaker}},
            "clients": {"count": 20, "timeout": 1.0, "arrival": {"kind": "poisson", "rate": 10}},
            "faults": [{"kind": "outage", "start": start, "end": start + length}],
        }
    )
    doc = run(scenario).document
    text = to_json(doc)
    assert from_json(text) == doc == json.loads(text)
    assert to_json(from_json(text)) == text


# --- old and unknown versions --------------------------------------------------------------------


def test_a_document_from_before_the_version_loads_as_the_current_one(
    documents: dict[str, ResultDocument],
) -> None:
    doc = documents["postgres-restart"]
    old = {k: v for k, v in json.loads(to_json(doc)).items() if k != "schema_version"}
    loaded = from_json(json.dumps(old), "old.json")
    assert loaded == doc and next(iter(loaded)) == "schema_version"
    assert to_json(loaded) == to_json(doc)  # the same text, key order included


@pytest.mark.parametrize("version", [0, 1])
def test_a_version_1_or_0_document_gains_the_knobs_version_2_added(
    documents: dict[str, ResultDocument], version: int
) -> None:
    """Saved before breakers had a mode and budgets a quota: the breaker gated every attempt
    and the new budget knobs were at their defaults, which is what the upgrade fills in."""
    doc = documents["redis-blip"]
    old = json.loads(to_json(doc))
    for table, added in rd.ADDED_IN_2.items():
        for knob in added:
            del old["settings"][table][knob]
    if version:
        old["schema_version"] = version
    else:
        del old["schema_version"]
    loaded = from_json(json.dumps(old), "old.json")
    assert loaded["schema_version"] == SCHEMA_VERSION
    assert loaded["settings"]["breaker"] == doc["settings"]["breaker"]
    assert loaded["settings"]["budget"] == doc["settings"]["budget"]
    assert loaded["settings"]["breaker"]["mode"] == "calls"
    budget: dict[str, Any] = dict(doc["settings"]["budget"])
    assert rd.ADDED_IN_2["budget"] == {knob: budget[knob] for knob in rd.ADDED_IN_2["budget"]}


@pytest.mark.parametrize("version", [0, 1, 2])
def test_an_older_document_gains_the_settings_version_3_added(
    documents: dict[str, ResultDocument], version: int
) -> None:
    """Saved before per-attempt timeouts and per-error policies: no timeout, and every error
    family followed the policy's own numbers (each knob null), which the upgrade fills in."""
    doc = documents["redis-blip"]
    old = json.loads(to_json(doc))
    for key in rd.ADDED_IN_3:
        del old["settings"][key]
    old["schema_version"] = version
    loaded = from_json(json.dumps(old), "old.json")
    assert loaded["schema_version"] == SCHEMA_VERSION == 6
    assert loaded["settings"] == doc["settings"]  # the bundled scenario sets none of them
    assert loaded["settings"]["rate_limited"] == dict.fromkeys(ErrorPolicy.model_fields)


@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_an_older_document_gains_its_source_from_the_scenario_name(
    documents: dict[str, ResultDocument], version: int
) -> None:
    """Saved before documents said where their scenario came from: its name is all an older
    document knew, so it becomes ``source``, in the place a fresh document has it."""
    doc = documents["redis-blip"]
    old = json.loads(to_json(doc))
    del old["source"]
    old["schema_version"] = version
    loaded = from_json(json.dumps(old), "old.json")
    assert loaded["schema_version"] == SCHEMA_VERSION
    assert loaded["source"] == doc["scenario"] == "redis-blip"
    assert to_json(loaded) == to_json(doc)  # the same text, key order included


def test_a_run_from_a_file_records_the_path_and_options_as_given(tmp_path: Path) -> None:
    """``source`` is the path typed and ``arguments`` the options that shaped the run, so the
    document alone says how to run it again; options that only show a result are not kept."""
    path = tmp_path / "blip copy.toml"
    path.write_bytes(bundled_scenarios()["redis-blip"].read_bytes())
    args = [str(path), "--seed", "4", "--set", "clients.count=50", "--profile", "full_jitter"]
    done = CliRunner().invoke(app, ["run", *args, "--json", "--engine", "reference"])
    assert done.exit_code == 0, done.output
    printed = json.loads(done.stdout)
    assert printed["source"] == str(path) and printed["scenario"] == "redis-blip"
    assert [printed["source"], *printed["arguments"]] == args
    rd._adapter().validate_python(printed)


@pytest.mark.parametrize("version", [7, 99, -1, "1", True, None])
def test_an_unknown_version_is_refused_in_one_line(
    documents: dict[str, ResultDocument], version: object
) -> None:
    saved = json.loads(to_json(documents["startup-race"]))
    saved["schema_version"] = version
    with pytest.raises(SchemaVersionError) as caught:
        from_json(json.dumps(saved), "result.json")
    message = str(caught.value)
    assert "\n" not in message and message.startswith("result.json: ")
    assert f"schema_version {version!r} is not supported" in message
    assert "reads 0, 1, 2, 3, 4, 5, 6" in message


def test_not_json_or_not_an_object_is_bad_input() -> None:
    with pytest.raises(DocumentError, match=r"^r\.json: invalid JSON at line 1 column 2$"):
        from_json("{oops", "r.json")
    with pytest.raises(DocumentError, match="expected a JSON object"):
        from_json("[1, 2]", "r.json")


def test_plot_refuses_a_newer_document_and_draws_an_old_one(
    documents: dict[str, ResultDocument], tmp_path: Path
) -> None:
    saved = json.loads(to_json(documents["redis-blip"]))
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps({**saved, "schema_version": 7}), encoding="utf-8")
    refused = CliRunner().invoke(app, ["plot", str(newer), "--out", str(tmp_path / "n.png")])
    assert refused.exit_code == 2 and refused.stderr.count("\n") == 1
    assert "schema_version 7 is not supported (this retrysim reads 0, 1" in refused.stderr
    assert not (tmp_path / "n.png").exists()
    old = tmp_path / "old.json"
    old.write_text(json.dumps({k: v for k, v in saved.items() if k != "schema_version"}), "utf-8")
    drawn = CliRunner().invoke(app, ["plot", str(old), "--out", str(tmp_path / "o.png")])
    assert drawn.exit_code == 0, drawn.output
    assert (tmp_path / "o.png").read_bytes().startswith(b"\x89PNG")


def test_a_sweep_checkpoint_of_an_unknown_version_is_run_again(tmp_path: Path) -> None:
    """A checkpoint is never trusted blindly: one of another version is named and recomputed;
    one saved before documents had a version is reused as it is."""
    args = ["sweep", "redis-blip", "--grid", "policy.max_attempts=2,3", "--json"]
    out = tmp_path / "out"
    first = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert first.exit_code == 0, first.output
    newer, older = sorted((out / "runs").glob("*.json"))
    for path, version in ((newer, 7), (older, None)):
        data = json.loads(path.read_text(encoding="utf-8"))
        data["document"].pop("schema_version")
        if version is not None:
            data["document"]["schema_version"] = version
        path.write_text(json.dumps(data), encoding="utf-8")
    again = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert again.exit_code == 0, again.output
    (warning,) = [line for line in again.stderr.splitlines() if "warning" in line]
    assert warning.startswith(f"retrysim: warning: {newer}: damaged checkpoint")
    assert "schema_version 7 is not supported" in warning
    assert json.loads(again.stdout) == json.loads(first.stdout)
    rerun = json.loads(newer.read_text(encoding="utf-8"))["document"]
    assert rerun["schema_version"] == SCHEMA_VERSION  # recomputed and written again
    kept = json.loads(older.read_text(encoding="utf-8"))["document"]
    assert "schema_version" not in kept  # read (upgraded in memory), not rewritten


# --- the types follow what they describe ---------------------------------------------------------


def test_the_settings_types_list_every_policy_option_and_knob() -> None:
    """The settings section is typed key by key; a new option or knob must be added there (and
    the version raised), which this test says rather than a reader's KeyError."""
    assert set(get_type_hints(sections.Settings)) == {
        "operation",
        *OPTION_NAMES,
        *ERROR_POLICY_NAMES,
        *MECHANISM_NAMES,
        "overrides",
        "custom",
    }
    assert list(get_type_hints(sections.ErrorPolicyKnobs)) == list(ErrorPolicy.model_fields)
    for knobs, options in (
        (sections.BreakerKnobs, BreakerOptions),
        (sections.BudgetKnobs, BudgetOptions),
        (sections.AdaptiveKnobs, AdaptiveOptions),
        (sections.HedgeKnobs, HedgeOptions),
    ):
        assert list(get_type_hints(knobs)) == list(options.model_fields), knobs.__name__
    assert set(get_args(sections.SharedScope)) == set(
        get_args(BreakerOptions.model_fields["scope"].annotation)
    )


def test_the_document_module_imports_nothing_heavy() -> None:
    """metric_table (loaded for --help) names these types: importing them must stay light, and
    pydantic comes only with a validation or the schema."""
    code = (
        "import sys, retrysim.results.document, retrysim.results.metric_table\n"
        "heavy = ('numpy', 'pydantic', 'pydantic_settings', 'rich', 'matplotlib', 'typer')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
