"""The result document's shape, typed once, and its versioned JSON form.

:func:`retrysim.results.metrics.summarize` builds the document ``retrysim run --json`` prints;
reports, plots, gates, diagnoses, the lab, compare, sweep and notebooks read it back, often from
a saved file. The document and each of its sections (:mod:`retrysim.results.sections`) is a
``TypedDict``, so mypy checks every key a reader uses while the value stays the plain ``dict`` it
always was (JSON output and pickling do not change). The same types are the published JSON
Schema (``retrysim schema result``, ``docs/result.schema.json``): pydantic reads them, with each
field's docstring as its description.

``schema_version`` says which shape a saved document has. It goes up when a key is added,
removed or renamed, or a value changes type or meaning; a reader refuses a version it does not
know (:class:`SchemaVersionError`) rather than misread it. A document saved before the key
existed is version 0: version 1's shape without it. Older versions are upgraded in place when
read.

Version 2 added a breaker's ``mode`` and the budget knobs ``initial_allowance``,
``quota_capacity``, ``retry_cost``, ``timeout_retry_cost`` and ``success_refund`` to
``settings`` (and ``quota`` as a budget ``kind``); a version 0 or 1 document is upgraded by
filling them in with what it meant by leaving them out (:data:`ADDED_IN_2`): the breaker gated
every attempt, and the knobs were at the defaults of mechanisms that did not exist yet.

Version 3 added ``attempt_timeout`` and the per-error policies to ``settings``: a table per
error family (``rate_limited``, ``server_error``, ``connection_error``, ``timeout_error``) of
its own ``max_attempts``, ``min_wait``, ``max_wait`` and ``respect_retry_after``. An older
document is upgraded with what it meant by leaving them out (:data:`ADDED_IN_3`): no
per-attempt timeout, and every family's knob null (each followed the policy's own).

Version 4 added ``source``, the scenario as the run was given it (a bundled name or the path
of its file), so the commands a report suggests (``retrysim run SOURCE --set ...``) name what
runs; an older document is upgraded with its scenario's name, all it knew. ``arguments``
(the other options of the command, added by ``retrysim run`` and ``retrysim chaos``) came
with it; it is optional, so older documents need nothing for it.

Version 5 added the sections of a call graph and of replicated services: ``tiers`` (a
scenario with ``[tiers.NAME]`` tables: per tier, the requests per user call against the most
possible, the load against capacity, the wasted work, a timeline) and ``replicas`` (a service
with ``replicas > 1``: per replica, its attempts and failures). Both are present only when the
run has them, so an older document is upgraded by its version alone.

Version 6 added ``calibration``: what ``chaos --calibrate`` measured on the machine (the
client's CPU per attempt and per connect, the slowdown, when) and the figures the simulation
used in their place. Only a calibrated run has it, so an older document is upgraded by its
version alone.

Only the standard library and ``typing_extensions`` at import: :mod:`retrysim.results.metric_table`
(loaded for ``retrysim --help``) names these types; pydantic is imported when a document is
validated or the schema is asked for.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any, Final, Literal, NotRequired, cast

from typing_extensions import TypedDict

from retrysim.errors import BadInputError
from retrysim.results.sections import (
    ArrivalWindow,
    AttemptCounts,
    CalibrationSection,
    CallCounts,
    Clients,
    Connections,
    Diagnosis,
    FaultWindow,
    GiveUps,
    GraphSection,
    Guards,
    HedgeSection,
    JitterSpread,
    Latency,
    LatencyOverhead,
    Load,
    Outage,
    PolicyFacts,
    Recovery,
    ReplicaSection,
    RetryWait,
    Settings,
    TierSection,
    Timeline,
    Versus,
)

if TYPE_CHECKING:
    from pydantic import TypeAdapter, ValidationError

#: The shape documents are written in; see the module's docstring for when it goes up.
SchemaVersion = Literal[6]
SCHEMA_VERSION: Final[SchemaVersion] = 6
#: Every version a reader accepts: 0 (saved before ``schema_version`` existed), 1 to 5, the
#: current.
SUPPORTED_VERSIONS: Final = (0, 1, 2, 3, 4, 5, SCHEMA_VERSION)
#: The ``settings`` keys version 2 added, per mechanism table, with the values an older
#: document meant by leaving them out.
ADDED_IN_2: Final[dict[str, dict[str, Any]]] = {
    "breaker": {"mode": "calls"},
    "budget": {
        "initial_allowance": 0,
        "quota_capacity": 500,
        "retry_cost": 5,
        "timeout_retry_cost": 10,
        "success_refund": 1,
    },
}
#: The ``settings`` keys version 3 added, with the values an older document meant by leaving
#: them out: no per-attempt timeout, and each error family's table with every knob null (the
#: policy's own value).
ADDED_IN_3: Final[dict[str, Any]] = {
    "attempt_timeout": None,
    **{
        family: dict.fromkeys(("max_attempts", "min_wait", "max_wait", "respect_retry_after"))
        for family in ("rate_limited", "server_error", "connection_error", "timeout_error")
    },
}
#: The published schema's identifier (a URN: it names the shape, it is not fetched).
SCHEMA_ID: Final = f"urn:retrysim:result-document:v{SCHEMA_VERSION}"


class ResultDocument(TypedDict):
    """One run's result document (``retrysim run --json``), JSON as it is saved."""

    schema_version: SchemaVersion
    """the document's shape; a reader refuses a version it does not know"""
    scenario: str
    source: str
    """the scenario as the run was given it: a bundled scenario's name or the path of its file,
    as typed (the scenario's name for a run made in Python)"""
    description: str
    seed: int
    profile: str
    settings: Settings
    calls: CallCounts
    attempts: AttemptCounts
    retry_success_rate: float | None
    """share of retried calls that succeeded"""
    latency: Latency
    latency_quantiles: list[float]
    """per-call latency at every whole percentile 0..100"""
    latency_overhead: LatencyOverhead | None
    """null without the fault-free baseline"""
    retry_wait: RetryWait
    failures_by_type: dict[str, int]
    final_errors: dict[str, int]
    load: Load
    jitter_spread: JitterSpread
    duplicates: int
    wasted_work: int
    timeline: NotRequired[Timeline]
    """left out of compare's and sweep's runs (bulky, never compared)"""
    faults: list[FaultWindow]
    clients: Clients
    policy_facts: PolicyFacts
    give_ups: GiveUps
    outages: list[Outage]
    arrival_windows: list[ArrivalWindow]
    virtual_time: float
    wall_time: float
    events: int
    engine: str
    """which path decided the retries: fast, reference (or decorators, in fidelity mode)"""
    engine_note: str | None
    stopped: str | None
    """why the run stopped early, if it did"""
    recovery: Recovery | None
    """null when recovery cannot be judged"""
    connections: NotRequired[Connections]
    """only when the scenario models connections"""
    guards: NotRequired[Guards]
    """only when a resilience mechanism is on (or a guard acted)"""
    tiers: NotRequired[list[TierSection]]
    """only when the scenario has tiers (`[tiers.NAME]`): each tier, top first"""
    replicas: NotRequired[list[ReplicaSection]]
    """only when a service has more than one replica: each replica of each such service"""
    graph: NotRequired[GraphSection]
    """only with tiers: what reached the bottom tier, in a line"""
    hedging: NotRequired[HedgeSection]
    """only when hedging is on, or when one hedge would cut the sends' p99 by half or more"""
    diagnoses: list[Diagnosis]
    sources: NotRequired[dict[str, str]]
    """where each policy option's value came from (--set, scenario, env, default, ...): added by
    retrysim run and retrysim chaos"""
    arguments: NotRequired[list[str]]
    """the options besides the scenario that shaped the run (--seed, --set, --profile,
    --env-file, --policy), as given, one item per word: `retrysim run SOURCE ARGUMENTS...` runs it
    again; added by retrysim run and retrysim chaos"""
    mode: NotRequired[Literal["real"]]
    """a real run's (retrysim chaos), with target, proxy and maybe versus and service"""
    target: NotRequired[str]
    proxy: NotRequired[dict[str, int]]
    versus: NotRequired[Versus]
    calibration: NotRequired[CalibrationSection]
    service: NotRequired[dict[str, int]]


