"""Latency samplers pinned where the mutation run of ``retrysim/sim/latency.py`` found them loose.

Each sampler is a distribution's quantile function of one uniform u. Here every kind a scenario
can hold is drawn at fixed u and checked against an independent closed form: the
distribution's CDF at the draw gives u back (exponential, Weibull, gamma of shape 2 and 1/2),
numpy's ``interp`` draws the empirical's straight lines, and ``mean_of`` is the textbook mean
(Gamma-function values for the Weibull) and the mean of what is drawn. A gamma without scipy
ends in the one-line error naming the extra.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from statistics import NormalDist
from typing import Any, get_args

import numpy as np
import pytest

from retrysim.model.base import Latency
from retrysim.model.scenario import Ideal, parse_scenario
from retrysim.sim import latency
from retrysim.sim.latency import MissingScipyError, mean_of, sampler

#: u across (0, 1), both tails included, and the smallest draw, 0.
US = [0.0, 1e-6, 0.001, 0.05, 0.25, 0.5, 0.75, 0.95, 0.999, 1 - 1e-9]

#: One latency of every kind a scenario file can write.
EXAMPLES: dict[str, dict[str, Any]] = {
    "constant": {"dist": "constant", "value": 0.25},
    "uniform": {"dist": "uniform", "low": 0.5, "high": 2.5},
    "exponential": {"dist": "exponential", "mean": 0.25},
    "normal": {"dist": "normal", "mean": 1.0, "std": 0.3},
    "lognormal": {"dist": "lognormal", "median": 0.1, "p99": 0.5},
    "gamma": {"dist": "gamma", "mean": 0.2, "shape": 2.0},
    "weibull": {"dist": "weibull", "shape": 2.0, "scale": 0.01},
    "empirical": {"dist": "empirical", "quantiles": [0.0, 1.0, 1.5, 4.0]},
}


def _latency(data: dict[str, Any]) -> Any:
    """A latency distribution as a scenario file writes it."""
    service = parse_scenario({"service": {"kind": "ideal", "latency": data}}).service
    assert isinstance(service, Ideal)
    return service.latency


def _name(value: object) -> str | None:
    """A parameter's id: a latency's dist, pytest's own id for anything else."""
    return str(value["dist"]) if isinstance(value, dict) else None


def _grid_mean(dist: Any, n: int = 20_000) -> float:
    """The mean of what ``sampler(dist)`` draws, by the midpoint rule over u in (0, 1)."""
    draw = sampler(dist)
    return math.fsum(draw((i + 0.5) / n) for i in range(n)) / n


def test_every_latency_a_scenario_holds_is_a_dist() -> None:
    """``Dist``, the type callers of ``sampler`` check against, holds exactly the kinds of the
    scenario schema, and every parsed latency is an instance of it."""
    assert set(get_args(latency.Dist)) == set(get_args(get_args(Latency)[0]))
    parsed = [_latency(data) for data in EXAMPLES.values()]
    assert {type(dist) for dist in parsed} == set(get_args(latency.Dist))
    assert all(isinstance(dist, latency.Dist) for dist in parsed)


def test_a_constant_draws_its_value_at_every_u() -> None:
    """A constant latency is its value whatever the uniform, and that is its mean."""
    dist = _latency(EXAMPLES["constant"])
    draw = sampler(dist)
    assert [draw(u) for u in US] == [0.25] * len(US)
    assert mean_of(dist) == 0.25


def _gamma_half_cdf(y: float) -> float:
    return math.erf(math.sqrt(y))  # P(1/2, y): the gamma of shape 1/2 is half a squared normal


def _gamma_two_cdf(y: float) -> float:
    return -math.expm1(-y) - y * math.exp(-y)  # P(2, y) = 1 - e^-y (1 + y)


#: (latency, its CDF at x): the draw at u must sit where the CDF is u.
CDFS: list[tuple[dict[str, Any], Callable[[float], float]]] = [
    ({"dist": "exponential", "mean": 0.25}, lambda x: -math.expm1(-x / 0.25)),
    ({"dist": "exponential", "mean": 3.0}, lambda x: -math.expm1(-x / 3.0)),
    ({"dist": "weibull", "shape": 2.0, "scale": 0.01}, lambda x: -math.expm1(-((x / 0.01) ** 2))),
    ({"dist": "weibull", "shape": 0.5, "scale": 3.0}, lambda x: -math.expm1(-math.sqrt(x / 3.0))),
    ({"dist": "gamma", "mean": 0.2, "shape": 2.0}, lambda x: _gamma_two_cdf(x / 0.1)),
    ({"dist": "gamma", "mean": 0.2, "shape": 0.5}, lambda x: _gamma_half_cdf(x / 0.4)),
]


@pytest.mark.parametrize(("data", "cdf"), CDFS, ids=_name)
def test_each_draw_sits_where_the_distributions_cdf_is_u(
    data: dict[str, Any], cdf: Callable[[float], float]
) -> None:
    """The sampler is the quantile function: its CDF at the draw for u is u, and u = 0 draws 0
    (gamma scale = mean / shape; Weibull s * (-ln(1 - u))^(1/k); exponential -mean ln(1 - u))."""
    draw = sampler(_latency(data))
    for u in US:
        x = draw(u)
        assert isinstance(x, float) and x >= 0.0
        assert cdf(x) == pytest.approx(u, rel=1e-9, abs=1e-15), (u, x)
    assert draw(0.0) == 0.0


