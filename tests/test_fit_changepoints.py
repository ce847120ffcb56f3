"""Change points: the segment log-likelihoods against scipy's, a planted window found where
it is, and no window found in data without one."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrysim.fit import scipy_api
from retrysim.fit.changepoints import Segment, binomial, departure, penalty, poisson, segments

stats = scipy_api.stats()


@given(st.lists(st.booleans(), min_size=1, max_size=60))
def test_the_binomial_likelihood_is_scipys_at_the_fitted_share(flags: list[bool]) -> None:
    x = np.array(flags, dtype=np.float64)
    share = x.mean()
    expected = float(np.sum(stats.bernoulli.logpmf(x, share)))
    assert binomial(np.array([x.sum()]), np.array([float(len(x))]))[0] == pytest.approx(expected)


@given(
    st.lists(st.integers(0, 50), min_size=1, max_size=30),
    st.lists(st.floats(0.1, 5), min_size=30, max_size=30),
)
def test_the_poisson_likelihood_is_scipys_up_to_the_terms_free_of_the_rate(
    counts: list[int], widths: list[float]
) -> None:
    c = np.array(counts, dtype=np.float64)
    w = np.array(widths[: len(counts)])
    rate = c.sum() / w.sum()
    scipy_sum = float(np.sum(stats.poisson.logpmf(c, rate * w)))
    free_of_rate = float(np.sum(c * np.log(w)) - np.sum([math.lgamma(k + 1) for k in counts]))
    ours = poisson(np.array([c.sum()]), np.array([w.sum()]))[0]
    assert ours + free_of_rate == pytest.approx(scipy_sum, abs=1e-9 * max(1.0, abs(scipy_sum)))


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(2000, 8000),
    start=st.floats(0.1, 0.7),
    length=st.floats(0.02, 0.2),
    steady=st.floats(0.0, 0.05),
    inside=st.floats(0.8, 1.0),
    seed=st.integers(0, 2**31),
)
def test_a_planted_window_is_found_where_it_is(
    n: int, start: float, length: float, steady: float, inside: float, seed: int
) -> None:
    """A fault window (most of its requests failing, at least 40 of them) is found to within
    a few requests. Weaker or shorter ones can fall below the penalty: 15 failures among 47
    requests against a 3% steady share in 2,000 requests does (twice its best gain in any
    interval is 17, the penalty 3 ln 2000 is 23); :func:`test_a_long_weak_window_is_found`
    shows a weak one found by its length."""
    rng = np.random.default_rng(seed)
    a, b = int(start * n), int((start + length) * n)
    share = np.full(n, steady)
    share[a:b] = inside
    x = (rng.random(n) < share).astype(np.float64)
    found = segments(x, np.ones(n), binomial)
    window = max(found, key=lambda s: s.rate)
    # the ends move by at most a few requests: a failure-free run at the edge of the window
    # is as likely inside as outside it (here at most log(1e-6) / log(1 - inside) long)
    slack = math.ceil(math.log(1e-6) / math.log(max(1 - inside, 1e-12))) + 3
    assert abs(window.start - a) <= slack and abs(window.stop - b) <= slack
    base = max(found, key=lambda s: s.w)
    assert departure(window, base.rate, binomial) > penalty(n)


def test_a_long_weak_window_is_found() -> None:
    """6% failing for 2,000 requests among 2%: found, its ends less sharp (each request
    carries 0.027 nats of evidence, so an end moves by hundreds before it costs a nat)."""
    rng = np.random.default_rng(8)
    share = np.full(10000, 0.02)
    share[4000:6000] = 0.06
    x = (rng.random(10000) < share).astype(np.float64)
    found = segments(x, np.ones(10000), binomial)
    window = max(found, key=lambda s: s.rate)
    assert abs(window.start - 4000) < 400 and abs(window.stop - 6000) < 400


def test_no_window_is_cut_from_data_without_one() -> None:
    cuts = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        x = (rng.random(5000) < 0.02).astype(np.float64)
        cuts += len(segments(x, np.ones(5000), binomial)) - 1
    assert cuts <= 2  # the penalty keeps false windows rare: measured 0 in 40 logs


def test_a_rate_step_in_counts_is_found() -> None:
    rng = np.random.default_rng(3)
    rates = np.where((np.arange(300) >= 100) & (np.arange(300) < 150), 40.0, 10.0)
    counts = rng.poisson(rates).astype(np.float64)
    found = segments(counts, np.ones(300), poisson)
    assert [(s.start, s.stop) for s in found] == [(0, 100), (100, 150), (150, 300)]


def test_departure_is_zero_at_the_segments_own_rate() -> None:
    segment = Segment(0, 100, 30.0, 100.0)
    assert departure(segment, 0.3, binomial) == pytest.approx(0.0, abs=1e-9)
    assert departure(segment, 0.1, binomial) > 0
    assert departure(segment, 0.0, binomial) == math.inf
