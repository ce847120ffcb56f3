"""``retrysim chaos``: run a scenario's fleet for real (Redis or HTTP), through the fault proxy."""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from retrysim.cli import common, gates, value_completion
from retrysim.cli.exits import EXIT_ENVIRONMENT, UsageError, reports_errors
from retrysim.cli.gates import FailOverOption, FailUnderOption
from retrysim.cli.options import EnvFileOption, HtmlOption, ScenarioArg, SeedOption
from retrysim.cli.paths import check_html_path, check_out_dir
from retrysim.cli.run_files import RUN_FILES
from retrysim.safe import markup

if TYPE_CHECKING:
    from retrysim.chaos.calibrate import Calibration
    from retrysim.chaos.run import RealRun
    from retrysim.model.scenario import Scenario


@reports_errors
def chaos(
    scenario: ScenarioArg,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            help="The service to run against, on loopback: redis://127.0.0.1:PORT or "
            "http://127.0.0.1:PORT[/PATH] (each attempt one POST to PATH; an HTTP gateway in "
            "front of it answers the scenario's 429s, 503s and slow answers).",
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
    calibrate: Annotated[
        bool | None,
        typer.Option(
            "--calibrate/--no-calibrate",
            help="First run the same fleet for a few seconds, one attempt per call and no "
            "faults, and fit the client's CPU per attempt and per connect and the machine's "
            "slowdown; --vs-sim then simulates with them (its default; --no-calibrate: the "
            "scenario's own figures).",
            show_default=False,
        ),
    ] = None,
    seed: SeedOption = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Override a scenario value by dotted key, e.g. clients.count=100, "
            "faults.0.end=4. Repeatable.",
            metavar="KEY=VALUE",
            autocompletion=value_completion.set_keys,
        ),
    ] = None,
    env_file: EnvFileOption = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the result document as JSON instead of the report."),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write result.json, attempts.csv and calls.csv into this folder, as run --out "
            "does (retrysim plot DIR draws it).",
            metavar="DIR",
        ),
    ] = None,
    html: HtmlOption = None,
    fail_under: FailUnderOption = None,
    fail_over: FailOverOption = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Run a fleet larger than one process drives with meaningful timing (refused "
            "otherwise; see README: Chaos against a real Redis).",
        ),
    ] = False,
) -> None:
    """Run SCENARIO's fleet for real: real clients, retrysim.retry's decorator, real faults.

    Each client is an asyncio task calling a real redis.asyncio.Redis (one INCR per attempt) or
    a real httpx.AsyncClient (one POST per attempt) through retrysim.retry's decorator for the
    scenario's operation (its policy options and your RETRY__* settings), via a fault-injecting
    proxy built from the scenario's faults, in real time. With --start-http, retrysim's own HTTP
    service answers the scenario's HTTP faults (429 with Retry-After, 503, slow answers); with
    --target http://..., a gateway in front of your service answers them and passes every other
    request on (your service never sees a faulted request). The
    attempts and calls are recorded as the simulator records them and reported as `retrysim
    run` reports; --out saves them as `retrysim run --out` does, and --fail-under/--fail-over
    gate the real run as they gate a simulation. --vs-sim adds the simulation over --seeds
    seeds, side by side, calibrated to this machine: a few seconds of the same fleet first, one
    attempt per call and no faults, fit the client's CPU per attempt and per connect and the
    machine's slowdown, and the simulation runs with them (--no-calibrate: with the scenario's
    own; --calibrate without --vs-sim: calibrate and report it). A fleet larger than one
    process drives with meaningful timing is refused before anything starts (lower
    clients.count with --set, or --force).

    Exit codes: 0 ok, 1 a --fail-under/--fail-over threshold was missed (or a bug in retrysim,
    said so in one line), 2 bad input (or redis-server, redis-py or httpx missing), 3 the
    service went away mid-run (the report of what was recorded is printed, marked incomplete).
    """
    if sum((target is not None, start_redis, start_http)) != 1:
        raise UsageError(
            "give one of --target redis://127.0.0.1:PORT, --target http://127.0.0.1:PORT, "
            "--start-redis or --start-http"
        )
    calibrating = _calibrating(calibrate, vs_sim)
    http = start_http or (target is not None and _scheme(target) == "http")
    thresholds = gates.parse(fail_under, fail_over)
    if out is not None:
        check_out_dir(out, "--out", RUN_FILES)
    check_html_path(html)
    sets = common.parse_sets(set_)
    asked = _Asked(scenario, sets, seed, env_file, seeds if vs_sim else 0, force, calibrating)
    real = _http_run(asked, target) if http else _redis_run(asked, target)
    doc = real.document
    doc["source"] = scenario  # as given: the report's suggested commands name it
    doc["arguments"] = common.rerun_arguments(seed=seed, sets=set_, env_file=env_file)

    def draw(console: Any) -> None:
        from retrysim.render.report import render_run

        render_run(doc, console, doc["sources"])
        console.print(f"[dim]proxy: {_proxy_line(doc['proxy'])}[/]")
        if "service" in doc:
            console.print(f"[dim]{_service_line(doc['service'])}[/]")
        if "versus" in doc:
            from retrysim.share.versus import versus_table

            console.print(versus_table(doc["versus"]))
        if "calibration" in doc:
            from retrysim.share.versus import calibration_table

            console.print(calibration_table(doc["calibration"]))
        if real.incomplete is not None:
            console.print(f"[bold yellow]incomplete: {markup(real.incomplete)}[/]")

    # The report first: whatever fails after it (a full disk), the real run is already shown.
    console = common.show(doc, as_json, draw)
    if out is not None:
        from retrysim.cli.run_files import write_run_files

        write_run_files(out, doc, real.result)
        if console is not None:
            console.print(f"[dim]wrote {markup(out)}/result.json, attempts.csv, calls.csv[/]")
    if html is not None:
        from retrysim.share.reproduce import option_words
        from retrysim.share.run_page import run_page
        from retrysim.share.write import write_page

        target_words = option_words(
            [("--target", target), ("--start-redis", start_redis), ("--start-http", start_http)]
        )
        versus = option_words([("--vs-sim", vs_sim), ("--seeds", seeds if vs_sim else None)])
        versus += {True: ["--calibrate"], False: ["--no-calibrate"], None: []}[calibrate]
        words = ["retrysim", "chaos", scenario, *target_words, *versus, *doc["arguments"]]
        write_page(run_page(doc, command=words + (["--force"] if force else [])), html)
        if console is not None:
            console.print(f"[dim]wrote {markup(html)}[/]")
    if real.incomplete is not None:  # the service's doing, not the input's nor retrysim's
        print(f"retrysim: error: the run is incomplete: {real.incomplete}", file=sys.stderr)
        raise typer.Exit(EXIT_ENVIRONMENT)
    gates.enforce(doc, thresholds)


