"""Scenario models: who calls, with which retry policy, against what server, under which faults.

Scenarios are plain validated data (pydantic, ``extra="forbid"``, frozen), loadable from TOML and
buildable in Python. Loading never executes anything from the file.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    Field,
    ValidationError,
    model_validator,
)

from retrysim.dotted import set_dotted as set_dotted
from retrysim.errors import BadInputError
from retrysim.model.base import MAX_RATE as MAX_RATE
from retrysim.model.base import MAX_SECONDS as MAX_SECONDS
from retrysim.model.base import MAX_TAIL_RATIO as MAX_TAIL_RATIO
from retrysim.model.base import MIN_RATE as MIN_RATE
from retrysim.model.base import MIN_SECONDS as MIN_SECONDS
from retrysim.model.base import Constant as Constant
from retrysim.model.base import Empirical as Empirical
from retrysim.model.base import Exponential as Exponential
from retrysim.model.base import Gamma as Gamma
from retrysim.model.base import Latency as Latency
from retrysim.model.base import Lognormal as Lognormal
from retrysim.model.base import Model as Model
from retrysim.model.base import NonNeg as NonNeg
from retrysim.model.base import Normal as Normal
from retrysim.model.base import Pos as Pos
from retrysim.model.base import PosRate as PosRate
from retrysim.model.base import Prob as Prob
from retrysim.model.base import Rate as Rate
from retrysim.model.base import UniformLatency as UniformLatency
from retrysim.model.base import Weibull as Weibull
from retrysim.model.base import always_zero, check_window, numbers_as_constant
from retrysim.model.faults import CapacityLoss as CapacityLoss
from retrysim.model.faults import Fault as Fault
from retrysim.model.faults import Flaky as Flaky
from retrysim.model.faults import LatencySpike as LatencySpike
from retrysim.model.faults import Outage as Outage
from retrysim.model.faults import RecoveryRamp as RecoveryRamp
from retrysim.model.faults import Reset as Reset
from retrysim.model.faults import distinct_answers, replica_shares_as_lists
from retrysim.model.marks import (
    CPU_COSTS,
    CPUS,
    FOLLOW_UPS,
    OWN_CALLS,
    POOL_SIZE,
    PROCESSES,
)
from retrysim.model.network import Network as Network
from retrysim.model.policy_spec import PolicySpec as PolicySpec
from retrysim.model.service import Ideal as Ideal
from retrysim.model.service import LoadLatency as LoadLatency
from retrysim.model.service import Lock as Lock
from retrysim.model.service import Occ as Occ
from retrysim.model.service import ProcessorSharing as ProcessorSharing
from retrysim.model.service import Queue as Queue
from retrysim.model.service import RateLimited as RateLimited
from retrysim.model.service import Service as Service
from retrysim.model.tiers import MAX_TIERS, TIER_NAME, Tier
from retrysim.names import ERROR_NAMES as ERROR_NAMES
from retrysim.suggest import closest, hint

# --- clients and arrivals --------------------------------------------------------------------


class Burst(Model):
    """Every client's first call at one instant: the thundering herd."""

    kind: Literal["burst"]
    at: NonNeg = Field(0.0, description="when every client's first call starts")


class UniformArrival(Model):
    """First calls spread uniformly over [start, end)."""

    kind: Literal["uniform"]
    start: NonNeg = Field(0.0, description="the earliest first call")
    end: NonNeg = Field(description="first calls start before this")

    @model_validator(mode="after")
    def _window(self) -> UniformArrival:
        check_window(self.start, self.end, may_be_empty=True)
        return self


class RateStep(Model):
    """A window with its own arrival rate: a traffic spike, a lull."""

    start: NonNeg = Field(description="the window's start")
    end: NonNeg = Field(description="the window's end")
    rate: Rate = Field(description="calls per second in the window, across the fleet")

    @model_validator(mode="after")
    def _window(self) -> RateStep:
        check_window(self.start, self.end)
        return self


