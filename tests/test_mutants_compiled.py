"""Behaviour of the fast path's compiled strategies (``retrysim/sim/compiled.py``) that the
module's mutation run found untested.

tests/test_fast_path.py proves each mirror against tenacity on everyday strategies; these pin
the corners its cases miss: composites of one or three parts, ``wait_exponential`` and
``wait_exponential_jitter`` with a floor above the cap, a base at or below 1, a power that
overflows before the precomputed ones end, the per-error table, retry_if_transient's no, and
the run's memo of compiled strategies. Each mirror is compared with tenacity's own answer
(the same type and bits for a wait, the same verdict for a stop or a retry).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import tenacity

from retrysim.retry.classify import retry_if_transient
from retrysim.retry.exceptions import ConflictError, ServerError
from retrysim.retry.per_error import PER_ERROR_FAMILIES
from retrysim.sim import compiled as compiled_module
from retrysim.sim.decide import FastCallState
from retrysim.sim.failures import CODE_NAMES
from retrysim.sim.records import ATTEMPT_DTYPE, CALL_DTYPE
from tests.test_fast_path import assert_mirror_draws_as_tenacity, stop_states

exp = tenacity.wait_exponential
jitter = tenacity.wait_exponential_jitter


@pytest.mark.parametrize(
    "stop",
    [
        tenacity.stop_any(
            tenacity.stop_after_attempt(4),
            tenacity.stop_after_delay(9),
            tenacity.stop_before_delay(3),
        ),
        tenacity.stop_any(tenacity.stop_after_delay(2)),
        tenacity.stop_any(),
    ],
    ids=["three parts", "one part", "no part"],
)
def test_a_stop_any_of_other_than_two_parts_decides_as_tenacity(stop: Any) -> None:
    """``stop_any`` built with three parts (not ``a | b | c``, which nests pairs), one or none
    stops exactly when tenacity's does."""
    mirror = compiled_module.compiled(stop)
    assert mirror is not stop
    for attempt in range(1, 6):
        for elapsed in (0.0, 1.0, 2.0, 2.5, 9.0):
            for sleep in (0.0, 0.5):
                ours, theirs = stop_states(attempt, elapsed, sleep)
                assert bool(mirror(ours)) == stop(theirs), (attempt, elapsed, sleep)


def test_a_retry_any_of_three_parts_decides_as_tenacity() -> None:
    """``retry_any`` of three exception tests retries what any of them retries, as tenacity's."""
    retry = tenacity.retry_any(
        tenacity.retry_if_exception_type(ConflictError),
        tenacity.retry_if_exception_type(TimeoutError),
        tenacity.retry_if_exception_type(ConnectionResetError),
    )
    mirror = compiled_module.compiled(retry)
    for error in (ConflictError("x"), TimeoutError(), ConnectionResetError(), ServerError("y")):
        ours = FastCallState(key=1, call=1, start_time=0.0)
        ours.failure = error
        theirs = tenacity.RetryCallState(tenacity.Retrying(), None, (), {})
        theirs.set_exception((type(error), error, None))
        assert bool(mirror(ours)) == retry(theirs), error


def test_the_per_error_table_has_a_row_for_each_code_a_record_holds() -> None:
    """The per-error mirrors look a family up by the attempt's record code: the table has one
    row per value of the records' one-byte error field (every code the engine can record), each
    error's row its family, and no family for code 0 (no error) or the codes past the errors
    (a run's answers)."""
    compiled_module.code_families.cache_clear()  # built here, from this module's code
    table = compiled_module.code_families()
    for dtype in (ATTEMPT_DTYPE, CALL_DTYPE):
        assert len(table) == np.iinfo(dtype["error"]).max + 1
    families = dict(zip(CODE_NAMES, table, strict=False))
    assert families["ConnectionError"] == families["httpx.ReadError"] == "connection_error"
    assert families["TimeoutError"] == "timeout_error"
    assert families["RateLimited"] == "rate_limited"
    assert families["ServerError"] == families["redis.exceptions.BusyLoadingError"]
    assert families["ServerError"] == "server_error"
    assert families["Conflict"] is None and families["CircuitOpen"] is None
    assert table[0] is None
    assert set(table[len(CODE_NAMES) :]) == {None}
    assert set(table) - {None} <= set(PER_ERROR_FAMILIES)