def _calibrating(calibrate: bool | None, vs_sim: bool) -> bool:
    """Whether to calibrate: as asked, else with --vs-sim (the simulation it calibrates).
    ``--no-calibrate`` without --vs-sim is refused: there is nothing it would change."""
    if calibrate is False and not vs_sim:
        raise UsageError(
            "--no-calibrate: only --vs-sim's simulation is calibrated; add --vs-sim, or drop "
            "--no-calibrate"
        )
    return vs_sim if calibrate is None else calibrate


@dataclass(frozen=True)
class _Asked:
    """What the command line asks of either fleet."""

    scenario: str
    sets: dict[str, Any]
    seed: int | None
    env_file: Path | None
    vs_sim: int
    force: bool
    calibrate: bool


def _scheme(target: str) -> str:
    scheme = target.partition("://")[0].lower() if "://" in target else ""
    if scheme not in ("redis", "http", "https"):
        raise UsageError(
            f"--target {target!r}: expected redis://HOST:PORT or http://HOST:PORT[/PATH]"
        )
    return "http" if scheme == "https" else scheme  # https: the HTTP parser says why not


def _redis_run(asked: _Asked, target: str | None) -> RealRun:
    from retrysim.chaos.redis_target import parse_target, ping, private_redis, require_redis_py

    upstream = parse_target(target) if target is not None else None
    require_redis_py()
    loaded = common.load(asked.scenario, asked.sets)
    settings, setting_sources = common.settings(asked.env_file)
    sources = common.policy_sources(loaded, asked.sets, setting_sources, None)

    from retrysim.chaos.run import check, check_redis, real_run

    check(loaded, force=asked.force)  # before a redis-server starts
    check_redis(loaded)
    _note_forced(loaded)
    server: AbstractContextManager[Any] = private_redis() if upstream is None else nullcontext()
    with server as port:
        address = upstream if upstream is not None else ("127.0.0.1", int(port))
        if not ping(address[1], address[0]):
            raise UsageError(f"nothing answers PING at redis://{address[0]}:{address[1]}")
        calibration = None
        if asked.calibrate:
            from retrysim.chaos.calibration_run import calibrate_redis

            calibration = calibrate_redis(loaded, address, asked.seed, settings, force=asked.force)
        model = _model(loaded, calibration, asked)
        real = real_run(
            loaded,
            address,
            asked.seed,
            settings,
            vs_sim=asked.vs_sim,
            force=asked.force,
            model=model,
        )
    return _finish(real, loaded, sources, calibration, asked)