class Poisson(Model):
    """Open loop: calls arrive at ``rate`` per second; ``schedule`` steps override it in windows."""

    kind: Literal["poisson"]
    rate: Rate = Field(
        description="calls per second across the fleet (call i is client i mod count's)"
    )
    schedule: list[RateStep] = Field(
        default_factory=list, description="windows with another rate; a later step wins overlaps"
    )
    start: NonNeg = Field(0.0, description="calls arrive from this time on")
    end: NonNeg | None = Field(None, description="default: the scenario's duration")

    @model_validator(mode="after")
    def _window(self) -> Poisson:
        check_window(self.start, self.end)
        return self


class Closed(Model):
    """Closed loop: each client calls again ``think_time`` after its previous call ends."""

    kind: Literal["closed"]
    ramp: NonNeg = Field(0.0, description="first calls spread over [0, ramp)")


Arrival = Annotated[Burst | UniformArrival | Poisson | Closed, Field(discriminator="kind")]


_CPU = ("cpu_per_attempt", "cpu_per_connect")


class Clients(Model):
    """Who calls: how many clients, when, with which timeout, over which connections."""

    count: Annotated[int, Field(ge=1)] = Field(
        1, description="clients: workers, app instances, tasks; each keeps its own call state"
    )
    calls_per_client: Annotated[Annotated[int, Field(ge=1)] | None, OWN_CALLS] = Field(
        None, description="calls each client makes (default 1; closed loop: until duration)"
    )
    think_time: Annotated[NonNeg, FOLLOW_UPS] = Field(
        0.0, description="from a call's end to the same client's next call (several calls each)"
    )
    timeout: Pos | None = Field(
        None,
        description="client-side timeout per attempt, seconds (a wait for a pooled connection "
        "and the connect count in it); policy.attempt_timeout is the same timeout",
    )
    arrival: Arrival = Field(
        default_factory=lambda: Burst(kind="burst"), description="when the calls start"
    )
    processes: Annotated[Annotated[int, Field(ge=1)] | None, PROCESSES] = Field(
        None,
        description="client processes the clients run in (client i in process i mod processes), "
        "each with its own connection pool; default: one per client",
    )
    pool_size: Annotated[Annotated[int, Field(ge=1)] | None, POOL_SIZE] = Field(
        None,
        description="connections per process; an attempt waits (FIFO) for a free one; "
        "default: as many as are asked for",
    )
    connect_timeout: Pos | None = Field(
        None, description="a connect not done in this many seconds fails with TimeoutError"
    )
    cpus: Annotated[Annotated[int, Field(ge=1)] | None, CPUS, CPU_COSTS] = Field(
        None,
        description="CPUs the client processes share for cpu_per_attempt and cpu_per_connect "
        "(process p on CPU p mod cpus: one event loop running many pools); default: one each",
    )
    cpu_per_attempt: Latency | None = Field(
        None,
        description="CPU seconds each attempt costs its client process before the request "
        "leaves, inside the attempt's timeout, in cpu_discipline's order; default: none",
    )
    cpu_discipline: Annotated[Literal["fifo", "processor_sharing"], CPU_COSTS] = Field(
        "fifo",
        description='how a process does its CPU work: "fifo", one piece at a time, first come '
        'first served (threads behind a GIL); "processor_sharing", all that is ready at once '
        "(an event loop interleaving its tasks: a burst's attempts all leave together)",
    )
    cpu_per_connect: Latency | None = Field(
        None,
        description="CPU seconds each new connection costs its client process (the "
        "handshake's work), queued like cpu_per_attempt, inside the connect's time; default: none",
    )

    @model_validator(mode="before")
    @classmethod
    def _cpu_numbers_as_constant(cls, data: Any) -> Any:
        return numbers_as_constant(data, _CPU)

    @property
    def process_count(self) -> int:
        """How many client processes there are (``processes``; default one per client)."""
        return self.processes or self.count

    @model_validator(mode="after")
    def _processes(self) -> Clients:
        if self.processes is not None and self.processes > self.count:
            raise ValueError(
                f"processes ({self.processes}) must be <= count ({self.count}): "
                "a process with no client is no process"
            )
        if self.cpus is not None and self.cpus > self.process_count:
            raise ValueError(f"cpus ({self.cpus}) must be <= processes: a CPU runs a process")
        return self


