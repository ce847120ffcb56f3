"""Prometheus and OpenMetrics text, scraped over time, as counts per interval between scrapes.

The text is parsed by ``prometheus_client``'s own parsers (``prometheus_client.parser``, or
``prometheus_client.openmetrics.parser`` for a text ending in ``# EOF``), never by hand. A
scrape is one file, or, when samples carry timestamps, every sample with one timestamp.
Counters and histogram buckets are cumulative, so what happened between two scrapes is the
difference (a value that fell is a restart: the new value is what happened since). What is
read:

- the latency histogram (``--metric``, else the histogram whose name says duration, latency or
  seconds): its bucket counts per interval, for a binned fit (:mod:`retrysim.fit.binned`);
- requests and errors per interval: a counter with a status-like label (``code``, ``status``,
  ``error``...), each label value read as an outcome (:func:`retrysim.fit.values.outcome`),
  else the histogram's ``_count`` split by such a label, else its ``_count`` alone (no errors).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from retrysim.fit import values
from retrysim.fit.observations import FitInputError, Floats, Source
from retrysim.fit.options import ReadOptions
from retrysim.sim.latency import FIT_EXTRA

#: Labels whose values say how a request ended, most telling first.
STATUS_LABELS = (
    "error",
    "error_type",
    "exception",
    "status",
    "status_code",
    "code",
    "http_status",
    "http_response_status_code",
    "grpc_code",
    "outcome",
    "result",
)
_LATENCY_WORDS = re.compile(r"duration|latency|seconds|time")
_UNITS = (("_seconds", "s"), ("_milliseconds", "ms"), ("_ms", "ms"), ("_microseconds", "us"))

Key = tuple[str, tuple[tuple[str, str], ...]]


@dataclass(frozen=True)
class Scrapes:
    """Counts per interval between consecutive scrapes.

    ``starts``/``ends``: each interval's times in seconds (None: the samples had no timestamp
    and no scrape interval was given: counts without times). ``edges``: the histogram's bucket
    bounds in seconds, ``inf`` last; ``buckets``: per interval, the observations in each bucket
    (not cumulative). ``requests`` and ``errors`` (by error name): per interval.
    """

    starts: Floats | None
    ends: Floats | None
    metric: str | None
    edges: Floats
    buckets: npt.NDArray[np.float64]
    requests: Floats
    errors: dict[str, Floats]
    request_metric: str | None
    source: Source
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def intervals(self) -> int:
        return len(self.requests)


def parse(path: Path, text: str) -> list[Any]:
    """The metric families of one text, by prometheus_client's parser (OpenMetrics when the
    text ends with ``# EOF``); a parse failure is one line naming the file."""
    try:
        from prometheus_client import parser
        from prometheus_client.openmetrics import parser as openmetrics
    except ImportError:
        raise FitInputError(
            f"{path}: reading Prometheus text needs prometheus_client, which is not installed: "
            f"pip install '{FIT_EXTRA}'"
        ) from None

    module: Any = openmetrics if text.rstrip().endswith("# EOF") else parser
    try:
        return list(module.text_string_to_metric_families(text))
    except (ValueError, TypeError, KeyError, IndexError) as error:
        raise FitInputError(f"{path}: not Prometheus text: {error}") from None


