"""``retrysim fit``'s figures drawn from a real fit: what each panel shows, checked as data.

The fit is of a log simulated from ``redis-blip`` with its arrival rate doubled from 30 to 40 s
(a schedule step the arrivals figure must draw) and its outage from 20 to 23 s (the window the
latency and error figures must shade).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.patches import Rectangle

from retrysim.fit.pipeline import fit_data
from retrysim.fit.read import read_inputs
from retrysim.fit.result import FitResult
from retrysim.model.library import load_scenario
from retrysim.plots.fit import (
    arrival_rate,
    error_share,
    fit_figure,
    latency_over_time,
    latency_qq,
    panels,
    schedule_line,
)
from tests.fit_data import saved_run


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> FitResult:
    base = load_scenario("redis-blip")
    arrival = {
        "kind": "poisson",
        "rate": 200,
        "schedule": [{"start": 30, "end": 40, "rate": 400}],
    }
    data = base.model_dump(mode="json")
    data["clients"]["arrival"] = arrival
    from retrysim.model.scenario import parse_scenario

    scenario = parse_scenario(data, "<test>")
    folder = saved_run(scenario, tmp_path_factory.mktemp("fit-plots"))
    return fit_data(read_inputs([folder / "attempts.csv"]))


def _shaded(ax: object) -> list[tuple[float, float]]:
    """Each shaded span's x range (axvspan draws a Rectangle, or a Polygon on older versions)."""
    spans = []
    for patch in ax.patches:  # type: ignore[attr-defined]
        if isinstance(patch, Rectangle):
            x = patch.get_x()
            spans.append((x, x + patch.get_width()))
        else:
            xs = patch.get_xy()[:, 0]
            spans.append((float(xs.min()), float(xs.max())))
    return spans


def test_the_qq_figure_is_the_held_out_quantiles_against_the_chosen_family(
    result: FitResult,
) -> None:
    found = result.latency[""]
    ax = latency_qq(result).axes[0]
    title = ax.get_title(loc="left")
    assert found.family in title
    assert f"KS D {found.distance(found.family).d:.3g}" in title
    points, diagonal = ax.get_lines()
    pairs = np.asarray(found.qq) * 1000
    assert np.allclose(points.get_xdata(), pairs[:, 0])
    assert np.allclose(points.get_ydata(), pairs[:, 1])
    assert np.array_equal(np.asarray(diagonal.get_xdata()), np.asarray(diagonal.get_ydata()))
    # a good fit: the held-out quantiles lie near the diagonal up to the p95 or so
    middle = slice(len(pairs) // 10, len(pairs) * 95 // 100)
    assert np.allclose(pairs[middle, 1], pairs[middle, 0], rtol=0.15)


def test_latency_over_time_has_p50_p99_and_the_outage_shaded(result: FitResult) -> None:
    ax = latency_over_time(result).axes[0]
    p50, p99 = ax.get_lines()
    assert (p50.get_label(), p99.get_label()) == ("p50", "p99")
    series = result.latency_over_time[""]
    assert np.allclose(p50.get_ydata(), np.asarray(series["p50"]) * 1000, equal_nan=True)
    medians = np.asarray(p50.get_ydata(), dtype=float)
    tails = np.asarray(p99.get_ydata(), dtype=float)
    assert np.nanmedian(medians) == pytest.approx(2.0, rel=0.2)  # 2 ms, the truth
    assert np.nanmedian(tails) > np.nanmedian(medians)
    ((start, end),) = _shaded(ax)
    assert start == pytest.approx(20.0, abs=0.1) and end == pytest.approx(23.0, abs=0.1)


def test_the_error_share_is_one_in_the_window_and_near_zero_outside(result: FitResult) -> None:
    ax = error_share(result).axes[0]
    (line,) = ax.get_lines()
    x, y = np.asarray(line.get_xdata()), np.asarray(line.get_ydata(), dtype=float)
    assert np.nanmin(y) >= 0 and np.nanmax(y) <= 1
    inside = (x >= 20.2) & (x < 22.8)
    assert np.all(y[inside] == 1.0)
    assert np.nanmean(y[(x < 19) | (x > 24)]) < 0.01
    ((start, end),) = _shaded(ax)
    assert (start, end) == pytest.approx(outage_found(result), abs=1e-9)


def outage_found(result: FitResult) -> tuple[float, float]:
    (window,) = result.errors[""].windows
    return window.start, window.end


def test_the_arrival_figure_draws_the_data_and_the_fitted_schedule(result: FitResult) -> None:
    found = result.arrivals
    assert found is not None and len(found.schedule) == 1
    ax = arrival_rate(result).axes[0]
    data, fitted = ax.get_lines()
    assert np.allclose(data.get_ydata(), np.asarray(found.counts) / found.bin_width)
    xs, ys = np.asarray(fitted.get_xdata()), np.asarray(fitted.get_ydata())
    assert xs[0] == found.start and xs[-1] == found.end
    assert set(np.round(ys, 6)) == {round(found.rate, 6), round(found.schedule[0].rate, 6)}
    step = found.schedule[0]
    assert step.start == pytest.approx(30.0, abs=0.5) and step.end == pytest.approx(40.0, abs=0.5)
    assert step.rate == pytest.approx(400.0, rel=0.1) and found.rate == pytest.approx(200, rel=0.05)
    assert ax.get_title(loc="left") == f"arrivals: {found.verdict}"


def test_the_whole_figure_has_one_panel_per_fitted_quantity(
    result: FitResult, tmp_path: Path
) -> None:
    from retrysim.plots.save import save_figure

    fig = fit_figure(result)
    assert panels(result) == [("arrivals", ""), ("qq", ""), ("latency", ""), ("errors", "")]
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 4
    titles = [ax.get_title(loc="left") for ax in visible]
    assert titles[0].startswith("arrivals:")
    assert titles[1].startswith("latency: lognormal")
    assert titles[2] == "latency over time" and titles[3] == "failed share over time"
    target = tmp_path / "fit.svg"
    save_figure(fig, target)
    assert target.read_text(encoding="utf-8").count("<svg") == 1


@settings(max_examples=60, deadline=None)
@given(
    base=st.floats(0.1, 1000),
    cuts=st.lists(st.floats(0.01, 99.99), min_size=0, max_size=8, unique=True),
    rates=st.lists(st.floats(0.0, 1000), min_size=4, max_size=4),
)
def test_the_fitted_rate_line_is_the_base_rate_outside_every_step_and_the_steps_inside(
    base: float, cuts: list[float], rates: list[float]
) -> None:
    """For any schedule of non-overlapping steps in [0, 100], the line drawn is a function of
    time (x never goes back) equal to each step's rate inside it and the base rate elsewhere."""
    edges = sorted(cuts)[: len(cuts) // 2 * 2]
    steps = [
        SimpleNamespace(start=edges[i], end=edges[i + 1], rate=rates[(i // 2) % 4])
        for i in range(0, len(edges), 2)
    ]
    found = SimpleNamespace(start=0.0, end=100.0, rate=base, schedule=tuple(reversed(steps)))
    xs, ys = schedule_line(found)
    assert xs[0] == 0.0 and xs[-1] == 100.0
    assert all(b >= a for a, b in itertools.pairwise(xs))
    for a, b, y0, y1 in zip(xs, xs[1:], ys, ys[1:], strict=False):
        if b > a:  # a horizontal piece: its level is the rate in force over (a, b)
            middle = (a + b) / 2
            inside = [s.rate for s in steps if s.start <= middle < s.end]
            assert y0 == y1 == (inside[0] if inside else base)
