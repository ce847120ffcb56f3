"""Diagnoses: what went wrong in a run, in the words of the spec's Troubleshooting guide.

A pure function of the result document (:func:`diagnose`), so a saved ``result.json`` gets the
same advice as a fresh run, and each rule can be checked on a tiny hand-made document. Each
diagnosis is defined once, as a rule in :data:`RULES` (the registry), the way tenacity defines
each strategy once: its id, title and Troubleshooting section are declared with the function
that looks for it. A rule returns a :class:`Finding` (the evidence from this run, with what
each figure counts, and the change to try, as exact settings) or None.

Settings are suggested as data (:class:`Suggestion`): the policy option, its value, the
``RETRY__*`` line that sets it in production (built by ``retrysim.retry.settings.env_name`` for
the scenario's operation) and the ``--set`` that tries it in the simulator. A resilience
mechanism is suggested the same way, by its ``enabled`` knob (``--set policy.budget.enabled=true``,
``RETRY__API_BUDGET_ENABLED=true``), and only where it helps with what the rule found and is not
on already.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, cast

from retrysim.names import MAX_ATTEMPTS_LIMIT
from retrysim.results import diagnose_graph, diagnose_tail
from retrysim.results.facts import downtime, recovery
from retrysim.results.findings import Finding as Finding
from retrysim.results.findings import Suggestion as Suggestion
from retrysim.results.findings import suggest as suggest
from retrysim.results.sections import Diagnosis as DiagnosisData
from retrysim.results.sections import Severity as Severity

if TYPE_CHECKING:
    from retrysim.results.document import ResultDocument

#: Troubleshooting sections of the spec (retry-mechanism.txt), as its headings spell them.
TOO_MANY = "Too Many Retries"
NOT_WORKING = "Retries Not Working"
HERD = "Thundering Herd"
NON_IDEMPOTENT = "Non-Idempotent Operations"

# Thresholds, each with why it is where it is.
#: Share of retries (or of first retries) in the busiest 100 ms at or above which the fleet
#: retries in lockstep; the report's spread verdict uses the same numbers.
SYNCHRONISED_SHARE = 0.2
BUNCHED_SHARE = 0.05
#: Fewer retries than this say nothing about synchronisation (10 retries in 100 ms is noise).
MIN_RETRIES_FOR_SPREAD = 20
#: Peak attempts per second over the server's capacity above which load exceeded it, and
#: above which that is severe (half as much again as the server can serve).
OVER_CAPACITY = 1.0
FAR_OVER_CAPACITY = 1.5
#: Goodput after the last disturbance below this share of goodput before it (or of the
#: offered load) means the fleet did not recover: a metastable failure.
METASTABLE_RATIO = 0.5
#: Share of calls above which a problem that hits some calls is high severity.
HIGH_SHARE = 0.01


@dataclass(frozen=True)
class Diagnosis:
    """A finding with its rule's identity; :meth:`as_dict` is its form in the document."""

    id: str
    title: str
    section: str
    severity: Severity
    evidence: str
    figures: dict[str, Any]
    suggestion: str
    settings: tuple[Suggestion, ...] = field(default_factory=tuple)

    def as_dict(self) -> DiagnosisData:
        data = asdict(self)
        data["settings"] = [asdict(s) for s in self.settings]
        return cast(DiagnosisData, data)


Check = Callable[["ResultDocument"], Finding | None]


@dataclass(frozen=True)
class Rule:
    """A diagnosis, defined once: its id, title, Troubleshooting section and its check."""

    id: str
    title: str
    section: str
    check: Check

    def __call__(self, doc: ResultDocument) -> Diagnosis | None:
        found = self.check(doc)
        if found is None:
            return None
        return Diagnosis(self.id, self.title, self.section, **vars(found))


#: The registry, in the order diagnoses are reported.
RULES: list[Rule] = []


def rule(id: str, title: str, section: str) -> Callable[[Check], Check]:
    """Register a check as a diagnosis (a decorator, so each is declared where it is written)."""

    def register(check: Check) -> Check:
        RULES.append(Rule(id, title, section, check))
        return check

    return register


def diagnose(doc: ResultDocument) -> list[DiagnosisData]:
    """Every diagnosis that fires on ``doc``, as plain data (the document's ``diagnoses``).

    High severity first, then registry order. A rule whose facts the document lacks (an old
    saved document) does not fire.
    """
    found: list[Diagnosis] = []
    for each in RULES:
        try:
            result = each(doc)
        except KeyError:
            continue  # a document from before the facts it needs were recorded
        if result is not None:
            found.append(result)
    found.sort(key=lambda d: d.severity != "high")
    return [d.as_dict() for d in found]