#: The client's timeout per attempt, under its two keys: the client's, and the retry policy's
#: option (``RETRY__<OPERATION>_ATTEMPT_TIMEOUT``, enforced by the decorators for coroutines).
TIMEOUT_KEYS = ("clients.timeout", "policy.attempt_timeout")


class Limits(Model):
    """Guards: a run stops with a clear message instead of running away."""

    max_time: Pos | None = Field(None, description="virtual seconds; default duration*10+3600")
    max_events: Annotated[int, Field(ge=1)] = Field(
        200_000_000, description="events the simulation may process at most"
    )


class Scenario(Model):
    """A complete, validated scenario."""

    @model_validator(mode="before")
    @classmethod
    def _replica_shares(cls, data: Any) -> Any:
        return replica_shares_as_lists(data)

    name: str = Field("scenario", description="what reports call it")
    description: str = Field("", description="what it models, in a sentence or two")
    seed: Annotated[int, Field(ge=0, lt=2**63)] = Field(
        0, description="every random draw follows from it: same scenario and seed, same run"
    )
    duration: Pos = Field(60.0, description="virtual seconds during which calls start")
    policy: PolicySpec = PolicySpec()
    clients: Clients = Clients()
    service: Service = Field(
        default_factory=lambda: Ideal(kind="ideal"), description="what answers the requests"
    )
    network: Network | None = Field(
        None, description="round trips and connects; omitted: requests arrive instantly"
    )
    faults: list[Fault] = Field(
        default_factory=list, description="what goes wrong and when, one table per fault"
    )
    tiers: dict[str, Tier] = Field(
        default_factory=dict,
        description="a call graph below the clients, top first: each tier serves the requests "
        "of the one above and retries its own calls to the next (retrysim.model.tiers); with "
        "tiers, service and faults are each tier's",
    )
    limits: Limits = Limits()

    @property
    def tier_names(self) -> tuple[str, ...]:
        """The tiers, top first (empty: a one-tier scenario, clients against its service)."""
        return tuple(self.tiers)

    @property
    def models_connections(self) -> bool:
        """Whether attempts go over connections (a network, a bounded pool, a connect timeout).

        Without any of them an attempt reaches the server the instant it is sent, and the
        engine takes its shortest path.
        """
        clients = self.clients
        return (
            self.network is not None
            or clients.pool_size is not None
            or clients.connect_timeout is not None
            or clients.cpu_per_attempt is not None
            or clients.cpu_per_connect is not None
        )

    @property
    def client_timeout(self) -> float | None:
        """The clients' timeout per attempt: ``clients.timeout`` or ``policy.attempt_timeout``,
        one timeout under two keys (validation keeps them equal when both are given). Without
        either, a ``RETRY__<OPERATION>_ATTEMPT_TIMEOUT`` setting may give it
        (:func:`retrysim.sim.policy.client_timeout`)."""
        timeout = self.clients.timeout
        return self.policy.attempt_timeout if timeout is None else timeout

    @property
    def answers(self) -> tuple[int | str, ...]:
        """The values its faults and service answer with instead of failing, each once."""
        found: list[Any] = []
        for service, faults in [(self.service, self.faults)] + [
            (tier.service, tier.faults) for tier in self.tiers.values()
        ]:
            found += [getattr(f, "answer", None) for f in faults]
            found.append(getattr(service, "reject_answer", None))
        return distinct_answers(found)

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        self.answers  # noqa: B018  (at most MAX_ANSWERS: a ValueError names the count)
        timeout, attempt_timeout = self.clients.timeout, self.policy.attempt_timeout
        if None not in (timeout, attempt_timeout) and timeout != attempt_timeout:
            raise ValueError(
                f"clients.timeout ({timeout:g}) and policy.attempt_timeout ({attempt_timeout:g}) "
                "are one timeout, the client's per attempt: give one of them, or the same value"
            )
        arrival, duration = self.clients.arrival, self.duration
        first_start = {
            "burst": getattr(arrival, "at", 0.0),
            "uniform": getattr(arrival, "start", 0.0),
            "poisson": getattr(arrival, "start", 0.0),
            "closed": 0.0,
        }[arrival.kind]
        if first_start >= duration:
            raise ValueError(
                f"clients.arrival starts at {first_start:g}s, not before duration ({duration:g}s): "
                "no call would start"
            )
        latest = (
            getattr(arrival, "end", None)
            if arrival.kind == "uniform"
            else (getattr(arrival, "ramp", None) if arrival.kind == "closed" else None)
        )
        if latest is not None and latest > duration:
            field = "end" if arrival.kind == "uniform" else "ramp"
            raise ValueError(
                f"clients.arrival.{field} ({latest:g}) must be <= duration ({duration:g}): "
                "calls start only within the duration"
            )
        if (
            arrival.kind == "closed"
            and self.clients.think_time == 0
            and always_zero(getattr(self.service, "latency", None))
        ):
            raise ValueError(
                "clients.think_time: a closed loop with no think time against a zero-latency "
                "service never lets virtual time advance; give either a positive value"
            )
        _check_faults_fit(self.service, self.faults, "")
        self._check_tiers()
        return self

    def _check_tiers(self) -> None:
        """A call graph that means what it says: named tiers, each non-last one with its
        policy, the last with none (it calls no one), and no top-level service or faults
        (they would judge nothing: each tier has its own)."""
        if not self.tiers:
            return
        if len(self.tiers) > MAX_TIERS:
            raise ValueError(f"tiers: {len(self.tiers)} tiers; at most {MAX_TIERS} are allowed")
        for name in self.tiers:
            if not re.match(TIER_NAME, name):
                raise ValueError(
                    f"tiers.{name}: a tier's name is lower-case letters, digits, '-' and '_', "
                    "starting with a letter (at most 32)"
                )
        if self.service != Ideal(kind="ideal") or self.faults:
            raise ValueError(
                "with tiers, each tier has its own service and faults: move [service] and "
                f"[[faults]] into a tier ([tiers.{next(iter(self.tiers))}.service]); "
                "at the top they would judge nothing"
            )
        *upper, last = self.tiers
        for name in upper:
            tier = self.tiers[name]
            if tier.policy is None:
                raise ValueError(
                    f"tiers.{name}.policy: tier {name!r} calls the next tier and needs its retry "
                    f"policy ([tiers.{name}.policy]; max_attempts = 1 for no retries)"
                )
            _check_faults_fit(tier.service, tier.faults, f"tiers.{name}.")
        tier = self.tiers[last]
        if tier.policy is not None or tier.attempt_timeout is not None or tier.propagate_deadline:
            raise ValueError(
                f"tiers.{last}: the last tier calls no one: its policy, timeout and "
                "propagate_deadline would do nothing; remove them"
            )
        _check_faults_fit(tier.service, tier.faults, f"tiers.{last}.")

    def with_overrides(self, values: dict[str, Any]) -> Scenario:
        """A copy with dotted-key overrides applied (``policy.max_attempts``, ``faults.0.end``).

        An override of one of :data:`TIMEOUT_KEYS` replaces what the scenario gave the other
        (one timeout under two keys), so ``--set``, a sweep's grid and the tuner move it from
        either key.
        """
        data = self.model_dump(mode="python", exclude_unset=False)
        for dotted, value in values.items():
            set_dotted(data, dotted, value)
        touched = [key for key in TIMEOUT_KEYS if key in values]
        if len(touched) == 1:
            set_dotted(data, TIMEOUT_KEYS[1 - TIMEOUT_KEYS.index(touched[0])], None)
        return Scenario.model_validate(data)

    @property
    def has_faults(self) -> bool:
        """Whether any fault is scheduled, at the top or at any tier."""
        return bool(self.faults) or any(tier.faults for tier in self.tiers.values())

    def without_faults(self) -> Scenario:
        """The same scenario with no faults, at any tier: the baseline for latency overhead."""
        tiers = {name: tier.model_copy(update={"faults": []}) for name, tier in self.tiers.items()}
        return self.model_copy(update={"faults": [], "tiers": tiers})


