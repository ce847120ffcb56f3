"""``retrysim tune``: recommend RETRY__* values by simulating candidates over scenarios."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any

import typer

from retrysim.cli import common, value_completion
from retrysim.cli.compare_cmd import YesOption, check_size, split_values
from retrysim.cli.exits import UsageError, interrupted, reports_errors, worker_died
from retrysim.cli.options import (
    AddressOption,
    EnvFileOption,
    ExecutorOption,
    HtmlOption,
    QuietOption,
    SeedOption,
    WorkersOption,
)
from retrysim.cli.paths import check_html_path, check_out_dir
from retrysim.safe import markup
from retrysim.suggest import hint

# Any name-like word before the operator, so a mistyped metric is answered by its suggestion.
_CONSTRAINT = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(<=|>=|<|>)\s*(\S+)\s*$")


@reports_errors
def tune(
    context: typer.Context,
    scenarios: Annotated[
        list[str],
        typer.Argument(
            help="Scenarios the service lives through (bundled names or TOML paths); each "
            "names its operation, and each operation's settings are tuned on its scenarios.",
            metavar="SCENARIO...",
            autocompletion=value_completion.scenarios,
        ),
    ],
    search: Annotated[
        list[str],
        typer.Option(
            "--search",
            help="A setting to search: KEY=LOW..HIGH (whole numbers when both are) or "
            "KEY=V1,V2,..., e.g. policy.max_attempts=2..8, policy.min_wait=0.1..2. Repeatable.",
            metavar="KEY=RANGE",
            autocompletion=value_completion.set_keys,
        ),
    ],
    objective: Annotated[
        str,
        typer.Option(
            "--objective",
            help="The metric to optimise (see README: CI gates).",
            metavar="METRIC",
            autocompletion=value_completion.metrics,
        ),
    ] = "success_rate",
    maximize: Annotated[
        bool | None,
        typer.Option(
            "--maximize/--minimize",
            help="Which way the objective should go (default: the metric's better direction).",
            show_default=False,
        ),
    ] = None,
    constraint: Annotated[
        list[str] | None,
        typer.Option(
            "--constraint",
            help='METRIC<=VALUE (or >=, <, >), met in every scenario: "p99_latency<=30". '
            "Repeatable.",
            metavar="RULE",
        ),
    ] = None,
    seeds: Annotated[
        int,
        typer.Option(
            "--seeds",
            help="Seeds per candidate and scenario, the same for every candidate (95% "
            "intervals from them); candidates clearly worse after the first seeds are dropped.",
            min=1,
            metavar="K",
        ),
    ] = 3,
    seed: SeedOption = None,
    budget: Annotated[
        int | None,
        typer.Option(
            "--budget",
            help="Candidates to try (default: a whole small grid, else 40).",
            min=1,
            metavar="N",
        ),
    ] = None,
    aggregate: Annotated[
        str,
        typer.Option(
            "--aggregate",
            help="Over the scenarios: worst (the worst scenario's value) or mean (weighted).",
            metavar="worst|mean",
        ),
    ] = "worst",
    weight: Annotated[
        list[str] | None,
        typer.Option(
            "--weight",
            help="SCENARIO=W, a scenario's weight in --aggregate mean (default 1). Repeatable.",
            metavar="NAME=W",
        ),
    ] = None,
    strategy: Annotated[
        str,
        typer.Option(
            "--strategy",
            help="auto (a small grid whole, else seeded random search; the same answer on "
            "every install), grid, random, or optuna (only when asked: pip install "
            "'retrysim[tune]').",
            metavar="NAME",
        ),
    ] = "auto",
    search_seed: Annotated[
        int,
        typer.Option("--search-seed", help="Seed of the search itself.", min=0, metavar="N"),
    ] = 0,
    write_env: Annotated[
        Path | None,
        typer.Option(
            "--write-env",
            help="Merge the recommended lines into this .env (other lines and comments kept; "
            "written atomically).",
            metavar="FILE",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Folder for tune.json and a checkpoint per run; the same command again resumes.",
            metavar="DIR",
        ),
    ] = None,
    workers: WorkersOption = None,
    executor: ExecutorOption = "local",
    address: AddressOption = None,
    env_file: EnvFileOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the recommendation as JSON.")
    ] = False,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Go on from the checkpoints in --out DIR (refused when it has none); the same "
            "command again without it resumes too.",
        ),
    ] = False,
    quiet: QuietOption = False,
    yes: YesOption = False,
    html: HtmlOption = None,
) -> None:
    """Recommend RETRY__* values: simulate candidate settings over SCENARIO... and pick the
    simplest of the best.

    Candidates run with the same seeds (common random numbers); the current settings, the
    defaults and the diagnoses' prescriptions are always among them. Differences within the
    noise are ties, and among ties the simplest settings win. Each operation's recommendation
    is shown with its figures per scenario (95% intervals), what each value buys against the
    current one, the whole Pareto front of success, p99 latency and load, and the .env lines
    to set; --write-env merges them into a file. When nothing meets the constraints, it says
    which binds hardest and which candidate came closest.
    """
    from retrysim.env_write import check_env_target
    from retrysim.runs.tune import Objective, TuneError, Tuning, check, planned_runs

    check_html_path(html)
    if out is not None:
        check_out_dir(out, "--out", ("tune.json",))
    if resume:
        _check_resume(out)
    runner = common.executor(executor, workers, address)
    if write_env is not None:  # a file the merge would refuse is refused before the tuning
        check_env_target(write_env)
    loaded = [common.load(name, {}) for name in scenarios]
    names = [s.name for s in loaded]
    if len(set(names)) < len(names):
        raise UsageError("tune: each scenario once (two have the same name)")
    dimensions = [dimension(item) for item in search]
    for scenario in loaded:  # a bad key (with --set's did-you-mean) or value fails first
        for dim in dimensions:  # every listed value, or both ends of a range
            for example in dim.values or (dim.low, dim.high):
                common.apply(scenario, {dim.key: example}, "--search")
    try:
        tuning = Tuning(
            dimensions=dimensions,
            objective=Objective.of(_metric(objective, "--objective"), maximize),
            constraints=[parse_constraint(item) for item in constraint or []],
            seeds=seeds,
            first_seed=seed,
            budget=budget,
            how=aggregate,
            weights=_weights(weight, names),
            search=strategy,
            search_seed=search_seed,
        )
        check(tuning, loaded)
    except TuneError as error:
        raise UsageError(str(error)) from None
    _check_size(loaded, planned_runs(tuning, loaded), workers, address, yes)
    settings, setting_sources = common.settings(env_file)

    checkpoint = out / "runs" if out is not None else None
    result = _run(loaded, tuning, settings, runner, checkpoint, quiet)

    from retrysim.render.tune_report import document

    doc = document(result)
    console = _emit(doc, as_json, out, write_env, names)
    if html is not None:
        from retrysim.cli import html_out
        from retrysim.share.tune_page import Tuned, tune_page

        tuned = Tuned(
            doc=doc,
            result=result,
            scenarios=loaded,
            sources=dict(zip(names, scenarios, strict=True)),
            words=html_out.command_words(context, "tune"),
            arguments=common.rerun_arguments(seed=seed, env_file=env_file),
            settings=settings,
            setting_sources=setting_sources,
            saved=None if out is None else str(out / "tune.json"),
        )
        html_out.write(html, tune_page(tuned), console)


def _emit(
    doc: dict[str, Any], as_json: bool, out: Path | None, write_env: Path | None, names: list[str]
) -> Any:
    """The recommendation (JSON or the report), then tune.json and the merged .env; returns
    the console (None with --json) for what is written after."""
    from retrysim import output
    from retrysim.render.tune_report import render

    def draw(console: Any) -> None:
        from retrysim.cli.tables import print_table

        saved = None if out is None else str(out / "tune.json")
        for part, rows_label in render(doc, saved):
            if rows_label is None:
                console.print(part)
            else:
                print_table(console, part, rows_label=rows_label)

    console = common.show(doc, as_json, draw)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        output.write_json(out / "tune.json", doc)
        if console is not None:
            console.print(f"[dim]wrote {markup(out)}/tune.json[/]")
    if write_env is not None and doc["env"]:
        from retrysim.env_write import merge_env

        note = "retrysim tune on " + ", ".join(names)
        changes = merge_env(write_env, doc["env"], note)
        if console is not None:
            console.print(f"[dim]wrote {markup(write_env)}: {markup('; '.join(changes))}[/]")
    elif write_env is not None:
        raise UsageError(f"--write-env {write_env}: nothing to write (no feasible candidate)")
    return console


def _run(
    loaded: list[Any],
    tuning: Any,
    settings: Any,
    runner: Any,
    checkpoint: Path | None,
    quiet: bool,
) -> Any:
    """The search with a progress bar; a Ctrl-C exits 130 saying what was kept."""
    from retrysim.cli.compare_cmd import resume_hint
    from retrysim.cli.progress import WorkProgress
    from retrysim.runs.executors import WorkerDiedError, session
    from retrysim.runs.tune import tune as run_tune

    count = [0, 0]

    def progress(done: int, total: int) -> None:
        count[:] = [done, total]
        bar.update(done, total)

    try:
        # One session for the whole search: a dask cluster is started once, not per stage.
        with WorkProgress("tuning", "runs", quiet=quiet) as bar, session(runner) as running:
            return run_tune(
                loaded,
                tuning,
                settings=settings,
                checkpoint=checkpoint,
                on_done=progress,
                executor=running,
            )
    except KeyboardInterrupt:
        hint = resume_hint(count[0], count[1], checkpoint)
        raise interrupted(hint) from None
    except WorkerDiedError:
        raise worker_died(resume_hint(count[0], count[1], checkpoint)) from None


def _check_size(
    loaded: list[Any], runs: int, workers: int | None, address: str | None, yes: bool
) -> None:
    """sweep's guard (``check_size``: over its limit, one line with the count and a time
    estimate, unless --yes), with the largest scenario's calls per run."""
    from retrysim.cli.compare_cmd import _estimate_workers
    from retrysim.sim.arrivals import expected_calls

    check_size(max(loaded, key=expected_calls), runs, _estimate_workers(workers, address), yes)


