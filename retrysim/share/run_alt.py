"""The text alternatives of a run's figures: the numbers each figure shows, said in words.

A reader who cannot see a figure (a screen reader, a colour-blind reader unsure of a shade, a
printed page in grey) gets what it is drawn to show: the success rate and the busiest moment
of the timeline, how tightly retries bunch, the latency quantiles, the amplification by tier,
the replicas a fault hit. Each is a pure function of the result document.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from retrysim.render.verdict import spread_word
from retrysim.safe import visible

if TYPE_CHECKING:
    from retrysim.results.document import ResultDocument


def percent(share: float | None) -> str:
    """``93.1%`` (``–`` when unknown)."""
    return "–" if share is None else f"{100 * share:.1f}%"


def seconds(value: float | None) -> str:
    """``4.2 s``, ``0.035 s``: three significant figures at most."""
    if value is None:
        return "–"
    return f"{value:,.1f} s" if abs(value) >= 10 else f"{value:.3g} s"


def rate(value: float) -> str:
    """``1,240/s``."""
    return f"{value:,.0f}/s"


def timeline(doc: ResultDocument) -> str:
    """``Success 93.1%; p99 latency 4.2 s; attempts peak at 10,000/s at 0 s; retries peak
    at 1,240/s at 31 s; 2 fault windows (outage 10-25 s)``."""
    parts = [
        f"Success {percent(doc['calls']['success_rate'])}",
        f"p99 latency {seconds(doc['latency']['p99'])}",
    ]
    tl = doc["timeline"]
    series: Sequence[Sequence[float]] = tl["attempts_per_s"]
    width = float(tl["bin_width"])
    if series and series[0]:
        totals = [sum(column) for column in zip(*series, strict=True)]
        parts.append(f"attempts peak at {_peak(totals, width)}")
        if len(series) > 1:
            retries = [sum(column) for column in zip(*series[1:], strict=True)]
            if max(retries) > 0:
                parts.append(f"retries peak at {_peak(retries, width)}")
            else:
                parts.append("no retries")
    load = doc["load"]
    capacity = load.get("capacity")
    if capacity:
        parts.append(f"capacity {rate(capacity)}")
    faults = doc.get("faults") or []
    if faults:
        parts.append(_faults_text(faults))
    return "; ".join(parts) + "."


def _peak(values: Sequence[float], width: float) -> str:
    at = max(range(len(values)), key=lambda i: values[i])
    return f"{rate(values[at])} at {at * width:g} s"


def _faults_text(faults: Sequence[Mapping[str, Any]]) -> str:
    shown = []
    for fault in faults[:4]:
        end = fault.get("end")
        until = "the end" if end is None else f"{float(end):g} s"
        shown.append(
            f"{visible(str(fault.get('kind', 'fault')))} {float(fault['start']):g} s to {until}"
        )
    more = f" and {len(faults) - 4} more" if len(faults) > 4 else ""
    noun = "fault window" if len(faults) == 1 else "fault windows"
    return f"{len(faults)} {noun}: " + ", ".join(shown) + more


def spread(doc: ResultDocument) -> str:
    """``1,240 retries; 31.0% of them start within the busiest 100 ms (synchronised)``."""
    data = doc["jitter_spread"]
    if not data["retries"]:
        return "No retries started in this run."
    share = data["peak_share_100ms"]
    text = f"{data['retries']:,} retries"
    if share is not None:
        text += f"; {percent(share)} of them start within the busiest 100 ms ({spread_word(share)})"
    first = data.get("first_retry_peak_share_100ms")
    if first is not None:
        text += f"; first retries alone {percent(first)}"
    return text + "."


def cdf(doc: ResultDocument) -> str:
    """``Half the calls finish within 0.2 s, 95% within 3.1 s, 99% within 4.2 s; the
    slowest 9.8 s``."""
    latency = doc["latency"]
    if latency.get("p50") is None:
        return "No call finished."
    return (
        f"Half the calls finish within {seconds(latency['p50'])}, 95% within "
        f"{seconds(latency['p95'])}, 99% within {seconds(latency['p99'])}; the slowest "
        f"{seconds(latency['max'])}."
    )


def tiers(doc: ResultDocument) -> str:
    """Each tier's busiest second against its capacity, top first."""
    parts = []
    for tier in doc.get("tiers") or []:
        text = f"{visible(tier['name'])} peaks at {rate(tier['peak_attempts_per_s'])}"
        over = tier.get("peak_over_capacity")
        if over is not None:
            text += f" ({over:.2f}x its capacity)"
        parts.append(text)
    return "Requests per second by tier, top first: " + "; ".join(parts) + "."


def amplification(doc: ResultDocument) -> str:
    """Each tier's requests per user call, against the most its callers allow."""
    parts = []
    for tier in doc.get("tiers") or []:
        per_call = tier.get("attempts_per_call")
        text = f"{visible(tier['name'])} {'–' if per_call is None else f'{per_call:.2f}'}"
        most = tier.get("max_attempts_per_call")
        if most is not None:
            text += f" (at most {most})"
        parts.append(text)
    return "Requests per user call by tier, top first: " + "; ".join(parts) + "."


def replicas(doc: ResultDocument) -> str:
    """Each replica's requests and the share that failed."""
    parts = []
    for row in doc.get("replicas") or []:
        tier = f"{visible(str(row['tier']))} " if row.get("tier") else ""
        parts.append(
            f"{tier}replica {row['replica']}: {row['attempts']:,} requests, "
            f"{percent(row['failure_rate'])} failed"
        )
    return "Requests by replica: " + "; ".join(parts) + "."