def read_scrapes(files: list[tuple[Path, str]], options: ReadOptions) -> Scrapes:
    """Scrapes from one or more texts, in time order (timestamps, else the files' order)."""
    families: dict[str, tuple[str, str]] = {}  # name -> (type, unit)
    scrapes: dict[Any, dict[Key, float]] = defaultdict(dict)
    timed = None
    for index, (path, text) in enumerate(files):
        for family in parse(path, text):
            families.setdefault(family.name, (family.type, getattr(family, "unit", "") or ""))
            for sample in family.samples:
                has_time = sample.timestamp is not None
                if timed is None:
                    timed = has_time
                elif timed != has_time:
                    raise FitInputError(
                        f"{path}: sample {sample.name} {'has' if has_time else 'has no'} "
                        "timestamp, unlike the samples before it: give all or none"
                    )
                when = float(sample.timestamp) if has_time else index
                key = (sample.name, tuple(sorted(sample.labels.items())))
                scrapes[when][key] = float(sample.value)
    paths = ", ".join(str(p) for p, _ in files)
    label = files[0][0].name if len(files) == 1 else f"{files[0][0].name} to {files[-1][0].name}"
    if not scrapes:
        raise FitInputError(f"{paths}: no samples")
    order = sorted(scrapes)
    notes: list[str] = []
    metric = _histogram(families, options.metric, paths, notes)
    edges, cumulative = _buckets(metric, [scrapes[k] for k in order], families, notes)
    requests, errors, request_metric = _outcomes(families, metric, [scrapes[k] for k in order])
    if request_metric is None:
        raise FitInputError(
            f"{paths}: no histogram and no counter to read requests from; "
            "retrysim fit reads request histograms and counters"
        )
    if not errors:
        notes.append(f"{request_metric}: no status or error label: error rates not fitted")
    times = _times(order, bool(timed), options.scrape_interval, len(files), notes)
    if len(order) == 1:
        notes.append("one scrape: counts since the process started, no rate over time")
    source = Source(
        label,
        "prometheus",
        len(order),
        {"latency": metric or "none", "requests": request_metric},
        tuple(notes),
    )
    one = len(order) == 1
    return Scrapes(
        starts=None if times is None or one else times[:-1],
        ends=None if times is None or one else times[1:],
        metric=metric,
        edges=edges,
        buckets=cumulative if one else _deltas(cumulative),
        requests=requests if one else _deltas(requests),
        errors={name: (v if one else _deltas(v)) for name, v in errors.items()},
        request_metric=request_metric,
        source=source,
        notes=tuple(notes),
    )


def _histogram(
    families: dict[str, tuple[str, str]], given: str | None, paths: str, notes: list[str]
) -> str | None:
    histograms = sorted(name for name, (kind, _) in families.items() if kind == "histogram")
    if given is not None:
        if given not in histograms:
            raise FitInputError(
                f"{paths}: no histogram {given!r} (--metric); histograms: "
                f"{', '.join(histograms) or 'none'}"
            )
        return given
    if not histograms:
        notes.append("no histogram: the latency is not fitted")
        return None
    telling = [name for name in histograms if _LATENCY_WORDS.search(name)]
    chosen = (telling or histograms)[0]
    if len(histograms) > 1:
        notes.append(f"histogram {chosen} read for the latency (--metric to pick another)")
    return chosen


def _unit(metric: str, unit: str, notes: list[str]) -> float:
    for suffix, name in _UNITS:
        if metric.endswith(suffix) or unit == suffix[1:]:
            return values.UNITS[name]
    notes.append(f"{metric}: no unit in its name: bucket bounds read as seconds")
    return 1.0


def _buckets(
    metric: str | None,
    scrapes: list[dict[Key, float]],
    families: dict[str, tuple[str, str]],
    notes: list[str],
) -> tuple[Floats, npt.NDArray[np.float64]]:
    """The bucket bounds (seconds, ``inf`` last) and each scrape's cumulative counts in each
    bucket (summed over every other label), made non-cumulative across buckets.

    When the buckets carry a status-like label, only the series whose value reads as a
    success count: the service's latency is its answers', and an error's duration (a refused
    connection in a millisecond, a timeout at its limit) is the error's, not the service's."""
    if metric is None:
        return np.array([math.inf]), np.zeros((len(scrapes), 1))
    scale = _unit(metric, families[metric][1], notes)
    kept = _successes(metric + "_bucket", scrapes, notes)
    les = sorted(
        {
            float(dict(labels)["le"])
            for s in scrapes
            for (name, labels) in s
            if name == metric + "_bucket"
        }
    )
    if not les or les[-1] != math.inf:
        les.append(math.inf)
    position = {le: i for i, le in enumerate(les)}
    counts = np.zeros((len(scrapes), len(les)))
    for row, scrape in enumerate(scrapes):
        for (name, labels), value in scrape.items():
            if name == metric + "_bucket" and kept(labels):
                counts[row, position[float(dict(labels)["le"])]] += value
    per_bucket = np.diff(counts, axis=1, prepend=0.0)  # cumulative over le -> each bucket's own
    edges = np.array([le * scale if math.isfinite(le) else math.inf for le in les])
    return edges, per_bucket


