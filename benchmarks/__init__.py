"""Performance measurements (not tests): ``python -m benchmarks`` runs the suite."""
