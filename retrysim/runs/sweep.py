"""Compare and sweep: many variants of one scenario, several seeds, in parallel processes.

Variants share seeds (common random numbers), so differences between them come from the
settings, not from luck. Each (variant, seed) run is a pure function of its inputs: results do
not depend on the number of workers or the order runs finish in. With a checkpoint folder, every
finished run is written atomically to its own file, so an interrupted sweep resumes where it
stopped.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retrysim.model.scenario import Scenario
from retrysim.results.document import ResultDocument, from_data
from retrysim.results.metric_table import DEFAULT_TABLE_METRICS
from retrysim.results.metrics import METRICS, metric
from retrysim.retry.settings import RetrySettings
from retrysim.runs.executors import Executor, LocalExecutor, Task, run_task

# Two-sided 95% Student-t critical values by degrees of freedom (1..30); 1.96 beyond.
_T95 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)


def t95(df: int) -> float:
    """The two-sided 95% Student-t critical value for ``df`` degrees of freedom (>= 1): the
    table above to 30, the normal 1.96 beyond (within 2% of t there)."""
    return _T95[df - 1] if df <= len(_T95) else 1.96


@dataclass(frozen=True)
class Variant:
    """One point of a comparison: a label and the dotted-key overrides that define it."""

    label: str
    sets: dict[str, Any]
    #: Your own tenacity policy as ``module:attribute`` (``compare --policy``), or None for the
    #: scenario's; the name travels to worker processes, which import it themselves.
    policy: str | None = None


@dataclass
class VariantResult:
    variant: Variant
    documents: list[ResultDocument] = field(default_factory=list)  # one per seed, seed order

    def values(self, name: str) -> list[float]:
        return [v for d in self.documents if (v := metric(d, name)) is not None]

    def mean(self, name: str) -> float | None:
        values = self.values(name)
        return sum(values) / len(values) if values else None

    def interval(self, name: str) -> tuple[float, float] | None:
        """95% confidence interval of the mean over seeds (None with fewer than two)."""
        values = self.values(name)
        n = len(values)
        if n < 2:
            return None
        mean = sum(values) / n
        sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
        t = t95(n - 1)
        half = t * sd / math.sqrt(n)
        return mean - half, mean + half


def grid_variants(grid: Sequence[tuple[str, Sequence[Any]]]) -> list[Variant]:
    """Every combination of the grid's values, first key varying slowest."""
    keys = [key for key, _ in grid]
    variants = []
    for combo in itertools.product(*(values for _, values in grid)):
        sets = dict(zip(keys, combo, strict=True))
        label = ", ".join(f"{_short(k)}={_show(v)}" for k, v in sets.items()) or "as is"
        variants.append(Variant(label, sets))
    return variants


def with_policies(variants: Sequence[Variant], policies: Sequence[str]) -> list[Variant]:
    """Each variant once per policy (``module:attribute``), policy varying slowest."""
    if not policies:
        return list(variants)
    out = []
    for policy in policies:
        for variant in variants:
            rest = "" if variant.label == "as is" else f", {variant.label}"
            out.append(Variant(f"policy={policy}{rest}", variant.sets, policy))
    return out


def _short(key: str) -> str:
    return key.removeprefix("policy.")


