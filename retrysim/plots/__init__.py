"""Matplotlib figures of retrysim results: pictures that make a retry policy's behaviour obvious.

Every function returns a :class:`matplotlib.figure.Figure` built directly (never through
``pyplot``), so calling them leaves no global figure state behind, works on any backend
including Agg on a headless CI machine, and a long-running process (or a test suite) does not
accumulate open figures. Functions that draw one panel take an optional ``ax`` so a notebook can
compose them into its own layout.

Inputs are plain data: a result document (the dict :func:`retrysim.summarize` returns, or
``result.json`` loaded back) or, where the per-attempt records add precision, a
:class:`retrysim.RunResult`; a ``RunResult`` is summarised on the fly wherever only the document
is needed. Comparisons take :class:`retrysim.runs.sweep.VariantResult` lists from
:func:`retrysim.compare`.

One module per kind of figure: ``timeline`` (:func:`herd_timeline`), ``spread``
(:func:`jitter_spread`), ``cdf`` (:func:`latency_cdf`), ``compare`` (:func:`compare_metrics`),
``sweep`` (:func:`sweep_heatmap`; :func:`heatmap_rows` for a saved sweep's rows), ``pareto``
(:func:`pareto_plot`: rows of ``{label, metrics...}`` from a sweep, a compare or a tuning
result, the best trade-offs marked), ``backoff`` (:func:`backoff_schedule`), ``tiers``
(:func:`tier_timeline`, :func:`tier_amplification`: a call graph's load and amplification per
tier), ``replicas`` (:func:`replica_timeline`: requests per second by replica), ``save``
(writing files, and the figures the CLI's ``--plot`` saves); ``_common`` holds what they
share. Metric wording comes from :mod:`retrysim.results.metric_table`; sampled waits from
:mod:`retrysim.sim.wait_samples` (re-exported here as :func:`sample_waits`).

matplotlib is an optional dependency (``pip install retrysim[plots]``); it is imported by the
functions here, never at import time, and never by :mod:`retrysim.sim` or :mod:`retrysim.retry`.
"""

from __future__ import annotations

from retrysim.plots._common import new_figure
from retrysim.plots.backoff import backoff_schedule
from retrysim.plots.cdf import latency_cdf
from retrysim.plots.compare import compare_metrics
from retrysim.plots.pareto import pareto_front, pareto_plot
from retrysim.plots.replicas import replica_timeline
from retrysim.plots.save import (
    FORMATS,
    run_figure,
    save_compare_figure,
    save_figure,
    save_run_figure,
    save_settings_figure,
    settings_figure,
)
from retrysim.plots.spread import jitter_spread
from retrysim.plots.sweep import grid_keys, heatmap_rows, sweep_heatmap
from retrysim.plots.tiers import tier_amplification, tier_timeline
from retrysim.plots.timeline import herd_timeline
from retrysim.results.metric_table import DEFAULT_COMPARE_METRICS
from retrysim.sim.wait_samples import sample_waits

__all__ = [
    "DEFAULT_COMPARE_METRICS",
    "FORMATS",
    "backoff_schedule",
    "compare_metrics",
    "grid_keys",
    "heatmap_rows",
    "herd_timeline",
    "jitter_spread",
    "latency_cdf",
    "new_figure",
    "pareto_front",
    "pareto_plot",
    "replica_timeline",
    "run_figure",
    "sample_waits",
    "save_compare_figure",
    "save_figure",
    "save_run_figure",
    "save_settings_figure",
    "settings_figure",
    "sweep_heatmap",
    "tier_amplification",
    "tier_timeline",
]
