"""``retrysim check``'s configuration and its gates: pure data, validated once.

The configuration is ``retrysim.toml`` in the current folder, else the ``[tool.retrysim]``
table of ``pyproject.toml``, or the file ``--config`` names::

    scenarios = ["retry-storm", "ops/checkout.toml"]   # bundled names, or paths from this file
    seeds = 5                                          # several seeds give the interval
    env = ".env"                                       # the settings under review ("after")

    [gates]
    success_rate = ">= 0.99"
    p99_latency = "<= before + 2s"
    amplification = ["<= before * 1.1", "<= 3"]

    [scenario.retry-storm]                             # one entry of `scenarios`, as written
    seeds = 3
    set = { duration = 30 }                            # dotted key -> value, as --set
    gates = { amplification = "<= before * 1.2" }      # replaces the global gates of a metric

A gate is ``>=`` or ``<=`` and a limit: a number (``0.99``; ``2s`` or ``500ms`` for a time
metric), ``before`` (the mean before the change), ``before + N``, ``before - N`` or
``before * N``. It is parsed once into a :class:`Gate`. Bad input of any kind is one
:class:`CheckConfigError` line naming the file, the field and what is allowed.

Which metrics exist lives in :mod:`retrysim.results.metric_table`, a layer above this one: the
caller hands their names in (:class:`Vocabulary`), so this module stays data and validation.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeAlias

from retrysim.errors import BadInputError, not_utf8
from retrysim.suggest import hint

CONFIG_NAME = "retrysim.toml"
PYPROJECT = "pyproject.toml"
#: A configuration is a few lines; past this it is not one.
MAX_CONFIG_BYTES = 1 << 20
#: Seeds per scenario: enough for a tight interval, few enough that a typo costs no hour.
MAX_SEEDS = 1000
SEED_LIMIT = 2**63
DEFAULT_SEEDS = 5
DEFAULT_ENV = ".env"

TOP_KEYS = ("scenarios", "seeds", "seed", "env", "gates", "watch", "scenario")
SCENARIO_KEYS = ("seeds", "seed", "set", "gates")
#: A tier's figure is gated as ``tiers.NAME.FIELD``.
TIERS = "tiers"

Op: TypeAlias = Literal[">=", "<="]
#: How a gate's limit is made: ``absolute`` (the amount itself), or from the mean before the
#: change: ``+`` (before + amount), ``-`` (before - amount), ``*`` (before * amount).
Step: TypeAlias = Literal["absolute", "+", "-", "*"]

GATE_FORMS = (
    "'>= N', '<= N', '<= before', '<= before + N', '>= before - N', '<= before * N' "
    "(N a number; 2s or 500ms for a time metric)"
)

_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_GATE = re.compile(
    rf"""^\s*(?P<op>>=|<=)\s*
    (?:(?P<before>before)\s*(?:(?P<step>[-+*])\s*(?P<amount>{_NUMBER})\s*(?P<unit>ms|s)?)?
      |(?P<sign>[-+]?)(?P<value>{_NUMBER})\s*(?P<vunit>ms|s)?)\s*$""",
    re.VERBOSE,
)
#: What a number with each unit is divided by to give seconds.
_UNITS = {"s": 1.0, "ms": 1000.0}


class CheckConfigError(BadInputError):
    """The check's configuration is wrong: one line naming the file, the field and what is
    allowed."""


@dataclass(frozen=True)
class Vocabulary:
    """The metrics a gate may name, handed in by the caller: every name in table order, those
    measured in seconds (which take ``s`` and ``ms``), and the figures of a call graph's tier,
    named ``tiers.NAME.FIELD`` (whether the scenario has tier NAME is checked once it is
    loaded)."""

    names: tuple[str, ...]
    timed: frozenset[str]
    tier_fields: tuple[str, ...] = ()

    def check(self, name: str, label: str) -> None:
        """Nothing if ``name`` is a metric; else a CheckConfigError starting with ``label``."""
        if name in self.names:
            return
        if name.startswith(TIERS + "."):
            tier, _, field = name.removeprefix(TIERS + ".").rpartition(".")
            if tier and field in self.tier_fields:
                return
            raise CheckConfigError(
                f"{label}: a tier's figure is tiers.NAME.FIELD, FIELD one of "
                f"{', '.join(self.tier_fields)}{hint(field, self.tier_fields, list_allowed=False)}"
            )
        close = hint(name, self.names, list_allowed=False)
        raise CheckConfigError(
            f"{label}: unknown metric{close}; allowed: {', '.join(self.names)}, or "
            "tiers.NAME.FIELD for a tier's figure"
        )


@dataclass(frozen=True)
class Gate:
    """One gate on one metric: ``after OP limit``, the limit made by ``step`` from ``amount``
    (and from the mean before the change, unless ``absolute``)."""

    metric: str
    op: Op
    step: Step
    amount: float
    #: The metric is in seconds: :attr:`text` writes its amounts with ``s``.
    timed: bool = False

    @property
    def relative(self) -> bool:
        return self.step != "absolute"

    @property
    def text(self) -> str:
        """The expression, in the form :func:`parse_gate` reads back to this gate."""
        number = repr(self.amount) + ("s" if self.timed and self.step != "*" else "")
        if self.step == "absolute":
            return f"{self.op} {number}"
        if self.step in "+-" and self.amount == 0:
            return f"{self.op} before"
        return f"{self.op} before {self.step} {number}"

    def limit(self, before: float | None) -> float | None:
        """The value ``after`` is held against; None for a relative gate with no ``before``."""
        if self.step == "absolute":
            return self.amount
        if before is None:
            return None
        if self.step == "+":
            return before + self.amount
        if self.step == "-":
            return before - self.amount
        return before * self.amount

    def holds(self, after: float | None, before: float | None) -> bool | None:
        """Whether ``after`` keeps the gate; None when a side has no value to judge."""
        limit = self.limit(before)
        if after is None or limit is None:
            return None
        return after >= limit if self.op == ">=" else after <= limit


@dataclass(frozen=True)
class ScenarioCheck:
    """One scenario to check: ``name`` as the configuration writes it, ``source`` what to load
    (a bundled name, or a path made absolute against the configuration's folder)."""

    name: str
    source: str
    seeds: int
    seed: int | None
    sets: Mapping[str, Any]
    gates: tuple[Gate, ...]


@dataclass(frozen=True)
class CheckConfig:
    """A whole configuration: where it was read (``where`` starts every message about it),
    the scenarios, the ``.env`` under review and the metrics whose worsening fails the check
    (``watch``; None: the caller's default)."""

    path: Path
    where: str
    scenarios: tuple[ScenarioCheck, ...]
    env: Path
    watch: tuple[str, ...] | None


def parse_gate(
    metric: str, text: object, where: str, vocabulary: Vocabulary, at: str = "gates"
) -> Gate:
    """``text`` as a gate on ``metric``; a CheckConfigError naming ``where``, the gate (in
    table ``at``) and the allowed forms when it is none."""
    label = f"{where}: {at}.{metric}"
    vocabulary.check(metric, label)
    match = _GATE.match(text) if isinstance(text, str) else None
    if match is None:
        raise CheckConfigError(f"{label}: {text!r} is not a gate; allowed: {GATE_FORMS}")
    op: Op = ">=" if match["op"] == ">=" else "<="
    unit = match["unit"] or match["vunit"]
    if unit is not None and metric not in vocabulary.timed:
        raise CheckConfigError(
            f"{label}: {text!r}: {unit!r} is for time metrics; {metric} is not one, give a "
            "plain number"
        )
    if match["before"] is None:
        amount = float(match["sign"] + match["value"]) / _UNITS[unit or "s"]
        step: Step = "absolute"
    elif match["step"] is None:
        amount, step = 0.0, "+"
    else:
        step = "+" if match["step"] == "+" else "-" if match["step"] == "-" else "*"
        if step == "*" and unit is not None:
            raise CheckConfigError(
                f"{label}: {text!r}: a factor has no unit (before * 1.1 is 10% more)"
            )
        amount = float(match["amount"]) / _UNITS[unit or "s"]
        if step == "-" and amount == 0:
            step = "+"  # before - 0 is before, written one way
        if step == "*" and not amount > 0:
            raise CheckConfigError(f"{label}: {text!r}: the factor must be above 0")
    if not math.isfinite(amount):
        raise CheckConfigError(f"{label}: {text!r}: the number must be finite")
    return Gate(metric, op, step, amount, metric in vocabulary.timed)


def find_config(folder: Path, given: Path | None) -> tuple[Path, str, dict[str, Any]]:
    """The configuration's file, how messages name it, and its table.

    ``given`` (``--config``): that file (a ``pyproject.toml`` is read for its
    ``[tool.retrysim]``); else ``folder/retrysim.toml``; else ``[tool.retrysim]`` of
    ``folder/pyproject.toml``.
    """
    if given is not None:
        data = read_toml(given, f"--config {given}")
        if given.name == PYPROJECT:
            return given, f"{given} [tool.retrysim]", _tool_table(given, data)
        return given, str(given), data
    own = folder / CONFIG_NAME
    if own.exists():
        return own, CONFIG_NAME, read_toml(own, CONFIG_NAME)
    pyproject = folder / PYPROJECT
    if pyproject.exists():
        data = read_toml(pyproject, PYPROJECT)
        if isinstance(data.get("tool"), dict) and "retrysim" in data["tool"]:
            return pyproject, f"{PYPROJECT} [tool.retrysim]", _tool_table(pyproject, data)
    raise CheckConfigError(
        f"no {CONFIG_NAME} in {folder} and no [tool.retrysim] in its {PYPROJECT}: write one "
        "(README: Reviewing a retry change in CI) or give --config FILE"
    )


def _tool_table(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    tool = data.get("tool")
    table = tool.get("retrysim") if isinstance(tool, dict) else None
    if not isinstance(table, dict):
        raise CheckConfigError(f"{path}: no [tool.retrysim] table to read the check from")
    return table


def read_toml(path: Path, label: str) -> dict[str, Any]:
    """A small regular UTF-8 TOML file's table, or one line starting with ``label``."""
    from retrysim.model.files import read_small_file

    raw = read_small_file(
        path, label, CheckConfigError, "a check's configuration is a few lines", MAX_CONFIG_BYTES
    )
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise CheckConfigError(f"{label}: not UTF-8 text ({not_utf8(raw, error)})") from None
    except (tomllib.TOMLDecodeError, RecursionError) as error:
        raise CheckConfigError(f"{label}: invalid TOML: {error}") from None


def parse_config(
    path: Path,
    where: str,
    data: Mapping[str, Any],
    vocabulary: Vocabulary,
    bundled: Sequence[str],
) -> CheckConfig:
    """The validated configuration from its table; ``bundled`` are the scenario names that
    need no file. Paths in it are relative to ``path``'s folder."""
    folder = path.parent
    _known_keys(data, TOP_KEYS, where, "")
    names = data.get("scenarios")
    if (
        not isinstance(names, list)
        or not names
        or not all(isinstance(n, str) and n.strip() for n in names)
    ):
        raise CheckConfigError(
            f"{where}: scenarios: give a non-empty list of bundled scenario names or paths, "
            'e.g. scenarios = ["retry-storm"]'
        )
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise CheckConfigError(f"{where}: scenarios: {twice!r} is listed twice")
    seeds = _seeds(data.get("seeds", DEFAULT_SEEDS), f"{where}: seeds")
    seed = _seed(data.get("seed"), f"{where}: seed")
    env = data.get("env", DEFAULT_ENV)
    if not isinstance(env, str) or not env.strip():
        raise CheckConfigError(f'{where}: env: give the path of the .env file, e.g. env = ".env"')
    watch = _watch(data.get("watch"), where, vocabulary)
    gates = _gates(data.get("gates", {}), where, "gates", vocabulary)
    own = data.get("scenario", {})
    if not isinstance(own, dict):
        raise CheckConfigError(f"{where}: scenario: give tables [scenario.NAME], one per scenario")
    for name in own:
        if name not in names:
            raise CheckConfigError(
                f"{where}: scenario.{name}: not one of `scenarios`{hint(name, names)}"
            )
    checks = []
    for name in names:
        table = own.get(name, {})
        label = f"{where}: scenario.{name}"
        if not isinstance(table, dict):
            raise CheckConfigError(f"{label}: give a table (seeds, seed, set, gates)")
        _known_keys(table, SCENARIO_KEYS, where, f"scenario.{name}.")
        sets = table.get("set", {})
        if not isinstance(sets, dict) or not all(isinstance(k, str) and k for k in sets):
            raise CheckConfigError(
                f"{label}.set: give a table of dotted keys and values, e.g. "
                'set = { duration = 30, "clients.count" = 200 }'
            )
        mine = _gates(table.get("gates", {}), where, f"scenario.{name}.gates", vocabulary)
        merged = {**gates, **mine}
        checks.append(
            ScenarioCheck(
                name=name,
                source=_source(name, folder, bundled, where),
                seeds=_seeds(table.get("seeds", seeds), f"{label}.seeds"),
                seed=_seed(table.get("seed", seed), f"{label}.seed"),
                sets=dict(sets),
                gates=tuple(gate for each in merged.values() for gate in each),
            )
        )
    return CheckConfig(path, where, tuple(checks), folder / env, watch)


def _known_keys(table: Mapping[str, Any], allowed: tuple[str, ...], where: str, at: str) -> None:
    for key in table:
        if key not in allowed:
            raise CheckConfigError(
                f"{where}: {at}{key}: unknown key{hint(key, allowed, list_allowed=False)}; "
                f"allowed: {', '.join(allowed)}"
            )


def _seeds(value: object, label: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SEEDS:
        raise CheckConfigError(f"{label}: {value!r}: give a whole number from 1 to {MAX_SEEDS}")
    return value


def _seed(value: object, label: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < SEED_LIMIT:
        raise CheckConfigError(f"{label}: {value!r}: a seed is a whole number >= 0 (and < 2**63)")
    return value


def _watch(value: object, where: str, vocabulary: Vocabulary) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CheckConfigError(f"{where}: watch: give a list of metric names (or [] for none)")
    for name in value:
        vocabulary.check(name, f"{where}: watch: {name!r}")
    return tuple(value)


def _gates(
    value: object, where: str, at: str, vocabulary: Vocabulary
) -> dict[str, tuple[Gate, ...]]:
    if not isinstance(value, dict):
        raise CheckConfigError(
            f'{where}: {at}: give a table of metric = "gate", e.g. success_rate = ">= 0.99"'
        )
    gates = {}
    for metric, texts in _tier_keys(value).items():
        items = texts if isinstance(texts, list) else [texts]
        if not items:
            raise CheckConfigError(f"{where}: {at}.{metric}: an empty list; give a gate")
        gates[metric] = tuple(parse_gate(metric, text, where, vocabulary, at) for text in items)
    return gates


def _tier_keys(gates: dict[str, Any]) -> dict[str, Any]:
    """``tiers = { database = { attempts_per_call = "..." } }`` (TOML's nested tables) as the
    key ``tiers.database.attempts_per_call``, as if the key had been written quoted."""
    flat = {key: value for key, value in gates.items() if key != TIERS}
    tiers = gates.get(TIERS)
    if isinstance(tiers, dict):
        for tier, fields in tiers.items():
            if isinstance(fields, dict):
                flat.update({f"{TIERS}.{tier}.{field}": v for field, v in fields.items()})
            else:
                flat[f"{TIERS}.{tier}"] = fields
    elif TIERS in gates:
        flat[TIERS] = tiers
    return flat


def _source(name: str, folder: Path, bundled: Sequence[str], where: str) -> str:
    path = folder / name
    if path.suffix == ".toml" or "/" in name or "\\" in name or path.exists():
        if not path.is_file():
            raise CheckConfigError(f"{where}: scenarios: {name}: no such file ({path})")
        return str(path)
    if name not in bundled:
        raise CheckConfigError(
            f"{where}: scenarios: {name!r}: no such bundled scenario or file{hint(name, bundled)}"
        )
    return name
