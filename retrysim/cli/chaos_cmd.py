"""``retrysim chaos``: run a scenario's fleet for real (Redis or HTTP), through the fault proxy."""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from retrysim.cli import common
from retrysim.cli.exits import UsageError, reports_errors
from retrysim.cli.options import EnvFileOption, ScenarioArg, SeedOption

if TYPE_CHECKING:
    from retrysim.results.document import ResultDocument
    from retrysim.results.sections import Versus


@reports_errors
def chaos(
    scenario: ScenarioArg,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            help="The service to run against, on loopback: redis://127.0.0.1:PORT or "
            "http://127.0.0.1:PORT[/PATH] (each attempt one POST to PATH).",
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
    start_http: Annotated[
        bool,
        typer.Option(
            "--start-http",
            help="Start retrysim's own HTTP service on a free loopback port (429s, 503s and slow "
            "answers on the scenario's schedule), stop it after.",
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
    """Run SCENARIO's fleet for real: real clients, retrysim.retry's decorator, real faults.

    Each client is an asyncio task calling a real redis.asyncio.Redis (one INCR per attempt) or
    a real httpx.AsyncClient (one POST per attempt) through retrysim.retry's decorator for the
    scenario's operation (its policy options and your RETRY__* settings), via a fault-injecting
    proxy built from the scenario's faults, in real time. With --start-http, retrysim's own HTTP
    service answers the scenario's HTTP faults (429 with Retry-After, 503, slow answers). The
    attempts and calls are recorded as the simulator records them and reported as `retrysim
    run` reports. --vs-sim adds the simulation over --seeds seeds, side by side.

    Exit codes: 0 ok, 1 a bug in retrysim (said so in one line), 2 bad input (or redis-server,
    redis-py or httpx missing).
    """
    if sum((target is not None, start_redis, start_http)) != 1:
        raise UsageError(
            "give one of --target redis://127.0.0.1:PORT, --target http://127.0.0.1:PORT, "
            "--start-redis or --start-http"
        )
    http = start_http or (target is not None and _scheme(target) == "http")
    vs = seeds if vs_sim else 0
    if http:
        doc = _http_run(scenario, target, seed, env_file, vs)
    else:
        doc = _redis_run(scenario, target, seed, env_file, vs)

    from retrysim import output

    if as_json:
        sys.stdout.write(output.dumps(doc))
        sys.stdout.flush()
        return
    from rich.console import Console

    from retrysim.render.report import render_run

    console = Console()
    render_run(doc, console, doc["sources"])
    console.print(f"[dim]proxy: {_proxy_line(doc['proxy'])}[/]")
    if "service" in doc:
        console.print(f"[dim]service: {_service_line(doc['service'])}[/]")
    if "versus" in doc:
        console.print(_versus_table(doc["versus"]))


def _scheme(target: str) -> str:
    scheme = target.partition("://")[0].lower() if "://" in target else ""
    if scheme not in ("redis", "http", "https"):
        raise UsageError(
            f"--target {target!r}: expected redis://HOST:PORT or http://HOST:PORT[/PATH]"
        )
    return "http" if scheme == "https" else scheme  # https: the HTTP parser says why not


def _redis_run(
    scenario: str, target: str | None, seed: int | None, env_file: Path | None, vs: int
) -> ResultDocument:
    from retrysim.chaos.redis_target import parse_target, ping, private_redis, require_redis_py

    upstream = parse_target(target) if target is not None else None
    require_redis_py()
    loaded = common.load(scenario, {})
    settings, setting_sources = common.settings(env_file)
    sources = common.policy_sources(loaded, {}, setting_sources, None)

    from retrysim.chaos.run import chaos_document

    server: AbstractContextManager[Any] = private_redis() if upstream is None else nullcontext()
    with server as port:
        address = upstream if upstream is not None else ("127.0.0.1", int(port))
        if not ping(address[1], address[0]):
            raise UsageError(f"nothing answers PING at redis://{address[0]}:{address[1]}")
        doc = chaos_document(loaded, address, seed, settings, vs_sim=vs)
    doc["sources"] = sources
    return doc


def _http_run(
    scenario: str, target: str | None, seed: int | None, env_file: Path | None, vs: int
) -> ResultDocument:
    from retrysim.chaos.http_target import listening, parse_http_target, require_httpx

    parsed = parse_http_target(target) if target is not None else None
    require_httpx()
    loaded = common.load(scenario, {})
    settings, setting_sources = common.settings(env_file)
    sources = common.policy_sources(loaded, {}, setting_sources, None)

    from retrysim.chaos.http_run import check_http, http_chaos_document

    check_http(loaded, parsed)
    if parsed is not None and not listening(parsed.host, parsed.port):
        raise UsageError(f"nothing listens at {parsed.url}")
    doc = http_chaos_document(loaded, parsed, seed, settings, vs_sim=vs)
    doc["sources"] = sources
    return doc


def _service_line(stats: dict[str, int]) -> str:
    shown = ("requests", "ok", "rate_limited", "unavailable", "server_errors")
    return ", ".join(f"{stats[k]:,} {k.replace('_', ' ')}" for k in shown)


def _proxy_line(stats: dict[str, int]) -> str:
    shown = ("connections", "forwarded", "refused", "closed_by_down", "blackholed", "reset")
    return ", ".join(f"{stats[k]:,} {k.replace('_', ' ')}" for k in shown)


def _versus_table(versus: Versus) -> Any:
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