def _status_label(sample: str, scrapes: list[dict[Key, float]]) -> str | None:
    """The most telling status-like label (:data:`STATUS_LABELS`) ``sample``'s series carry."""
    present = {k for s in scrapes for (name, ls) in s if name == sample for k, _ in ls}
    return next((label for label in STATUS_LABELS if label in present), None)


def _successes(
    sample: str, scrapes: list[dict[Key, float]], notes: list[str]
) -> Callable[[tuple[tuple[str, str], ...]], bool]:
    """Which of ``sample``'s series the latency reads: those whose status-like label says
    success; all of them when there is no such label, or no series of a success."""
    label = _status_label(sample, scrapes)
    if label is None:
        return lambda labels: True
    series = {ls for s in scrapes for (name, ls) in s if name == sample}
    ok = {ls for ls in series if not values.outcome(dict(ls).get(label, ""))}
    base = sample.removesuffix("_bucket")
    if not ok:
        notes.append(f"{base}: no series with a successful {label}: errors' durations read too")
        return lambda labels: True
    kinds = len({dict(ls).get(label) for ls in series})
    notes.append(f"{base}: latency from the successful {label} only ({kinds} values seen)")
    return lambda labels: labels in ok


def _outcomes(
    families: dict[str, tuple[str, str]], metric: str | None, scrapes: list[dict[Key, float]]
) -> tuple[Floats, dict[str, Floats], str | None]:
    """Requests and errors by name, cumulative per scrape, from the best source there is."""
    candidates: list[tuple[str, str]] = []  # (sample name, family)
    counters = sorted(name for name, (kind, _) in families.items() if kind == "counter")
    counters.sort(key=lambda n: ("request" not in n, n))
    candidates += [(name + "_total", name) for name in counters]
    if metric is not None:
        candidates.append((metric + "_count", metric))
    best: tuple[str, str, str | None] | None = None
    for sample, family in candidates:
        label = _status_label(sample, scrapes)
        if label is not None:
            best = (sample, family, label)
            break
        if best is None and any(name == sample for s in scrapes for name, _ in s):
            best = (sample, family, None)
    if best is None:
        return np.zeros(len(scrapes)), {}, None
    sample, family, label = best
    requests = np.zeros(len(scrapes))
    errors: dict[str, Floats] = defaultdict(lambda: np.zeros(len(scrapes)))
    for row, scrape in enumerate(scrapes):
        for (name, pairs), value in scrape.items():
            if name != sample:
                continue
            requests[row] += value
            if label is not None:
                error = values.outcome(dict(pairs).get(label, ""))
                if error:
                    errors[error][row] += value
    shown = sample if label is None else f"{sample} by {label}"
    return requests, dict(sorted(errors.items())), shown


def _times(
    order: list[Any], timed: bool, interval: float | None, files: int, notes: list[str]
) -> Floats | None:
    if timed:
        return np.array(order, dtype=np.float64)
    if interval is not None:
        notes.append(
            f"no timestamps on the samples: files {interval:g} s apart (--scrape-interval)"
        )
        return np.arange(len(order), dtype=np.float64) * interval
    if files > 1:
        notes.append("no timestamps on the samples and no --scrape-interval: rates have no time")
    return None


def _deltas(cumulative: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """What happened between consecutive scrapes; a fall is a restart (the new value is all
    that happened since)."""
    step = np.diff(cumulative, axis=0)
    return np.where(step < 0, cumulative[1:], step)