def _check_faults_fit(service: Service, faults: Sequence[Fault], prefix: str) -> None:
    """Each fault fits the server it judges: capacity loss needs a queue, and the replicas a
    fault hits exist (``prefix``: where they are, ``tiers.db.``)."""
    for index, fault in enumerate(faults):
        if isinstance(fault, CapacityLoss) and not isinstance(service, Queue):
            raise ValueError(
                f"{prefix}faults.{index}: capacity_loss needs service kind 'queue', "
                f"not {service.kind!r}"
            )
        beyond = [r for r in fault.replicas or () if r >= service.replicas]
        if beyond:
            raise ValueError(
                f"{prefix}faults.{index}.replicas: {beyond[0]} is not a replica; "
                f"{prefix}service.replicas is {service.replicas} (0 to {service.replicas - 1})"
            )


def fault_windows(scenario: Scenario) -> list[dict[str, object]]:
    """Each fault's index, kind and window (``end`` None: until the run ends), every tier's
    (``tier``: its name, with tiers) in order, with the ``replicas`` it hits when it names some.

    What reports, plots and the result document show of the faults. It reads only the
    validated specs, so it lives with them rather than with the engine's fault strategies.
    ``index`` is the fault's place in its own list (``faults.1``, ``tiers.db.faults.1``).
    """
    groups: list[tuple[str | None, Sequence[Fault]]] = [(None, scenario.faults)]
    groups += [(name, tier.faults) for name, tier in scenario.tiers.items()]
    windows: list[dict[str, object]] = []
    for tier, faults in groups:
        for i, f in enumerate(faults):
            window: dict[str, object] = {"index": i, "kind": f.kind, "start": f.start, "end": f.end}
            if tier is not None:
                window["tier"] = tier
            if f.replicas is not None:
                window["replicas"] = list(f.replicas)
            windows.append(window)
    return windows


