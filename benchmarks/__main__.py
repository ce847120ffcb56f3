"""``python -m benchmarks [NAME] [options]``: the suite (the default), ``engine`` or ``sweep``.

With no name, or options only, the speed suite runs (:mod:`benchmarks.suite`).
"""

import sys

from benchmarks import engine, suite, sweep

BENCHMARKS = {"suite": suite.main, "engine": engine.main, "sweep": sweep.main}

if __name__ == "__main__":
    args = sys.argv[1:]
    name = "suite" if not args or args[0].startswith("-") else args.pop(0)
    if name not in BENCHMARKS:
        sys.exit(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
    BENCHMARKS[name](args)
