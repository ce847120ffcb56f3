"""Each fitted part as the scenario values it gives, each with its comment's facts.

One function a part: the arrivals (``clients.arrival``, ``clients.count``, ``duration``), the
latency (``service.latency``), the errors (``faults``), the retries (``policy.max_attempts``)
and the client timeout. Each returns :class:`~retrysim.fit.result.Fitted` values, a default
with its reason wherever the data could not give the value.
"""

from __future__ import annotations

import math
from typing import Any

from retrysim.fit import scipy_api
from retrysim.fit.arrivals import ArrivalFit
from retrysim.fit.error_rates import OUTAGE_SHARE, ErrorFit
from retrysim.fit.families import rounded
from retrysim.fit.latency import LatencyFit
from retrysim.fit.result import Fitted, default
from retrysim.fit.retries import RetriesSeen


def _p(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:.2g}" if value >= 1e-4 else "< 1e-4"


def duration(arrivals: ArrivalFit | str, where: str, window_known: bool) -> Fitted:
    if isinstance(arrivals, str):
        return default("duration", 60.0, arrivals)
    how = (
        "the run's own window (result.json clients.arrivals_end)"
        if window_known
        else "the last call's arrival, to the millisecond"
    )
    return Fitted(
        "duration", rounded(arrivals.end), where, f"calls arrive until here: {how}", arrivals.n
    )


def arrival(arrivals: ArrivalFit | str, where: str) -> list[Fitted]:
    """``clients.arrival`` (and a closed loop's ``clients.think_time``)."""
    if isinstance(arrivals, str):
        return [default("clients.arrival", {"kind": "burst"}, arrivals)]
    if arrivals.closed is not None:
        closed = arrivals.closed
        return [
            Fitted(
                "clients.think_time",
                rounded(closed.think_time),
                where,
                "the median gap from a client's call's end to its next call's start",
                arrivals.n,
            ),
            Fitted(
                "clients.arrival",
                arrivals.scenario(),
                where,
                f"{closed.evidence}; ramp: the latest first call",
                arrivals.n,
            ),
        ]
    steps = len(arrivals.schedule)
    method = (
        f"calls per second in {arrivals.bin_width:g} s bins; rate changes by seeded binary "
        "segmentation (Poisson likelihood, penalty 3 ln n): "
        + (
            f"{steps} stretch{'es' if steps != 1 else ''} depart from the longest one's rate "
            "(schedule steps), the base rate is the others' together"
            if steps
            else "no stretch departs from the base rate"
        )
    )
    if not arrivals.timed:
        method += "; requests per scrape interval (attempts not told apart from calls)"
    check = (
        f"Poisson check: index of dispersion {arrivals.dispersion:.3g} over {arrivals.dof} "
        f"degrees of freedom (chi-square, two-sided p = {_p(arrivals.p)})"
    )
    if arrivals.ks_d is not None:
        check += (
            f"; gaps against the exponential: KS D = {arrivals.ks_d:.3g} (p = {_p(arrivals.ks_p)})"
        )
    goodness: list[tuple[str, float]] = [("dispersion", arrivals.dispersion), ("p", arrivals.p)]
    if arrivals.ks_d is not None and arrivals.ks_p is not None:
        goodness += [("gaps KS D", arrivals.ks_d), ("gaps p", arrivals.ks_p)]
    detail = (check, f"verdict: {arrivals.verdict}", *arrivals.notes)
    step_values = [
        Fitted(
            f"clients.arrival.schedule.{index}",
            step.scenario(),
            where,
            f"a stretch whose rate departs from the base: {step.calls:,} calls in "
            f"[{step.start:g}, {step.end:g}) s",
            step.calls,
            (("2 x log-likelihood gain", step.departure), ("penalty", step.bar)),
        )
        for index, step in enumerate(arrivals.schedule)
    ]
    return [
        *step_values,
        Fitted(
            "clients.arrival",
            arrivals.scenario(),
            where,
            method,
            arrivals.n,
            tuple(goodness),
            None,
            detail,
        ),
    ]


def count(clients: int | None, arrivals: ArrivalFit | str, where: str) -> Fitted:
    if not isinstance(arrivals, str) and arrivals.closed is not None:
        return Fitted(
            "clients.count",
            arrivals.closed.clients,
            where,
            "clients in the data (closed loop)",
            arrivals.n,
        )
    if clients is None:
        return default(
            "clients.count",
            1,
            "no client column: one client makes every call (each client keeps its own call "
            "state, such as a breaker)",
        )
    n = arrivals.n if not isinstance(arrivals, str) else 0
    return Fitted("clients.count", clients, where, "distinct clients in the client column", n)


