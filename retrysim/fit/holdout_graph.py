"""The held-out check of a call graph: whole call trees to each half, each tier judged alone.

A request below the top tier exists only because a clients' call was made, so the halves are
dealt by *root call* (the clients' call at the top tier a request was sent for,
:func:`retrysim.fit.graph.root_ids`): the root calls alternately, in the order they started,
and every request below one goes with it. Each half's call graph is recounted from its own
calls (:meth:`~retrysim.fit.graph.CallGraph.of_roots`), so nothing of the held-out half is
in what the fit sees; the chain (which services are tiers) is the whole data's.

Each tier is judged by the one-service metrics, named with the tier. Both sides are the same
quantity because both go through the same code: a simulated run's tier records are turned
into the requests a trace would hold (each tier's attempt tied to the attempt above that sent
it, as a saved run's ``calls.csv`` ties them) and read by :func:`~retrysim.fit.graph.as_tiers`,
which takes each request's time in its call below out (from the first attempt's start to the
last one's end) and keeps a failure as the request's own only when no call below explains it.
So latency is own time and the failed share own failures, on the data's side and the
simulation's alike. The top tier's calls are the clients'.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from retrysim.fit.graph import Request, as_tiers
from retrysim.fit.observations import Observations
from retrysim.fit.read import Data
from retrysim.sim.records import CANCELLED, OK, OPEN, TIMED_OUT
from retrysim.sim.result import TierRun

#: Root calls a half needs at the least: fewer, and a fitted arrival rate or a tier's
#: latency rests on a handful of requests, and its interval says nothing.
MIN_ROOT_CALLS = 10
#: Refusals by the client's own circuit breaker: never sent, so no request a tier saw.
_NEVER_SENT = "CircuitOpen"


def graph_halves(data: Data) -> tuple[Data, Data] | str:
    """The root calls dealt alternately to two halves, each with its own graph (or what is
    missing, one line)."""
    graph, rows = data.graph, data.requests
    assert graph is not None
    inputs = [s for s in data.sources if s.format != "prometheus"]
    if len(inputs) > 1:
        return (
            "the held-out check of a call graph reads one trace or saved run, "
            f"not {len(inputs)} inputs of rows"
        )
    if rows.root is None or not len(rows):
        return "the held-out check needs the call graph's requests (traces or a saved run)"
    ids, first = np.unique(rows.root, return_index=True)  # rows are in time order
    ordered = ids[np.argsort(first, kind="stable")]
    dealt = (ordered[0::2], ordered[1::2])
    for which, chosen in zip(("fitted", "held-out"), dealt, strict=True):
        if len(chosen) < MIN_ROOT_CALLS:
            return (
                f"the held-out check needs {MIN_ROOT_CALLS} root calls (the clients' calls) in "
                f"each half: the {which} half has {len(chosen)}"
            )
    halves = []
    for which, chosen in zip(("fitted", "held-out"), dealt, strict=True):
        mask = np.isin(rows.root, chosen)
        part = rows.take(mask)
        for tier in graph.chain:
            if not np.any(part.tier == part.tier_names.index(tier)):
                return (
                    f"the held-out check needs requests of every tier in both halves: "
                    f"{tier!r} has none in the {which} half"
                )
        halves.append(
            replace(data, requests=part, scrapes=None, graph=graph.of_roots(chosen.tolist()))
        )
    return halves[0], halves[1]


def root_calls(rows: Observations) -> int:
    """The clients' calls a graph's rows were sent for."""
    return 0 if rows.root is None else len(np.unique(rows.root))


def tier_rows(rows: Observations, name: str) -> Observations:
    """The rows of tier ``name`` (none when it has no rows: not every row, as ``of_tier``)."""
    if rows.tier is None or name not in rows.tier_names:
        return rows.take(np.zeros(len(rows), dtype=bool))
    return rows.take(rows.tier == rows.tier_names.index(name))


def simulated_tiers(tiers: Sequence[TierRun], names: Sequence[str]) -> Observations:
    """A run's tier records as the requests a trace of it would hold, read as the data is
    (:func:`~retrysim.fit.graph.as_tiers`: own time, own errors, a tier column of the
    scenario's tier names). ``names``: the run's error names."""
    requests: list[Request] = []
    index_of: dict[tuple[int, int], int] = {}  # (level, attempt row) -> request index
    for level, tier in enumerate(tiers):
        attempts = tier.attempts
        outcomes = attempts["outcome"].tolist()
        codes = attempts["error"].tolist()
        calls = attempts["call"].tolist()
        tries = attempts["attempt"].tolist()
        starts, ends = attempts["start"].tolist(), attempts["end"].tolist()
        clients = attempts["client"].tolist()
        for row, outcome in enumerate(outcomes):
            name = names[codes[row]]
            if outcome == OPEN or name == _NEVER_SENT:
                continue
            parent = None
            if level > 0:
                parent = index_of.get((level - 1, int(tier.parents[calls[row]])))
            index_of[(level, row)] = len(requests)
            end = math.nan if outcome == CANCELLED else ends[row]
            requests.append(
                Request(
                    tier.name,
                    starts[row],
                    end,
                    _error(outcome, name),
                    parent=parent,
                    attempt=tries[row],
                    client=str(clients[row]) if level == 0 else None,
                    call=str(calls[row]),
                )
            )
    return as_tiers(requests)[0]


def _error(outcome: int, name: str) -> str:
    """An attempt's error as a saved run's reader names it."""
    if outcome in (OK, CANCELLED):
        return ""
    if outcome == TIMED_OUT:
        return name or "TimeoutError"
    return name or "error"
