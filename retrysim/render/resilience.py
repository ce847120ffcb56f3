"""The run report's view of the resilience mechanisms: which are on, and what they did.

Three pieces, each reading only the result document (its ``settings``, ``sources`` and
``guards``), so a saved ``result.json`` reads like a fresh run: the header's line saying which
mechanisms are on with the knobs that shape them and where each came from; the "Resilience"
table (breaker opens, time open, refusals; budget refusals; limiter delays); and the marks the
terminal timeline puts on each row (breakers open, refusals per second).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.table import Table

from retrysim.results.document import ResultDocument
from retrysim.results.sections import Guards
from retrysim.safe import visible

#: Marks in the terminal timeline: most breakers open (or the fleet's), some open.
OPEN_MARK, SOME_OPEN_MARK = "⊘", "◔"
#: A bucket counts as open when at least this share of breakers was open (time-weighted).
MOSTLY_OPEN = 0.5


def mechanisms_on(settings: Mapping[str, Any]) -> list[str]:
    """The mechanisms on in ``settings`` (see
    :func:`retrysim.results.guard_metrics.mechanisms_on`)."""
    from retrysim.results.guard_metrics import mechanisms_on as on

    return on(settings)


def _shown_knobs(mechanism: str, knobs: Mapping[str, Any]) -> list[str]:
    """The knobs that shape a mechanism as configured (a ratio budget's tokens do not)."""
    if mechanism == "breaker":
        shown = ["mode"] if knobs.get("mode", "calls") != "calls" else []
        if knobs.get("failure_threshold"):
            shown.append("failure_threshold")
        if knobs.get("failure_rate"):
            shown.append("failure_rate")
            shown += ["window_seconds"] if knobs.get("window_seconds") else ["window"]
            shown.append("minimum_calls")
        shown += ["recovery_timeout", "half_open_probes"]
        if knobs.get("name"):
            shown.append("name")
        return [*shown, "scope"]
    if mechanism == "budget":
        shown = []
        if knobs.get("enabled"):
            shown.append("kind")
            if knobs.get("kind") == "ratio":
                shown += ["percent", "min_retries_per_second", "window"]
                if knobs.get("initial_allowance"):
                    shown.append("initial_allowance")
            elif knobs.get("kind") == "quota":
                shown += ["quota_capacity", "retry_cost", "timeout_retry_cost", "success_refund"]
            else:
                shown += ["max_tokens", "token_ratio"]
            shown.append("scope")
        if knobs.get("max_total_time") is not None:
            shown.append("max_total_time")
        return shown
    shown = ["window", "max_factor"] if knobs.get("enabled") else []
    if knobs.get("limiter"):
        shown += ["limiter_beta", "limiter_scale", "limiter_min_rate"]
    return [*shown, "scope"]


#: The switch that turns each part on: adaptive holds two (backoff and the send-rate limiter).
_SWITCHES = {
    "breaker": (("breaker", "enabled"),),
    "budget": (("budget", "enabled"),),
    "adaptive": (("adaptive backoff", "enabled"), ("rate limiter", "limiter")),
}


def mechanism_parts(settings: Mapping[str, Any], sources: Mapping[str, str] | None) -> list[str]:
    """One ``name on (source): knob=value (source), ...`` per mechanism that is on; a knob set
    anywhere but its default is always listed, so nothing the user changed is hidden."""
    on = set(mechanisms_on(settings))
    where = sources or {}
    parts = []
    for mechanism, switches in _SWITCHES.items():
        knobs = settings.get(mechanism)
        if not isinstance(knobs, Mapping):
            continue
        if not (mechanism in on or (mechanism == "adaptive" and "limiter" in on)):
            continue
        names = []
        for title, switch in switches:
            if knobs.get(switch):
                source = where.get(f"{mechanism}.{switch}")
                names.append(f"{title} on" + (f" ({source})" if source else ""))
        label = " + ".join(names) or mechanism  # a per-call budget alone: max_total_time
        flags = {switch for _, switch in switches}
        shown = _shown_knobs(mechanism, knobs)
        changed = [
            knob
            for knob in knobs
            if knob not in shown
            and knob not in flags
            and where.get(f"{mechanism}.{knob}", "default") != "default"
        ]
        words = []
        for knob in [*shown, *changed]:
            source = where.get(f"{mechanism}.{knob}")
            words.append(f"{knob}={knobs[knob]}" + (f" ({source})" if source else ""))
        parts.append(f"{label}: {', '.join(words)}")
    return parts


def mechanisms_line(settings: Mapping[str, Any], sources: Mapping[str, str] | None) -> str:
    """The header's line: which mechanisms are on and how, or that none is."""
    parts = mechanism_parts(settings, sources)
    if not parts:
        if not any(isinstance(settings.get(m), Mapping) for m in _SWITCHES):
            return ""  # a document from before the mechanisms existed
        return "resilience: breaker, budget and adaptive backoff off"
    return visible("resilience: " + "; ".join(parts))


def _num(value: float | None, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, int) or (float(value).is_integer() and not unit):
        return f"{value:,.0f}{unit}"
    return f"{value:,.{digits}f}{unit}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def resilience_table(doc: ResultDocument) -> Table | None:
    """What the mechanisms did: None when the run had none on (the report then skips it)."""
    guards = doc.get("guards")
    if not guards:
        return None
    table = Table(title="Resilience", title_justify="left", show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_column(style="dim")
    breaker = guards.get("breaker")
    if breaker is not None:
        fleet = breaker["scope"] == "fleet"
        whose = "the fleet's breaker" if fleet else "breakers (one per client)"
        times = "time" if breaker["opened"] == 1 else "times"
        table.add_row(
            "breaker opened",
            _num(breaker["opened"]),
            f"{times}, {whose}; closed {breaker['closed']:,}, half-open {breaker['half_open']:,}",
        )
        note = "in all" if fleet else "summed over breakers"
        if breaker.get("peak_open_clients") is not None:
            note += f"; at most {breaker['peak_open_clients']:,} clients' open at once"
        if breaker.get("open_at_end"):
            note += f"; {breaker['open_at_end']:,} still open at the end"
        table.add_row("breaker open", _num(breaker["open_seconds"], "s"), note)
        table.add_row(
            "refused by breaker",
            _num(breaker["refused"]),
            f"attempts never sent (CircuitOpen); {breaker['calls_refused']:,} calls ended on one",
            style="bold yellow" if breaker["refused"] else "",
        )
    budget = guards.get("budget")
    if budget is not None:
        share = budget["refused_share"]
        table.add_row(
            "refused by budget",
            _num(budget["refused"]),
            f"retries ({_pct(share)} of {budget['retries_asked']:,} asked); each ended its call",
            style="bold yellow" if budget["refused"] else "",
        )
    limiter = guards.get("limiter")
    if limiter is not None:
        table.add_row(
            "delayed by limiter",
            _num(limiter["delays"]),
            f"sends held back {_num(limiter['delayed_seconds'], 's')} in all, "
            f"{_num(limiter['mean_delay'], 's', 3)} each; {limiter['throttles']:,} throttles",
        )
        if limiter.get("last_rate") is not None:
            table.add_row(
                "limiter rate", _num(limiter["last_rate"], "/s", 2), "set at last throttle"
            )
    if not table.row_count:
        return None
    return table


def guards_verdict(doc: ResultDocument) -> str | None:
    """A clause for the verdict line: what the mechanisms did, in the fewest words."""
    guards = doc.get("guards")
    if not guards:
        return None
    said = []
    breaker = guards.get("breaker")
    if breaker is not None and breaker["opened"]:
        times = "once" if breaker["opened"] == 1 else f"{breaker['opened']:,} times"
        said.append(f"breakers opened {times} and refused {breaker['refused']:,} attempts")
    budget = guards.get("budget")
    if budget is not None and budget["refused"]:
        said.append(f"the budget refused {budget['refused']:,} retries")
    limiter = guards.get("limiter")
    if limiter is not None and limiter["delays"]:
        said.append(f"the limiter delayed {limiter['delays']:,} sends")
    return ", ".join(said) if said else None


def timeline_marks(doc: ResultDocument, lo: int, hi: int) -> tuple[str, str, str]:
    """For timeline bins ``lo`` to ``hi`` (one terminal row): the breaker mark (``⊘`` mostly
    open, ``◔`` some open, a space), its style, and a note of what was refused (``✗``) or
    held back per second: ``breaker ✗140 budget ✗38/s``."""
    guards: Guards | dict[str, Any] = doc.get("guards") or {}
    n = max(1, hi - lo)

    def mean(series: list[float] | None) -> float:
        return sum((series or [])[lo:hi]) / n

    mark, style = " ", ""
    notes = []
    breaker = guards.get("breaker")
    if breaker is not None:
        share = mean(breaker.get("open_share"))
        if share >= MOSTLY_OPEN:
            mark, style = OPEN_MARK, "bold magenta"
        elif share > 0:
            mark, style = SOME_OPEN_MARK, "magenta"
        refused = mean(breaker.get("refused_per_s"))
        if refused:
            notes.append(f"breaker ✗{refused:,.0f}")
    budget = guards.get("budget")
    if budget is not None and (refused := mean(budget.get("refused_per_s"))):
        notes.append(f"budget ✗{refused:,.0f}")
    limiter = guards.get("limiter")
    if limiter is not None and (delayed := mean(limiter.get("delays_per_s"))):
        notes.append(f"held {delayed:,.0f}")
    return mark, style, (" " + " ".join(notes) + "/s") if notes else ""


#: Room the notes of :func:`timeline_marks` take at most, so the bars leave it free.
NOTES_WIDTH = 34


def timeline_legend(doc: ResultDocument) -> list[tuple[str, str]]:
    """Legend entries the marks above need (none without a mechanism)."""
    guards: Guards | dict[str, Any] = doc.get("guards") or {}
    entries = []
    breaker = guards.get("breaker")
    if breaker is not None:
        if breaker["scope"] == "fleet":
            entries.append((f"  {OPEN_MARK} breaker open", "bold magenta"))
            entries.append((f" {SOME_OPEN_MARK} part of the row", "magenta"))
        else:
            entries.append((f"  {OPEN_MARK} most breakers open", "bold magenta"))
            entries.append((f" {SOME_OPEN_MARK} some", "magenta"))
    if guards.get("breaker") or guards.get("budget"):
        entries.append(("  ✗ refused/s", "yellow"))
    if guards.get("limiter"):
        entries.append(("  held: sends delayed/s", "yellow"))
    return entries
