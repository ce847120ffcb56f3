"""The whole fit: data in, a :class:`~retrysim.fit.result.FitResult` out.

One tier (a log, a saved run, scrapes, a trace of one service): the clients' calls to one
service. Several services in a trace, or a saved call graph: the clients' calls to the top
tier, and each tier's own latency and errors (:mod:`retrysim.fit.graph`). Rows win over
scrapes where both are given (single durations and times say more than buckets).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from retrysim.fit import arrivals as arrival_fit
from retrysim.fit import error_rates, parts
from retrysim.fit.arrivals import ArrivalFit
from retrysim.fit.error_rates import ErrorFit
from retrysim.fit.latency import LatencyFit, fit_binned_latency, fit_samples_latency
from retrysim.fit.observations import Observations
from retrysim.fit.options import FitOptions, ReadOptions
from retrysim.fit.read import Data, read_inputs
from retrysim.fit.result import FitResult, Fitted, default
from retrysim.fit.retries import RetriesSeen, first_attempts, numbered, seen

_NOT_TIER_CHARACTER = re.compile(r"[^a-z0-9_-]+")


def fit_files(
    paths: Sequence[str | Path],
    read_options: ReadOptions | None = None,
    options: FitOptions | None = None,
) -> FitResult:
    """Read ``paths`` and fit them (:func:`retrysim.fit.read.read_inputs`, :func:`fit_data`)."""
    return fit_data(read_inputs(paths, read_options), options)


def fit_data(data: Data, options: FitOptions | None = None) -> FitResult:
    """Every part fitted from ``data``, and the scenario they make."""
    options = options or FitOptions()
    if data.graph is not None and len(data.graph.chain) > 1:
        return _Fit(data, options).tiered()
    return _Fit(data, options).one_tier()


class _Fit:
    """One fit's state while its parts are assembled (values in file order)."""

    def __init__(self, data: Data, options: FitOptions) -> None:
        self.data, self.options = data, options
        self.values: list[Fitted] = []
        self.missing: list[str] = []
        scraped = [s for s in data.sources if s.format == "prometheus"]
        self.scrapes_where = scraped[0].describe() if scraped else ""
        self.latency: dict[str, LatencyFit] = {}
        self.errors: dict[str, ErrorFit] = {}
        self.retries: dict[str, RetriesSeen] = {}
        self.over_time: dict[str, dict[str, list[float]]] = {}

    def where(self, *roles: str) -> str:
        """The row inputs, with the columns of ``roles`` each value was read from."""
        found = [s.describe(roles) for s in self.data.sources if s.format != "prometheus"]
        return "; ".join(found)

    def add(self, value: Fitted | None) -> None:
        if value is None:
            return
        self.values.append(value)
        if value.default is not None and value.value is not None:
            self.missing.append(f"{value.key}: {value.default}")

    # --- the clients ---------------------------------------------------------------------

    def clients(self, rows: Observations) -> tuple[dict[str, Any], ArrivalFit | str]:
        """``duration`` and ``[clients]`` from the calls (first attempts) of ``rows``."""
        scrapes, alpha = self.data.scrapes, self.options.alpha
        found: ArrivalFit | str
        if len(rows):
            first = first_attempts(rows)
            found = arrival_fit.fit_times(
                rows.time[first], self.data.window, self.options.bin_width, alpha
            )
            closed = arrival_fit.closed_loop(rows, first)
            if not isinstance(found, str) and closed is not None:
                found = replace(found, closed=closed)
            where = self.where("timestamp", "attempt", "call", "client")
        elif scrapes is not None:
            found = arrival_fit.fit_counts(scrapes.requests, scrapes.starts, scrapes.ends, alpha)
            if not isinstance(found, str):
                found = replace(found, timed=False)
            where = self.scrapes_where
        else:
            found, where = "no requests in the data", ""
        self.add(parts.duration(found, where, self.data.window is not None))
        clients: dict[str, Any] = {}
        distinct = None if rows.client is None else len(np.unique(rows.client))
        count = parts.count(distinct, found, where)
        self.add(count)
        clients["count"] = count.value
        timeout = parts.timeout(
            error_rates.client_timeout(rows), self.where("duration", "outcome", "error")
        )
        self.add(timeout)
        if timeout.value is not None:
            clients["timeout"] = timeout.value
        for value in parts.arrival(found, where):
            self.add(value)
            parent, _, leaf = value.key.rpartition(".")
            if parent == "clients":  # not a schedule step: the arrival holds those
                clients[leaf] = value.value
        return clients, found

    # --- one service ---------------------------------------------------------------------

    def service(
        self, tier: str, rows: Observations, prefix: str, bounds: tuple[float, float, float]
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """A service's ``service`` table and ``faults`` from its requests (or the scrapes)."""
        scrapes = self.data.scrapes
        quantiles = self.options.quantiles
        found: LatencyFit | str
        if len(rows):
            ok = rows.duration[~rows.failed]
            found = fit_samples_latency(ok, quantiles)
            where = self.where("duration", "outcome", "error", "tier")
        elif scrapes is not None and scrapes.metric is not None:
            found = fit_binned_latency(scrapes.edges, scrapes.buckets.sum(axis=0), quantiles)
            where = self.scrapes_where
        else:
            found, where = "no durations and no latency histogram in the data", ""
        if not isinstance(found, str):
            self.latency[tier] = found
        self.add(
            default(
                f"{prefix}service.kind",
                "ideal",
                "capacity is not fitted: an ideal service serves every request at once with "
                "the latency below (use a queue with concurrency if the service saturates)",
            )
        )
        latency = parts.latency(f"{prefix}service.latency", found, where)
        self.add(latency)
        errors = self._errors(rows, bounds)
        if isinstance(errors, ErrorFit):
            self.errors[tier] = errors
        if len(rows):
            where = self.where("timestamp", "outcome", "error", "tier")
        faults, values = parts.faults(prefix, errors, where)
        for value in values:
            self.add(value)
        if len(rows):
            self.over_time[tier] = _over_time(rows, bounds)
        return {"kind": "ideal", "latency": latency.value}, faults

    def _errors(
        self, rows: Observations, bounds: tuple[float, float, float]
    ) -> ErrorFit | str | None:
        start, end, width = bounds
        if len(rows):
            return error_rates.fit_rows(rows, width, start, end)
        scrapes = self.data.scrapes
        if scrapes is None or not scrapes.errors:
            return None
        if scrapes.starts is None or scrapes.ends is None:
            return "the scrapes have no times, so no fault window can be timed"
        return error_rates.fit_binned(
            scrapes.requests, scrapes.errors, scrapes.starts, scrapes.ends
        )

    # --- the scenario --------------------------------------------------------------------

    def _bounds(self, found: ArrivalFit | str, rows: Observations) -> tuple[float, float, float]:
        if not isinstance(found, str):
            return found.start, found.end, found.bin_width
        end = float(rows.time[-1]) if len(rows) else 60.0
        return 0.0, max(end, 1.0), 1.0

    def _head(self) -> dict[str, Any]:
        names = ", ".join(Path(s.path).name for s in self.data.sources)
        duration = next(v.value for v in self.values if v.key == "duration")
        return {
            "name": self.options.name,
            "description": f"Fitted by retrysim fit from {names}.",
            "seed": 0,
            "duration": duration,
        }

    def one_tier(self) -> FitResult:
        rows, how = numbered(self.data.requests)
        if len(rows):
            self.retries[""] = seen(rows, how)
        clients, found = self.clients(rows)
        policy = self._policy("policy.max_attempts", self.retries.get(""), required=False)
        bounds = self._bounds(found, rows)
        service, faults = self.service("", rows, "", bounds)
        scenario = {
            **self._head(),
            "policy": policy,
            "clients": clients,
            "service": service,
            "faults": faults,
        }
        return self._result(scenario, found)

    def tiered(self) -> FitResult:
        graph = self.data.graph
        assert graph is not None
        rows = self.data.requests
        names = tier_names(graph.chain)
        top = rows.of_tier(graph.chain[0])
        clients, found = self.clients(top)
        bounds = self._bounds(found, top)
        for tier in graph.chain:
            tier_rows = rows.of_tier(tier)
            self.retries[names[tier]] = seen(tier_rows, "call ids" if len(tier_rows) else "none")
        policy = self._policy("policy.max_attempts", self.retries.get(names[graph.chain[0]]), False)
        tiers: dict[str, Any] = {}
        for index, tier in enumerate(graph.chain):
            name = names[tier]
            table: dict[str, Any] = {}
            self.add(default(f"tiers.{name}.callers", 1, "instances of a tier are not in the data"))
            if index + 1 < len(graph.chain):
                below = self.retries.get(names[graph.chain[index + 1]])
                table["policy"] = self._policy(f"tiers.{name}.policy.max_attempts", below, True)
            service, faults = self.service(name, rows.of_tier(tier), f"tiers.{name}.", bounds)
            table["service"] = service
            table["faults"] = faults
            tiers[name] = table
        scenario = {**self._head(), "policy": policy, "clients": clients, "tiers": tiers}
        return self._result(scenario, found)

    def _policy(self, key: str, retries: RetriesSeen | None, required: bool) -> dict[str, Any]:
        value = parts.max_attempts(key, retries, required)
        self.add(value)
        if value is None or value.value is None:
            return {}
        return {"max_attempts": value.value}

    def _result(self, scenario: dict[str, Any], found: ArrivalFit | str) -> FitResult:
        notes = [*self.data.notes, *(n for s in self.data.sources for n in s.notes)]
        notes += [
            (f"{tier}: " if tier else "") + retries.line() for tier, retries in self.retries.items()
        ]
        return FitResult(
            values=tuple(self.values),
            scenario=scenario,
            missing=tuple(dict.fromkeys(self.missing)),
            sources=self.data.sources,
            origin=self.data.origin,
            latency=dict(self.latency),
            errors=dict(self.errors),
            arrivals=None if isinstance(found, str) else found,
            retries=dict(self.retries),
            graph=self.data.graph,
            notes=tuple(dict.fromkeys(notes)),
            latency_over_time=dict(self.over_time),
        )


def tier_names(services: Sequence[str]) -> dict[str, str]:
    """Each service's tier name: lower case, letters, digits, ``-`` and ``_``, starting with a
    letter, at most 32 characters, distinct (``retrysim.model.tiers.TIER_NAME``)."""
    names: dict[str, str] = {}
    for service in services:
        base = _NOT_TIER_CHARACTER.sub("-", service.lower()).strip("-_") or "tier"
        if not base[0].isalpha():
            base = "t-" + base
        base = base[:32]
        name, number = base, 2
        while name in names.values():
            suffix = f"-{number}"
            name, number = base[: 32 - len(suffix)] + suffix, number + 1
        names[service] = name
    return names


def _over_time(rows: Observations, bounds: tuple[float, float, float]) -> dict[str, list[float]]:
    """The successful requests' median and p99 per bin, for a figure."""
    start, end, width = bounds
    edges = np.arange(start, end + width / 2, width)
    if len(edges) < 2:
        edges = np.array([start, end])
    ok = ~rows.failed & np.isfinite(rows.duration)
    which = np.clip(np.searchsorted(edges, rows.time[ok], side="right") - 1, 0, len(edges) - 2)
    order = np.argsort(which, kind="stable")
    per_bin = np.bincount(which, minlength=len(edges) - 1)
    groups = np.split(rows.duration[ok][order], np.cumsum(per_bin)[:-1])
    p50, p99, n = [], [], []
    for chosen in groups:
        n.append(float(len(chosen)))
        p50.append(float(np.median(chosen)) if len(chosen) else float("nan"))
        p99.append(float(np.quantile(chosen, 0.99)) if len(chosen) else float("nan"))
    return {"bin_starts": edges[:-1].tolist(), "p50": p50, "p99": p99, "n": n}
