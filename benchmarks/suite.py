"""The speed benchmark suite: every ratio side by side in one process, then scaling.

    python -m benchmarks [suite] [--quick] [--repeat K] [--json PATH] [--skip-1m]
                         [--skip-instructions] [--tune-pairs N]

Ratios are only worth their pairing: on a shared machine the speed of the CPU drifts, so every
variant of a scenario (fast path, reference path, native core, the floors in Python and in C,
the bare tenacity loop, the two SimPy models) runs once per round, A B C D E A B C D E ...,
each timed in CPU seconds after a ``gc.collect()`` (the C floor times its own simulation); a
ratio is the median over rounds of the same round's two times (the best times' ratio is
printed too). Scaling runs each size in a fresh process (:mod:`.scaling`). Whole-process times
are wall times of the ``retrysim`` executable, as a user waits for them. Instruction counts and
the README's ``tune`` example with the native core on and off: :mod:`.native_figures`.
Prints a table (figure, target, met or missed by how much) and writes everything, with the
machine and its load, to a JSON file.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.bare import bare_loop_alive
from benchmarks.c_floor import GCC_MISSING, build, gcc_available, run_c_floor
from benchmarks.checks import Check
from benchmarks.engine import herd
from benchmarks.models import (
    HerdSpec,
    Summary,
    run_floor,
    run_simpy,
    run_simpy_lean,
    simpy_available,
    summary_of,
)
from benchmarks.native_figures import (
    RUN_1M,
    instruction_checks,
    measure_instructions,
    native_1m_checks,
    tune_check,
)
from benchmarks.scaling import ROOT, scale_once, scaling
from benchmarks.tune_speed import tune_speedup
from retrysim.model.library import load_scenario
from retrysim.model.scenario import Scenario
from retrysim.sim.engine import simulate

DEFAULT_JSON = ROOT / "benchmarks" / "results" / "latest.json"
SIZES = [1_000, 10_000, 100_000, 1_000_000]
#: How close a model's success rate and attempts per call must come to retrysim's (the
#: tolerances of tests/test_benchmarks.py: a 1,000-client run's seed-to-seed spread).
RATE_TOLERANCE, PER_CALL_TOLERANCE = 0.04, 0.03
SIMPY_MISSING = "SimPy is not installed (pip install -e '.[bench]'): the SimPy models not timed"


def thundering_herd(clients: int) -> Scenario:
    """The bundled ``thundering-herd`` with ``clients`` clients (10,000 as shipped)."""
    return load_scenario("thundering-herd").with_overrides({"clients.count": clients})


def cpu_of(fn: Callable[[], object]) -> float:
    """CPU seconds of ``fn()`` after a full collection."""
    gc.collect()
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def variants_of(use_simpy: bool, c_floor: bool) -> list[str]:
    """The variants timed on each scenario, in the order of a round."""
    names = ["fast", "reference", "native", "floor"] + (["c_floor"] if c_floor else [])
    return names + ["bare_alive"] + (["simpy", "simpy_lean"] if use_simpy else [])


def _bare(scenario: Scenario, result: Any) -> float:
    """The bare loop times its own loop (not building its inputs), after a full collection."""
    gc.collect()
    return bare_loop_alive(scenario, result)


@dataclass
class Variants:
    """One scenario's variants, timed round by round; what each computed, for agreement.

    ``missing`` says, per variant not timed, why (SimPy or gcc not installed, or the native
    core not running this scenario: its engine note).
    """

    scenario: Scenario
    times: dict[str, list[float]] = field(default_factory=dict)
    summaries: dict[str, Summary] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)

    def run(self, repeat: int, use_simpy: bool, c_floor: Path | None) -> None:
        """``repeat`` interleaved rounds; ``c_floor`` is the compiled C floor (None: no gcc)."""
        scenario = self.scenario
        spec = HerdSpec.of(scenario)
        reference = simulate(scenario, engine="reference")  # warm-up, and the bare loop's input
        self.summaries["retrysim"] = summary_of(reference)
        self.summaries["floor"] = run_floor(spec)
        variants: dict[str, Callable[[], float]] = {
            "fast": lambda: cpu_of(lambda: simulate(scenario, engine="fast")),
            "reference": lambda: cpu_of(lambda: simulate(scenario, engine="reference")),
            "native": lambda: cpu_of(lambda: simulate(scenario, engine="native")),
            "floor": lambda: cpu_of(lambda: run_floor(spec)),
            "bare_alive": lambda: _bare(scenario, reference),
        }
        auto = simulate(scenario, engine="auto")  # the native core's warm-up, or its refusal
        if auto.engine == "native":
            self.summaries["native"] = summary_of(auto)
        else:
            del variants["native"]
            self.missing["native"] = f"engine {auto.engine} ({auto.engine_note})"
        if c_floor is None:
            self.missing["c_floor"] = GCC_MISSING
        else:
            self.summaries["c_floor"] = run_c_floor(c_floor, spec).summary
            variants["c_floor"] = lambda: run_c_floor(c_floor, spec).cpu_s  # its own CPU time
        if use_simpy:
            self.summaries["simpy"] = run_simpy(spec)
            self.summaries["simpy_lean"] = run_simpy_lean(spec)
            variants["simpy"] = lambda: cpu_of(lambda: run_simpy(spec))
            variants["simpy_lean"] = lambda: cpu_of(lambda: run_simpy_lean(spec))
        else:
            self.missing["simpy"] = self.missing["simpy_lean"] = SIMPY_MISSING
        order = [name for name in variants_of(use_simpy, c_floor is not None) if name in variants]
        for name in order:
            self.times[name] = []
        for _ in range(repeat):
            for name in order:
                self.times[name].append(variants[name]())

    def ratio(self, top: str, bottom: str) -> dict[str, Any] | None:
        """``top`` / ``bottom``: the median of the rounds' ratios, their range, best times'."""
        if top not in self.times or bottom not in self.times:
            return None
        tops, bottoms = self.times[top], self.times[bottom]
        ratios = sorted(a / b for a, b in zip(tops, bottoms, strict=True))
        return {
            "median": statistics.median(ratios),
            "low": ratios[0],
            "high": ratios[-1],
            "best_times": min(tops) / min(bottoms),
            "rounds": len(ratios),
        }


def _figure(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "x":
        return f"{value:.3g}"
    if unit == "s":
        return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"
    return f"{value:,.1f} {unit}"


def _target(check: Check) -> str:
    if check.target is None:
        return ""
    op = "<=" if check.at_most else ">="
    return f"{op} {_figure(check.target, check.unit)}"


#: The ratios of each scenario's table rows: (top, bottom, target, the target an upper bound,
#: what the name adds). A speed-up is slower / faster, its target a lower bound.
RATIOS: tuple[tuple[str, str, float | None, bool, str], ...] = (
    ("reference", "fast", 5.0, False, " (speed-up of the fast path)"),
    ("fast", "native", 10.0, False, " (speed-up of the native core)"),
    ("fast", "simpy", 0.5, True, ""),
    ("native", "simpy_lean", 0.1, True, " (a SimPy process per call)"),
    ("fast", "floor", 2.0, True, ""),
    ("native", "c_floor", None, True, " (CPU time; the C floor's own)"),
    ("reference", "bare_alive", 1.3, True, ""),
)


def ratio_checks(label: str, variants: Variants) -> list[Check]:
    """The ratios of one scenario (:data:`RATIOS`), against their targets.

    Each figure is the median of the rounds' paired ratios; its note gives their range and the
    ratio of the best times, or, when a variant was not timed, why.
    """
    out = []
    for top, bottom, target, at_most, what in RATIOS:
        ratio = variants.ratio(top, bottom)
        missing = (variants.missing[n] for n in (top, bottom) if n in variants.missing)
        why = "; ".join(dict.fromkeys(missing))
        out.append(
            Check(
                f"{label}: {top} / {bottom}{what}",
                None if ratio is None else ratio["median"],
                target=target,
                at_most=at_most,
                note=why if ratio is None else _spread(ratio),
            )
        )
    return out


def _spread(ratio: dict[str, Any]) -> str:
    return f"rounds {ratio['low']:.3g}-{ratio['high']:.3g}, best times {ratio['best_times']:.3g}"


def fidelity_times(repeat: int, clients: int) -> dict[str, Any]:
    """Fidelity mode (the real decorators on a virtual asyncio loop) against the engine.

    On the 10k burst's model at ``clients`` clients (ideal server, burst: what fidelity mode
    runs) and on the bundled ``startup-race``; interleaved, CPU time, median of rounds.
    """
    from retrysim.sim.fidelity import run_with_decorators

    out: dict[str, Any] = {}
    for scenario in (herd(clients), load_scenario("startup-race")):
        simulate(scenario)
        run_with_decorators(scenario)  # warm-up
        fidelity, engine = [], []
        for _ in range(repeat):
            fidelity.append(cpu_of(partial(run_with_decorators, scenario)))
            engine.append(cpu_of(partial(simulate, scenario)))
        ratios = [f / e for f, e in zip(fidelity, engine, strict=True)]
        out[scenario.name] = {
            "fidelity_s": min(fidelity),
            "engine_s": min(engine),
            "ratio_median": statistics.median(ratios),
            "rounds": repeat,
        }
    return out


def retrysim_command() -> list[str]:
    """The venv's ``retrysim`` executable when it sits next to this Python, else ``-m``."""
    script = Path(sys.executable).parent / "retrysim"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "retrysim"]


