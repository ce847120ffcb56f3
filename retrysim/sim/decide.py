"""What a call does after each attempt: tenacity's ``iter()`` (reference), or its strategies (fast).

Both deciders answer the engine's two questions with the policy's real tenacity ``stop``,
``wait`` and ``retry`` objects, and draw jitter from the call's own counter-based stream:

* :class:`ReferenceDecider` steps a real ``Retrying.iter()`` on a real ``RetryCallState``,
  exactly as tenacity's own loop does. It runs any policy, your own strategies included, and it
  is the judge the fast path is proved against.
* :class:`FastDecider` asks the same strategies in the order ``iter()`` asks them (retry, then
  wait, then stop, short-circuiting as tenacity does) on a slim call state, and skips what
  ``iter()`` builds around them: its action queue, a ``concurrent.futures.Future`` with its
  lock per attempt, statistics. tenacity's common strategies run as plain functions that
  mirror them (:mod:`retrysim.sim.compiled`); the rest are called as they are. It runs only
  policies whose every strategy is in :data:`MIRRORED`, the classes whose reads of the call
  state the slim state provides; anything else goes to the reference path
  (:func:`decider_for` says which, and why).

``tests/test_fast_path.py`` proves the two give bit-identical records on every bundled
scenario under every profile and the guards, and on generated scenarios, and fails when
tenacity changes one of the mirrored classes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from typing import TYPE_CHECKING, Any

from tenacity import DoAttempt, DoSleep, RetryCallState, RetryError, stop_after_attempt

from retrysim.errors import BadInputError
from retrysim.names import ENGINES
from retrysim.retry.resilience import stop_unless_allowed, wait_stretched
from retrysim.retry.waits import (
    wait_capped,
    wait_decorrelated_jitter,
    wait_equal_jitter,
    wait_retry_after,
)
from retrysim.sim.clock import current_stream
from retrysim.sim.compiled import MIRRORS, Memo, Strategy, compiled
from retrysim.sim.failures import ANSWER_BASE, Answers, make_error
from retrysim.sim.streams import CALL_STEP, M64, Stream

if TYPE_CHECKING:
    from retrysim.retry.guards import GuardChain
    from retrysim.retry.policy import RetryPolicy

#: ``decide`` answers: retry after this many seconds (>= 0), or the call ends.
SUCCEEDED_NOW = -1.0
GAVE_UP_NOW = -2.0

Clock = Callable[[], float]

#: Strategy classes the fast path calls directly: tenacity's it mirrors
#: (:mod:`retrysim.sim.compiled`), and retrysim's own, called as they are. Each reads only
#: ``attempt_number``, ``outcome`` (``failed``, ``exception()``), ``seconds_since_start`` and
#: ``upcoming_sleep`` of the call state, hashes it (a weak key), or draws through ``random``:
#: all of which :class:`FastCallState` has. Adding a class here means checking that, and
#: adding what it relies on of tenacity to the drift check in ``tests/test_fast_path.py``.
MIRRORED: frozenset[type] = frozenset(
    {
        *MIRRORS,
        stop_unless_allowed,
        wait_capped,
        wait_equal_jitter,
        wait_decorrelated_jitter,
        wait_retry_after,
        wait_stretched,
    }
)

#: Where a composite strategy keeps the strategies it is made of.
_PARTS = ("stops", "wait_funcs", "retries", "inner", "fallback", "wait", "waits")


def strategy_tree(strategy: object) -> Iterator[object]:
    """``strategy`` and every strategy it is composed of, depth first."""
    yield strategy
    for name in _PARTS:
        part = getattr(strategy, name, None)
        if part is None:
            continue
        for child in part if isinstance(part, tuple | list) else (part,):
            yield from strategy_tree(child)


def unmirrored(strategies: tuple[object, ...], known: Collection[type] = MIRRORED) -> list[str]:
    """The names of the strategy classes in ``strategies`` (and their parts) not in ``known``:
    by default those the fast path cannot run; with ``known=MIRRORS``, those it calls as they
    are rather than through a mirror."""
    return sorted(
        {
            type(part).__name__
            for strategy in strategies
            for part in strategy_tree(strategy)
            if type(part) not in known
        }
    )


class _Failed:
    """A failed attempt's outcome as tenacity's strategies read it (``failed``, ``exception()``)."""

    __slots__ = ("error",)
    failed = True

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def exception(self) -> BaseException:
        return self.error


class _Returned:
    """An attempt that returned ``value`` (an answer), as tenacity's strategies read it."""

    __slots__ = ("value",)
    failed = False

    def __init__(self, value: object) -> None:
        self.value = value

    def exception(self) -> None:
        return None

    def result(self) -> object:
        return self.value


