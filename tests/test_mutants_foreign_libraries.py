"""Behaviour of the stamina/backoff translation that the mutation run of
``retrysim/sim/foreign_libraries.py`` found untested.

Each test compares the translation with the library it translates where the library runs (its
sleeps on the virtual clock, its attempts), else with what the module promises: a policy it
cannot read or translate is refused in one line naming what, never crashed on.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

import backoff
import pytest
import stamina
from tenacity import Retrying

from retrysim.retry.settings import RetrySettings
from retrysim.runs.user_policy import PolicyImportError, load_policy
from retrysim.sim.foreign import foreign_policy
from retrysim.sim.foreign_libraries import TranslationError, library_policy
from retrysim.sim.wait_samples import sample_waits
from retrysim.testing import VirtualTime
from tests.test_foreign_libraries import always_down, always_down_async, library_sleeps, simulated


def translated(function: Any) -> Retrying:
    policy = library_policy(function)
    assert isinstance(policy, Retrying)
    return policy


def attempts_made(policy: Retrying, error: type[Exception]) -> int:
    """How many times ``policy`` calls a function that always raises ``error``, on a virtual
    clock."""
    calls = 0

    def failing() -> None:
        nonlocal calls
        calls += 1
        raise error("down")

    with VirtualTime(), pytest.raises(error):
        policy(failing)
    return calls


def closure_cell(function: Any, name: str) -> Any:
    """The cell holding a decorated wrapper's closure variable ``name``."""
    return function.__closure__[function.__code__.co_freevars.index(name)]


def with_closure(function: Any, name: str, value: Any) -> Any:
    """``function`` (a fresh decorated wrapper) with its closure variable ``name`` set to
    ``value``: the wrapper as another version of its library might lay it out."""
    closure_cell(function, name).cell_contents = value
    return function


class _Context:
    """A stand-in for stamina's retry context: the attributes a version keeps, as given."""

    def __init__(self, **attributes: Any) -> None:
        for key, value in attributes.items():
            setattr(self, key, value)


def stamina_context(**changes: Any) -> Any:
    """A stamina-decorated function whose retry context holds stamina 26's values, changed
    (a value of None leaves the attribute out)."""
    function = stamina.retry(on=ConnectionError, attempts=3, timeout=None, wait_jitter=0)(
        always_down
    )
    real = closure_cell(function, "retry_ctx").cell_contents
    names = ("_t_kw", "_wait_initial", "_wait_max", "_wait_jitter", "_wait_exp_base")
    attributes = {name: getattr(real, name) for name in names}
    attributes["_t_kw"] = dict(real._t_kw)
    attributes.update(changes)
    kept = {key: value for key, value in attributes.items() if value is not None}
    return with_closure(function, "retry_ctx", _Context(**kept))


# --- what cannot be read is refused in one line ------------------------------------------------


def test_pointing_at_the_stamina_decorator_itself_is_refused_in_one_line() -> None:
    """``--policy stamina:retry`` (the decorator, not a decorated function) is refused with the
    one-line 'cannot read' message, not a crash."""
    with pytest.raises(PolicyImportError) as raised:
        load_policy("stamina:retry")
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("--policy stamina:retry: a stamina-decorated function")
    assert "write the policy with tenacity" in message


@pytest.mark.parametrize(
    "changes",
    [
        {"_t_kw": None},  # no tenacity keywords where 26.x keeps them
        {"_wait_max": None},  # a wait number missing
        {"_wait_initial": "0.1"},  # a wait number that is not a number
    ],
    ids=["no-keywords", "no-wait-max", "text-wait"],
)
def test_a_stamina_context_laid_out_otherwise_is_refused(changes: dict[str, Any]) -> None:
    """A stamina wrapper whose context lacks the keywords or a wait number is refused as
    unreadable (a TranslationError), even when the rest of it reads well."""
    with pytest.raises(TranslationError, match="does not let retrysim read"):
        library_policy(stamina_context(**changes))


@pytest.mark.parametrize("strategy", ["retry", "stop"])
def test_a_stamina_context_with_a_foreign_strategy_is_refused(strategy: str) -> None:
    """A stamina context whose stop or retry is not a tenacity strategy (one of them alone
    suffices) is refused as unreadable rather than stepped."""
    function = stamina.retry(on=ConnectionError, attempts=3, timeout=None)(always_down)
    keywords = dict(closure_cell(function, "retry_ctx").cell_contents._t_kw)
    keywords[strategy] = lambda state: True  # a plain function, not a tenacity object
    stand_in = stamina_context(_t_kw=keywords)
    with pytest.raises(TranslationError, match="does not let retrysim read"):
        library_policy(stand_in)