#: The whole processes timed on every run of the suite: (label, arguments after ``retrysim``).
WHOLE_COMMANDS = (
    ("retrysim --help", ["--help"]),
    ("retrysim run redis-blip --quiet", ["run", "redis-blip", "--quiet"]),
)


def whole_process(
    runs: int, commands: Sequence[tuple[str, list[str]]] = WHOLE_COMMANDS
) -> dict[str, Any]:
    """Wall time of whole ``retrysim`` processes, as a user waits for them; median of ``runs``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    out: dict[str, Any] = {}
    for label, args in commands:
        walls = []
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run(
                [*retrysim_command(), *args], capture_output=True, check=True, env=env, cwd=ROOT
            )
            walls.append(time.perf_counter() - t0)
        out[label] = {"median_s": statistics.median(walls), "min_s": min(walls), "runs": runs}
    return out


def scaling_checks(rows: list[dict[str, Any]], skipped_1m: bool) -> list[Check]:
    by_size = {row["clients"]: row for row in rows}
    checks = [
        Check(
            f"thundering-herd, {row['clients']:,} clients: CPU, max RSS, per attempt",
            row["cpu_s"],
            unit="s",
            note=f"{row['max_rss_mib']:,.0f} MiB max RSS ({row['rss_before_run_mib']:,.0f} before "
            f"the run), {row['us_per_attempt']:.1f} µs/attempt, {row['attempts']:,} attempts",
        )
        for row in rows
    ]
    big, base = by_size.get(1_000_000), by_size.get(10_000)
    pending = "pending (--skip-1m or --quick)" if skipped_1m else "1M not in the sizes run"
    note = "" if big else pending
    per_attempt = None
    if big is not None and base is not None:
        per_attempt = big["us_per_attempt"] / base["us_per_attempt"]
    targets: tuple[tuple[str, float | None, str, float], ...] = (  # name, value, unit, target
        ("per-attempt cost, 1M / 10k clients", per_attempt, "x", 1.5),
        ("1M-client thundering-herd: CPU time", None if big is None else big["cpu_s"], "s", 30.0),
        (
            "1M-client thundering-herd: max RSS",
            None if big is None else big["max_rss_mib"],
            "MiB",
            1024.0,
        ),
    )
    checks.extend(
        Check(name, value, unit=unit, target=target, note=note)
        for name, value, unit, target in targets
    )
    return checks


def floor_checks(row: dict[str, Any]) -> list[Check]:
    """The floor at a million clients: no target, the yardstick the 1M targets are read by."""
    note = (
        f"plain Python, no records, every draw made up front: {row['us_per_attempt']:.1f} "
        f"µs/attempt, {row['attempts']:,} attempts, {row['max_rss_mib']:,.0f} MiB max RSS"
    )
    return [Check("1M-client thundering-herd by the floor: CPU time", row["cpu_s"], "s", note=note)]


def machine() -> dict[str, Any]:
    """What the figures were measured on: the machine, its load, the versions that matter."""

    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "loadavg": list(os.getloadavg()),
        "python": platform.python_version(),
        "tenacity": version("tenacity"),
        "numpy": version("numpy"),
        "simpy": version("simpy"),
    }


def timed_rounds(
    scenarios: dict[str, Variants],
    repeat: int,
    use_simpy: bool,
    c_floor: Path | None,
    say: Callable[[str], None],
) -> tuple[list[Check], dict[str, Any]]:
    """Every scenario's variants in interleaved rounds: their table rows and their JSON."""
    checks: list[Check] = []
    ratios: dict[str, Any] = {}
    for label, variants in scenarios.items():
        count = len(variants_of(use_simpy, c_floor is not None))
        say(f"{label}: {count} variants x {repeat} interleaved rounds")
        variants.run(repeat, use_simpy, c_floor)
        checks += ratio_checks(label, variants)
        ratios[label] = {
            "scenario": variants.scenario.name,
            "clients": variants.scenario.clients.count,
            "cpu_s": variants.times,
            "best_s": {name: min(times) for name, times in variants.times.items()},
            "ratios": {
                f"{top}/{bottom}": variants.ratio(top, bottom)
                for top, bottom in [("fast", "reference")] + [r[:2] for r in RATIOS]
            },
            "not_timed": variants.missing,
            "agreement": {name: s.as_dict() for name, s in variants.summaries.items()},
        }
    return checks, ratios


