"""Hedged requests: a slow attempt of a coroutine gets company, and the first good answer wins.

Off unless ``enabled``. On, each attempt of a call (each one tenacity makes) is a hedged group,
as in gRPC's and Polly's hedging policies: the first send starts at once; while no send has
answered acceptably, another starts ``delay`` seconds after the latest one, up to
``max_attempts`` sends in the group (the first included, as gRPC's ``maxAttempts`` counts the
original). A send that fails starts the next one at once, without waiting out the delay. The
first acceptable outcome wins and every other send still running is cancelled, and awaited, so
nothing is left running. When every send failed, the attempt fails with the latest failure and
tenacity decides about a retry as it always does.

"Acceptable" is what the policy's retry strategy would not retry: a result it accepts, or an
error it does not retry (a non-retryable error ends the group at once, as a fatal status does in
gRPC). A retried result and a retryable error are failed sends.

The rest of the policy sees one attempt per group: the guards (breaker, budget, limiter) are
asked once before its first send and told its outcome, the counters count one attempt, and
``attempt_timeout`` bounds each send, not the group (as Envoy's per-try timeout and Polly's
timeout inside hedging do): a send not answered by then fails with ``TimeoutError`` like any
failed send, which starts the next one at once; a group therefore lasts at most
``(max_attempts - 1) * delay + attempt_timeout``. Each hedge (every send after a group's first)
is counted (``retry_metrics()[...].hedges``, ``retry_hedges_total``) and logged at debug.

Coroutines only: a sync call cannot be abandoned once started without leaving its thread
running, so an explicit hedge on a sync function is refused when it is decorated, and a hedge
that comes from the settings leaves sync calls unhedged, said once in a warning. Each send runs
in its own task, so it sees a copy of the caller's context variables.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from pydantic import Field
from tenacity import BaseRetrying, RetryCallState

from retrysim.retry.knobs import Knobs, PlacedGuard

#: The most sends a group may make (gRPC caps its own ``maxAttempts`` at 5; Polly allows 10).
MAX_SENDS = 10


class HedgeOptions(Knobs):
    """``[policy.hedge]`` / ``RETRY__<OPERATION>_HEDGE_*``: off unless ``enabled``.

    ``delay`` defaults to 2 s, Polly's default: long enough that a healthy dependency's calls
    rarely hedge (a short delay sends a second request for many calls, adding load exactly when
    a slowing dependency can least take it), short enough to cut a tail of several seconds. The
    usual advice (Dean and Barroso, "The Tail at Scale") is the dependency's 95th-percentile
    latency, which only its owner knows: set it to that.
    """

    enabled: Annotated[
        bool, Field(description="hedge each attempt of a coroutine: the first good answer wins")
    ] = False
    max_attempts: Annotated[
        int,
        Field(
            ge=2,
            le=MAX_SENDS,
            description="sends per attempt, the first one included",
        ),
    ] = 2
    delay: Annotated[
        float,
        Field(
            ge=0,
            le=1e6,
            allow_inf_nan=False,
            json_schema_extra={"unit": "s"},
            description="seconds without an answer before each further send (0: all at once)",
        ),
    ] = 2.0


def hedge_guards(operation: str, options: HedgeOptions) -> tuple[PlacedGuard, ...]:
    """Hedging adds no guard: the guards see one attempt per hedged group."""
    return ()


@dataclass(frozen=True)
class Hedging:
    """A policy's hedging as resolved: ``max_attempts`` sends per attempt, the next one
    ``delay`` seconds after the latest while none has answered acceptably."""

    max_attempts: int
    delay: float


class _Options(Protocol):
    @property
    def hedge(self) -> HedgeOptions: ...


class _Policy(Protocol):
    """What :func:`hedging_of` reads of a ``RetryPolicy`` (named structurally: the policy
    module imports the registry, which imports this one)."""

    @property
    def options(self) -> _Options: ...


def hedging_of(policy: _Policy) -> Hedging | None:
    """A ``RetryPolicy``'s hedging, or None when it is off.

    Its table is resolved, as every mechanism's is: ``build_policy`` filled each knob the
    options left unset from its ``RETRY__<OPERATION>_HEDGE_*`` setting, so what is read here
    is what the decorators, the engine and the reports all see.
    """
    table = policy.options.hedge
    if not table.enabled:
        return None
    return Hedging(max_attempts=table.max_attempts, delay=table.delay)


#: Says whether a send's outcome (its error, or None and its result) is acceptable.
Judge = Callable[[BaseException | None, Any], Awaitable[bool]]


def judge_by(retry: Any, retrying: BaseRetrying, attempt: int) -> Judge:
    """A send's outcome is acceptable when ``retry`` (the policy's retry strategy) would not
    retry it, asked as tenacity asks it: on the state of attempt ``attempt`` of ``retrying``,
    holding that outcome (an async strategy awaited)."""

    async def acceptable(error: BaseException | None, result: Any) -> bool:
        state = RetryCallState(retrying, None, (), {})
        state.attempt_number = attempt
        if error is not None:
            state.set_exception((type(error), error, error.__traceback__))
        else:
            state.set_result(result)
        verdict = retry(state)
        if inspect.isawaitable(verdict):
            verdict = await verdict
        return not verdict

    return acceptable


async def race(
    first: Awaitable[Any],
    again: Callable[[], Awaitable[Any]],
    hedging: Hedging,
    acceptable: Judge,
    hedged: Callable[[int], None],
) -> Any:
    """One hedged group: the first acceptable outcome, or the latest failure when none is.

    ``first`` is the first send's work, already begun; ``again()`` begins another send;
    ``acceptable`` judges an outcome; ``hedged(n)`` is told as send ``n`` (2, 3, ...) starts.
    Sends that finish together are judged in the order they started, so the earliest send wins
    a tie. Whatever ends the group (an answer, the last failure, or the caller's cancellation),
    every send still running is cancelled and awaited before it returns.
    """
    loop = asyncio.get_running_loop()
    sends: list[asyncio.Future[Any]] = [asyncio.ensure_future(first)]
    judged: set[asyncio.Future[Any]] = set()
    latest_failure: asyncio.Future[Any] | None = None
    next_send = loop.time() + hedging.delay
    try:
        while True:
            while len(sends) < hedging.max_attempts and loop.time() >= next_send:
                sends.append(asyncio.ensure_future(again()))
                hedged(len(sends))
                next_send = loop.time() + hedging.delay
            running = [send for send in sends if not send.done()]
            if not running and latest_failure is not None and len(judged) == len(sends):
                return latest_failure.result()  # every send failed: the latest failure
            more = len(sends) < hedging.max_attempts
            timeout = max(0.0, next_send - loop.time()) if more else None
            if running:
                await asyncio.wait(running, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            for send in sends:  # in the order they started
                if send in judged or not send.done():
                    continue
                judged.add(send)
                error, result = _outcome(send)
                if await acceptable(error, result):
                    return send.result()
                latest_failure = send
                next_send = loop.time()  # a failed send starts the next one at once
    finally:
        left = [send for send in sends if not send.done()]
        for send in left:
            send.cancel()
        if left:
            await asyncio.gather(*left, return_exceptions=True)
        for send in sends:  # a loser that failed as the winner answered: its error is seen
            if not send.cancelled():
                send.exception()


def _outcome(send: asyncio.Future[Any]) -> tuple[BaseException | None, Any]:
    """(a finished send's error, or None; its result when it returned one)."""
    if send.cancelled():
        return asyncio.CancelledError(), None
    error = send.exception()
    return (error, None) if error is not None else (None, send.result())
