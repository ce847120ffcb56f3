"""Regenerate the golden result files in tests/golden/ (review the diff before committing).

    python scripts/update_golden.py

A golden file is the result document of one bundled scenario with its own seed, computed by
``retrysim.runs.sweep.run_one`` (wall time zeroed, timeline left out). tests/test_golden.py fails
when a run no longer matches, so an unintended change in behaviour cannot slip through.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"
#: One scenario per shape of run: a blip, a lock under contention, a start-up race, and a
#: call graph (tiers each with its own seed and callers, which no one-tier golden reaches).
SCENARIOS = ("redis-blip", "lock-contention", "startup-race", "three-tier-storm")


def golden_document(name: str) -> dict[str, object]:
    import json

    import retrysim
    from retrysim import output
    from retrysim.runs.sweep import run_one

    scenario = retrysim.load_scenario(name)
    return json.loads(output.dumps(run_one(scenario, {}, scenario.seed, None)))  # type: ignore[no-any-return]


def main() -> int:
    from retrysim import output

    for name in SCENARIOS:
        output.write_json(GOLDEN / f"{name}.json", golden_document(name))
        print(f"wrote tests/golden/{name}.json")
    print("review with: git diff tests/golden/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