class FastCallState(Stream):
    """What tenacity's mirrored strategies read of a call, and the call's own jitter stream.

    One object a call: it is the ``retry_state`` the strategies are called with and the
    ``random`` their jitter draws from (so each call draws from its own stream, as on the
    reference path). ``__weakref__`` lets decorrelated jitter remember the call's last wait.
    """

    __slots__ = (
        "__weakref__",
        "attempt_number",
        "error_code",
        "failure",
        "outcome",
        "outcome_timestamp",
        "start_time",
        "upcoming_sleep",
    )

    def __init__(self, key: int, call: int, start_time: float) -> None:
        self.begin(key, call, start_time)

    def begin(self, key: int, call: int, start_time: float) -> None:
        """A fresh call's state: attempt 1, started at ``start_time``, stream (key, call)."""
        self.state = (key + call * CALL_STEP) & M64  # Stream.__init__'s, written out (per call)
        self.attempt_number = 1
        self.start_time = start_time
        self.outcome: _Failed | _Returned | None = None
        self.failure: BaseException | None = None  # the error ``outcome`` holds, for mirrors
        self.error_code = 0  # the latest attempt's record code, for the per-error mirrors
        self.outcome_timestamp: float | None = None
        self.upcoming_sleep = 0.0

    @property
    def seconds_since_start(self) -> float | None:
        if self.outcome_timestamp is None:
            return None
        return self.outcome_timestamp - self.start_time


