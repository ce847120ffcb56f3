"""What the user can tell ``retrysim fit`` about the data and the fit: the options, once.

The CLI builds these from its flags; a notebook builds them directly. Every default is the
one the docstrings and the written scenario's comments describe.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

#: Formats a reader exists for (``--format``); "auto" detects by extension and content.
FORMATS = ("auto", "csv", "jsonl", "prometheus", "otlp", "retrysim")


@dataclass(frozen=True)
class ReadOptions:
    """How to read the inputs.

    ``columns``: role -> column name (``timestamp``, ``duration``, ``end``, ``outcome``,
    ``error``, ``client``, ``call``, ``attempt``, ``tier``), for logs. ``duration_unit`` and
    ``timestamp_unit`` (``s``, ``ms``, ``us``, ``ns``) override what a column's name says.
    ``scrape_interval``: seconds between Prometheus scrapes whose samples carry no
    timestamp (the files are taken in the order given). ``metric``: the histogram to fit the
    latency to, when a scrape holds several.
    """

    format: str = "auto"
    columns: Mapping[str, str] = field(default_factory=dict)
    duration_unit: str | None = None
    timestamp_unit: str | None = None
    scrape_interval: float | None = None
    metric: str | None = None


@dataclass(frozen=True)
class FitOptions:
    """How to fit.

    ``bin_width``: seconds per bin for rates over time (None: chosen from the data,
    :func:`retrysim.fit.arrivals.choose_bin_width`). ``quantiles``: N of an empirical
    latency's N+1 quantiles. ``alpha``: the significance level of every test the fit reports
    a verdict from (Poisson or not, a family rejected or not). ``name``: the scenario's name.
    """

    bin_width: float | None = None
    quantiles: int = 50
    alpha: float = 0.01
    name: str = "fitted"