def run_suite(
    herd_clients: int = 10_000,
    burst_clients: int = 10_000,
    sizes: Sequence[int] = tuple(SIZES),
    repeat: int = 5,
    whole_runs: int = 5,
    fidelity_clients: int = 1_000,
    skipped_1m: bool = False,
    instructions: bool = True,
    tune_pairs: int = 3,
    say: Callable[[str], None] = lambda line: None,
) -> dict[str, Any]:
    """Every measurement; returns the JSON document (``checks`` holds the table's rows).

    ``instructions`` counts instructions at ``herd_clients`` under callgrind (minutes);
    ``tune_pairs`` times the README's ``tune`` example that many times with the native core
    on and off (0: not measured). ``say`` hears what is being measured, stage by stage (the
    command prints it on stderr).
    """
    started = machine()
    use_simpy = simpy_available()
    scenarios = {
        f"thundering-herd ({herd_clients:,} clients)": Variants(thundering_herd(herd_clients)),
        f"{burst_clients:,}-client burst": Variants(herd(burst_clients)),
    }
    counted = None
    with tempfile.TemporaryDirectory(prefix="retrysim-c-floor-") as tmp:
        c_floor = build(Path(tmp)) if gcc_available() else None  # no artefact outlives the run
        checks, ratios = timed_rounds(scenarios, repeat, use_simpy, c_floor, say)
        if instructions:
            counted = measure_instructions(HerdSpec.of(thundering_herd(herd_clients)), c_floor, say)
    checks += instruction_checks(counted, herd_clients)
    say("fidelity mode / engine")
    fidelity = fidelity_times(repeat, fidelity_clients)
    for name, row in fidelity.items():
        checks.append(Check(f"fidelity mode / engine ({name})", row["ratio_median"]))
    say(f"whole processes, {whole_runs} runs each")
    whole = whole_process(whole_runs) if whole_runs else {}
    for label, row in whole.items():
        checks.append(Check(f"`{label}`, whole process (wall, median)", row["median_s"], "s"))
    say(f"scaling, a fresh process per size: {', '.join(f'{n:,}' for n in sizes)} clients")
    rows = scaling(list(sizes))
    checks += scaling_checks(rows, skipped_1m)
    floor_rows, native_1m, whole_1m = [], None, None
    pending = "pending (--skip-1m or --quick)" if skipped_1m else "1M not in the sizes run"
    if 1_000_000 in sizes:
        say("the floor and the native core at 1,000,000 clients, each in a fresh process")
        floor_rows = [scale_once(1_000_000, model="floor")]
        checks += floor_checks(floor_rows[0])
        try:
            native_1m = scale_once(1_000_000, model="native")
        except subprocess.CalledProcessError as refused:  # --engine native refuses, saying why
            said = (refused.stderr or "").strip().splitlines()
            pending = f"the native core did not run it: {said[-1] if said else refused}"
        runs_1m = min(whole_runs, 3)  # 15-25 s each
        say(f"`retrysim {' '.join(RUN_1M)}`, {runs_1m} runs")
        whole_1m = whole_process(runs_1m, [("1M", RUN_1M)])["1M"] if runs_1m else None
    checks += native_1m_checks(native_1m, whole_1m, pending)
    tune = None
    if tune_pairs:
        say(f"`retrysim tune` README example, native on / off, {tune_pairs} interleaved pairs")
        tune = tune_speedup(retrysim_command(), tune_pairs)
    checks.append(tune_check(tune))
    notes = ([] if use_simpy else [SIMPY_MISSING]) + ([] if gcc_available() else [GCC_MISSING])
    return {
        "command": "python -m benchmarks " + " ".join(sys.argv[1:]),
        "machine": started,
        "loadavg_after": list(os.getloadavg()),
        "settings": {
            "herd_clients": herd_clients,
            "burst_clients": burst_clients,
            "sizes": list(sizes),
            "repeat": repeat,
            "whole_runs": whole_runs,
            "simpy": use_simpy,
            "instructions": instructions,
            "tune_pairs": tune_pairs,
        },
        "notes": notes,
        "ratios": ratios,
        "instructions": counted,
        "fidelity": fidelity,
        "whole_process": whole,
        "scaling": rows,
        "floor_scaling": floor_rows,
        "native_1m": {"scaling": native_1m, "whole_process": whole_1m},
        "tune": tune,
        "checks": [check.as_dict() for check in checks],
    }


