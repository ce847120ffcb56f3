"""``retrysim compare`` and ``retrysim sweep``: variants side by side, common random numbers."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from retrysim.cli import common, value_completion
from retrysim.cli.exits import UsageError, interrupted, reports_errors, warn, worker_died
from retrysim.cli.options import (
    AddressOption,
    EnvFileOption,
    ExecutorOption,
    HtmlOption,
    MetricsOption,
    QuietOption,
    ResumeOption,
    ScenarioArg,
    SeedOption,
    SeedsOption,
    WorkersOption,
)
from retrysim.cli.paths import check_figure_path, check_html_path, check_out_dir
from retrysim.results.metric_table import DEFAULT_TABLE_METRICS, METRIC_NAMES
from retrysim.safe import markup

if TYPE_CHECKING:
    from retrysim.runs.executors import Executor
    from retrysim.runs.sweep import Variant, VariantResult

VALUES_HELP = (
    "KEY=V1,V2,...: the values to try for one dotted scenario key, e.g. "
    "policy.max_attempts=3,5. Repeatable; all combinations run."
)


def split_values(text: str) -> list[str]:
    """Split V1,V2 on commas that are not inside brackets, braces or quotes."""
    parts: list[str] = []
    current: list[str] = []
    depth, quote = 0, ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    parts.append("".join(current).strip())
    if any(not p for p in parts):
        raise UsageError(f"{text!r}: empty value in the list")
    return parts


def parse_grid(items: list[str] | None, option: str) -> list[tuple[str, list[Any]]]:
    grid = []
    for item in items or []:
        key, values = common.parse_assignment(item, option)
        try:
            parts = split_values(values)
        except UsageError as error:
            raise UsageError(f"{option} {key}: {error}") from None
        grid.append((key, [common.parse_value(v) for v in parts]))
    return grid


def metric_list(text: str | None, default: tuple[str, ...]) -> list[str]:
    if not text:
        return list(default)
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in METRIC_NAMES]
    if unknown:
        raise UsageError(
            f"--metrics: unknown metric(s) {', '.join(unknown)}; allowed: {', '.join(METRIC_NAMES)}"
        )
    return names


#: compare and sweep refuse to start more runs than this without --yes (README: Commands).
MAX_RUNS_WITHOUT_YES = 1_000
#: The time estimate in that refusal: wall time per simulated attempt (tenacity's decision
#: loop plus the engine; README: Performance) and attempts per call (the default max_attempts).
SECONDS_PER_ATTEMPT = 20e-6
ATTEMPTS_PER_CALL = 3

YesOption = Annotated[
    bool,
    typer.Option(
        "--yes",
        "-y",
        help=f"Start even when that is more than {MAX_RUNS_WITHOUT_YES:,} runs (refused otherwise, "
        "with the count and a time estimate).",
    ),
]


def check_size(base: Any, runs: int, workers: int | None, yes: bool) -> None:
    """Refuse, in one line with the count and an estimated time, more runs than
    MAX_RUNS_WITHOUT_YES unless ``yes``: a typo in a grid should not start a day of work.
    ``workers`` None: not known here (a dask cluster's), so the estimate is for one."""
    if yes or runs <= MAX_RUNS_WITHOUT_YES:
        return
    from retrysim.sim.arrivals import expected_calls

    calls = expected_calls(base)
    seconds = runs * calls * ATTEMPTS_PER_CALL * SECONDS_PER_ATTEMPT / max(1, workers or 1)
    on = f"with {workers} worker(s)" if workers is not None else "on one worker"
    raise UsageError(
        f"{runs:,} runs (about {_duration(seconds)} {on}, at "
        f"~{calls:,.0f} calls per run) is more than {MAX_RUNS_WITHOUT_YES:,}; add --yes to start "
        "them anyway, or use fewer values or seeds"
    )


def _duration(seconds: float) -> str:
    if seconds == float("inf"):
        return "an unbounded time"
    for unit, size in (("days", 86_400), ("hours", 3_600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds / size:,.1f} {unit}"
    return f"{seconds:.0f} seconds"


def _prepare(
    scenario_arg: str,
    grid: list[tuple[str, list[Any]]],
    profiles: str | None,
    env_file: Path | None,
    seeds: int,
    seed: int | None,
    option: str,
    workers: int | None = 1,
    yes: bool = False,
    policies: list[str] | None = None,
    fixed: dict[str, Any] | None = None,
) -> tuple[Any, list[Variant], list[int], Any, dict[str, str]]:
    """The base scenario (with ``fixed`` applied: sweep's single-valued ``--set``), every
    variant, the seeds, the settings and their sources; bad input of any of them fails here,
    before a run."""
    from retrysim.runs.sweep import grid_variants, seeds_for, with_policies

    if profiles:
        names = split_values(profiles)
        for name in names:
            common.check_profile(name)
        grid = [*grid, ("policy.profile", names)]
    for key, _ in grid:
        if key in (fixed or {}):
            what = "--profile" if key == "policy.profile" and profiles else option
            raise UsageError(f"--set {key}: also varied by {what}; give it one or the other")
    base = common.load(scenario_arg, fixed or {})
    # Counted before the variants are even built: a 100^3 grid is refused at once.
    points = math.prod(len(values) for _, values in grid) * max(1, len(policies or ()))
    check_size(base, points * seeds, workers, yes)
    variants = with_policies(grid_variants(grid), policies or [])
    for variant in variants:  # bad keys and values fail here, before any run
        common.apply(base, variant.sets, option)
    for policy in dict.fromkeys(policies or []):  # and so does a policy that does not import
        common.user_policy(policy, base)
    settings, sources = common.settings(env_file)
    return base, variants, seeds_for(base, seeds, seed), settings, sources


def _run(
    base: Any,
    variants: list[Variant],
    seeds: list[int],
    settings: Any,
    workers: int | None,
    checkpoint: Path | None,
    quiet: bool = False,
    *,
    executor: Executor | None = None,
) -> list[VariantResult]:
    """Every run with a progress bar, on ``executor`` (else ``workers`` local processes).

    A Ctrl-C stops the runs and exits 130 with one line saying how many finished, where they
    are kept (``checkpoint``) and how to go on.
    """
    from retrysim.cli.progress import WorkProgress
    from retrysim.runs.executors import LocalExecutor, WorkerDiedError
    from retrysim.runs.sweep import compare as run_compare

    def bad_checkpoint(path: Path, why: str) -> None:
        # Checkpoints are written atomically, so a damaged one was changed by something else
        # in the user's --out folder; it is run again and overwritten, not trusted or fatal.
        warn(f"{path}: damaged checkpoint ({why}); running that point again")

    count = [0, len(variants) * len(seeds)]

    def progress(done: int, total: int) -> None:
        count[:] = [done, total]
        bar.update(done, total)

    try:
        with WorkProgress("running variants", "runs", quiet=quiet) as bar:
            return run_compare(
                base,
                variants,
                seeds,
                settings=settings,
                checkpoint=checkpoint,
                on_done=progress,
                on_bad_checkpoint=bad_checkpoint,
                executor=executor if executor is not None else LocalExecutor(workers),
            )
    except KeyboardInterrupt:
        raise interrupted(resume_hint(count[0], count[1], checkpoint)) from None
    except WorkerDiedError:
        raise worker_died(resume_hint(count[0], count[1], checkpoint)) from None


def resume_hint(
    done: int, total: int, checkpoint: Path | None, *, resume_option: bool = True
) -> str:
    """What the interrupted line says after ``retrysim: interrupted``: how far it got, what
    was kept and how to go on (``resume_option``: the command has ``--resume``)."""
    runs = f"after {done:,} of {total:,} runs"
    if checkpoint is None:
        return (
            f"{runs}; nothing was kept (with --out DIR each finished run is saved, and the "
            "same command again goes on from there)"
        )
    if done == 0:
        return f"{runs}; nothing was saved yet: run the same command again to start"
    again = (
        "run the same command again (or with --resume)"
        if resume_option
        else ("run the same command again")
    )
    return f"{runs}; those are saved in {checkpoint}: {again} to go on from there"


def check_resume(
    resume: bool,
    out: Path | None,
    base: Any,
    variants: list[Variant],
    seeds: list[int],
    settings: Any,
) -> None:
    """``--resume`` needs ``--out DIR`` holding at least one checkpoint of these runs."""
    if not resume:
        return
    if out is None:
        raise UsageError("--resume needs --out DIR: the folder of the runs to go on from")
    from retrysim.runs.sweep import saved_runs

    runs = out / "runs"
    total = len(variants) * len(seeds)
    files = sorted(runs.glob("*.json")) if runs.is_dir() else []
    if not files:
        raise UsageError(
            f"--resume: nothing to resume in {out} (no checkpoints in {runs}); "
            "run without --resume to start"
        )
    if saved_runs(base, variants, seeds, settings, runs) == 0:
        raise UsageError(
            f"--resume: none of the {len(files):,} checkpoints in {runs} is one of these "
            f"{total:,} runs (another scenario, grid, seeds or RETRY__* settings?); run "
            "without --resume to start, or give the command that made them"
        )


OutOption = Annotated[
    Path | None,
    typer.Option(
        "--out",
        help="Folder for the results and a checkpoint per finished run (under DIR/runs/); the "
        "same command again goes on from them.",
        metavar="DIR",
    ),
]
SetOneOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="KEY=VALUE: one value for a dotted scenario key at every grid point, e.g. "
        "clients.count=2000 (to try several, use --grid). Repeatable.",
        metavar="KEY=VALUE",
        autocompletion=value_completion.set_keys,
    ),
]
ProfilesOption = Annotated[
    str | None,
    typer.Option(
        "--profile",
        help="Profiles to compare, e.g. bindu,documented: one more key of the grid.",
        metavar="P1,P2",
        autocompletion=value_completion.profiles,
    ),
]


