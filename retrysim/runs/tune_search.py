"""How ``retrysim tune`` proposes candidates: a whole grid, seeded random draws, or Optuna's TPE.

The default (``auto``) needs no extra: a small grid whole, else seeded random search, so the
same command and seeds recommend the same settings whether or not Optuna is installed; Optuna
runs only with ``--strategy optuna`` (the ``retrysim[tune]`` extra; refused in one line
without it) and never loads otherwise.

Each proposer hands out batches of candidates and may learn from their scores; the tuner
(:mod:`retrysim.runs.tune`) runs them, races them over seeds and picks the best. Batches are a fixed
size, so what is proposed never depends on how many workers run it.
"""

from __future__ import annotations

from typing import Any, Literal

from retrysim.runs.tune_space import Dimension, TuneError, Tuning, grid_size

#: What a model-based search is told of a candidate: its settings, its objective (None: it
#: could not be judged) and a penalty per constraint (<= 0 when met).
Judged = tuple[dict[str, Any], float | None, list[float]]

#: Grids up to this many candidates are tried whole when no --budget is given.
EXHAUSTIVE_LIMIT = 64
#: Candidates a search proposes when no --budget is given and the space is not a small grid.
DEFAULT_BUDGET = 40
#: Candidates Optuna proposes at a time: fixed, so results do not depend on the worker count.
BATCH = 8


def strategy(tuning: Tuning) -> str:
    """The search ``auto`` means: a small finite grid whole, else seeded random search. Never
    Optuna (``--strategy optuna`` only), so whether the extra is installed changes nothing."""
    if tuning.search != "auto":
        return tuning.search
    dims = tuning.dimensions
    if all(d.finite for d in dims):
        size = grid_size(dims)  # counted, never built: a 1..10^15 range is one number here
        if size <= (tuning.budget if tuning.budget is not None else EXHAUSTIVE_LIMIT):
            return "grid"
    return "random"  # the same answer on every install: Optuna only when asked for


def _optuna_available() -> bool:
    try:
        import optuna  # noqa: F401
    except ImportError:
        return False
    return True


class Proposer:
    budget: int

    def propose(self) -> list[dict[str, Any]]:
        """The next candidates' settings (dotted key -> value); empty when there are no more."""
        raise NotImplementedError

    def observe(self, judged: list[Judged]) -> None:
        """Learn from a judged batch (only the model-based search does)."""


def proposer(name: str, tuning: Tuning) -> Proposer:
    """The proposer ``strategy`` names (``grid``, ``optuna``, ``random``)."""
    if name == "grid":
        return _Grid(tuning)
    if name == "optuna":
        if not _optuna_available():
            raise TuneError("--strategy optuna needs Optuna: pip install 'retrysim[tune]'")
        return _Optuna(tuning)
    return _Random(tuning)


def label_of(sets: dict[str, Any]) -> str:
    """Settings as tables show them: ``max_attempts=3, min_wait=0.5``."""
    return ", ".join(f"{k.removeprefix('policy.')}={_show(v)}" for k, v in sets.items())


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).lower() if isinstance(value, bool) else str(value)


class _Grid(Proposer):
    """The grid's first ``budget`` points in ``itertools.product`` order (the last dimension
    fastest), each decoded from its index: only the points proposed are ever built."""

    def __init__(self, tuning: Tuning) -> None:
        self.dims = tuning.dimensions
        size = grid_size(self.dims)
        self.budget = size if tuning.budget is None else min(tuning.budget, size)
        self.given = False

    def propose(self) -> list[dict[str, Any]]:
        if self.given:
            return []
        self.given = True
        return [self._point(index) for index in range(self.budget)]

    def _point(self, index: int) -> dict[str, Any]:
        values = []
        for dim in reversed(self.dims):
            index, offset = divmod(index, dim.size)
            values.append(dim.at(offset))
        return dict(zip((d.key for d in self.dims), reversed(values), strict=True))


def _round(dim: Dimension, value: float) -> Any:
    """A drawn value as it will be recommended: whole, or to three significant digits (a
    setting of 1.45886 s says nothing 1.46 s does not), so what runs is what is written."""
    return round(value) if dim.integer else float(f"{value:.3g}")


class _Random(Proposer):
    """Seeded random search: a draw per dimension per candidate, uniform on each range."""

    def __init__(self, tuning: Tuning) -> None:
        import numpy as np

        self.dims = tuning.dimensions
        self.budget = tuning.budget if tuning.budget is not None else DEFAULT_BUDGET
        self.rng = np.random.default_rng(tuning.search_seed)
        self.tries = 0

    def propose(self) -> list[dict[str, Any]]:
        self.tries += 1
        if self.tries > 50:  # a small space whose every point was drawn already
            return []
        out = []
        for _ in range(BATCH):
            sets = {}
            for dim in self.dims:
                if dim.values:
                    sets[dim.key] = dim.values[int(self.rng.integers(len(dim.values)))]
                else:
                    assert dim.low is not None and dim.high is not None
                    if dim.integer:
                        sets[dim.key] = int(self.rng.integers(int(dim.low), int(dim.high) + 1))
                    else:
                        sets[dim.key] = _round(dim, self.rng.uniform(dim.low, dim.high))
            out.append(sets)
        return out


class _Optuna(Proposer):
    """Optuna's TPE sampler, seeded, asked a fixed batch at a time, told each score in order."""

    def __init__(self, tuning: Tuning) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.optuna = optuna
        self.tuning = tuning
        self.budget = tuning.budget if tuning.budget is not None else DEFAULT_BUDGET
        # Optuna 5 takes constraints from each trial; before it, from a function of the trial.
        self.per_trial = hasattr(optuna.trial.Trial, "set_constraint")
        sampler = optuna.samplers.TPESampler(
            seed=tuning.search_seed,
            constraints_func=(
                None if self.per_trial else lambda trial: trial.user_attrs["constraints"]
            ),
        )
        direction: Literal["maximize", "minimize"] = (
            "maximize" if tuning.objective.maximize else "minimize"
        )
        self.study = optuna.create_study(direction=direction, sampler=sampler)
        self.trials: dict[str, Any] = {}

    def propose(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for _ in range(BATCH):
            trial = self.study.ask()
            sets = {}
            for dim in self.tuning.dimensions:
                if dim.values:
                    sets[dim.key] = trial.suggest_categorical(dim.key, list(dim.values))
                elif dim.integer:
                    assert dim.low is not None and dim.high is not None
                    sets[dim.key] = trial.suggest_int(dim.key, int(dim.low), int(dim.high))
                else:
                    assert dim.low is not None and dim.high is not None
                    value = trial.suggest_float(dim.key, dim.low, dim.high)
                    sets[dim.key] = _round(dim, value)
            label = label_of(sets)
            if label in self.trials:  # drawn before: a trial of no new information
                self.study.tell(trial, state=self.optuna.trial.TrialState.PRUNED)
                continue
            self.trials[label] = trial
            out.append(sets)
        return out

    def observe(self, judged: list[Judged]) -> None:
        for sets, value, penalties in judged:
            trial = self.trials[label_of(sets)]
            if self.per_trial:
                for index, penalty in enumerate(penalties):
                    trial.set_constraint(f"constraint{index}", penalty)
            else:
                trial.set_user_attr("constraints", penalties)
            if value is None:
                self.study.tell(trial, state=self.optuna.trial.TrialState.FAIL)
            else:
                self.study.tell(trial, value)
