"""``retrysim compare`` and ``retrysim sweep``: variants side by side, common random numbers."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from retrysim.cli import common, complete
from retrysim.cli.errors import UsageError, reports_errors, warn
from retrysim.cli.options import (
    EnvFileOption,
    MetricsOption,
    QuietOption,
    ScenarioArg,
    SeedOption,
    SeedsOption,
    WorkersOption,
)
from retrysim.cli.paths import check_figure_path, check_out_dir
from retrysim.metric_table import DEFAULT_TABLE_METRICS, METRIC_NAMES
from retrysim.safe import markup

if TYPE_CHECKING:
    from retrysim.sweep import Variant, VariantResult

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


def check_size(base: Any, runs: int, workers: int, yes: bool) -> None:
    """Refuse, in one line with the count and an estimated time, more runs than
    MAX_RUNS_WITHOUT_YES unless ``yes``: a typo in a grid should not start a day of work."""
    if yes or runs <= MAX_RUNS_WITHOUT_YES:
        return
    from retrysim.sim.arrivals import expected_calls

    calls = expected_calls(base)
    seconds = runs * calls * ATTEMPTS_PER_CALL * SECONDS_PER_ATTEMPT / max(1, workers)
    raise UsageError(
        f"{runs:,} runs (about {_duration(seconds)} with {workers} worker(s), at "
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
    workers: int = 1,
    yes: bool = False,
    policies: list[str] | None = None,
) -> tuple[Any, list[Variant], list[int], Any]:
    from retrysim.sweep import grid_variants, seeds_for, with_policies

    if profiles:
        names = split_values(profiles)
        for name in names:
            common.check_profile(name)
        grid = [*grid, ("policy.profile", names)]
    base = common.load(scenario_arg, {})
    # Counted before the variants are even built: a 100^3 grid is refused at once.
    points = math.prod(len(values) for _, values in grid) * max(1, len(policies or ()))
    check_size(base, points * seeds, workers, yes)
    variants = with_policies(grid_variants(grid), policies or [])
    for variant in variants:  # bad keys and values fail here, before any run
        common.apply(base, variant.sets, option)
    for policy in dict.fromkeys(policies or []):  # and so does a policy that does not import
        common.user_policy(policy, base)
    settings, _ = common.settings(env_file)
    return base, variants, seeds_for(base, seeds, seed), settings


def _run(
    base: Any,
    variants: list[Variant],
    seeds: list[int],
    settings: Any,
    workers: int,
    checkpoint: Path | None,
    quiet: bool = False,
) -> list[VariantResult]:
    from retrysim.cli.progress import WorkProgress
    from retrysim.sweep import compare as run_compare

    def bad_checkpoint(path: Path, why: str) -> None:
        # Checkpoints are written atomically, so a damaged one was changed by something else
        # in the user's --out folder; it is run again and overwritten, not trusted or fatal.
        warn(f"{path}: damaged checkpoint ({why}); running that point again")

    with WorkProgress("running variants", "runs", quiet=quiet) as bar:
        return run_compare(
            base,
            variants,
            seeds,
            settings=settings,
            workers=workers,
            checkpoint=checkpoint,
            on_done=bar.update,
            on_bad_checkpoint=bad_checkpoint,
        )


@reports_errors
def compare(
    scenario: ScenarioArg,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help=VALUES_HELP, metavar="KEY=V1,V2", autocompletion=complete.set_keys
        ),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            help="Profiles to compare, e.g. bindu,documented.",
            metavar="P1,P2",
            autocompletion=complete.profiles,
        ),
    ] = None,
    seeds: SeedsOption = 1,
    seed: SeedOption = None,
    workers: WorkersOption = 1,
    env_file: EnvFileOption = None,
    metrics: MetricsOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
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
) -> None:
    """Run variants of SCENARIO side by side with the same seeds (common random numbers).

    Every combination of the --set lists, the --profile list and the --policy values runs. The
    table shows each metric per variant, the change against the first variant, and the best
    value in bold.
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
    base, variants, seed_list, settings = _prepare(
        scenario, grid, profile, env_file, seeds, seed, "--set", workers, yes, policy
    )
    results = _run(base, variants, seed_list, settings, workers, None, quiet)
    names = _shown(names, metrics, results)
    console = None
    if as_json:
        from retrysim import output

        sys.stdout.write(output.dumps(_rows_document(base, seed_list, results, names)))
        sys.stdout.flush()
    else:
        from rich.console import Console

        from retrysim.cli.tables import print_table
        from retrysim.report import compare_table

        console = Console()
        table = compare_table(base.name, seed_list, results, names)
        print_table(console, table, rows_label="variant")
    if plot is not None:  # after the table: a failing figure never loses the comparison
        from retrysim.plots import save_compare_figure

        save_compare_figure(results, plot, metrics=names)
        if console is not None:
            console.print(f"[dim]wrote {markup(plot)}[/]")


@reports_errors
def sweep(
    scenario: ScenarioArg,
    grid_: Annotated[
        list[str],
        typer.Option(
            "--grid", help=VALUES_HELP, metavar="KEY=V1,V2", autocompletion=complete.set_keys
        ),
    ],
    seeds: SeedsOption = 1,
    seed: SeedOption = None,
    workers: WorkersOption = 1,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Folder for sweep.csv, sweep.json and per-run checkpoints; rerunning resumes.",
            metavar="DIR",
        ),
    ] = None,
    env_file: EnvFileOption = None,
    metrics: MetricsOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
    quiet: QuietOption = False,
    yes: YesOption = False,
) -> None:
    """Run a grid of settings over SCENARIO in parallel and tabulate the metrics per grid point.

    With --out, each finished run is saved at once (atomically) under OUT/runs/, so an
    interrupted sweep picks up where it stopped when run again with the same arguments.
    """
    grid = parse_grid(grid_, "--grid")
    names = metric_list(metrics, DEFAULT_TABLE_METRICS)
    if out is not None:
        check_out_dir(out, "--out")
    base, variants, seed_list, settings = _prepare(
        scenario, grid, None, env_file, seeds, seed, "--grid", workers, yes
    )
    checkpoint = out / "runs" if out else None
    results = _run(base, variants, seed_list, settings, workers, checkpoint, quiet)
    names = _shown(names, metrics, results)
    from retrysim import output

    document = _rows_document(base, seed_list, results, names)
    console = None
    if as_json:
        sys.stdout.write(output.dumps(document))
        sys.stdout.flush()
    else:
        from rich.console import Console

        from retrysim.cli.tables import print_table
        from retrysim.report import sweep_table

        console = Console()
        print_table(console, sweep_table(base.name, seed_list, results, names))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        output.write_text(out / "sweep.csv", _csv(document["rows"]))
        output.write_json(out / "sweep.json", document)
        if console is not None:
            console.print(f"[dim]wrote {markup(out)}/sweep.csv and {markup(out)}/sweep.json[/]")


def _shown(names: list[str], asked: str | None, results: list[VariantResult]) -> list[str]:
    """The metrics named with --metrics, or the default ones plus those that say something
    for these runs (goodput recovery, what a breaker, budget or limiter did)."""
    if asked:
        return names
    from retrysim.metrics import table_metrics

    return table_metrics(names, (doc for result in results for doc in result.documents))


def _rows_document(
    base: Any, seeds: list[int], results: list[VariantResult], names: list[str]
) -> dict[str, Any]:
    """What compare --json and sweep --json/--out write: the scenario, the seeds, one row each."""
    from retrysim.sweep import table_rows

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