def _estimate_workers(workers: int | None, address: str | None) -> int | None:
    """Workers for the time estimate: asked, or one per core; unknown for a remote cluster."""
    import os

    if address is not None:
        return None
    return workers if workers is not None else os.cpu_count() or 1


@reports_errors
def compare(
    context: typer.Context,
    scenario: ScenarioArg,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help=VALUES_HELP, metavar="KEY=V1,V2", autocompletion=value_completion.set_keys
        ),
    ] = None,
    profile: ProfilesOption = None,
    seeds: SeedsOption = 1,
    seed: SeedOption = None,
    workers: WorkersOption = None,
    executor: ExecutorOption = "local",
    address: AddressOption = None,
    env_file: EnvFileOption = None,
    metrics: MetricsOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
    out: OutOption = None,
    resume: ResumeOption = False,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot", help="Save a bar chart of the metrics (.png, .svg or .pdf).", metavar="FILE"
        ),
    ] = None,
    quiet: QuietOption = False,
    yes: YesOption = False,
    policy: Annotated[
        list[str] | None,
        typer.Option(
            "--policy",
            help="Your own tenacity policy, MODULE:ATTRIBUTE (a Retrying, an AsyncRetrying or a "
            "function decorated with @tenacity.retry). Repeatable: each is a variant.",
            metavar="MODULE:ATTR",
        ),
    ] = None,
    html: HtmlOption = None,
) -> None:
    """Run variants of SCENARIO side by side with the same seeds (common random numbers).

    Every combination of the --set lists, the --profile list and the --policy values runs. The
    table shows each metric per variant, the change against the first variant, and the best
    value in bold. With --out DIR, compare.json and a checkpoint per finished run are written
    there; after a Ctrl-C, the same command again goes on from them.
    """
    grid = parse_grid(set_, "--set")
    if not grid and not profile and not policy:
        raise UsageError(
            "compare needs at least one --set KEY=V1,V2, --profile P1,P2 or --policy MODULE:ATTR"
        )
    for spec in policy or []:
        common.check_policy_alone(spec, dict(grid), profile)
    names = metric_list(metrics, DEFAULT_TABLE_METRICS)
    if plot is not None:
        check_figure_path(plot, "--plot")
    check_html_path(html)
    if out is not None:
        check_out_dir(out, "--out", ("compare.json",))
    runner = common.executor(executor, workers, address)
    base, variants, seed_list, settings, sources = _prepare(
        scenario,
        grid,
        profile,
        env_file,
        seeds,
        seed,
        "--set",
        _estimate_workers(workers, address),
        yes,
        policy,
    )
    check_resume(resume, out, base, variants, seed_list, settings)
    checkpoint = out / "runs" if out else None
    results = _run(base, variants, seed_list, settings, workers, checkpoint, quiet, executor=runner)
    names = _shown(names, metrics, results)
    from retrysim import output

    document = _rows_document(base, seed_list, results, names)
    console = None

    def draw(console: Any) -> None:
        from retrysim.cli.tables import print_table
        from retrysim.render.report import compare_table

        table = compare_table(base.name, seed_list, results, names)
        print_table(console, table, rows_label="variant")

    console = common.show(document, as_json, draw)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        output.write_json(out / "compare.json", document)
        if console is not None:
            console.print(f"[dim]wrote {markup(out)}/compare.json[/]")
    if plot is not None:  # after the table: a failing figure never loses the comparison
        from retrysim.plots import save_compare_figure

        save_compare_figure(results, plot, metrics=names)
        if console is not None:
            console.print(f"[dim]wrote {markup(plot)}[/]")
    if html is not None:
        from retrysim.cli import html_out
        from retrysim.share.compare_page import compare_page

        arguments = common.rerun_arguments(seed=seed, env_file=env_file)
        made = html_out.comparison(
            context, "compare", scenario, base, seed_list, results, names,
            settings, sources, arguments, profile=profile,
        )  # fmt: skip
        html_out.write(html, compare_page(made), console)