def _http_run(asked: _Asked, target: str | None) -> RealRun:
    from retrysim.chaos.http_target import listening, parse_http_target, require_httpx

    parsed = parse_http_target(target) if target is not None else None
    require_httpx()
    loaded = common.load(asked.scenario, asked.sets)
    settings, setting_sources = common.settings(asked.env_file)
    sources = common.policy_sources(loaded, asked.sets, setting_sources, None)

    from retrysim.chaos.http_run import check_http, http_real_run

    check_http(loaded, parsed, force=asked.force)
    _note_forced(loaded)
    if parsed is not None and not listening(parsed.host, parsed.port):
        raise UsageError(f"nothing listens at {parsed.url}")
    calibration = None
    if asked.calibrate:
        from retrysim.chaos.calibration_run import calibrate_http

        calibration = calibrate_http(loaded, parsed, asked.seed, settings, force=asked.force)
    model = _model(loaded, calibration, asked)
    real = http_real_run(
        loaded, parsed, asked.seed, settings, vs_sim=asked.vs_sim, force=asked.force, model=model
    )
    return _finish(real, loaded, sources, calibration, asked)


def _model(scenario: Scenario, calibration: Calibration | None, asked: _Asked) -> Scenario | None:
    """What --vs-sim simulates: the calibrated scenario (None: the scenario itself)."""
    return None if calibration is None or not asked.vs_sim else calibration.apply(scenario)


def _finish(
    real: RealRun,
    scenario: Scenario,
    sources: dict[str, str],
    calibration: Calibration | None,
    asked: _Asked,
) -> RealRun:
    """The document's ``sources`` and (calibrated) ``calibration`` sections."""
    real.document["sources"] = sources
    if calibration is not None:
        section = calibration.section(scenario, used=asked.vs_sim > 0)
        real.document["calibration"] = section
    return real


def _note_forced(scenario: Scenario) -> None:
    """One ``retrysim: warning:`` line on stderr for a fleet run past the limit (--force)."""
    from retrysim.chaos.fleet import forced_note

    note = forced_note(scenario)
    if note is not None:
        print(f"retrysim: warning: {note}", file=sys.stderr)


def _service_line(stats: dict[str, int]) -> str:
    """What retrysim's own service answered, or (--target http://...) what the gateway in
    front of the user's service did: its counters say which (only a gateway forwards)."""
    shown: tuple[str, ...] = ("requests", "ok", "rate_limited", "unavailable", "server_errors")
    label = "service"
    if "forwarded" in stats:
        label = "gateway"
        shown = ("requests", "forwarded", *shown[1:], "delayed", "upstream_failed")
    return f"{label}: " + ", ".join(f"{stats[k]:,} {k.replace('_', ' ')}" for k in shown)


def _proxy_line(stats: dict[str, int]) -> str:
    """The proxy's counters: always those of connections, the others when a toxic used them."""
    shown = ("connections", "forwarded", "refused", "closed_by_down", "blackholed", "reset")
    used = ("counted_resets", "segments", "transmissions_lost", "chunks_delayed")
    line = [f"{stats[k]:,} {k.replace('_', ' ')}" for k in shown]
    line += [f"{stats[k]:,} {k.replace('_', ' ')}" for k in used if stats.get(k)]
    return ", ".join(line)
