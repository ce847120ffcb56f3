"""Rich rendering of result documents: tables, a jitter-spread histogram, an attempts timeline.

Everything here reads the plain result document (``metrics.summarize``), so a saved
``result.json`` renders exactly like a fresh run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from retrysim.render.resilience import (
    NOTES_WIDTH,
    mechanism_parts,
    mechanisms_line,
    resilience_table,
    timeline_legend,
    timeline_marks,
)
from retrysim.render.tier_report import replicas_table, tiers_table
from retrysim.render.verdict import diagnoses_section as diagnoses_section
from retrysim.render.verdict import spread_word
from retrysim.render.verdict import verdict as verdict
from retrysim.results import metric_table
from retrysim.results.diagnose import SYNCHRONISED_SHARE
from retrysim.results.document import ResultDocument
from retrysim.results.facts import recovery_unjudged
from retrysim.results.metric_table import METRIC_TABLE
from retrysim.results.sections import CustomPolicy, Guards, JitterSpread
from retrysim.retry.per_error import PER_ERROR_FAMILIES, most_attempts
from retrysim.safe import markup, visible

SERIES_STYLES = ("green", "yellow", "dark_orange", "red", "magenta", "blue")
BAR = "█"


def fmt_num(value: Any, unit: str = "", digits: int = 3) -> str:
    """A number as reports print it: thousands separators and exactly ``digits`` decimals
    for floats (so a column of them lines up: never ``1s`` beside ``4.015s``); a value that
    rounds to zero has no minus sign."""
    if value is None:
        return "–"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        text = f"{value:,.{digits}f}" if abs(value) < 1e6 else f"{value:,.0f}"
        if text.startswith("-") and not any(c in "123456789" for c in text):
            text = text[1:]
        return f"{text}{unit}"
    return f"{value:,}{unit}"


def fmt_pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}%"


def header(
    doc: ResultDocument, sources: dict[str, str] | None = None, defaults: Sequence[str] = ()
) -> Panel:
    """The run's panel: scenario, seed, profile, the policy in effect with each value's source,
    the mechanisms, and ``defaults``: the scenario's defaults in effect that add time or
    capacity (``retrysim.model.defaults.in_effect``'s texts, with the key that changes each)."""
    settings = doc["settings"]
    lines = Text()
    lines.append(visible(doc["scenario"]), style="bold")
    lines.append(f"   seed {doc['seed']}   profile {doc['profile']}\n", style="dim")
    if doc.get("description"):
        lines.append(visible(doc["description"].strip()) + "\n", style="italic")
    custom = settings.get("custom")
    if custom:
        lines.append(_custom_policy(doc, custom))
        lines.append(_defaults_text(defaults))
        return Panel(lines, title="retrysim run", title_align="left", border_style="cyan")
    lines.append(f"{settings['operation']} operations: ")
    parts = []
    # Every policy option in effect, in the options' own order (the settings document's keys);
    # the operation and profile lead the panel, a flag reads better as words after it.
    for key, value in settings.items():
        if key in ("operation", "profile", "overrides") or value is None or isinstance(value, bool):
            continue
        if isinstance(value, dict):
            continue  # a resilience mechanism's knobs: on their own line below
        source = (sources or {}).get(key)
        parts.append(f"{key}={value}" + (f" ({source})" if source else ""))
    lines.append(visible(", ".join(parts)))
    if settings.get("respect_retry_after"):
        lines.append(", honours Retry-After")
    per_error = per_error_text(settings, sources)
    if per_error:
        lines.append("\n" + per_error)
    resilience = mechanisms_line(settings, sources)
    if resilience:
        on = bool(mechanism_parts(settings, sources))
        lines.append("\n" + resilience, style="bold" if on else "dim")
    lines.append(_defaults_text(defaults))
    return Panel(lines, title="retrysim run", title_align="left", border_style="cyan")


def per_error_text(settings: Mapping[str, Any], sources: Mapping[str, str] | None) -> str:
    """The header's per-error line: each error family with a knob of its own, its knobs and
    their sources (``per-error: rate_limited max_attempts=8 (scenario), honours Retry-After``);
    empty when none has one (or the document is from before per-error policies)."""
    where = sources or {}
    parts = []
    for family in PER_ERROR_FAMILIES:
        table = settings.get(family)
        if not isinstance(table, Mapping):
            continue
        knobs = []
        for knob, value in table.items():
            if value is None:
                continue
            source = where.get(f"{family}.{knob}")
            note = f" ({source})" if source else ""
            if knob == "respect_retry_after":
                knobs.append(("honours" if value else "ignores") + f" Retry-After{note}")
            else:
                knobs.append(f"{knob}={value}{note}")
        if knobs:
            parts.append(f"{family} " + ", ".join(knobs))
    return visible("per-error: " + "; ".join(parts)) if parts else ""


def _defaults_text(defaults: Sequence[str]) -> Text:
    """``defaults in effect: service.latency = 10 ms (...); ...`` on a line of its own."""
    if not defaults:
        return Text()
    return Text("\ndefaults in effect: " + visible("; ".join(defaults)), style="dim")


def _custom_policy(doc: ResultDocument, custom: CustomPolicy) -> Text:
    """The user's own tenacity policy: its name, each strategy, and what the run made of it."""
    text = Text()
    text.append(f"your policy {visible(custom['name'])}", style="bold")
    text.append(" (stepped as it is; numbers below probed from it)\n", style="dim")
    strategies = custom["strategies"]
    limit = doc["settings"]["max_attempts"]
    attempts = f"at most {limit} attempts" if custom["attempts_limited"] else "no attempt limit"
    delay = doc["settings"].get("max_delay")
    stops = attempts + (f", gives up after {fmt_num(delay, 's')}" if delay is not None else "")
    retried = ", ".join(doc["policy_facts"]["retried_errors"]) or "none of the simulated errors"
    for label, key, what in (
        ("stop ", "stop", stops),
        ("wait ", "wait", ""),
        ("retry", "retry", f"retries {retried}"),
    ):
        text.append(f"{label} ", style="bold")
        text.append(visible(strategies[key]))
        text.append(f"  {what}\n" if what else "\n", style="dim")
    for note in custom["notes"]:
        text.append(f"note: {visible(note)}\n", style="yellow")
    text.rstrip()
    return text


def calls_text(doc: ResultDocument) -> str:
    """The call count, with where it comes from when clients make several calls each."""
    total = fmt_num(doc["calls"]["total"])
    fleet = doc.get("clients") or {}
    each = fleet.get("calls_per_client")
    if each and each > 1 and doc["calls"]["total"] == fleet["count"] * each:
        return f"{total} ({fmt_num(fleet['count'])} clients x {each})"
    return total


def outcome_table(doc: ResultDocument) -> Table:
    """What happened to the calls: failed and unfinished first-class, every figure labelled."""
    calls, attempts = doc["calls"], doc["attempts"]
    total = calls["total"]
    table = Table(title="Outcome (calls)", title_justify="left", show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_column(style="dim")
    table.add_row("calls", calls_text(doc), "")
    table.add_row(
        "succeeded", fmt_num(calls["succeeded"]), f"{fmt_pct(calls['success_rate'])} of calls"
    )
    failed_share = calls["failed"] / total if total else None
    table.add_row(
        "failed",
        fmt_num(calls["failed"]),
        f"{fmt_pct(failed_share)} of calls gave up after their last attempt",
        style="bold red" if calls["failed"] else "",
    )
    table.add_row(
        "unfinished",
        fmt_num(calls["unfinished"]),
        "still retrying when the run stopped (neither succeeded nor failed)",
        style="bold yellow" if calls["unfinished"] else "",
    )
    table.add_row("attempts", fmt_num(attempts["total"]), "first tries and retries, all calls")
    if attempts.get("refused"):
        table.add_row(
            "  sent",
            fmt_num(attempts["sent"]),
            f"reached the dependency; {attempts['refused']:,} refused by a breaker",
        )
    table.add_row("retry rate", fmt_pct(attempts["retry_rate"]), "of calls needed a retry")
    success = doc["retry_success_rate"]
    table.add_row(
        "retry success rate",
        fmt_pct(success),
        "of retried calls succeeded" if success is not None else "no call was retried",
    )
    allowed: int | None = doc["settings"].get("max_attempts")
    if allowed is not None:
        allowed = most_attempts(doc["settings"])  # an error family's own limit may be higher
    limit = f" of {allowed} allowed" if allowed is not None else ""
    table.add_row(
        "attempts per call",
        fmt_num(attempts["mean_per_call"], digits=2),
        f"mean; max used {attempts['max_per_call']}{limit}",
    )
    wait = doc["retry_wait"]
    table.add_row(
        "time waiting",
        fmt_num(wait["total"], "s", 1),
        f"between attempts, all calls ({fmt_num(wait['mean_per_call'], 's', 3)} per call)",
    )
    return table


def load_table(doc: ResultDocument) -> Table:
    """What the fleet asked of the server, and the failed attempts by error (headed)."""
    load = doc["load"]
    table = Table(title="Load (attempts)", title_justify="left", show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_column(style="dim")
    table.add_row("amplification", fmt_num(load["amplification"], "x", 2), "attempts per call")
    note = "in the busiest second"
    if load["capacity"]:
        ratio = load["peak_over_capacity"]
        over = fmt_num(ratio, "x", 2)
        if ratio and ratio > 1:
            over = f"[red]{over}[/]"
        note += f", vs capacity {fmt_num(load['capacity'], '/s', 0)} ({over})"
    table.add_row("peak attempts", fmt_num(load["peak_attempts_per_s"], "/s", 0), note)
    table.add_row(
        "duplicate executions", fmt_num(doc["duplicates"]), "requests the server ran again"
    )
    table.add_row("wasted work", fmt_num(doc["wasted_work"]), "requests done for no one")
    recovery = doc.get("recovery")
    if recovery is not None:
        ratio = recovery["ratio"]
        shown = fmt_pct(ratio)
        table.add_row(
            "goodput recovered",
            f"[red]{shown}[/]" if ratio < 0.5 else shown,
            f"calls ok/s from t={recovery['from']:g} s vs "
            + ("before the disturbance" if recovery["reference"] == "before" else "offered"),
        )
    elif doc.get("faults") or doc["clients"].get("spikes"):
        why = _unjudged(doc)
        if why:  # with no disturbance there is nothing to recover from: no row
            table.add_row("goodput recovered", fmt_pct(None), f"not judged: {markup(why)}")
    failures = sorted(doc["failures_by_type"].items(), key=lambda kv: -kv[1])
    if failures:
        table.add_row("failed attempts by error", "", "", style="bold underline")
        retried = set(doc.get("policy_facts", {}).get("retried_errors", ()))
        for name, count in failures:
            note = "refused by a breaker, never sent" if name == "CircuitOpen" else ""
            if name != "CircuitOpen" and retried and name not in retried:
                note = "[red]this policy never retries it[/]"
            table.add_row(f"  {name}", fmt_num(count), note)
    return table


def _unjudged(doc: ResultDocument) -> str | None:
    """Why ``recovery`` is null (None when a document lacks what that takes: an old one)."""
    try:
        return recovery_unjudged(doc)
    except KeyError:
        return None


def connections_table(doc: ResultDocument) -> Table | None:
    """Pools, connects and the network (None when the scenario models no connections)."""
    conn = doc.get("connections")
    if conn is None:
        return None
    table = Table(title="Connections", title_justify="left", show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_column(style="dim")
    pool = "unbounded" if conn["pool_size"] is None else f"{conn['pool_size']:,} each"
    table.add_row("processes", f"{conn['processes']:,}", f"pool: {pool}")
    if conn["rtt_mean"] is not None:
        table.add_row(
            "network",
            fmt_num(conn["rtt_mean"], "s"),
            f"mean round trip; a connect {fmt_num(conn['connect_mean'], 's')}",
        )
    failed = conn["connect_failures"] + conn["connect_timeouts"]
    table.add_row(
        "connects",
        f"{conn['connects']:,}",
        f"{failed:,} failed ({conn['connect_timeouts']:,} timed out)" if failed else "none failed",
    )
    wait = conn["pool_wait"]
    if wait["attempts"]:
        table.add_row(
            "waited for a connection",
            f"{wait['attempts']:,}",
            f"{fmt_pct(wait['share'])} of sent attempts; mean {fmt_num(wait['mean'], 's')}, "
            f"p99 {fmt_num(wait['p99'], 's')}, max {fmt_num(wait['max'], 's')}",
        )
    else:
        table.add_row("waited for a connection", "0", "a connection was always free")
    return table


def latency_table(doc: ResultDocument) -> Table:
    """Per-call latency and, with faults, its overhead against the same run without them."""
    done = doc["calls"]["succeeded"] + doc["calls"]["failed"]
    table = Table(
        title=f"Latency per call, first attempt to last answer ({fmt_num(done)} finished calls)",
        title_justify="left",
    )
    table.add_column("")
    for key in _LATENCY_KEYS:
        table.add_column(key, justify="right")
    table.add_row("latency", *(fmt_num(doc["latency"][k], "s") for k in _LATENCY_KEYS))
    overhead = doc.get("latency_overhead")
    if overhead:
        table.add_row("vs no faults", "", *(_signed(overhead.get(k)) for k in _OVERHEAD_KEYS))
    return table


#: The latency table's columns (the document's latency keys), and those an overhead has.
_LatencyKey = Literal["mean", "p50", "p95", "p99", "max"]
_LATENCY_KEYS: tuple[_LatencyKey, ...] = ("mean", "p50", "p95", "p99", "max")
_OVERHEAD_KEYS: tuple[Literal["p50", "p95", "p99", "max"], ...] = ("p50", "p95", "p99", "max")


def _signed(value: float | None) -> str:
    if value is None:
        return "–"
    text = f"{value:+.3f}s"
    return "±0" if not any(c in "123456789" for c in text) else text


def spread_histogram(doc: ResultDocument, rows: int = 16, width: int = 40) -> Group:
    """Retry start times as horizontal bars, then the single spread figure."""
    spread = doc["jitter_spread"]
    title = Text("Jitter spread: when retries start", style="bold")
    if not spread["retries"]:
        return Group(title, Text("no retries", style="dim"))
    edges, counts = spread["edges"], spread["counts"]
    step = max(1, math.ceil(len(counts) / rows))
    merged = [
        (edges[i], edges[min(i + step, len(edges) - 1)], sum(counts[i : i + step]))
        for i in range(0, len(counts), step)
    ]
    top = max(c for _, _, c in merged) or 1
    lines = [title]
    for lo, hi, count in merged:
        bar = BAR * max(0, round(width * count / top))
        lines.append(
            Text.assemble((f"{_span(lo, hi, 2):>16} ", "dim"), (bar, "yellow"), f" {count:,}")
        )
    share = spread["peak_share_100ms"]
    assert share is not None  # there are retries, so a busiest window of them
    verdict = spread_word(share)
    verdict = "spread out" if verdict == "spread" else verdict
    lines.append(
        Text(
            f"peak: {fmt_pct(share)} of {spread['retries']:,} retries start within one 100 ms "
            f"window ({verdict})" + _first_retry_note(spread),
            style="bold red" if share >= SYNCHRONISED_SHARE else "",
        )
    )
    return Group(*lines)


def _span(lo: float, hi: float, digits: int) -> str:
    return f"{lo:.{digits}f}–{hi:.{digits}f}s"


def _first_retry_note(spread: JitterSpread) -> str:
    first = spread.get("first_retry_peak_share_100ms")
    return "" if first is None else f"; first retries alone: {fmt_pct(first)}"


def timeline_chart(doc: ResultDocument, rows: int = 24, width: int = 48) -> Group:
    """Attempts per second per time bucket, stacked by attempt number; ⚡ marks fault windows.

    With breakers, a column marks rows where they were open (``⊘`` mostly, ``◔`` some), and
    a note gives breaker and budget refusals and limiter delays per second in that row.
    """
    tl = doc["timeline"]
    series = tl["attempts_per_s"]
    goodput = tl["goodput_per_s"]
    n = len(goodput)
    step = max(1, math.ceil(n / rows))
    bw = tl["bin_width"]
    windows = [(f["start"], f["end"] if f["end"] is not None else math.inf) for f in doc["faults"]]
    buckets = []
    for i in range(0, n, step):
        j = min(i + step, n)
        stack = [sum(s[i:j]) / (j - i) for s in series]
        good = sum(goodput[i:j]) / (j - i)
        lo, hi = i * bw, j * bw
        fault = any(a < hi and lo < b for a, b in windows)
        buckets.append((lo, hi, stack, good, fault))
    top = max((sum(b[2]) for b in buckets), default=0) or 1
    legend = Text.assemble(
        ("Attempts per second over time  ", "bold"),
        *[
            (f"{BAR} {label}  ", SERIES_STYLES[k % len(SERIES_STYLES)])
            for k, label in enumerate(tl["labels"])
        ],
        ("  ⚡ fault window", "red"),
        *timeline_legend(doc),
    )
    guards: Guards | dict[str, Any] = doc.get("guards") or {}
    breakers = guards.get("breaker") is not None
    lines = [legend]
    for k, (lo, hi, stack, good, fault) in enumerate(buckets):
        row = Text(f"{_span(lo, hi, 0):>12}", style="dim")
        row.append("⚡" if fault else " ", style="red")
        mark, mark_style, note = timeline_marks(doc, k * step, min(k * step + step, n))
        if breakers:
            row.append(mark, style=mark_style)
        for s, value in enumerate(stack):
            row.append(
                BAR * round(width * value / top), style=SERIES_STYLES[s % len(SERIES_STYLES)]
            )
        row.append(f" {sum(stack):,.0f}/s", style="")
        row.append(f" ok {good:,.0f}", style="green dim")
        if note:
            row.append(note, style="yellow")
        lines.append(row)
    return Group(*lines)


def render_run(
    doc: ResultDocument,
    console: Console,
    sources: dict[str, str] | None = None,
    defaults: Sequence[str] = (),
) -> None:
    console.print(header(doc, sources, defaults))
    console.print(Text(verdict(doc), style="bold"))
    if doc.get("stopped"):
        console.print(f"[bold yellow]warning:[/] {markup(doc['stopped'])}")
    if console.width >= 110:
        grid = Table.grid(padding=(0, 6))
        grid.add_row(outcome_table(doc), load_table(doc))
        console.print(grid)
    else:
        console.print(outcome_table(doc))
        console.print(load_table(doc))
    console.print(latency_table(doc))
    for graph in (tiers_table(doc), replicas_table(doc)):  # only with tiers, or replicas
        if graph is not None:
            console.print(graph)
    connections = connections_table(doc)
    if connections is not None:
        console.print(connections)
    resilience = resilience_table(doc)
    if resilience is not None:
        console.print(resilience)
    console.print(diagnoses_section(doc), crop=False)  # its commands are never cut or broken
    console.print()
    bars = max(10, min(60, console.width - 40))
    console.print(spread_histogram(doc, width=bars))
    console.print()
    room = NOTES_WIDTH if doc.get("guards") else 0  # the timeline's notes of refusals
    console.print(timeline_chart(doc, width=max(10, min(60, console.width - 40 - room))))
    console.print(
        f"[dim]{fmt_num(doc['virtual_time'], 's', 1)} of virtual time in "
        f"{fmt_num(doc['wall_time'], 's', 2)} of wall time, {doc['events']:,} events[/]"
    )
    console.print(f"[dim]engine: {engine_line(doc)}[/]")


def engine_line(doc: ResultDocument) -> str:
    """Which decision path ran, and why the reference one when the fast one was not taken."""
    engine, note = doc.get("engine", "reference"), doc.get("engine_note")
    return f"{engine} ({markup(note)})" if note else str(engine)


#: Name -> (table label, display format), derived from retrysim.results.metric_table for callers
#: that
#: read labels from here (the shell's diff).
METRIC_LABELS: dict[str, tuple[str, str]] = {m.name: (m.label, m.format) for m in METRIC_TABLE}


def fmt_metric(name: str, value: float | None) -> str:
    """``value`` as compare and sweep tables show metric ``name`` (see ``metric_table``)."""
    return metric_table.show(name, value)


def _delta(name: str, value: float | None, first: float | None) -> str:
    if value is None or first is None:
        return ""
    diff = value - first
    if diff == 0:
        return ""
    return f" ({metric_table.show_change(name, diff)})"


def _best(name: str, values: list[float | None]) -> float | None:
    """The value to highlight: the best of two or more different ones, by the metric's direction."""
    known = [v for v in values if v is not None]
    better = metric_table.better(name)
    if len(known) < 2 or min(known) == max(known) or better == "neither":
        return None
    return max(known) if better == "higher" else min(known)


def _cell(result: Any, name: str) -> str:
    mean = result.mean(name)
    interval = result.interval(name)
    text = fmt_metric(name, mean)
    if interval is not None and mean is not None:
        half = (interval[1] - interval[0]) / 2
        text += f" ±{fmt_metric(name, half).lstrip('+')}"
    return text


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def compare_table(scenario: str, seeds: list[int], results: list[Any], names: list[str]) -> Table:
    """Metrics down, variants across; change against the first variant; best in bold green."""
    seeds_note = (
        f"seed {seeds[0]}"
        if len(seeds) == 1
        else (f"{len(seeds)} seeds ({seeds[0]}..{seeds[-1]}), mean ±95% interval")
    )
    table = Table(
        title=f"{markup(scenario)}: {seeds_note}; (change vs first)", title_justify="left"
    )
    table.add_column("metric", style="bold")
    for result in results:
        table.add_column(markup(result.variant.label), justify="right")
    for name in names:
        means = [r.mean(name) for r in results]
        best = _best(name, means)
        cells = []
        for k, (result, mean) in enumerate(zip(results, means, strict=True)):
            text = _cell(result, name) + ("" if k == 0 else _delta(name, mean, means[0]))
            cells.append(f"[bold green]{text}[/]" if best is not None and mean == best else text)
        table.add_row(metric_table.label(name), *cells)
    return table


def sweep_table(scenario: str, seeds: list[int], results: list[Any], names: list[str]) -> Table:
    """One row per grid point, one column per metric; best per column in bold green."""
    table = Table(
        title=f"{markup(scenario)}: sweep over {_count(len(results), 'grid point')} x "
        f"{_count(len(seeds), 'seed')}",
        title_justify="left",
    )
    table.add_column("grid point", style="bold")
    for name in names:
        table.add_column(metric_table.label(name), justify="right")
    bests = {name: _best(name, [r.mean(name) for r in results]) for name in names}
    for result in results:
        cells = []
        for name in names:
            text = _cell(result, name)
            best = bests[name]
            cells.append(
                f"[bold green]{text}[/]" if best is not None and result.mean(name) == best else text
            )
        table.add_row(markup(result.variant.label), *cells)
    return table
