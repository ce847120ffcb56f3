"""Counter-based random streams: pure functions of (seed, purpose, call, attempt).

Laws checked: the SplitMix64 finaliser is a bijection (we invert it independently), draws lie in
[0, 1), are uniform and uncorrelated across streams and calls, and the engine's jitter draws are
exactly the call's own stream (so no draw depends on event order).
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from retrysim.model.scenario import parse_scenario
from retrysim.sim.engine import CALL_KEY_SHIFT, simulate
from retrysim.sim.streams import (
    ARRIVAL,
    FAULT_BASE,
    JITTER,
    LATENCY,
    M64,
    RESET_POINT,
    Stream,
    mix,
    stream_key,
    unit,
)

U64 = st.integers(min_value=0, max_value=M64)

# --- an independent inverse of SplitMix64's finaliser ------------------------------------------


def _unxorshift(y: int, shift: int) -> int:
    """Invert ``x ^ (x >> shift)`` on 64-bit ints by fixed-point iteration."""
    x = y
    for _ in range(64 // shift + 1):
        x = y ^ (x >> shift)
    return x & M64


def _unmix(z: int) -> int:
    z = _unxorshift(z, 31)
    z = (z * pow(0x94D049BB133111EB, -1, 1 << 64)) & M64
    z = _unxorshift(z, 27)
    z = (z * pow(0xBF58476D1CE4E5B9, -1, 1 << 64)) & M64
    return _unxorshift(z, 30)


@given(U64)
def test_mix_is_a_bijection_on_64_bit_ints(z: int) -> None:
    out = mix(z)
    assert 0 <= out <= M64
    assert _unmix(out) == z


def test_mix_avalanches_one_flipped_bit_changes_about_half_the_output() -> None:
    flips = [bin(mix(z) ^ mix(z ^ 1)).count("1") for z in range(2000)]
    # A good finaliser flips 32 of 64 bits on average (binomial, sd 4 per sample).
    assert abs(np.mean(flips) - 32) < 5 * 4 / math.sqrt(len(flips))


# --- unit draws ----------------------------------------------------------------------------


@given(U64, st.integers(0, 2**40), st.integers(0, 2**16))
def test_unit_is_in_the_half_open_unit_interval(key: int, call: int, attempt: int) -> None:
    u = unit(key, call, attempt)
    assert 0.0 <= u < 1.0


def test_largest_possible_unit_is_below_one() -> None:
    # unit() keeps the top 53 bits: the largest value is (2^53 - 1) / 2^53 < 1.
    assert ((M64 >> 11) * 2.0**-53) < 1.0


@given(U64, st.integers(0, 2**40), st.integers(0, 2**16))
def test_unit_is_a_pure_function(key: int, call: int, attempt: int) -> None:
    assert unit(key, call, attempt) == unit(key, call, attempt)


def test_unit_draws_are_uniform() -> None:
    key = stream_key(7, LATENCY)
    n = 60_000
    u = np.array([unit(key, i, 1) for i in range(n)])
    # mean of U(0,1) is 1/2 with variance 1/12 per draw
    assert abs(u.mean() - 0.5) < 5 * math.sqrt(1 / 12 / n)
    # chi-square over 20 equal bins, 19 degrees of freedom: mean 19, sd sqrt(38) ~ 6.2
    counts, _ = np.histogram(u, bins=20, range=(0.0, 1.0))
    expected = n / 20
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 19 + 6 * math.sqrt(38)


def test_streams_of_different_purposes_and_calls_are_uncorrelated() -> None:
    n = 20_000
    jit, lat = stream_key(3, JITTER), stream_key(3, LATENCY)
    a = np.array([unit(jit, i, 1) for i in range(n)])
    b = np.array([unit(lat, i, 1) for i in range(n)])
    c = np.array([unit(jit, i + 1, 1) for i in range(n)])
    d = np.array([unit(jit, i, 2) for i in range(n)])
    bound = 5 / math.sqrt(n)  # sample correlation of independent draws has sd ~ 1/sqrt(n)
    for other in (b, c, d):
        assert abs(np.corrcoef(a, other)[0, 1]) < bound


def test_stream_keys_are_distinct_across_seeds_and_purposes() -> None:
    purposes = [JITTER, LATENCY, ARRIVAL, RESET_POINT, *(FAULT_BASE + i for i in range(10))]
    keys = {stream_key(seed, p) for seed in range(500) for p in purposes}
    assert len(keys) == 500 * len(purposes)


def test_neighbouring_calls_and_attempts_get_different_draws() -> None:
    key = stream_key(0, JITTER)
    draws = {unit(key, call, attempt) for call in range(200) for attempt in range(1, 6)}
    assert len(draws) == 200 * 5


# --- sequential Stream (what tenacity's jitter draws from) ------------------------------------


def test_stream_sequence_is_reproducible_and_independent_of_other_streams() -> None:
    key = stream_key(11, JITTER)
    first = Stream(key, 5)
    seq = [first.random() for _ in range(10)]
    # Interleave draws from another stream: the first stream's sequence must not change.
    again, other = Stream(key, 5), Stream(key, 6)
    mixed = []
    for _ in range(10):
        other.random()
        mixed.append(again.random())
        other.random()
    assert mixed == seq
    assert len(set(seq)) == 10
    assert all(0.0 <= v < 1.0 for v in seq)


@given(
    U64,
    st.integers(0, 2**40),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.floats(0, 1e6, allow_nan=False),
)
def test_stream_uniform_stays_in_its_range(key: int, call: int, a: float, width: float) -> None:
    b = a + width
    v = Stream(key, call).uniform(a, b)
    assert a <= v <= b


def test_engine_jitter_is_the_calls_own_stream() -> None:
    """full_jitter's first wait is U(0, min_wait) = min_wait * (first draw of the call's stream).

    The stream of call (client c, index i) is Stream(stream_key(seed, JITTER), c << 24 | i),
    so the waits are fixed by (seed, client, index) alone.
    """
    scenario = parse_scenario(
        {
            "seed": 99,
            "policy": {"profile": "full_jitter", "max_attempts": 2, "min_wait": 2.0},
            "clients": {"count": 20},
            "faults": [{"kind": "outage", "start": 0, "end": 1}],
        }
    )
    result = simulate(scenario)
    key = stream_key(99, JITTER)
    calls = result.calls
    firsts = result.attempts[result.attempts["attempt"] == 1]
    assert len(firsts) == 20
    for row in firsts:
        client = int(calls["client"][row["call"]])
        expected = 2.0 * Stream(key, client << CALL_KEY_SHIFT).random()
        assert row["wait"] == expected
