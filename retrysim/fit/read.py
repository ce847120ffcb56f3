"""Every input of ``retrysim fit`` read into one :class:`Data`: the format of each found by its
extension and content (``--format`` overrides), the readers run, the tables joined.

Request logs, traces and saved runs give rows (joined into one table); Prometheus texts give
scrapes (all the files one series of scrapes). The time origin is set once for all of them
(:data:`~retrysim.fit.observations.RELATIVE_BELOW`), so windows found in one line up with the
others.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from retrysim.errors import not_utf8
from retrysim.fit import logs, otlp, prometheus, saved_run
from retrysim.fit.graph import CallGraph
from retrysim.fit.observations import (
    RELATIVE_BELOW,
    FitInputError,
    Observations,
    Source,
    concatenated,
    empty,
    file_digest,
)
from retrysim.fit.options import FORMATS, ReadOptions
from retrysim.fit.prometheus import Scrapes
from retrysim.fit.values import UNITS

#: A line of Prometheus text: a comment it knows, or a sample (name, labels, a number, maybe
#: a timestamp).
_PROMETHEUS_LINE = re.compile(
    r"^(# (TYPE|HELP|UNIT|EOF)"
    r"|[A-Za-z_:][\w:]*(\{[^}]*\})?\s+[-+]?([0-9.]|Inf|NaN)\S*(\s+\d+)?\s*$)"
)
_PROMETHEUS_EXTENSIONS = {".prom", ".metrics", ".om", ".openmetrics", ".txt"}


@dataclass(frozen=True)
class Data:
    """What the inputs hold: request rows (possibly none), Prometheus scrapes (None: no
    Prometheus input), the call graph of tiers (traces or a saved call graph), each input's
    :class:`~retrysim.fit.observations.Source`, and the window calls arrived in when an input
    says it (a saved run's ``result.json``). Times are seconds after ``origin`` (epoch
    seconds; 0 for a run's own clock)."""

    requests: Observations
    scrapes: Scrapes | None
    graph: CallGraph | None
    sources: tuple[Source, ...]
    window: tuple[float, float] | None = None
    notes: tuple[str, ...] = ()
    origin: float = 0.0


def read_text(path: Path) -> str:
    """A file's text (UTF-8; one line saying where it is not)."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise FitInputError(f"{path}: cannot read: {error.strerror or error}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise FitInputError(f"{path}: not UTF-8 text ({not_utf8(raw, error)})") from None


def detect(path: Path, text: str) -> str:
    """The format of one input, from its extension and its first lines."""
    if path.is_dir():
        return "retrysim"
    suffix = path.suffix.lower()
    head = text.lstrip()[:4096]
    first = head.splitlines()[0] if head else ""
    if "resourceSpans" in head and head.startswith(("{", "[")):
        return "otlp"
    if suffix in {".csv", ".tsv"}:
        return "retrysim" if saved_run.is_run_table(first.split(",")) else "csv"
    if suffix in {".jsonl", ".ndjson", ".json"} or head.startswith("{"):
        return "jsonl"
    lines = [line for line in head.splitlines()[:20] if line.strip()]
    if lines and all(_PROMETHEUS_LINE.match(line) for line in lines):
        return "prometheus"
    if suffix in _PROMETHEUS_EXTENSIONS and lines and _PROMETHEUS_LINE.match(lines[0]):
        return "prometheus"
    if "," in first or "\t" in first:
        return "retrysim" if saved_run.is_run_table(first.split(",")) else "csv"
    raise FitInputError(f"{path}: cannot tell its format; give --format ({', '.join(FORMATS[1:])})")


def read_inputs(paths: Sequence[str | Path], options: ReadOptions | None = None) -> Data:
    """Read every input (see the module docstring)."""
    options = options or ReadOptions()
    _check_options(options)
    if not paths:
        raise FitInputError("no input: give one or more files (logs, scrapes, traces) or folders")
    tables: list[Observations] = []
    sources: list[Source] = []
    graph: CallGraph | None = None
    window: tuple[float, float] | None = None
    scrapes: list[tuple[Path, str]] = []
    notes: list[str] = []
    for given in paths:
        path = Path(given)
        text = read_text(_checked(path))
        fmt = detect(path, text) if options.format == "auto" else options.format
        if fmt == "prometheus":
            scrapes.append((path, text))
            continue
        table, source, found, known = _read_one(path, text, fmt, options)
        window = window or known
        if found is not None and len(found.chain) > 1:
            if graph is not None:
                notes.append(f"{path}: a second call graph; the first one's tiers are kept")
            else:
                graph = found
        tables.append(table)
        sources.append(replace(source, sha256=file_digest(path)))
    read_scrapes = None
    if scrapes:
        read_scrapes = prometheus.read_scrapes(scrapes, options)
        digest = ",".join(file_digest(p)[:16] for p, _ in scrapes)
        sources.append(replace(read_scrapes.source, sha256=digest))
    requests = concatenated(tables) if tables else empty()
    origin = _origin(requests, read_scrapes)
    if origin:
        shift = origin - requests.origin
        requests = replace(requests, time=requests.time - shift, origin=origin)
        read_scrapes = _shifted(read_scrapes, origin)
        window = None
    return Data(requests, read_scrapes, graph, tuple(sources), window, tuple(notes), origin)


def _checked(path: Path) -> Path:
    """The file to read for ``path``: itself, or a saved run folder's ``attempts.csv``."""
    if not path.exists():
        raise FitInputError(f"{path}: no such file or folder")
    if path.is_dir() and not (path / "attempts.csv").is_file():
        raise FitInputError(
            f"{path}: a folder is read as a saved run (run --out, chaos --out) and needs "
            "attempts.csv"
        )
    return saved_run.attempts_file(path)


def _read_one(
    path: Path, text: str, fmt: str, options: ReadOptions
) -> tuple[Observations, Source, CallGraph | None, tuple[float, float] | None]:
    """One input of rows: its table, source, call graph and known window."""
    if fmt == "retrysim":
        run = saved_run.read_run(path, text)
        return run.observations, run.source, run.graph, run.window
    if fmt == "otlp":
        table, source, graph = otlp.read_otlp(path, text)
        return table, source, graph, None
    read = logs.read_csv if fmt == "csv" else logs.read_jsonl
    table, source = read(path, text, options)
    return table, source, None, None


def _shifted(scrapes: Scrapes | None, origin: float) -> Scrapes | None:
    if scrapes is None or scrapes.starts is None or scrapes.ends is None:
        return scrapes
    return replace(scrapes, starts=scrapes.starts - origin, ends=scrapes.ends - origin)


def _check_options(options: ReadOptions) -> None:
    if options.format not in FORMATS:
        raise FitInputError(f"--format {options.format!r}: allowed: {', '.join(FORMATS)}")
    for name, unit in (
        ("--duration-unit", options.duration_unit),
        ("--timestamp-unit", options.timestamp_unit),
    ):
        if unit is not None and unit not in UNITS:
            raise FitInputError(f"{name} {unit!r}: allowed: {', '.join(UNITS)}")
    interval = options.scrape_interval
    if interval is not None and not (math.isfinite(interval) and interval > 0):
        raise FitInputError(f"--scrape-interval {interval!r}: a positive number of seconds")


def _origin(requests: Observations, scrapes: Scrapes | None) -> float:
    """One origin for every time read: 0 for a run's own clock, else the first whole second
    (a reader may have set the table's origin already: traces keep nanoseconds exact so)."""
    base = requests.origin
    firsts = [base + float(requests.time[0])] if len(requests) else []
    lasts = [base + float(requests.time[-1])] if len(requests) else []
    if scrapes is not None and scrapes.starts is not None and scrapes.ends is not None:
        firsts.append(float(scrapes.starts[0]))
        lasts.append(float(scrapes.ends[-1]))
    if not firsts or (min(firsts) >= 0 and max(lasts) < RELATIVE_BELOW):
        return 0.0
    if len(requests) and math.floor(min(firsts)) == math.floor(base + float(requests.time[0])):
        return base + math.floor(float(requests.time[0]))  # whole seconds after the base
    return float(math.floor(min(firsts)))