class FastDecider:
    """Decides with the policy's strategy objects called directly (see the module docstring)."""

    name = "fast"
    makes_cycles = False  # no raise, no Future: nothing for the garbage collector to find
    why = None

    def __init__(
        self, policy: RetryPolicy, clock: Clock, jitter_key: int, answers: Answers | None = None
    ) -> None:
        self.policy = policy
        self.clock = clock
        self.jitter_key = jitter_key
        self.answers = answers or Answers()
        self._memo = Memo()
        shared = policy.strategies()  # (stop, wait, retry) of every call without guards
        self.strategies = self._compiled(*shared)
        self._memo.freeze()  # the run's shared strategies; a call's own are not kept
        # Mirrors draw from the call itself and read its error from ``failure``; a strategy
        # called as it is draws through ``random`` (routed to ``current_stream``) and reads
        # tenacity's ``outcome``, so both are set up only then. A call's guards add strategies
        # of their own.
        self._as_they_are = bool(unmirrored(shared, MIRRORS) or policy.guards)
        # With every strategy a mirror, the only reader of an attempt's error is the retry
        # mirror, a function of the error alone (a predicate given to register_transient is
        # taken to be one too), and the error a function of its code (make_error): so its
        # verdict is learnt once per code and run, and no error object is made at all. (An
        # error with a Retry-After hint is made and asked every time.) An answer's verdict is
        # learnt the same way: a mirror of a result predicate is a function of the value.
        self._by_code = not self._as_they_are
        self._verdicts: list[bool | None] = [None] * len(self.answers.names)
        # The commonest shape (the documented, full_jitter, bindu and exponential profiles'):
        # mirrors only, and a stop that counts attempts. Then nothing reads the attempt's time
        # or the coming sleep, and the count is compared here rather than by calling the stop.
        stop = shared[0]
        self._most_attempts = 0
        if self._by_code and type(stop) is stop_after_attempt:
            self._most_attempts = stop.max_attempt_number
            self.decide = self._decide_counted  # type: ignore[method-assign]
        # A served request returns None, taken as a success without asking: unless the retry
        # retries a returned None (a call's guards never change the retry), then it is judged
        # as an answer is, under result:None's code.
        if self._verdict(self.strategies[2], self.answers.none_code):
            self.decide = self._served_judged(self.decide)  # type: ignore[method-assign]

    def _compiled(self, *strategies: Any) -> tuple[Strategy, ...]:
        return tuple(compiled(strategy, self._memo) for strategy in strategies)

    def _served_judged(self, decide: Callable[..., float]) -> Callable[..., float]:
        """``decide``, with a served request's code 0 asked as result:None's (see __init__)."""
        served = self.answers.none_code

        def judged(
            call: Any, code: int, hint: float | None, error: BaseException | None, now: float
        ) -> float:
            return decide(call, code or served, hint, error, now)

        return judged

    def start(self) -> None:
        """The run begins (nothing to do: there is no ``Retrying`` to reset)."""

    def begin(self, call: Any, chain: GuardChain | None) -> None:
        """Start a new call (a :class:`FastCallState`: it is its own state and stream), with its
        own strategies when its guards shape retries."""
        call.begin(self.jitter_key, call.key, self.clock())
        if chain is not None and chain.shapes_retries():
            call.strategies = self._compiled(*self.policy.strategies(chain, self.clock))
        else:
            call.strategies = self.strategies

    def again(self, call: Any) -> bool:
        """Whether the call, back from its wait, attempts again (always, as ``iter()`` does)."""
        return True

    def decide(
        self, call: Any, code: int, hint: float | None, error: BaseException | None, now: float
    ) -> float:
        """After an attempt ended at ``now`` with error ``code`` (0: none; ``hint``, its
        Retry-After; ``error``, the exception when the engine made one already): the seconds
        to wait before the next attempt, or SUCCEEDED_NOW / GAVE_UP_NOW.

        An answer's code (:class:`~retrysim.sim.failures.Answers`) is a returned value: not
        retried, it is the call's result (SUCCEEDED_NOW). A served request's None is taken as
        a success without asking, unless the retry retries None (``_served_judged``).
        """
        if code == 0:
            return SUCCEEDED_NOW
        state: FastCallState = call
        state.outcome_timestamp = now
        state.error_code = code
        stop, wait, retry = call.strategies
        if self._by_code and error is None and hint is None:
            verdicts = self._verdicts
            verdict = verdicts[code]
            if verdict is None:
                verdict = verdicts[code] = self._verdict(retry, code)
            if not verdict:
                return GAVE_UP_NOW if code < ANSWER_BASE else SUCCEEDED_NOW
        else:
            as_they_are = self._as_they_are
            if code >= ANSWER_BASE:  # a returned value: no error for the mirrors to read
                if as_they_are:
                    state.outcome = _Returned(self.answers.value(code))
                if not retry(state):
                    return SUCCEEDED_NOW
            else:
                state.failure = error = error or make_error(code, hint)
                if as_they_are:
                    state.outcome = _Failed(error)
                if not retry(state):
                    return GAVE_UP_NOW
            if as_they_are:
                current_stream.set(state)
        sleep = state.upcoming_sleep = wait(state)
        if stop(state):
            return GAVE_UP_NOW
        state.outcome = state.failure = None
        state.outcome_timestamp = None
        state.attempt_number += 1
        return float(sleep)

    def _decide_counted(
        self, call: Any, code: int, hint: float | None, error: BaseException | None, now: float
    ) -> float:
        """:meth:`decide` for a policy of mirrors that stops after a number of attempts: the
        same questions in the same order (retry, wait, stop), less what no mirror reads."""
        if code == 0:
            return SUCCEEDED_NOW
        call.error_code = code
        _, wait, retry = call.strategies
        if error is None and hint is None:
            verdicts = self._verdicts
            verdict = verdicts[code]
            if verdict is None:
                verdict = verdicts[code] = self._verdict(retry, code)
        else:
            call.failure = error or make_error(code, hint)
            verdict = bool(retry(call))
            call.failure = None
        if not verdict:
            return GAVE_UP_NOW if code < ANSWER_BASE else SUCCEEDED_NOW
        n = call.attempt_number
        sleep = wait(call)  # drawn before the stop is asked, as tenacity does
        if n >= self._most_attempts:
            return GAVE_UP_NOW
        call.attempt_number = n + 1
        return float(sleep)

    def retries(self, call: Any, code: int) -> bool:
        """Whether the call's retry would retry an attempt that ended with ``code`` (asked
        without deciding: a hedged attempt's send is judged by it, as the library judges
        one). A served request's None is retried only when the retry retries None."""
        code = code or self.answers.none_code
        if self._by_code:
            verdict = self._verdicts[code]
            if verdict is None:
                verdict = self._verdicts[code] = self._verdict(call.strategies[2], code)
            return verdict
        probe = FastCallState(0, 0, 0.0)
        if code >= ANSWER_BASE:
            probe.outcome = _Returned(self.answers.value(code))
        else:
            probe.failure = make_error(code)
            probe.outcome = _Failed(probe.failure)
        return bool(call.strategies[2](probe))

    def _verdict(self, retry: Strategy, code: int) -> bool:
        """What the retry mirror says of error ``code``, or of the value an answer's code
        returns (asked once per code per run)."""
        probe = FastCallState(0, 0, 0.0)
        if code >= ANSWER_BASE:
            probe.outcome = _Returned(self.answers.value(code))
        else:
            probe.failure = make_error(code)
        return bool(retry(probe))

    def end(self, call: Any) -> None:
        del call.strategies
        call.outcome = call.failure = None  # the last error goes with its call's end


