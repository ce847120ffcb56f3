"""One run step: simulate a scenario, add its fault-free baseline when needed, summarize.

The CLI's ``run``, the shell's ``run``, every compare and sweep run and the notebooks go through
:func:`run`, so "what a run reports" is defined once.

The baseline (the same scenario, seed and settings with the faults removed) exists only for
``latency_overhead``. Re-simulating it on every run cost 29-46% of a run's CPU, although the
variants of a comparison often share it: variants that change only faults, seeds repeated in a
shell session. So it is simulated only when the document needs it (the scenario has faults and
the caller wants the overhead), and its latency summary, the only part of it the document reads,
is kept in a small process-local LRU cache keyed by exactly what determines the baseline run.
The cached value is a handful of floats, so the cache stays small whatever the scenario's size,
and since a run is a pure function of (scenario, seed, settings), a hit gives the same document,
byte for byte, as a fresh simulation.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from retrysim.model.scenario import Scenario
from retrysim.results.document import ResultDocument
from retrysim.results.metrics import latency, summarize
from retrysim.results.sections import Latency
from retrysim.retry.settings import RetrySettings
from retrysim.sim import engine as sim_engine
from retrysim.sim.result import RunResult

CACHE_SIZE = 64  # baselines kept; each entry is a key of a few KB and five floats

BaselineKey = tuple[str, int, str]

_cache: OrderedDict[BaselineKey, Latency] = OrderedDict()
_lock = threading.Lock()  # the shell and notebooks are single-threaded, but a library may not be


@dataclass(frozen=True)
class Run:
    """What one run step produced: the records and the result document built from them.

    ``baseline`` says where ``latency_overhead`` came from: ``"none"`` (not needed: no faults,
    or the caller asked for no baseline), ``"simulated"`` (run now) or ``"cached"`` (reused from
    an earlier run with the same fault-free scenario, seed and settings).
    """

    result: RunResult
    document: ResultDocument
    baseline: Literal["none", "simulated", "cached"]


def run(
    scenario: Scenario,
    seed: int | None = None,
    settings: RetrySettings | None = None,
    *,
    baseline: bool = True,
    progress: sim_engine.Progress | None = None,
    cache: bool = True,
    retrying: Any = None,
    engine: str = "auto",
    retryings: Mapping[str, Any] | None = None,
) -> Run:
    """Simulate ``scenario`` and summarize it into the result document (``retrysim run --json``).

    ``seed`` defaults to the scenario's, ``settings`` to the documented defaults, as in
    :func:`retrysim.simulate`. With ``baseline`` (the default) and a scenario with faults, the
    document's ``latency_overhead`` is filled in from the fault-free baseline; ``baseline=False``
    skips it (``latency_overhead`` is then None, as from ``summarize(result)``). ``progress(done,
    total)`` counts calls ended against calls expected over the whole step: the main run, then
    the baseline if it is simulated (until then, it is expected to make as many calls as the
    main run), ending with ``done == total``. ``cache=False`` simulates the baseline even when
    a cached one exists, and does not store it. The document's ``wall_time`` is the whole step's.
    ``retrying`` simulates your own tenacity policy (see :func:`retrysim.simulate`); its
    baselines are not cached, since a policy object has no content to key them by.
    ``retryings`` does the same for tiers' calls (tier name -> policy; see
    :func:`retrysim.sim.engine.simulate`).
    ``engine`` picks the decision path (``auto``, ``fast``, ``reference``; see
    :func:`retrysim.simulate`): it changes how fast, never what.
    """
    started = time.perf_counter()
    if retrying is not None:
        from retrysim.sim.policy import policy_for

        retrying = policy_for(scenario, settings, (), retrying)  # probed once, for both runs
    cached = baseline and scenario.has_faults and cache and retrying is None and not retryings
    key = baseline_key(scenario, seed, settings) if cached else None
    base: Latency | None = _cached(key) if key is not None else None
    simulate_baseline = baseline and scenario.has_faults and base is None
    main_progress = progress
    if progress is not None and simulate_baseline:
        main_progress = _scaled(progress, twice=True)
    result = sim_engine.simulate(
        scenario,
        seed=seed,
        settings=settings,
        progress=main_progress,
        retrying=retrying,
        engine=engine,
        retryings=retryings,
    )
    source: Literal["none", "simulated", "cached"] = "cached" if base is not None else "none"
    if simulate_baseline:
        made = len(result.calls)
        base_progress = None if progress is None else _scaled(progress, offset=made)
        fault_free = scenario.without_faults()
        base = latency(
            sim_engine.simulate(
                fault_free,
                seed=seed,
                settings=settings,
                progress=base_progress,
                retrying=retrying,
                engine=engine,
                retryings=retryings,
            ).calls
        )
        source = "simulated"
        if key is not None:
            _store(key, base)
    document = summarize(result, wall_time=time.perf_counter() - started, baseline_latency=base)
    return Run(result, document, source)


def _scaled(
    progress: sim_engine.Progress, *, twice: bool = False, offset: int = 0
) -> sim_engine.Progress:
    """One run's ``progress`` as part of the step's: after ``offset`` calls of an earlier run,
    or (``twice``) with as many calls again still to come after it."""

    def report(done: int, total: int) -> None:
        progress(offset + done, offset + total * (2 if twice else 1))

    return report


def baseline_key(
    scenario: Scenario, seed: int | None, settings: RetrySettings | None
) -> BaselineKey:
    """Exactly what determines the baseline run: fault-free scenario, resolved seed, settings.

    Python-mode dumps through ``repr`` rather than JSON, because JSON writes inf, nan and None
    all as ``null`` and a key must never merge two different inputs. ``seed=None`` and
    ``settings=None`` are resolved as the engine resolves them (the scenario's seed, the
    documented defaults), so spelling the same run two ways shares one baseline. Every field
    counts, name and description included: two scenarios differing in anything but their
    faults never share a baseline, even where the difference could not change it.
    """
    resolved = scenario.seed if seed is None else seed
    used = settings if settings is not None else RetrySettings.defaults()
    return (
        repr(scenario.without_faults().model_dump(mode="python")),
        resolved,
        repr(used.model_dump(mode="python")),
    )


def clear_baseline_cache() -> None:
    """Forget every cached baseline (tests; or to measure a run's full cost)."""
    with _lock:
        _cache.clear()


def _cached(key: BaselineKey) -> Latency | None:
    with _lock:
        value = _cache.get(key)
        if value is None:
            return None
        _cache.move_to_end(key)
        return value.copy()  # a copy: no caller can change what the next run reads


def _store(key: BaselineKey, value: Latency) -> None:
    with _lock:
        _cache[key] = value.copy()
        _cache.move_to_end(key)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
