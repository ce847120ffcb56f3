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
    output.write_text(out / "attempts.csv", output.records_csv(result.attempts, result.error_names))
    output.write_text(out / "calls.csv", output.records_csv(result.calls, result.error_names))
    output.write_json(out / "result.json", document)