class ReferenceDecider:
    """Steps tenacity's own ``Retrying.iter()`` on a real ``RetryCallState`` (the judge)."""

    name = "reference"
    makes_cycles = True  # tenacity raises and re-raises the attempt's error through frames

    def __init__(
        self,
        policy: RetryPolicy,
        clock: Clock,
        jitter_key: int,
        why: str | None = None,
        answers: Answers | None = None,
    ) -> None:
        self.why = why  # why this path, when the fast one was not taken
        self.policy = policy
        self.clock = clock
        self.jitter_key = jitter_key
        self.answers = answers or Answers()
        self.retrying = policy.retrying()

    def start(self) -> None:
        """The run begins on the virtual clock: reset the ``Retrying`` as tenacity's loop does."""
        self.retrying.begin()

    def begin(self, call: Any, chain: GuardChain | None) -> None:
        retrying = self.retrying
        if chain is not None and chain.shapes_retries():
            retrying = self.policy.retrying(chain, self.clock)
            retrying.begin()  # as tenacity's own loop does before its first attempt
        call.retrying = retrying
        call.retry_state = RetryCallState(retrying, None, (), {})
        call.stream = Stream(self.jitter_key, call.key)

    def again(self, call: Any) -> bool:
        """Ask ``iter()`` what follows a wait (or the start): an attempt, for our policies."""
        do = call.retrying.iter(call.retry_state)
        if isinstance(do, DoAttempt):
            return True
        raise RuntimeError(f"tenacity asked for {do!r} where an attempt was due")

    def decide(
        self, call: Any, code: int, hint: float | None, error: BaseException | None, now: float
    ) -> float:
        """As :meth:`FastDecider.decide`, by ``iter()`` (which reads ``now`` from the clock).

        A served request (code 0) returns None and an answer its value: tenacity is handed the
        result (``set_result``), which its retry may judge too (``retry_if_result``).
        """
        state = call.retry_state
        if code == 0 or code >= ANSWER_BASE:
            state.set_result(self.answers.value(code))
        else:
            if error is None:
                error = make_error(code, hint)
            state.set_exception((type(error), error, None))
        # A retried attempt (a failure, or a result the retry rejects) leads tenacity to draw
        # a wait: point its jitter at this call's own stream for that decision.
        current_stream.set(call.stream)
        try:
            do = call.retrying.iter(state)
        except RetryError as raised:
            if state.outcome.failed:
                raise  # reraise=True re-raises a failure's own error: not tenacity's here
            # Attempts ran out on a result the retry rejects: tenacity raises RetryError (with
            # reraise too: there is no error of the attempt's to raise). The call gave up.
            raised.__traceback__ = None
            return GAVE_UP_NOW
        except Exception as raised:
            if raised is not error:
                raise  # not the attempt's error: a failure inside tenacity or a strategy
            # tenacity re-raised the attempt's error: the call gave up. Dropping the traceback
            # breaks the error -> frame -> state -> error cycle, so memory is freed at once.
            raised.__traceback__ = None
            return GAVE_UP_NOW
        if isinstance(do, DoSleep):
            state.prepare_for_next_attempt()
            call.attempt_number = state.attempt_number
            return float(do)
        return SUCCEEDED_NOW

    def retries(self, call: Any, code: int) -> bool:
        """As :meth:`FastDecider.retries`: the call's ``Retrying``'s own retry asked of a
        state holding the outcome ``code`` stands for."""
        probe = RetryCallState(call.retrying, None, (), {})
        if code == 0 or code >= ANSWER_BASE:
            probe.set_result(self.answers.value(code))
        else:
            error = make_error(code)
            probe.set_exception((type(error), error, None))
        return bool(call.retrying.retry(probe))

    def end(self, call: Any) -> None:
        del call.retry_state, call.stream, call.retrying


Decider = FastDecider | ReferenceDecider


class EngineChoiceError(BadInputError):
    """An engine that is not one of :data:`ENGINES`, or ``fast`` for a policy it cannot run."""


def fast_refusal(policy: RetryPolicy) -> str | None:
    """Why ``policy`` cannot take the fast path, or None when it can."""
    from retrysim.retry.policy import RetryPolicy

    if type(policy) is not RetryPolicy:
        return "a policy of your own, given with --policy, always runs on the reference path"
    names = unmirrored(policy.strategies())
    if names:
        return f"strategies the fast path does not mirror: {', '.join(names)}"
    return None


def decider_for(
    policy: RetryPolicy,
    engine: str,
    clock: Clock,
    jitter_key: int,
    answers: Answers | None = None,
) -> Decider:
    """The decider ``engine`` asks for (``auto``: fast when :func:`fast_refusal` allows);
    ``answers`` are the run's, whose codes say what value an attempt returned."""
    if engine not in ENGINES:
        raise EngineChoiceError(
            f"--engine: unknown engine {engine!r}; allowed: {', '.join(ENGINES)}"
        )
    if engine == "reference":
        why = "asked for with --engine reference"
        return ReferenceDecider(policy, clock, jitter_key, why, answers)
    refusal = fast_refusal(policy)
    if refusal is None:
        return FastDecider(policy, clock, jitter_key, answers)
    if engine in ("fast", "native"):  # the native core needs the fast path's strategies
        raise EngineChoiceError(f"--engine {engine}: {refusal}; use --engine auto or reference")
    return ReferenceDecider(policy, clock, jitter_key, refusal, answers)