def arrival_windows(arrival: Arrival) -> list[dict[str, float]]:
    """Each window in which a Poisson ``schedule`` step changes the arrival rate.

    A traffic spike is a cause a reader must see next to its effect (retry-storm's 5 s spike is
    why the fleet tips over), so reports and plots mark these windows as faults are marked.
    ``rate`` is the step's calls per second, ``base_rate`` the rate outside it; arrivals
    without a schedule have no windows.
    """
    if not isinstance(arrival, Poisson):
        return []
    return [
        {"start": step.start, "end": step.end, "rate": step.rate, "base_rate": arrival.rate}
        for step in arrival.schedule
    ]


class ScenarioError(BadInputError):
    """A scenario file or value is invalid; the message names file, field and what is allowed."""


#: Problems listed for one file; the rest are counted.
MAX_ERRORS_SHOWN = 20


def format_validation_error(error: ValidationError, source: str) -> str:
    """One line per problem: ``source: field.path: message``.

    An empty ``source`` leaves it out (``field.path: message``): the shell's errors name the
    key once, not once for the command and again for the field.
    """
    lines = []
    problems = error.errors()
    for item in problems[:MAX_ERRORS_SHOWN]:
        path, _ = _follow(item["loc"])
        loc = ".".join(path)
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key" + _suggest(item["loc"])
        elif item["type"] == "union_tag_invalid":
            ctx = item.get("ctx", {})
            field = ctx.get("discriminator", "kind").strip("'")
            message = f"unknown {field} {ctx.get('tag')!r}; allowed: {ctx.get('expected_tags')}"
        elif item["type"] == "union_tag_not_found":
            message = f"missing key {message.split(chr(39))[1]!r}" if "'" in message else message
        elif item["type"] in ("literal_error", "enum"):
            message = f"{item.get('input')!r} is not allowed; allowed: " + message.removeprefix(
                "Input should be "
            )
            choices = re.findall(r"'([^']*)'", str(item.get("ctx", {}).get("expected", "")))
            match = _closest_name(str(item.get("input")), choices)
            if match is not None:
                message = (
                    f"{item.get('input')!r} is not allowed (did you mean {match!r}?); "
                    + (message.partition("; ")[2])
                )
        where = ": ".join(part for part in (source, loc) if part)
        lines.append(f"{where}: {message}" if where else message)
    if len(problems) > MAX_ERRORS_SHOWN:
        more = f"and {len(problems) - MAX_ERRORS_SHOWN:,} more problems"
        lines.append(f"{source}: {more}" if source else more)
    return "\n".join(lines)


