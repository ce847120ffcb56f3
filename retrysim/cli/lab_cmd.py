"""``retrysim lab``: a live screen for tuning a scenario's retry settings (Textual).

Textual is the ``retrysim[lab]`` extra: the lab's screen (the only importer of Textual) is
imported only when the command runs, and Textual's absence is one line and exit 2, like any
other input the user can fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from retrysim.cli import value_completion
from retrysim.cli.exits import UsageError, reports_errors, stopped_by, warn
from retrysim.cli.options import EnvFileOption, SeedOption

MISSING_TEXTUAL = "retrysim lab needs Textual: pip install 'retrysim[lab]'"


@reports_errors
def lab(
    scenario: Annotated[
        str,
        typer.Argument(
            help="A bundled scenario name (see 'retrysim scenarios') or a path to a TOML file.",
            metavar="SCENARIO",
            autocompletion=value_completion.scenarios,
        ),
    ] = "thundering-herd",
    seed: SeedOption = None,
    env_file: EnvFileOption = None,
    write_env: Annotated[
        Path,
        typer.Option(
            "--write-env",
            help="The .env that e merges the current settings' RETRY__* lines into (other "
            "lines and comments kept; written atomically).",
            metavar="FILE",
        ),
    ] = Path(".env"),
    save_as: Annotated[
        Path | None,
        typer.Option(
            "--save-as",
            help="Where s saves the scenario (default: the file it came from, or NAME.toml "
            "here for a bundled one).",
            metavar="FILE",
        ),
    ] = None,
) -> None:
    """Tune retry settings live: change a knob, see the run, the spread and the metrics move.

    The scenario and its faults on the left, the policy's settings as knobs (tab or up/down
    between them, left/right to step, enter to type); on the right the attempts timeline with
    the fault windows, the spread of the waits before first retries, the key metrics against
    a pinned run, and the diagnoses. Keys: p pin the baseline, f faults on/off, s save the
    scenario (TOML), e write the .env lines, t run tune and show its recommendation, q quit.
    Needs the lab extra: pip install 'retrysim[lab]'.
    """
    try:
        from retrysim.lab.app import run_lab
    except ImportError as error:  # Textual missing is the user's to fix; anything else a bug
        if (error.name or "").partition(".")[0] == "textual":
            raise UsageError(MISSING_TEXTUAL) from None
        raise
    from retrysim.cli import common
    from retrysim.env_write import check_env_target
    from retrysim.errors import BadInputError
    from retrysim.lab.model import LabModel
    from retrysim.model.session import load
    from retrysim.output import check_target

    try:  # say now what e would refuse; the lab is still of use without it
        check_env_target(write_env)
    except BadInputError as error:
        warn(f"{error}; e will not write it")
    if save_as is not None:
        check_target(save_as, "--save-as")
    loaded = load(scenario, common.load(scenario, {}))
    settings, _ = common.settings(env_file)

    stopped = run_lab(LabModel(loaded, settings, seed=seed, env_path=write_env, save_path=save_as))
    if stopped is not None:
        raise stopped_by(stopped)
