"""The gamma, Weibull and empirical latencies, checked against scipy.stats and through the engine.

These are the shapes ``retrysim fit`` chooses among. Each sampler is an inverse CDF of one
uniform; here it is compared with scipy's own ``ppf`` (gamma, weibull_min) or numpy's
``interp`` (the empirical's straight lines) on a grid of u that reaches both ends, and over
parameters hypothesis picks. ``mean_of`` (capacity estimates) is compared with scipy's mean and,
for the empirical, with a numeric integral of its quantile function. A bad parameter is one
line naming the field and what is allowed. A scenario using each kind runs deterministically,
the fast path and the reference path agree on it record for record, and a gamma without scipy
fails in one line naming the extra while validation never needs scipy.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, optimize, stats  # type: ignore[import-untyped,unused-ignore]
from typer.testing import CliRunner

import retrysim
from retrysim.cli.app import app
from retrysim.errors import BadInputError
from retrysim.model.base import (
    MAX_QUANTILES,
    MAX_SHAPE,
    MAX_TAIL_RATIO,
    MIN_GAMMA_SHAPE,
    MIN_WEIBULL_SHAPE,
    always_zero,
    latency_choices,
)
from retrysim.model.lint import mean_at_least
from retrysim.model.scenario import (
    Empirical,
    Exponential,
    Gamma,
    Ideal,
    Scenario,
    ScenarioError,
    UniformLatency,
    Weibull,
    parse_scenario,
)
from retrysim.sim.engine import simulate
from retrysim.sim.latency import FIT_EXTRA, MissingScipyError, mean_of, sampler
from tests.test_fast_path import assert_identical, both

#: u from exactly 0 to the largest double below 1 (the streams' range), the tails densely,
#: then an even spread of the middle.
ENDS = [0.0, 1e-300, 1e-12, 1e-6, 1e-3, 0.01, 0.5, 0.99, 0.999, 1 - 1e-9, 1 - 2**-53]
GRID = np.array(ENDS + list((np.arange(999) + 0.5) / 999))
#: The reference and ours may differ by rounding alone.
TIGHT = 1e-12


def gamma(mean: float, shape: float) -> Gamma:
    return Gamma.model_validate({"dist": "gamma", "mean": mean, "shape": shape})


def weibull(shape: float, scale: float) -> Weibull:
    return Weibull.model_validate({"dist": "weibull", "shape": shape, "scale": scale})


def empirical(quantiles: list[float]) -> Empirical:
    return Empirical.model_validate({"dist": "empirical", "quantiles": quantiles})


def draws(dist: Any, u: np.ndarray = GRID) -> np.ndarray:
    f = sampler(dist)
    return np.array([f(float(x)) for x in u])


def steps(quantiles: list[float]) -> np.ndarray:
    return np.linspace(0.0, 1.0, len(quantiles))


def integral(quantiles: list[float]) -> float:
    """The mean as the integral of the quantile function over [0, 1], by adaptive quadrature
    told where the kinks are (independent of the trapezoid formula mean_of uses)."""
    xp = steps(quantiles)
    value, _ = integrate.quad(
        lambda u: float(np.interp(u, xp, quantiles)),
        0.0,
        1.0,
        points=xp[1:-1] if len(xp) > 2 else None,
        limit=max(50, 4 * len(xp)),
        epsabs=1e-13,
        epsrel=1e-12,
    )
    return float(value)


# --- the samplers are scipy's quantile functions ---------------------------------------------

GAMMAS = [(0.01, MIN_GAMMA_SHAPE), (0.01, 0.5), (0.004, 1.0), (0.2, 2.5), (1.0, 40.0)]
GAMMAS += [(3.0, 1e4), (1e-6, MAX_SHAPE)]
WEIBULLS = [(MIN_WEIBULL_SHAPE, 0.01), (0.5, 0.002), (1.0, 0.1), (1.5, 0.004), (3.6, 2.0)]
WEIBULLS += [(50.0, 1e-6), (MAX_SHAPE, 30.0)]


@pytest.mark.parametrize(("mean", "shape"), GAMMAS)
def test_the_gamma_draws_scipys_quantiles(mean: float, shape: float) -> None:
    expected = stats.gamma.ppf(GRID, a=shape, scale=mean / shape)
    np.testing.assert_allclose(draws(gamma(mean, shape)), expected, rtol=TIGHT, atol=0)
    assert mean_of(gamma(mean, shape)) == pytest.approx(
        stats.gamma.mean(a=shape, scale=mean / shape), rel=TIGHT
    )


@pytest.mark.parametrize(("shape", "scale"), WEIBULLS)
def test_the_weibull_draws_scipys_quantiles(shape: float, scale: float) -> None:
    expected = stats.weibull_min.ppf(GRID, c=shape, scale=scale)
    np.testing.assert_allclose(draws(weibull(shape, scale)), expected, rtol=TIGHT, atol=0)
    assert mean_of(weibull(shape, scale)) == pytest.approx(
        stats.weibull_min.mean(c=shape, scale=scale), rel=TIGHT
    )


def test_shape_one_is_the_exponential_of_the_same_mean() -> None:
    exponential = draws(Exponential(dist="exponential", mean=0.25))
    np.testing.assert_array_equal(draws(weibull(1.0, 0.25)), exponential)
    np.testing.assert_allclose(draws(gamma(0.25, 1.0)), exponential, rtol=1e-10, atol=0)


QUANTILE_SETS = [
    [0.0, 1.0],  # a uniform on [0, 1]
    [0.001, 0.002, 0.003, 0.006, 0.04],
    [0.5, 0.5, 0.5, 2.0],  # a flat step: a point mass at 0.5 holding 2/3 of the draws
    [0.0, 0.0, 0.0],  # always 0
    list(np.geomspace(1e-4, 10.0, MAX_QUANTILES)),
]


@pytest.mark.parametrize("quantiles", QUANTILE_SETS, ids=lambda q: f"{len(q)} quantiles")
def test_the_empirical_draws_straight_lines_between_its_quantiles(quantiles: list[float]) -> None:
    dist = empirical(quantiles)
    got = draws(dist)
    np.testing.assert_allclose(got, np.interp(GRID, steps(quantiles), quantiles), rtol=TIGHT)
    assert got.min() >= quantiles[0] and got.max() <= quantiles[-1]
    assert mean_of(dist) == pytest.approx(integral(quantiles), rel=1e-9, abs=1e-15)
    assert always_zero(dist) == (quantiles[-1] == 0)


def test_the_empirical_on_two_quantiles_is_the_uniform_between_them() -> None:
    uniform = UniformLatency(dist="uniform", low=0.2, high=0.7)
    np.testing.assert_allclose(draws(empirical([0.2, 0.7])), draws(uniform), rtol=TIGHT, atol=0)
    assert mean_of(empirical([0.2, 0.7])) == pytest.approx(0.45, rel=TIGHT)


# --- the same laws over parameters hypothesis picks ------------------------------------------

unit = st.floats(0.0, 1.0, exclude_max=True)


@settings(max_examples=150, deadline=None)
@given(
    mean=st.floats(1e-6, 1e3),
    shape=st.floats(MIN_GAMMA_SHAPE, 1e4),
    u=unit,
    v=unit,
)
def test_any_gamma(mean: float, shape: float, u: float, v: float) -> None:
    dist, f = gamma(mean, shape), sampler(gamma(mean, shape))
    assert f(u) == pytest.approx(stats.gamma.ppf(u, a=shape, scale=mean / shape), rel=TIGHT)
    lo, hi = sorted((u, v))
    assert 0 <= f(lo) <= f(hi)
    assert mean_of(dist) == pytest.approx(stats.gamma.mean(a=shape, scale=mean / shape))
    assert mean_at_least(dist) == mean_of(dist)  # the lint's bound is exact here


@settings(max_examples=150, deadline=None)
@given(
    shape=st.floats(MIN_WEIBULL_SHAPE, 1e4),
    scale=st.floats(1e-6, 1e3),
    u=unit,
    v=unit,
)
def test_any_weibull(shape: float, scale: float, u: float, v: float) -> None:
    dist, f = weibull(shape, scale), sampler(weibull(shape, scale))
    assert f(u) == pytest.approx(stats.weibull_min.ppf(u, c=shape, scale=scale), rel=TIGHT)
    lo, hi = sorted((u, v))
    assert 0 <= f(lo) <= f(hi)
    assert mean_of(dist) == pytest.approx(stats.weibull_min.mean(c=shape, scale=scale), rel=1e-9)
    assert mean_at_least(dist) == mean_of(dist)


sorted_times = st.lists(st.floats(0.0, 1e3), min_size=2, max_size=60).map(sorted)


@settings(max_examples=150, deadline=None)
@given(quantiles=sorted_times, u=unit, v=unit)
def test_any_empirical(quantiles: list[float], u: float, v: float) -> None:
    dist = empirical(quantiles)
    f = sampler(dist)
    expected = float(np.interp(u, steps(quantiles), quantiles))
    assert f(u) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    lo, hi = sorted((u, v))
    assert quantiles[0] <= f(lo) <= f(hi) <= quantiles[-1]
    mean = mean_of(dist)
    assert quantiles[0] <= mean <= quantiles[-1]
    assert mean == pytest.approx(integral(quantiles), rel=1e-9, abs=1e-9)
    assert mean_at_least(dist) == mean


# --- the bounds: the same limit on the tail as the lognormal's -------------------------------


def test_the_smallest_shapes_keep_the_p99_within_the_lognormals_tail_ratio() -> None:
    def gamma_ratio(k: float) -> float:
        return float(stats.gamma.ppf(0.99, a=k) / stats.gamma.ppf(0.5, a=k))

    def weibull_ratio(k: float) -> float:
        return float(stats.weibull_min.ppf(0.99, c=k) / stats.weibull_min.ppf(0.5, c=k))

    for ratio, smallest in ((gamma_ratio, MIN_GAMMA_SHAPE), (weibull_ratio, MIN_WEIBULL_SHAPE)):
        edge = optimize.brentq(lambda k, r=ratio: r(k) - MAX_TAIL_RATIO, 0.01, 1.0)
        assert edge <= smallest < edge + 0.01  # the bound is the edge, rounded up
        assert ratio(smallest) <= MAX_TAIL_RATIO < ratio(smallest - 0.01)


# --- one-line errors -------------------------------------------------------------------------

BASE = (
    'name = "lat"\nduration = 5\n[clients]\ncount = 2\narrival = { kind = "burst" }\n'
    '[service]\nkind = "queue"\nconcurrency = 2\n'
)
GE = "greater than or equal to"
LIST = f"allowed: a list of 2 to {MAX_QUANTILES} times in seconds"
TOO_LONG = "[" + ", ".join(["0.1"] * (MAX_QUANTILES + 1)) + "]"


@pytest.mark.parametrize(
    ("latency", "field", "says"),
    [
        ('{ dist = "gamma", mean = 1 }', "shape", "Field required"),
        ('{ dist = "gamma", mean = 0, shape = 2 }', "mean", f"{GE} 0.000000001"),
        ('{ dist = "gamma", mean = 1, shape = 0.05 }', "shape", f"{GE} 0.06"),
        ('{ dist = "gamma", mean = 1, shape = 2e6 }', "shape", "less than or equal to 1000000"),
        ('{ dist = "gamma", mean = 1, shape = inf }', "shape", "finite"),
        ('{ dist = "gamma", mean = 1, shape = 2, scale = 2 }', "scale", "unknown key (did you"),
        ('{ dist = "weibull", shape = 0.1, scale = 1 }', "shape", f"{GE} 0.14"),
        ('{ dist = "weibull", shape = 2, scale = -1 }', "scale", f"{GE} 0.000000001"),
        ('{ dist = "weibull", shape = nan, scale = 1 }', "shape", "finite"),
        ('{ dist = "weibull", shape = 2 }', "scale", "Field required"),
        ('{ dist = "empirical", quantiles = [0.1] }', "quantiles", f"a list of 1; {LIST}"),
        ('{ dist = "empirical", quantiles = [] }', "quantiles", f"a list of 0; {LIST}"),
        ('{ dist = "empirical", quantiles = 0.1 }', "quantiles", f"0.1 is no list; {LIST}"),
        (
            f'{{ dist = "empirical", quantiles = {TOO_LONG} }}',
            "quantiles",
            f"a list of {MAX_QUANTILES + 1}; {LIST}",
        ),
        ('{ dist = "empirical", quantiles = [-1, 1] }', "quantiles.0", f"{GE} 0"),
        ('{ dist = "empirical", quantiles = [0, inf] }', "quantiles.1", "finite"),
        ('{ dist = "empirical", quantiles = [0, 2e9] }', "quantiles.1", "less than or equal"),
        (
            '{ dist = "empirical", quantiles = [0.1, 0.3, 0.2] }',
            "quantiles",
            "quantiles.2 (0.2) is below quantiles.1 (0.3); allowed: non-decreasing values",
        ),
        (
            '{ dist = "empirical", quantiles = [0, 1], quantile = [0, 1] }',
            "quantile",
            "unknown key (did you mean 'quantiles'?)",
        ),
    ],
)
def test_a_bad_parameter_is_one_line_naming_the_field(
    tmp_path: Path, latency: str, field: str, says: str
) -> None:
    path = tmp_path / "lat.toml"
    path.write_text(BASE + f"latency = {latency}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert f"lat.toml: service.latency.{field}: " in line and says in line, line


def test_an_unknown_dist_lists_the_new_kinds() -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario({"service": {"kind": "ideal", "latency": {"dist": "pareto"}}})
    assert "'lognormal', 'gamma', 'weibull', 'empirical'" in str(info.value)
    assert latency_choices("dist")[-3:] == ("gamma", "weibull", "empirical")


def test_an_empirical_that_is_always_zero_is_a_zero_latency_service() -> None:
    closed = {"kind": "closed"}
    with pytest.raises(ScenarioError, match=r"clients\.think_time: a closed loop"):
        parse_scenario(
            {
                "clients": {"arrival": closed},
                "service": {"kind": "ideal", "latency": {"dist": "empirical", "quantiles": [0, 0]}},
            }
        )
    parse_scenario(
        {
            "clients": {"arrival": closed},
            "service": {"kind": "ideal", "latency": {"dist": "empirical", "quantiles": [0, 1e-3]}},
        }
    )


# --- through the engine ----------------------------------------------------------------------

KINDS: dict[str, dict[str, Any]] = {
    "gamma": {"dist": "gamma", "mean": 0.02, "shape": 1.7},
    "weibull": {"dist": "weibull", "shape": 0.9, "scale": 0.02},
    "empirical": {"dist": "empirical", "quantiles": [0.002, 0.008, 0.015, 0.03, 0.2]},
}


def scenario_with(latency: dict[str, Any], seed: int = 3) -> Scenario:
    """A small queue behind a network, a latency spike and a flaky window, every draw of the
    service, the network and the spike from ``latency``, a timeout its tail crosses."""
    return parse_scenario(
        {
            "seed": seed,
            "duration": 6,
            "policy": {"max_attempts": 4, "min_wait": 0.01, "max_wait": 0.1},
            "clients": {
                "count": 300,
                "timeout": 0.08,
                "arrival": {"kind": "poisson", "rate": 60},
            },
            "network": {"rtt": latency},
            "service": {"kind": "queue", "concurrency": 3, "latency": latency},
            "faults": [
                {"kind": "latency_spike", "start": 1, "end": 2, "extra": latency},
                {"kind": "flaky", "start": 3, "end": 4, "probability": 0.5},
            ],
        }
    )


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_scenario_of_each_kind_runs_the_same_twice_and_on_both_paths(kind: str) -> None:
    scenario = scenario_with(KINDS[kind])
    fast, reference = both(scenario)
    assert_identical(fast, reference)
    again = simulate(scenario, engine="fast")
    assert again.attempts.tobytes() == fast.attempts.tobytes()
    assert again.calls.tobytes() == fast.calls.tobytes()
    other = simulate(scenario_with(KINDS[kind], seed=4), engine="fast")
    assert other.attempts.tobytes() != fast.attempts.tobytes()  # the seed does reach the draws
    assert len(np.unique(fast.attempts["end"] - fast.attempts["start"])) > 100  # drawn, varied


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_capacity_estimate_divides_by_the_distributions_true_mean(kind: str) -> None:
    doc = retrysim.run(scenario_with(KINDS[kind]), baseline=False).document
    latency = KINDS[kind]
    if kind == "gamma":
        mean = float(stats.gamma.mean(a=latency["shape"], scale=latency["mean"] / latency["shape"]))
    elif kind == "weibull":
        mean = float(stats.weibull_min.mean(c=latency["shape"], scale=latency["scale"]))
    else:
        mean = integral(latency["quantiles"])
    assert doc["load"]["capacity"] == pytest.approx(3 / mean, rel=1e-9)


# --- scipy is needed to draw a gamma, and only then --------------------------------------------


@pytest.fixture
def no_scipy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Importing scipy (or the part of it the gamma uses) fails, as if it were not installed."""
    for name in ("scipy", "scipy.special"):
        monkeypatch.setitem(sys.modules, name, None)