def _show(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


def seeds_for(scenario: Scenario, count: int, first: int | None = None) -> list[int]:
    base = scenario.seed if first is None else first
    return [base + i for i in range(count)]


def run_one(
    scenario: Scenario,
    sets: dict[str, Any],
    seed: int,
    settings: RetrySettings | None,
    policy: str | None = None,
) -> ResultDocument:
    """Simulate one variant with one seed (and its no-fault baseline); return its document.

    Through the run step, so variants that differ only in faults share one baseline run
    (within a process: with several workers, each keeps its own cache). ``policy`` is your
    own tenacity policy as ``module:attribute``, imported here (in the worker process).
    The same as :func:`retrysim.runs.executors.run_task` of the matching task.
    """
    return run_task(Task(scenario, sets, seed, settings, policy))


def task_key(
    scenario: Scenario,
    sets: dict[str, Any],
    seed: int,
    settings: RetrySettings | None,
    policy: str | None = None,
) -> str:
    """A content hash naming one run's checkpoint file."""
    content: dict[str, Any] = {
        "scenario": scenario.model_dump(mode="json"),
        "sets": sets,
        "seed": seed,
        "settings": None if settings is None else settings.model_dump(mode="json"),
    }
    if policy is not None:  # only then, so existing checkpoints keep their names
        content["policy"] = policy
    payload = json.dumps(
        content,
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def compare(
    scenario: Scenario,
    variants: Sequence[Variant],
    seeds: Sequence[int],
    settings: RetrySettings | None = None,
    workers: int = 1,
    checkpoint: Path | None = None,
    on_done: Callable[[int, int], None] | None = None,
    on_bad_checkpoint: Callable[[Path, str], None] | None = None,
    *,
    executor: Executor | None = None,
) -> list[VariantResult]:
    """Run every variant with every seed; results come back in variant and seed order.

    ``executor`` runs them (:mod:`retrysim.runs.executors`: local processes, or dask); without one,
    ``workers`` > 1 uses that many local processes and 1 runs them in this process. Results
    do not depend on the executor. ``checkpoint`` is a folder where each finished
    run is stored (atomically) and reused on the next call; a checkpoint that cannot be read
    (not JSON, or JSON of the wrong shape) is run again and overwritten, and
    ``on_bad_checkpoint(path, why)`` is told. ``on_done(done, total)`` reports progress.
    """
    from retrysim import output

    for variant in variants:  # validate every variant up front: bad input fails before work
        if variant.sets:
            scenario.with_overrides(variant.sets)
    cells = [(vi, si) for vi in range(len(variants)) for si in range(len(seeds))]
    tasks = [
        Task(scenario, variants[vi].sets, seeds[si], settings, variants[vi].policy)
        for vi, si in cells
    ]
    paths: list[Path | None] = [None] * len(tasks)
    if checkpoint is not None:
        checkpoint.mkdir(parents=True, exist_ok=True)
        paths = [_checkpoint_path(checkpoint, task) for task in tasks]
    docs: dict[tuple[int, int], ResultDocument] = {}
    todo: list[int] = []  # indices into tasks of the runs still to do
    for i, path in enumerate(paths):
        saved = _read_checkpoint(path, tasks[i].seed, on_bad_checkpoint) if path else None
        if saved is not None:
            docs[cells[i]] = saved
        else:
            todo.append(i)
    if on_done is not None:
        on_done(len(docs), len(tasks))

    def finished(index: int, doc: ResultDocument) -> None:
        i = todo[index]
        vi, si = cells[i]
        doc = json.loads(output.dumps(doc))  # the same JSON-safe form whether fresh or resumed
        docs[cells[i]] = doc
        path = paths[i]
        if path is not None:
            output.write_json(
                path, {"variant": variants[vi].label, "seed": seeds[si], "document": doc}
            )
        if on_done is not None:
            on_done(len(docs), len(tasks))

    runner = executor if executor is not None else LocalExecutor(workers)
    runner.run([tasks[i] for i in todo], finished)
    return [
        VariantResult(variant, [docs[(vi, si)] for si in range(len(seeds))])
        for vi, variant in enumerate(variants)
    ]


def saved_runs(
    scenario: Scenario,
    variants: Sequence[Variant],
    seeds: Sequence[int],
    settings: RetrySettings | None,
    checkpoint: Path,
) -> int:
    """How many of these runs have a checkpoint file in ``checkpoint`` (read or not)."""
    return sum(
        _checkpoint_path(checkpoint, Task(scenario, v.sets, seed, settings, v.policy)).is_file()
        for v in variants
        for seed in seeds
    )


def _checkpoint_path(checkpoint: Path, task: Task) -> Path:
    """Where ``task``'s finished run is stored under ``checkpoint`` (one rule for both)."""
    key = task_key(task.scenario, task.sets, task.seed, task.settings, task.policy)
    return checkpoint / f"{key}.json"


def _read_checkpoint(
    path: Path, seed: int, on_bad: Callable[[Path, str], None] | None
) -> ResultDocument | None:
    """The document saved in checkpoint ``path``, or None to run it (again).

    Checkpoints are written atomically, so a damaged one was changed by something else; it is
    reported through ``on_bad`` and recomputed, never trusted and never fatal. So is one whose
    document is not of the documented shape, or of a schema version this retrysim does not
    read (:func:`retrysim.results.document.from_data`); one saved before documents had a
    version is read as it is.
    """
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("seed") != seed:
            raise ValueError("not a checkpoint of this run")
        if not isinstance(data["document"], dict):
            raise ValueError("its 'document' is not a result document")
        doc = from_data(data["document"], "its 'document'")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, IndexError) as error:
        if on_bad is not None:
            why = str(error) if not isinstance(error, KeyError) else f"missing key {error}"
            on_bad(path, why or type(error).__name__)
        return None
    return doc


def table_rows(results: Sequence[VariantResult], names: Sequence[str]) -> list[dict[str, Any]]:
    """Flat rows (variant, metric means and intervals) for CSV and JSON output."""
    rows = []
    for result in results:
        row: dict[str, Any] = {
            "variant": result.variant.label,
            **result.variant.sets,
            "seeds": len(result.documents),
        }
        for name in names:
            row[name] = result.mean(name)
            interval = result.interval(name)
            if interval is not None:
                row[f"{name}_ci_low"], row[f"{name}_ci_high"] = interval
        rows.append(row)
    return rows


assert set(DEFAULT_TABLE_METRICS) <= set(METRICS)
