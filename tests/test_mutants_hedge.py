"""Tests written for mutants of ``retrysim/retry/hedge.py`` that its own tests let survive
(a full mutation run, ``python scripts/mutate.py --module hedge``): each pins a behaviour a
plausible wrong edit would change."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING, Any

import pytest
from tenacity import AsyncRetrying, RetryCallState, Retrying

from retrysim.retry.hedge import Hedging, judge_by, race

if TYPE_CHECKING:
    from retrysim.retry.hedge import Judge


def _verdict(judge: Judge, error: BaseException | None, result: Any) -> bool:
    """Run one judgement to its end (a judge is awaited inside a running loop)."""

    async def ask() -> bool:
        return await judge(error, result)

    return asyncio.run(ask())


# --- hedge: Hedging -------------------------------------------------------------------------


def test_a_resolved_hedging_is_immutable_and_hashable() -> None:
    """A policy's resolved hedging is a value: it cannot be changed under the calls sharing it,
    and equal ones compare (and hash) equal."""
    hedging = Hedging(max_attempts=3, delay=0.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        hedging.delay = 0.0  # type: ignore[misc]
    assert len({hedging, Hedging(max_attempts=3, delay=0.5)}) == 1


# --- hedge: judge_by -------------------------------------------------------------------------


def test_an_outcome_is_judged_at_the_attempt_it_belongs_to() -> None:
    """The retry strategy is asked on a state at attempt ``attempt``: a strategy that retries
    only the first two attempts finds the same error acceptable at attempt 3, not at 1."""

    def retry_early(state: RetryCallState) -> bool:
        return state.attempt_number < 3

    retrying = Retrying()
    error = ConnectionError("down")
    assert _verdict(judge_by(retry_early, retrying, 3), error, None) is True
    assert _verdict(judge_by(retry_early, retrying, 1), error, None) is False


def test_an_async_strategy_is_awaited_when_judging() -> None:
    """An async retry strategy's verdict is awaited: one that retries nothing finds a result
    acceptable, one that retries everything does not."""

    async def never(state: RetryCallState) -> bool:
        return False

    async def always(state: RetryCallState) -> bool:
        return True

    retrying = AsyncRetrying()
    assert _verdict(judge_by(never, retrying, 1), None, "ok") is True
    assert _verdict(judge_by(always, retrying, 1), None, "ok") is False


# --- hedge: race -----------------------------------------------------------------------------


def _no_hedge(n: int) -> None:
    raise AssertionError(f"no hedge expected, got send {n}")


def test_a_group_whose_first_send_already_answered_returns_that_answer() -> None:
    """A first send that finished before the race began is judged at once: its acceptable
    answer is the group's, with no hedge sent."""

    async def scenario() -> Any:
        done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        done.set_result("early")

        async def accept(error: BaseException | None, result: Any) -> bool:
            return error is None

        async def again() -> str:
            raise AssertionError("no second send expected")

        return await race(done, again, Hedging(max_attempts=2, delay=60.0), accept, _no_hedge)

    assert asyncio.run(scenario()) == "early"


def test_a_cancelled_send_is_judged_as_a_cancellation() -> None:
    """A send cancelled from outside is judged as a CancelledError with no result; when it is
    the group's only send and is not acceptable, the group ends with that cancellation."""
    shown: list[tuple[type[BaseException] | None, Any]] = []

    async def scenario() -> None:
        cancelled: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        cancelled.cancel()

        async def judge(error: BaseException | None, result: Any) -> bool:
            shown.append((None if error is None else type(error), result))
            return False

        async def again() -> str:
            raise AssertionError("no second send expected")

        with pytest.raises(asyncio.CancelledError):
            await race(cancelled, again, Hedging(max_attempts=1, delay=0.0), judge, _no_hedge)

    asyncio.run(scenario())
    assert shown == [(asyncio.CancelledError, None)]