@pytest.mark.usefixtures("no_scipy")
def test_a_gamma_without_scipy_is_one_line_naming_the_extra() -> None:
    with pytest.raises(MissingScipyError) as info:
        sampler(gamma(0.01, 2.0))
    message = str(info.value)
    assert isinstance(info.value, BadInputError)
    assert "\n" not in message and f"pip install '{FIT_EXTRA}'" in message
    assert FIT_EXTRA == "retrysim[fit]" and 'dist = "gamma"' in message
    scenario = scenario_with(KINDS["gamma"])  # validating needs no scipy
    with pytest.raises(MissingScipyError):
        simulate(scenario)
    for kind in ("weibull", "empirical"):  # and nothing else needs it
        assert len(simulate(scenario_with(KINDS[kind])).attempts) > 0


@pytest.mark.usefixtures("no_scipy")
def test_the_cli_validates_a_gamma_without_scipy_and_refuses_to_run_it(tmp_path: Path) -> None:
    path = tmp_path / "g.toml"
    path.write_text(BASE + 'latency = { dist = "gamma", mean = 0.01, shape = 2 }\n', "utf-8")
    assert CliRunner().invoke(app, ["validate", str(path)]).exit_code == 0
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert "needs scipy" in line and "pip install 'retrysim[fit]'" in line, line
    assert "Traceback" not in result.output


