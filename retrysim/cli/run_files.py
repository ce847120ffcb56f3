"""``--out DIR`` for one run: the files ``retrysim run`` and ``retrysim chaos`` write alike.

A simulation and a real run are the same data (a ``RunResult`` of attempt and call records
and the result document ``summarize`` builds from them), so they are saved the same way and
everything that reads a saved run (``retrysim plot DIR``, a notebook reading the CSVs or
``retrysim.results.document.from_json``) reads either. Each file is written atomically
(:mod:`retrysim.output`); the records first and ``result.json`` last, so a folder whose
``result.json`` is new holds that run's records too.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from retrysim.results.document import ResultDocument
    from retrysim.sim.result import RunResult

#: What ``--out DIR`` holds after a run, in the order written.
RUN_FILES = ("attempts.csv", "calls.csv", "result.json")


def write_run_files(out: Path, document: ResultDocument, result: RunResult) -> None:
    """Write ``attempts.csv``, ``calls.csv`` (error codes as names) and ``result.json`` into
    ``out``, creating the folder (checked beforehand with ``retrysim.cli.paths.check_out_dir``)."""
    from retrysim import output

    out.mkdir(parents=True, exist_ok=True)
    if result.tiers:
        attempts, calls = _graph_csvs(result)
    else:
        attempts = output.records_csv(result.attempts, result.error_names)
        calls = output.records_csv(result.calls, result.error_names)
    output.write_text(out / "attempts.csv", attempts)
    output.write_text(out / "calls.csv", calls)
    output.write_json(out / "result.json", document)


def _graph_csvs(result: RunResult) -> tuple[str, str]:
    """A call graph's records, every tier's, top first, in one table each: a ``tier`` column
    first, and for calls a ``parent`` column (the row, among the tier above's attempts, of the
    request the call served; -1 at the top)."""
    import numpy as np

    from retrysim import output

    tiers = result.tiers
    attempts = np.concatenate([tier.attempts for tier in tiers])
    calls = np.concatenate([tier.calls for tier in tiers])
    attempt_tiers = [tier.name for tier in tiers for _ in range(len(tier.attempts))]
    call_tiers = [tier.name for tier in tiers for _ in range(len(tier.calls))]
    parents = np.concatenate([tier.parents for tier in tiers]).tolist()
    return (
        output.records_csv(attempts, result.error_names, {"tier": attempt_tiers}),
        output.records_csv(calls, result.error_names, {"tier": call_tiers, "parent": parents}),
    )
