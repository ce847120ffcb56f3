"""The results layer: every metric, fact and diagnosis, computed from a run's records."""