# Read by pydantic only: every section refuses keys it does not declare, so a document and its
# types cannot drift apart unnoticed, and field docstrings become the schema's descriptions.
setattr(  # noqa: B010 (a TypedDict's body may hold only fields)
    ResultDocument, "__pydantic_config__", {"extra": "forbid", "use_attribute_docstrings": True}
)


# --- reading and writing -----------------------------------------------------------------------


class DocumentError(BadInputError):
    """A saved result document cannot be read: not JSON, or not of the documented shape."""


class SchemaVersionError(DocumentError):
    """A saved result document has a schema version this retrysim does not know."""


def to_json(document: ResultDocument) -> str:
    """The document as ``retrysim run --json`` prints it (NaN and infinities as null)."""
    from retrysim import output

    return output.dumps(document)


def from_json(text: str, source: str = "result document") -> ResultDocument:
    """A saved document, checked against the types above (``source`` names it in errors).

    A version-0 document (no ``schema_version``) is upgraded; an unknown version is refused
    (:class:`SchemaVersionError`), and so is one not of the documented shape
    (:class:`DocumentError`, naming the first problem). The data is returned as parsed: the
    check changes nothing (an integer stays an integer where a float is allowed).
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise DocumentError(
            f"{source}: invalid JSON at line {error.lineno} column {error.colno}"
        ) from None
    return from_data(data, source)


def from_data(data: object, source: str = "result document") -> ResultDocument:
    """:func:`from_json` for data already parsed (a sweep checkpoint's ``document``)."""
    if not isinstance(data, dict):
        raise DocumentError(f"{source}: not a result document (expected a JSON object)")
    document = upgrade(data, source)
    from pydantic import ValidationError

    try:
        _adapter().validate_python(document)
    except ValidationError as error:
        raise DocumentError(f"{source}: {_first_problem(error)}") from None
    return document


def upgrade(data: MutableMapping[str, Any], source: str = "result document") -> ResultDocument:
    """``data`` at the current version, in place: version 0 gains ``schema_version`` (first, as
    a fresh document has it), versions 0 and 1 the settings version 2 added
    (:data:`ADDED_IN_2`), versions 0 to 2 those version 3 added (:data:`ADDED_IN_3`), versions
    0 to 3 ``source`` (the scenario's name, after ``scenario`` as a fresh document has it),
    version 4 or 5 only its number (the sections of versions 5 and 6 are optional); the
    current version is left as it is; any other is refused.

    Only the version is checked, not the shape: :func:`from_data` does both.
    """
    found = data.get("schema_version", 0)
    if found in (0, 1, 2, 3, 4, 5) and not isinstance(found, bool):
        rest = dict(data)
        rest.pop("schema_version", None)
        data.clear()
        data["schema_version"] = SCHEMA_VERSION
        for key, value in rest.items():
            data[key] = value
            if key == "scenario" and "source" not in rest:
                data["source"] = value
        settings = data.get("settings")
        for table, added in ADDED_IN_2.items() if found in (0, 1) else ():
            knobs = settings.get(table) if isinstance(settings, dict) else None
            if isinstance(knobs, dict):
                for knob, value in added.items():
                    knobs.setdefault(knob, value)
        if isinstance(settings, dict) and found in (0, 1, 2):
            for key, value in ADDED_IN_3.items():
                settings.setdefault(key, copy.deepcopy(value))
    elif found != SCHEMA_VERSION or isinstance(found, bool):
        supported = ", ".join(str(v) for v in SUPPORTED_VERSIONS)
        raise SchemaVersionError(
            f"{source}: result document schema_version {found!r} is not supported "
            f"(this retrysim reads {supported}; a newer retrysim wrote it?)"
        )
    return cast(ResultDocument, data)


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of :class:`ResultDocument`, what
    ``retrysim schema result`` prints and ``docs/result.schema.json`` holds."""
    schema = _markdown(_adapter().json_schema(mode="validation"))
    schema.pop("title", None)
    schema.pop("description", None)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": f"retrysim result document, schema version {SCHEMA_VERSION}",
        "description": (
            "One run's result, as `retrysim run --json` prints it and `run --out DIR` saves it "
            "(result.json). schema_version goes up when a key is added, removed or renamed, or a "
            "value changes type or meaning; a document without it is version 0 (version 1's "
            "shape), and older versions are upgraded when read."
        ),
        **schema,
    }


def _markdown(node: Any) -> Any:
    """Every description's reST literals (double backticks, as docstrings write them) as
    Markdown's (single ones), which is what JSON Schema tools render."""
    if isinstance(node, dict):
        return {
            key: value.replace("``", "`")
            if key == "description" and isinstance(value, str)
            else _markdown(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_markdown(item) for item in node]
    return node


@functools.cache
def _adapter() -> TypeAdapter[ResultDocument]:
    from pydantic import TypeAdapter

    return TypeAdapter(ResultDocument)


def _first_problem(error: ValidationError) -> str:
    """A pydantic ValidationError as one line: where, what, and how many more problems."""
    problems = error.errors(include_url=False)
    first = problems[0]
    where = ".".join(str(part) for part in first["loc"]) or "the document"
    more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
    return (
        f"not a result document of schema version {SCHEMA_VERSION}: {where}: {first['msg']}{more}"
    )


def schema_json() -> str:
    """:func:`json_schema` as the text ``retrysim schema result`` prints (2-space indent)."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"
