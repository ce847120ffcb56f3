"""Tests written for mutants of ``retrysim/retry/per_error.py`` that its own tests let survive
(a full mutation run, ``python scripts/mutate.py --module per_error``): each pins a behaviour a
plausible wrong edit would change."""

from __future__ import annotations

import tenacity
from tenacity import RetryCallState

from retrysim.retry.per_error import latest_family, stop_after_attempt_per_error, wait_per_error

# --- per_error: before any attempt ----------------------------------------------------------------


def test_before_any_attempt_there_is_no_latest_family() -> None:
    """A call state with no outcome yet has no latest error, so no family: ``latest_family``
    says None (it does not fail), and the strategies fall back to the policy's own numbers."""
    state = RetryCallState(tenacity.Retrying(), None, (), {})
    assert state.outcome is None
    assert latest_family(state) is None
    stop = stop_after_attempt_per_error(2, {"rate_limited": 8})
    assert stop(state) is False  # attempt 1 of the policy's 2
    wait = wait_per_error(tenacity.wait_fixed(1.0), {"rate_limited": tenacity.wait_fixed(30.0)})
    assert wait(state) == 1.0


# --- per_error: how the strategies show ---------------------------------------------------------


def test_the_per_error_stop_shows_its_limits() -> None:
    """``repr`` of the per-error stop names the policy's attempts and each family's own, as a
    policy's description and a debugger show it."""
    stop = stop_after_attempt_per_error(3, {"rate_limited": 8, "connection_error": 2})
    assert repr(stop) == (
        "stop_after_attempt_per_error(3, {'rate_limited': 8, 'connection_error': 2})"
    )
