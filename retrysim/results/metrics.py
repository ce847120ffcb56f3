"""Every metric computed from run records with numpy; names and wording: ``metric_table``.

Each function takes record arrays (``attempts``, ``calls``: see ``retrysim.sim.records``) and
returns plain numbers, so it can be checked on tiny hand-made records. :func:`summarize` puts
them together into the stable result document that ``retrysim run --json`` prints.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Literal, cast

import numpy as np

from retrysim.results import metric_table
from retrysim.results.document import SCHEMA_VERSION, ResultDocument
from retrysim.results.guard_metrics import budget_refused_calls, guards_section, refused_mask
from retrysim.results.metric_table import METRIC_TABLE, Read
from retrysim.results.rates import bin_width as bin_width
from retrysim.results.rates import load as load
from retrysim.results.rates import timeline as timeline
from retrysim.results.rates import timeline_bins as timeline_bins
from retrysim.results.sections import (
    ArrivalWindow,
    AttemptCounts,
    CallCounts,
    FaultWindow,
    JitterSpread,
    Latency,
    LatencyOverhead,
    RetryWait,
    Settings,
)
from retrysim.sim import records as rec
from retrysim.sim.failures import CODE_NAMES

if TYPE_CHECKING:
    from retrysim.sim.result import RunResult

SPREAD_WINDOW = 0.1  # seconds: the window of the jitter-spread figure
PERCENTILES = (50, 95, 99)


def call_counts(calls: np.ndarray) -> CallCounts:
    """total, succeeded, failed (gave up), unfinished, success_rate (of all calls)."""
    total = len(calls)
    ok = int(np.sum(calls["outcome"] == rec.SUCCEEDED))
    failed = int(np.sum(calls["outcome"] == rec.GAVE_UP))
    return {
        "total": total,
        "succeeded": ok,
        "failed": failed,
        "unfinished": total - ok - failed,
        "success_rate": _ratio(ok, total),
    }


def attempt_counts(
    attempts: np.ndarray, calls: np.ndarray, names: tuple[str, ...] = CODE_NAMES
) -> AttemptCounts:
    """total, retries, retry_rate (share of calls that needed a retry), mean and max per call;
    ``sent`` (reached the dependency) and ``refused`` (a circuit breaker refused them).

    A refused attempt is one of its call's attempts (it used one of ``max_attempts``, and
    ``total``, ``mean_per_call`` and ``max_per_call`` count it) but it was never sent: the load
    metrics (:func:`load`, the timeline, the jitter spread) count ``sent`` attempts only.
    """
    total = len(attempts)
    per_call = calls["attempts"].astype(np.int64)
    refused = int(refused_mask(attempts, names).sum())
    return {
        "total": total,
        "retries": int(np.sum(attempts["attempt"] > 1)),
        "retry_rate": _ratio(int(np.sum(per_call > 1)), len(calls)),
        "mean_per_call": float(per_call.mean()) if len(calls) else None,
        "max_per_call": int(per_call.max()) if len(calls) else 0,
        "sent": total - refused,
        "refused": refused,
    }


def retry_success_rate(calls: np.ndarray) -> float | None:
    """Share of calls that needed a retry and eventually succeeded (None if none retried)."""
    retried = calls["attempts"] > 1
    return _ratio(int(np.sum(retried & (calls["outcome"] == rec.SUCCEEDED))), int(retried.sum()))


def call_latencies(calls: np.ndarray) -> np.ndarray:
    """Seconds from a call's start to its end, for every finished call (succeeded or failed)."""
    done = calls["outcome"] != rec.UNFINISHED
    return np.asarray(calls["end"][done] - calls["start"][done], dtype=np.float64)


def latency(calls: np.ndarray) -> Latency:
    """mean, p50, p95, p99 and max of per-call latency (finished calls)."""
    values = call_latencies(calls)
    if not len(values):
        return cast(Latency, {"mean": None, **{f"p{p}": None for p in PERCENTILES}, "max": None})
    pcts = np.percentile(values, PERCENTILES)
    return cast(
        Latency,
        {
            "mean": float(values.mean()),
            **{f"p{p}": float(v) for p, v in zip(PERCENTILES, pcts, strict=True)},
            "max": float(values.max()),
        },
    )


