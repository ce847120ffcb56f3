"""``retrysim chaos``: run a scenario's fleet for real against a Redis, through the fault proxy."""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager, nullcontext
from typing import Annotated, Any

import typer

from retrysim.cli import common
from retrysim.cli.errors import UsageError, reports_errors
from retrysim.cli.options import EnvFileOption, ScenarioArg, SeedOption


@reports_errors
def chaos(
    scenario: ScenarioArg,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            help="The Redis to run against, on loopback: redis://127.0.0.1:PORT.",
            metavar="URL",
        ),
    ] = None,
    start_redis: Annotated[
        bool,
        typer.Option(
            "--start-redis",
            help="Start a private redis-server on a free loopback port, stop it after.",
        ),
    ] = False,
    vs_sim: Annotated[
        bool,
        typer.Option("--vs-sim", help="Also simulate the scenario; print real against simulated."),
    ] = False,
    seeds: Annotated[
        int,
        typer.Option("--seeds", help="Simulated seeds for --vs-sim.", min=2, metavar="K"),
    ] = 5,
    seed: SeedOption = None,
    env_file: EnvFileOption = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the result document as JSON instead of the report."),
    ] = False,
) -> None:
    """Run SCENARIO's fleet for real: redis-py clients, retrysim.retry's decorator, real faults.

    Each client is an asyncio task calling a real redis.asyncio.Redis (one INCR per attempt)
    through retrysim.retry's decorator for the scenario's operation (its policy options and your
    RETRY__* settings), via a fault-injecting proxy built from the scenario's faults, in real
    time. The attempts and calls are recorded as the simulator records them and reported as
    `retrysim run` reports. --vs-sim adds the simulation over --seeds seeds, side by side.

    Exit codes: 0 ok, 1 a bug in retrysim (said so in one line), 2 bad input (or redis-server
    or redis-py missing).
    """
    from retrysim.chaos.redis_target import (
        parse_target,
        ping,
        private_redis,
        require_redis_py,
    )

    if (target is None) == (not start_redis):
        raise UsageError("give one of --target redis://127.0.0.1:PORT or --start-redis")
    upstream = parse_target(target) if target is not None else None
    require_redis_py()
    loaded = common.load(scenario, {})
    settings, setting_sources = common.settings(env_file)
    sources = common.policy_sources(loaded, {}, setting_sources, None)

    from retrysim.chaos.run import chaos_document

    server: AbstractContextManager[Any] = private_redis() if start_redis else nullcontext()
    with server as port:
        address = upstream if upstream is not None else ("127.0.0.1", int(port))
        if not ping(address[1], address[0]):
            raise UsageError(f"nothing answers PING at redis://{address[0]}:{address[1]}")
        doc = chaos_document(loaded, address, seed, settings, vs_sim=seeds if vs_sim else 0)
    doc["sources"] = sources

    from retrysim import output

    if as_json:
        sys.stdout.write(output.dumps(doc))
        sys.stdout.flush()
        return
    from rich.console import Console

    from retrysim.report import render_run

    console = Console()
    render_run(doc, console, sources)
    console.print(f"[dim]proxy: {_proxy_line(doc['proxy'])}[/]")
    if "versus" in doc:
        console.print(_versus_table(doc["versus"]))


def _proxy_line(stats: dict[str, int]) -> str:
    shown = ("connections", "forwarded", "refused", "closed_by_down", "blackholed", "reset")
    return ", ".join(f"{stats[k]:,} {k.replace('_', ' ')}" for k in shown)


def _versus_table(versus: dict[str, Any]) -> Any:
    from rich.table import Table

    from retrysim.chaos.versus import show

    table = Table(
        title=f"real against simulated ({len(versus['seeds'])} seeds, 95% prediction interval)",
        title_justify="left",
    )
    for column in ("metric", "real", "simulated mean", "95% interval", ""):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for row in versus["rows"]:
        name = row["metric"]
        low, high = show(name, row["low"]), show(name, row["high"])
        span = "–" if row["low"] is None else f"{low} .. {high}"
        flag = "[bold red]outside[/]" if row["outside"] else ""
        table.add_row(row["label"], show(name, row["real"]), show(name, row["mean"]), span, flag)
    return table