def dimension(item: str) -> Any:
    """``KEY=LOW..HIGH`` or ``KEY=V1,V2`` as a search dimension; a UsageError says what's off."""
    from retrysim.runs.tune import Dimension

    key, text = common.parse_assignment(item, "--search")
    if ".." in text:
        low_text, _, high_text = text.partition("..")
        try:
            low, high = float(low_text), float(high_text)
        except ValueError:
            raise UsageError(f"--search {item!r}: LOW..HIGH takes two numbers") from None
        if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
            raise UsageError(f"--search {item!r}: LOW must be a number below HIGH")
        integer = _whole(low_text) and _whole(high_text)
        return Dimension(key, low, high, integer=integer)
    try:
        values = tuple(common.parse_value(v) for v in split_values(text))
    except UsageError as error:
        raise UsageError(f"--search {key}: {error}") from None
    return Dimension(key, values=values)


def _whole(text: str) -> bool:
    return re.fullmatch(r"\s*[+-]?\d+\s*", text) is not None


def parse_constraint(item: str) -> Any:
    from retrysim.runs.tune import Constraint

    match = _CONSTRAINT.match(item)
    if match is None:
        raise UsageError(f"--constraint {item!r}: expected METRIC<=VALUE, e.g. p99_latency<=30")
    name, op, limit_text = match.groups()
    limit = common.parse_number(limit_text, f"--constraint {item!r}")
    if not math.isfinite(limit):
        raise UsageError(f"--constraint {item!r}: the limit must be a finite number")
    return Constraint(_metric(name, "--constraint"), op, limit)


