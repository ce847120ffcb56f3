"""Fit the client model of ``retrysim chaos --calibrate`` from a short calibration run.

Why: the simulation's client model (``clients.cpus = 1``, ``cpu_per_attempt``,
``cpu_per_connect``) says how long each attempt and each connect holds the real fleet's one
event loop, whose work the model queues on one CPU. The shipped figures were measured once, on
a quiet machine (``scripts/measure_cpu.py``). On a busy machine the loop gets only a share of
a core: a millisecond of its CPU work takes several milliseconds of wall time, and the
simulation, knowing nothing of the other jobs, predicts a faster fleet than the real one. So
``--calibrate`` runs the same fleet against the same service for a few seconds, one attempt a
call and no faults (:mod:`retrysim.chaos.calibration_run`), and this module fits, from what
that run recorded:

- **CPU per attempt and per connect** (CPU seconds of the process). The run samples the
  process's CPU clock and the proxy's count of accepted connections every tenth of a second;
  over bins of at least :data:`BIN_SECONDS`, ``CPU = a * attempts + c * connects`` is solved by
  least squares (numpy), both coefficients kept non-negative. An attempt's CPU is spent half
  at its start (the decorator, the request out through the proxy) and half at its end (the
  answer back, the decorator's verdict), so a bin counts half the attempts that started in it
  and half that ended. There is no constant term: between attempts the loop only waits, and
  what its timers and the sampling cost is spread over the attempts, as the model wants it
  (the loop's whole work). A coefficient whose standard error is more than
  :data:`MAX_RELATIVE_ERROR` of its value is not told apart by the run (every attempt opened
  a connection, say: the two columns move together); it keeps the scenario's figure, and the
  other is fitted with that one held.
- **The machine's slowdown**: how many wall seconds a CPU second of the loop's work takes while
  it waits for a core, from the kernel's own count for the loop's thread
  (``/proc/self/task/TID/schedstat``: time run, time waited runnable): (run + waited) / run.
  1.0 on an idle machine; 3 means each millisecond of work holds the loop for 3 ms.

The simulation then takes ``cpu_per_attempt = a * slowdown`` and ``cpu_per_connect = c *
slowdown``: the wall time each holds the loop now. A figure kept at the scenario's is still
multiplied by the slowdown (the scenario's is CPU on a quiet machine). What the run cannot
support (too few attempts, no schedstat) is said in one line each (``Calibration.notes``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from retrysim.model.scenario import Scenario
    from retrysim.results.sections import CalibrationFigure, CalibrationSection

#: Regression bins span at least this many seconds of the calibration run (a few samples each:
#: an attempt's CPU lands near, not exactly at, its start and its end).
BIN_SECONDS = 0.2
#: Fewer attempts than this cannot time an attempt's CPU.
MIN_ATTEMPTS = 50
#: Fewer regression bins than this cannot tell attempts from connects.
MIN_BINS = 6
#: A coefficient whose standard error is more than this share of it is not told apart.
MAX_RELATIVE_ERROR = 0.5


@dataclass(frozen=True)
class Samples:
    """What the calibration run sampled, one row per sample, in time order: ``t`` the loop's
    clock (the records' clock), ``cpu`` the process's CPU clock, ``run`` and ``wait`` the loop
    thread's seconds run and waited runnable (NaN without schedstat), ``connects`` the proxy's
    accepted connections so far."""

    t: np.ndarray
    cpu: np.ndarray
    run: np.ndarray
    wait: np.ndarray
    connects: np.ndarray

    @classmethod
    def from_rows(cls, rows: list[tuple[float, float, float, float, int]]) -> Samples:
        table = np.asarray(rows, dtype=float).reshape(-1, 5)
        return cls(*(table[:, i].copy() for i in range(5)))


@dataclass(frozen=True)
class CpuFit:
    """CPU seconds per attempt and per connect, each None when the run did not tell it apart
    (its scenario figure is kept); ``bins`` the regression's rows, ``r2`` the share of the
    CPU's variation over the bins the fit explains."""

    per_attempt: float | None
    per_connect: float | None
    bins: int
    r2: float


def _bins(times: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) sample index of each bin: consecutive samples merged until the bin spans
    :data:`BIN_SECONDS`; a short tail joins the bin before it."""
    edges: list[tuple[int, int]] = []
    first = 0
    for i in range(1, len(times)):
        if times[i] - times[first] >= BIN_SECONDS:
            edges.append((first, i))
            first = i
    if first < len(times) - 1:
        if edges:
            edges[-1] = (edges[-1][0], len(times) - 1)
        else:
            edges.append((first, len(times) - 1))
    return edges


def _counts(events: np.ndarray, times: np.ndarray, edges: list[tuple[int, int]]) -> np.ndarray:
    """How many of ``events`` (times; NaN: never) fall in each bin [t_first, t_last)."""
    ordered = np.sort(events[np.isfinite(events)])
    lows = np.searchsorted(ordered, [times[a] for a, _ in edges], side="left")
    highs = np.searchsorted(ordered, [times[b] for _, b in edges], side="left")
    return np.asarray(highs - lows, dtype=float)


def nonnegative_lstsq(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The least-squares ``beta`` of ``x @ beta ~ y`` with every coefficient >= 0.

    With a handful of columns every subset of them is solved (numpy's lstsq) and the best fit
    whose coefficients are all non-negative wins, the columns left out at 0: exact for so few
    columns, and no scipy.
    """
    columns = x.shape[1]
    best, best_cost = np.zeros(columns), float(np.sum(y**2))
    for mask in range(1, 2**columns):
        subset = [i for i in range(columns) if mask >> i & 1]
        beta, *_ = np.linalg.lstsq(x[:, subset], y, rcond=None)
        if np.any(beta < 0):
            continue
        cost = float(np.sum((x[:, subset] @ beta - y) ** 2))
        if cost < best_cost:
            best_cost, best = cost, np.zeros(columns)
            best[subset] = beta
    return best


def _told_apart(x: np.ndarray, y: np.ndarray, beta: np.ndarray) -> list[bool]:
    """Per coefficient: positive, and its standard error at most :data:`MAX_RELATIVE_ERROR`
    of it (ordinary least squares' error: the residual variance times (X'X)^-1's diagonal)."""
    rows, columns = x.shape
    if rows <= columns or np.linalg.matrix_rank(x) < columns:  # columns that move together
        return [False] * columns
    variance = float(np.sum((x @ beta - y) ** 2)) / (rows - columns)
    inverse = np.linalg.pinv(x.T @ x)
    errors = np.sqrt(np.maximum(np.diag(inverse) * variance, 0.0))
    return [bool(b > 0 and e <= MAX_RELATIVE_ERROR * b) for b, e in zip(beta, errors, strict=True)]


def fit_cpu(
    samples: Samples,
    starts: np.ndarray,
    ends: np.ndarray,
    *,
    attempt_cost: float | None = None,
    connect_cost: float | None = None,
) -> CpuFit:
    """CPU seconds per attempt and per connect from the samples and the attempts' start and end
    times (NaN: never ended), by least squares over the bins (see the module).

    A cost the run does not tell apart is None; the other is then fitted with that one held at
    ``attempt_cost`` / ``connect_cost`` (the scenario's figures; None: 0). With fewer than
    :data:`MIN_ATTEMPTS` attempts or :data:`MIN_BINS` bins, nothing is fitted.
    """
    edges = _bins(samples.t)
    if len(starts) < MIN_ATTEMPTS or len(edges) < MIN_BINS:
        return CpuFit(None, None, len(edges), 0.0)
    attempts = (_counts(starts, samples.t, edges) + _counts(ends, samples.t, edges)) / 2
    connects = np.array([samples.connects[b] - samples.connects[a] for a, b in edges])
    cpu = np.array([samples.cpu[b] - samples.cpu[a] for a, b in edges])
    x = np.column_stack([attempts, connects])
    beta = nonnegative_lstsq(x, cpu)
    fitted: list[float | None] = [float(b) for b in beta]
    apart = _told_apart(x, cpu, beta)
    if not all(apart):
        # Fit one cost alone, the other held at the scenario's: the attempts' unless only the
        # connects' was told apart (the usual case is connects moving with attempts: hold them).
        free = 1 if apart[1] and not apart[0] else 0
        held = (attempt_cost or 0.0, connect_cost or 0.0)[1 - free]
        y = cpu - held * x[:, 1 - free]
        alone = nonnegative_lstsq(x[:, [free]], y)
        fitted = [None, None]
        beta = np.zeros(2)
        beta[1 - free] = held
        if _told_apart(x[:, [free]], y, alone)[0]:
            fitted[free] = beta[free] = float(alone[0])
        else:
            beta[free] = (attempt_cost or 0.0, connect_cost or 0.0)[free]
    spread = float(np.sum((cpu - cpu.mean()) ** 2))
    r2 = 1.0 - float(np.sum((x @ beta - cpu) ** 2)) / spread if spread > 0 else 1.0
    return CpuFit(fitted[0], fitted[1], len(edges), r2)


def slowdown(samples: Samples) -> float | None:
    """Wall seconds per CPU second of the loop's work over the run: (run + waited) / run, from
    the kernel's schedstat for the loop's thread; None without it (or no CPU run)."""
    if len(samples.t) < 2:
        return None
    run = samples.run[-1] - samples.run[0]
    wait = samples.wait[-1] - samples.wait[0]
    if not (math.isfinite(run) and math.isfinite(wait)) or run <= 0:
        return None
    return float((run + max(wait, 0.0)) / run)


#: The scenario keys a calibration sets, in the order the report shows them.
KEYS = ("clients.cpu_per_attempt", "clients.cpu_per_connect", "clients.cpus")


@dataclass(frozen=True)
class Calibration:
    """A calibration's measurements and the figures the simulation takes from them.

    ``at`` when it started (UTC), ``seconds`` how long it took (the run and the fit),
    ``attempts`` and ``connects`` what the run made; ``cpu`` the CPU fit, ``slowdown`` the
    machine's (None: not measured); ``notes`` one line per figure kept, saying why.
    """

    at: datetime
    seconds: float
    attempts: int
    connects: int
    cpu: CpuFit
    slowdown: float | None
    notes: list[str] = field(default_factory=list)

    @property
    def factor(self) -> float:
        """What a CPU second costs the loop in wall seconds now (1.0 when not measured)."""
        return 1.0 if self.slowdown is None else self.slowdown

    def costs(self, scenario: Scenario) -> tuple[float | None, float | None]:
        """CPU seconds per attempt and per connect: fitted, else the scenario's (None when it
        has none)."""
        shipped = scenario_costs(scenario)
        fitted = (self.cpu.per_attempt, self.cpu.per_connect)
        return (
            shipped[0] if fitted[0] is None else fitted[0],
            shipped[1] if fitted[1] is None else fitted[1],
        )

    def values(self, scenario: Scenario) -> dict[str, Any]:
        """The calibrated scenario values by dotted key: the costs times the slowdown (a cost
        the scenario lacks and the run did not fit stays unset), and one CPU."""
        found: dict[str, Any] = {}
        for key, cost in zip(KEYS[:2], self.costs(scenario), strict=True):
            if cost is not None:
                found[key] = cost * self.factor
        found["clients.cpus"] = 1
        return found

    def apply(self, scenario: Scenario) -> Scenario:
        """``scenario`` with the calibrated figures in place of its own."""
        return scenario.with_overrides(self.values(scenario))

    def figures(self, scenario: Scenario) -> list[CalibrationFigure]:
        """Each key: the scenario's value, the calibrated one and where it came from."""
        values = self.values(scenario)
        return [
            {
                "key": key,
                "shipped": _plain(getattr(scenario.clients, key.split(".")[1])),
                "calibrated": values.get(key),
                "source": self._source(key),
            }
            for key in KEYS
        ]

    def _source(self, key: str) -> str:
        if key == "clients.cpus":
            return "the real fleet runs on one event loop"
        fitted = self.cpu.per_attempt if key.endswith("attempt") else self.cpu.per_connect
        times = "" if self.slowdown is None else f" x slowdown {self.slowdown:.2f}"
        if fitted is None:
            return f"the scenario's (not told apart by the run){times}"
        return f"{fitted * 1000:.3f} ms of CPU{times}"

    def section(self, scenario: Scenario, *, used: bool) -> CalibrationSection:
        """The result document's ``calibration`` section; ``used``: the simulation ran with it."""
        return {
            "at": self.at.isoformat(timespec="seconds"),
            "seconds": self.seconds,
            "attempts": self.attempts,
            "connects": self.connects,
            "cpu_per_attempt": self.cpu.per_attempt,
            "cpu_per_connect": self.cpu.per_connect,
            "fit_r2": self.cpu.r2,
            "slowdown": self.slowdown,
            "figures": self.figures(scenario),
            "used": used,
            "notes": list(self.notes),
        }


def scenario_costs(scenario: Scenario) -> tuple[float | None, float | None]:
    """The scenario's own CPU per attempt and per connect (a distribution's mean; None: unset)."""
    from retrysim.sim.latency import mean_of

    clients = scenario.clients
    attempt, connect = clients.cpu_per_attempt, clients.cpu_per_connect
    return (
        None if attempt is None else mean_of(attempt),
        None if connect is None else mean_of(connect),
    )


def _plain(value: Any) -> Any:
    """A scenario value as plain data: a constant latency as its seconds, a distribution as its
    table, None as None."""
    if value is None or isinstance(value, int | float):
        return value
    dumped = value.model_dump(mode="json")
    return dumped["value"] if dumped.get("dist") == "constant" else dumped


def calibrate(
    samples: Samples,
    attempts: np.ndarray,
    scenario: Scenario,
    *,
    at: datetime,
    seconds: float,
) -> Calibration:
    """The calibration of a run of ``scenario``'s fleet: its ``samples`` and attempt records
    (``start``, ``end``)."""
    starts = np.asarray(attempts["start"], dtype=float)
    ends = np.asarray(attempts["end"], dtype=float)
    attempt_cost, connect_cost = scenario_costs(scenario)
    cpu = fit_cpu(samples, starts, ends, attempt_cost=attempt_cost, connect_cost=connect_cost)
    connects = int(samples.connects[-1] - samples.connects[0]) if len(samples.t) else 0
    notes: list[str] = []
    if len(starts) < MIN_ATTEMPTS or cpu.bins < MIN_BINS:
        notes.append(
            f"CPU costs kept at the scenario's: the calibration made {len(starts)} attempts "
            f"over {cpu.bins} bins of {BIN_SECONDS:g} s, and a fit needs at least "
            f"{MIN_ATTEMPTS} attempts over {MIN_BINS} bins"
        )
    else:
        for name, fitted in (("attempt", cpu.per_attempt), ("connect", cpu.per_connect)):
            if fitted is None:
                notes.append(
                    f"clients.cpu_per_{name} kept at the scenario's: the run did not tell a "
                    f"{name}'s CPU apart (its {len(starts)} attempts and {connects} connects "
                    f"moved together, or too little; error above {MAX_RELATIVE_ERROR:.0%})"
                )
    found = slowdown(samples)
    if found is None:
        notes.append(
            "slowdown not measured (no schedstat for the loop's thread: Linux only): the "
            "simulation takes CPU seconds as wall seconds"
        )
    return Calibration(at, seconds, len(starts), connects, cpu, found, notes)
