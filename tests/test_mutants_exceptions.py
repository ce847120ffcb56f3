"""Tests written for mutants of ``retrysim/retry/exceptions.py`` that its own tests let survive
(a full mutation run, ``python scripts/mutate.py --module exceptions``): each pins a behaviour a
plausible wrong edit would change."""

from __future__ import annotations

from retrysim.retry.exceptions import CircuitOpenError, GuardRefusedError

# --- exceptions: CircuitOpenError -----------------------------------------------------------------


def test_a_circuit_open_error_without_a_delay_says_the_probe_is_due_now() -> None:
    """Raised by user code with only the dependency's name (``CircuitOpenError("api")``), it
    means "open, no probe delay known": ``retry_in`` is 0 and the message says 0.0 s."""
    error = CircuitOpenError("api")
    assert isinstance(error, GuardRefusedError)
    assert error.breaker == "api"
    assert error.retry_in == 0.0
    assert str(error) == "circuit breaker 'api' is open; next probe in 0.0s"