def latency_quantiles(calls: np.ndarray) -> list[float]:
    """Per-call latency at every whole percentile 0..100 (101 values): a compact CDF."""
    values = call_latencies(calls)
    if not len(values):
        return []
    return [float(v) for v in np.percentile(values, np.arange(101))]


#: The latency figures ``latency_overhead`` subtracts: the percentiles, then the worst call.
_OVERHEAD_KEYS: tuple[Literal["p50", "p95", "p99", "max"], ...] = ("p50", "p95", "p99", "max")


def latency_overhead(with_faults: Latency, without_faults: Latency) -> LatencyOverhead:
    """Percentiles and max with faults minus the same of the same run without faults.

    ``max`` is there because the worst call is what a timeout budget must cover; a summary
    without it (cached before it was added) gives None for it rather than failing.
    """
    out: LatencyOverhead = {"p50": None, "p95": None, "p99": None, "max": None}
    for key in _OVERHEAD_KEYS:
        a, b = with_faults.get(key), without_faults.get(key)
        out[key] = None if a is None or b is None else a - b
    return out


def retry_wait(attempts: np.ndarray, calls: np.ndarray) -> RetryWait:
    """Seconds spent waiting between attempts: in total, and per call."""
    waits = attempts["wait"][~np.isnan(attempts["wait"])]
    total = float(waits.sum())
    return {"total": total, "mean_per_call": total / len(calls) if len(calls) else None}


def failures_by_type(attempts: np.ndarray, names: tuple[str, ...]) -> dict[str, int]:
    """Failed attempts per error name (client timeouts count as TimeoutError). An answer the
    policy took as its call's result (an ok attempt recorded under ``result:<value>``) is none."""
    counts = np.bincount(attempts["error"][attempts["outcome"] != rec.OK], minlength=len(names))
    return {names[code]: int(n) for code, n in enumerate(counts) if code and n}


def final_errors(calls: np.ndarray, names: tuple[str, ...]) -> dict[str, int]:
    """Calls that gave up, per the error they gave up on."""
    failed = calls["error"][calls["outcome"] == rec.GAVE_UP]
    counts = np.bincount(failed, minlength=len(names))
    return {names[code]: int(n) for code, n in enumerate(counts) if code and n}


def duplicates(calls: np.ndarray) -> int:
    """Executions beyond the first per call: the work a non-idempotent operation would repeat."""
    return int(np.maximum(calls["executions"].astype(np.int64) - 1, 0).sum())


def wasted_work(attempts: np.ndarray) -> int:
    """Requests the server executed although their client had stopped waiting for them."""
    return int(np.sum((attempts["executed"] == 1) & (attempts["outcome"] != rec.OK)))


def retry_starts(attempts: np.ndarray) -> np.ndarray:
    """Start times of retries (attempt 2 and later), sorted."""
    return np.sort(attempts["start"][attempts["attempt"] > 1])


def peak_window_share(times: np.ndarray, window: float = SPREAD_WINDOW) -> float | None:
    """The largest share of ``times`` inside any window of ``window`` seconds (sliding).

    1.0 means every retry landed within 100 ms of each other (perfectly synchronised);
    small values mean the retries were spread out.
    """
    if not len(times):
        return None
    times = np.sort(times)
    inside = np.searchsorted(times, times + window, side="left") - np.arange(len(times))
    return float(inside.max() / len(times))


