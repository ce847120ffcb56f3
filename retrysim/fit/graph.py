"""Requests across services as tiers: each service's own work, own errors, and who calls whom.

A request a service saw may call other services before it answers (a span's child spans in
another service; a retrysim tier's call to the tier below). A tier of a scenario is judged by
its *own* service time and faults, the calls below being the next tier's, so each request's
time in its call below is taken out (from its first attempt's start to its last one's end:
the retry policy's waits between attempts are not the service's work), and a failure counts
as its own only when no call below explains it (it made none, or its last one succeeded).
Requests that share a parent are one call's attempts, in start order.

Each request also carries its *root*: the clients' call at the top it was sent for (found by
walking up its parents), so the held-out check can deal whole call trees to its halves, and
each edge keeps its calls' roots, so a half's graph counts that half's calls alone
(:meth:`CallGraph.of_roots`).

A scenario's tiers are a chain (each tier calls the next), so :func:`chain` keeps the path
from the top service down through the callee each tier calls most; a service off that path
is left out with one line saying so.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from retrysim.fit.observations import Observations, table


@dataclass(frozen=True)
class Request:
    """One request a service saw. ``parent``: the index (in the same list) of the request
    whose work sent it, None for a caller outside the data (the clients); ``call``: the id of
    such a request's call, when the data says it. ``attempt``: the attempt number when the
    data says it, else None (counted from the siblings)."""

    tier: str
    start: float
    end: float
    error: str
    parent: int | None = None
    attempt: int | None = None
    client: str | None = None
    call: str | None = None


@dataclass(frozen=True)
class Edge:
    """``caller`` calls ``callee``: ``calls`` calls made, ``attempts`` requests sent,
    ``most`` attempts in one call, ``gave_up_at``: the most attempts of a call whose every
    attempt failed (None: no call failed throughout)."""

    caller: str
    callee: str
    calls: int
    attempts: int
    most: int
    gave_up_at: int | None
    #: Each call's (root id, attempts, failed throughout): what :meth:`of_roots` recounts from.
    per_call: tuple[tuple[int, int, bool], ...] = field(default=(), repr=False, compare=False)

    def of_roots(self, roots: Collection[int]) -> Edge:
        """The edge counted over the calls sent for ``roots`` alone."""
        kept = [c for c in self.per_call if c[0] in roots]
        failed = [size for _, size, throughout in kept if throughout]
        return replace(
            self,
            calls=len(kept),
            attempts=sum(size for _, size, _ in kept),
            most=max((size for _, size, _ in kept), default=0),
            gave_up_at=max(failed) if failed else None,
            per_call=tuple(kept),
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "caller": self.caller,
            "callee": self.callee,
            "calls": self.calls,
            "attempts": self.attempts,
            "most": self.most,
            "gave_up_at": self.gave_up_at,
        }


@dataclass(frozen=True)
class CallGraph:
    """The chain of tiers, top first, its edges, and what was left out (one line each)."""

    chain: tuple[str, ...]
    edges: tuple[Edge, ...]
    left_out: tuple[str, ...] = field(default_factory=tuple)

    def edge(self, caller: str) -> Edge | None:
        return next((e for e in self.edges if e.caller == caller), None)

    def of_roots(self, roots: Collection[int]) -> CallGraph:
        """The graph of the requests sent for the clients' calls ``roots`` (root ids, as
        :func:`as_tiers` numbers them): the same chain, each edge counting those calls alone
        (a held-out half's graph, with nothing of the other half in it)."""
        chosen = frozenset(roots)
        return replace(self, edges=tuple(edge.of_roots(chosen) for edge in self.edges))

    def to_dict(self) -> dict[str, object]:
        return {
            "chain": list(self.chain),
            "edges": [edge.to_dict() for edge in self.edges],
            "left_out": list(self.left_out),
        }


def as_tiers(requests: Sequence[Request]) -> tuple[Observations, CallGraph]:
    """The requests as one observation table with a tier column (own time, own errors,
    attempt numbers, one call id a group of siblings, the root call's id) and the chain of
    tiers they form."""
    children: dict[int, list[int]] = defaultdict(list)
    for index, request in enumerate(requests):
        if request.parent is not None:
            children[request.parent].append(index)
    for kids in children.values():
        kids.sort(key=lambda i: (requests[i].start, i))
    root_of = root_ids(requests)
    graph = chain(requests, children, root_of)
    keep = [i for i, r in enumerate(requests) if r.tier in graph.chain]
    times, durations, errors, calls, attempts, tiers, clients = [], [], [], [], [], [], []
    for index in keep:
        request = requests[index]
        kids = [k for k in children.get(index, ()) if requests[k].tier in graph.chain]
        times.append(request.start)
        spent = request.end - request.start
        if not math.isnan(spent):  # not NaN: a cancelled hedge's time is unknown and stays so
            spent = max(0.0, spent - _covered(request, requests, kids))
        durations.append(spent)
        own_failure = request.error and (not kids or not requests[kids[-1]].error)
        errors.append(request.error if own_failure else "")
        parent = request.parent
        if parent is None:
            calls.append(f"{request.tier}:{request.call if request.call else f'r{index}'}")
        else:
            calls.append(f"{request.tier}:p{parent}")
        siblings = [index] if parent is None else children[parent]
        same = [s for s in siblings if requests[s].tier == request.tier]
        attempts.append(request.attempt or same.index(index) + 1)
        tiers.append(request.tier)
        clients.append(request.client or "")
    observations = table(
        times,
        durations,
        errors,
        call=calls,
        attempt=attempts,
        tier=tiers,
        client=clients if any(clients) else None,
        root=[root_of[index] for index in keep],
    )
    return observations, graph


def root_ids(requests: Sequence[Request]) -> list[int]:
    """Each request's root id: the index of the first request of the clients' call at the
    top it was sent for (its topmost ancestor, and that one's sibling attempts: a top request's
    call is its ``call`` id when the data gives one, else the request alone)."""
    first: dict[tuple[str, str], int] = {}
    found: list[int] = [-1] * len(requests)
    for index, request in enumerate(requests):
        if request.parent is None:
            key = (request.tier, request.call if request.call else f"r{index}")
            found[index] = first.setdefault(key, index)
    for index in range(len(requests)):
        path: list[int] = []
        at = index
        while found[at] < 0 and len(path) <= len(requests):
            path.append(at)
            parent = requests[at].parent
            at = parent if parent is not None else at
        for step in path:
            found[step] = found[at]
    return found


def _covered(request: Request, requests: Sequence[Request], kids: list[int]) -> float:
    """Seconds of ``request`` spent in its call below: from the first attempt's start to the
    last one's end, the waits between attempts included (they are the retry policy's, not
    the service's work)."""
    if not kids:
        return 0.0
    start = max(requests[kids[0]].start, request.start)
    ends = [requests[k].end for k in kids if not math.isnan(requests[k].end)]
    end = min(max(ends, default=start), request.end)
    return max(0.0, end - start)


def chain(
    requests: Sequence[Request],
    children: dict[int, list[int]],
    root_of: Sequence[int] | None = None,
) -> CallGraph:
    """The path of tiers from the top service (the one the roots reached most) down through
    the callee each tier calls most, with each edge's attempts per call (and each call's root
    id, from ``root_of``: :func:`root_ids`)."""
    root_of = root_ids(requests) if root_of is None else root_of
    roots = Counter(r.tier for r in requests if r.parent is None)
    if not roots:
        return CallGraph((), ())
    calls: dict[tuple[str, str], list[list[int]]] = defaultdict(list)
    for parent, kids in children.items():
        by_tier: dict[str, list[int]] = defaultdict(list)
        for kid in kids:
            by_tier[requests[kid].tier].append(kid)
        for tier, group in by_tier.items():
            calls[(requests[parent].tier, tier)].append(group)
    path = [min(roots, key=lambda t: (-roots[t], t))]
    edges: list[Edge] = []
    while True:
        below = {callee: len(g) for (caller, callee), g in calls.items() if caller == path[-1]}
        below = {callee: n for callee, n in below.items() if callee not in path}
        if not below:
            break
        callee = min(below, key=lambda t: (-below[t], t))
        edges.append(_edge(path[-1], callee, calls[(path[-1], callee)], requests, root_of))
        path.append(callee)
    seen = {r.tier for r in requests}
    left_out = tuple(
        f"service {tier!r} is not on the chain {' -> '.join(path)}: a scenario's tiers are a "
        "chain, so it is left out"
        for tier in sorted(seen - set(path))
    )
    return CallGraph(tuple(path), tuple(edges), left_out)


def _edge(
    caller: str,
    callee: str,
    groups: list[list[int]],
    requests: Sequence[Request],
    root_of: Sequence[int],
) -> Edge:
    sizes = np.array([len(g) for g in groups])
    failed_throughout = [len(g) for g in groups if all(requests[i].error for i in g)]
    return Edge(
        caller,
        callee,
        calls=len(groups),
        attempts=int(sizes.sum()),
        most=int(sizes.max()),
        gave_up_at=max(failed_throughout) if failed_throughout else None,
        per_call=tuple((root_of[g[0]], len(g), all(requests[i].error for i in g)) for g in groups),
    )