# --- helpers -----------------------------------------------------------------------------------

#: Options that ``RETRY__<OPERATION>_<OPTION>`` sets, and those ``RETRY__<OPTION>`` sets.


def _mechanism_suggestions(doc: ResultDocument, *mechanisms: str) -> tuple[Suggestion, ...]:
    """Turning on each of ``mechanisms`` that was off in this run and would act in it.

    A breaker or budget learns from the traffic of the client it belongs to (its default
    scope): it is suggested only when the run's clients made enough attempts each to teach it,
    as many as the failures that open a breaker or empty a token budget to half. A fleet that
    makes one call of three attempts per client would never see one act. A document from
    before the mechanisms existed gets no such suggestion.
    """
    found = []
    for name in mechanisms:
        knobs = doc["settings"].get(name)
        if not isinstance(knobs, dict) or knobs.get("enabled"):
            continue
        per_client = doc["attempts"]["total"] / (doc["clients"]["count"] or 1)
        if per_client >= _attempts_to_act(name, knobs):
            found.append(suggest(doc, f"{name}.enabled", True))
    return tuple(found)


def _attempts_to_act(mechanism: str, knobs: dict[str, Any]) -> float:
    """Attempts one client must make before ``mechanism`` (with these knobs) can act."""
    if mechanism == "breaker":
        threshold = int(knobs.get("failure_threshold") or 0)
        return threshold if threshold else int(knobs.get("minimum_calls") or 1)
    if knobs.get("kind", "tokens") == "tokens":
        return float(knobs.get("max_tokens", 10.0)) / 2
    return float(knobs.get("min_retries_per_second", 0.0)) * float(knobs.get("window", 0.0))


def _n(count: float) -> str:
    return f"{count:,.0f}"


def _pct(share: float) -> str:
    return f"{100 * share:.1f}%"


