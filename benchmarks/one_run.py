"""``python -m benchmarks.one_run ENGINE CLIENTS [--setup-only]``: one simulation, nothing else.

The process whose instructions :mod:`benchmarks.instructions` counts under callgrind. Python's
start-up, the imports and the engine's first-use costs (lazy imports, the core's lowering code
warming up) are not the simulation's, so both modes do all of that, including a warm-up run of
a 100-client herd on the same engine; only the full mode then simulates ``thundering-herd`` at
``CLIENTS`` clients. The difference of the two counts is that one simulation.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from retrysim.model.library import load_scenario
from retrysim.sim.engine import simulate

WARM_UP_CLIENTS = 100


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.one_run")
    parser.add_argument("engine", choices=["native", "fast"])
    parser.add_argument("clients", type=int)
    parser.add_argument("--setup-only", action="store_true", help="everything but the run")
    args = parser.parse_args(argv)
    herd = load_scenario("thundering-herd")
    scenario = herd.with_overrides({"clients.count": args.clients})
    warm = simulate(herd.with_overrides({"clients.count": WARM_UP_CLIENTS}), engine=args.engine)
    if not args.setup_only:
        result = simulate(scenario, engine=args.engine)
        print(f"engine={result.engine} attempts={len(result.attempts)}")
    else:
        print(f"engine={warm.engine} setup only")


if __name__ == "__main__":
    main()
