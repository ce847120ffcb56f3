"""The fit layer: a scenario built from a system's own data (``retrysim fit``).

Readers turn request logs (CSV, JSON lines), Prometheus/OpenMetrics scrapes, OTLP JSON traces
and retrysim's own saved runs into one observation table (:mod:`retrysim.fit.observations`);
fitters estimate the arrival process, the service latency and the errors with their timing,
each value with its source, method, sample size and goodness of fit, or marked a default with
the reason (:mod:`retrysim.fit.result`); the writer turns that into a scenario file whose every
fitted value carries a comment saying where it came from (:mod:`retrysim.fit.writer`).

The whole pipeline in one call is :func:`retrysim.fit.pipeline.fit_files`. scipy does every
distribution and every fit; it is imported when a fit runs, never by the layers below.
"""