def test_the_engine_imports_no_scipy_until_a_gamma_is_drawn() -> None:
    script = (
        "import sys, json\n"
        "import retrysim\n"
        "from retrysim.sim.engine import simulate\n"
        "from retrysim.runs.runner import run\n"
        "s = retrysim.parse_scenario({'duration': 2, 'clients': {'count': 20}, 'service': "
        "{'kind': 'ideal', 'latency': {'dist': 'weibull', 'shape': 2, 'scale': 0.01}}})\n"
        "run(s, baseline=False)\n"
        "before = 'scipy' in sys.modules\n"
        "simulate(s.with_overrides({'service.latency': "
        "{'dist': 'gamma', 'mean': 0.01, 'shape': 2}}))\n"
        "print(json.dumps([before, 'scipy' in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parent.parent,
    )
    assert json.loads(done.stdout) == [False, True]


def test_a_fitted_value_reads_back_as_written() -> None:
    """What ``retrysim fit`` writes (the field names and a long quantile list) round-trips
    through the scenario's own dump, so a saved scenario draws what was fitted."""
    quantiles = [float(x) for x in np.geomspace(1e-3, 1.0, MAX_QUANTILES)]
    for latency in [*KINDS.values(), {"dist": "empirical", "quantiles": quantiles}]:
        scenario = parse_scenario({"service": {"kind": "ideal", "latency": latency}})
        dumped = scenario.model_dump(mode="json")["service"]["latency"]
        assert dumped == latency
        assert parse_scenario(scenario.model_dump(mode="json")) == scenario
        assert isinstance(scenario.service, Ideal)
        hash(scenario.service.latency)  # frozen and hashable, like every other kind
    assert math.isfinite(mean_of(empirical(quantiles)))
