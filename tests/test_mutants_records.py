"""Attempt records (``retrysim/sim/records.py``): behaviour its mutation run found untested.

The outcome codes are a file format: ``attempts.csv`` (``--out``) numbers them as the README
documents, and ``retrysim fit`` reads saved runs by them.
"""

from __future__ import annotations

import csv
import io
from collections import Counter

from retrysim.output import records_csv
from retrysim.sim.engine import simulate
from tests.test_hedging_engine import hedged

#: attempts.csv's outcome codes as the README documents them.
DOCUMENTED = {"0": "ok", "1": "failed", "2": "timed out", "3": "open", "4": "cancelled"}


def test_the_saved_attempts_number_each_outcome_as_documented() -> None:
    """A hedged run cut by its time limit, with failures, timeouts and a slow tail, has every
    outcome: 3 is an attempt still open when the run stopped (no end), 4 a hedged send
    cancelled because another answered first (an end, no error of its own), and only 1 and 2
    carry an error."""
    result = simulate(
        hedged(
            sends=3,
            delay=0.3,
            clients=100,
            flaky=0.3,
            limits={"max_time": 4.0},
            service={"kind": "ideal", "latency": {"dist": "lognormal", "median": 0.5, "p99": 5.0}},
        )
    )
    rows = list(csv.DictReader(io.StringIO(records_csv(result.attempts, result.error_names))))
    seen = Counter(row["outcome"] for row in rows)
    assert set(seen) == set(DOCUMENTED), seen
    for row in rows:
        code = row["outcome"]
        assert (row["end"] == "") == (code == "3"), row
        assert (row["error"] != "") == (code in ("1", "2")), row
    timed_out = {row["error"] for row in rows if row["outcome"] == "2"}
    assert timed_out == {"TimeoutError"}