def _closest_name(word: str, choices: list[str]) -> str | None:
    """The allowed name most like ``word``; a dotted library name (``redis.ConnectionEror``)
    is compared with that package's names first (``redis.exceptions.ConnectionError``)."""
    package = word.partition(".")[0] + "."
    same = [choice for choice in choices if "." in word and choice.startswith(package)]
    return closest(word, same) or closest(word, choices)


def _suggest(loc: tuple[Any, ...]) -> str:
    """The closest field of the model at ``loc``'s parent, or that model's fields."""
    _, model = _follow(loc[:-1])
    return hint(str(loc[-1]), list(getattr(model, "model_fields", {})))


def _follow(loc: tuple[Any, ...]) -> tuple[list[str], Any]:
    """Walk a pydantic error location through the scenario's models.

    Pydantic puts the tag of a discriminated union into the location (``clients.arrival.uniform
    .end``). A tag is only a tag at a union's position, and the same tag can belong to two unions
    ("uniform" is both a latency and an arrival), so the walk resolves each tag within the union
    at that place. Returns the location as the user writes it (tags dropped) and the model
    reached there, or None where the location leaves the schema.
    """
    path: list[str] = []
    node: Any = Scenario  # a model class, a {tag: model} union, or None off the schema
    keyed = False  # the part is a key of a table of models ([tiers.NAME]): the user's name
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            node = node[part]  # the union's tag: pydantic's step, not the user's key
            continue
        path.append(str(part))
        if isinstance(part, int) or keyed:
            keyed = False
            continue  # a list index or a table's key: the node stays the item type
        fields = getattr(node, "model_fields", None)
        field = fields.get(part) if fields is not None else None
        node = None if field is None else _node_of(field.annotation)
        keyed = field is not None and typing.get_origin(field.annotation) is dict
    return path, (node if isinstance(node, type) else None)


def _node_of(annotation: Any) -> Any:
    """The model, or the tagged union of models, that a field's annotation holds."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    args = typing.get_args(annotation)
    union = _UNIONS.get(frozenset(arg for arg in args if isinstance(arg, type)))
    if union is not None:
        return union
    for arg in args:
        found = _node_of(arg)
        if found is not None:
            return found
    return None


def _tags(union: Any) -> dict[str, type[BaseModel]]:
    """``{tag: model}`` of an ``Annotated[A | B, Field(discriminator=...)]`` union.

    Read from each member's Literal discriminator field, so a new member (or a new tag) is known
    to error messages as soon as it is added to its union.
    """
    members, *metadata = typing.get_args(union)
    field = next(m.discriminator for m in metadata if getattr(m, "discriminator", None))
    tags: dict[str, type[BaseModel]] = {}
    for model in typing.get_args(members):
        for tag in typing.get_args(model.model_fields[field].annotation):
            tags[tag] = model
    return tags


#: Each discriminated union's tags, keyed by the set of its member models (what a field's
#: annotation shows once pydantic has taken the discriminator out of it).
_UNIONS: dict[frozenset[Any], dict[str, type[BaseModel]]] = {
    frozenset(tags.values()): tags for tags in map(_tags, (Latency, Arrival, Service, Fault))
}


def parse_scenario(data: dict[str, Any], source: str = "<scenario>") -> Scenario:
    """Validate a scenario dict; errors become one :class:`ScenarioError` naming ``source``."""
    try:
        return Scenario.model_validate(data)
    except ValidationError as error:
        raise ScenarioError(format_validation_error(error, source)) from None