def test_wait_exponential_with_a_floor_above_its_cap_draws_as_tenacity() -> None:
    """min above max: past the cap tenacity returns the floor, even where its power would
    overflow (attempt 5000), for a multiplier at or below 1 and a cap at or below 1 too."""
    for wait in (exp(multiplier=0.5, max=5, min=10), exp(multiplier=2.0, max=0.5, min=10)):
        assert_mirror_draws_as_tenacity(wait, [1, 2, 5, 10, 1100, 5000], seed=3)
        state = FastCallState(3, 1, 0.0)
        state.attempt_number = 5000
        assert compiled_module.compiled(wait)(state) == 10


def test_wait_exponential_with_a_base_at_or_below_one_draws_as_tenacity() -> None:
    """exp_base 1 (a fixed wait) and 0.5 (a shrinking one): no shortcut to the cap applies."""
    for base in (1, 0.5):
        assert_mirror_draws_as_tenacity(exp(multiplier=1, max=8, exp_base=base), range(1, 12), 3)


def test_wait_exponential_exactly_at_its_cap_returns_tenacitys_integer() -> None:
    """An int multiplier whose power reaches the cap exactly (1 * 2**3 = 8): tenacity returns
    its own int 8, not the cap's float 8.0; the mirror returns the same object type."""
    assert_mirror_draws_as_tenacity(exp(multiplier=1, max=8), range(1, 10), seed=4)
    at_cap = compiled_module.compiled(exp(multiplier=1, max=8))
    state = FastCallState(4, 1, 0.0)
    state.attempt_number = 4
    assert type(at_cap(state)) is int


def test_wait_exponential_jitter_whose_power_overflows_early_draws_as_tenacity() -> None:
    """A base so large its power overflows within the precomputed attempts: from then on the
    cap, as tenacity's OverflowError gives it."""
    wait = jitter(multiplier=1, max=5, exp_base=1e10, jitter=0.5)
    assert_mirror_draws_as_tenacity(wait, range(1, 70), seed=5)


def test_wait_exponential_jitter_below_its_floor_returns_the_floor() -> None:
    """A small power plus a small jitter under ``min``: tenacity returns min."""
    wait = jitter(multiplier=0.1, max=8, jitter=0.1, min=0.5)
    assert_mirror_draws_as_tenacity(wait, range(1, 4), seed=6)
    state = FastCallState(6, 1, 0.0)
    assert compiled_module.compiled(wait)(state) == 0.5


def test_wait_exponential_jitter_past_the_precomputed_powers_adds_its_jitter() -> None:
    """Attempts past the powers worked out before the run, a tiny multiplier so the jitter
    shows: power plus jitter, bit for bit tenacity's."""
    wait = jitter(multiplier=1e-30, max=1e6, jitter=1)
    assert_mirror_draws_as_tenacity(wait, range(60, 110), seed=8)


def test_retry_if_transient_says_no_to_an_error_that_is_not_transient() -> None:
    """The mirror of retrysim's retry_if_transient retries a connection error and a conflict,
    and not a 500, a ValueError or an attempt that returned: what the strategy itself says."""
    retry = retry_if_transient()
    mirror = compiled_module.compiled(retry)
    assert mirror is not retry
    for error in (ConnectionError(), ConflictError("x"), ServerError("y"), ValueError(), None):
        ours = FastCallState(key=1, call=1, start_time=0.0)
        ours.failure = error
        theirs = tenacity.RetryCallState(tenacity.Retrying(), None, (), {})
        if error is None:
            theirs.set_result("answer")
        else:
            theirs.set_exception((type(error), error, None))
        assert bool(mirror(ours)) == retry(theirs), error
    ours = FastCallState(key=1, call=1, start_time=0.0)
    ours.failure = ServerError("y")
    assert not mirror(ours)


def test_a_memo_gives_back_the_strategy_it_compiled_before() -> None:
    """A run compiles a shared strategy once: asked again for the same strategy, the memo
    gives back the very function it compiled; a new strategy after ``freeze`` is compiled
    and not kept."""
    memo = compiled_module.Memo()
    stop = tenacity.stop_after_attempt(3) | tenacity.stop_after_delay(2)
    wait = exp(multiplier=0.5, max=4)
    first_stop, first_wait = (
        compiled_module.compiled(stop, memo),
        compiled_module.compiled(wait, memo),
    )
    assert first_stop is not stop and first_wait is not wait
    assert compiled_module.compiled(stop, memo) is first_stop
    assert compiled_module.compiled(wait, memo) is first_wait
    memo.freeze()
    kept = len(memo.known)
    other = tenacity.stop_after_attempt(5)
    assert compiled_module.compiled(other, memo) is not compiled_module.compiled(other, memo)
    assert len(memo.known) == kept
    assert compiled_module.compiled(stop, memo) is first_stop