def test_a_backoff_wrapper_whose_keywords_are_not_a_dict_is_refused() -> None:
    """A backoff wrapper that keeps every name 2.2 keeps but whose generator keywords are not
    a dict is refused as unreadable, not crashed on."""
    function = backoff.on_exception(backoff.constant, ConnectionError, interval=1)(always_down)
    with pytest.raises(TranslationError, match="does not let retrysim read"):
        library_policy(with_closure(function, "wait_gen_kwargs", None))


@pytest.mark.parametrize(
    "exception", [(ConnectionError, "not a class"), ()], ids=["a-string-inside", "empty"]
)
def test_a_backoff_exception_tuple_of_anything_but_classes_is_refused(exception: Any) -> None:
    """``exception=`` must be a class or a non-empty tuple of classes: a tuple holding
    something else, or none at all, is refused naming it."""
    function = backoff.on_exception(backoff.expo, exception, max_tries=3)(always_down)
    with pytest.raises(TranslationError, match="expected an exception class or a tuple"):
        library_policy(function)


def test_a_generator_keyword_function_that_wants_arguments_is_refused() -> None:
    """backoff calls a keyword given as a function with no arguments; one that needs some stays
    a function, which is no number: refused naming it (not read as 'no cap')."""
    function = backoff.on_exception(
        backoff.expo, ConnectionError, max_tries=4, max_value=lambda error: 5
    )(always_down)
    with pytest.raises(TranslationError, match=r"backoff\.expo\(max_value=<function"):
        library_policy(function)


# --- translated as the library behaves -------------------------------------------------------


def test_a_max_tries_function_is_called_for_its_number(virtual_time: VirtualTime) -> None:
    """``max_tries=lambda: 3`` limits the call to 3 attempts, as backoff (which calls it) does."""
    function = backoff.on_exception(
        backoff.constant, ConnectionError, interval=0.5, max_tries=lambda: 3, jitter=None
    )(always_down_async)
    theirs = library_sleeps(virtual_time, function)
    ours, attempts = simulated(function)
    assert theirs == [0.5, 0.5]
    assert ours == theirs and attempts == 3


def test_max_tries_zero_sets_no_attempt_limit(virtual_time: VirtualTime) -> None:
    """backoff never stops on ``max_tries=0``: a finite interval list is then what ends the
    call, after its last wait, as in backoff."""
    function = backoff.on_exception(
        backoff.constant, ConnectionError, interval=[0.5, 1], max_tries=0, jitter=None
    )(always_down_async)
    theirs = library_sleeps(virtual_time, function)
    ours, attempts = simulated(function)
    assert theirs == [0.5, 1.0]
    assert ours == theirs and attempts == 3


def test_backoff_constant_without_an_interval_waits_a_second(virtual_time: VirtualTime) -> None:
    """``backoff.constant`` with no ``interval`` waits 1 s before each retry, as backoff does."""
    function = backoff.on_exception(backoff.constant, ConnectionError, max_tries=3, jitter=None)(
        always_down_async
    )
    theirs = library_sleeps(virtual_time, function)
    ours, attempts = simulated(function)
    assert theirs == [1.0, 1.0]
    assert ours == theirs and attempts == 3


def test_an_empty_interval_list_makes_one_attempt_and_no_wait(virtual_time: VirtualTime) -> None:
    """``interval=[]``: backoff gives up after the first failure; the translation makes one
    attempt and reports no wait (a 0 s range), not a wait that never happens."""
    function = backoff.on_exception(backoff.constant, ConnectionError, interval=[], jitter=None)(
        always_down_async
    )
    assert library_sleeps(virtual_time, function) == []
    assert simulated(function) == ([], 1)
    policy = foreign_policy(function, "empty")
    assert set(policy.probed.wait_ranges) == {(0.0, 0.0)}  # type: ignore[attr-defined]
    assert policy.options.max_wait == 0.0


def test_full_jitter_on_a_constant_draws_between_zero_and_it() -> None:
    """backoff's default ``full_jitter`` on a constant 0.5 s: each simulated wait is drawn in
    [0, 0.5], spread over that range (not a bound, not above it)."""
    function = backoff.on_exception(backoff.constant, ConnectionError, interval=0.5, max_tries=8)(
        always_down_async
    )
    waits, attempts = simulated(function)
    assert attempts == 8 and len(waits) == 7
    assert all(0.0 <= wait <= 0.5 for wait in waits)
    assert max(waits) - min(waits) > 0.05


def test_random_jitter_adds_a_draw_between_zero_and_one_second() -> None:
    """``random_jitter``: the value plus U(0, 1) s; the added parts spread inside [0, 1]."""
    function = backoff.on_exception(
        backoff.constant,
        ConnectionError,
        interval=0.5,
        max_tries=8,
        jitter=backoff.random_jitter,
    )(always_down_async)
    waits, attempts = simulated(function)
    added = [wait - 0.5 for wait in waits]
    assert attempts == 8 and len(added) == 7
    assert all(0.0 <= extra <= 1.0 for extra in added)
    assert max(added) - min(added) > 0.1


