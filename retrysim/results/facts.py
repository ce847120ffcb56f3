"""Small facts about a run that the diagnoses and the plain-language report need.

The metrics say *what happened*; reading them as advice also needs *what the policy could have
done* (which errors it retries, how long its waits are) and *what the fleet was asked to do*
(clients, calls each, offered load). Those come from the scenario and the real policy objects,
which a saved result document no longer has, so :func:`retrysim.results.metrics.summarize` puts them
into the document here (keys ``clients``, ``policy_facts`` and ``give_ups``), and
:mod:`retrysim.results.diagnose` stays a pure function of the document.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np

from retrysim.model.scenario import arrival_windows
from retrysim.results.sections import (
    ArrivalWindow,
    Clients,
    FaultWindow,
    GiveUps,
    Outage,
    PolicyFacts,
    Recovery,
)
from retrysim.sim import records as rec
from retrysim.sim.failures import ANSWER_BASE

if TYPE_CHECKING:
    from retrysim.model.scenario import Scenario
    from retrysim.results.document import ResultDocument
    from retrysim.retry.policy import RetryPolicy

#: Retries listed in ``policy_facts.wait_ranges``: enough to prescribe attempts for any
#: outage a bundled or hand-written scenario plausibly has, few enough to keep the document small.
WAIT_RANGE_ROWS = 12


#: Fault kinds during which the dependency is down (or not yet back): what retries must outlast.
DOWN_KINDS = ("outage", "recovery_ramp")


def downtime(faults: Sequence[FaultWindow]) -> list[tuple[float, float]]:
    """Bounded windows when the dependency was down, from the document's ``faults``.

    Back-to-back windows merge (a 15 s restart then 5 s of reconnect errors is one 20 s
    downtime, as a caller sees it); open-ended ones are left out: no retry policy outlasts a
    fault that never ends.
    """
    spans = sorted(
        (float(f["start"]), float(f["end"]))
        for f in faults
        if f["kind"] in DOWN_KINDS and f["end"] is not None
    )
    merged: list[tuple[float, float]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def clients(scenario: Scenario) -> Clients:
    """How the fleet calls: clients, calls each, arrival kind, and the offered load.

    ``offered_rate`` is the steady arrival rate of an open-loop (poisson) fleet and ``spikes``
    its windows of higher rate; ``arrivals_end`` is when new calls stop arriving (the
    scenario's duration unless the arrival says otherwise). A burst or uniform fleet has no
    steady offered load (None).
    """
    spec = scenario.clients
    arrival = spec.arrival
    offered: float | None = None
    spikes: list[ArrivalWindow] = []
    end = float(scenario.duration)
    if arrival.kind == "poisson":
        offered = float(arrival.rate)
        windows = cast(list[ArrivalWindow], arrival_windows(arrival))
        spikes = [w for w in windows if w["rate"] > w["base_rate"]]
        if arrival.end is not None:
            end = min(end, float(arrival.end))
    elif arrival.kind in ("burst", "uniform"):
        end = float(arrival.at if arrival.kind == "burst" else arrival.end)
    return {
        "count": spec.count,
        "calls_per_client": spec.calls_per_client,
        "arrival": arrival.kind,
        "offered_rate": offered,
        "spikes": spikes,
        "arrivals_end": end,
    }


def scenario_policy(scenario: Scenario, described: dict[str, Any]) -> RetryPolicy:
    """The run's policy rebuilt from its resolved options (``RunResult.policy``).

    Every option is given explicitly, so the settings used to rebuild it do not matter.
    """
    from retrysim.retry.options import OPTION_NAMES, PolicyOptions
    from retrysim.retry.policy import build_policy
    from retrysim.retry.settings import RetrySettings

    given = {name: described[name] for name in OPTION_NAMES if described.get(name) is not None}
    return build_policy(
        described["operation"], RetrySettings.defaults(), options=PolicyOptions(**given)
    )


def retried_errors(scenario: Scenario, policy: RetryPolicy) -> list[str]:
    """The error names this run's policy retries: ``retry_on`` if the scenario sets it, else
    what the profile's retry strategy retries (asked about an instance of each, as the engine
    raises it). Client libraries' errors are listed only when the scenario raises them."""
    from retrysim.sim.catalogue import BY_NAME
    from retrysim.sim.failures import CODES, ERROR_CLASSES, make_error

    used = _used_library_errors(scenario.model_dump(mode="json"), set(BY_NAME))
    names = [name for name in ERROR_CLASSES if name not in BY_NAME or name in used]
    if scenario.policy.retry_on is not None:
        classes: tuple[type[BaseException], ...] = tuple(
            ERROR_CLASSES[name] for name in scenario.policy.retry_on
        )
        return [name for name in names if issubclass(ERROR_CLASSES[name], classes)]
    profile = policy.profile_object
    return [name for name in names if profile.retries(make_error(CODES[name]))]


