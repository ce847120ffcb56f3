"""Tests written for mutants of ``retrysim/retry/waits.py`` that its own tests let survive
(a full mutation run, ``python scripts/mutate.py --module waits``): each pins a behaviour a
plausible wrong edit would change."""

from __future__ import annotations

import random

import pytest
from tenacity import RetryCallState

from retrysim.retry.waits import wait_decorrelated_jitter, wait_equal_jitter


def _state(attempt: int) -> RetryCallState:
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = attempt
    return state


@pytest.mark.parametrize("seed", range(20))
def test_a_floor_below_the_wait_leaves_the_wait_alone(seed: int) -> None:
    """``min`` is a floor, not the wait: at the 5th attempt equal jitter waits between 8 and
    16 s, and a floor of 0.5 s changes none of those draws."""
    random.seed(seed)
    floored = wait_equal_jitter(multiplier=1.0, max=60.0, min=0.5)(_state(5))
    random.seed(seed)
    plain = wait_equal_jitter(multiplier=1.0, max=60.0)(_state(5))
    assert floored == plain and 8.0 <= floored <= 16.0


def test_a_floor_above_the_wait_raises_it_to_the_floor() -> None:
    random.seed(3)
    state = _state(1)
    assert wait_decorrelated_jitter(base=0.01, max=0.02, min=5.0)(state) == 5.0
