"""What a lab session holds, without Textual: the scenario and its edits, the settings the
policy falls back to, the last run, the pinned baseline, and whether the edits are saved.

The screen (:mod:`retrysim.lab.app`) only reads and steps this model, so everything the lab
decides (which value a step lands on, which ``.env`` lines the current settings need, how a
metric moved against the pinned run, which diagnoses appeared or went away) is tested here
without a terminal.

The knobs edit the scenario's ``[policy]`` table (``policy.max_wait`` and so on), as
``--set`` and the shell's ``set`` do: ``s`` saves them into the scenario's TOML, and ``e``
writes the ``RETRY__*`` lines that give production the same values (the lines of the knobs
whose value differs from what the settings alone give, merged as ``tune --write-env`` merges).
A knob stepped back to the value it started from is "not set" again, so it leaves the
scenario unchanged (not dirty) and needs no ``.env`` line.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from retrysim.env_write import env_value, merge_env
from retrysim.errors import BadInputError
from retrysim.model.scenario import PolicySpec, Scenario
from retrysim.model.session import Loaded
from retrysim.names import OPERATIONS, PROFILES
from retrysim.results import metric_table
from retrysim.retry.effective import Effective, effective_policy
from retrysim.retry.options import PolicyOptions, settings_field
from retrysim.retry.settings import RetrySettings
from retrysim.retry.variables import option_variable

if TYPE_CHECKING:
    from retrysim.results.document import ResultDocument
    from retrysim.retry.settings import Operation

Kind = Literal["choice", "int", "float", "bool"]


@dataclass(frozen=True)
class Knob:
    """One setting the lab steps: its option (``max_wait``, ``breaker.enabled``) and how.

    ``step`` is one arrow press (a shifted arrow steps ten times as far); ``low``/``high``
    bound the values the arrows reach (typing a value is validated by the scenario model).
    """

    option: str
    kind: Kind
    step: float = 1.0
    low: float = 0.0
    high: float = 1e9
    choices: tuple[str, ...] = ()
    unit: str = ""
    label: str = ""  # the screen's short name (default: the option)

    @property
    def name(self) -> str:
        return self.label or self.option


#: The knobs, in the order the screen shows them (tab and up/down follow it).
KNOBS: tuple[Knob, ...] = (
    Knob("operation", "choice", choices=tuple(OPERATIONS)),
    Knob("profile", "choice", choices=tuple(PROFILES)),
    Knob("max_attempts", "int", 1, 1, 50),
    Knob("min_wait", "float", 0.1, 0, 600, unit="s"),
    Knob("max_wait", "float", 1, 0, 3600, unit="s"),
    Knob("jitter", "float", 0.1, 0, 600, unit="s"),
    Knob("breaker.enabled", "bool", label="breaker"),
    Knob("breaker.failure_threshold", "int", 1, 0, 1000, label="breaker threshold"),
    Knob("breaker.recovery_timeout", "float", 1, 0, 3600, unit="s", label="breaker recovery"),
    Knob("budget.enabled", "bool", label="budget"),
    Knob("budget.kind", "choice", choices=("tokens", "ratio"), label="budget kind"),
    Knob("budget.max_tokens", "float", 1, 1, 1000, label="budget tokens"),
    Knob("budget.token_ratio", "float", 0.05, 0.05, 10, label="budget ratio"),
)
BY_OPTION = {knob.option: knob for knob in KNOBS}

#: The metrics the lab shows, in order (the guards' only when a mechanism is on). There is no
#: ``p99_overhead``: the lab runs without the fault-free baseline, which would double each run.
METRICS: tuple[str, ...] = (
    "success_rate", "failed", "retry_rate", "amplification", "peak_attempts_per_s",
    "p99_latency", "wait_per_call", "first_retry_peak_share", "jitter_peak_share",
    "breaker_opens", "breaker_refused", "budget_refused",
)  # fmt: skip


#: What a short screen (under 30 rows) shows, so the diagnoses stay in view.
COMPACT_METRICS: tuple[str, ...] = (
    "success_rate", "amplification", "peak_attempts_per_s", "p99_latency",
    "first_retry_peak_share",
)  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    """One finished run: its document, and each retried call's wait before its first retry."""

    document: ResultDocument
    first_waits: list[float]
    faults_on: bool


@dataclass(frozen=True)
class MetricRow:
    """A metric as the screen shows it: now, pinned, the change, and whether it is better."""

    name: str
    label: str
    value: str
    pinned: str
    change: str
    verdict: Literal["better", "worse", "same", ""]


