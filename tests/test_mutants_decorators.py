"""Tests written for mutants of ``retrysim/retry/decorators.py`` that its own tests let survive
(a full mutation run, ``python scripts/mutate.py --module decorators``): each pins a behaviour a
plausible wrong edit would change."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from retrysim.retry import (
    RetrySettings,
    retry_api_call,
    retry_with_adaptive_backoff,
    retry_with_budget,
    retry_with_circuit_breaker,
    retry_worker_operation,
    use_settings,
)

# --- decorators: what a refused function is told -----------------------------------------


def _generator() -> Iterator[int]:
    yield 1


def _sync_work() -> str:
    return "done"


def test_a_generator_is_refused_by_its_qualified_name() -> None:
    """The refusal of a generator function names the decorator and the function's qualified
    name (not its repr with an address), then says it is a generator function."""
    with pytest.raises(TypeError) as refused:
        retry_worker_operation(_generator)
    assert str(refused.value).startswith(
        f"@retry_worker_operation cannot retry {_generator.__qualname__}: it is a generator "
        "function"
    )


def test_attempt_timeout_on_a_sync_function_names_decorator_and_function() -> None:
    """``attempt_timeout`` on a sync function is refused at decoration, the message naming the
    decorator (``@retry_worker_operation``, not another one) and the function by its name."""
    with pytest.raises(TypeError) as refused:
        retry_worker_operation(attempt_timeout=1.0)(_sync_work)
    assert str(refused.value).startswith(
        "@retry_worker_operation: attempt_timeout bounds coroutines only, and "
        f"{_sync_work.__qualname__} is a sync function"
    )


def test_hedge_on_a_sync_function_is_refused_naming_it() -> None:
    """An explicit ``hedge=True`` on a sync function is a TypeError at decoration naming the
    decorator and the function; the same option on a coroutine function is accepted."""
    with pytest.raises(TypeError) as refused:
        retry_api_call(hedge=True)(_sync_work)
    assert str(refused.value).startswith(
        f"@retry_api_call: hedge hedges coroutines only, and {_sync_work.__qualname__} is a "
        "sync function"
    )

    async def work() -> str:
        return "done"

    assert callable(retry_api_call(hedge=True)(work))


def test_a_sync_function_without_explicit_hedge_is_accepted() -> None:
    """A hedge table that leaves ``enabled`` unset does not turn hedging on, so a sync
    function with it is decorated (and runs) without complaint."""
    decorated = retry_api_call(hedge={"delay": 1.0})(_sync_work)
    assert decorated() == "done"


# --- decorators: the decorator objects themselves --------------------------------------------


def test_each_operation_decorator_has_its_own_doc_name_and_repr() -> None:
    """``help(retry_api_call)`` shows a doc naming its own variables, the decorator's repr names
    its operation, and the four public names are told apart."""
    assert "RETRY__API_MAX_ATTEMPTS" in (retry_api_call.__doc__ or "")
    assert "RETRY__WORKER_MAX_ATTEMPTS" in (retry_worker_operation.__doc__ or "")
    assert repr(retry_api_call) == "<retry decorator for 'api' operations>"
    assert retry_api_call.name == "retry_api_call"
    assert retry_worker_operation.name == "retry_worker_operation"


# --- decorators: the mechanism decorators --------------------------------------------------


def _quick(**more: Any) -> None:
    use_settings(
        RetrySettings(
            api_min_wait=0.0,
            api_max_wait=0.0,
            worker_min_wait=0.0,
            worker_max_wait=0.0,
            jitter=0.0,
            **more,
        )
    )


def test_a_mechanism_stacked_on_an_api_decorator_keeps_the_api_settings() -> None:
    """``@retry_with_budget`` above ``@retry_api_call()`` re-decorates with the api operation:
    the call makes the api settings' attempts (2), not the worker's (4)."""
    _quick(api_max_attempts=2, worker_max_attempts=4)
    runs = 0

    @retry_with_budget(max_total_time=60.0)
    @retry_api_call(sleep=lambda seconds: None)
    def flaky() -> None:
        nonlocal runs
        runs += 1
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        flaky()
    assert runs == 2


def test_a_bad_mechanism_knob_fails_before_anything_is_decorated() -> None:
    """A bad knob is a ValueError when the mechanism decorator is made (at import), not later
    when it is applied to a function."""
    with pytest.raises(ValueError, match="failure_threshold"):
        retry_with_circuit_breaker(failure_threshold=-1)
    with pytest.raises(ValueError, match="max_total_time"):
        retry_with_budget(max_total_time=-1.0)


def test_a_breaker_stacked_on_a_shorthand_breaker_keeps_both_and_the_settings() -> None:
    """``@retry_with_circuit_breaker(recovery_timeout=...)`` above ``@retry_api_call(breaker=
    "llm-api")``: the breaker keeps its name, takes the new knob, and every knob neither gave
    still comes from the settings (RETRY__API_BREAKER_FAILURE_THRESHOLD=7)."""
    _quick(api_breaker_failure_threshold=7)

    @retry_with_circuit_breaker(recovery_timeout=5.0)
    @retry_api_call(breaker="llm-api")
    def call() -> str:
        return "ok"

    assert call() == "ok"
    breaker = call.retry_policy().options.breaker  # type: ignore[attr-defined]
    assert breaker.enabled is True
    assert breaker.name == "llm-api"
    assert breaker.recovery_timeout == 5.0
    assert breaker.failure_threshold == 7


def test_a_per_call_budget_alone_leaves_the_shared_budget_off() -> None:
    """``retry_with_budget(max_total_time=...)`` alone is a per-call limit: the shared budget
    stays off. Any other knob turns it on; an explicit ``enabled=False`` keeps it off."""

    def budget_of(decorator: Any) -> Any:
        decorated = decorator(_sync_work)
        assert decorated() == "done"
        return decorated.retry_policy().options.budget

    alone = budget_of(retry_with_budget(max_total_time=30.0))
    assert alone.enabled is False
    assert alone.max_total_time == 30.0
    shared = budget_of(retry_with_budget(max_tokens=5, max_total_time=30.0))
    assert shared.enabled is True
    assert shared.max_tokens == 5
    assert budget_of(retry_with_budget(max_tokens=5)).enabled is True
    assert budget_of(retry_with_budget(enabled=False, max_tokens=5)).enabled is False


def test_adaptive_backoff_decorator_turns_adaptive_on() -> None:
    """``@retry_with_adaptive_backoff()`` gives the function a policy with adaptive backoff on,
    its knobs passed through."""
    decorated = retry_with_adaptive_backoff(limiter=True)(_sync_work)
    assert decorated() == "done"
    adaptive = decorated.retry_policy().options.adaptive  # type: ignore[attr-defined]
    assert adaptive.enabled is True
    assert adaptive.limiter is True