def _metric(name: str, option: str) -> str:
    """``name`` if it is a metric; else one line: the closest metric, then every one (once)."""
    return common.metric_name(name, f"{option} {name}")


def _weights(items: list[str] | None, scenarios: list[str]) -> dict[str, float]:
    """``--weight NAME=W`` per scenario; a name that is none of them gets the closest one."""
    weights = {}
    for item in items or []:
        name, text = common.parse_assignment(item, "--weight")
        if name not in scenarios:
            close = hint(name, scenarios, list_allowed=False)
            raise UsageError(
                f"--weight {name}: not one of the scenarios{close}; they are: "
                + ", ".join(scenarios)
            )
        value = common.parse_number(text, f"--weight {item!r}")
        if not math.isfinite(value) or value <= 0:
            raise UsageError(f"--weight {item!r}: a weight is a positive number")
        weights[name] = value
    return weights


def _check_resume(out: Path | None) -> None:
    """``--resume`` needs ``--out DIR`` with checkpoints in it. (The candidates a search will
    propose are not known before it runs, so which checkpoints belong to it cannot be told up
    front, as compare and sweep tell theirs; a run of other candidates simply finds none.)"""
    if out is None:
        raise UsageError("--resume needs --out DIR: the folder of the runs to go on from")
    runs = out / "runs"
    if not (runs.is_dir() and any(runs.glob("*.json"))):
        raise UsageError(
            f"--resume: nothing to resume in {out} (no checkpoints in {runs}); "
            "run without --resume to start"
        )