@dataclass(frozen=True)
class DiagnosisRow:
    """A diagnosis of the current run (``status`` ``new`` when the pinned run had none such),
    or one the pinned run had and this one lost (``status`` ``gone``)."""

    id: str
    title: str
    severity: str
    suggestion: str
    status: Literal["", "new", "gone"]


#: ``[policy]`` keys that are not a wait's settings (the preview leaves them out): what a
#: scenario's policy adds to the options (operation, retry_on, retry_other_host), and one option.
_NOT_WAITS = frozenset(
    {"respect_retry_after", *(set(PolicySpec.model_fields) - set(PolicyOptions.model_fields))}
)


class LabError(ValueError):
    """A value the scenario or its policy refuses (shown on the status line)."""


class LabModel:
    """The session: see the module docstring."""

    def __init__(
        self,
        loaded: Loaded,
        settings: RetrySettings | None = None,
        seed: int | None = None,
        env_path: Path = Path(".env"),
        save_path: Path | None = None,
    ) -> None:
        self.loaded = loaded
        self.settings = settings if settings is not None else RetrySettings.defaults()
        self.seed = seed
        self.env_path = env_path
        self.save_path = save_path if save_path is not None else loaded.default_target()
        self.faults_on = True
        self.current: Outcome | None = None
        self.pinned: Outcome | None = None

    # --- the scenario and its knobs ------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.loaded.name

    @property
    def dirty(self) -> bool:
        """Whether the scenario changed since it was loaded or last saved."""
        return self.loaded.dirty

    @property
    def operation(self) -> str:
        return str(self.loaded.data["policy"].get("operation") or "worker")

    def faults(self) -> list[dict[str, Any]]:
        """The scenario's faults as data (``[[faults]]``)."""
        return list(self.loaded.data.get("faults") or [])

    def raw(self, knob: Knob) -> Any:
        """What the scenario itself says for ``knob`` (None: not set, the settings decide)."""
        return _policy_value(self.loaded.data, knob)

    def _base_raw(self, knob: Knob) -> Any:
        return _policy_value(self.loaded.base, knob)

    def _effective(self, policy: PolicyOptions) -> dict[str, Effective]:
        """Every policy key's value and source with ``policy``'s options given (the one rule
        for that, :func:`retrysim.retry.effective.effective_policy`)."""
        return effective_policy(policy, self.operation, self.settings)

    def setting(self, knob: Knob) -> Any:
        """What the settings alone give ``knob`` for this operation (no scenario value)."""
        if knob.option == "operation":
            return "worker"
        return self._effective(PolicyOptions())[knob.option].value

    def value(self, knob: Knob) -> Any:
        """The knob's value in effect: the scenario's, else the settings'."""
        if knob.option == "operation":  # which settings apply, not a policy option
            return self.operation
        return self._effective(self._policy())[knob.option].value

    def _policy(self) -> PolicySpec:
        return PolicySpec.model_validate(self.loaded.data["policy"])

    def variable(self, knob: Knob) -> str | None:
        """The ``RETRY__*`` variable that sets ``knob`` for this operation (None: none does)."""
        return option_variable(knob.option, self.operation)

    def source(self, knob: Knob) -> str:
        """``scenario`` when the scenario sets the knob, else ``settings``."""
        if knob.option == "operation":
            given = self.raw(knob) is not None
        else:
            given = self._effective(self._policy())[knob.option].source == "scenario"
        return "scenario" if given else "settings"

    def set(self, knob: Knob, value: Any) -> None:
        """Set ``knob`` to ``value`` (checked by the scenario model; a LabError if refused).

        A value equal to the one the knob started with puts back what the scenario said (for
        a knob the scenario did not set: not set again), so stepping there and back leaves the
        scenario unchanged.
        """
        value = _coerce(knob, value)
        base = self._base_raw(knob)
        started = self.setting(knob) if base is None else base
        if knob.option == "operation":
            started = base
        stored = base if _same(value, started) else value
        data = copy.deepcopy(self.loaded.data)
        _put(data["policy"], knob.option.split("."), stored)
        from retrysim.sim.policy import policy_for

        try:  # the scenario model, then the policy (min_wait <= max_wait, ...), as tune checks
            policy_for(Scenario.model_validate(data), self.settings)
        except (BadInputError, ValueError) as error:  # a ValidationError is a ValueError
            raise LabError(_first_line(error)) from None
        self.loaded.data = data

    def step(self, knob: Knob, steps: int) -> Any:
        """Move ``knob`` by ``steps`` arrow presses (negative: down); returns the new value.

        Numbers move by ``knob.step`` within ``low..high`` (floats rounded to the step, so
        repeated steps never drift to 7.999999); choices and switches cycle.
        """
        now = self.value(knob)
        new: Any
        if knob.kind == "bool":
            new = not bool(now)
        elif knob.kind == "choice":
            choices = knob.choices
            at = choices.index(now) if now in choices else 0
            new = choices[(at + steps) % len(choices)]
        else:
            number = float(now) + steps * knob.step
            number = min(max(number, knob.low), knob.high)
            decimals = max(0, -math.floor(math.log10(knob.step))) if knob.step < 1 else 0
            number = round(number, decimals + 1)
            new = round(number) if knob.kind == "int" else number
        self.set(knob, new)
        return self.value(knob)

    def scenario(self, *, faults: bool | None = None) -> Scenario:
        """The scenario as the knobs have it, without its faults when they are toggled off
        (``faults`` True or False: with or without them, whatever the toggle says)."""
        scenario = Scenario.model_validate(self.loaded.data)
        keep = self.faults_on if faults is None else faults
        return scenario if keep else scenario.without_faults()

    def preview_waits(
        self, samples: int = 1000, data: dict[str, Any] | None = None
    ) -> list[float] | None:
        """Waits before a first retry drawn from the policy the knobs make, without a run
        (:func:`retrysim.sim.wait_samples.sample_waits`, the real tenacity wait): what the
        spread will look like, in milliseconds rather than a run's seconds. None when the
        scenario sets an option no setting holds (its waits would not be the run's).
        ``data``: the scenario data to use (a worker passes the data as it was when asked)."""
        from retrysim.sim.wait_samples import sample_waits

        data = self.loaded.data if data is None else data
        policy = data["policy"]
        operation = str(policy.get("operation") or "worker")
        update: dict[str, Any] = {}
        for option, value in policy.items():
            if value is None or option in _NOT_WAITS:
                continue
            if isinstance(value, dict) or option == "profile":
                continue  # the mechanisms do not change a first wait; the profile is passed
            try:
                update[settings_field(option, operation)] = value
            except KeyError:
                return None
        settings = self.settings.model_copy(update=update)
        try:
            waits = sample_waits(
                cast("Operation", operation),  # validated by the scenario model
                policy.get("profile"),
                settings,
                samples=samples,
                seed=self.seed if self.seed is not None else int(data["seed"]),
                max_retries=1,
            )
        except (BadInputError, ValueError):
            return None
        return [float(w) for w in waits[:, 0]] if waits.shape[1] else []

    def knob_note(self, knob: Knob) -> str | None:
        """What the user should know about ``knob`` beyond its value: for ``max_wait``, that
        no wait reaches it (so moving it changes nothing), with the longest wait there is."""
        if knob.option != "max_wait":
            return None
        from retrysim.sim.policy import policy_for

        try:
            policy = policy_for(self.scenario(), self.settings)
        except (BadInputError, ValueError):
            return None
        schedule = policy.schedule()
        if not schedule:
            return "no retries (max_attempts 1): no wait at all"
        longest, retry = max((hi, n) for n, _, hi, _ in schedule)
        if longest >= policy.max_wait:
            return None
        return (
            f"no wait reaches max_wait ({policy.max_wait:g} s): the longest is {longest:g} s "
            f"(retry {retry}); more attempts or a larger min_wait make it matter"
        )

    def toggle_faults(self) -> bool:
        """Run with the faults, or without them (not an edit of the scenario); the new state."""
        self.faults_on = not self.faults_on
        return self.faults_on

    # --- runs ----------------------------------------------------------------------------------

    def finished(self, outcome: Outcome) -> None:
        """A run's outcome is the current one (the first also becomes the pinned baseline)."""
        self.current = outcome
        if self.pinned is None:
            self.pinned = outcome

    def pin(self) -> bool:
        """Pin the current run as the baseline changes are measured against."""
        if self.current is None:
            return False
        self.pinned = self.current
        return True

    def metric_rows(self, names: tuple[str, ...] = METRICS) -> list[MetricRow]:
        """Each of ``names`` now, pinned and the change (guard metrics only when present)."""
        if self.current is None:
            return []
        rows = []
        for name in names:
            metric = metric_table.get(name)
            now = metric_value(self.current.document, name)
            if metric.optional and now is None:
                continue
            before = None if self.pinned is None else metric_value(self.pinned.document, name)
            change = ""
            verdict: Literal["better", "worse", "same", ""] = ""
            if now is not None and before is not None:
                diff = now - before
                change = metric.show_change(diff)
                verdict = _verdict(metric.better, diff, change)
            rows.append(
                MetricRow(
                    name, metric.label, metric.show(now), metric.show(before), change, verdict
                )
            )
        return rows

    def diagnosis_rows(self) -> list[DiagnosisRow]:
        """The current run's diagnoses, marked ``new`` against the pinned run, then those of
        the pinned run that are gone."""
        if self.current is None:
            return []
        now = list(self.current.document.get("diagnoses") or [])
        before = [] if self.pinned is None else list(self.pinned.document.get("diagnoses") or [])
        before_ids = {d["id"] for d in before}
        now_ids = {d["id"] for d in now}
        rows = [
            DiagnosisRow(
                d["id"],
                d["title"],
                d["severity"],
                d["suggestion"],
                "new" if self.pinned is not None and d["id"] not in before_ids else "",
            )
            for d in now
        ]
        rows += [
            DiagnosisRow(d["id"], d["title"], d["severity"], d["suggestion"], "gone")
            for d in before
            if d["id"] not in now_ids
        ]
        return rows

    # --- saving --------------------------------------------------------------------------------

    def env_lines(self) -> dict[str, str]:
        """``RETRY__*`` name -> value for every knob whose value differs from the settings'."""
        lines: dict[str, str] = {}
        for knob in KNOBS:
            variable = self.variable(knob)
            if variable is None:
                continue
            value = self.value(knob)
            if not _same(value, self.setting(knob)):
                lines[variable] = env_value(value)
        return lines

    def write_env(self) -> list[str]:
        """Merge :meth:`env_lines` into ``env_path`` (atomically); what changed, per line."""
        lines = self.env_lines()
        if not lines:
            return []
        return merge_env(self.env_path, lines, f"retrysim lab on {self.name}")

    def save(self) -> Path:
        """Write the scenario as TOML to ``save_path`` (atomically), keeping a loaded file's
        comments and layout; it is then not dirty."""
        self.loaded.save(self.save_path)
        return self.save_path


