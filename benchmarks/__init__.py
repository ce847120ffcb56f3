"""Performance measurements (not tests): ``python -m benchmarks engine``."""