def latency(key: str, fit: LatencyFit | str, where: str) -> Fitted:
    if isinstance(fit, str):
        return default(key, {"dist": "constant", "value": 0.01}, fit)
    chosen = fit.candidate
    summary = f"median {chosen.quantile(0.5):.4g} s, p99 {chosen.quantile(0.99):.4g} s"
    if chosen.constant:
        return Fitted(key, fit.scenario(), where, f"{fit.rule}; {summary}", fit.n)
    how = "binned maximum likelihood" if fit.binned else "maximum likelihood"
    at = " at the bucket bounds" if fit.binned else ""
    what = "observations in the histogram" if fit.binned else "successful requests"
    method = (
        f"{chosen.family} fitted by scipy ({how}, loc 0) to all {fit.n:,} {what} ({summary}); "
        f"chosen on the held-out half ({fit.n_test:,}) by KS distance{at}"
    )
    best = fit.distance(chosen.family)
    goodness: list[tuple[str, float]] = [("held-out KS D", best.d)]
    if best.p is not None:
        goodness.append(("p", best.p))
    if best.chi2_p is not None:
        goodness.append(("chi-square p", best.chi2_p))
    others = "; ".join(
        f"{d.family} D = {d.d:.3g}" + (f" (p = {_p(d.p)})" if d.p is not None else "")
        for d in fit.distances
    )
    detail = [f"candidates on the held-out half: {others}", f"rule: {fit.rule}"]
    if fit.zeros:
        detail.append(
            f"{fit.zeros:,} durations of 0 left out (no family of location 0 has mass there)"
        )
    return Fitted(key, fit.scenario(), where, method, fit.n, tuple(goodness), None, tuple(detail))


def faults(
    prefix: str, fit: ErrorFit | str | None, where: str
) -> tuple[list[dict[str, Any]], list[Fitted]]:
    """The faults a tier's errors give (``prefix``: ``""`` or ``tiers.NAME.``)."""
    key = f"{prefix}faults"
    if fit is None or isinstance(fit, str):
        reason = fit or "no outcome or error column: no errors to fit, so no faults"
        return [], [default(key, [], reason)]
    if fit.failed == 0:
        return [], [default(key, [], f"no failed request among {fit.requests:,}: no fault to fit")]
    made = fit.faults()
    values: list[Fitted] = []
    for index, window in enumerate(fit.windows):
        fault, renamed = made[index]
        names = ", ".join(f"{name} {n:,}" for name, n in window.names.items())
        unit = "scrape interval" if fit.binned else "request in time order"
        method = (
            f"change points in the failed share (seeded binary segmentation, binomial, one unit a "
            f"{unit}): {window.failed:,} of {window.requests:,} failed in "
            f"[{window.start:.3f}, {window.end:.3f}) s ({names})"
        )
        gaps = f"start known to {window.start_gap:.3g} s, end to {window.end_gap:.3g} s"
        goodness: list[tuple[str, float]] = [("failed share", window.share)]
        if not math.isnan(window.gain):
            goodness.append(("2 x log-likelihood gain", window.gain))
        goodness.append(("penalty", window.bar))
        what = "an outage: failed share >=" if window.kind == "outage" else "flaky: failed share <"
        detail = [gaps, f"{what} {OUTAGE_SHARE:g}"]
        if renamed:
            detail.append(renamed)
        values.append(
            Fitted(
                f"{key}.{index}",
                fault,
                where,
                method,
                window.requests,
                tuple(goodness),
                None,
                tuple(detail),
            )
        )
    for offset, (fault, renamed) in enumerate(made[len(fit.windows) :]):
        index = len(fit.windows) + offset
        values.append(_steady(f"{key}.{index}", fault, renamed, fit, where))
    return [fault for fault, _ in made], values


def _steady(key: str, fault: dict[str, Any], renamed: str, fit: ErrorFit, where: str) -> Fitted:
    stats = scipy_api.stats()

    name = next(n for n in fit.steady if _same(fault, n))
    k, n = fit.steady[name], fit.steady_requests
    interval = stats.binomtest(k, n).proportion_ci(0.95)
    method = (
        f"steady failed share outside the fault windows: {k:,} of {n:,} requests failed with "
        f"{name} (95% interval {interval.low:.3g} to {interval.high:.3g}, scipy.stats.binomtest)"
    )
    detail = [
        "probability among the attempts the faults above let through (gates are asked in order)"
    ]
    if renamed:
        detail.append(renamed)
    return Fitted(key, fault, where, method, n, (("share", k / n),), None, tuple(detail))


def _same(fault: dict[str, Any], name: str) -> bool:
    from retrysim.fit.values import scenario_error

    if "answer" in fault:
        return name == f"result:{fault['answer']}"
    return scenario_error(name)[0] == fault.get("error") and "start" not in fault


def max_attempts(key: str, seen: RetriesSeen | None, required: bool) -> Fitted | None:
    """A policy's ``max_attempts`` from the calls that failed throughout (their attempts are
    the policy's limit). ``required``: a tier's policy must exist (1 when unknown)."""
    if seen is None or not seen.known:
        why = "no attempt numbers or call ids: the retries in the data are unknown"
        return default(key, 1, why) if required else default(key, None, why)
    if seen.gave_up_at is None:
        why = f"no call failed throughout, so the policy's limit is not in the data ({seen.line()})"
        return default(key, max(seen.most, 1), why) if required else default(key, None, why)
    method = "the most attempts a call that failed throughout made: the policy's limit"
    return Fitted(
        key, seen.gave_up_at, "attempts per call", method, seen.calls, (), None, (seen.line(),)
    )


def timeout(found: tuple[float, int, float] | None, where: str) -> Fitted:
    if found is None:
        return default(
            "clients.timeout",
            None,
            "no timed-out requests of one duration: the client's timeout is not in the data",
        )
    seconds, n, spread = found
    return Fitted(
        "clients.timeout",
        rounded(seconds, 4),
        where,
        f"the median duration of the timed-out requests (interquartile range {spread:.3g} s)",
        n,
    )