@pytest.mark.parametrize("shape", [0.5, 2.0, 7.0])
def test_a_weibull_draws_its_scale_at_one_minus_one_over_e(shape: float) -> None:
    """Whatever the shape, 63.2% (1 - 1/e) of a Weibull's draws are shorter than its scale."""
    draw = sampler(_latency({"dist": "weibull", "shape": shape, "scale": 0.04}))
    assert draw(-math.expm1(-1.0)) == pytest.approx(0.04, rel=1e-12)


def test_a_reflected_normal_with_no_mass_below_zero_draws_the_normals_quantiles() -> None:
    """Reflection only moves negative draws: a normal whose draws here are all above 0 draws
    the same latency for the same u as the clipped one, the normal's own quantile of u."""
    reflect = sampler(_latency({"dist": "normal", "mean": 1.0, "std": 0.3, "negative": "reflect"}))
    clip = sampler(_latency({"dist": "normal", "mean": 1.0, "std": 0.3}))
    for u in (0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99):
        expected = NormalDist(1.0, 0.3).inv_cdf(u)
        assert reflect(u) == pytest.approx(expected, rel=1e-9)
        assert reflect(u) == clip(u)
    assert reflect(0.2) < reflect(0.8)  # the quantile rises with u, not the mirrored one


#: Measured quantiles: a steep first step, a shallow one, a flat one, a steep last one.
QUANTILES = [0.0, 1.0, 1.5, 1.5, 4.0]


@pytest.mark.parametrize("quantiles", [[0.2, 0.7], [0.0, 1.0, 1.5, 4.0], QUANTILES])
def test_the_empirical_draws_straight_lines_between_its_quantiles(quantiles: list[float]) -> None:
    """quantiles[i] sits at probability i/N and u between two of them falls on the straight
    line joining them (numpy's interp): knots, midpoints and both ends, never decreasing."""
    draw = sampler(_latency({"dist": "empirical", "quantiles": quantiles}))
    steps = len(quantiles) - 1
    knots = np.linspace(0.0, 1.0, steps + 1)
    us = sorted(
        {*US, *(i / steps for i in range(steps)), *((i + 0.3) / steps for i in range(steps))}
    )
    got = [draw(u) for u in us]
    np.testing.assert_allclose(got, np.interp(us, knots, quantiles), rtol=1e-12, atol=1e-15)
    assert got == sorted(got)
    assert quantiles[0] <= got[0] and got[-1] <= quantiles[-1]


def test_a_draw_of_one_gives_the_empiricals_last_quantile() -> None:
    """u = 1 (outside [0, 1), which a caller may still pass) draws the last quantile, the top
    of the last straight line, rather than reading past the quantiles."""
    for quantiles in ([0.2, 0.7], QUANTILES):
        draw = sampler(_latency({"dist": "empirical", "quantiles": quantiles}))
        assert draw(1.0) == quantiles[-1]
        assert draw(1 - 2**-53) == pytest.approx(quantiles[-1], rel=1e-12)


@pytest.mark.parametrize(
    ("data", "mean"),
    [
        ({"dist": "exponential", "mean": 0.25}, 0.25),
        ({"dist": "gamma", "mean": 0.2, "shape": 2.0}, 0.2),
        ({"dist": "gamma", "mean": 0.2, "shape": 0.5}, 0.2),
        ({"dist": "weibull", "shape": 1.0, "scale": 0.3}, 0.3),  # Gamma(2) = 1
        ({"dist": "weibull", "shape": 2.0, "scale": 0.01}, 0.01 * math.sqrt(math.pi) / 2),
        ({"dist": "weibull", "shape": 0.5, "scale": 3.0}, 3.0 * 2),  # Gamma(3) = 2
        ({"dist": "empirical", "quantiles": [0.0, 1.0, 1.5, 4.0]}, (0.5 + 1.25 + 2.75) / 3),
        ({"dist": "empirical", "quantiles": QUANTILES}, (0.5 + 1.25 + 1.5 + 2.75) / 4),
    ],
    ids=_name,
)
def test_mean_of_is_the_distributions_mean(data: dict[str, Any], mean: float) -> None:
    """``mean_of`` (what capacity estimates divide by) is the textbook mean: the exponential's
    and the gamma's ``mean``, s * Gamma(1 + 1/k) for the Weibull, and the average of the
    empirical's straight lines."""
    assert mean_of(_latency(data)) == pytest.approx(mean, rel=1e-12)


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_mean_of_is_the_mean_of_what_is_drawn(kind: str) -> None:
    """For every kind, ``mean_of`` agrees with the mean of the sampler's own draws."""
    dist = _latency(EXAMPLES[kind])
    expected = mean_of(dist)
    assert isinstance(expected, float)
    assert _grid_mean(dist) == pytest.approx(expected, rel=1e-3)


def test_a_gamma_without_scipy_is_one_line_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where scipy is not installed, building a gamma sampler is a BadInputError whose one
    line says how to install the extra that brings it."""
    for name in ("scipy", "scipy.special"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingScipyError) as info:
        sampler(_latency(EXAMPLES["gamma"]))
    message = str(info.value)
    assert "\n" not in message
    assert "pip install 'retrysim[fit]'" in message and 'dist = "gamma"' in message