def jitter_spread(attempts: np.ndarray, bins: int = 60) -> JitterSpread:
    """Histogram of retry start times and the peak share of retries in any 100 ms window."""
    starts = retry_starts(attempts)
    if not len(starts):
        return {
            "retries": 0,
            "peak_share_100ms": None,
            "first_retry_peak_share_100ms": None,
            "edges": [],
            "counts": [],
        }
    lo, hi = float(starts[0]), float(starts[-1])
    if hi - lo < SPREAD_WINDOW:
        hi = lo + SPREAD_WINDOW
    counts, edges = np.histogram(starts, bins=bins, range=(lo, hi))
    first = attempts["start"][attempts["attempt"] == 2]
    return {
        "retries": len(starts),
        "peak_share_100ms": peak_window_share(starts),
        "first_retry_peak_share_100ms": peak_window_share(first),
        "edges": [float(e) for e in edges],
        "counts": [int(c) for c in counts],
    }


def summarize(
    result: RunResult,
    baseline: RunResult | None = None,
    wall_time: float | None = None,
    *,
    baseline_latency: Latency | None = None,
) -> ResultDocument:
    """The result document (``retrysim run --json``); its shape is typed and versioned in
    :mod:`retrysim.results.document`.

    ``baseline`` is the same scenario and seed without faults; with it, ``latency_overhead``
    is filled in. The baseline enters the document only through ``latency(baseline.calls)``,
    so ``baseline_latency`` (that summary, computed earlier) gives the same document without
    keeping the baseline's records: it is what :func:`retrysim.runs.runner.run` caches.
    """
    if baseline is not None and baseline_latency is not None:
        raise TypeError("pass baseline or baseline_latency, not both")
    attempts, calls, names = result.attempts, result.calls, result.error_names
    lat = latency(calls)
    if baseline is not None:
        baseline_latency = latency(baseline.calls)
    scenario = result.scenario
    from retrysim.model.scenario import arrival_windows, fault_windows
    from retrysim.results import facts
    from retrysim.results.diagnose import diagnose

    faults = cast(list[FaultWindow], fault_windows(scenario))
    policy_facts = facts.policy_facts(scenario, result.policy)
    down = facts.downtime(faults)
    sent = ~refused_mask(attempts, names)  # the attempts that reached the dependency
    budget_ended = budget_refused_calls(
        calls, result.guard_events, names, int(result.policy["max_attempts"])
    )
    tl = timeline(attempts, calls, bin_width(result.end_time), sent=sent)
    doc: ResultDocument = {
        "schema_version": SCHEMA_VERSION,
        "scenario": scenario.name,
        "source": scenario.name,  # the CLI puts what it was given: a bundled name or a path
        "description": scenario.description,
        "seed": result.seed,
        "profile": result.policy["profile"],
        "settings": cast(Settings, result.policy),
        "calls": call_counts(calls),
        "attempts": attempt_counts(attempts, calls, names),
        "retry_success_rate": retry_success_rate(calls),
        "latency": lat,
        "latency_quantiles": latency_quantiles(calls),
        "latency_overhead": (
            latency_overhead(lat, baseline_latency) if baseline_latency is not None else None
        ),
        "retry_wait": retry_wait(attempts, calls),
        "failures_by_type": failures_by_type(attempts, names),
        "final_errors": final_errors(calls, names),
        "load": load(attempts[sent], calls, result.capacity),
        "jitter_spread": jitter_spread(attempts[sent]),
        "duplicates": duplicates(calls),
        "wasted_work": wasted_work(attempts),
        "timeline": tl,
        "faults": faults,
        "clients": facts.clients(scenario),
        "policy_facts": policy_facts,
        "give_ups": facts.give_ups(
            calls, names, policy_facts["retried_errors"], down, budget_ended
        ),
        "outages": facts.outages(attempts, down),
        "arrival_windows": cast(list[ArrivalWindow], arrival_windows(scenario.clients.arrival)),
        "virtual_time": result.end_time,
        "wall_time": result.wall_time if wall_time is None else wall_time,
        "events": result.events,
        "engine": result.engine,
        "engine_note": result.engine_note,
        "stopped": result.stopped,
        "recovery": None,
        "diagnoses": [],
    }
    doc["recovery"] = facts.recovery(doc)
    if result.connections is not None:  # present only when the scenario models connections
        from retrysim.results.connection_metrics import connections_section

        doc["connections"] = connections_section(scenario, result.connections, attempts, sent)
    guards = guards_section(result, tl["bin_width"], len(tl["goodput_per_s"]))
    if guards is not None:  # present only when a mechanism is on (or a guard acted)
        doc["guards"] = guards
    _add_graph_sections(doc, result, tl["bin_width"], len(tl["goodput_per_s"]))
    doc["diagnoses"] = diagnose(doc)
    plain = cast(dict[str, object], doc)
    plain["diagnoses"] = plain.pop("diagnoses")  # last, after the optional sections, as always
    return doc