def _used_library_errors(data: Any, known: set[str]) -> set[str]:
    """The catalogue names among the string values anywhere in ``data``."""
    if isinstance(data, str):
        return {data} & known
    if isinstance(data, dict):
        data = list(data.values())
    if isinstance(data, list):
        return set().union(*(_used_library_errors(item, known) for item in data))
    return set()


def policy_facts(scenario: Scenario, described: dict[str, Any]) -> PolicyFacts:
    """What the policy can do, from the profile's formula (not sampled from this run).

    ``wait_ranges``: [min, max] wait before retry 1, 2, ... (the first ``WAIT_RANGE_ROWS``,
    whatever ``max_attempts`` is, so a diagnosis can say how many attempts would outlast an
    outage); ``min_total_wait`` / ``worst_case_total_wait``: the shortest and longest a call can
    spend waiting with this ``max_attempts``.
    """
    policy = scenario_policy(scenario, described)
    ranges = [list(policy.wait_range(n)) for n in range(1, WAIT_RANGE_ROWS + 1)]
    shortest = sum(policy.wait_range(n)[0] for n in range(1, min(policy.max_attempts, 10_000)))
    return {
        "retried_errors": retried_errors(scenario, policy),
        "wait_ranges": ranges,
        "min_total_wait": shortest,
        "worst_case_total_wait": policy.worst_case_total(),
    }


def give_ups(
    calls: np.ndarray,
    names: tuple[str, ...],
    retried: list[str],
    windows: list[tuple[float, float]],
    budget_ended: np.ndarray | None = None,
) -> GiveUps:
    """Why calls gave up: on an error the policy never retries, while a fault was open, or
    because a resilience mechanism refused to go on.

    ``not_retried``: calls that gave up after their first attempt on an error outside the
    retried set, by error. ``during_fault``: calls that gave up after retrying, on a retried
    error, while one of ``windows`` (start, end) was still open: attempts ran out before the
    fault ended. ``refused``: calls ended by a guard, ``breaker`` (their last attempt was
    refused, ``CircuitOpen``) and ``budget`` (``budget_ended``, a mask of ``calls``: a retry
    budget refused their next retry). A refusal is neither of the first two: a breaker's
    refusal is never retried by design, and a budget ends a call that still had attempts.
    """
    gave_up = calls["outcome"] == rec.GAVE_UP
    retried_codes = np.array([names.index(n) for n in retried if n in names], dtype=np.int64)
    errors = calls["error"].astype(np.int64)
    # A call gives up on an answer (result:503) only when its result predicate rejected the
    # value: a retried one, whatever its stop allowed.
    is_retried = np.isin(errors, retried_codes) | (errors >= ANSWER_BASE)
    by_breaker = gave_up & (
        errors == (names.index("CircuitOpen") if "CircuitOpen" in names else -1)
    )
    by_budget = np.zeros(len(calls), dtype=bool) if budget_ended is None else budget_ended
    first_only = gave_up & (calls["attempts"] == 1) & ~is_retried & ~by_breaker
    counts = np.bincount(calls["error"][first_only], minlength=len(names))
    inside = np.zeros(len(calls), dtype=bool)
    for start, end in windows:
        inside |= (calls["end"] >= start) & (calls["end"] < end)
    return {
        "not_retried": {names[code]: int(n) for code, n in enumerate(counts) if code and n},
        "during_fault": int(np.sum(gave_up & is_retried & inside & ~by_budget)),
        "refused": {"breaker": int(by_breaker.sum()), "budget": int(by_budget.sum())},
    }


#: Seconds after the last disturbance before recovery is judged (at least; the policy's
#: worst-case total wait if longer, so calls caught in it have had time to finish).
SETTLE = 5.0
#: Timeline bins needed on each side to compare goodput at all.
MIN_BINS = 3