def _s(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 100 else f"{seconds:,.0f} s"


def _share(part: float, doc: ResultDocument) -> float:
    total = doc["calls"]["total"]
    return part / total if total else 0.0


# --- the diagnoses -----------------------------------------------------------------------------


@rule("synchronised_retries", "Retries arrive in lockstep", HERD)
def _synchronised(doc: ResultDocument) -> Finding | None:
    spread = doc["jitter_spread"]
    if spread["retries"] < MIN_RETRIES_FOR_SPREAD:
        return None
    share = spread["peak_share_100ms"] or 0.0
    first = spread["first_retry_peak_share_100ms"] or 0.0
    if max(share, first) < SYNCHRONISED_SHARE:
        return None
    lo, hi = doc["policy_facts"]["wait_ranges"][0]
    settings = doc["settings"]
    if lo == hi:
        cause = f"the policy's first wait is exactly {lo:g} s for every call"
        if settings["profile"] != "documented":
            change = [suggest(doc, "profile", "documented")]
            advice = "Use a profile with jitter: `documented` adds up to `jitter` seconds."
        else:
            change = [suggest(doc, "jitter", 1.0)]
            advice = "Add jitter, so each call's first wait differs."
    else:
        cause = f"the first wait spans only {lo:g}–{hi:g} s"
        if settings["profile"] == "documented":
            wider = max(1.0, 2 * float(settings["jitter"]))
            change = [suggest(doc, "jitter", wider)]
            advice = "Widen the jitter so the first retries spread over more time."
        else:
            change = [suggest(doc, "max_wait", 2 * float(settings["max_wait"]))]
            advice = "Increase max_wait, as the guide says: more room for jitter to spread."
    if doc["clients"]["arrival"] == "burst":
        advice += " Staggering instance startup (not all at t=0) helps as much."
    return Finding(
        "high",
        f"{_pct(first)} of first retries and {_pct(share)} of all {_n(spread['retries'])} "
        f"retries started within one 100 ms window: {cause}.",
        {"first_retry_peak_share_100ms": first, "peak_share_100ms": share},
        advice,
        tuple(change),
    )


@rule("load_above_capacity", "Load above the server's capacity", HERD)
def _over_capacity(doc: ResultDocument) -> Finding | None:
    load = doc["load"]
    ratio, capacity = load.get("peak_over_capacity"), load["capacity"]
    if ratio is None or capacity is None or ratio <= OVER_CAPACITY:
        return None  # (a ratio is there only with a capacity)
    retry_share = _retry_share_at_peak(doc)
    figures = {
        "peak_attempts_per_s": load["peak_attempts_per_s"],
        "capacity": load["capacity"],
        "peak_over_capacity": ratio,
        "retry_share_at_peak": retry_share,
    }
    evidence = (
        f"The busiest second had {_n(load['peak_attempts_per_s'])} attempts against a capacity "
        f"of {_n(capacity)}/s ({ratio:.2f}x)"
    )
    settings: tuple[Suggestion, ...] = ()
    if retry_share is not None and retry_share < 0.5:
        share = "none" if retry_share == 0 else _pct(retry_share)
        evidence += f"; {share} of that second's attempts were retries."
        advice = (
            "First tries alone exceed capacity: stagger instance startup or rate-limit callers; "
            "retry settings cannot fix this, only avoid adding to it."
        )
    else:
        if retry_share is not None:
            evidence += f"; {_pct(retry_share)} of that second's attempts were retries."
        else:
            evidence += "."
        budget = _mechanism_suggestions(doc, "budget")
        advice = "Retries add to the overload: spread them over a longer max_wait" + (
            ", or cap them with a retry budget: it refuses retries while most attempts fail "
            "(those calls give up sooner)."
            if budget
            else "."
        )
        settings = (suggest(doc, "max_wait", 2 * float(doc["settings"]["max_wait"])), *budget)
    severity: Severity = "high" if ratio >= FAR_OVER_CAPACITY else "warning"
    return Finding(severity, evidence, figures, advice, settings)


def _retry_share_at_peak(doc: ResultDocument) -> float | None:
    """Share of retries among the attempts of the timeline's busiest bin (None: no timeline)."""
    series = doc.get("timeline", {}).get("attempts_per_s")
    if not series or not series[0]:
        return None
    totals = [sum(s[i] for s in series) for i in range(len(series[0]))]
    peak = max(range(len(totals)), key=totals.__getitem__)
    return None if not totals[peak] else 1 - series[0][peak] / totals[peak]


@rule("metastable", "Goodput never recovered after the disturbance", TOO_MANY)
def _metastable(doc: ResultDocument) -> Finding | None:
    found = recovery(doc)
    if found is None or found["ratio"] >= METASTABLE_RATIO:
        return None
    now, reference = found["goodput_after"], found["goodput_reference"]
    last, start, until = found["disturbance_end"], found["from"], found["until"]
    if found["reference"] == "before":
        began = found["disturbance_start"]
        against = f"{reference:,.1f}/s before the disturbance began at t={began:g} s"
    else:
        against = f"the {reference:,.1f}/s offered"
    attempts = int(doc["settings"]["max_attempts"])
    fewer = max(1, attempts // 2)
    return Finding(
        "high",
        f"Goodput did not recover after {_ended_last(doc, last)} ended at t={last:g} s: "
        f"{now:,.1f}/s for the last {until - start:g} s of arrivals (t={start:g}–{until:g} s), "
        f"against {against}: {_pct(now / reference)} of it. Each attempt's load keeps the "
        "next one failing.",
        {
            "goodput_after": now,
            "goodput_reference": reference,
            "recovery_from": start,
            "recovery_until": until,
        },
        "Retry less, so failed attempts stop feeding the load: fewer attempts, or a retry "
        "budget, which refuses retries while most attempts fail and lets them back as "
        "attempts succeed.",
        (
            *((suggest(doc, "max_attempts", fewer),) if fewer < attempts else ()),
            *_mechanism_suggestions(doc, "budget"),
        ),
    )


def _ended_last(doc: ResultDocument, end: float) -> str:
    """What ended at ``end``, in words: "the outage", "the traffic spike", or both.

    A reader told the fleet "did not recover" needs to know from what: the fault by its kind
    (several of one kind: "the outages"), an arrival-rate step as a traffic spike.
    """
    kinds = list(dict.fromkeys(f["kind"] for f in doc["faults"] if f["end"] == end))
    names = [f"the {kind.replace('_', ' ')}" for kind in kinds]
    if any(s["end"] == end for s in doc["clients"]["spikes"]):
        names.append("the traffic spike")
    if not names:
        return "the last disturbance"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


@rule("not_retried", "Calls gave up on an error the policy does not retry", NOT_WORKING)
def _not_retried(doc: ResultDocument) -> Finding | None:
    errors = doc["give_ups"]["not_retried"]
    total = sum(errors.values())
    if not total:
        return None
    retried = list(doc["policy_facts"]["retried_errors"])
    listed = "; ".join(
        f"{n:,} calls failed on {name}, which this policy never retries"
        for name, n in sorted(errors.items(), key=lambda kv: -kv[1])
    )
    wider = retried + [name for name in sorted(errors) if name not in retried]
    return Finding(
        "high" if _share(total, doc) >= HIGH_SHARE else "warning",
        f"{listed}; the policy retries {', '.join(retried) or 'nothing'}.",
        {"calls": total, "by_error": dict(errors), "retried_errors": retried},
        "If the error is transient, add it to the retried errors (in code: "
        "retry=retry_if_transient(), which knows client libraries' errors, and "
        "register_transient(...) for your own); if it is not, fix its cause rather than retry.",
        (suggest(doc, "retry_on", wider),),
    )


@rule("duplicates", "Retries repeated work the server had already done", NON_IDEMPOTENT)
def _duplicates(doc: ResultDocument) -> Finding | None:
    count = int(doc["duplicates"])
    if not count:
        return None
    timeouts = doc["failures_by_type"].get("TimeoutError", 0)
    evidence = f"The server executed {_n(count)} requests a second time or more"
    if timeouts:
        evidence += (
            f"; {_n(timeouts)} attempts timed out on the client, often after the server had "
            "done the work"
        )
    attempts = int(doc["settings"]["max_attempts"])
    return Finding(
        "high" if _share(count, doc) >= HIGH_SHARE else "warning",
        evidence + ".",
        {"duplicates": count, "timeouts": timeouts, "wasted_work": doc["wasted_work"]},
        "Make the operation idempotent (an idempotency key, or check state before "
        "retrying); until then, retry it less"
        + (" and give it a longer client timeout." if timeouts else "."),
        (suggest(doc, "max_attempts", 2),) if attempts > 2 else (),
    )


@rule("waits_past_outage", "Calls waited longer than the outage lasted", TOO_MANY)
def _waits_past_outage(doc: ResultDocument) -> Finding | None:
    if int(doc["settings"]["max_attempts"]) < 2:
        return None
    first_min = float(doc["policy_facts"]["wait_ranges"][0][0])
    hit = [
        o
        for o in doc["outages"]
        if o["retried_after_end"] and first_min > o["end"] - o["start"] and o["mean_wait_past_end"]
    ]
    if not hit:
        return None
    worst = max(hit, key=lambda o: o["retried_after_end"])
    past = worst["mean_wait_past_end"]
    assert past is not None  # ``hit`` keeps only outages with one
    length = worst["end"] - worst["start"]
    value = max(0.1, round(length / 2, 1))
    return Finding(
        "warning",
        f"The {length:g} s outage (t={worst['start']:g}–{worst['end']:g} s) was shorter than the "
        f"shortest first wait ({first_min:g} s): {_n(worst['retried_after_end'])} retries of "
        f"calls that failed in it started on average {_s(past)} after "
        "it had ended.",
        {
            "outage_seconds": length,
            "first_wait_min": first_min,
            "retried_after_end": worst["retried_after_end"],
            "mean_wait_past_end": worst["mean_wait_past_end"],
        },
        "Start retrying sooner, with a smaller min_wait; the exponential still backs off "
        "for longer outages.",
        (suggest(doc, "min_wait", value),),
    )


@rule("exhausted_during_fault", "Attempts ran out before the outage ended", NOT_WORKING)
def _exhausted(doc: ResultDocument) -> Finding | None:
    count = int(doc["give_ups"]["during_fault"])
    windows = downtime(doc["faults"])
    if not count or not windows:
        return None
    start, end = max(windows, key=lambda w: w[1] - w[0])
    length = end - start
    facts = doc["policy_facts"]
    attempts = int(doc["settings"]["max_attempts"])
    needed = _attempts_to_outlast(facts["wait_ranges"], length)
    evidence = (
        f"{_n(count)} calls gave up while the dependency was still down "
        f"(the longest downtime, t={start:g}–{end:g} s, lasted {length:g} s); "
        f"with {attempts} attempts a call waits at most {_s(facts['worst_case_total_wait'])} "
        f"in all, at least {_s(facts['min_total_wait'])}."
    )
    more = (suggest(doc, "max_attempts", needed),) if needed > attempts else ()
    breaker = _mechanism_suggestions(doc, "breaker")
    settings = (*more, *breaker)
    advice = (
        f"Let retries outlast the outage: {needed} attempts wait at least {length:g} s in all"
        if more
        else "Calls started late in the outage still ran out: raise max_wait or max_attempts"
    ) + (
        ", or fail fast and queue the work for later: a circuit breaker stops calling a "
        "dependency that keeps failing."
        if breaker
        else ", or queue the work for later."
    )
    return Finding(
        "high" if _share(count, doc) >= HIGH_SHARE else "warning",
        evidence,
        {
            "calls": count,
            "downtime_seconds": length,
            "worst_case_total_wait": facts["worst_case_total_wait"],
            "min_total_wait": facts["min_total_wait"],
        },
        advice,
        settings,
    )


def _attempts_to_outlast(wait_ranges: list[list[float]], seconds: float) -> int:
    """Fewest attempts whose shortest possible total wait reaches ``seconds``.

    Past the listed retries every wait is taken as the last listed minimum (each profile's
    waits stop growing at max_wait).
    """
    total, attempts = 0.0, 1
    for lo, _ in wait_ranges:
        if total >= seconds:
            return attempts
        total += lo
        attempts += 1
    last = wait_ranges[-1][0] if wait_ranges else 0.0
    if total < seconds:
        if last <= 0:
            return MAX_ATTEMPTS_LIMIT
        attempts += math.ceil((seconds - total) / last)
    return min(attempts, MAX_ATTEMPTS_LIMIT)


@rule("unfinished_calls", "Calls were still running when the run ended", TOO_MANY)
def _unfinished(doc: ResultDocument) -> Finding | None:
    """Calls neither succeeded nor gave up: every figure of the run describes the others.

    A simulation leaves calls unfinished only when a limit stops it (``limits.max_time`` or
    ``limits.max_events``: the document's ``stopped`` says which); a real run (``retrysim
    chaos``), when its calls are still going a grace period after the scenario's duration,
    most often because one process could not drive its fleet and each attempt waited on its
    own event loop rather than on the service. Either way the success rate counts them as not
    succeeded and the latency figures leave them out, so the run must not read as healthy.
    """
    calls = doc["calls"]
    count = int(calls["unfinished"])
    if not count:
        return None
    share = _share(count, doc)
    evidence = (
        f"{_n(count)} of {_n(calls['total'])} calls ({_pct(share)}) neither succeeded nor gave "
        "up before the run ended: the success rate counts them as not succeeded, and the "
        "latency figures leave them out"
    )
    stopped = doc.get("stopped")
    if doc.get("mode") == "real":
        evidence += (
            f". A real run stops a grace period after the scenario's duration; with "
            f"{_n(doc['clients']['count'])} clients on one process, attempts can wait on its "
            "event loop rather than on the service."
        )
        advice = (
            "Drive fewer clients (retrysim chaos SCENARIO --set clients.count=N), or check "
            "that the service answers within the client timeout."
        )
    elif stopped:
        evidence += f". The run stopped early: {stopped}."
        advice = (
            "Raise the limit that stopped it (--set limits.max_time=SECONDS or "
            "limits.max_events=N), or simulate fewer clients or a shorter duration."
        )
        if "attempts budget" in stopped:  # sim/limits.py: a storm; no knob raises it
            advice = "Give the retries a wait (policy.min_wait) or fewer attempts (max_attempts)."
    else:
        evidence += "."
        advice = "Let the run last until its calls end: a longer limits.max_time."
    return Finding(
        "high" if share >= HIGH_SHARE else "warning",
        evidence,
        {"unfinished": count, "calls": calls["total"], "share": share},
        advice,
    )


# A call graph's and replicated services' (retrysim.results.diagnose_graph).
rule("retry_amplification", "Retries multiply down the tiers", TOO_MANY)(
    diagnose_graph.amplification
)
rule("retries_to_a_sick_replica", "Retries go back to a failing replica", NOT_WORKING)(
    diagnose_graph.sick_replica
)
# A latency tail (retrysim.results.diagnose_tail).
rule("hedge_the_tail", "A tail retries cannot cut", TOO_MANY)(diagnose_tail.hedging)