def test_max_time_cuts_a_wait_from_the_first_failure_at_zero_elapsed() -> None:
    """backoff's wait is ``min(interval, max_time - elapsed)``; a first attempt refused at once
    has 0 s elapsed, so its 4 s wait stands, and the next is cut to the 0.5 s left."""
    function = backoff.on_exception(
        backoff.constant, ConnectionError, interval=4, max_time=4.5, jitter=None
    )(always_down)
    assert simulated(function) == ([4.0, 0.5], 3)


def test_a_sync_giveup_is_asked_as_given_even_when_it_wraps_another() -> None:
    """A plain ``giveup`` made with ``functools.wraps`` is the user's function: the translation
    asks it, not the one it wraps, so it gives up where backoff does."""

    def is_timeout(error: BaseException) -> bool:
        return isinstance(error, TimeoutError)

    @functools.wraps(is_timeout)
    def unless_timeout(error: BaseException) -> bool:  # gives up on all but timeouts
        return not is_timeout(error)

    calls = 0

    def refused() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError("down")

    function = backoff.on_exception(
        backoff.constant,
        (ConnectionError, TimeoutError),
        giveup=unless_timeout,
        max_tries=4,
        interval=0,
    )(refused)
    with pytest.raises(ConnectionError):
        function()
    assert calls == 1  # backoff gave up on the first ConnectionError
    assert attempts_made(translated(function), ConnectionError) == 1
    assert attempts_made(translated(function), TimeoutError) == 4


def test_a_stamina_hook_policy_does_not_retry_a_success() -> None:
    """A stamina ``on=`` hook is asked about errors only: a call that returns is not retried
    by the translation, as stamina does not retry it."""

    def hook(error: BaseException) -> bool:
        return True

    calls = 0

    def works() -> str:
        nonlocal calls
        calls += 1
        return "ok"

    function = stamina.retry(on=hook, attempts=3, timeout=None)(works)
    assert function() == "ok" and calls == 1
    calls = 0
    with VirtualTime():
        assert translated(function)(works) == "ok"
    assert calls == 1


def test_a_translated_stamina_hook_profile_samples_its_backoff_before_any_failure() -> None:
    """The backoff figure samples a translated stamina hook policy's waits with no failed
    attempt to ask the hook about: stamina's own backoff (0.1, 0.2 s, no jitter)."""

    def hook(error: BaseException) -> bool | float:
        return 2.5 if isinstance(error, TimeoutError) else True

    function = stamina.retry(on=hook, attempts=4, timeout=None, wait_jitter=0)(always_down)
    profile = foreign_policy(function, "hooked").options.profile
    waits = sample_waits("worker", profile, RetrySettings(), samples=2, max_retries=2)
    assert waits.tolist() == [[0.1, 0.2], [0.1, 0.2]]


def test_a_stamina_hook_is_asked_about_a_base_exception_as_stamina_asks_it() -> None:
    """stamina hands its ``on=`` hook any failure, a BaseException that is not an Exception
    too, and retries when it says so; the translation makes the same attempts and waits (it
    may ask the hook more than once per failure: once to retry, once for the wait)."""

    class Halt(BaseException):
        pass

    calls = 0
    asked: list[str] = []

    def halts() -> None:
        nonlocal calls
        calls += 1
        raise Halt("stop")

    def hook(error: BaseException) -> float:
        asked.append(type(error).__name__)
        return 0.5

    function = stamina.retry(on=hook, attempts=3, timeout=None)(halts)
    with VirtualTime() as real, pytest.raises(Halt):
        function()
    real_calls, real_asked = calls, list(asked)
    calls = 0
    asked.clear()
    with VirtualTime() as translation, pytest.raises(Halt):
        translated(function)(halts)
    assert calls == real_calls == 3
    assert set(asked) == set(real_asked) == {"Halt"}
    assert translation.sleeps == real.sleeps == [0.5, 0.5]


@pytest.mark.filterwarnings("ignore:Nullary jitter:DeprecationWarning")  # backoff's, failing
@pytest.mark.parametrize(
    ("strategy", "keywords"),
    [
        (backoff.constant, {"interval": dt.timedelta(seconds=1)}),
        (backoff.expo, {"max_value": dt.timedelta(seconds=30)}),
    ],
    ids=["constant-interval", "expo-max_value"],
)
def test_a_timedelta_given_to_backoff_is_refused_as_backoff_fails_on_it(
    strategy: Any, keywords: dict[str, Any]
) -> None:
    """backoff takes seconds as numbers and fails on a timedelta when it first waits; the
    translation refuses it in one line rather than simulate a policy that crashes."""

    def fails() -> None:
        raise ValueError("down")

    function = backoff.on_exception(strategy, ValueError, max_tries=2, **keywords)(fails)
    with VirtualTime(), pytest.raises(TypeError):
        function()
    with pytest.raises(TranslationError, match="expected a number"):
        library_policy(function)