def simulate(
    scenario: Scenario,
    seed: int | None,
    settings: RetrySettings,
    progress: Callable[[int, int], None] | None = None,
    *,
    faults_on: bool = True,
) -> Outcome:
    """One run of ``scenario`` as the lab shows it (through :func:`retrysim.runs.runner.run`,
    without the fault-free baseline)."""
    from retrysim.runs.runner import run

    done = run(scenario, seed, settings, baseline=False, progress=progress)
    attempts = done.result.attempts
    waits = attempts["wait"][attempts["attempt"] == 1]
    return Outcome(done.document, [float(w) for w in waits if not math.isnan(w)], faults_on)


def metric_value(document: ResultDocument, name: str) -> float | None:
    """Metric ``name`` of a result document (None when its section or value is missing)."""
    try:
        value = metric_table.get(name).read(document)
    except (KeyError, TypeError):  # a section it reads is missing, or not a table
        return None
    return None if value is None else float(value)


def _verdict(better: str, diff: float, shown: str) -> Literal["better", "worse", "same", ""]:
    if shown == "±0":
        return "same"
    if better == "neither":
        return ""
    return "better" if (diff > 0) == (better == "higher") else "worse"


def _coerce(knob: Knob, value: Any) -> Any:
    """A typed-in or stepped value as the knob's type (a LabError when it is not one)."""
    try:
        if knob.kind == "bool":
            if isinstance(value, str):
                if value.strip().lower() not in ("true", "false", "1", "0", "on", "off"):
                    raise ValueError(value)
                return value.strip().lower() in ("true", "1", "on")
            return bool(value)
        if knob.kind == "choice":
            text = str(value).strip()
            if text not in knob.choices:
                raise ValueError(text)
            return text
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(value)
        if knob.kind == "int":
            if number != int(number):
                raise ValueError(value)
            return int(number)
        return number
    except ValueError:
        words = {"int": "a whole number", "float": "a number", "bool": "true or false"}
        allowed = ", ".join(knob.choices) if knob.choices else words[knob.kind]
        raise LabError(f"{knob.option}: {value!r} is not allowed ({allowed})") from None


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-12)
    return bool(a == b)


def _put(node: dict[str, Any], path: list[str], value: Any) -> None:
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    if value is None and len(path) > 1:
        node.pop(path[-1], None)  # a mechanism's table lists only the knobs it sets
    else:
        node[path[-1]] = value  # a top-level option's "not set" is a key holding None


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    # pydantic: "1 validation error for Scenario", then the field, then the message
    return "; ".join(lines[1:3]) if len(lines) > 1 else (lines[0] if lines else "invalid value")


def _policy_value(data: Any, knob: Knob) -> Any:
    """``knob``'s value in a scenario's ``[policy]`` table (dotted options go down nested
    tables), or None when it is not set there."""
    node: Any = data["policy"]
    for part in knob.option.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node