def agrees(theirs: dict[str, Any], ours: dict[str, Any]) -> bool:
    """Whether a model's summary agrees with retrysim's to sampling noise: the same calls, and
    success rate and attempts per call within the tolerances tests/test_benchmarks.py holds
    the models to (:data:`RATE_TOLERANCE`, :data:`PER_CALL_TOLERANCE`)."""
    rate = abs(float(theirs["success_rate"]) - float(ours["success_rate"]))
    per_call = abs(float(theirs["attempts_per_call"]) - float(ours["attempts_per_call"]))
    same_calls: bool = theirs["calls"] == ours["calls"]
    return same_calls and rate <= RATE_TOLERANCE and per_call <= PER_CALL_TOLERANCE


def table(document: dict[str, Any]) -> str:
    """The checks as a Markdown table (pasted as is into the README), then agreement, machine."""
    lines = ["| measurement | figure | target | verdict |", "| --- | --- | --- | --- |"]
    for row in document["checks"]:
        check = Check(**{k: row[k] for k in ("name", "value", "unit", "target", "at_most", "note")})
        verdict = check.verdict()
        if check.note and check.value is not None:
            verdict = f"{verdict}; {check.note}" if verdict else check.note
        lines.append(
            f"| {check.name} | {_figure(check.value, check.unit)} | {_target(check)} | {verdict} |"
        )
    lines += [
        "",
        "| results agree (to sampling noise) | calls | attempts / call | success rate "
        f"| agrees with retrysim (±{RATE_TOLERANCE} rate, ±{PER_CALL_TOLERANCE} per call) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label, block in document["ratios"].items():
        ours = block["agreement"]["retrysim"]
        for name, s in block["agreement"].items():
            verdict = "" if name == "retrysim" else "yes" if agrees(s, ours) else "NO"
            lines.append(
                f"| {label}: {name} | {s['calls']:,} | {s['attempts_per_call']:.4f} "
                f"| {s['success_rate']:.4f} | {verdict} |"
            )
    m = document["machine"]
    load = ", ".join(f"{x:.2f}" for x in m["loadavg"])
    after = ", ".join(f"{x:.2f}" for x in document["loadavg_after"])
    lines += [
        "",
        f"Machine: {m['platform']}, {m['cpu_count']} CPUs, Python {m['python']}, tenacity "
        f"{m['tenacity']}, numpy {m['numpy']}, SimPy {m['simpy'] or 'not installed'}; "
        f"load average {load} at the start, {after} at the end; {m['date']}; "
        f"{document['settings']['repeat']} interleaved rounds.",
    ]
    lines += [f"Note: {note}" for note in document["notes"]]
    return "\n".join(lines)


def main(argv: Sequence[str] = ()) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks suite")
    parser.add_argument(
        "--quick", action="store_true", help="1k and 10k only, 2 rounds, 1 tune pair"
    )
    parser.add_argument("--repeat", type=int, default=None, help="interleaved rounds (5)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where the JSON goes")
    parser.add_argument("--skip-1m", action="store_true", help="scale to 100k clients only")
    parser.add_argument(
        "--skip-instructions", action="store_true", help="no callgrind counts (about 2 min)"
    )
    parser.add_argument(
        "--tune-pairs",
        type=int,
        default=None,
        help="README tune example runs, native on and off (3; 1 with --quick; 0 skips; ~90 s each)",
    )
    args = parser.parse_args(list(argv))
    repeat = args.repeat or (2 if args.quick else 5)
    sizes = SIZES[:2] if args.quick else SIZES[:3] if args.skip_1m else SIZES
    document = run_suite(
        sizes=sizes,
        repeat=repeat,
        whole_runs=3 if args.quick else 5,
        skipped_1m=args.quick or args.skip_1m,
        instructions=not args.skip_instructions,
        tune_pairs=(1 if args.quick else 3) if args.tune_pairs is None else args.tune_pairs,
        say=lambda line: print(line, file=sys.stderr, flush=True),
    )
    print(table(document))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten: {args.json}")
