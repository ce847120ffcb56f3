"""Tests written for mutants of ``retrysim/retry/hooks.py`` that its own tests let survive
(a full mutation run, ``python scripts/mutate.py --module hooks``): each pins a behaviour a
plausible wrong edit would change."""

from __future__ import annotations

import dataclasses

import pytest

from retrysim.retry import (
    BreakerChange,
    ExhaustedCall,
    RetryEvent,
    add_breaker_hook,
    remove_breaker_hook,
    retry_api_call,
)
from retrysim.retry.hooks import check_hook

# --- hooks: the events are values -----------------------------------------------------------


def test_hook_events_are_immutable_and_hashable() -> None:
    """Every hook of an event sees the same object: none can change what the next one sees,
    and equal events compare (and hash) equal."""
    error = ConnectionError("down")
    exhausted = ExhaustedCall("m.f", "f", "api", 3, 3, error, 1.5)
    retry = RetryEvent("m.f", "f", "api", 1, 3, 0.5, 0.0, error)
    change = BreakerChange("db", "open", 2.0)
    for event, field in ((exhausted, "attempts"), (retry, "wait"), (change, "time")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(event, field, 0)
    assert len({exhausted, dataclasses.replace(exhausted)}) == 1
    assert len({retry, dataclasses.replace(retry)}) == 1
    assert len({change, BreakerChange("db", "open", 2.0)}) == 1


# --- hooks: removing a process-wide breaker hook --------------------------------------------


def test_a_removed_breaker_hook_is_not_called_again() -> None:
    """After ``remove_breaker_hook(hook)`` a breaker opening no longer calls ``hook``; a hook
    still added hears it."""
    heard: list[BreakerChange] = []
    removed: list[BreakerChange] = []
    add_breaker_hook(heard.append)
    add_breaker_hook(removed.append)
    remove_breaker_hook(removed.append)
    remove_breaker_hook(lambda change: None)  # never added: harmless
    now = [0.0]

    @retry_api_call(
        max_attempts=1,
        clock=lambda: now[0],
        breaker={"enabled": True, "failure_threshold": 1, "name": "hooks-db"},
    )
    def call() -> None:
        raise ConnectionError("down")

    try:
        with pytest.raises(ConnectionError):
            call()
    finally:
        remove_breaker_hook(heard.append)
    assert [(c.breaker, c.state) for c in heard] == [("hooks-db", "open")]
    assert removed == []


# --- hooks: an async hook is refused by name ------------------------------------------------


class _AsyncHook:
    """A callable object whose ``__call__`` is async (it has no ``__qualname__`` of its own)."""

    async def __call__(self, event: object) -> None:
        return None

    def __repr__(self) -> str:
        return "<async hook object>"


def test_an_async_hook_object_is_refused_by_its_repr() -> None:
    """An async hook without a name of its own is named in the refusal by its repr."""
    with pytest.raises(TypeError) as refused:
        check_hook("on_retry", _AsyncHook())
    assert str(refused.value).startswith("on_retry: <async hook object> is async")