def _add_graph_sections(doc: ResultDocument, result: RunResult, width: float, bins: int) -> None:
    """``tiers`` when the scenario has tiers, ``replicas`` when a service has several (each
    absent otherwise, so a one-tier document keeps its shape)."""
    from retrysim.results.hedging import hedging_section
    from retrysim.results.replicas import replicas_section
    from retrysim.results.tiers import tiers_section

    tiers = tiers_section(result, width, bins)
    if tiers:
        doc["tiers"] = tiers
    replicas = replicas_section(result, width, bins)
    if replicas:
        doc["replicas"] = replicas
    if tiers:
        bottom = tiers[-1]
        doc["graph"] = {
            "bottom": bottom["name"],
            "bottom_requests_per_call": bottom["attempts_per_call"],
            "bottom_max_per_call": bottom["max_attempts_per_call"],
            "bottom_peak_over_capacity": bottom["peak_over_capacity"],
            "wasted_requests": sum(tier["wasted_attempts"] for tier in tiers),
        }
    hedging = hedging_section(result)
    if hedging is not None:
        doc["hedging"] = hedging


#: Name -> how to read it from a result document, derived from the one table in
#: retrysim.results.metric_table.
METRICS: dict[str, Read] = {m.name: m.read for m in METRIC_TABLE}

#: Metrics where a larger value is better, for highlighting the best variant.
HIGHER_IS_BETTER: frozenset[str] = frozenset(m.name for m in METRIC_TABLE if m.better == "higher")


def metric(document: ResultDocument, name: str) -> float | None:
    """Look up a named metric (see ``retrysim.results.metric_table``) in a result document.

    A missing section (``latency_overhead`` without a baseline, ``guards`` of a run with no
    resilience mechanism) or value reads as None; an unknown name is a KeyError, and so is a
    missing key anywhere else (a damaged document).
    """
    about = metric_table.get(name)
    try:
        value = about.read(document)
    except KeyError:
        if about.optional:
            return None
        raise
    return None if value is None else float(value)


def table_metrics(names: Sequence[str], documents: Iterable[ResultDocument]) -> list[str]:
    """``names`` plus the rows a table shows only when they say something for these runs.

    ``goodput_recovery`` when some run could be judged for it; with a resilience mechanism on
    in some run, each of ``GUARD_TABLE_METRICS`` that some run has a value for
    (``attempts_sent`` only when a breaker refused attempts, when it differs from the attempts).
    What compare, sweep and the shell's diff show unless told which metrics to show.
    """
    docs = list(documents)
    extra = []

    def some(name: str) -> bool:
        return any(metric(d, name) for d in docs if d is not None)

    if any(metric(d, "goodput_recovery") is not None for d in docs):
        extra.append("goodput_recovery")
    if any("graph" in d for d in docs):
        extra.extend(metric_table.GRAPH_TABLE_METRICS)
    if any(d.get("hedging", {}).get("enabled") for d in docs):
        extra.extend(metric_table.HEDGE_TABLE_METRICS)
    if any("guards" in d for d in docs):
        for name in metric_table.GUARD_TABLE_METRICS:
            shown = (
                some("breaker_refused")
                if name == "attempts_sent"
                else any(metric(d, name) is not None for d in docs)
            )
            if shown:
                extra.append(name)
    return [*names, *(name for name in extra if name not in names)]


def _ratio(num: int, den: int) -> float | None:
    return None if den == 0 else num / den