def recovery(doc: ResultDocument) -> Recovery | None:
    """Did goodput come back after the last fault or traffic spike? From the document alone.

    ``goodput_after``: calls succeeding per second from ``from`` (``SETTLE`` s, or the worst-case
    total wait if longer, after the last disturbance ended at ``disturbance_end``) to
    ``until``, the end of the last whole timeline bin of arrivals; ``goodput_reference``: the
    same before the first disturbance began at ``disturbance_start`` (``reference``
    ``before``; the first bin, the fleet ramping up, left out) or, too early for that, the
    offered rate (``offered``); ``ratio``: after / reference (1.0: fully recovered). ``from``
    and ``until`` are the window the metastable diagnosis quotes and the timeline marks.

    None when it cannot be judged (:func:`recovery_unjudged` says why): no steady load to
    recover to (a burst, or clients with a fixed number of calls, whose goodput falls when
    their calls run out), no bounded disturbance, or too few timeline bins on either side.
    """
    found = _judge_recovery(doc)
    return None if isinstance(found, str) else found


def recovery_unjudged(doc: ResultDocument) -> str | None:
    """Why the document's ``recovery`` is null, in words (None: it was judged). Derived from
    the document, so a saved one says it too."""
    found = _judge_recovery(doc)
    return found if isinstance(found, str) else None


def _judge_recovery(doc: ResultDocument) -> Recovery | str:
    """:func:`recovery`'s figures, or why there are none."""
    fleet = doc["clients"]
    if fleet["arrival"] not in ("poisson", "closed"):
        return f"a {fleet['arrival']} arrival has no steady load to recover to"
    if fleet["arrival"] == "closed" and fleet["calls_per_client"] is not None:
        return (
            "clients make a fixed number of calls (calls_per_client): goodput falls as their "
            "calls run out, whatever the faults did"
        )
    windows = [(float(f["start"]), f["end"]) for f in doc["faults"]]
    windows += [(s["start"], s["end"]) for s in fleet["spikes"]]
    if not windows:
        return "no fault or traffic spike to recover from"
    if any(end is None for _, end in windows):
        return "a fault lasts until the run ends, so nothing comes after it"
    first = min(start for start, _ in windows)
    last = max(float(end) for _, end in windows if end is not None)
    tl = doc.get("timeline")
    if not tl:
        return "the run has no timeline"
    width, goodput = tl["bin_width"], tl["goodput_per_s"]
    settle = max(SETTLE, float(doc["policy_facts"]["worst_case_total_wait"]))
    before = goodput[1 : int(first // width)]  # bin 0 is the fleet ramping up
    end_bin = int(fleet["arrivals_end"] // width)
    after = goodput[math.ceil((last + settle) / width) : end_bin]
    if len(after) < MIN_BINS:
        return (
            f"its window starts at t={last + settle:g} s, {settle:g} s after the last "
            f"disturbance ends, and arrivals end at t={fleet['arrivals_end']:g} s: fewer than "
            f"{MIN_BINS} timeline bins ({width:g} s each) to judge; a longer duration gives room"
        )
    what: Literal["before", "offered"]
    if len(before) >= MIN_BINS:
        reference, what = sum(before) / len(before), "before"
    elif fleet["offered_rate"]:
        reference, what = float(fleet["offered_rate"]), "offered"
    else:
        return "too little time before the first disturbance, and no offered rate, to compare"
    if reference <= 0:
        return "no call succeeded before the first disturbance: nothing to recover to"
    now = sum(after) / len(after)
    return {
        "disturbance_start": first,
        "disturbance_end": last,
        "from": last + settle,
        "until": end_bin * width,
        "goodput_after": now,
        "goodput_reference": reference,
        "reference": what,
        "ratio": now / reference,
    }


def outages(attempts: np.ndarray, windows: list[tuple[float, float]]) -> list[Outage]:
    """Per downtime window: how long calls that failed in it sat idle after it had ended.

    An attempt that failed inside [start, end) and was followed by a wait starts its next
    attempt at its end plus that wait; when that is after ``end``, the call waited past the
    outage. ``retried_after_end`` counts those retries, ``mean_wait_past_end`` is the mean
    time between the window's end and their next attempt (seconds; None when there are none).
    """
    out: list[Outage] = []
    ends = attempts["end"]
    followed = ~np.isnan(attempts["wait"]) & (attempts["outcome"] != rec.OK)
    for start, end in windows:
        hit = followed & (ends >= start) & (ends < end)
        nxt = ends[hit] + attempts["wait"][hit]
        late = nxt[nxt > end] - end
        out.append(
            {
                "start": start,
                "end": end,
                "retried_after_end": len(late),
                "mean_wait_past_end": float(late.mean()) if len(late) else None,
            }
        )
    return out
