"""``python -m benchmarks NAME``: run one benchmark (``engine`` or ``sweep``)."""

import sys

from benchmarks import engine, sweep

BENCHMARKS = {"engine": engine.main, "sweep": sweep.main}

if __name__ == "__main__":
    name = sys.argv[1] if len(sys.argv) > 1 else "engine"
    if name not in BENCHMARKS:
        sys.exit(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
    BENCHMARKS[name](sys.argv[2:])