@reports_errors
def sweep(
    context: typer.Context,
    scenario: ScenarioArg,
    grid_: Annotated[
        list[str],
        typer.Option(
            "--grid",
            help=VALUES_HELP,
            metavar="KEY=V1,V2",
            autocompletion=value_completion.set_keys,
        ),
    ],
    set_: SetOneOption = None,
    profile: ProfilesOption = None,
    seeds: SeedsOption = 1,
    seed: SeedOption = None,
    workers: WorkersOption = None,
    executor: ExecutorOption = "local",
    address: AddressOption = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Folder for sweep.csv, sweep.json and a checkpoint per finished run (under "
            "DIR/runs/); the same command again goes on from them.",
            metavar="DIR",
        ),
    ] = None,
    resume: ResumeOption = False,
    env_file: EnvFileOption = None,
    metrics: MetricsOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
    quiet: QuietOption = False,
    yes: YesOption = False,
    html: HtmlOption = None,
) -> None:
    """Run a grid of settings over SCENARIO in parallel and tabulate the metrics per grid point.

    Every combination of the --grid lists (and the --profile list) runs, each with the --set
    values. With --out, each finished run is saved at once (atomically) under OUT/runs/, so an
    interrupted sweep picks up where it stopped when run again with the same arguments.
    """
    grid = parse_grid(grid_, "--grid")
    fixed = common.parse_sets(set_)
    names = metric_list(metrics, DEFAULT_TABLE_METRICS)
    check_html_path(html)
    if out is not None:
        check_out_dir(out, "--out", ("sweep.csv", "sweep.json"))
    runner = common.executor(executor, workers, address)
    base, variants, seed_list, settings, sources = _prepare(
        scenario,
        grid,
        profile,
        env_file,
        seeds,
        seed,
        "--grid",
        _estimate_workers(workers, address),
        yes,
        fixed=fixed,
    )
    check_resume(resume, out, base, variants, seed_list, settings)
    checkpoint = out / "runs" if out else None
    results = _run(base, variants, seed_list, settings, workers, checkpoint, quiet, executor=runner)
    names = _shown(names, metrics, results)
    from retrysim import output

    document = _rows_document(base, seed_list, results, names)
    console = None

    def draw(console: Any) -> None:
        from retrysim.cli.tables import print_table
        from retrysim.render.report import sweep_table

        print_table(console, sweep_table(base.name, seed_list, results, names))

    console = common.show(document, as_json, draw)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        output.write_text(out / "sweep.csv", _csv(document["rows"]))
        output.write_json(out / "sweep.json", document)
        if console is not None:
            console.print(f"[dim]wrote {markup(out)}/sweep.csv and {markup(out)}/sweep.json[/]")
    if html is not None:
        from retrysim.cli import html_out
        from retrysim.share.sweep_page import sweep_page

        arguments = common.rerun_arguments(seed=seed, sets=set_, env_file=env_file)
        made = html_out.comparison(
            context, "sweep", scenario, base, seed_list, results, names,
            settings, sources, arguments, fixed=list(fixed), profile=profile,
        )  # fmt: skip
        html_out.write(html, sweep_page(made), console)


def _shown(names: list[str], asked: str | None, results: list[VariantResult]) -> list[str]:
    """The metrics named with --metrics, or the default ones plus those that say something
    for these runs (goodput recovery, what a breaker, budget or limiter did)."""
    if asked:
        return names
    from retrysim.results.metrics import table_metrics

    return table_metrics(names, (doc for result in results for doc in result.documents))


def _rows_document(
    base: Any, seeds: list[int], results: list[VariantResult], names: list[str]
) -> dict[str, Any]:
    """What compare --json and sweep --json/--out write: the scenario, the seeds, one row each."""
    from retrysim.runs.sweep import table_rows

    return {"scenario": base.name, "seeds": seeds, "rows": table_rows(results, names)}


def _csv(rows: list[dict[str, Any]]) -> str:
    import csv
    import io

    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buffer.getvalue()
