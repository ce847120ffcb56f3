"""The runs layer: one run, many runs (compare, sweep, tune) and where they execute."""
